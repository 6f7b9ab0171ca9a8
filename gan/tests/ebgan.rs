//! EBGAN for MNIST: the pulling-away term (value and gradient), shapes and PyTorch parameter
//! counts, the margin loss lowering on a fixed batch, EBGAN-PT steps (one against both losses
//! built by hand), and an exact resume from a checkpoint file.

mod common;
mod one_step;

use saddle_gan::models::ebgan::{
    discriminator, generator, pulling_away_term, EbganConfig, EbganTrainer,
};
use saddle_nn::engine::gradcheck::check_gradients;
use saddle_nn::engine::{no_grad, DType, Device, Rng, Tensor};
use saddle_nn::optim::Optimizer;
use saddle_nn::{Checkpoint, Module, ModuleExt};

/// ```python
/// s = torch.tensor([[1., 0., 2.], [0., 1., 1.], [-1., 2., 0.], [3., 0.5, -1.]], dtype=torch.float64)
/// n = s.shape[0]
/// u = s / s.norm(dim=1, keepdim=True)
/// c = (u @ u.T) ** 2
/// print(((c.sum() - c.diagonal().sum()) / (n * (n - 1))).item())   # 0.15829268292682927
/// ```
#[test]
fn pulling_away_term_matches_pytorch_on_a_small_batch() {
    let s = vec![1.0f64, 0., 2., 0., 1., 1., -1., 2., 0., 3., 0.5, -1.];
    let want = 0.15829268292682927;
    let t = Tensor::from_vec(s.clone(), &[4, 3], Device::Cpu).unwrap();
    let got = pulling_away_term(&t).unwrap().to_scalar().unwrap();
    assert!((got - want).abs() < 1e-14, "{got}");
    // Scaling a row changes no cosine; f32 agrees; rank-3 codes are flattened per sample.
    let mut scaled = s.clone();
    scaled[3..6].iter_mut().for_each(|v| *v *= 7.5);
    let t = Tensor::from_vec(scaled, &[4, 3], Device::Cpu).unwrap();
    assert!((pulling_away_term(&t).unwrap().to_scalar().unwrap() - want).abs() < 1e-14);
    let s32: Vec<f32> = s.iter().map(|v| *v as f32).collect();
    let t = Tensor::from_vec(s32, &[4, 3, 1], Device::Cpu).unwrap();
    assert!((pulling_away_term(&t).unwrap().to_scalar().unwrap() - want).abs() < 1e-6);
    // Orthogonal codes do not pull together at all; identical ones fully.
    let eye = Tensor::from_vec(vec![1.0f64, 0., 0., 1.], &[2, 2], Device::Cpu).unwrap();
    assert_eq!(pulling_away_term(&eye).unwrap().to_scalar().unwrap(), 0.0);
    let same = Tensor::from_vec(vec![2.0f64, 1., 2., 1., 2., 1.], &[3, 2], Device::Cpu).unwrap();
    assert!((pulling_away_term(&same).unwrap().to_scalar().unwrap() - 1.0).abs() < 1e-14);
    let one = Tensor::ones(&[1, 3], DType::F64, Device::Cpu).unwrap();
    assert!(pulling_away_term(&one).is_err());
}

#[test]
fn pulling_away_term_gradient_matches_finite_differences() {
    let mut rng = Rng::new(11);
    let s = Tensor::randn(&[5, 4], 0.0, 1.0, DType::F64, Device::Cpu, &mut rng)
        .unwrap()
        .with_requires_grad(true);
    check_gradients(|xs| pulling_away_term(&xs[0]), &[s], 1e-6, 1e-8, 1e-6).unwrap();
}

fn small() -> EbganConfig {
    EbganConfig {
        nz: 10,
        layers_g: 3,
        size_g: 64,
        layers_d: 3,
        size_d: 32,
        ..EbganConfig::default()
    }
}

