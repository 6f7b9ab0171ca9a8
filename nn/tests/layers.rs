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

fn close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len());
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() < tol, "got {got:?}\nwant {want:?}");
    }
}

/// ```python
/// bn = torch.nn.BatchNorm2d(2)
/// bn.weight.copy_(torch.tensor([1.5, -0.5])); bn.bias.copy_(torch.tensor([0.1, 0.2]))
/// x1 = torch.arange(16.).reshape(2, 2, 2, 2) * 0.25 - 1.0
/// x2 = torch.arange(16.).reshape(2, 2, 2, 2) ** 2 * 0.05
/// bn(x1); y2 = bn(x2)                      # two training steps
/// bn.running_mean, bn.running_var
/// bn.eval(); bn(x1)
/// ```
#[test]
fn batch_norm_training_running_stats_and_eval_match_pytorch() {
    let mut bn = saddle_nn::BatchNorm::new_2d(2, true, DType::F32).unwrap();
    bn.weight
        .as_ref()
        .unwrap()
        .assign(&Tensor::from_vec(vec![1.5f32, -0.5], &[2], Device::Cpu).unwrap())
        .unwrap();
    bn.bias
        .as_ref()
        .unwrap()
        .assign(&Tensor::from_vec(vec![0.1f32, 0.2], &[2], Device::Cpu).unwrap())
        .unwrap();
    let x1 = Tensor::from_vec(
        (0..16).map(|i| i as f32 * 0.25 - 1.0).collect(),
        &[2, 2, 2, 2],
        Device::Cpu,
    )
    .unwrap();
    let x2 = Tensor::from_vec(
        (0..16).map(|i| (i * i) as f32 * 0.05).collect(),
        &[2, 2, 2, 2],
        Device::Cpu,
    )
    .unwrap();
    bn.forward(&x1).unwrap();
    let y2 = bn.forward(&x2).unwrap().to_vec::<f32>().unwrap();
    close(
        &y2,
        &[
            -1.430135, -1.397922, -1.301282, -1.140215, 0.776019, 0.719361, 0.650113, 0.568274,
            0.631521, 1.179148, 1.791202, 2.467683, -0.029778, -0.18716, -0.357133, -0.539696,
        ],
        1e-5,
    );
    close(
        &bn.running_mean.to_vec::<f32>().unwrap(),
        &[0.27125, 0.66125],
        1e-5,
    );
    close(
        &bn.running_var.to_vec::<f32>().unwrap(),
        &[1.540393, 2.72325],
        1e-5,
    );
    bn.set_training(false);
    let y = bn.forward(&x1).unwrap().to_vec::<f32>().unwrap();
    close(
        &y,
        &[
            -1.436403, -1.134259, -0.832115, -0.52997, 0.400351, 0.324604, 0.248857, 0.17311,
            0.98075, 1.282894, 1.585038, 1.887182, -0.205625, -0.281372, -0.357119, -0.432866,
        ],
        1e-5,
    );
    let names: Vec<String> = bn.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["running_mean", "running_var"]);
}

#[test]
fn dropout_layer_is_seeded_and_off_in_eval() {
    let x = Tensor::ones(&[1000], DType::F32, Device::Cpu).unwrap();
    let mut a = saddle_nn::Dropout::new(0.5, 7).unwrap();
    let b = saddle_nn::Dropout::new(0.5, 7).unwrap();
    let ya = a.forward(&x).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(ya, b.forward(&x).unwrap().to_vec::<f32>().unwrap());
    let zeros = ya.iter().filter(|v| **v == 0.0).count();
    assert!((400..600).contains(&zeros), "{zeros}");
    assert!(ya.iter().all(|v| *v == 0.0 || *v == 2.0));
    a.set_training(false);
    assert_eq!(
        a.forward(&x).unwrap().to_vec::<f32>().unwrap(),
        vec![1.0; 1000]
    );
}

#[test]
fn embedding_looks_up_rows_and_accumulates_gradients() {
    let mut rng = Rng::new(0);
    let emb = saddle_nn::Embedding::new(4, 3, DType::F64, &mut rng).unwrap();
    let table = emb.weight.to_vec::<f64>().unwrap();
    let ids = Tensor::from_vec(vec![2.0f64, 0.0, 2.0], &[3], Device::Cpu).unwrap();
    let out = emb.forward(&ids).unwrap();
    assert_eq!(out.shape(), &[3, 3]);
    let v = out.to_vec::<f64>().unwrap();
    assert_eq!(&v[0..3], &table[6..9]);
    assert_eq!(&v[3..6], &table[0..3]);
    let g = out.sum_all().unwrap().backward().unwrap();
    // Row 2 was used twice, row 0 once, rows 1 and 3 never.
    assert_eq!(
        g.get(&emb.weight).unwrap().to_vec::<f64>().unwrap(),
        vec![1., 1., 1., 0., 0., 0., 2., 2., 2., 0., 0., 0.]
    );
    let bad = Tensor::from_vec(vec![1.5f64], &[1], Device::Cpu).unwrap();
    assert!(emb
        .forward(&bad)
        .unwrap_err()
        .to_string()
        .contains("Embedding"));
}
