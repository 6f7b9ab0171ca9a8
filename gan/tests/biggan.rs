//! BigGAN: the paper's parameter counts at 128x128, counts that match the built models, shapes
//! at 32x32, the projection head against hand-computed values, and errors naming what is wrong.
//! The trainer: hinge losses against hand-computed values, one full step (two D updates, one G
//! update) against the same step built by hand, an exact resume from a checkpoint file, labelled
//! sampling, and the training loop's one-row-per-class grid of a conditional model.

use saddle_gan::models::biggan::{BigGanConfig, BigGanDiscriminator, BigGanGenerator};
use saddle_nn::engine::{DType, Device, Rng, Tensor};
use saddle_nn::init::WeightInit;
use saddle_nn::{Module, ModuleExt};
use std::time::Instant;

/// A narrow conditional model at `resolution` (attention at 16x16, where both G and D have a
/// block at every supported resolution).
fn small(resolution: usize, channels: usize) -> BigGanConfig {
    BigGanConfig {
        resolution,
        channels,
        ch: 8,
        num_classes: Some(5),
        z_dim: 4 * 7,
        shared_dim: 6,
        attention_resolution: Some(16),
        spectral_norm_conditioning: true,
        init: WeightInit::Orthogonal,
    }
}

#[test]
fn the_imagenet_128_configuration_has_the_papers_parameter_counts() {
    // Trained parameters only (batch-norm running statistics and spectral-norm u, v are
    // buffers), counted from the sizes the constructors build; the next test ties the two.
    let cfg = BigGanConfig::imagenet128();
    assert_eq!(cfg.discriminator_parameters().unwrap(), 87_982_370);
    assert_eq!(cfg.generator_parameters().unwrap(), 70_433_988);
}

#[test]
fn built_models_have_the_counted_parameters_at_every_resolution_and_variant() {
    let mut rng = Rng::new(1);
    let mut configs = Vec::new();
    for (resolution, z_dim) in [(32, 4 * 7), (64, 5 * 7), (128, 6 * 7)] {
        let cfg = BigGanConfig {
            z_dim,
            ..small(resolution, 3)
        };
        configs.push(cfg);
        configs.push(BigGanConfig {
            num_classes: None,
            attention_resolution: None,
            spectral_norm_conditioning: false,
            ..cfg
        });
    }
    for cfg in configs {
        let g = BigGanGenerator::new(cfg, DType::F32, &mut rng).unwrap();
        let d = BigGanDiscriminator::new(cfg, DType::F32, &mut rng).unwrap();
        assert_eq!(
            g.num_parameters(),
            cfg.generator_parameters().unwrap(),
            "G {cfg:?}"
        );
        assert_eq!(
            d.num_parameters(),
            cfg.discriminator_parameters().unwrap(),
            "D {cfg:?}"
        );
    }
}

#[test]
#[ignore = "allocates the 128x128 models (~160M parameters, 1.4 GB peak) and orthogonalises every weight: ~2e11 multiply-adds, about 30 s on 2 busy cores"]
fn building_the_imagenet_128_models_allocates_the_papers_parameter_counts() {
    let mut rng = Rng::new(2);
    let cfg = BigGanConfig::imagenet128();
    let start = Instant::now();
    let g = BigGanGenerator::new(cfg, DType::F32, &mut rng).unwrap();
    let built_g = start.elapsed();
    let d = BigGanDiscriminator::new(cfg, DType::F32, &mut rng).unwrap();
    eprintln!(
        "built G in {:.1?}, D in {:.1?}",
        built_g,
        start.elapsed() - built_g
    );
    assert_eq!(g.num_parameters(), 70_433_988);
    assert_eq!(d.num_parameters(), 87_982_370);
}

#[test]
fn generator_and_discriminator_shapes_at_32x32_with_labels() {
    let mut rng = Rng::new(3);
    for channels in [1, 3] {
        let cfg = small(32, channels);
        let g = BigGanGenerator::new(cfg, DType::F32, &mut rng).unwrap();
        let d = BigGanDiscriminator::new(cfg, DType::F32, &mut rng).unwrap();
        let z = Tensor::randn(&[3, 28], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
        let labels = [0, 4, 2];
        let images = g.forward(&z, Some(&labels)).unwrap();
        assert_eq!(images.shape(), &[3, channels, 32, 32]);
        let values = images.to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| v.abs() <= 1.0), "tanh keeps [-1, 1]");
        let logits = d.forward(&images, Some(&labels)).unwrap();
        assert_eq!(logits.shape(), &[3]);
        assert!(logits
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .all(|v| v.is_finite()));
        assert_eq!(d.features(&images).unwrap().shape(), &[3, 16]);
    }
}

