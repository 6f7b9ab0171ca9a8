//! Spectral normalisation: σ converges to the largest singular value, eval mode does not
//! iterate, and gradients through W / σ(W) match finite differences.

use saddle_engine::gradcheck::check_gradients;
use saddle_engine::{DType, Device, Rng, Tensor};
use saddle_nn::{init, Linear, Module, ModuleExt, SpectralNorm};

/// W = Q1 · diag(s) · Q2ᵀ with orthonormal Q1 [5×5] and Q2 [7×5]: its singular values are
/// exactly `s`, so the largest is 3.
fn matrix_with_singular_values(s: &[f64]) -> Tensor {
    let mut rng = Rng::new(11);
    let q1 = init::orthogonal(&[5, 5], 1.0, DType::F64, &mut rng)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let q2 = init::orthogonal(&[7, 5], 1.0, DType::F64, &mut rng)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let mut w = vec![0.0; 5 * 7];
    for i in 0..5 {
        for j in 0..7 {
            w[i * 7 + j] = (0..5).map(|k| q1[i * 5 + k] * s[k] * q2[j * 5 + k]).sum();
        }
    }
    Tensor::from_vec(w, &[5, 7], Device::Cpu).unwrap()
}

#[test]
fn sigma_converges_to_the_largest_singular_value() {
    let w = matrix_with_singular_values(&[3.0, 1.5, 1.0, 0.5, 0.2]);
    let mut rng = Rng::new(0);
    let mut sn = SpectralNorm::new(Linear::from_weights(w, None).unwrap(), &mut rng).unwrap();
    let x = Tensor::ones(&[1, 7], DType::F64, Device::Cpu).unwrap();
    for _ in 0..60 {
        sn.forward(&x).unwrap();
    }
    let sigma = sn.sigma().unwrap().to_scalar().unwrap();
    assert!((sigma - 3.0).abs() < 1e-9, "sigma {sigma}");
    let u_before = sn.u.to_vec::<f64>().unwrap();
    sn.set_training(false);
    sn.forward(&x).unwrap();
    assert_eq!(
        sn.u.to_vec::<f64>().unwrap(),
        u_before,
        "eval mode must not iterate"
    );
    let names: Vec<String> = sn.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["weight_u", "weight_v"]);
    assert_eq!(sn.named_parameters()[0].0, "weight_orig");
}

#[test]
fn gradients_flow_through_sigma() {
    let mut rng = Rng::new(5);
    let x = Tensor::randn(&[3, 4], 0.0, 1.0, DType::F64, Device::Cpu, &mut rng)
        .unwrap()
        .with_requires_grad(true);
    let w = Tensor::randn(&[2, 4], 0.0, 1.0, DType::F64, Device::Cpu, &mut rng)
        .unwrap()
        .with_requires_grad(true);
    let b = Tensor::randn(&[2], 0.0, 1.0, DType::F64, Device::Cpu, &mut rng)
        .unwrap()
        .with_requires_grad(true);
    check_gradients(
        |xs| {
            // Same u, v every call (fixed seed) and no iteration: a deterministic function of W.
            let mut sn = SpectralNorm::new(
                Linear::from_weights(xs[1].clone(), Some(xs[2].clone()))?,
                &mut Rng::new(9),
            )?;
            sn.set_training(false);
            sn.forward(&xs[0])
        },
        &[x, w, b],
        1e-6,
        1e-7,
        1e-5,
    )
    .unwrap();
}
