//! BigBiGAN (issue 19): the joint discriminator's losses against hand-computed values, the
//! encoder's reparameterised Gaussian, one step against a twin built from the public parts,
//! and a tiny model that trains and resumes bit-identically.

use saddle_gan::models::bigbigan::{
    d_joint_hinge_loss, eg_loss, BigBiGanConfig, BigBiGanTrainConfig, BigBiGanTrainer, Encoder,
    JointScores, MIN_SIGMA,
};
use saddle_gan::models::biggan::BigGanConfig;
use saddle_gan::run::GanModel;
use saddle_nn::engine::{no_grad, Device, Rng, Tensor};
use saddle_nn::{Checkpoint, Module, ModuleExt};

fn t(values: &[f32]) -> Tensor {
    Tensor::from_vec(values.to_vec(), &[values.len()], Device::Cpu).unwrap()
}

fn scalar(x: &Tensor) -> f64 {
    x.to_vec_f64().unwrap()[0]
}

fn scores(s_x: &[f32], s_z: &[f32], s_xz: &[f32]) -> JointScores {
    JointScores {
        s_x: t(s_x),
        s_z: t(s_z),
        s_xz: t(s_xz),
    }
}

#[test]
fn joint_losses_match_hand_computed_values() {
    let real = scores(&[2.0, 0.5], &[-1.0, 0.0], &[0.25, 3.0]);
    let fake = scores(&[-2.0, 0.5], &[1.0, -0.5], &[-0.25, 0.0]);
    // Hinge per score: mean(relu(1 - real)) + mean(relu(1 + fake)).
    // s_x: (0 + 0.5)/2 + (0 + 1.5)/2 = 1.0; s_z: (2 + 1)/2 + (2 + 0.5)/2 = 2.75;
    // s_xz: (0.75 + 0)/2 + (0.75 + 1)/2 = 1.25.
    let d = |unary| scalar(&d_joint_hinge_loss(&real, &fake, unary).unwrap());
    assert!((d(true) - 5.0).abs() < 1e-6, "{}", d(true));
    assert!((d(false) - 1.25).abs() < 1e-6, "{}", d(false));
    // E/G: mean(real) - mean(fake) per score: s_x 1.25 - (-0.75) = 2; s_z -0.5 - 0.25 = -0.75;
    // s_xz 1.625 - (-0.125) = 1.75.
    let eg = |unary| scalar(&eg_loss(&real, &fake, unary).unwrap());
    assert!((eg(true) - 3.0).abs() < 1e-6, "{}", eg(true));
    assert!((eg(false) - 1.75).abs() < 1e-6, "{}", eg(false));
}

/// 32x32 grey, ch 4, z 20 (4 chunks of 5), MLPs 16 wide.
fn tiny_model(unary: bool, encoder_resolution: usize) -> BigBiGanConfig {
    at(32, unary, encoder_resolution)
}

fn at(resolution: usize, unary: bool, encoder_resolution: usize) -> BigBiGanConfig {
    BigBiGanConfig {
        model: BigGanConfig {
            resolution,
            channels: 1,
            ch: 4,
            num_classes: None,
            z_dim: 20,
            shared_dim: 8,
            attention_resolution: None,
            ..BigGanConfig::imagenet128()
        },
        encoder_resolution,
        encoder_ch: 4,
        mlp_width: 16,
        unary,
    }
}

fn tiny(unary: bool) -> BigBiGanTrainConfig {
    BigBiGanTrainConfig {
        ema_start: 1,
        standing_batches: 2,
        standing_batch_size: 4,
        ..BigBiGanTrainConfig::new(tiny_model(unary, 32))
    }
}

fn images(n: usize, seed: u64) -> Tensor {
    Tensor::randn(
        &[n, 1, 32, 32],
        0.0,
        0.5,
        saddle_nn::engine::DType::F32,
        Device::Cpu,
        &mut Rng::new(seed),
    )
    .unwrap()
    .clamp(-1.0, 1.0)
    .unwrap()
}

