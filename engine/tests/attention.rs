//! Fused attention (`Tensor::attention`): values and gradients against PyTorch literals,
//! agreement with the composite ops on random shapes and views, finite-difference gradient
//! checks, and errors.
//!
//! The PyTorch literals come from this snippet (torch 2.15, CPU, float64):
//!
//! ```python
//! import torch
//! torch.set_default_dtype(torch.float64)
//! def p(name, t): print(name, [float('%.12g' % v) for v in t.flatten().tolist()])
//! q = torch.arange(12.).reshape(2, 3, 2).mul(0.37).sin()
//! k = torch.arange(16.).reshape(2, 4, 2).mul(0.53).cos()
//! v = torch.arange(24.).reshape(2, 4, 3).mul(0.29).sin().mul(2)
//! for s in (1.0, 0.5):
//!     q1, k1, v1 = (t.clone().requires_grad_() for t in (q, k, v))
//!     o = torch.softmax(q1 @ k1.transpose(1, 2) * s, -1) @ v1
//!     p(f"out_{s}", o)
//!     w = torch.arange(18.).reshape(2, 3, 3).mul(0.41).cos()
//!     (o * w).sum().backward()
//!     p(f"dq_{s}", q1.grad); p(f"dk_{s}", k1.grad); p(f"dv_{s}", v1.grad)
//! ```

use proptest::prelude::*;
use saddle_engine::gradcheck::{assert_close, check_gradients};
use saddle_engine::{DType, Device, Rng, Tensor};

/// `f(i · step)` for `i` in `0..n`, as a tensor of `shape` (the snippet's `arange` inputs).
fn arange(shape: &[usize], step: f64, f: fn(f64) -> f64, gain: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n).map(|i| gain * f(i as f64 * step)).collect();
    Tensor::from_vec(v, shape, Device::Cpu)
        .unwrap()
        .with_requires_grad(true)
}

/// The output and the gradients of `sum(out * w)` of the snippet, for one scale.
fn snippet(scale: f64) -> [Tensor; 4] {
    let q = arange(&[2, 3, 2], 0.37, f64::sin, 1.0);
    let k = arange(&[2, 4, 2], 0.53, f64::cos, 1.0);
    let v = arange(&[2, 4, 3], 0.29, f64::sin, 2.0);
    let w = arange(&[2, 3, 3], 0.41, f64::cos, 1.0).detach();
    let out = q.attention(&k, &v, scale).unwrap();
    let grads = out.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    let g = |t: &Tensor| grads.get(t).unwrap().clone();
    [out.detach(), g(&q), g(&k), g(&v)]
}

#[test]
fn values_and_gradients_match_pytorch_without_scale() {
    let [out, dq, dk, dv] = snippet(1.0);
    #[rustfmt::skip]
    assert_close(&out, &[0.967382411803, 1.11373650803, 1.1670799637, 0.479518235353, 0.910592104897, 1.26562037986, 0.378406643805, 0.853033411908, 1.25642144133, -1.45996111829, -1.29823322076, -1.02808694726, -1.15049114438, -1.04679908474, -0.85568647931, -0.855698096487, -0.877930592611, -0.826845130503], 1e-10);
    #[rustfmt::skip]
    assert_close(&dq, &[-0.226686344538, -0.554692631548, -0.0870211545572, -0.0777685569132, 0.316730972612, 0.524491349813, 0.15948097883, 0.394434823319, 0.0115389491432, -0.496466141224, 0.119714515415, -0.5833988595], 1e-10);
    #[rustfmt::skip]
    assert_close(&dk, &[0.516567761302, 0.293274524454, -0.502083149745, -0.31991880175, -0.0604253477485, 0.0718633359021, 0.0459407361907, -0.0452190586063, 0.0899560249661, 0.23866427533, 0.370902754573, 0.538033999988, 0.164403430983, 0.212426023858, -0.625262210522, -0.989124299175], 1e-10);
    #[rustfmt::skip]
    assert_close(&dv, &[0.00125238408311, -0.44693795849, -0.82104460056, 0.182793893398, 0.0357132524058, -0.117287158534, 0.183354259611, 0.1409530738, 0.0751877384338, 0.1902669065, 0.154899143005, 0.0938555524737, 0.408589312518, 0.506429794072, 0.520325306358, -0.0883060851809, 0.0829544891931, 0.240464663951, -0.202241400158, 0.0103132162619, 0.221158330927, 0.225869022758, 0.366498557545, 0.446377894556], 1e-10);
}