#[test]
fn the_unconditional_variant_takes_no_labels() {
    let mut rng = Rng::new(4);
    let cfg = BigGanConfig {
        num_classes: None,
        z_dim: 10,
        ..small(32, 1)
    };
    let g = BigGanGenerator::new(cfg, DType::F32, &mut rng).unwrap();
    let d = BigGanDiscriminator::new(cfg, DType::F32, &mut rng).unwrap();
    assert!(g.shared.is_none() && d.embed.is_none());
    let z = Tensor::randn(&[2, 10], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
    let images = Module::forward(&g, &z).unwrap();
    assert_eq!(Module::forward(&d, &images).unwrap().shape(), &[2]);
    let e = d.forward(&images, Some(&[0, 1])).unwrap_err().to_string();
    assert!(e.contains("unconditional"), "{e}");
}

#[test]
fn the_projection_head_is_linear_plus_the_labels_embedding_dotted_with_the_features() {
    // A tiny D (32x32, ch 1: C = 2 features, 2 classes) with rank-one weights, whose spectral
    // norm one power iteration finds exactly: linear w = [3, 4], bias 0.5 (σ = 5); embedding
    // a bᵀ with a = [1, 2], b = [3, 4] (σ = |a| |b| = 5 √5). For h = [1, -2]:
    // f(h) = (3 - 8) / 5 + 0.5 = -0.5; embed(y) . h = a_y (3 - 8) / (5 √5) = -a_y / √5.
    let mut rng = Rng::new(5);
    let cfg = BigGanConfig {
        ch: 1,
        num_classes: Some(2),
        attention_resolution: None,
        ..small(32, 1)
    };
    let d = BigGanDiscriminator::new(cfg, DType::F64, &mut rng).unwrap();
    let set = |t: &Tensor, values: Vec<f64>| {
        let shape = t.shape().to_vec();
        t.assign(&Tensor::from_vec(values, &shape, Device::Cpu).unwrap())
            .unwrap();
    };
    set(&d.linear.inner.weight, vec![3.0, 4.0]);
    set(d.linear.inner.bias.as_ref().unwrap(), vec![0.5]);
    let embed = d.embed.as_ref().unwrap();
    set(&embed.inner.weight, vec![3.0, 4.0, 6.0, 8.0]);
    let h = Tensor::from_vec(vec![1.0, -2.0, 1.0, -2.0], &[2, 2], Device::Cpu).unwrap();
    let got = d.head(&h, Some(&[1, 0])).unwrap().to_vec::<f64>().unwrap();
    let root5 = 5f64.sqrt();
    let want = [-0.5 - 2.0 / root5, -0.5 - 1.0 / root5];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "got {got:?}, want {want:?}");
    }
}

#[test]
fn bad_inputs_and_configurations_are_errors_that_say_what_is_wrong() {
    let mut rng = Rng::new(6);
    let cfg = small(32, 3);
    let g = BigGanGenerator::new(cfg, DType::F32, &mut rng).unwrap();
    let d = BigGanDiscriminator::new(cfg, DType::F32, &mut rng).unwrap();
    let z = Tensor::zeros(&[2, 28], DType::F32, Device::Cpu).unwrap();
    let message = |r: saddle_nn::engine::Result<Tensor>| r.unwrap_err().to_string();
    let e = message(g.forward(&z, Some(&[0, 5])));
    assert!(e.contains("label 5") && e.contains("5"), "{e}");
    let e = message(g.forward(&z, None));
    assert!(e.contains("needs 2 labels"), "{e}");
    let e = message(g.forward(
        &Tensor::zeros(&[2, 27], DType::F32, Device::Cpu).unwrap(),
        None,
    ));
    assert!(e.contains("[2, 27]") && e.contains("[N, 28]"), "{e}");
    let x = Tensor::zeros(&[2, 1, 32, 32], DType::F32, Device::Cpu).unwrap();
    let e = message(d.forward(&x, Some(&[0, 1])));
    assert!(
        e.contains("[2, 1, 32, 32]") && e.contains("[N, 3, 32, 32]"),
        "{e}"
    );
    let odd_z = BigGanConfig { z_dim: 30, ..cfg };
    let e = BigGanGenerator::new(odd_z, DType::F32, &mut rng)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("z_dim 30") && e.contains("4 equal chunks"),
        "{e}"
    );
    let far = BigGanConfig {
        attention_resolution: Some(32),
        ..cfg
    };
    let e = far.discriminator_parameters().unwrap_err().to_string();
    assert!(
        e.contains("attention at 32x32") && e.contains("no D block"),
        "{e}"
    );
    let e = BigGanConfig {
        resolution: 48,
        ..cfg
    }
    .generator_parameters()
    .unwrap_err()
    .to_string();
    assert!(e.contains("resolution 48"), "{e}");
}

// ---- The trainer ----

use saddle_gan::models::biggan_trainer::{
    d_hinge_loss, g_hinge_loss, BigGanTrainConfig, BigGanTrainer,
};
use saddle_gan::run::{
    grid_labels, train, uniform_shuffled_labels, BatchSource, BoxError, GanModel, LoopOptions,
    RunDir, StopFlag,
};
use saddle_nn::engine::no_grad;
use saddle_nn::Checkpoint;

