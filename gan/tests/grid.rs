//! EBGAN's reduced grid search: the paper's grid sizes, seeded draws, the GAN baseline's
//! discriminator and step (one against both losses built by hand), the histogram's binning and
//! the quartiles of the summary.

mod common;
mod one_step;

use saddle_gan::grid::{draw, full_grid, quartiles, Family};
use saddle_gan::models::mlp_gan::{MlpGanConfig, MlpGanTrainer, OptimKind};
use saddle_gan::plot::{histogram, histogram_png, HistogramSeries};
use saddle_nn::engine::{DType, Device, Rng, Tensor};
use saddle_nn::{Checkpoint, ModuleExt};

#[test]
fn grids_have_the_papers_sizes_and_draws_are_seeded_prefixes() {
    assert_eq!(full_grid(Family::Ebgan).len(), 512);
    assert_eq!(full_grid(Family::EbganPt).len(), 512);
    let gan = full_grid(Family::Gan);
    assert_eq!(gan.len(), 6144);
    assert!(gan
        .iter()
        .any(|p| p.optim_d == OptimKind::Sgd && p.lr == 1e-4));
    assert!(full_grid(Family::Ebgan)
        .iter()
        .all(|p| p.lr == 1e-3 && p.optim_d == OptimKind::Adam));
    let a = draw(Family::Gan, 24, 5).unwrap();
    let b = draw(Family::Gan, 30, 5).unwrap();
    assert_eq!(a[..], b[..24]);
    assert_ne!(a, draw(Family::Gan, 24, 6).unwrap());
    for (i, p) in a.iter().enumerate() {
        assert!(!a[..i].contains(p), "point {i} drawn twice");
    }
    assert!(draw(Family::Ebgan, 513, 0).is_err());
    assert_eq!(Family::parse("ebgan-pt"), Some(Family::EbganPt));
    assert_eq!(Family::parse("wgan"), None);
}

#[test]
fn quartiles_interpolate_between_order_statistics() {
    // numpy.percentile([3, 1, 4, 1, 5, 9, 2, 6], [25, 50, 75]) -> [1.75, 3.5, 5.25]
    let q = quartiles(&[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]).unwrap();
    assert_eq!(q, [1.75, 3.5, 5.25]);
    assert_eq!(quartiles(&[2.0]).unwrap(), [2.0; 3]);
    assert!(quartiles(&[]).is_none());
}

#[test]
fn histogram_bins_each_series_as_a_share_of_its_runs() {
    let a = [0.0, 0.5, 1.0, 2.0];
    let b = [1.9, 2.0];
    let series = [
        HistogramSeries {
            label: "A".into(),
            values: &a,
            color: [0, 0, 255],
        },
        HistogramSeries {
            label: "B".into(),
            values: &b,
            color: [255, 0, 0],
        },
    ];
    let h = histogram(&series, 4).unwrap();
    assert_eq!(h.edges, vec![0.0, 0.5, 1.0, 1.5, 2.0]);
    // The top edge falls in the last bin.
    assert_eq!(h.percent[0], vec![25.0, 25.0, 25.0, 25.0]);
    assert_eq!(h.percent[1], vec![0.0, 0.0, 0.0, 100.0]);
    let nan = [f64::NAN];
    let bad = [HistogramSeries {
        label: "x".into(),
        values: &nan,
        color: [0; 3],
    }];
    assert!(histogram(&bad, 4).is_err());
    assert!(histogram(&series, 0).is_err());
    let path = std::env::temp_dir().join(format!("saddle-hist-{}.png", std::process::id()));
    histogram_png(&series, 4, "TEST", "I'", (400, 240), &path).unwrap();
    let img = image::open(&path).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (400, 240));
    // Both series' colours are drawn (bars and legend).
    assert!(img.pixels().any(|p| p.0 == [0, 0, 255]));
    assert!(img.pixels().any(|p| p.0 == [255, 0, 0]));
    std::fs::remove_file(&path).unwrap();
}

fn small(optim: OptimKind) -> MlpGanConfig {
    MlpGanConfig {
        nz: 8,
        image_dim: 16,
        layers_g: 2,
        size_g: 32,
        layers_d: 3,
        size_d: 24,
        dropout_d: 0.5,
        optim_d: optim,
        optim_g: optim,
        lr: 1e-3,
        ..MlpGanConfig::default()
    }
}

#[test]
fn gan_baseline_has_the_grid_sizes_and_d_learns_a_fixed_batch() {
    let t = MlpGanTrainer::new(small(OptimKind::Adam), 0).unwrap();
    // D: 16 -> 24 -> 24 -> 1 with biases; G: 8 -> 32 (+ batch norm) -> 16.
    assert_eq!(t.d.num_parameters(), 16 * 24 + 24 + 24 * 24 + 24 + 24 + 1);
    assert_eq!(t.g.num_parameters(), 8 * 32 + 32 + 2 * 32 + 32 * 16 + 16);
    assert_eq!(t.d.drops.len(), 2);
    for optim in [OptimKind::Adam, OptimKind::Sgd] {
        let mut cfg = small(optim);
        cfg.lr = if optim == OptimKind::Sgd { 0.1 } else { 1e-3 };
        let mut t = MlpGanTrainer::new(cfg, 1).unwrap();
        let real = Tensor::rand(
            &[32, 16],
            0.5,
            1.0,
            DType::F32,
            Device::Cpu,
            &mut Rng::new(2),
        )
        .unwrap();
        let first = t.d_step(&real).unwrap().loss;
        let mut last = first;
        // D alone against a fixed G learns to tell the batch from G's samples.
        for _ in 0..40 {
            last = t.d_step(&real).unwrap().loss;
        }
        assert!(last < 0.8 * first, "{optim:?}: D loss {first} -> {last}");
        let s = t.step(&real).unwrap();
        assert!(
            s.is_finite() && s.pt.is_none() && s.real_score > s.fake_score,
            "{s:?}"
        );
    }
}

