//! The scorer behind every FID / KID / IS / I' figure and the DCGAN probe's features: the
//! domain classifier's accuracy and its 32 -> 28 crop, a classifier trained in seconds on an
//! MNIST subset, real images scored against themselves, `generate_unit`'s map to [0, 1], and
//! `discriminator_features` against values computed by hand.

use saddle_gan::data::{ImageDataset, Split};
use saddle_gan::evaluate::{generate_unit, ClassifierScorer};
use saddle_gan::models::classifier::{Classifier, FEATURE_DIM};
use saddle_gan::models::dcgan::{discriminator, discriminator_features, DcganConfig};
use saddle_gan::run::{BoxError, GanModel};
use saddle_nn::engine::{no_grad, DType, Device, Rng, Tensor};
use saddle_nn::{Checkpoint, CheckpointError, Module, ModuleExt};
use std::path::Path;

/// `count` images from `from` on of a split of the shared MNIST copy as `[count, 1, 28, 28]` in
/// [0, 1] with their labels; `None` (saying why) when the shared dataset store is absent.
fn mnist(split: Split, from: usize, count: usize) -> Option<(Tensor, Vec<usize>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/mnist");
    if !dir.is_dir() {
        eprintln!(
            "skipped: {} not found (the shared dataset store is absent)",
            dir.display()
        );
        return None;
    }
    let ds = ImageDataset::mnist(&dir, split).unwrap();
    let pixels = ds.pixels[from * 784..(from + count) * 784].to_vec();
    let labels = ds.labels.unwrap()[from..from + count]
        .iter()
        .map(|&l| l as usize)
        .collect();
    Some((
        Tensor::from_vec(pixels, &[count, 1, 28, 28], Device::Cpu).unwrap(),
        labels,
    ))
}

/// `n` images of `side`² pixels with values in [0, 1] from `seed`.
fn noise_images(n: usize, side: usize, seed: u64) -> Tensor {
    Tensor::rand(
        &[n, 1, side, side],
        0.0,
        1.0,
        DType::F32,
        Device::Cpu,
        &mut Rng::new(seed),
    )
    .unwrap()
}

/// The accuracy over batches that do not divide the set equals the share of rows whose argmax
/// logit is the label: 4 of 7 labels are the classifier's own predictions, the other 3 are not.
/// Fails on a last, shorter batch dropped (4/6 or 3/6) or counted against the wrong labels
/// (labels read from the start of the set in every batch), and on `argmax` picking the minimum.
#[test]
fn accuracy_is_the_share_of_argmax_hits_over_uneven_batches() {
    let model = Classifier::new(10, &mut Rng::new(3)).unwrap();
    let x = noise_images(7, 28, 4);
    let logits = no_grad(|| model.forward(&x))
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let predicted: Vec<usize> = logits
        .chunks(10)
        .map(|row| (0..10).fold(0, |b, k| if row[k] > row[b] { k } else { b }))
        .collect();
    let labels: Vec<usize> = predicted
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            if [1, 4, 5].contains(&i) {
                (p + 1) % 10
            } else {
                p
            }
        })
        .collect();
    for batch in [1, 3, 7, 100] {
        let acc = model.accuracy(&x, &labels, batch).unwrap();
        assert_eq!(acc, 4.0 / 7.0, "batch {batch}");
    }
}

