//! Fused neural-network ops and losses: batch norm, softmax/log-softmax, losses, dropout,
//! maxout, L2 normalisation. Forward values against PyTorch literals, gradient checks on random
//! shapes, determinism, and errors.
//!
//! The PyTorch literals come from this snippet (torch 2.15, CPU, float64); each test names the
//! line it uses:
//!
//! ```python
//! import torch, torch.nn.functional as F
//! torch.set_default_dtype(torch.float64)
//! def p(name, t): print(name, [float('%.12g' % v) for v in t.flatten().tolist()])
//! x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -2.0], [-0.5, 3.0, 1.0], [2.5, 1.0, 0.0]])
//! g = torch.tensor([1.5, -0.5, 2.0]); b = torch.tensor([0.1, 0.2, -0.3])
//! p("bn2d", F.batch_norm(x, None, None, g, b, training=True, eps=1e-5))
//! p("bn2d_mean", x.mean(0)); p("bn2d_var", x.var(0, unbiased=False)); p("bn2d_varu", x.var(0, unbiased=True))
//! x4 = torch.arange(16.).reshape(2, 2, 2, 2).mul(0.7).sin().mul(3)
//! g4 = torch.tensor([0.8, 1.2]); b4 = torch.tensor([-0.5, 0.25])
//! p("bn4d", F.batch_norm(x4, None, None, g4, b4, training=True, eps=1e-3))
//! p("bn4d_mean", x4.mean((0, 2, 3))); p("bn4d_var", x4.var((0, 2, 3), unbiased=False))
//! p("bn4d_varu", x4.var((0, 2, 3), unbiased=True))
//! x3 = torch.tensor([[[1., 2.], [3., 4.], [5., 6.]], [[-1., 0.], [0.5, 2.5], [7., -3.]]])
//! rm = torch.tensor([0.5, 2.0, 1.0]); rv = torch.tensor([1.0, 4.0, 9.0])
//! p("bneval", F.batch_norm(x3, rm, rv, torch.tensor([1., 2., 3.]), torch.tensor([0., -1., 1.]),
//!                          training=False, eps=1e-5))
//! s = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.25]])
//! p("softmax_last", F.softmax(s, -1)); p("softmax_0", F.softmax(s, 0))
//! p("log_softmax_last", F.log_softmax(s, -1)); p("log_softmax_0", F.log_softmax(s, 0))
//! lx = torch.tensor([[0.5, -2.0, 3.0], [-0.25, 1.0, 20.0]])
//! lt = torch.tensor([[1.0, 0.0, 0.5], [0.25, 1.0, 0.0]])
//! p("bce", F.binary_cross_entropy_with_logits(lx, lt))
//! p("ce", F.cross_entropy(lx, torch.tensor([2, 0])))
//! p("mse", F.mse_loss(lx, lt)); p("l1", F.l1_loss(lx, lt))
//! p("hinge_real", F.relu(1 - lx).mean()); p("hinge_fake", F.relu(1 + lx).mean())
//! p("l2n", F.normalize(s, p=2, dim=0, eps=1e-12))
//! ```

use proptest::prelude::*;
use saddle_engine::gradcheck::{assert_close, check_gradients};
use saddle_engine::{DType, Device, Error, Rng, Tensor};
use std::f64::consts::FRAC_1_SQRT_2;
use std::slice::from_ref;

fn t(values: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape, Device::Cpu).unwrap()
}

fn leaf(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    Tensor::randn(shape, 0.0, 1.0, DType::F64, Device::Cpu, &mut rng)
        .unwrap()
        .with_requires_grad(true)
}

