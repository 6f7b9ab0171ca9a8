//! DCGAN models: shapes, parameter names and counts, a training step that changes the weights
//! and lowers D's loss on a fixed batch, and one step of both players against losses built by
//! hand.

mod common;
mod one_step;

use saddle_gan::models::dcgan::{discriminator, generator, DcganConfig, DcganTrainer};
use saddle_nn::engine::{Conv2dParams, ConvTranspose2dParams, DType, Device, Result, Rng, Tensor};
use saddle_nn::{
    ConditionalBatchNorm, Conv2d, Module, ModuleExt, SelfAttention, Sequential, SpectralNorm,
};

/// G and D of `cfg`, after checking that G turns `images[0]` noise vectors into images of shape
/// `images` and D those into one logit each.
fn networks_with_shapes(
    cfg: DcganConfig,
    images: [usize; 4],
    rng: &mut Rng,
) -> (Sequential, Sequential) {
    let g = generator(cfg, rng).unwrap();
    let d = discriminator(cfg, rng).unwrap();
    let n = images[0];
    let z = Tensor::randn(&[n, cfg.nz, 1, 1], 0.0, 1.0, DType::F32, Device::Cpu, rng).unwrap();
    let img = g.forward(&z).unwrap();
    assert_eq!(img.shape(), &images);
    assert_eq!(d.forward(&img).unwrap().shape(), &[n, 1, 1, 1]);
    (g, d)
}

#[test]
fn shapes_and_parameter_counts() {
    let mut rng = Rng::new(0);
    for cfg in [
        DcganConfig::mnist32(),
        DcganConfig {
            ngf: 8,
            ndf: 8,
            ..DcganConfig::rgb64()
        },
    ] {
        let images = [2, cfg.channels, cfg.image_size, cfg.image_size];
        networks_with_shapes(cfg, images, &mut rng);
    }
    // PyTorch's reference G at 32x32x1 (ngf 64): convT 100->256, BN, 256->128, BN, 128->64, BN, 64->1.
    let g = generator(DcganConfig::mnist32(), &mut rng).unwrap();
    let want =
        100 * 256 * 16 + 2 * 256 + 256 * 128 * 16 + 2 * 128 + 128 * 64 * 16 + 2 * 64 + 64 * 16;
    assert_eq!(g.num_parameters(), want);
    assert_eq!(g.named_parameters()[0].0, "0.weight");
}

#[test]
fn training_steps_lower_the_discriminator_loss_on_a_fixed_batch() {
    let mut rng = Rng::new(1);
    let cfg = DcganConfig {
        nz: 16,
        ngf: 8,
        ndf: 8,
        channels: 1,
        image_size: 32,
        ..DcganConfig::mnist32()
    };
    let mut trainer = DcganTrainer::new(cfg, &mut rng).unwrap();
    let real = Tensor::rand(
        &[8, 1, 32, 32],
        -1.0,
        1.0,
        DType::F32,
        Device::Cpu,
        &mut rng,
    )
    .unwrap();
    let before = trainer.g.named_parameters()[0].1.to_vec::<f32>().unwrap();
    let (first_d, _) = trainer.step(&real, &mut rng).unwrap();
    let mut last_d = first_d;
    for _ in 0..5 {
        let (d, g) = trainer.step(&real, &mut rng).unwrap();
        assert!(d.is_finite() && g.is_finite());
        last_d = d;
    }
    assert_ne!(
        before,
        trainer.g.named_parameters()[0].1.to_vec::<f32>().unwrap()
    );
    assert!(last_d < first_d, "D loss {first_d} -> {last_d}");
    // G's step freezes D only for its own backward pass.
    for (name, p) in trainer.d.named_parameters() {
        assert!(p.requires_grad(), "{name} left frozen");
    }
}

