//! Self-attention block: identity at start (gamma = 0), PyTorch-style names, and gradients
//! through the whole block (1×1 convs, pooling, softmax attention) against finite differences.

use saddle_engine::gradcheck::check_gradients;
use saddle_engine::{DType, Device, Rng, Tensor};
use saddle_nn::{Module, ModuleExt, SelfAttention};

#[test]
fn starts_as_identity_with_biggan_names() {
    let mut rng = Rng::new(0);
    let att = SelfAttention::new(16, DType::F32, &mut rng).unwrap();
    let x = Tensor::randn(&[2, 16, 4, 6], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
    assert_eq!(
        att.forward(&x).unwrap().to_vec::<f32>().unwrap(),
        x.to_vec::<f32>().unwrap()
    );
    let names: Vec<String> = att.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        vec![
            "theta.weight_orig",
            "phi.weight_orig",
            "g.weight_orig",
            "o.weight_orig",
            "gamma"
        ]
    );
    assert!(att
        .forward(&Tensor::ones(&[1, 16, 3, 4], DType::F32, Device::Cpu).unwrap())
        .is_err());
}

#[test]
fn gradients_through_the_block() {
    let mut rng = Rng::new(1);
    let mut att = SelfAttention::new(8, DType::F64, &mut rng).unwrap();
    att.set_training(false); // fixed u, v: a deterministic function for finite differences
    att.gamma.assign(&Tensor::scalar(0.7f64)).unwrap();
    // Distinct, well-separated values so no 2×2 pooling window has a near tie.
    let mut values: Vec<f64> = (0..2 * 8 * 4 * 4).map(|i| i as f64 * 0.05 - 3.0).collect();
    rng.shuffle(&mut values);
    let x = Tensor::from_vec(values, &[2, 8, 4, 4], Device::Cpu)
        .unwrap()
        .with_requires_grad(true);
    check_gradients(|v| att.forward(&v[0]), &[x], 1e-6, 1e-6, 1e-4).unwrap();
    let x = Tensor::randn(&[1, 8, 2, 2], 0.0, 1.0, DType::F64, Device::Cpu, &mut rng).unwrap();
    let grads = att
        .forward(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(grads.get(&att.gamma).unwrap().to_scalar().unwrap().abs() > 0.0);
}