/// E's sample is `mu + sigma * eps` with `sigma > 0`: over many draws of eps for one image, the
/// samples' mean and variance are mu and sigma^2; and the sample is differentiable in E's
/// weights (the reparameterisation).
#[test]
fn the_encoders_reparameterised_sample_has_its_gaussians_mean_and_variance() {
    for (resolution, encoder_resolution) in [(32, 32), (64, 32)] {
        let cfg = at(resolution, true, encoder_resolution);
        let images = |n, seed| {
            let x = images(n, seed);
            match resolution {
                32 => x,
                _ => x.upsample_nearest2d(2).unwrap(),
            }
        };
        let e = Encoder::new(&cfg, &mut Rng::new(3)).unwrap();
        let n = 4000;
        let x = images(1, 5)
            .broadcast_as(&[n, 1, resolution, resolution])
            .unwrap()
            .contiguous()
            .unwrap();
        let eps = Tensor::randn(
            &[n, 20],
            0.0,
            1.0,
            saddle_nn::engine::DType::F32,
            Device::Cpu,
            &mut Rng::new(9),
        )
        .unwrap();
        let (mu, sigma) = no_grad(|| e.gaussian(&x.narrow(0, 0, 1)?)).unwrap();
        let (mu, sigma) = (mu.to_vec_f64().unwrap(), sigma.to_vec_f64().unwrap());
        assert!(sigma.iter().all(|&s| s >= MIN_SIGMA), "{sigma:?}");
        let z = no_grad(|| e.sample(&x, &eps))
            .unwrap()
            .to_vec_f64()
            .unwrap();
        let eps = eps.to_vec_f64().unwrap();
        for j in 0..20 {
            let column: Vec<f64> = (0..n).map(|i| z[i * 20 + j]).collect();
            // Exactly mu + sigma * eps, row by row.
            for i in [0, n / 2, n - 1] {
                let want = mu[j] + sigma[j] * eps[i * 20 + j];
                assert!((column[i] - want).abs() < 1e-5 * (1.0 + want.abs()));
            }
            let mean = column.iter().sum::<f64>() / n as f64;
            let var = column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            // Sampling error of the mean: sigma / sqrt(n) ~ 1.6% of sigma; of the variance ~2.2%.
            assert!(
                (mean - mu[j]).abs() < 0.07 * sigma[j],
                "mean {mean} vs {}",
                mu[j]
            );
            let rel = var / (sigma[j] * sigma[j]);
            assert!(
                (0.9..1.1).contains(&rel),
                "variance {var} vs {}",
                sigma[j] * sigma[j]
            );
        }
        // Gradients of a sample reach the head and the body.
        let x2 = images(2, 6);
        let eps2 = Tensor::randn(
            &[2, 20],
            0.0,
            1.0,
            saddle_nn::engine::DType::F32,
            Device::Cpu,
            &mut Rng::new(1),
        )
        .unwrap();
        let grads = e
            .sample(&x2, &eps2)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let reached = e
            .named_parameters()
            .iter()
            .filter(|(_, p)| grads.get(p).is_some())
            .count();
        assert!(reached >= 4, "{reached} of E's parameters got gradients");
    }
}

/// One step against a twin: D's loss is the joint hinge of scores built from the public parts
/// with the same draws, and E/G's loss the difference of the scores after D's update.
#[test]
fn one_step_matches_the_losses_built_by_hand() {
    for unary in [true, false] {
        let cfg = tiny(unary);
        let real = images(4, 1);
        let mut a = BigBiGanTrainer::new(cfg, 2).unwrap();
        let twin = BigBiGanTrainer::new(cfg, 2).unwrap();
        let draws = a.draw(4).unwrap();
        let (z_real, fake) = no_grad(|| {
            Ok::<_, saddle_nn::engine::Error>((
                twin.e.sample(&real, &draws.eps_d)?,
                twin.g.forward(&draws.z_d, None)?,
            ))
        })
        .unwrap();
        let want_d = d_joint_hinge_loss(
            &twin.d.scores(&real, &z_real).unwrap(),
            &twin.d.scores(&fake, &draws.z_d).unwrap(),
            unary,
        )
        .unwrap();
        let stats = a.step_with(&real, &draws).unwrap().read().unwrap();
        assert!(
            (stats.d_loss - scalar(&want_d)).abs() < 1e-5,
            "unary {unary}"
        );
        assert!(stats.g_loss.is_finite());
        // The step's real / fake scores are the counted scores' sums, averaged.
        let total = |s: &JointScores| -> f64 {
            s.terms(unary)
                .iter()
                .map(|t| scalar(&t.mean_all().unwrap()))
                .sum()
        };
        let mut fresh = BigBiGanTrainer::new(cfg, 2).unwrap();
        let (z_real, fake) = no_grad(|| {
            Ok::<_, saddle_nn::engine::Error>((
                fresh.e.sample(&real, &draws.eps_d)?,
                fresh.g.forward(&draws.z_d, None)?,
            ))
        })
        .unwrap();
        let real_total = total(&fresh.d.scores(&real, &z_real).unwrap());
        let fake_total = total(&fresh.d.scores(&fake, &draws.z_d).unwrap());
        assert!((stats.real_score - real_total).abs() < 1e-5);
        assert!((stats.fake_score - fake_total).abs() < 1e-5);
        fresh.step_with(&real, &draws).unwrap();
    }
}

