//! Conditional batch norm: zero conditioning maps reduce it to plain batch norm; gradients
//! through the input, the condition and both maps match finite differences.

use saddle_engine::gradcheck::check_gradients;
use saddle_engine::{DType, Device, Rng, Tensor};
use saddle_nn::{BatchNorm, ConditionalBatchNorm, Linear, Module};

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(
        shape,
        0.0,
        1.0,
        DType::F64,
        Device::Cpu,
        &mut Rng::new(seed),
    )
    .unwrap()
}

#[test]
fn zero_maps_give_plain_batch_norm_and_gain_scales_per_sample() {
    let mut rng = Rng::new(0);
    let cbn = ConditionalBatchNorm::new_2d(3, 4, DType::F64, &mut rng).unwrap();
    cbn.gain
        .weight
        .assign(&Tensor::zeros(&[3, 4], DType::F64, Device::Cpu).unwrap())
        .unwrap();
    cbn.bias
        .weight
        .assign(&Tensor::zeros(&[3, 4], DType::F64, Device::Cpu).unwrap())
        .unwrap();
    let x = randn(&[2, 3, 4, 4], 1);
    let cond = randn(&[2, 4], 2);
    let plain = BatchNorm::new_2d(3, false, DType::F64)
        .unwrap()
        .forward(&x)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let got = cbn
        .forward_cond(&x, &cond)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    for (a, b) in got.iter().zip(&plain) {
        assert!((a - b).abs() < 1e-12);
    }
    // gain map = 1 on feature 0 of the condition: sample n's channels scale by 1 + cond[n, 0].
    let mut w = vec![0.0; 12];
    for c in 0..3 {
        w[c * 4] = 1.0;
    }
    cbn.gain
        .weight
        .assign(&Tensor::from_vec(w, &[3, 4], Device::Cpu).unwrap())
        .unwrap();
    let got = cbn
        .forward_cond(&x, &cond)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let c = cond.to_vec::<f64>().unwrap();
    for (i, (a, b)) in got.iter().zip(&plain).enumerate() {
        let n = i / 48;
        assert!((a - b * (1.0 + c[n * 4])).abs() < 1e-12);
    }
    assert!(cbn
        .forward(&x)
        .unwrap_err()
        .to_string()
        .contains("forward_cond"));
}

#[test]
fn gradients_through_input_condition_and_maps() {
    let x = randn(&[3, 2, 2, 2], 3).with_requires_grad(true);
    let cond = randn(&[3, 5], 4).with_requires_grad(true);
    let wg = randn(&[2, 5], 5)
        .mul_scalar(0.3)
        .unwrap()
        .with_requires_grad(true);
    let wb = randn(&[2, 5], 6)
        .mul_scalar(0.3)
        .unwrap()
        .with_requires_grad(true);
    check_gradients(
        |v| {
            let cbn = ConditionalBatchNorm {
                bn: BatchNorm::new_2d(2, false, DType::F64)?,
                gain: Linear::from_weights(v[2].clone(), None)?,
                bias: Linear::from_weights(v[3].clone(), None)?,
            };
            cbn.forward_cond(&v[0], &v[1])
        },
        &[x, cond, wg, wb],
        1e-6,
        1e-6,
        1e-4,
    )
    .unwrap();
}