fn err_text(r: saddle_engine::Result<Tensor>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

// ------------------------------------------------------------------------------------------
// Forward values against PyTorch

#[test]
fn batch_norm_2d_matches_pytorch() {
    let x = t(
        &[
            0.5, -1.0, 2.0, 1.5, 0.0, -2.0, -0.5, 3.0, 1.0, 2.5, 1.0, 0.0,
        ],
        &[4, 3],
    );
    let (g, b) = (t(&[1.5, -0.5, 2.0], &[3]), t(&[0.1, 0.2, -0.3], &[3]));
    // "bn2d", "bn2d_mean", "bn2d_var", "bn2d_varu"
    let want = [
        -0.570817709984,
        0.791606626068,
        2.06642650427,
        0.770817709984,
        0.453545696886,
        -3.34254836263,
        -1.91245312995,
        -0.560637090659,
        0.714182787545,
        2.11245312995,
        0.115484767705,
        -0.638060929182,
    ];
    let out = x.batch_norm(Some(&g), Some(&b), 1e-5).unwrap();
    assert_close(&out.output, &want, 1e-10);
    assert_close(&out.mean, &[1.0, 0.75, 0.25], 1e-12);
    assert_close(&out.var, &[1.25, 2.1875, 2.1875], 1e-12);
    assert_close(
        &out.var_unbiased,
        &[1.66666666667, 2.91666666667, 2.91666666667],
        1e-10,
    );
    assert!(!out.mean.requires_grad() && !out.var.requires_grad());

    // The same in f32.
    let f = |v: &Tensor| v.to_dtype(DType::F32).unwrap();
    let out32 = f(&x).batch_norm(Some(&f(&g)), Some(&f(&b)), 1e-5).unwrap();
    assert_eq!(out32.output.dtype(), DType::F32);
    assert_close(&out32.output, &want, 1e-5);
}

fn x4() -> Tensor {
    let values: Vec<f64> = (0..16).map(|i| (i as f64 * 0.7).sin() * 3.0).collect();
    t(&values, &[2, 2, 2, 2])
}

#[test]
fn batch_norm_4d_matches_pytorch() {
    let (g, b) = (t(&[0.8, 1.2], &[2]), t(&[-0.5, 0.25], &[2]));
    let out = x4().batch_norm(Some(&g), Some(&b), 1e-3).unwrap();
    // "bn4d", "bn4d_mean", "bn4d_var", "bn4d_varu"
    let want = [
        -1.14505261459,
        -0.20157027966,
        0.298177570835,
        0.11915171403,
        1.34118676426,
        0.0460396331084,
        -0.937528640539,
        -1.14693052891,
        -2.06956762445,
        -1.12042799096,
        -0.182869702732,
        0.302158927521,
        2.32252311657,
        1.31117732707,
        0.0163963692803,
        -0.952864040835,
    ];
    assert_close(&out.output, &want, 1e-10);
    assert_close(&out.mean, &[1.32134207966, -0.728362905509], 1e-10);
    assert_close(&out.var, &[2.68446950954, 3.6325027701], 1e-10);
    assert_close(&out.var_unbiased, &[3.06796515376, 4.15143173726], 1e-10);
    // A non-contiguous input (a permuted view) gives the same result.
    let permuted = x4()
        .permute(&[0, 2, 3, 1])
        .unwrap()
        .contiguous()
        .unwrap()
        .permute(&[0, 3, 1, 2])
        .unwrap();
    assert!(!permuted.is_contiguous());
    assert_close(
        &permuted
            .batch_norm(Some(&g), Some(&b), 1e-3)
            .unwrap()
            .output,
        &want,
        1e-10,
    );
}

#[test]
fn batch_norm_eval_matches_pytorch() {
    let x = t(
        &[1., 2., 3., 4., 5., 6., -1., 0., 0.5, 2.5, 7., -3.],
        &[2, 3, 2],
    );
    let (rm, rv) = (t(&[0.5, 2.0, 1.0], &[3]), t(&[1.0, 4.0, 9.0], &[3]));
    let (g, b) = (t(&[1., 2., 3.], &[3]), t(&[0., -1., 1.], &[3]));
    // "bneval"
    let want = [
        0.499997500019,
        1.49999250006,
        -1.24999765627e-06,
        0.999997500005,
        4.99999777778,
        5.99999722222,
        -1.49999250006,
        -0.499997500019,
        -2.499998125,
        -0.500000624999,
        6.99999666667,
        -2.99999777778,
    ];
    assert_close(
        &x.batch_norm_eval(&rm, &rv, Some(&g), Some(&b), 1e-5)
            .unwrap(),
        &want,
        1e-10,
    );
}

#[test]
fn softmax_and_log_softmax_match_pytorch() {
    let s = t(&[1.0, 2.0, 3.0, -1.0, 0.5, 0.25], &[2, 3]);
    // "softmax_last", "softmax_0", "log_softmax_last", "log_softmax_0"
    let softmax_last = [
        0.0900305731704,
        0.244728471055,
        0.665240955775,
        0.11145747105,
        0.499517729813,
        0.389024799137,
    ];
    let softmax_0 = [
        0.880797077978,
        0.817574476194,
        0.939913349826,
        0.119202922022,
        0.182425523806,
        0.060086650174,
    ];
    let log_last = [
        -2.40760596444,
        -1.40760596444,
        -0.407605964444,
        -2.1941121864,
        -0.694112186402,
        -0.944112186402,
    ];
    let log_0 = [
        -0.126928011043,
        -0.201413277983,
        -0.0619675890032,
        -2.12692801104,
        -1.70141327798,
        -2.811967589,
    ];
    assert_close(&s.softmax(-1).unwrap(), &softmax_last, 1e-10);
    assert_close(&s.softmax(1).unwrap(), &softmax_last, 1e-10);
    assert_close(&s.softmax(0).unwrap(), &softmax_0, 1e-10);
    assert_close(&s.softmax(-2).unwrap(), &softmax_0, 1e-10);
    assert_close(&s.log_softmax(-1).unwrap(), &log_last, 1e-10);
    assert_close(&s.log_softmax(0).unwrap(), &log_0, 1e-10);
    // f32 and a transposed (non-contiguous) input.
    let s32 = s.to_dtype(DType::F32).unwrap();
    assert_close(&s32.softmax(-1).unwrap(), &softmax_last, 1e-6);
    let st = s.t().unwrap();
    assert_close(&st.softmax(1).unwrap().t().unwrap(), &softmax_0, 1e-10);
}

/// Softmax, log-softmax and cross-entropy of logits 1e4 apart against their closed forms:
/// the first row's log-probabilities are exactly 0, -2e4 and -1e4, the second row's are
/// `[0, -1, -2] - ln(1 + e^-1 + e^-2)` to within a few ulps (its logits are 1e4 - k, exact in
/// f32), the cross-entropy of labels [1, 2] is `(2e4 + 2 + ln(1 + e^-1 + e^-2)) / 2` and its
/// gradient `(softmax - onehot) / 2`. Fails (each shown by a deliberate change) on the
/// cross-entropy flooring log-probabilities at -100 to guard a log of 0 (51 instead of 10001),
/// and on the log-sum taken as `ln(s + 1e-5)` (every log-probability shifts by ~1e-5): the
/// finiteness and 1e-2 relative checks this replaces passed both.
#[test]
fn softmax_log_softmax_and_cross_entropy_of_huge_logits_take_closed_form_values() {
    let lse = (1.0 + (-1.0f64).exp() + (-2.0f64).exp()).ln(); // 0.40760596444
    let probs = [1.0, (-1.0f64).exp(), (-2.0f64).exp()].map(|e| e / lse.exp());
    let log_probs = [-lse, -1.0 - lse, -2.0 - lse];
    let ce = (2e4 + 2.0 + lse) / 2.0;
    for dtype in [DType::F32, DType::F64] {
        // A few ulps of the values compared (about 2.4 at most, 1e4 for the cross-entropy).
        let ulp = if dtype == DType::F32 { 1.2e-7 } else { 2.3e-16 };
        let x = t(&[1e4, -1e4, 0.0, 1e4, 1e4 - 1.0, 1e4 - 2.0], &[2, 3])
            .to_dtype(dtype)
            .unwrap()
            .with_requires_grad(true);
        let y = x.softmax(-1).unwrap().to_vec_f64().unwrap();
        let ly = x.log_softmax(-1).unwrap().to_vec_f64().unwrap();
        assert_eq!(&y[..3], &[1.0, 0.0, 0.0], "{dtype}");
        assert_eq!(&ly[..3], &[0.0, -2e4, -1e4], "{dtype}");
        for k in 0..3 {
            assert!((y[3 + k] - probs[k]).abs() <= 4.0 * ulp, "{dtype}: {y:?}");
            assert!(
                (ly[3 + k] - log_probs[k]).abs() <= 8.0 * ulp,
                "{dtype}: {ly:?}"
            );
        }
        let loss = x.cross_entropy(&[1, 2]).unwrap();
        let got = loss.to_scalar().unwrap();
        assert!(
            (got - ce).abs() <= 4.0 * ulp * ce,
            "{dtype}: cross-entropy {got}, want {ce}"
        );
        let grads = loss.backward().unwrap();
        let g = grads.get(&x).unwrap().to_vec_f64().unwrap();
        let want = [
            0.5,
            -0.5,
            0.0,
            probs[0] / 2.0,
            probs[1] / 2.0,
            (probs[2] - 1.0) / 2.0,
        ];
        for (a, b) in g.iter().zip(want) {
            assert!(
                (a - b).abs() <= 4.0 * ulp,
                "{dtype}: gradient {g:?}, want {want:?}"
            );
        }
    }
}

#[test]
fn losses_match_pytorch() {
    let x = t(&[0.5, -2.0, 3.0, -0.25, 1.0, 20.0], &[2, 3]);
    let target = t(&[1.0, 0.0, 0.5, 0.25, 1.0, 0.0], &[2, 3]);
    // "bce", "ce", "mse", "l1", "hinge_real", "hinge_fake"
    let cases: [(&str, Tensor, f64); 6] = [
        (
            "bce",
            x.binary_cross_entropy_with_logits(&target).unwrap(),
            3.85021557604,
        ),
        ("ce", x.cross_entropy(&[2, 0]).unwrap(), 10.1675486268),
        ("mse", x.mse_loss(&target).unwrap(), 68.4583333333),
        ("l1", x.l1_loss(&target).unwrap(), 4.25),
        ("hinge_real", x.hinge_loss_real().unwrap(), 0.791666666667),
        ("hinge_fake", x.hinge_loss_fake().unwrap(), 4.875),
    ];
    for (name, got, want) in cases {
        assert_eq!(got.shape(), &[] as &[usize], "{name} must be 0-d");
        let v = got.to_scalar().unwrap();
        assert!(
            (v - want).abs() < 1e-10 * (1.0 + want.abs()),
            "{name}: got {v}, want {want}"
        );
    }
    // f32 versions agree.
    let (x32, t32) = (
        x.to_dtype(DType::F32).unwrap(),
        target.to_dtype(DType::F32).unwrap(),
    );
    let bce32 = x32.binary_cross_entropy_with_logits(&t32).unwrap();
    assert_eq!(bce32.dtype(), DType::F32);
    assert!((bce32.to_scalar().unwrap() - 3.85021557604).abs() < 1e-5);
    assert!(
        (x32.cross_entropy(&[2, 0]).unwrap().to_scalar().unwrap() - 10.1675486268).abs() < 1e-5
    );
}

/// Binary cross-entropy of huge logits against its closed form
/// `max(x, 0) - x t + ln(1 + e^-|x|)`: 0 where the logit agrees with a 0/1 target, `|x|` where
/// it disagrees, `x (1 - t)` or `-x t` for soft targets (1e4 · 0.5 = 5000, 1e4 · 0.25 = 2500),
/// so the mean is `(1e4 + 5000 + 2500 + 50) / 6` exactly in both dtypes; the gradient is
/// `(sigmoid(x) - t) / 6`. Fails (each shown by a deliberate change) on a sigmoid clamped into
/// [1e-7, 1 - 1e-7] before its logarithm (a wrong logit costs ~16 instead of 1e4), and on a
/// gradient through `e^x / (1 + e^x)` (NaN at 1e4), which no check at extreme logits saw
/// before.
#[test]
fn binary_cross_entropy_of_huge_logits_takes_closed_form_values() {
    let x = [1e4, -1e4, 1e4, -1e4, -1e4, 50.0];
    let target = [1.0, 0.0, 0.5, 0.25, 1.0, 0.0];
    let want = (1e4 + 5000.0 + 2500.0 + 50.0) / 6.0;
    let want_grad = [0.0, 0.0, 0.5, -0.25, -1.0, 1.0].map(|g: f64| g / 6.0);
    for dtype in [DType::F32, DType::F64] {
        let ulp = if dtype == DType::F32 { 1.2e-7 } else { 2.3e-16 };
        let xt = t(&x, &[6])
            .to_dtype(dtype)
            .unwrap()
            .with_requires_grad(true);
        let loss = xt
            .binary_cross_entropy_with_logits(&t(&target, &[6]).to_dtype(dtype).unwrap())
            .unwrap();
        let got = loss.to_scalar().unwrap();
        assert!(
            (got - want).abs() <= 4.0 * ulp * want,
            "{dtype}: {got}, want {want}"
        );
        let g = loss
            .backward()
            .unwrap()
            .get(&xt)
            .unwrap()
            .to_vec_f64()
            .unwrap();
        for (a, b) in g.iter().zip(want_grad) {
            assert!(
                (a - b).abs() <= 4.0 * ulp,
                "{dtype}: gradient {g:?}, want {want_grad:?}"
            );
        }
    }
}

#[test]
fn l2_normalize_matches_pytorch() {
    let s = t(&[1.0, 2.0, 3.0, -1.0, 0.5, 0.25], &[2, 3]);
    // "l2n" (its first column is +-1/sqrt(2): 0.707106781187)
    let want = [
        FRAC_1_SQRT_2,
        0.970142500145,
        0.996545758245,
        -FRAC_1_SQRT_2,
        0.242535625036,
        0.0830454798537,
    ];
    assert_close(&s.l2_normalize(0, 1e-12).unwrap(), &want, 1e-10);
    // Below eps the norm is replaced by eps: x / eps.
    assert_close(
        &t(&[3e-4, 4e-4], &[1, 2]).l2_normalize(-1, 1e-2).unwrap(),
        &[0.03, 0.04],
        1e-12,
    );
}

#[test]
fn maxout_takes_group_maxima_and_routes_gradient_to_the_maxima() {
    // [2, 4] with groups of 2 along dim 1 -> [2, 2].
    let x = t(&[1.0, 3.0, -2.0, -5.0, 0.0, 0.0, 7.0, 8.0], &[2, 4]).with_requires_grad(true);
    let y = x.maxout(2, 1).unwrap();
    assert_eq!(y.shape(), &[2, 2]);
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![3.0, -2.0, 0.0, 8.0]);
    let w = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let grads = y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    // Tied maxima share the group's gradient.
    assert_eq!(
        grads.get(&x).unwrap().to_vec::<f64>().unwrap(),
        vec![0.0, 1.0, 2.0, 0.0, 1.5, 1.5, 0.0, 4.0]
    );
    // Along a leading dimension: [4, 1] -> [2, 1].
    let z = t(&[1.0, 3.0, -2.0, -5.0], &[4, 1]).maxout(2, 0).unwrap();
    assert_eq!(
        (z.shape().to_vec(), z.to_vec::<f64>().unwrap()),
        (vec![2, 1], vec![3.0, -2.0])
    );
}