/// A 32x32 image (DCGAN's padded MNIST) is read as its centre 28x28 crop, rows and columns
/// 2..30: its features equal those of the crop made here, whatever lies in the 2-pixel border,
/// and differ from those of the crop one pixel off. Fails on a crop at another offset (a corner
/// crop, or 4..32) or along one axis only.
#[test]
fn a_32_pixel_image_is_read_as_its_centre_28_pixel_crop() {
    let model = Classifier::new(10, &mut Rng::new(5)).unwrap();
    let big = noise_images(2, 32, 6).to_vec::<f32>().unwrap();
    let crop = |dy: usize, dx: usize| -> Tensor {
        let v: Vec<f32> = (0..2)
            .flat_map(|n| (0..28).flat_map(move |y| (0..28).map(move |x| (n, y, x))))
            .map(|(n, y, x)| big[n * 1024 + (y + dy) * 32 + x + dx])
            .collect();
        Tensor::from_vec(v, &[2, 1, 28, 28], Device::Cpu).unwrap()
    };
    let features = |x: &Tensor| {
        no_grad(|| model.features(x))
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
    };
    let from_big = features(&Tensor::from_vec(big.clone(), &[2, 1, 32, 32], Device::Cpu).unwrap());
    assert_eq!(from_big.len(), 2 * FEATURE_DIM);
    assert_eq!(from_big, features(&crop(2, 2)));
    assert_ne!(from_big, features(&crop(2, 3)));
    assert_ne!(from_big, features(&crop(3, 2)));
    // A new border changes nothing.
    let mut framed = big.clone();
    for (i, v) in framed.iter_mut().enumerate() {
        let (y, x) = ((i % 1024) / 32, i % 32);
        if !(2..30).contains(&y) || !(2..30).contains(&x) {
            *v = 1.0 - *v;
        }
    }
    let framed = Tensor::from_vec(framed, &[2, 1, 32, 32], Device::Cpu).unwrap();
    assert_eq!(from_big, features(&framed));
    assert!(model.features(&noise_images(1, 30, 0)).is_err());
}

/// The classifier trained for one pass over 2,000 MNIST training images (40 Adam steps of 50, a
/// few seconds) reaches 75% on 1,000 test images it never saw (81.5% when written; 10% is
/// chance). The scorer built on 500 of those test images then gives the same images FID ~ 0 and
/// KID ~ 0 next to the figures of uniform noise (FID ~2,900, KID ~170,000), and the other 500 a
/// small FID and KID (~5 and ~10); real digits get an Inception-style score and I' far above
/// noise's. Fails on a classifier that does not learn (its optimiser step left out), and on the
/// scorer's FID or KID comparing the scored set with itself instead of the real set (noise would
/// score 0).
#[test]
fn a_classifier_trained_in_seconds_scores_real_images_as_real() {
    let Some((train_x, train_y)) = mnist(Split::Train, 0, 2000) else {
        return;
    };
    let (test_x, test_y) = mnist(Split::Test, 0, 1000).unwrap();
    let model = Classifier::new(10, &mut Rng::new(0)).unwrap();
    let mut opt = model.optimizer();
    for start in (0..2000).step_by(50) {
        let x = train_x.narrow(0, start, 50).unwrap();
        model
            .train_step(&mut opt, &x, &train_y[start..start + 50])
            .unwrap();
    }
    let accuracy = model.accuracy(&test_x, &test_y, 256).unwrap();
    println!("classifier: {:.1}% on 1,000 test images", 100.0 * accuracy);
    assert!(accuracy > 0.75, "test accuracy {accuracy}");

    let real = test_x.narrow(0, 0, 500).unwrap();
    let scorer = ClassifierScorer::new(model, &real).unwrap();
    let same = scorer.score(&real).unwrap();
    let other = scorer.score(&test_x.narrow(0, 500, 500).unwrap()).unwrap();
    let noise = scorer.score(&noise_images(500, 28, 9)).unwrap();
    println!("scores: itself {same:?}\nother real {other:?}\nnoise {noise:?}");
    assert_eq!(same.samples, 500);
    assert!(same.fid.abs() < 1e-6 * noise.fid, "{same:?} {noise:?}");
    assert!(same.kid.abs() < 1e-3 * noise.kid, "{same:?} {noise:?}");
    assert!(other.fid < 0.01 * noise.fid, "{other:?} {noise:?}");
    assert!(other.kid < 0.01 * noise.kid, "{other:?} {noise:?}");
    assert!(
        same.inception_score > 2.0 * noise.inception_score,
        "{same:?} {noise:?}"
    );
    assert!(same.i_prime > 2.0 * noise.i_prime, "{same:?} {noise:?}");
}