#[test]
fn values_and_gradients_match_pytorch_with_scale() {
    let [out, dq, dk, dv] = snippet(0.5);
    #[rustfmt::skip]
    assert_close(&out, &[1.05111655052, 1.14407904819, 1.14149693153, 0.792784358354, 1.06642036992, 1.25099721804, 0.715595830063, 1.03772202367, 1.27318571726, -1.32417396611, -1.19824235683, -0.972242833514, -1.15874764244, -1.07043637192, -0.892730552598, -0.998236182167, -0.969563893179, -0.859921142947], 1e-10);
    #[rustfmt::skip]
    assert_close(&dq, &[-0.0707886294809, -0.242133941652, -0.098491809669, -0.082371296942, 0.156863353388, 0.306552059675, 0.0985592524679, 0.229728341251, 0.00738394022743, -0.2419678963, -0.0292147700838, -0.360936480398], 1e-10);
    #[rustfmt::skip]
    assert_close(&dk, &[0.287857639997, 0.180873093063, -0.297183328863, -0.213376458908, -0.0910391353819, -0.0148941486163, 0.100364824248, 0.0473975144616, -0.000660351808288, 0.0536353755314, 0.230069529834, 0.325565570657, 0.110897967646, 0.133595415356, -0.340307145672, -0.512796361544], 1e-10);
    #[rustfmt::skip]
    assert_close(&dv, &[0.0476597107999, -0.271127753984, -0.544973528444, 0.137844833351, -0.0441083666929, -0.21875023646, 0.179990247416, 0.0883619832044, -0.0179130179321, 0.192172652024, 0.111501648194, 0.01234831465, 0.258970972581, 0.38176851842, 0.441284742898, -0.0109934218481, 0.155063136604, 0.29541668471, -0.0659734121851, 0.118601680852, 0.283517554445, 0.161906711389, 0.310762721196, 0.408107213739], 1e-10);
}

fn randn(shape: &[usize], dtype: DType, rng: &mut Rng) -> Tensor {
    Tensor::randn(shape, 0.0, 1.0, dtype, Device::Cpu, rng)
        .unwrap()
        .with_requires_grad(true)
}

/// The op's output and the gradients of `leaves` against the composite
/// `softmax(scale q kᵀ) v`, with `(q, k, v) = operands()` (views of the leaves, built afresh for
/// each of the two graphs).
fn compare_with_composite(
    operands: impl Fn() -> (Tensor, Tensor, Tensor),
    leaves: &[&Tensor],
    scale: f64,
    tol: f64,
) {
    let run = |fused: bool| -> Vec<Vec<f64>> {
        let (q, k, v) = operands();
        let (q, k, v) = (&q, &k, &v);
        let out = if fused {
            q.attention(k, v, scale).unwrap()
        } else {
            q.matmul(&k.transpose(1, 2).unwrap())
                .unwrap()
                .mul_scalar(scale)
                .unwrap()
                .softmax(-1)
                .unwrap()
                .matmul(v)
                .unwrap()
        };
        let w = out.detach().tanh().unwrap();
        let grads = out.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
        let mut all = vec![out.to_vec_f64().unwrap()];
        for &t in leaves {
            all.push(grads.get(t).unwrap().to_vec_f64().unwrap());
        }
        all
    };
    let (fused, composite) = (run(true), run(false));
    for (i, (a, b)) in fused.iter().zip(&composite).enumerate() {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= tol * (1.0 + y.abs()),
                "tensor {i} (0 = output, then the leaves' gradients): fused {x} vs composite {y}"
            );
        }
    }
}