/// One step against both losses rebuilt by hand from the same batch and noise (a twin trainer
/// from the same seed): D's gradient from `BCE(D(x), 1) + BCE(D(G(z)), 0)`, real and generated
/// images through D separately (each batch normalised by its own statistics), then G's from the
/// non-saturating `BCE(D'(G(z)), 1)` through D' = D after its update, on the same samples. Both
/// Adam first steps are checked element by element against these gradients.
///
/// Fails on (each tried by a deliberate change to `DcganTrainer::step_unread`): G trained
/// toward the label 0 (G's gradient flips sign), G's loss taken through the D of before the
/// update, D's labels swapped.
#[test]
fn one_step_moves_both_players_by_the_hand_built_losses() {
    let cfg = DcganConfig {
        nz: 8,
        ngf: 8,
        ndf: 8,
        ..DcganConfig::digits16()
    };
    let mut data = Rng::new(21);
    let real = Tensor::rand(
        &[8, 1, 16, 16],
        -1.0,
        1.0,
        DType::F32,
        Device::Cpu,
        &mut data,
    )
    .unwrap();
    let noise = Rng::new(22);
    let mut stepped = DcganTrainer::new(cfg, &mut Rng::new(20)).unwrap();
    let (d_loss, g_loss) = stepped.step(&real, &mut noise.clone()).unwrap();
    let twin = DcganTrainer::new(cfg, &mut Rng::new(20)).unwrap();

    let z = Tensor::randn(
        &[8, 8, 1, 1],
        0.0,
        1.0,
        DType::F32,
        Device::Cpu,
        &mut noise.clone(),
    )
    .unwrap();
    let fake = twin.g.forward(&z).unwrap();
    let ones = Tensor::ones(&[8, 1, 1, 1], DType::F32, Device::Cpu).unwrap();
    let zeros = Tensor::zeros(&[8, 1, 1, 1], DType::F32, Device::Cpu).unwrap();
    let bce =
        |logits: Tensor, target: &Tensor| logits.binary_cross_entropy_with_logits(target).unwrap();
    let hand_d = bce(twin.d.forward(&real).unwrap(), &ones)
        .add(&bce(twin.d.forward(&fake.detach()).unwrap(), &zeros))
        .unwrap();
    let d_grads = hand_d.backward().unwrap();
    // D' is the stepped trainer's D: G's update leaves it alone.
    let hand_g = bce(stepped.d.forward(&fake).unwrap(), &ones);
    let g_grads = hand_g.backward().unwrap();
    assert!(
        (d_loss - hand_d.to_scalar().unwrap()).abs() < 1e-6,
        "{d_loss}"
    );
    assert!(
        (g_loss - hand_g.to_scalar().unwrap()).abs() < 1e-6,
        "{g_loss}"
    );

    let ck = stepped.checkpoint();
    let state = |opt: &str| -> Vec<(String, Tensor)> {
        ck.names()
            .filter_map(|n| Some((n.strip_prefix(opt)?.to_string(), ck.tensor(n)?.clone())))
            .collect()
    };
    let adam = (cfg.lr, cfg.beta1);
    one_step::assert_adam_first_step("D", &twin.d, &stepped.d, &state("opt_d."), &d_grads, adam);
    one_step::assert_adam_first_step("G", &twin.g, &stepped.g, &state("opt_g."), &g_grads, adam);
}

#[test]
fn small_image_sizes_and_invalid_ones() {
    let mut rng = Rng::new(2);
    // 16x16 (the digits example): G 4x4x64 -> 8x8x32 -> 16x16x1, D mirrored.
    let cfg = DcganConfig::digits16();
    let (g, d) = networks_with_shapes(cfg, [3, 1, 16, 16], &mut rng);
    let want_g = 32 * 64 * 16 + 2 * 64 + 64 * 32 * 16 + 2 * 32 + 32 * 16;
    assert_eq!(g.num_parameters(), want_g);
    let want_d = 16 * 32 + 32 * 64 * 16 + 2 * 64 + 64 * 16;
    assert_eq!(d.num_parameters(), want_d);
    for size in [4, 12, 28, 48] {
        let bad = DcganConfig {
            image_size: size,
            ..cfg
        };
        assert!(generator(bad, &mut rng).is_err(), "size {size}");
        assert!(discriminator(bad, &mut rng).is_err(), "size {size}");
    }
}