// ------------------------------------------------------------------------------------------
// Dropout

#[test]
fn dropout_is_seeded_scaled_and_identity_when_off() {
    let x = Tensor::ones(&[200, 500], DType::F32, Device::Cpu).unwrap();
    let p = 0.3;
    let a = x
        .dropout(p, &mut Rng::new(42), true)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let b = x
        .dropout(p, &mut Rng::new(42), true)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let c = x
        .dropout(p, &mut Rng::new(43), true)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(a, b, "same seed, same mask");
    assert_ne!(a, c, "another seed, another mask");
    let n = a.len() as f64;
    let zeros = a.iter().filter(|&&v| v == 0.0).count() as f64 / n;
    assert!((zeros - p).abs() < 0.01, "zero fraction {zeros}");
    let scale = (1.0 / (1.0 - p)) as f32;
    assert!(a.iter().all(|&v| v == 0.0 || v == scale));
    let mean = a.iter().map(|&v| v as f64).sum::<f64>() / n;
    assert!((mean - 1.0).abs() < 0.02, "mean {mean}");

    let mut rng = Rng::new(42);
    let before = rng.state();
    assert_eq!(
        x.dropout(p, &mut rng, false)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        x.to_vec::<f32>().unwrap()
    );
    assert_eq!(
        x.dropout(0.0, &mut rng, true)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        x.to_vec::<f32>().unwrap()
    );
    assert_eq!(rng.state(), before, "no draws when dropout is off");
}