#[test]
fn f32_agrees_with_the_composite_ops_on_sagan_like_shapes() {
    let mut rng = Rng::new(11);
    // SAGAN's block at 8x8 with 32 channels: 64 queries of width 4, 16 pooled keys, values 16.
    let q = randn(&[2, 64, 4], DType::F32, &mut rng);
    let k = randn(&[2, 16, 4], DType::F32, &mut rng);
    let v = randn(&[2, 16, 16], DType::F32, &mut rng);
    let same = || (q.clone(), k.clone(), v.clone());
    compare_with_composite(same, &[&q, &k, &v], 1.0, 1e-5);
    compare_with_composite(same, &[&q, &k, &v], 0.5, 1e-5);
}

#[test]
fn views_and_shared_operands_read_like_copies() {
    let mut rng = Rng::new(12);
    // Channel-major features viewed as [B, positions, channels], as in the nn layer.
    let x = randn(&[3, 5, 7], DType::F64, &mut rng);
    let y = randn(&[3, 5, 4], DType::F64, &mut rng);
    let v = randn(&[3, 4, 6], DType::F64, &mut rng);
    let t = |a: &Tensor| a.transpose(1, 2).unwrap();
    let views = || (t(&x), t(&y), v.narrow(2, 1, 4).unwrap());
    compare_with_composite(views, &[&x, &y, &v], 1.0, 1e-12);
    // Self-attention of one tensor with itself: three views of one storage.
    compare_with_composite(|| (t(&x), t(&x), t(&x)), &[&x], 0.3, 1e-12);
}

#[test]
fn rejects_mismatched_operands_naming_the_op_and_shapes() {
    let mut rng = Rng::new(13);
    let q = randn(&[2, 3, 4], DType::F64, &mut rng);
    let k = randn(&[2, 5, 4], DType::F64, &mut rng);
    let v = randn(&[2, 5, 6], DType::F64, &mut rng);
    let err = |r: saddle_engine::Result<Tensor>| r.unwrap_err().to_string();
    let wrong_d = randn(&[2, 5, 3], DType::F64, &mut rng);
    let e = err(q.attention(&wrong_d, &v, 1.0));
    assert!(e.contains("attention") && e.contains("[2, 5, 3]"), "{e}");
    let wrong_nk = randn(&[2, 4, 6], DType::F64, &mut rng);
    assert!(err(q.attention(&k, &wrong_nk, 1.0)).contains("disagree"));
    let wrong_batch = randn(&[1, 5, 4], DType::F64, &mut rng);
    assert!(err(q.attention(&wrong_batch, &v, 1.0)).contains("disagree"));
    let flat = randn(&[3, 4], DType::F64, &mut rng);
    assert!(err(flat.attention(&k, &v, 1.0)).contains("[B, Nq, d]"));
    let q32 = randn(&[2, 3, 4], DType::F32, &mut rng);
    assert!(err(q32.attention(&k, &v, 1.0)).contains("attention"));
}

fn dims() -> impl Strategy<Value = (usize, usize, usize, usize, usize)> {
    (1usize..3, 1usize..5, 1usize..5, 1usize..4, 1usize..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Central differences in f64 through the fused backward (which recomputes the
    /// probabilities from the saved log-sum-exp), for q, k and v at once.
    #[test]
    fn gradients_match_finite_differences(
        (b, nq, nk, d, dv) in dims(),
        scale in prop::sample::select(vec![1.0, 0.35]),
        seed in 0u64..1000,
    ) {
        let mut rng = Rng::new(seed);
        let q = randn(&[b, nq, d], DType::F64, &mut rng);
        let k = randn(&[b, nk, d], DType::F64, &mut rng);
        let v = randn(&[b, nk, dv], DType::F64, &mut rng);
        check_gradients(|x| x[0].attention(&x[1], &x[2], scale), &[q, k, v], 1e-6, 1e-7, 1e-5)
            .map_err(TestCaseError::fail)?;
    }
}