/// The same DCGAN (same weights, same batches, same noise stream) trained for a few steps on the
/// CPU and on cuda:0 gives the same loss curve within 1e-3 relative (f32 kernels; the small
/// differences of summation order grow a little through the updates). Without a GPU the CPU half
/// runs (finite losses) and the comparison is skipped with the reason.
#[test]
fn small_gan_trains_to_the_same_loss_curve_on_both_devices() {
    const STEPS: usize = 6;
    common::assert_same_curve_on_both_devices("small GAN", 1e-3, |device| {
        let cfg = DcganConfig::digits16();
        let mut t = DcganTrainer::new(cfg, &mut Rng::new(11)).unwrap();
        t.to_device(device).unwrap();
        assert_eq!(t.device(), device);
        let mut data_rng = Rng::new(12);
        // A fresh generator stays on Philox block boundaries (one block per normal), where the
        // device's noise equals the CPU's.
        let mut noise_rng = Rng::new(13);
        (0..STEPS)
            .map(|_| {
                let real = Tensor::rand(
                    &[16, 1, 16, 16],
                    -1.0,
                    1.0,
                    DType::F32,
                    Device::Cpu,
                    &mut data_rng,
                )
                .unwrap();
                let (d, g) = t.step(&real, &mut noise_rng).unwrap();
                vec![("loss D", d), ("loss G", g)]
            })
            .collect()
    });
}

/// The six layers of DCGAN's 64×64 pair that issue 2 times on their own (k4 s2 p1): the
/// discriminator's convolutions (`true`, in → out channels at the input size) and the
/// generator's transposed convolutions (`false`, from the input size). Labels are shared with
/// the PyTorch rows that scripts/gpu-check.sh writes.
const DCGAN_LAYERS: [(bool, usize, usize, usize); 6] = [
    (true, 3, 64, 32),
    (true, 64, 128, 16),
    (true, 128, 256, 8),
    (false, 256, 128, 4),
    (false, 128, 64, 8),
    (false, 64, 3, 16),
];

fn dcgan_layer_label((conv, cin, cout, hw): (bool, usize, usize, usize), batch: usize) -> String {
    let op = if conv { "conv2d" } else { "conv_transpose2d" };
    format!("{op} {cin}->{cout} {hw}x{hw} b{batch} fwd+bwd")
}

/// One forward and backward of a DCGAN layer (`y = layer(x)`, gradients of `sum(y)` with
/// respect to `x` and the weight), returning `sum(dW)` so a caller can wait for the device.
fn dcgan_layer_step(x: &Tensor, w: &Tensor, conv: bool) -> Result<Tensor> {
    let y = if conv {
        x.conv2d(
            w,
            None,
            Conv2dParams::default().with_stride(2).with_padding(1),
        )?
    } else {
        let p = ConvTranspose2dParams::default()
            .with_stride(2)
            .with_padding(1);
        x.conv_transpose2d(w, None, p)?
    };
    let grads = y.sum_all()?.backward()?;
    let (gx, gw) = (grads.get(x), grads.get(w));
    match (gx, gw) {
        (Some(gx), Some(gw)) => gw.sum_all()?.add(&gx.sum_all()?),
        _ => Err(saddle_nn::engine::Error::Autograd(
            "DCGAN layer bench: missing a gradient".into(),
        )),
    }
}

/// Inputs and weight of one DCGAN layer on `device` (both require grad).
fn dcgan_layer_inputs(
    (conv, cin, cout, hw): (bool, usize, usize, usize),
    batch: usize,
    device: Device,
    rng: &mut Rng,
) -> (Tensor, Tensor) {
    let w_shape = if conv {
        [cout, cin, 4, 4]
    } else {
        [cin, cout, 4, 4]
    };
    let leaf = |shape: &[usize], std: f64, rng: &mut Rng| {
        Tensor::randn(shape, 0.0, std, DType::F32, device, rng)
            .unwrap()
            .with_requires_grad(true)
    };
    let x = leaf(&[batch, cin, hw, hw], 1.0, rng);
    (x, leaf(&w_shape, 0.02, rng))
}

/// A BigGAN generator up-block ending at `2·hw × 2·hw`, followed by BigGAN's self-attention at
/// that resolution: `h = conv3(relu(cbn2(conv3(up(relu(cbn1(x, y)))), y)))`, `x' = h +
/// conv1(up(x))`, `out = attention(x')`, every convolution spectrally normalised (one power
/// iteration per call, as in training) and the batch norms conditioned on `y`.
struct UpBlock {
    cbn1: ConditionalBatchNorm,
    cbn2: ConditionalBatchNorm,
    conv1: SpectralNorm<Conv2d>,
    conv2: SpectralNorm<Conv2d>,
    shortcut: SpectralNorm<Conv2d>,
    attention: SelfAttention,
}

