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

// PyTorch forward literals for the remaining layers. Every case below comes from this script
// (float64), which fills inputs and weights from closed forms the helpers reproduce:
//
// ```python
// import torch, torch.nn as nn, torch.nn.functional as F
// torch.set_default_dtype(torch.float64)
// def xs(*shape):
//     n = 1
//     for s in shape: n *= s
//     return (torch.sin(0.3 * torch.arange(n) + 0.1) * 1.5).reshape(shape)
// def ws(*shape):
//     n = 1
//     for s in shape: n *= s
//     return (torch.cos(0.7 * torch.arange(n)) * 0.4).reshape(shape)
// def bs(n): return 0.1 * torch.arange(n) - 0.1
// def show(name, t): print(name, [round(v, 8) for v in t.detach().flatten().tolist()])
// ```
//
// Each test's own lines of the script are in its doc comment.

fn xs(shape: &[usize]) -> Tensor {
    let n = shape.iter().product::<usize>();
    let v = (0..n).map(|k| (0.3 * k as f64 + 0.1).sin() * 1.5).collect();
    Tensor::from_vec(v, shape, Device::Cpu).unwrap()
}

fn ws(shape: &[usize]) -> Tensor {
    let n = shape.iter().product::<usize>();
    let v = (0..n).map(|k| (0.7 * k as f64).cos() * 0.4).collect();
    Tensor::from_vec(v, shape, Device::Cpu).unwrap()
}

fn bs(n: usize) -> Tensor {
    let v = (0..n).map(|k| 0.1 * k as f64 - 0.1).collect();
    Tensor::from_vec(v, &[n], Device::Cpu).unwrap()
}

fn close64(got: &Tensor, want: &[f64]) {
    let got = got.to_vec::<f64>().unwrap();
    assert_eq!(got.len(), want.len());
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() < 1e-7, "got {got:?}\nwant {want:?}");
    }
}

/// ```python
/// lin = nn.Linear(3, 2); lin.weight.copy_(ws(2, 3)); lin.bias.copy_(bs(2))
/// show("linear", lin(xs(2, 3)))
/// ```
#[test]
fn linear_matches_pytorch() {
    let lin = Linear::from_weights(ws(&[2, 3]), Some(bs(2))).unwrap();
    close64(
        &lin.forward(&xs(&[2, 3])).unwrap(),
        &[0.2043037, -0.61236068, 0.94900136, -1.36125407],
    );
}

/// ```python
/// c = nn.Conv2d(2, 3, 3, stride=2, padding=1); c.weight.copy_(ws(3, 2, 3, 3)); c.bias.copy_(bs(3))
/// show("conv", c(xs(1, 2, 5, 5)))
/// c = nn.Conv2d(2, 2, 2, dilation=2, groups=2, bias=False); c.weight.copy_(ws(2, 1, 2, 2))
/// show("conv_grouped", c(xs(1, 2, 4, 4)))
/// ```
#[test]
fn conv2d_matches_pytorch() {
    use saddle_engine::Conv2dParams;
    let mut rng = Rng::new(0);
    let p = Conv2dParams::default().with_stride(2).with_padding(1);
    let c = saddle_nn::Conv2d::new(2, 3, 3, p, true, DType::F64, &mut rng).unwrap();
    c.weight.assign(&ws(&[3, 2, 3, 3])).unwrap();
    c.bias.as_ref().unwrap().assign(&bs(3)).unwrap();
    let y = c.forward(&xs(&[1, 2, 5, 5])).unwrap();
    assert_eq!(y.shape(), &[1, 3, 3, 3]);
    close64(
        &y,
        &[
            -0.88053622,
            -2.55303437,
            -1.55785191,
            1.10108871,
            3.02300538,
            1.27071712,
            -1.86851457,
            -3.19285673,
            -1.60089478,
            -0.73838433,
            -2.44563038,
            -1.50338161,
            1.11722052,
            3.0941037,
            1.41394553,
            -1.72209653,
            -3.09207277,
            -1.54140555,
            -0.59539746,
            -2.33546079,
            -1.44721123,
            1.13208895,
            3.16170312,
            1.555575,
            -1.5737311,
            -2.98779219,
            -1.48017326,
        ],
    );
    let p = Conv2dParams::default().with_dilation(2).with_groups(2);
    let c = saddle_nn::Conv2d::new(2, 2, 2, p, false, DType::F64, &mut rng).unwrap();
    c.weight.assign(&ws(&[2, 1, 2, 2])).unwrap();
    close64(
        &c.forward(&xs(&[1, 2, 4, 4])).unwrap(),
        &[
            0.40397223,
            0.73137406,
            1.23587789,
            1.19458514,
            0.81346555,
            0.58104919,
            -0.32366279,
            -0.60431749,
        ],
    );
}