/// The tiny model the trainer's tests use: 32x32 grey, ch 4, 10 classes, no attention, 2
/// standing-statistics batches of 4.
fn tiny(num_classes: Option<usize>) -> BigGanTrainConfig {
    BigGanTrainConfig {
        ema_start: 1,
        standing_batches: 2,
        standing_batch_size: 4,
        ..BigGanTrainConfig::new(BigGanConfig {
            resolution: 32,
            channels: 1,
            ch: 4,
            num_classes,
            z_dim: 4 * 5,
            shared_dim: 8,
            attention_resolution: None,
            spectral_norm_conditioning: true,
            init: WeightInit::Orthogonal,
        })
    }
}

/// A fixed batch of 4 "real" images in [-1, 1] and their labels.
fn real_batch() -> (Tensor, Vec<usize>) {
    let v: Vec<f32> = (0..4 * 32 * 32)
        .map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0).clamp(-1.0, 1.0))
        .collect();
    (
        Tensor::from_vec(v, &[4, 1, 32, 32], Device::Cpu).unwrap(),
        vec![3, 7, 0, 9],
    )
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}

#[test]
fn hinge_losses_match_hand_computed_values() {
    let t = |v: &[f32]| Tensor::from_vec(v.to_vec(), &[v.len()], Device::Cpu).unwrap();
    let real = t(&[2.0, 0.5, -1.0]);
    let fake = t(&[-2.0, 0.0, 1.5]);
    // relu(1 - real) = 0, 0.5, 2 -> 5/6; relu(1 + fake) = 0, 1, 2.5 -> 7/6.
    let d = d_hinge_loss(&real, &fake).unwrap().to_scalar().unwrap();
    assert!((d - 2.0).abs() < 1e-6, "{d}");
    // -mean(-2, 0, 1.5) = 1/6.
    let g = g_hinge_loss(&fake).unwrap().to_scalar().unwrap();
    assert!((g - 1.0 / 6.0).abs() < 1e-6, "{g}");
}

/// Adam with β1 = 0 after `t` steps of the gradients `gs` (oldest first): the update is
/// `-lr · g_t / (sqrt(v_t / (1 - β2^t)) + eps)` with `v_t` the β2-average of the squares.
fn adam_beta1_zero(p: &[f64], gs: &[&[f64]], lr: f64, beta2: f64) -> Vec<f64> {
    let t = gs.len() as i32;
    (0..p.len())
        .map(|i| {
            let v = gs
                .iter()
                .fold(0.0, |v, g| beta2 * v + (1.0 - beta2) * g[i] * g[i]);
            let v_hat = v / (1.0 - beta2.powi(t));
            p[i] - lr * gs[gs.len() - 1][i] / (v_hat.sqrt() + 1e-8)
        })
        .collect()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], slack: &dyn Fn(usize) -> f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-6 + 1e-5 * w.abs() + slack(i),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

/// Every parameter and buffer of two modules of one structure, name by name: equal, or close
/// with `slack(name, index)` more room.
fn assert_modules_close(
    what: &str,
    a: &dyn Module,
    b: &dyn Module,
    exact: bool,
    slack: &dyn Fn(&str, usize) -> f64,
) {
    let (pa, pb) = (
        [a.named_parameters(), a.named_buffers()].concat(),
        [b.named_parameters(), b.named_buffers()].concat(),
    );
    assert_eq!(pa.len(), pb.len(), "{what}");
    for ((na, ta), (nb, tb)) in pa.iter().zip(&pb) {
        assert_eq!(na, nb);
        if exact {
            assert_eq!(values(ta), values(tb), "{what} {na}");
        } else {
            assert_close(&format!("{what} {na}"), &values(ta), &values(tb), &|i| {
                slack(na, i)
            });
        }
    }
}