/// ```python
/// nn = torch.nn
/// g = []; w = 100
/// for _ in range(4): g += [nn.Linear(w, 1600), nn.BatchNorm1d(1600), nn.ReLU()]; w = 1600
/// g = nn.Sequential(*g, nn.Linear(w, 784), nn.Tanh())
/// class AE(nn.Module):
///     def __init__(s):
///         super().__init__(); s.enc = nn.ModuleList([nn.Linear(784, 1024)]); s.dec = nn.ModuleList([nn.Linear(1024, 784)])
/// print(sum(p.numel() for p in g.parameters()), sum(p.numel() for p in AE().parameters()))  # 9114384 1607440
/// g = nn.Sequential(nn.Linear(10, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 64),
///                   nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 784), nn.Tanh())
/// class AE3(nn.Module):
///     def __init__(s):
///         super().__init__(); s.enc = nn.ModuleList([nn.Linear(784, 32), nn.Linear(32, 32)]); s.dec = nn.ModuleList([nn.Linear(32, 784)])
/// print(sum(p.numel() for p in g.parameters()), sum(p.numel() for p in AE3().parameters()))  # 56080 52048
/// ```
#[test]
fn shapes_names_and_pytorch_parameter_counts() {
    let mut rng = Rng::new(0);
    let cfg = EbganConfig::default();
    let g = generator(&cfg, &mut rng).unwrap();
    let d = discriminator(&cfg, &mut rng).unwrap();
    assert_eq!(g.num_parameters(), 9_114_384);
    assert_eq!(d.num_parameters(), 1_607_440);
    let z = Tensor::randn(&[3, 100], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
    let x = g.forward(&z).unwrap();
    assert_eq!(x.shape(), &[3, 784]);
    assert!(x.to_vec::<f32>().unwrap().iter().all(|v| v.abs() <= 1.0));
    let (energy, code) = d.energy_and_code(&x).unwrap();
    assert_eq!((energy.shape(), code.shape()), (&[3][..], &[3, 1024][..]));
    assert!(energy.to_vec::<f32>().unwrap().iter().all(|e| *e > 0.0));

    let cfg = small();
    let g = generator(&cfg, &mut rng).unwrap();
    let d = discriminator(&cfg, &mut rng).unwrap();
    assert_eq!(g.num_parameters(), 56_080);
    assert_eq!(d.num_parameters(), 52_048);
    let names: Vec<String> = d.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "enc.0.weight",
            "enc.0.bias",
            "enc.1.weight",
            "enc.1.bias",
            "dec.0.weight",
            "dec.0.bias"
        ]
    );
    let buffers: Vec<String> = g.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(buffers[..2], ["1.running_mean", "1.running_var"]);
    // The energy is the per-sample mean squared reconstruction error, computed here directly.
    let x = Tensor::rand(&[2, 784], -1.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
    let rec = d
        .decode(&d.encode(&x).unwrap())
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let xs = x.to_vec::<f32>().unwrap();
    let e = d.forward(&x).unwrap().to_vec::<f32>().unwrap();
    for i in 0..2 {
        let want: f32 = (0..784)
            .map(|j| (rec[i * 784 + j] - xs[i * 784 + j]).powi(2))
            .sum::<f32>()
            / 784.0;
        assert!((e[i] - want).abs() < 1e-5 * want, "{e:?} vs {want}");
    }
    assert!(generator(&EbganConfig { layers_g: 0, ..cfg }, &mut rng).is_err());
    assert!(discriminator(&EbganConfig { layers_d: 1, ..cfg }, &mut rng).is_err());
}

fn real_batch(n: usize) -> Tensor {
    let v: Vec<f32> = (0..n * 784)
        .map(|i| {
            if (i / 28 + i % 28 + i / 784) % 5 < 2 {
                1.0
            } else {
                -1.0
            }
        })
        .collect();
    Tensor::from_vec(v, &[n, 784], Device::Cpu).unwrap()
}