impl UpBlock {
    fn new(cin: usize, cout: usize, cond: usize, rng: &mut Rng) -> Result<Self> {
        let mut conv = |i: usize, o: usize, k: usize| -> Result<SpectralNorm<Conv2d>> {
            let p = Conv2dParams::default().with_padding(k / 2);
            SpectralNorm::new(Conv2d::new(i, o, k, p, true, DType::F32, rng)?, rng)
        };
        let (conv1, conv2, shortcut) = (
            conv(cin, cout, 3)?,
            conv(cout, cout, 3)?,
            conv(cin, cout, 1)?,
        );
        let attention = SelfAttention::new(cout, DType::F32, rng)?;
        // BigGAN's gamma starts at 0; a non-zero one makes the benchmark's backward reach every
        // attention weight, as it does after the first steps of training.
        attention.gamma.assign(&Tensor::scalar(0.5f32))?;
        Ok(UpBlock {
            cbn1: ConditionalBatchNorm::new_2d(cin, cond, DType::F32, rng)?,
            cbn2: ConditionalBatchNorm::new_2d(cout, cond, DType::F32, rng)?,
            conv1,
            conv2,
            shortcut,
            attention,
        })
    }

    fn to_device(&self, device: Device) -> Result<()> {
        self.cbn1.to_device(device)?;
        self.cbn2.to_device(device)?;
        self.conv1.to_device(device)?;
        self.conv2.to_device(device)?;
        self.shortcut.to_device(device)?;
        self.attention.to_device(device)
    }

    fn forward(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let h = self
            .cbn1
            .forward_cond(x, y)?
            .relu()?
            .upsample_nearest2d(2)?;
        let h = self.conv1.forward(&h)?;
        let h = self
            .conv2
            .forward(&self.cbn2.forward_cond(&h, y)?.relu()?)?;
        let skip = self.shortcut.forward(&x.upsample_nearest2d(2)?)?;
        self.attention.forward(&h.add(&skip)?)
    }

    /// Forward and backward (of `sum(out)`) for `x` and `y`; returns the sum of the input
    /// gradient so a caller can wait for the device.
    fn step(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let grads = self.forward(x, y)?.sum_all()?.backward()?;
        grads
            .get(x)
            .ok_or_else(|| {
                saddle_nn::engine::Error::Autograd("up-block: no input gradient".into())
            })?
            .sum_all()
    }
}

#[cfg(feature = "cuda")]
/// Benchmark sizes of the BigGAN up-block (issue 4): 256 → 128 channels from 32×32 to 64×64,
/// attention over 4096 positions and 1024 pooled ones, a 128-wide condition, batch 32.
const UP_BLOCK: (usize, usize, usize, usize, usize) = (32, 256, 128, 32, 128);