/// `train_step`'s two D updates (each on its half of the batch, with its own fakes) and G's
/// update, rebuilt from the public forward passes, the hinge losses written out and Adam's
/// β1 = 0 update by formula, on a twin trainer drawing the same fakes.
#[test]
fn one_training_step_matches_the_step_built_by_hand() {
    let cfg = tiny(Some(10));
    let (real, labels) = real_batch();
    let mut stepped = BigGanTrainer::new(cfg, 5).unwrap();
    let mut hand = BigGanTrainer::new(cfg, 5).unwrap();
    let stats = GanModel::train_step(&mut stepped, &real, Some(&labels), &mut Rng::new(0))
        .unwrap()
        .into_iter()
        .map(|(name, t)| (name, t.to_scalar().unwrap()))
        .collect::<Vec<_>>();
    assert_eq!(stepped.steps(), 1);

    let t = &mut hand;
    let draws: Vec<_> = (0..3).map(|_| t.draw_fakes(2).unwrap()).collect();
    let d_params = t.d.named_parameters();
    let mut d_grads: Vec<Vec<Vec<f64>>> = vec![Vec::new(); d_params.len()];
    let mut d_loss = 0.0;
    for (i, draw) in draws[..2].iter().enumerate() {
        let fake_labels = draw.labels.as_deref();
        assert_eq!(fake_labels.map(<[usize]>::len), Some(2));
        let fake = no_grad(|| t.g.forward(&draw.z, fake_labels)).unwrap();
        let x = real.narrow(0, 2 * i, 2).unwrap();
        let on_real = t.d.forward(&x, Some(&labels[2 * i..2 * i + 2])).unwrap();
        let on_fake = t.d.forward(&fake, fake_labels).unwrap();
        let loss = on_real
            .neg()
            .unwrap()
            .add_scalar(1.0)
            .unwrap()
            .relu()
            .unwrap()
            .mean_all()
            .unwrap()
            .add(
                &on_fake
                    .add_scalar(1.0)
                    .unwrap()
                    .relu()
                    .unwrap()
                    .mean_all()
                    .unwrap(),
            )
            .unwrap();
        d_loss = loss.to_scalar().unwrap();
        let grads = loss.backward().unwrap();
        for ((_, p), history) in d_params.iter().zip(&mut d_grads) {
            history.push(values(grads.get(p).unwrap()));
            let gs: Vec<&[f64]> = history.iter().map(Vec::as_slice).collect();
            let next = adam_beta1_zero(&values(p), &gs, cfg.lr_d, cfg.beta2);
            let next = Tensor::from_vec(next, p.shape(), Device::Cpu).unwrap();
            no_grad(|| p.assign(&next.to_dtype(DType::F32)?)).unwrap();
        }
    }
    let g_draw = &draws[2];
    let fake = t.g.forward(&g_draw.z, g_draw.labels.as_deref()).unwrap();
    let g_loss =
        t.d.forward(&fake, g_draw.labels.as_deref())
            .unwrap()
            .mean_all()
            .unwrap()
            .neg()
            .unwrap();
    let grads = g_loss.backward().unwrap();
    let mut g_grads = std::collections::HashMap::new();
    for (name, p) in t.g.named_parameters() {
        let g = values(grads.get(&p).unwrap());
        g_grads.insert(name, g.clone());
        let next = adam_beta1_zero(&values(&p), &[&g], cfg.lr_g, cfg.beta2);
        let next = Tensor::from_vec(next, p.shape(), Device::Cpu).unwrap();
        no_grad(|| p.assign(&next.to_dtype(DType::F32)?)).unwrap();
    }

    let logged = |name| stats.iter().find(|(n, _)| *n == name).unwrap().1;
    assert!(
        (logged("d_loss") - d_loss).abs() < 1e-6,
        "{stats:?} vs {d_loss}"
    );
    let g_loss = g_loss.to_scalar().unwrap();
    assert!(
        (logged("g_loss") - g_loss).abs() < 1e-6,
        "{stats:?} vs {g_loss}"
    );
    // G and D (weights, batch-norm statistics, spectral-norm vectors) as updated by hand; D
    // untouched by G's update. The biases of G's block convolutions (conv1, conv2, shortcut: each
    // feeds a batch norm, in its block, the next one or the final one, which subtracts them
    // out) have a true gradient of 0: theirs is rounding noise (|g| ~ 1e-9, its
    // value depends on the order gradients are summed), which Adam's g / (|g| + 1e-8) turns
    // into any step of size up to lr either way: there the two may differ by up to 2 lr.
    let noise = |name: &str, i: usize| match g_grads.get(name) {
        Some(g) if g[i].abs() < 1e-6 => 2.0 * cfg.lr_g,
        _ => 0.0,
    };
    assert_modules_close("G", &stepped.g, &hand.g, false, &noise);
    assert_modules_close("D", &stepped.d, &hand.d, false, &|_, _| 0.0);
    // The average starts at step 1 (tiny's ema_start): decay · initial G + (1 - decay) · G.
    let initial = BigGanTrainer::new(cfg, 5).unwrap();
    let live = stepped.g.named_parameters();
    let start = initial.g.named_parameters();
    let shadow = stepped.ema.named_tensors();
    for ((name, p), (_, p0)) in live.iter().zip(&start) {
        let (_, avg) = shadow.iter().find(|(n, _)| n == name).unwrap();
        let want: Vec<f64> = values(p0)
            .iter()
            .zip(values(p))
            .map(|(a, b)| cfg.ema_decay * a + (1.0 - cfg.ema_decay) * b)
            .collect();
        assert_close(&format!("EMA {name}"), &values(avg), &want, &|_| 0.0);
    }
}