/// ```python
/// ct = nn.ConvTranspose2d(2, 1, 4, stride=2, padding=1); ct.weight.copy_(ws(2, 1, 4, 4)); ct.bias.copy_(bs(1) + 0.3)
/// show("convT", ct(xs(1, 2, 3, 3)))
/// ct = nn.ConvTranspose2d(1, 2, 3, stride=2, padding=1, output_padding=1, bias=False); ct.weight.copy_(ws(1, 2, 3, 3))
/// show("convT_op", ct(xs(1, 1, 2, 2)))
/// ```
#[test]
fn conv_transpose2d_matches_pytorch() {
    use saddle_engine::ConvTranspose2dParams;
    let mut rng = Rng::new(0);
    let p = ConvTranspose2dParams::default()
        .with_stride(2)
        .with_padding(1);
    let ct = saddle_nn::ConvTranspose2d::new(2, 1, 4, p, true, DType::F64, &mut rng).unwrap();
    ct.weight.assign(&ws(&[2, 1, 4, 4])).unwrap();
    ct.bias
        .as_ref()
        .unwrap()
        .assign(&bs(1).add_scalar(0.3).unwrap())
        .unwrap();
    let y = ct.forward(&xs(&[1, 2, 3, 3])).unwrap();
    assert_eq!(y.shape(), &[1, 1, 6, 6]);
    close64(
        &y,
        &[
            0.03665953,
            -0.23764323,
            -0.20668814,
            -0.32348755,
            -0.05963436,
            0.15661037,
            0.44025989,
            0.82898419,
            0.24324974,
            0.89902274,
            0.01105236,
            -0.07814612,
            -0.13581028,
            -0.62030796,
            -0.15061679,
            -0.83489583,
            -0.06060239,
            0.1541489,
            0.60064643,
            0.85109637,
            -0.3834742,
            0.73741257,
            -0.51056149,
            -0.25434685,
            -0.53022665,
            -0.97582836,
            0.17914275,
            -0.88958393,
            0.30745779,
            0.27215876,
            0.63686648,
            0.80103595,
            0.04730207,
            0.61897515,
            -0.07160704,
            0.04858892,
        ],
    );
    let p = ConvTranspose2dParams::default()
        .with_stride(2)
        .with_padding(1)
        .with_output_padding(1);
    let ct = saddle_nn::ConvTranspose2d::new(1, 2, 3, p, false, DType::F64, &mut rng).unwrap();
    ct.weight.assign(&ws(&[1, 2, 3, 3])).unwrap();
    let y = ct.forward(&xs(&[1, 1, 2, 2])).unwrap();
    assert_eq!(y.shape(), &[1, 2, 4, 4]);
    close64(
        &y,
        &[
            -0.05643917,
            -0.1740516,
            -0.2201512,
            -0.21880405,
            0.30680702,
            0.5024866,
            0.42973431,
            0.2670252,
            -0.36419778,
            -0.61685719,
            -0.47571166,
            -0.47280068,
            0.07209274,
            0.0522558,
            0.09416685,
            0.39156971,
            -0.05676857,
            -0.1770649,
            -0.22143611,
            -0.21739503,
            0.3035663,
            0.50007088,
            0.42806441,
            0.26110191,
            -0.36632341,
            -0.62181804,
            -0.47848814,
            -0.46975603,
            0.07846759,
            0.06374992,
            0.10249362,
            0.39687321,
        ],
    );
}