/// A stand-in model whose images are its latent codes: fixed values cycling through `VALUES`
/// (offset by the generator's first draw, so seeds differ), in the range (-1, 3).
struct Identity;

const VALUES: [f32; 6] = [-3.0, -1.0, 0.0, 1.0, 3.0, 5.0];

impl GanModel for Identity {
    fn train_step(
        &mut self,
        _: &Tensor,
        _: Option<&[usize]>,
        _: &mut Rng,
    ) -> Result<Vec<(&'static str, Tensor)>, BoxError> {
        unreachable!("generate_unit does not train")
    }
    fn sample_latent(&self, n: usize, rng: &mut Rng) -> Result<Tensor, BoxError> {
        let offset = rng.below(6) as usize;
        let v = (0..n * 4).map(|i| VALUES[(i + offset) % 6]).collect();
        Ok(Tensor::from_vec(v, &[n, 1, 2, 2], Device::Cpu)?)
    }
    fn generate(&mut self, z: &Tensor) -> Result<Tensor, BoxError> {
        Ok(z.clone())
    }
    fn value_range(&self) -> (f32, f32) {
        (-1.0, 3.0)
    }
    fn checkpoint(&self) -> Checkpoint {
        Checkpoint::new()
    }
    fn restore(&mut self, _: &Checkpoint) -> Result<(), CheckpointError> {
        Ok(())
    }
}

/// `generate_unit` maps the model's range (-1, 3) onto [0, 1], `(x + 1) / 4`, clamping what lies
/// outside, over batches of 500 (1,201 images: 500, 500, 201), with one noise stream per seed.
/// Fails on a fixed (-1, 1) map (the usual tanh range) or a map by `x / hi`, on a missing clamp,
/// and on the last batch's size miscounted.
#[test]
fn generate_unit_maps_the_model_range_onto_the_unit_interval() {
    let images = generate_unit(&mut Identity, 1201, 7).unwrap();
    assert_eq!(images.shape(), &[1201, 1, 2, 2]);
    let got = images.to_vec::<f32>().unwrap();
    let mut rng = Rng::new(7);
    let want: Vec<f32> = [500, 500, 201]
        .iter()
        .flat_map(|&n| {
            Identity
                .sample_latent(n, &mut rng)
                .unwrap()
                .to_vec::<f32>()
                .unwrap()
        })
        .map(|x| ((x + 1.0) / 4.0).clamp(0.0, 1.0))
        .collect();
    assert_eq!(got, want);
    for (x, u) in [
        (-3.0, 0.0),
        (-1.0, 0.0),
        (0.0, 0.25),
        (1.0, 0.5),
        (3.0, 1.0),
        (5.0, 1.0),
    ] {
        assert_eq!(((x + 1.0f32) / 4.0).clamp(0.0, 1.0), u);
    }
    assert_eq!(
        generate_unit(&mut Identity, 1201, 7)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        got
    );
}

