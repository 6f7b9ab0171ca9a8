//! The fused fully connected op: the same values and gradients as the matmul + bias
//! composition it replaces, gradient checks, leading batch dimensions and errors.

use saddle_engine::gradcheck::check_gradients;
use saddle_engine::{DType, Device, Rng, Tensor};

fn randn(shape: &[usize], dtype: DType, rng: &mut Rng) -> Tensor {
    Tensor::randn(shape, 0.0, 1.0, dtype, Device::Cpu, rng)
        .unwrap()
        .with_requires_grad(true)
}

/// Output and the gradients of x, W and b under a fixed output weighting.
fn run(x: &Tensor, w: &Tensor, b: &Tensor, fused: bool) -> Vec<Vec<f32>> {
    let y = if fused {
        x.linear(w, Some(b)).unwrap()
    } else {
        x.matmul(&w.t().unwrap()).unwrap().add(b).unwrap()
    };
    let mut rng = Rng::new(9);
    let weights = Tensor::randn(y.shape(), 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
    let grads = y
        .mul(&weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let mut out = vec![y.to_vec::<f32>().unwrap()];
    for t in [x, w, b] {
        out.push(grads.get(t).unwrap().to_vec::<f32>().unwrap());
    }
    out
}

#[test]
fn matches_the_matmul_and_bias_composition_exactly() {
    let mut rng = Rng::new(0);
    // Big enough for the parallel GEMM and bias paths.
    for (rows, n_in, n_out) in [(3, 5, 4), (100, 240, 1200), (64, 784, 17)] {
        let x = randn(&[rows, n_in], DType::F32, &mut rng);
        let w = randn(&[n_out, n_in], DType::F32, &mut rng);
        let b = randn(&[n_out], DType::F32, &mut rng);
        let (fused, composed) = (run(&x, &w, &b, true), run(&x, &w, &b, false));
        for (i, (f, c)) in fused.iter().zip(&composed).enumerate() {
            assert_eq!(f.len(), c.len());
            let worst = f
                .iter()
                .zip(c)
                .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                .fold(0.0f32, f32::max);
            // The forward is bit-identical; gradients may sum in another order.
            let tol = if i == 0 { 0.0 } else { 1e-5 };
            assert!(worst <= tol, "case {rows}x{n_in}x{n_out} part {i}: {worst}");
        }
    }
}

#[test]
fn gradients_match_finite_differences_with_batch_dimensions() {
    let mut rng = Rng::new(1);
    let x = randn(&[2, 3, 4], DType::F64, &mut rng);
    let w = randn(&[5, 4], DType::F64, &mut rng);
    let b = randn(&[5], DType::F64, &mut rng);
    check_gradients(
        |t| t[0].linear(&t[1], Some(&t[2])),
        &[x.clone(), w.clone(), b],
        1e-6,
        1e-8,
        1e-6,
    )
    .unwrap();
    // No bias; the input's view is transposed (not contiguous).
    let xt = randn(&[4, 3], DType::F64, &mut rng);
    check_gradients(
        |t| t[0].t()?.linear(&t[1], None),
        &[xt, w.clone()],
        1e-6,
        1e-8,
        1e-6,
    )
    .unwrap();
    assert_eq!(x.linear(&w, None).unwrap().shape(), &[2, 3, 5]);
}

#[test]
fn skips_gradients_nobody_needs_and_rejects_bad_shapes() {
    let mut rng = Rng::new(2);
    let x = Tensor::randn(&[4, 3], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
    let w = randn(&[2, 3], DType::F32, &mut rng);
    let grads = x
        .linear(&w, None)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(grads.get(&x).is_none());
    // d(sum y)/dW[o, i] = sum over rows of x[:, i].
    let xs = x.to_vec::<f32>().unwrap();
    let col: Vec<f32> = (0..3)
        .map(|i| (0..4).map(|r| xs[r * 3 + i]).sum())
        .collect();
    let gw = grads.get(&w).unwrap().to_vec::<f32>().unwrap();
    for o in 0..2 {
        for i in 0..3 {
            assert!((gw[o * 3 + i] - col[i]).abs() < 1e-5);
        }
    }
    let err = x
        .linear(&randn(&[2, 4], DType::F32, &mut rng), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("linear") && err.contains("[4, 3]"), "{err}");
    let bad_bias = randn(&[3], DType::F32, &mut rng);
    assert!(x.linear(&w, Some(&bad_bias)).is_err());
    let w64 = randn(&[2, 3], DType::F64, &mut rng);
    assert!(x.linear(&w64, None).is_err());
}