#[test]
fn bench_bodies_run_and_give_finite_gradients_on_the_cpu() {
    // The GPU benchmark's layer and block code, at small sizes, so its bodies are known to run
    // before a GPU session spends time on them.
    let mut rng = Rng::new(4);
    for layer in DCGAN_LAYERS {
        let (conv, cin, cout, hw) = layer;
        let (x, w) = dcgan_layer_inputs(
            (conv, cin.min(8), cout.min(8), hw),
            2,
            Device::Cpu,
            &mut rng,
        );
        let s = dcgan_layer_step(&x, &w, conv).unwrap().to_scalar().unwrap();
        assert!(
            s.is_finite() && s != 0.0,
            "{}: {s}",
            dcgan_layer_label(layer, 2)
        );
    }
    let block = UpBlock::new(16, 8, 6, &mut rng).unwrap();
    block.to_device(Device::Cpu).unwrap();
    let x = Tensor::randn(&[2, 16, 4, 4], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)
        .unwrap()
        .with_requires_grad(true);
    let y = Tensor::randn(&[2, 6], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
    assert_eq!(block.forward(&x, &y).unwrap().shape(), &[2, 8, 8, 8]);
    let s = block.step(&x, &y).unwrap().to_scalar().unwrap();
    assert!(s.is_finite(), "{s}");
}

#[cfg(feature = "cuda")]
/// Median wall time of `f` over `reps` runs after two warm-up runs (each run ends with a read
/// back to the host, which waits for the device's queue).
fn median_secs(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let start = std::time::Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

/// GPU timings for benches/results (run by scripts/gpu-check.sh on a GPU machine): GEMM 4096³
/// through the engine's matmul in f32, TF32 and bf16, a DCGAN 64×64×3 training step at batch
/// 128, the six DCGAN layers at batch 256 and the BigGAN up-block, forward and backward. Prints
/// a markdown table whose row labels the script's PyTorch rows share.
#[cfg(feature = "cuda")]
#[test]
#[ignore = "GPU benchmark: run by scripts/gpu-check.sh on a machine with a GPU"]
fn gpu_bench() {
    let device = match Device::best_with_reason() {
        (d @ Device::Cuda(_), _) => d,
        (_, why) => {
            use saddle_kernels::require::{skip, Requirement};
            skip("gpu_bench", Requirement::Cuda, &why);
            return;
        }
    };
    let mut rng = Rng::new(1);
    let n = 4096;
    let a = Tensor::randn(&[n, n], 0.0, 1.0, DType::F32, device, &mut rng).unwrap();
    let b = Tensor::randn(&[n, n], 0.0, 1.0, DType::F32, device, &mut rng).unwrap();
    let flops = 2.0 * (n as f64).powi(3);
    println!("| benchmark | median time | rate |");
    println!("|---|---|---|");
    // f32 without and with TF32, and bf16 operands on tensor cores (f32 accumulation, bf16
    // result), each read back the same way: converted to f32 (a no-op for f32) and summed.
    for (label, dtype, tf32) in [
        ("SGEMM 4096^3 f32", DType::F32, false),
        ("SGEMM 4096^3 TF32", DType::F32, true),
        ("GEMM 4096^3 bf16", DType::BF16, false),
    ] {
        saddle_nn::engine::set_cuda_tf32(tf32);
        let (a, b) = (a.to_dtype(dtype).unwrap(), b.to_dtype(dtype).unwrap());
        let t = median_secs(10, || {
            a.matmul(&b)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar()
                .unwrap();
        });
        println!(
            "| {label} | {:.3} ms | {:.1} TFLOP/s |",
            t * 1e3,
            flops / t / 1e12
        );
    }
    saddle_nn::engine::set_cuda_tf32(false);
    let mut t = DcganTrainer::new(DcganConfig::rgb64(), &mut Rng::new(2)).unwrap();
    t.to_device(device).unwrap();
    let real = Tensor::rand(&[128, 3, 64, 64], -1.0, 1.0, DType::F32, device, &mut rng).unwrap();
    let mut noise = Rng::new(3);
    let step = median_secs(10, || {
        t.step(&real, &mut noise).unwrap();
    });
    println!(
        "| DCGAN 64x64x3 train step, batch 128 (f32) | {:.2} ms | {:.0} images/s |",
        step * 1e3,
        128.0 / step
    );
    // The DCGAN layers of issue 2 at batch 256, forward and backward, f32 without TF32.
    let batch = 256;
    for layer in DCGAN_LAYERS {
        let (x, w) = dcgan_layer_inputs(layer, batch, device, &mut rng);
        let t = median_secs(10, || {
            dcgan_layer_step(&x, &w, layer.0)
                .unwrap()
                .to_scalar()
                .unwrap();
        });
        println!(
            "| {} | {:.3} ms | {:.0} images/s |",
            dcgan_layer_label(layer, batch),
            t * 1e3,
            batch as f64 / t
        );
    }
    let (n, cin, cout, hw, cond) = UP_BLOCK;
    let block = UpBlock::new(cin, cout, cond, &mut rng).unwrap();
    block.to_device(device).unwrap();
    let x = Tensor::randn(&[n, cin, hw, hw], 0.0, 1.0, DType::F32, device, &mut rng)
        .unwrap()
        .with_requires_grad(true);
    let y = Tensor::randn(&[n, cond], 0.0, 1.0, DType::F32, device, &mut rng).unwrap();
    let t = median_secs(10, || {
        block.step(&x, &y).unwrap().to_scalar().unwrap();
    });
    println!(
        "| BigGAN up-block {cin}->{cout} {}x{} +CBN+SN+attention b{n} fwd+bwd | {:.2} ms | {:.0} images/s |",
        2 * hw,
        2 * hw,
        t * 1e3,
        n as f64 / t
    );
    saddle_kernels::require::ran_on_gpu("gpu_bench", &device);
}

/// WGAN-GP with R1 on: one step's D loss is `mean D(fake) - mean D(real) + 10·GP + γ/2·R1`
/// built by hand from the same draws (G's noise, then the interpolation weights), G's is
/// `-mean D'(fake)`; the critic has no batch norm; the batch must split into the critic's
/// updates.
#[test]
fn wgan_gp_and_r1_step_matches_the_hand_built_losses() {
    use saddle_gan::models::dcgan::DcganLoss;
    use saddle_nn::penalty::{gradient_penalty, r1_penalty};
    let cfg = DcganConfig {
        nz: 8,
        ngf: 8,
        ndf: 8,
        loss: DcganLoss::WganGp { gp_weight: 10.0 },
        r1_gamma: 0.5,
        beta1: 0.0,
        beta2: 0.9,
        ..DcganConfig::digits16()
    };
    let real = Tensor::rand(
        &[6, 1, 16, 16],
        -1.0,
        1.0,
        DType::F32,
        Device::Cpu,
        &mut Rng::new(1),
    )
    .unwrap();
    let mut stepped = DcganTrainer::new(cfg, &mut Rng::new(2)).unwrap();
    let twin = DcganTrainer::new(cfg, &mut Rng::new(2)).unwrap();
    // No batch norm in the critic: the plain DCGAN's D has more parameters.
    let plain = DcganTrainer::new(
        DcganConfig {
            loss: DcganLoss::Standard,
            ..cfg
        },
        &mut Rng::new(2),
    )
    .unwrap();
    assert!(twin.d.num_parameters() < plain.d.num_parameters());

    let noise = Rng::new(3);
    let report = stepped.step_report(&real, &mut noise.clone()).unwrap();
    let names: Vec<&str> = report.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["d_loss", "g_loss", "gradient_penalty", "r1"]);
    let value = |i: usize| report[i].1.to_scalar().unwrap();

    let mut draws = noise.clone();
    let z = Tensor::randn(&[6, 8, 1, 1], 0.0, 1.0, DType::F32, Device::Cpu, &mut draws).unwrap();
    let fake = twin.g.forward(&z).unwrap().detach();
    let critic = |x: &Tensor| twin.d.forward(x);
    let gp = gradient_penalty(critic, &real, &fake, &mut draws).unwrap();
    let r1 = r1_penalty(critic, &real).unwrap();
    let mean = |t: Tensor| t.mean_all().unwrap().to_scalar().unwrap();
    let hand_d = mean(critic(&fake).unwrap()) - mean(critic(&real).unwrap())
        + 10.0 * gp.to_scalar().unwrap()
        + 0.25 * r1.to_scalar().unwrap();
    assert!((value(0) - hand_d).abs() < 1e-5, "{} vs {hand_d}", value(0));
    assert!((value(2) - gp.to_scalar().unwrap()).abs() < 1e-6);
    assert!((value(3) - r1.to_scalar().unwrap()).abs() < 1e-6);
    let hand_g = -mean(stepped.d.forward(&fake).unwrap());
    assert!((value(1) - hand_g).abs() < 1e-5, "{} vs {hand_g}", value(1));

    // Five critic updates need a batch that splits five ways.
    let mut five = DcganTrainer::new(DcganConfig { n_critic: 5, ..cfg }, &mut Rng::new(2)).unwrap();
    let err = five
        .step_report(&real, &mut Rng::new(4))
        .unwrap_err()
        .to_string();
    assert!(err.contains("do not split into 5"), "{err}");
    let five_rows = real.narrow(0, 0, 5).unwrap();
    let report = five.step_report(&five_rows, &mut Rng::new(4)).unwrap();
    assert!(report
        .iter()
        .all(|(_, t)| t.to_scalar().unwrap().is_finite()));
}