/// ```python
/// bn = nn.BatchNorm1d(3); bn.weight.copy_(torch.tensor([1.5, -0.5, 2.0])); bn.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
/// x1 = xs(4, 3); x2 = ws(4, 3) * 3 + 1
/// bn(x1); show("bn1d_y2", bn(x2)); show("bn1d_rm", bn.running_mean); show("bn1d_rv", bn.running_var)
/// bn.eval(); show("bn1d_eval", bn(x1))
/// bn = nn.BatchNorm1d(2, affine=False); show("bn1d_ncl", bn(xs(2, 2, 3))); show("bn1d_ncl_rv", bn.running_var)
/// ```
#[test]
fn batch_norm_1d_training_running_stats_and_eval_match_pytorch() {
    let mut bn = saddle_nn::BatchNorm::new_1d(3, true, DType::F64).unwrap();
    let t = |v: Vec<f64>| Tensor::from_vec(v, &[3], Device::Cpu).unwrap();
    bn.weight
        .as_ref()
        .unwrap()
        .assign(&t(vec![1.5, -0.5, 2.0]))
        .unwrap();
    bn.bias
        .as_ref()
        .unwrap()
        .assign(&t(vec![0.1, 0.2, -0.3]))
        .unwrap();
    let x1 = xs(&[4, 3]);
    let x2 = ws(&[4, 3])
        .mul_scalar(3.0)
        .unwrap()
        .add_scalar(1.0)
        .unwrap();
    bn.forward(&x1).unwrap();
    close64(
        &bn.forward(&x2).unwrap(),
        &[
            1.60009673,
            -0.21319218,
            0.11908987,
            -1.4145645,
            1.01545423,
            -3.46556072,
            -1.38534577,
            0.2030562,
            2.08114077,
            1.59981354,
            -0.20531825,
            0.06533008,
        ],
    );
    close64(&bn.running_mean, &[0.20515505, 0.19724409, 0.17192538]);
    close64(&bn.running_var, &[0.95076933, 0.93790104, 0.94059844]);
    bn.set_training(false);
    close64(
        &bn.forward(&x1).unwrap(),
        &[
            0.01476857,
            0.00025804,
            1.33819434,
            1.72610097,
            -0.4443713,
            2.43740357,
            1.96799465,
            -0.32428729,
            1.19669135,
            0.55738929,
            0.26963291,
            -1.44499605,
        ],
    );
    let plain = saddle_nn::BatchNorm::new_1d(2, false, DType::F64).unwrap();
    close64(
        &plain.forward(&xs(&[2, 2, 3])).unwrap(),
        &[
            -1.74247686,
            -0.69405396,
            0.22843005,
            0.73562944,
            0.9894288,
            1.06429897,
            1.32209922,
            0.82319018,
            0.06281137,
            -0.31726568,
            -0.92721195,
            -1.54487958,
        ],
    );
    close64(&plain.running_var, &[0.92059764, 0.96247621]);
    assert!(plain.forward(&xs(&[2, 2, 3, 1])).is_err());
}

/// ```python
/// e = nn.Embedding(4, 3); e.weight.copy_(ws(4, 3))
/// show("emb", e(torch.tensor([[2, 0], [3, 2]])))
/// ```
#[test]
fn embedding_matches_pytorch() {
    let mut rng = Rng::new(0);
    let e = saddle_nn::Embedding::new(4, 3, DType::F64, &mut rng).unwrap();
    e.weight.assign(&ws(&[4, 3])).unwrap();
    let ids = Tensor::from_vec(vec![2.0f64, 0.0, 3.0, 2.0], &[2, 2], Device::Cpu).unwrap();
    let y = e.forward(&ids).unwrap();
    assert_eq!(y.shape(), &[2, 2, 3]);
    close64(
        &y,
        &[
            -0.19610433,
            0.07460495,
            0.31022635,
            0.4,
            0.30593687,
            0.06798686,
            0.39994345,
            0.3015609,
            0.06134954,
            -0.19610433,
            0.07460495,
            0.31022635,
        ],
    );
}

/// ```python
/// show("maxout", xs(2, 6).view(2, 2, 3).amax(-1))
/// show("maxout_nchw", xs(1, 6, 2).view(1, 3, 2, 2).amax(2))
/// ```
#[test]
fn maxout_matches_pytorch() {
    let m3 = saddle_nn::Maxout { pieces: 3 };
    close64(
        &m3.forward(&xs(&[2, 6])).unwrap(),
        &[0.96632653, 1.4993604, 1.41945013, 0.50248223],
    );
    let m2 = saddle_nn::Maxout { pieces: 2 };
    let y = m2.forward(&xs(&[1, 6, 2])).unwrap();
    assert_eq!(y.shape(), &[1, 3, 2]);
    close64(
        &y,
        &[
            0.96632653, 1.26220648, 1.44533728, 1.4993604, 0.89770822, 0.50248223,
        ],
    );
    assert!(m3.forward(&xs(&[2, 5])).is_err());
}