#[test]
fn a_run_resumed_from_a_checkpoint_file_continues_bit_identically() {
    let cfg = tiny(Some(10));
    let (real, labels) = real_batch();
    let mut a = BigGanTrainer::new(cfg, 8).unwrap();
    for _ in 0..2 {
        a.step(&real, Some(&labels)).unwrap();
    }
    let dir = std::env::temp_dir().join(format!("saddle-biggan-test-{}", std::process::id()));
    let path = dir.join("ck.safetensors");
    a.checkpoint().save(&path).unwrap();
    let mut b = BigGanTrainer::new(cfg, 99).unwrap();
    b.restore(&Checkpoint::load(&path).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(b.steps(), 2);
    let (sa, sb) = (
        a.step(&real, Some(&labels)).unwrap(),
        b.step(&real, Some(&labels)).unwrap(),
    );
    assert_eq!(sa, sb);
    assert_modules_close("G", &a.g, &b.g, true, &|_, _| 0.0);
    assert_modules_close("D", &a.d, &b.d, true, &|_, _| 0.0);
    let (ea, eb) = (a.ema.named_tensors(), b.ema.named_tensors());
    for ((na, ta), (_, tb)) in ea.iter().zip(&eb) {
        assert_eq!(values(ta), values(tb), "EMA {na}");
    }
    // Samples (from the average, after standing statistics) and the unlabelled sampling's
    // label draws agree too.
    let z = GanModel::sample_latent(&a, 3, &mut Rng::new(1)).unwrap();
    assert_eq!(
        values(&a.generate(&z).unwrap()),
        values(&b.generate(&z).unwrap())
    );
    // Another architecture's checkpoint is refused, naming a tensor.
    let mut narrow = BigGanTrainer::new(tiny(Some(9)), 0).unwrap();
    let err = narrow.restore(&a.checkpoint()).unwrap_err().to_string();
    assert!(err.contains("shared.weight"), "{err}");
}

#[test]
fn labelled_sampling_yields_one_image_per_label_and_unconditional_models_refuse_labels() {
    let mut cond = BigGanTrainer::new(tiny(Some(10)), 1).unwrap();
    assert_eq!(cond.num_classes(), Some(10));
    let z = cond.sample_latent(5, &mut Rng::new(2)).unwrap();
    let images = cond.generate_labelled(&z, Some(&[0, 9, 9, 4, 1])).unwrap();
    assert_eq!(images.shape(), &[5, 1, 32, 32]);
    assert!(values(&images).iter().all(|v| v.abs() <= 1.0));
    // Each image depends on its own label only (eval mode): relabelling one changes only it.
    let other = cond.generate_labelled(&z, Some(&[0, 9, 2, 4, 1])).unwrap();
    let per = 32 * 32;
    let (a, b) = (values(&images), values(&other));
    assert_eq!(a[..2 * per], b[..2 * per]);
    assert_ne!(a[2 * per..3 * per], b[2 * per..3 * per]);
    assert_eq!(a[3 * per..], b[3 * per..]);
    let err = cond
        .generate_labelled(&z, Some(&[0, 10, 1, 1, 1]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("label 10"), "{err}");
    let err = cond
        .generate_labelled(&z, Some(&[0, 1]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("2 labels for a batch of 5"), "{err}");

    // Sampling (the loop's grids between steps) leaves training as it was, and samples are
    // the same until the next update.
    let mut twin = BigGanTrainer::new(tiny(Some(10)), 1).unwrap();
    let (real, labels) = real_batch();
    let again = cond.generate_labelled(&z, Some(&[0, 9, 9, 4, 1])).unwrap();
    assert_eq!(values(&again), values(&images));
    assert_eq!(
        cond.step(&real, Some(&labels)).unwrap(),
        twin.step(&real, Some(&labels)).unwrap()
    );
    let stepped = cond.generate_labelled(&z, Some(&[0, 9, 9, 4, 1])).unwrap();
    assert_ne!(values(&stepped), values(&images));

    // Unconditional: trains without labels (and ignores the data's), samples, refuses labels.
    let mut uncond = BigGanTrainer::new(tiny(None), 1).unwrap();
    assert_eq!(uncond.num_classes(), None);
    assert!(uncond.step(&real, None).unwrap().is_finite());
    assert!(uncond.step(&real, Some(&labels)).unwrap().is_finite());
    assert_eq!(uncond.generate(&z).unwrap().shape(), &[5, 1, 32, 32]);
    let err = uncond
        .generate_labelled(&z, Some(&[1; 5]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unconditional"), "{err}");
    // A conditional one needs labelled batches that split into its D steps.
    let err = cond.step(&real, None).unwrap_err().to_string();
    assert!(err.contains("labelled batches"), "{err}");
    let err = cond
        .step(&real, Some(&labels[..3]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("3 labels for a batch of 4"), "{err}");
    let three = real.narrow(0, 0, 3).unwrap();
    let err = cond
        .step(&three, Some(&labels[..3]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("3 does not split into 2"), "{err}");

    // The trait's default for models without classes: plain generate, labels refused by name.
    use saddle_gan::models::dcgan::{DcganConfig, DcganTrainer};
    let dc_cfg = DcganConfig {
        nz: 4,
        ngf: 2,
        ndf: 2,
        ..DcganConfig::digits16()
    };
    let mut dcgan = DcganTrainer::new(dc_cfg, &mut Rng::new(0)).unwrap();
    let z = dcgan.sample_latent(2, &mut Rng::new(0)).unwrap();
    assert_eq!(dcgan.num_classes(), None);
    assert_eq!(
        dcgan.generate_labelled(&z, None).unwrap().shape(),
        &[2, 1, 16, 16]
    );
    let err = dcgan
        .generate_labelled(&z, Some(&[0, 1]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("DcganTrainer is unconditional"), "{err}");
}

#[test]
fn uniform_shuffled_labels_are_balanced_seeded_and_not_sorted() {
    for (n, k) in [(100, 10), (103, 10), (7, 10), (64, 3)] {
        let labels = uniform_shuffled_labels(n, k, &mut Rng::new(4));
        assert_eq!(labels.len(), n);
        let mut counts = vec![0usize; k];
        for &l in &labels {
            counts[l] += 1;
        }
        let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(hi - lo <= 1, "{n} over {k}: {counts:?}");
        assert_eq!(labels, uniform_shuffled_labels(n, k, &mut Rng::new(4)));
        assert_ne!(labels, uniform_shuffled_labels(n, k, &mut Rng::new(5)));
        let mut sorted = labels.clone();
        sorted.sort_unstable();
        assert_ne!(labels, sorted, "{n} over {k}");
    }
    // Rows of `per_row` images, one class each, as many as classes or as fit.
    assert_eq!(grid_labels(6, 2, 10), [0, 0, 1, 1, 2, 2]);
    assert_eq!(
        grid_labels(64, 8, 3),
        [vec![0; 8], vec![1; 8], vec![2; 8]].concat()
    );
    assert_eq!(grid_labels(5, 2, 10), [0, 0, 1, 1, 2]);
}

/// A labelled batch source handing out the same batch.
struct Fixed(Tensor, Vec<usize>);

impl BatchSource for Fixed {
    fn next_batch(&mut self) -> Result<(Tensor, Option<Vec<usize>>), BoxError> {
        Ok((self.0.clone(), Some(self.1.clone())))
    }
    fn position(&self) -> String {
        "0".into()
    }
    fn set_position(&mut self, _: &str) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The BigGAN trainer, recording the labels each grid is drawn with.
struct Recording(BigGanTrainer, Vec<Option<Vec<usize>>>);

impl GanModel for Recording {
    fn train_step(
        &mut self,
        real: &Tensor,
        labels: Option<&[usize]>,
        rng: &mut Rng,
    ) -> Result<Vec<(&'static str, Tensor)>, BoxError> {
        self.0.train_step(real, labels, rng)
    }
    fn sample_latent(&self, n: usize, rng: &mut Rng) -> Result<Tensor, BoxError> {
        self.0.sample_latent(n, rng)
    }
    fn generate(&mut self, z: &Tensor) -> Result<Tensor, BoxError> {
        self.1.push(None);
        self.0.generate(z)
    }
    fn num_classes(&self) -> Option<usize> {
        self.0.num_classes()
    }
    fn generate_labelled(
        &mut self,
        z: &Tensor,
        labels: Option<&[usize]>,
    ) -> Result<Tensor, BoxError> {
        self.1.push(labels.map(<[usize]>::to_vec));
        self.0.generate_labelled(z, labels)
    }
    fn value_range(&self) -> (f32, f32) {
        self.0.value_range()
    }
    fn checkpoint(&self) -> Checkpoint {
        self.0.checkpoint()
    }
    fn restore(&mut self, ck: &Checkpoint) -> Result<(), saddle_nn::CheckpointError> {
        self.0.restore(ck)
    }
}

#[test]
fn the_training_loop_draws_a_conditional_models_grid_one_row_per_class() {
    let dir = std::env::temp_dir().join(format!("saddle-biggan-loop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = serde_json::json!({"model": "biggan-test"});
    let mut run = RunDir::create(&dir, &config).unwrap();
    let (real, labels) = real_batch();
    let mut model = Recording(BigGanTrainer::new(tiny(Some(10)), 2).unwrap(), Vec::new());
    let opts = LoopOptions {
        steps: 1,
        log_every: 1,
        sample_every: 1,
        checkpoint_every: 1,
        // 14 rows of 3 would fit; the 10 classes take the first 10.
        grid_count: 40,
        grid_rows: 3,
        grid_upscale: 1,
        seed: 1,
        title: "test".into(),
        resume_changes: Default::default(),
    };
    train(
        &mut model,
        &mut Fixed(real, labels),
        &mut run,
        &opts,
        &config,
        None,
        false,
        &StopFlag::new(),
        &mut |_| {},
    )
    .unwrap();
    let want: Vec<usize> = (0..10).flat_map(|c| [c; 3]).collect();
    // The grids of step 0 and step 1, with the same labels.
    assert_eq!(model.1, [Some(want.clone()), Some(want)]);
    let grid = image::open(run.samples_path(1)).unwrap();
    // 3 columns and 10 rows of 32-pixel cells with 1-pixel lines.
    assert_eq!((grid.width(), grid.height()), (3 * 33 + 1, 10 * 33 + 1));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- S3GAN's rotation self-supervision in the trainer ----

use saddle_gan::models::rotation::{rotate_batch, rotation_loss};

/// 16 "real" images (a rotation quarter of 4 needs per-update batches of 16) and labels.
fn real_batch_16() -> (Tensor, Vec<usize>) {
    let v: Vec<f32> = (0..16 * 32 * 32)
        .map(|i| ((i * 53 % 97) as f32 / 48.0 - 1.0).clamp(-1.0, 1.0))
        .collect();
    let x = Tensor::from_vec(v, &[16, 1, 32, 32], Device::Cpu).unwrap();
    (x, (0..16).map(|i| i % 10).collect())
}

/// D's hinge logits and the rotation head's loss for `x`, built from the public parts in the
/// order the trainer runs them (one D pass over the batch and its rotated quarter).
fn by_hand(t: &BigGanTrainer, x: &Tensor, labels: &[usize]) -> (Tensor, Tensor) {
    let batch = rotate_batch(x, 4).unwrap();
    let h = t.d.features(&batch.images).unwrap();
    let logits =
        t.d.head(&batch.originals_of(&h).unwrap(), Some(labels))
            .unwrap();
    let head = t.rotation.as_ref().expect("rotation on");
    let rot = head.forward(&batch.rotation_rows_of(&h).unwrap()).unwrap();
    (logits, rotation_loss(&rot, &batch.targets).unwrap())
}

/// With rotation on, D's loss is the hinge plus 1.0 x the rotation loss on the reals, and G's
/// the hinge plus 0.2 x the rotation loss on the fakes (checked against a twin trainer, same
/// seed and draws). Fails if the term is missing, mis-weighted (1.0 for G, 0.2 for D) or taken
/// on the wrong batch; and a resume restores the head and its optimiser state bit-identically.
#[test]
fn rotation_self_supervision_adds_the_weighted_rotation_losses() {
    let cfg = BigGanTrainConfig {
        d_steps: 1,
        rotation: true,
        ..tiny(Some(10))
    };
    let (real, labels) = real_batch_16();
    let mut a = BigGanTrainer::new(cfg, 5).unwrap();
    let twin = BigGanTrainer::new(cfg, 5).unwrap();
    let draws = [a.draw_fakes(16).unwrap(), a.draw_fakes(16).unwrap()];
    // D's step.
    let fake = no_grad(|| twin.g.forward(&draws[0].z, draws[0].labels.as_deref())).unwrap();
    let (real_logits, real_rot) = by_hand(&twin, &real, &labels);
    let fake_logits = twin.d.forward(&fake, draws[0].labels.as_deref()).unwrap();
    let want_d = d_hinge_loss(&real_logits, &fake_logits)
        .unwrap()
        .to_vec_f64()
        .unwrap()[0]
        + real_rot.to_vec_f64().unwrap()[0];
    let got_d = a.d_step(&real, Some(&labels), &draws[0]).unwrap();
    assert!(
        (got_d.loss.to_vec_f64().unwrap()[0] - want_d).abs() < 1e-5,
        "{want_d}"
    );
    assert!(real_rot.to_vec_f64().unwrap()[0] > 0.1);
    // G's step, after the same D step on the twin.
    let mut twin2 = BigGanTrainer::new(cfg, 5).unwrap();
    twin2.d_step(&real, Some(&labels), &draws[0]).unwrap();
    let fake = twin2
        .g
        .forward(&draws[1].z, draws[1].labels.as_deref())
        .unwrap();
    let (fake_logits, fake_rot) = by_hand(&twin2, &fake, draws[1].labels.as_deref().unwrap());
    let want_g = g_hinge_loss(&fake_logits).unwrap().to_vec_f64().unwrap()[0]
        + 0.2 * fake_rot.to_vec_f64().unwrap()[0];
    let got_g = a.g_step(&draws[1]).unwrap().to_vec_f64().unwrap()[0];
    assert!((got_g - want_g).abs() < 1e-5, "{got_g} vs {want_g}");

    // The head is saved with D: a restored trainer continues bit-identically.
    let mut b = BigGanTrainer::new(cfg, 77).unwrap();
    b.restore(&a.checkpoint()).unwrap();
    let head = |t: &BigGanTrainer| values(&t.rotation.as_ref().unwrap().named_parameters()[0].1);
    assert_eq!(head(&a), head(&b), "head after restore");
    let (sa, sb) = (
        a.step(&real, Some(&labels)).unwrap(),
        b.step(&real, Some(&labels)).unwrap(),
    );
    assert_modules_close("D", &a.d, &b.d, true, &|_, _| 0.0);
    assert_eq!(head(&a), head(&b), "head after step");
    assert_eq!(sa, sb);

    // Batches whose quarter cannot be split 4 ways are refused with the reason.
    let (small, small_labels) = real_batch();
    assert!(a.step(&small, Some(&small_labels)).is_err());
}

// ---- S2GAN-CO's co-training predictor ----

use saddle_gan::models::biggan_trainer::{co_training_labels, UNLABELLED};

/// Mean cross-entropy of the `rows` of row-major `logits` (`classes` wide) against `labels`,
/// in f64.
fn cross_entropy_by_hand(logits: &[f64], classes: usize, rows: &[(usize, usize)]) -> f64 {
    let total: f64 = rows
        .iter()
        .map(|&(r, label)| {
            let row = &logits[r * classes..(r + 1) * classes];
            let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
            lse - row[label]
        })
        .sum();
    total / rows.len() as f64
}

/// Co-training: the reals whose label is unknown get the predictor's argmax for D's
/// projection, the known ones keep theirs, and D's loss adds the predictor's cross-entropy on
/// the known rows only (checked against a twin trainer and a hand-computed cross-entropy).
/// Fails if unknown rows are scored with the sentinel, known labels are overwritten, the
/// cross-entropy covers every row, or the predictor is not saved with D.
#[test]
fn co_training_labels_the_unknown_reals_by_its_predictor_and_learns_from_the_known() {
    let cfg = BigGanTrainConfig {
        d_steps: 1,
        co_training: true,
        ..tiny(Some(10))
    };
    let (real, mut labels) = real_batch();
    labels[1] = UNLABELLED;
    labels[3] = UNLABELLED;
    let mut a = BigGanTrainer::new(cfg, 5).unwrap();
    let twin = BigGanTrainer::new(cfg, 5).unwrap();
    let draw = a.draw_fakes(4).unwrap();

    let h = twin.d.features(&real).unwrap();
    let predictor = twin.predictor.as_ref().expect("co-training on");
    let logits = values(&predictor.forward(&h).unwrap());
    let argmax = |r: usize| {
        let row = &logits[r * 10..(r + 1) * 10];
        (0..10).fold(0, |best, j| if row[j] > row[best] { j } else { best })
    };
    let resolved = vec![3, argmax(1), 0, argmax(3)];
    let (got_labels, class_loss) = co_training_labels(predictor, &h, &labels).unwrap();
    assert_eq!(got_labels, resolved);
    let want_ce = cross_entropy_by_hand(&logits, 10, &[(0, 3), (2, 0)]);
    let got_ce = values(&class_loss.unwrap())[0];
    assert!((got_ce - want_ce).abs() < 1e-5, "{got_ce} vs {want_ce}");

    let fake = no_grad(|| twin.g.forward(&draw.z, draw.labels.as_deref())).unwrap();
    let real_logits = twin.d.head(&h, Some(&resolved)).unwrap();
    let fake_logits = twin.d.forward(&fake, draw.labels.as_deref()).unwrap();
    let want_d = values(&d_hinge_loss(&real_logits, &fake_logits).unwrap())[0] + want_ce;
    let got_d = values(&a.d_step(&real, Some(&labels), &draw).unwrap().loss)[0];
    assert!((got_d - want_d).abs() < 1e-5, "{got_d} vs {want_d}");

    // Every label known: the cross-entropy covers all rows; none known: no class loss.
    let known = [1, 2, 3, 4];
    let (kept, all_ce) = co_training_labels(predictor, &h, &known).unwrap();
    assert_eq!(kept, known);
    let want_all = cross_entropy_by_hand(&logits, 10, &[(0, 1), (1, 2), (2, 3), (3, 4)]);
    assert!((values(&all_ce.unwrap())[0] - want_all).abs() < 1e-5);
    let (guessed, none) = co_training_labels(predictor, &h, &[UNLABELLED; 4]).unwrap();
    assert_eq!(guessed, (0..4).map(argmax).collect::<Vec<_>>());
    assert!(none.is_none());
    assert!(co_training_labels(predictor, &h, &[1, 2]).is_err());

    // The predictor is saved with D: a restored trainer continues bit-identically.
    let mut b = BigGanTrainer::new(cfg, 77).unwrap();
    b.restore(&a.checkpoint()).unwrap();
    let weights =
        |t: &BigGanTrainer| values(&t.predictor.as_ref().unwrap().named_parameters()[0].1);
    assert_eq!(weights(&a), weights(&b), "predictor after restore");
    let (sa, sb) = (
        a.step(&real, Some(&labels)).unwrap(),
        b.step(&real, Some(&labels)).unwrap(),
    );
    assert_eq!(sa, sb);
    assert_eq!(weights(&a), weights(&b), "predictor after a step");
    assert_modules_close("D", &a.d, &b.d, true, &|_, _| 0.0);

    // Co-training needs classes, and the sentinel is refused where no predictor resolves it.
    assert!(BigGanTrainer::new(
        BigGanTrainConfig {
            co_training: true,
            ..tiny(None)
        },
        0
    )
    .is_err());
    let mut plain = BigGanTrainer::new(tiny(Some(10)), 0).unwrap();
    let batch = Tensor::concat(&[&real, &real], 0).unwrap();
    let doubled: Vec<usize> = labels.iter().chain(&labels).copied().collect();
    assert!(plain.step(&batch, Some(&doubled)).is_err());
}