#[test]
fn a_tiny_bigbigan_trains_finite_and_resumes_bit_identically() {
    let cfg = tiny(true);
    let real = images(4, 3);
    let mut a = BigBiGanTrainer::new(cfg, 8).unwrap();
    for _ in 0..3 {
        let s = a.step(&real).unwrap().read().unwrap();
        assert!(s.d_loss.is_finite() && s.g_loss.is_finite(), "{s:?}");
    }
    let dir = std::env::temp_dir().join(format!("saddle-bigbigan-test-{}", std::process::id()));
    let path = dir.join("ck.safetensors");
    a.checkpoint().save(&path).unwrap();
    let mut b = BigBiGanTrainer::new(cfg, 99).unwrap();
    b.restore(&Checkpoint::load(&path).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(b.steps(), 3);
    let (sa, sb) = (
        a.step(&real).unwrap().read().unwrap(),
        b.step(&real).unwrap().read().unwrap(),
    );
    assert_eq!(sa, sb);
    for (m, (x, y)) in [
        ("E", (&a.e as &dyn Module, &b.e as &dyn Module)),
        ("G", (&a.g, &b.g)),
        ("D", (&a.d, &b.d)),
    ] {
        for ((name, p), (_, q)) in x.named_parameters().iter().zip(&y.named_parameters()) {
            assert_eq!(
                p.to_vec_f64().unwrap(),
                q.to_vec_f64().unwrap(),
                "{m} {name}"
            );
        }
    }
    let z = a.sample_latent(3, &mut Rng::new(1)).unwrap();
    assert_eq!(
        a.generate(&z).unwrap().to_vec_f64().unwrap(),
        b.generate(&z).unwrap().to_vec_f64().unwrap()
    );
    let (ra, rb) = (a.reconstruct(&real).unwrap(), b.reconstruct(&real).unwrap());
    assert_eq!(ra.shape(), [4, 1, 32, 32]);
    assert_eq!(ra.to_vec_f64().unwrap(), rb.to_vec_f64().unwrap());
    assert_eq!(a.features(&real).unwrap().shape()[0], 4);
}

#[test]
fn bad_configurations_and_inputs_are_errors() {
    let conditional = BigBiGanConfig {
        model: BigGanConfig {
            num_classes: Some(10),
            ..tiny_model(true, 32).model
        },
        ..tiny_model(true, 32)
    };
    for (cfg, says) in [
        (conditional, "unconditional"),
        (tiny_model(true, 24), "power of two"),
        (tiny_model(true, 64), "power of two"),
        (tiny_model(true, 16), "at least 32"),
    ] {
        let err = BigBiGanTrainer::new(BigBiGanTrainConfig::new(cfg), 0)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(says), "{err}");
    }
    let t = BigBiGanTrainer::new(tiny(true), 0).unwrap();
    let err = t.d.scores(
        &images(2, 0),
        &Tensor::zeros(&[3, 20], saddle_nn::engine::DType::F32, Device::Cpu).unwrap(),
    );
    assert!(err.is_err());
    assert!(t.d.forward(&images(2, 0)).is_err());
}

/// E's width is its own: `encoder_ch` sets the width of E's features (BigGAN's D width, 2 ch at
/// 32x32) and nothing of G's or F's.
#[test]
fn the_encoder_width_is_set_apart_from_g_and_f() {
    let narrow = BigBiGanTrainer::new(tiny(true), 0).unwrap();
    let mut wide_cfg = tiny(true);
    wide_cfg.model.encoder_ch = 6;
    let mut wide = BigBiGanTrainer::new(wide_cfg, 0).unwrap();
    let x = images(3, 0);
    assert_eq!(wide.features(&x).unwrap().shape(), [3, 12]);
    assert_eq!(narrow.e.features(&x).unwrap().shape(), [3, 8]);
    assert_eq!(
        wide.g.num_parameters() + wide.d.num_parameters(),
        narrow.g.num_parameters() + narrow.d.num_parameters()
    );
    assert!(wide.e.num_parameters() > narrow.e.num_parameters());
    let mut zero = tiny(true);
    zero.model.encoder_ch = 0;
    let err = BigBiGanTrainer::new(zero, 0)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("encoder's width"), "{err}");
}