/// ```python
/// x = xs(1, 1, 5, 5)
/// show("avg", F.avg_pool2d(x, 3, 2, 1)); show("max", F.max_pool2d(x, 3, 2, 1)); show("sum", F.avg_pool2d(x, 2, 2) * 4)
/// x = xs(1, 2, 3, 3)
/// show("gavg", x.mean((2, 3))); show("gmax", x.amax((2, 3))); show("gsum", x.sum((2, 3)))
/// show("up", F.interpolate(xs(1, 1, 2, 3), scale_factor=2, mode="nearest"))
/// ```
#[test]
fn pooling_and_upsampling_match_pytorch() {
    use saddle_nn::{GlobalPool2d, Pool2d, PoolKind, UpsampleNearest2d};
    let x = xs(&[1, 1, 5, 5]);
    let pool = |kind, kernel, stride, padding| Pool2d {
        kind,
        kernel,
        stride,
        padding,
    };
    close64(
        &pool(PoolKind::Avg, 3, 2, 1).forward(&x).unwrap(),
        &[
            0.40585424,
            0.70472927,
            0.45641491,
            -0.04070506,
            -0.29339312,
            -0.31827511,
            -0.34029282,
            -0.23217698,
            0.05621345,
        ],
    );
    close64(
        &pool(PoolKind::Max, 3, 2, 1).forward(&x).unwrap(),
        &[
            1.4993604, 1.41945013, 1.44533728, 1.4993604, 1.41945013, 0.89770822, 0.17482381,
            0.9854799, 1.27565493,
        ],
    );
    close64(
        &pool(PoolKind::Sum, 2, 2, 0).forward(&x).unwrap(),
        &[3.65268817, 4.33898583, -3.28515608, -4.31345043],
    );
    let x = xs(&[1, 2, 3, 3]);
    let global = |kind| GlobalPool2d { kind }.forward(&x).unwrap();
    close64(&global(PoolKind::Avg), &[1.04855681, -0.82356252]);
    close64(&global(PoolKind::Max), &[1.4993604, 0.50248223]);
    close64(&global(PoolKind::Sum), &[9.43701128, -7.4120627]);
    assert_eq!(global(PoolKind::Sum).shape(), &[1, 2]);
    let y = UpsampleNearest2d { scale: 2 }
        .forward(&xs(&[1, 1, 2, 3]))
        .unwrap();
    assert_eq!(y.shape(), &[1, 1, 4, 6]);
    let (a, b, c, d, e, f) = (
        0.14975012, 0.58412751, 0.96632653, 1.26220648, 1.44533728, 1.4993604,
    );
    close64(
        &y,
        &[
            a, a, b, b, c, c, a, a, b, b, c, c, d, d, e, e, f, f, d, d, e, e, f, f,
        ],
    );
}

#[test]
fn batch_norm_forward_with_stats_returns_the_batch_statistics() {
    // Two channels over a batch of 2: means [2, 4], biased variances [1, 4], unbiased [2, 8].
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 6.0], &[2, 2], Device::Cpu).unwrap();
    let mut bn = saddle_nn::BatchNorm::new_1d(2, false, DType::F32).unwrap();
    let out = bn.forward_with_stats(&x).unwrap();
    assert_eq!(out.mean.to_vec_f64().unwrap(), vec![2.0, 4.0]);
    assert_eq!(out.var.to_vec_f64().unwrap(), vec![1.0, 4.0]);
    // Normalised with the biased variance: (1 - 2) / sqrt(1 + 1e-5) etc.
    let y = out.output.to_vec_f64().unwrap();
    assert!((y[0] + 1.0 / (1.0f64 + 1e-5).sqrt()).abs() < 1e-6, "{y:?}");
    assert!((y[1] + 2.0 / (4.0f64 + 1e-5).sqrt()).abs() < 1e-6, "{y:?}");
    // The running statistics moved by momentum 0.1 towards the mean and unbiased variance.
    let close = |t: &Tensor, want: [f64; 2]| {
        let v = t.to_vec_f64().unwrap();
        assert!(
            (v[0] - want[0]).abs() < 1e-6 && (v[1] - want[1]).abs() < 1e-6,
            "{v:?}"
        );
    };
    close(&bn.running_mean, [0.2, 0.4]);
    close(&bn.running_var, [1.1, 1.7]);
    bn.set_training(false);
    assert!(bn.forward_with_stats(&x).is_err());
    let bad = Tensor::zeros(&[2, 3], DType::F32, Device::Cpu).unwrap();
    bn.set_training(true);
    assert!(bn.forward_with_stats(&bad).is_err());
}
