//! The GAN 2014 MNIST model: shapes, PyTorch parameter counts and names, schedules, D updates
//! that separate a fixed batch, full steps, and an exact resume from a checkpoint file.

mod common;

use saddle_gan::models::gan2014::{
    discriminator, generator, Gan2014Config, Gan2014Trainer, GeneratorLoss, Noise, Updates,
};
use saddle_nn::engine::{no_grad, DType, Device, Rng, Tensor};
use saddle_nn::{Checkpoint, Module, ModuleExt};

/// Small enough for the dev profile: 16-pixel images, narrow layers, larger init so a few
/// steps at the reference learning rate move D.
fn small() -> Gan2014Config {
    Gan2014Config {
        nz: 8,
        g_hidden: 32,
        image_dim: 16,
        d_units: 8,
        d_pieces: 3,
        d_init_range: 0.5,
        ..Gan2014Config::default()
    }
}

/// A fixed "real" batch: binary patterns, far from G's initial grey outputs.
fn real_batch(n: usize, dim: usize) -> Tensor {
    let v: Vec<f32> = (0..n * dim)
        .map(|i| {
            if (i * 7 + i / dim).is_multiple_of(3) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_vec(v, &[n, dim], Device::Cpu).unwrap()
}

/// ```python
/// nn = torch.nn
/// class G(nn.Module):
///     def __init__(s):
///         super().__init__(); s.h0 = nn.Linear(100, 1200); s.h1 = nn.Linear(1200, 1200); s.y = nn.Linear(1200, 784)
/// class D(nn.Module):
///     def __init__(s):
///         super().__init__(); s.h0 = nn.Linear(784, 240 * 5); s.h1 = nn.Linear(240, 240 * 5); s.y = nn.Linear(240, 1)
/// print(sum(p.numel() for p in G().parameters()), sum(p.numel() for p in D().parameters()))
/// print(list(D().state_dict()))
/// # 2503984 1231441
/// # ['h0.weight', 'h0.bias', 'h1.weight', 'h1.bias', 'y.weight', 'y.bias']
/// ```
#[test]
fn paper_model_shapes_names_and_pytorch_parameter_counts() {
    let cfg = Gan2014Config::default();
    let mut rng = Rng::new(0);
    let g = generator(&cfg, &mut rng).unwrap();
    let d = discriminator(&cfg, &mut rng).unwrap();
    assert_eq!(g.num_parameters(), 2_503_984);
    assert_eq!(d.num_parameters(), 1_231_441);
    let names: Vec<String> = d.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "h0.weight",
            "h0.bias",
            "h1.weight",
            "h1.bias",
            "y.weight",
            "y.bias"
        ]
    );
    assert_eq!(d.h0.weight.shape(), &[1200, 784]);
    let z = Tensor::rand(&[3, 100], -1.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
    let x = g.forward(&z).unwrap();
    assert_eq!(x.shape(), &[3, 784]);
    let v = x.to_vec::<f32>().unwrap();
    assert!(v.iter().all(|p| *p > 0.0 && *p < 1.0));
    let p = d.probability(&x).unwrap();
    assert_eq!(p.shape(), &[3, 1]);
    assert!(p
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .all(|p| *p > 0.0 && *p < 1.0));
    // The reference's uniform ranges.
    let w = g.h1.weight.to_vec::<f32>().unwrap();
    assert!(w.iter().all(|v| v.abs() <= 0.05) && w.iter().any(|v| v.abs() > 0.04));
    let w = d.h0.weight.to_vec::<f32>().unwrap();
    assert!(w.iter().all(|v| v.abs() <= 0.005) && w.iter().any(|v| v.abs() > 0.004));
    assert!(d
        .h0
        .bias
        .as_ref()
        .unwrap()
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .all(|b| *b == 0.0));
}

#[test]
fn dropout_is_on_in_training_and_off_in_evaluation() {
    let cfg = small();
    let mut rng = Rng::new(3);
    let mut d = discriminator(&cfg, &mut rng).unwrap();
    let x = real_batch(4, 16);
    let a = d.forward(&x).unwrap().to_vec::<f32>().unwrap();
    let b = d.forward(&x).unwrap().to_vec::<f32>().unwrap();
    assert_ne!(a, b, "fresh dropout masks per pass");
    d.set_training(false);
    let a = d.forward(&x).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(a, d.forward(&x).unwrap().to_vec::<f32>().unwrap());
}

#[test]
fn learning_rate_and_momentum_schedules() {
    let cfg = Gan2014Config::default();
    assert_eq!(cfg.lr_at(0), 0.1);
    assert!((cfg.lr_at(1000) - 0.1 / 1.000004f64.powi(1000)).abs() < 1e-15);
    assert_eq!(cfg.lr_at(10_000_000), 1e-6);
    assert_eq!(cfg.momentum_at(0), 0.5);
    assert_eq!(cfg.momentum_at(500), 0.5);
    let mid = (500 + 125_000) / 2;
    assert!((cfg.momentum_at(mid) - 0.6).abs() < 1e-9);
    assert_eq!(cfg.momentum_at(125_000), 0.7);
    assert_eq!(cfg.momentum_at(1_000_000), 0.7);
}

/// D's loss on a fixed real batch and fixed samples, dropout off.
fn eval_d_loss(t: &mut Gan2014Trainer, real: &Tensor, fake: &Tensor) -> f64 {
    t.d.set_training(false);
    let n = real.shape()[0];
    let loss = no_grad(|| {
        let ones = Tensor::ones(&[n, 1], DType::F32, Device::Cpu)?;
        let zeros = Tensor::zeros(&[n, 1], DType::F32, Device::Cpu)?;
        t.d.forward(real)?
            .binary_cross_entropy_with_logits(&ones)?
            .add(
                &t.d.forward(fake)?
                    .binary_cross_entropy_with_logits(&zeros)?,
            )?
            .mul_scalar(0.5)?
            .to_scalar()
    })
    .unwrap();
    t.d.set_training(true);
    loss
}

#[test]
fn a_few_d_steps_on_a_fixed_batch_lower_d_loss() {
    let mut t = Gan2014Trainer::new(small(), 1).unwrap();
    let real = real_batch(16, 16);
    let fake = t.sample(16).unwrap();
    let before = eval_d_loss(&mut t, &real, &fake);
    assert!((before - std::f64::consts::LN_2).abs() < 0.05, "{before}");
    for _ in 0..30 {
        let s = t.d_step(&real).unwrap();
        assert!(s.loss.is_finite() && (0.0..=1.0).contains(&s.real_score));
    }
    let after = eval_d_loss(&mut t, &real, &fake);
    assert!(after < before - 0.05, "D loss {before} -> {after}");
}

#[test]
fn full_steps_report_finite_stats_and_move_both_networks() {
    let mut t = Gan2014Trainer::new(small(), 2).unwrap();
    let real = real_batch(8, 16);
    let g0 = t.g.h0.weight.to_vec::<f32>().unwrap();
    let d0 = t.d.h0.weight.to_vec::<f32>().unwrap();
    for i in 0..3 {
        let s = t.step(&real).unwrap();
        assert!(s.is_finite(), "{s:?}");
        assert!(s.g_loss > 0.0 && s.pt.is_none());
        assert_eq!(t.steps(), i + 1);
    }
    assert_ne!(g0, t.g.h0.weight.to_vec::<f32>().unwrap());
    assert_ne!(d0, t.d.h0.weight.to_vec::<f32>().unwrap());
    assert_eq!(t.opt_d.momentum(), 0.5);
    // Images of any shape with 16 values per row are accepted; 16 rows split into k = 2.
    let mut k2 = Gan2014Trainer::new(
        Gan2014Config {
            d_steps: 2,
            g_loss: GeneratorLoss::Minimax,
            updates: Updates::Alternating,
            ..small()
        },
        2,
    )
    .unwrap();
    let s = k2.step(&real.reshape(&[8, 1, 4, 4]).unwrap()).unwrap();
    // log(1 - D(G(z))) is negative.
    assert!(s.is_finite() && s.g_loss < 0.0, "{s:?}");
    let err = k2.step(&real_batch(7, 16)).unwrap_err().to_string();
    assert!(err.contains("2 equal"), "{err}");
    let err = k2.step(&real_batch(4, 15)).unwrap_err().to_string();
    assert!(err.contains("16 values"), "{err}");
}

/// The reference's update: G's and D's gradients both from one batch of samples seen through
/// one set of dropout masks by the D of before the step, then plain SGD on each (the first
/// step's momentum buffer is the gradient itself). Recomputed here from the public pieces.
#[test]
fn simultaneous_step_takes_both_gradients_before_either_update() {
    let real = real_batch(8, 16);
    let mut stepped = Gan2014Trainer::new(small(), 11).unwrap();
    let mut by_hand = Gan2014Trainer::new(small(), 11).unwrap();
    stepped.step(&real).unwrap();

    let t = &mut by_hand;
    let z = t.noise(8).unwrap();
    let fake = t.g.forward(&z).unwrap();
    let drops = [&t.d.drop_in, &t.d.drop_h0, &t.d.drop_h1];
    let masks: Vec<Rng> = drops.iter().map(|d| d.rng()).collect();
    let ones = Tensor::ones(&[8, 1], DType::F32, Device::Cpu).unwrap();
    let zeros = Tensor::zeros(&[8, 1], DType::F32, Device::Cpu).unwrap();
    let g_loss =
        t.d.forward(&fake)
            .unwrap()
            .binary_cross_entropy_with_logits(&ones)
            .unwrap();
    let g_grads = g_loss.backward().unwrap();
    for (d, rng) in drops.iter().zip(masks) {
        d.set_rng(rng);
    }
    let lf = t.d.forward(&fake.detach()).unwrap();
    let lr = t.d.forward(&real).unwrap();
    let d_loss = lr
        .binary_cross_entropy_with_logits(&ones)
        .unwrap()
        .add(&lf.binary_cross_entropy_with_logits(&zeros).unwrap())
        .unwrap()
        .mul_scalar(0.5)
        .unwrap();
    let d_grads = d_loss.backward().unwrap();

    let step_lr = t.cfg.lr_at(0);
    for (before, after, grads) in [
        (&t.g as &dyn Module, &stepped.g as &dyn Module, &g_grads),
        (&t.d, &stepped.d, &d_grads),
    ] {
        for ((name, p0), (_, p1)) in before
            .named_parameters()
            .iter()
            .zip(after.named_parameters())
        {
            let grad = grads.get(p0).unwrap().to_vec::<f32>().unwrap();
            let (p0, p1) = (p0.to_vec::<f32>().unwrap(), p1.to_vec::<f32>().unwrap());
            for ((a, b), g) in p0.iter().zip(&p1).zip(&grad) {
                let want = a - step_lr as f32 * g;
                assert!(
                    (b - want).abs() <= 1e-6 + 1e-5 * want.abs(),
                    "{name}: {b} vs {want}"
                );
            }
        }
    }
    // k > 1 needs alternating updates.
    let mut k2 = Gan2014Trainer::new(
        Gan2014Config {
            d_steps: 2,
            ..small()
        },
        0,
    )
    .unwrap();
    let err = k2.step(&real).unwrap_err().to_string();
    assert!(err.contains("simultaneous"), "{err}");
}

#[test]
fn output_bias_from_pixel_marginals() {
    let cfg = Gan2014Config {
        image_dim: 4,
        ..small()
    };
    let t = Gan2014Trainer::new(cfg, 0).unwrap();
    let images = Tensor::from_vec(
        vec![1.0f32, 0.0, 1.0, 0.5, 0.0, 0.0, 1.0, 0.25],
        &[2, 4],
        Device::Cpu,
    )
    .unwrap();
    t.init_output_bias_from_marginals(&images).unwrap();
    // logit(0.5), logit(1e-4), logit(1 - 1e-4), logit(0.375)
    let want = [0.0, -9.210240, 9.210240, -0.5108256];
    let got = t.g.y.bias.as_ref().unwrap().to_vec::<f32>().unwrap();
    for (g, w) in got.iter().zip(want) {
        assert!((*g as f64 - w).abs() < 1e-4, "{got:?}");
    }
}

#[test]
fn a_run_resumed_from_a_checkpoint_file_continues_identically() {
    let real = real_batch(8, 16);
    let mut a = Gan2014Trainer::new(small(), 5).unwrap();
    for _ in 0..2 {
        a.step(&real).unwrap();
    }
    let dir = std::env::temp_dir().join(format!("saddle-gan2014-test-{}", std::process::id()));
    let path = dir.join("ck.safetensors");
    a.checkpoint().save(&path).unwrap();
    let mut b = Gan2014Trainer::new(small(), 99).unwrap();
    b.restore(&Checkpoint::load(&path).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(b.steps(), 2);
    let (sa, sb) = (a.step(&real).unwrap(), b.step(&real).unwrap());
    assert_eq!(sa, sb);
    for (m_a, m_b) in [(&a.g as &dyn Module, &b.g as &dyn Module), (&a.d, &b.d)] {
        for ((na, ta), (nb, tb)) in m_a.named_parameters().iter().zip(m_b.named_parameters()) {
            assert_eq!(na, &nb);
            assert_eq!(
                ta.to_vec::<f32>().unwrap(),
                tb.to_vec::<f32>().unwrap(),
                "{na}"
            );
        }
    }
    // A checkpoint of another architecture is refused, naming the tensor.
    let mut other = Gan2014Trainer::new(
        Gan2014Config {
            g_hidden: 16,
            ..small()
        },
        0,
    )
    .unwrap();
    let err = other.restore(&a.checkpoint()).unwrap_err().to_string();
    assert!(err.contains("g.h0.weight"), "{err}");
}

#[test]
fn max_norm_constraint_rescales_only_long_rows() {
    use saddle_gan::models::gan2014::clip_row_norms;
    // Rows of norm 5 and 1: with max 2 the first becomes (1.2, 1.6), the second is kept.
    let w = Tensor::from_vec(vec![3.0f32, 4.0, 0.6, 0.8], &[2, 2], Device::Cpu).unwrap();
    clip_row_norms(&w, 2.0).unwrap();
    let v = w.to_vec::<f32>().unwrap();
    for (got, want) in v.iter().zip([1.2f32, 1.6, 0.6, 0.8]) {
        assert!((got - want).abs() < 1e-6, "{v:?}");
    }
}

/// The model trained a few steps from one seed on the CPU and on cuda:0 reports the same losses
/// and scores within 1e-3 relative: maxout (the device's max over pieces), dropout (masks from
/// the same Philox stream: every layer's mask is a multiple of 4 values, so the stream stays on
/// block boundaries where device and host draws agree), SGD with momentum, the max-norm
/// constraint and the output bias set from host images, in both update orders. `d_units` 16 keeps
/// rows where dropout zeroes every input of a maxout unit (its pieces tie; the devices route a
/// tie's gradient differently) out of reach. Skipped with the reason without a GPU.
#[test]
fn trains_to_the_same_loss_curve_on_both_devices() {
    for (updates, d_steps) in [(Updates::Simultaneous, 1), (Updates::Alternating, 2)] {
        let cfg = Gan2014Config {
            d_units: 16,
            d_max_norm: Some(1.0),
            updates,
            d_steps,
            ..small()
        };
        let name = format!("GAN 2014 ({updates:?})");
        common::assert_same_curve_on_both_devices(&name, 1e-3, |device| {
            let mut t = Gan2014Trainer::new(cfg, 3).unwrap();
            t.to_device(device).unwrap();
            assert_eq!(t.device(), device);
            let real = real_batch(16, cfg.image_dim);
            t.init_output_bias_from_marginals(&real).unwrap();
            let curve = (0..4).map(|_| t.step(&real).unwrap().named()).collect();
            assert_eq!(t.g.h0.weight.device(), device);
            curve
        });
    }
}

/// G's input noise: by default U(-sqrt 3, sqrt 3) (unit variance, the reference's final MNIST
/// setting), with N(0, 1) and U(-1, 1) as options; checked on 8,000 draws each.
#[test]
fn noise_distributions_have_their_ranges_and_variances() {
    assert_eq!(Gan2014Config::default().noise, Noise::UniformUnitVariance);
    let draws = |noise: Noise| -> Vec<f32> {
        let cfg = Gan2014Config {
            noise,
            nz: 100,
            ..small()
        };
        let mut t = Gan2014Trainer::new(cfg, 5).unwrap();
        t.noise(80).unwrap().to_vec::<f32>().unwrap()
    };
    let stats = |v: &[f32]| {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        let max_abs = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        (mean, var, max_abs)
    };
    // Sampling error of a variance over 8,000 draws: about 0.01 to 0.02.
    let (mean, var, max_abs) = stats(&draws(Noise::UniformUnitVariance));
    assert!(
        mean.abs() < 0.05 && (var - 1.0).abs() < 0.06,
        "{mean} {var}"
    );
    assert!(max_abs <= 3f32.sqrt() && max_abs > 1.7, "{max_abs}");
    let (mean, var, max_abs) = stats(&draws(Noise::UniformPlusMinusOne));
    assert!(
        mean.abs() < 0.05 && (var - 1.0 / 3.0).abs() < 0.03,
        "{mean} {var}"
    );
    assert!(max_abs <= 1.0 && max_abs > 0.99, "{max_abs}");
    let (mean, var, max_abs) = stats(&draws(Noise::Gaussian));
    assert!(
        mean.abs() < 0.05 && (var - 1.0).abs() < 0.08,
        "{mean} {var}"
    );
    assert!(max_abs > 3.0, "{max_abs}");
}
