//! DCGAN models: shapes, parameter names and counts, and a training step that changes the
//! weights and lowers D's loss on a fixed batch.

mod common;

use saddle_gan::models::dcgan::{discriminator, generator, DcganConfig, DcganTrainer};
use saddle_nn::engine::{DType, Device, Rng, Tensor};
use saddle_nn::{Module, ModuleExt};

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
        let g = generator(cfg, &mut rng).unwrap();
        let d = discriminator(cfg, &mut rng).unwrap();
        let z = Tensor::randn(
            &[2, cfg.nz, 1, 1],
            0.0,
            1.0,
            DType::F32,
            Device::Cpu,
            &mut rng,
        )
        .unwrap();
        let img = g.forward(&z).unwrap();
        assert_eq!(
            img.shape(),
            &[2, cfg.channels, cfg.image_size, cfg.image_size]
        );
        assert_eq!(d.forward(&img).unwrap().shape(), &[2, 1, 1, 1]);
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

#[test]
fn small_image_sizes_and_invalid_ones() {
    let mut rng = Rng::new(2);
    // 16x16 (the digits example): G 4x4x64 -> 8x8x32 -> 16x16x1, D mirrored.
    let cfg = DcganConfig::digits16();
    let g = generator(cfg, &mut rng).unwrap();
    let d = discriminator(cfg, &mut rng).unwrap();
    let z = Tensor::randn(
        &[3, cfg.nz, 1, 1],
        0.0,
        1.0,
        DType::F32,
        Device::Cpu,
        &mut rng,
    )
    .unwrap();
    let img = g.forward(&z).unwrap();
    assert_eq!(img.shape(), &[3, 1, 16, 16]);
    assert_eq!(d.forward(&img).unwrap().shape(), &[3, 1, 1, 1]);
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

/// GPU timings for benches/results (run by scripts/gpu-check.sh on a GPU machine): SGEMM 4096³
/// without and with TF32 through the engine's matmul, and a DCGAN 64×64×3 training step at
/// batch 128. Prints a markdown table.
#[cfg(feature = "cuda")]
#[test]
#[ignore = "GPU benchmark: run by scripts/gpu-check.sh on a machine with a GPU"]
fn gpu_bench() {
    let device = match Device::best_with_reason() {
        (d @ Device::Cuda(_), _) => d,
        (_, why) => {
            println!("gpu_bench skipped ({why})");
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
    for tf32 in [false, true] {
        saddle_nn::engine::set_cuda_tf32(tf32);
        let t = median_secs(10, || {
            a.matmul(&b)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar()
                .unwrap();
        });
        println!(
            "| SGEMM 4096^3 {} | {:.3} ms | {:.1} TFLOP/s |",
            if tf32 { "TF32" } else { "f32" },
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
}