fn eval_d_loss(t: &EbganTrainer, real: &Tensor, fake: &Tensor) -> f64 {
    no_grad(|| {
        let hinge =
            t.d.forward(fake)?
                .rsub_scalar(t.cfg.margin)?
                .relu()?
                .mean_all()?;
        t.d.forward(real)?.mean_all()?.add(&hinge)?.to_scalar()
    })
    .unwrap()
}

#[test]
fn a_few_d_steps_on_a_fixed_batch_lower_the_margin_loss() {
    let mut t = EbganTrainer::new(small(), 1).unwrap();
    let real = real_batch(8);
    let fake = t.sample(8).unwrap();
    let before = eval_d_loss(&t, &real, &fake);
    for _ in 0..20 {
        let s = t.d_step(&real).unwrap();
        assert!(s.loss.is_finite() && s.real_score > 0.0 && s.fake_score > 0.0);
    }
    let after = eval_d_loss(&t, &real, &fake);
    assert!(after < before - 0.5, "D loss {before} -> {after}");
}

#[test]
fn ebgan_pt_steps_are_finite_and_report_the_term() {
    let mut t = EbganTrainer::new(
        EbganConfig {
            dropout_d: 0.5,
            d_steps: 2,
            ..small().with_pt()
        },
        3,
    )
    .unwrap();
    assert_eq!(t.cfg.pt_weight, 0.1);
    let real = real_batch(8);
    let g0 = t.g.named_parameters()[0].1.to_vec::<f32>().unwrap();
    for _ in 0..3 {
        let s = t.step(&real).unwrap();
        assert!(s.is_finite(), "{s:?}");
        let pt = s.pt.expect("EBGAN-PT reports its term");
        assert!((0.0..=1.0).contains(&pt), "{pt}");
        // G's loss is the mean energy plus 0.1 PT: at least the weighted term.
        assert!(s.g_loss > 0.1 * pt);
    }
    assert_eq!(t.steps(), 3);
    assert_ne!(g0, t.g.named_parameters()[0].1.to_vec::<f32>().unwrap());
    let mut plain = EbganTrainer::new(small(), 3).unwrap();
    assert_eq!(plain.step(&real).unwrap().pt, None);
    // A pulling-away term needs two samples per minibatch.
    let err = t.step(&real_batch(2)).unwrap_err().to_string();
    assert!(err.contains("at least 2"), "{err}");
}

/// One EBGAN-PT step (dropout in D) against both losses rebuilt by hand by a twin trainer from
/// the same seed, which draws the same noise and dropout masks in the same order: D's
/// `mean E(x) + mean [m - E(G(z))]+` on the real batch and as many samples, then G's
/// `mean E(G(z')) + 0.1 · PT(codes of G(z'))` on fresh noise through D after its update (copied
/// into the twin). Both Adam first steps are checked element by element against these
/// gradients, and the reported losses, energies and term against the hand-built ones.
///
/// Fails on (each tried by a deliberate change to `ebgan.rs`): the pulling-away term left out of
/// G's loss, or weighted 1 instead of 0.1; the hinge taken on the real energies instead of the
/// generated ones; G's loss taken through the D of before the update.
#[test]
fn one_step_moves_both_players_by_the_hand_built_losses() {
    let cfg = EbganConfig {
        dropout_d: 0.5,
        ..small().with_pt()
    };
    let real = real_batch(6);
    let mut stepped = EbganTrainer::new(cfg, 13).unwrap();
    let s = stepped.step(&real).unwrap();
    let mut twin = EbganTrainer::new(cfg, 13).unwrap();

    let z = twin.noise(6).unwrap();
    let fake = no_grad(|| twin.g.forward(&z)).unwrap();
    let e_real = twin.d.forward(&real).unwrap();
    let e_fake = twin.d.forward(&fake).unwrap();
    let hinge = e_fake.rsub_scalar(cfg.margin).unwrap().relu().unwrap();
    let hand_d = e_real
        .mean_all()
        .unwrap()
        .add(&hinge.mean_all().unwrap())
        .unwrap();
    let d_grads = hand_d.backward().unwrap();
    let adam = (cfg.lr, cfg.beta1);
    let state = stepped.opt_d.state_tensors();
    one_step::assert_adam_first_step("D", &twin.d, &stepped.d, &state, &d_grads, adam);

    one_step::copy_parameters(&stepped.d, &twin.d);
    let z = twin.noise(6).unwrap();
    let (energy, code) = twin
        .d
        .energy_and_code(&twin.g.forward(&z).unwrap())
        .unwrap();
    let pt = pulling_away_term(&code).unwrap();
    let hand_g = energy
        .mean_all()
        .unwrap()
        .add(&pt.mul_scalar(0.1).unwrap())
        .unwrap();
    let g_grads = hand_g.backward().unwrap();
    let state = stepped.opt_g.state_tensors();
    one_step::assert_adam_first_step("G", &twin.g, &stepped.g, &state, &g_grads, adam);

    let scalar = |t: &Tensor| t.to_scalar().unwrap();
    for (what, got, want) in [
        ("d_loss", s.d_loss, scalar(&hand_d)),
        (
            "real_score",
            s.real_score,
            scalar(&e_real.mean_all().unwrap()),
        ),
        (
            "fake_score",
            s.fake_score,
            scalar(&e_fake.mean_all().unwrap()),
        ),
        ("g_loss", s.g_loss, scalar(&hand_g)),
        ("pulling_away", s.pt.unwrap(), scalar(&pt)),
    ] {
        assert!(
            (got - want).abs() <= 1e-6 * want.abs(),
            "{what}: {got} vs {want}"
        );
    }
}