/// 16 rows of 16 values in [-1, 1) drawn from `seed`.
fn real_batch(seed: u64) -> Tensor {
    Tensor::rand(
        &[16, 16],
        -1.0,
        1.0,
        DType::F32,
        Device::Cpu,
        &mut Rng::new(seed),
    )
    .unwrap()
}

/// One step of the grid's GAN (dropout in D; D on SGD, G on Adam, the grid's two optimisers)
/// against both losses rebuilt by hand by a twin trainer from the same seed, which draws the
/// same noise and dropout masks in the same order: D's mean of `BCE(D(x), 1)` and `BCE(D(G(z)),
/// 0)`, then G's non-saturating `BCE(D'(G(z')), 1)` on fresh noise through D' = D after its
/// update (copied into the twin). D's SGD step and G's Adam first step are checked element by
/// element against these gradients.
///
/// Fails on (each tried by a deliberate change to `mlp_gan.rs` / `mlp_trainer.rs`): G trained
/// toward the label 0; D's loss summed instead of averaged over its two terms; G's loss taken
/// through the D of before the update.
#[test]
fn gan_baseline_step_moves_both_players_by_the_hand_built_losses() {
    use saddle_nn::optim::Optimizer;
    use saddle_nn::Module;
    let cfg = MlpGanConfig {
        optim_d: OptimKind::Sgd,
        lr: 0.05,
        ..small(OptimKind::Adam)
    };
    let real = real_batch(8);
    let mut stepped = MlpGanTrainer::new(cfg, 17).unwrap();
    let s = stepped.step(&real).unwrap();
    let mut twin = MlpGanTrainer::new(cfg, 17).unwrap();

    let bce = |logits: Tensor, label: f64| {
        let target = logits.full_like(label).unwrap();
        logits.binary_cross_entropy_with_logits(&target).unwrap()
    };
    let z = twin.noise(16).unwrap();
    let fake = saddle_nn::engine::no_grad(|| twin.g.forward(&z)).unwrap();
    let hand_d = bce(twin.d.forward(&real).unwrap(), 1.0)
        .add(&bce(twin.d.forward(&fake).unwrap(), 0.0))
        .unwrap()
        .mul_scalar(0.5)
        .unwrap();
    let d_grads = hand_d.backward().unwrap();
    one_step::assert_sgd_step("D", &twin.d, &stepped.d, &d_grads, cfg.lr);

    one_step::copy_parameters(&stepped.d, &twin.d);
    let z = twin.noise(16).unwrap();
    let hand_g = bce(twin.d.forward(&twin.g.forward(&z).unwrap()).unwrap(), 1.0);
    let g_grads = hand_g.backward().unwrap();
    let state = stepped.opt_g.state_tensors();
    let adam = (cfg.lr, cfg.beta1);
    one_step::assert_adam_first_step("G", &twin.g, &stepped.g, &state, &g_grads, adam);
    for (what, got, want) in [("d_loss", s.d_loss, &hand_d), ("g_loss", s.g_loss, &hand_g)] {
        let want = want.to_scalar().unwrap();
        assert!(
            (got - want).abs() <= 1e-6 * want.abs(),
            "{what}: {got} vs {want}"
        );
    }
}

#[test]
fn gan_baseline_resumes_exactly_from_a_checkpoint() {
    let path =
        std::env::temp_dir().join(format!("saddle-mlpgan-{}.safetensors", std::process::id()));
    let real = real_batch(3);
    let mut a = MlpGanTrainer::new(small(OptimKind::Adam), 4).unwrap();
    a.step(&real).unwrap();
    a.checkpoint().save(&path).unwrap();
    let mut b = MlpGanTrainer::new(small(OptimKind::Adam), 99).unwrap();
    b.restore(&Checkpoint::load(&path).unwrap()).unwrap();
    assert_eq!(b.steps(), 1);
    let (sa, sb) = (a.step(&real).unwrap(), b.step(&real).unwrap());
    assert_eq!(sa, sb);
    std::fs::remove_file(&path).unwrap();
}

/// The grid's GAN baseline (dropout in D; Adam, then SGD) trained a few steps from one seed on
/// the CPU and on cuda:0 reports the same losses and scores within 1e-3 relative (D's masks hold
/// `16 * 24` values, a multiple of 4, so device and host draws stay on one Philox stream).
/// Skipped with the reason without a GPU.
#[test]
fn gan_baseline_trains_to_the_same_loss_curve_on_both_devices() {
    for optim in [OptimKind::Adam, OptimKind::Sgd] {
        let name = format!("GAN baseline ({optim:?})");
        common::assert_same_curve_on_both_devices(&name, 1e-3, |device| {
            let mut t = MlpGanTrainer::new(small(optim), 6).unwrap();
            t.to_device(device).unwrap();
            assert_eq!(t.device(), device);
            let real = real_batch(7);
            (0..4).map(|_| t.step(&real).unwrap().named()).collect()
        });
    }
}