#[test]
fn dropout_gradient_uses_the_same_mask() {
    let x = leaf(&[50], 3);
    let y = x.dropout(0.5, &mut Rng::new(9), true).unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    let (yv, gv) = (
        y.to_vec::<f64>().unwrap(),
        grads.get(&x).unwrap().to_vec::<f64>().unwrap(),
    );
    for (yi, gi) in yv.iter().zip(&gv) {
        assert!(
            if *yi == 0.0 { *gi == 0.0 } else { *gi == 2.0 },
            "y {yi} grad {gi}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// Determinism for any thread count

#[test]
fn batch_norm_and_softmax_are_bit_identical_across_thread_counts() {
    // Big enough to take the parallel paths.
    let leaf32 = |shape: &[usize], seed| {
        leaf(shape, seed)
            .detach()
            .to_dtype(DType::F32)
            .unwrap()
            .with_requires_grad(true)
    };
    let x = leaf32(&[16, 8, 24, 24], 5);
    let g = leaf32(&[8], 6);
    let w = leaf32(&[16, 8, 24, 24], 7).detach();
    let run = || {
        let out = x.batch_norm(Some(&g), None, 1e-5).unwrap();
        let sm = x.softmax(1).unwrap();
        let loss = out
            .output
            .mul(&w)
            .unwrap()
            .add(&sm)
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let mut all = out.output.to_vec::<f32>().unwrap();
        all.extend(out.mean.to_vec::<f32>().unwrap());
        all.extend(out.var.to_vec::<f32>().unwrap());
        all.extend(grads.get(&x).unwrap().to_vec::<f32>().unwrap());
        all.extend(grads.get(&g).unwrap().to_vec::<f32>().unwrap());
        all.into_iter().map(f32::to_bits).collect::<Vec<u32>>()
    };
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    let one = pool(1).install(run);
    let two = pool(2).install(run);
    assert_eq!(one, two);
}

// ------------------------------------------------------------------------------------------
// Errors name the op

#[test]
fn errors_name_the_op() {
    let x = t(&[0.0; 6], &[2, 3]);
    let e = x
        .batch_norm(Some(&t(&[1.0; 2], &[2])), None, 1e-5)
        .map(|o| o.output);
    let e = err_text(e);
    assert!(
        e.contains("batch_norm") && e.contains("[2, 3]") && e.contains("[2]"),
        "{e}"
    );
    let e = err_text(
        t(&[0.0; 3], &[3])
            .batch_norm(None, None, 1e-5)
            .map(|o| o.output),
    );
    assert!(e.contains("batch_norm") && e.contains("[3]"), "{e}");
    let e = err_text(
        t(&[0.0; 3], &[1, 3])
            .batch_norm(None, None, 1e-5)
            .map(|o| o.output),
    );
    assert!(
        e.contains("batch_norm") && e.contains("more than 1 value"),
        "{e}"
    );
    let e = err_text(x.batch_norm_eval(&t(&[0.0; 3], &[3]), &t(&[1.0; 4], &[4]), None, None, 1e-5));
    assert!(e.contains("batch_norm_eval") && e.contains("[4]"), "{e}");
    let e = err_text(x.softmax(2));
    assert!(e.contains("softmax") && e.contains("[2, 3]"), "{e}");
    let e = err_text(x.log_softmax(-3));
    assert!(e.contains("log_softmax"), "{e}");
    let e = err_text(x.cross_entropy(&[0, 3]));
    assert!(e.contains("cross_entropy") && e.contains("label 3"), "{e}");
    let e = err_text(x.cross_entropy(&[0, 1, 2]));
    assert!(
        e.contains("cross_entropy") && e.contains("[2, 3]") && e.contains("3 labels"),
        "{e}"
    );
    let e = err_text(t(&[0.0; 6], &[6]).cross_entropy(&[0]));
    assert!(e.contains("cross_entropy") && e.contains("[N, C]"), "{e}");
    let other = t(&[0.0; 6], &[3, 2]);
    for (name, r) in [
        (
            "binary_cross_entropy_with_logits",
            x.binary_cross_entropy_with_logits(&other),
        ),
        ("mse_loss", x.mse_loss(&other)),
        ("l1_loss", x.l1_loss(&other)),
    ] {
        let e = err_text(r);
        assert!(
            e.contains(name) && e.contains("[2, 3]") && e.contains("[3, 2]"),
            "{e}"
        );
    }
    for p in [1.0, -0.1, f64::NAN] {
        let e = err_text(x.dropout(p, &mut Rng::new(0), true));
        assert!(e.contains("dropout"), "{e}");
    }
    let e = err_text(x.maxout(2, 1));
    assert!(e.contains("maxout") && e.contains("[2, 3]"), "{e}");
    assert!(err_text(x.maxout(0, 1)).contains("maxout"));
    assert!(err_text(x.maxout(1, 2)).contains("maxout"));
    let e = err_text(x.l2_normalize(2, 1e-12));
    assert!(e.contains("l2_normalize") && e.contains("[2, 3]"), "{e}");
    assert!(matches!(
        x.l2_normalize(0, -1.0),
        Err(Error::InvalidArgument {
            op: "l2_normalize",
            ..
        })
    ));
}

// ------------------------------------------------------------------------------------------
// Gradient checks on random shapes (f64, central differences)

const EPS: f64 = 1e-6;
const ATOL: f64 = 1e-7;
const RTOL: f64 = 1e-5;

/// A small random shape for batch norm: [N, C] or [N, C, L] or [N, C, H, W], N >= 2.
fn bn_shape() -> impl Strategy<Value = Vec<usize>> {
    (2usize..4, 1usize..4, prop::collection::vec(1usize..3, 0..3)).prop_map(|(n, c, rest)| {
        let mut s = vec![n, c];
        s.extend(rest);
        s
    })
}

/// A small random shape of rank 1..=3.
fn small_shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..4, 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn batch_norm_gradients(shape in bn_shape(), affine in any::<bool>(), seed in 0u64..1000) {
        let c = shape[1];
        let x = leaf(&shape, seed);
        let (g, b) = (leaf(&[c], seed + 1), leaf(&[c], seed + 2));
        // The check differentiates through the fused backward of `batch_norm` (one node).
        let y = x.batch_norm(Some(&g), Some(&b), 1e-5).unwrap().output;
        prop_assert_eq!(y.shape(), &shape[..]);
        if affine {
            check_gradients(|v| Ok(v[0].batch_norm(Some(&v[1]), Some(&v[2]), 1e-5)?.output), &[x, g, b], EPS, 1e-6, 1e-4)
        } else {
            check_gradients(|v| Ok(v[0].batch_norm(None, None, 1e-5)?.output), &[x], EPS, 1e-6, 1e-4)
        }
        .map_err(TestCaseError::fail)?;
    }

    /// The batch statistics are functions of the input too: a ladder network normalises another
    /// tensor (its reconstruction) with the clean pass's mean and variance and differentiates
    /// through both, next to the normalised output itself.
    #[test]
    fn batch_norm_statistics_gradients(shape in bn_shape(), seed in 0u64..1000) {
        let mut channel_shape = vec![1; shape.len()];
        channel_shape[1] = shape[1];
        let (x, other) = (leaf(&shape, seed), leaf(&shape, seed + 1));
        check_gradients(
            |v| {
                let bn = v[0].batch_norm(None, None, 1e-5)?;
                let std = bn.var.add_scalar(1e-5)?.sqrt()?.reshape(&channel_shape)?;
                let normalised = v[1].sub(&bn.mean.reshape(&channel_shape)?)?.div(&std)?;
                normalised.mul(&bn.output)
            },
            &[x, other],
            EPS,
            1e-6,
            1e-4,
        )
        .map_err(TestCaseError::fail)?;
    }

    #[test]
    fn batch_norm_eval_gradients(shape in bn_shape(), seed in 0u64..1000) {
        let c = shape[1];
        let (x, g, b) = (leaf(&shape, seed), leaf(&[c], seed + 1), leaf(&[c], seed + 2));
        let mean = leaf(&[c], seed + 3).detach();
        let var = leaf(&[c], seed + 4).detach().abs().unwrap().add_scalar(0.5).unwrap();
        check_gradients(|v| v[0].batch_norm_eval(&mean, &var, Some(&v[1]), Some(&v[2]), 1e-5), &[x, g, b], EPS, ATOL, RTOL)
            .map_err(TestCaseError::fail)?;
    }

    #[test]
    fn softmax_gradients(shape in small_shape(), dim_pick in 0usize..3, negative in any::<bool>(), seed in 0u64..1000) {
        let rank = shape.len();
        let d = (dim_pick % rank) as isize;
        let dim = if negative { d - rank as isize } else { d };
        let x = leaf(&shape, seed);
        check_gradients(|v| v[0].softmax(dim), from_ref(&x), EPS, ATOL, RTOL).map_err(TestCaseError::fail)?;
        check_gradients(|v| v[0].log_softmax(dim), &[x], EPS, ATOL, RTOL).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn pointwise_loss_gradients(shape in small_shape(), seed in 0u64..1000) {
        let x = leaf(&shape, seed);
        let target = leaf(&shape, seed + 1);
        // BCE targets in [0, 1].
        let probs = target.detach().sigmoid().unwrap().with_requires_grad(true);
        check_gradients(|v| v[0].binary_cross_entropy_with_logits(&v[1]), &[x.clone(), probs], EPS, ATOL, RTOL)
            .map_err(TestCaseError::fail)?;
        check_gradients(|v| v[0].mse_loss(&v[1]), &[x.clone(), target.clone()], EPS, ATOL, RTOL).map_err(TestCaseError::fail)?;
        check_gradients(|v| v[0].l1_loss(&v[1]), &[x.clone(), target], EPS, ATOL, RTOL).map_err(TestCaseError::fail)?;
        check_gradients(|v| v[0].hinge_loss_real(), from_ref(&x), EPS, ATOL, RTOL).map_err(TestCaseError::fail)?;
        check_gradients(|v| v[0].hinge_loss_fake(), &[x], EPS, ATOL, RTOL).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn cross_entropy_gradients(n in 1usize..4, c in 1usize..5, seed in 0u64..1000) {
        let x = leaf(&[n, c], seed);
        let labels: Vec<usize> = (0..n).map(|i| (seed as usize + 3 * i) % c).collect();
        check_gradients(|v| v[0].cross_entropy(&labels), &[x], EPS, ATOL, RTOL).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn dropout_gradients(shape in small_shape(), p in 0.0f64..0.9, seed in 0u64..1000) {
        let x = leaf(&shape, seed);
        // A fresh generator with the same seed per evaluation: the same mask every time.
        check_gradients(|v| v[0].dropout(p, &mut Rng::new(seed), true), &[x], EPS, ATOL, RTOL).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn maxout_gradients(mut shape in small_shape(), pieces in 1usize..4, dim_pick in 0usize..3, seed in 0u64..1000) {
        let dim = dim_pick % shape.len();
        shape[dim] *= pieces;
        let x = leaf(&shape, seed);
        check_gradients(|v| v[0].maxout(pieces, dim), &[x], EPS, ATOL, RTOL).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn l2_normalize_gradients(shape in small_shape(), dim_pick in 0usize..3, seed in 0u64..1000) {
        let dim = (dim_pick % shape.len()) as isize;
        let x = leaf(&shape, seed);
        check_gradients(|v| v[0].l2_normalize(dim, 1e-12), from_ref(&x), EPS, ATOL, RTOL).map_err(TestCaseError::fail)?;
        // With eps above every lane's norm the op is x / eps.
        check_gradients(|v| v[0].mul_scalar(1e-3)?.l2_normalize(dim, 1.0), &[x], EPS, ATOL, RTOL).map_err(TestCaseError::fail)?;
    }
}