#[test]
fn a_run_resumed_from_a_checkpoint_file_continues_identically() {
    let cfg = EbganConfig {
        dropout_d: 0.5,
        ..small().with_pt()
    };
    let real = real_batch(4);
    let mut a = EbganTrainer::new(cfg, 5).unwrap();
    for _ in 0..2 {
        a.step(&real).unwrap();
    }
    let dir = std::env::temp_dir().join(format!("saddle-ebgan-test-{}", std::process::id()));
    let path = dir.join("ck.safetensors");
    a.checkpoint().save(&path).unwrap();
    let mut b = EbganTrainer::new(cfg, 77).unwrap();
    b.restore(&Checkpoint::load(&path).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(b.steps(), 2);
    assert_eq!(a.step(&real).unwrap(), b.step(&real).unwrap());
    for (m_a, m_b) in [(&a.g as &dyn Module, &b.g as &dyn Module), (&a.d, &b.d)] {
        let (ta, tb) = (m_a.named_buffers(), m_b.named_buffers());
        let (pa, pb) = (m_a.named_parameters(), m_b.named_parameters());
        for ((na, x), (nb, y)) in ta.iter().chain(&pa).zip(tb.iter().chain(&pb)) {
            assert_eq!(na, nb);
            assert_eq!(
                x.to_vec::<f32>().unwrap(),
                y.to_vec::<f32>().unwrap(),
                "{na}"
            );
        }
    }
}

/// EBGAN-PT with dropout in D trained a few steps from one seed on the CPU and on cuda:0
/// reports the same losses, energies and pulling-away terms within 1e-3 relative (G's batch
/// norm, D's auto-encoder, Adam; D's dropout masks hold `8 * 32` values, a multiple of 4, so
/// device and host draws stay on the same Philox stream). Skipped with the reason without a GPU.
#[test]
fn trains_to_the_same_loss_curve_on_both_devices() {
    let cfg = EbganConfig {
        dropout_d: 0.5,
        ..small().with_pt()
    };
    common::assert_same_curve_on_both_devices("EBGAN-PT", 1e-3, |device| {
        let mut t = EbganTrainer::new(cfg, 9).unwrap();
        t.to_device(device).unwrap();
        assert_eq!(t.device(), device);
        let real = real_batch(8);
        (0..4).map(|_| t.step(&real).unwrap().named()).collect()
    });
}