/// The probe's features of a 16x16 DCGAN D (conv 4x4 s2 p1 -> LeakyReLU 0.2 -> conv 4x4 s2 p1 ->
/// batch norm -> LeakyReLU 0.2 -> conv), in evaluation mode with running statistics set to
/// uneven values, against a direct computation here: block 1's activation (8x8) max-pooled 2x2
/// to 4x4, then block 2's (already 4x4), flattened channel-major and concatenated. Fails on
/// features taken before the activation, and on average instead of max pooling.
#[test]
fn discriminator_features_match_a_direct_computation() {
    let cfg = DcganConfig {
        nz: 4,
        ngf: 2,
        ndf: 2,
        ..DcganConfig::digits16()
    };
    let mut d = discriminator(cfg, &mut Rng::new(8)).unwrap();
    d.set_training(false);
    let param = |name: &str| -> Vec<f64> {
        let all = d.named_parameters().into_iter().chain(d.named_buffers());
        let (_, t) = all.into_iter().find(|(n, _)| n == name).unwrap();
        t.to_vec_f64().unwrap()
    };
    let set = |name: &str, v: &[f32]| {
        let all = d.named_parameters().into_iter().chain(d.named_buffers());
        let (_, t) = all.into_iter().find(|(n, _)| n == name).unwrap();
        t.assign(&Tensor::from_vec(v.to_vec(), &[v.len()], Device::Cpu).unwrap())
            .unwrap();
    };
    // Batch norm 4 channels: uneven statistics and shifts, so only the running values fit.
    set("3.running_mean", &[0.01, -0.02, 0.005, 0.0]);
    set("3.running_var", &[0.5, 2.0, 0.01, 1.5]);
    set("3.bias", &[0.1, -0.05, 0.0, 0.02]);
    let n = 2;
    let x: Vec<f32> = (0..n * 256)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let input = Tensor::from_vec(x.clone(), &[n, 1, 16, 16], Device::Cpu).unwrap();
    let got = discriminator_features(cfg, &d, &input).unwrap();
    let x: Vec<f64> = x.into_iter().map(f64::from).collect();
    assert_eq!(got.shape(), &[n, 2 * 16 + 4 * 16]);
    let got = got.to_vec_f64().unwrap();

    let leaky = |v: f64| if v > 0.0 { v } else { 0.2 * v };
    let h1: Vec<f64> = conv_s2p1(&x, n, 1, 16, &param("0.weight"), 2)
        .into_iter()
        .map(leaky)
        .collect();
    let h2 = conv_s2p1(&h1, n, 2, 8, &param("2.weight"), 4);
    let (mean, var) = (param("3.running_mean"), param("3.running_var"));
    let (gain, shift) = (param("3.weight"), param("3.bias"));
    let h2: Vec<f64> = h2
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let c = (i / 16) % 4;
            leaky((v - mean[c]) / (var[c] + 1e-5).sqrt() * gain[c] + shift[c])
        })
        .collect();
    for b in 0..n {
        let mut want = Vec::new();
        for c in 0..2 {
            for (y, x) in (0..4).flat_map(|y| (0..4).map(move |x| (y, x))) {
                let at = |dy: usize, dx: usize| h1[((b * 2 + c) * 8 + 2 * y + dy) * 8 + 2 * x + dx];
                want.push(at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1)));
            }
        }
        want.extend(&h2[b * 64..(b + 1) * 64]);
        let row = &got[b * 96..(b + 1) * 96];
        for (i, (g, w)) in row.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() < 1e-5 * (1.0 + w.abs()),
                "image {b} feature {i}: {g} vs {w}"
            );
        }
    }
}

/// A 4x4 convolution with stride 2 and padding 1, no bias: `x` is `[n, cin, side, side]`, `w`
/// `[cout, cin, 4, 4]`; returns `[n, cout, side / 2, side / 2]`.
fn conv_s2p1(x: &[f64], n: usize, cin: usize, side: usize, w: &[f64], cout: usize) -> Vec<f64> {
    let out = side / 2;
    let mut y = vec![0.0; n * cout * out * out];
    for b in 0..n {
        for o in 0..cout {
            for (oy, ox) in (0..out).flat_map(|oy| (0..out).map(move |ox| (oy, ox))) {
                let mut s = 0.0;
                for c in 0..cin {
                    for (ky, kx) in (0..4).flat_map(|ky| (0..4).map(move |kx| (ky, kx))) {
                        let (iy, ix) = ((2 * oy + ky) as isize - 1, (2 * ox + kx) as isize - 1);
                        if (0..side as isize).contains(&iy) && (0..side as isize).contains(&ix) {
                            let xi = ((b * cin + c) * side + iy as usize) * side + ix as usize;
                            s += x[xi] * w[((o * cin + c) * 4 + ky) * 4 + kx];
                        }
                    }
                }
                y[((b * cout + o) * out + oy) * out + ox] = s;
            }
        }
    }
    y
}
