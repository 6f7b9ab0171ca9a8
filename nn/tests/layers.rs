//! Module plumbing and the basic layers.

use saddle_engine::{DType, Device, Rng, Tensor};
use saddle_nn::{Activation, Linear, Module, ModuleExt, Sequential};

#[test]
fn sequential_names_counts_and_freezing() {
    let mut rng = Rng::new(0);
    let net = Sequential::new()
        .push(Linear::new(4, 3, true, DType::F32, &mut rng).unwrap())
        .push(Activation::LeakyRelu(0.2))
        .push(Linear::new(3, 1, false, DType::F32, &mut rng).unwrap());
    let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["0.weight", "0.bias", "2.weight"]);
    assert_eq!(net.num_parameters(), 4 * 3 + 3 + 3);
    net.set_frozen(true).unwrap();
    assert!(net
        .named_parameters()
        .iter()
        .all(|(_, p)| !p.requires_grad()));
    let x = Tensor::ones(&[2, 4], DType::F32, Device::Cpu).unwrap();
    assert!(!net.forward(&x).unwrap().requires_grad());
    net.set_frozen(false).unwrap();
    assert!(net.forward(&x).unwrap().requires_grad());
}

#[test]
fn linear_forward_values_and_shape_errors() {
    // y = x W^T + b with W = [[1, 2], [3, 4], [5, 6]], b = [0.5, -0.5, 1]
    let w = Tensor::from_vec(vec![1.0f64, 2., 3., 4., 5., 6.], &[3, 2], Device::Cpu).unwrap();
    let b = Tensor::from_vec(vec![0.5f64, -0.5, 1.0], &[3], Device::Cpu).unwrap();
    let lin = Linear::from_weights(w, Some(b)).unwrap();
    let x = Tensor::from_vec(vec![1.0f64, -1.0], &[1, 2], Device::Cpu).unwrap();
    assert_eq!(
        lin.forward(&x).unwrap().to_vec::<f64>().unwrap(),
        vec![-0.5, -1.5, 0.0]
    );
    let bad = Tensor::ones(&[1, 5], DType::F64, Device::Cpu).unwrap();
    let err = lin.forward(&bad).unwrap_err().to_string();
    assert!(
        err.contains("Linear") && err.contains("[1, 5]") && err.contains("[3, 2]"),
        "{err}"
    );
}

/// ```python
/// ln = torch.nn.LayerNorm([2, 3], eps=1e-5)
/// ln.weight.copy_(torch.tensor([[1.0, 2.0, 0.5], [-1.0, 1.5, 1.0]]))
/// ln.bias.copy_(torch.tensor([[0.1, 0.0, -0.2], [0.3, 0.0, 0.5]]))
/// x = torch.arange(12.).reshape(2, 2, 3) * 0.3 - torch.tensor([0., 1., 0., 2., 0., 1.]).reshape(2, 3)
/// ln(x)
/// ```
#[test]
fn layer_norm_matches_pytorch() {
    let ln = saddle_nn::LayerNorm::new(&[2, 3], 1e-5, DType::F32).unwrap();
    ln.weight
        .assign(
            &Tensor::from_vec(vec![1.0f32, 2.0, 0.5, -1.0, 1.5, 1.0], &[2, 3], Device::Cpu)
                .unwrap(),
        )
        .unwrap();
    ln.bias
        .assign(
            &Tensor::from_vec(vec![0.1f32, 0.0, -0.2, 0.3, 0.0, 0.5], &[2, 3], Device::Cpu)
                .unwrap(),
        )
        .unwrap();
    let shift = [0., 1., 0., 2., 0., 1.];
    let x: Vec<f32> = (0..12)
        .map(|i| i as f32 * 0.3 - shift[i % 6] as f32)
        .collect();
    let y = ln
        .forward(&Tensor::from_vec(x, &[2, 2, 3], Device::Cpu).unwrap())
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let want = [
        -0.005999f32,
        -1.99278,
        0.128597,
        1.805185,
        2.130579,
        1.029995,
    ];
    for (i, v) in y.iter().enumerate() {
        assert!((v - want[i % 6]).abs() < 1e-5, "{y:?}");
    }
}
