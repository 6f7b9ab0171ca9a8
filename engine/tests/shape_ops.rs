//! Data movement, indexing, pooling and upsampling ops: forward values against PyTorch, gradient
//! checks on random shapes (proptest), accumulation of repeated indices, and error messages.

use proptest::prelude::*;
use saddle_engine::gradcheck::check_gradients;
use saddle_engine::{DType, Device, Error, Rng, Tensor};

fn t(values: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape, Device::Cpu).unwrap()
}

fn iota(n: usize, shape: &[usize]) -> Tensor {
    t(&(0..n).map(|i| i as f64).collect::<Vec<_>>(), shape)
}

/// Random N(0, 1) f64 leaf requiring grad.
fn leaf(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    Tensor::randn(shape, 0.0, 1.0, DType::F64, Device::Cpu, &mut rng)
        .unwrap()
        .with_requires_grad(true)
}

/// A leaf whose values are a random permutation of `0.5 * (0..n)`: no ties, so max pooling has
/// a unique arg-max and finite differences stay on one side of every switch.
fn distinct_leaf(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut values: Vec<f64> = (0..n).map(|i| 0.5 * i as f64).collect();
    Rng::new(seed).shuffle(&mut values);
    t(&values, shape).with_requires_grad(true)
}

fn values(x: &Tensor) -> Vec<f64> {
    x.to_vec::<f64>().unwrap()
}

fn assert_close(actual: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "lengths differ: {actual:?} vs {expected:?}"
    );
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tol,
            "element {i}: {a} vs {e}\n actual {actual:?}\n expected {expected:?}"
        );
    }
}

fn grad_check(f: impl Fn(&[Tensor]) -> saddle_engine::Result<Tensor>, inputs: &[Tensor]) {
    check_gradients(f, inputs, 1e-6, 1e-7, 1e-5).unwrap();
}

/// The pooling test input: `(i * 37 % 23) - 11` for i in 0..100, shape [2, 2, 5, 5].
fn pool_input() -> Tensor {
    let v: Vec<f64> = (0..100).map(|i| ((i * 37) % 23) as f64 - 11.0).collect();
    t(&v, &[2, 2, 5, 5])
}

// ------------------------------------------------------------------ forward values vs PyTorch

// import torch
// x = ((torch.arange(100, dtype=torch.float64) * 37 % 23) - 11).reshape(2, 2, 5, 5).requires_grad_()
// F = torch.nn.functional
// F.avg_pool2d(x, 3, 2, 1).flatten().tolist()          # AVG_K3S2P1
// F.max_pool2d(x, 3, 2, 1).flatten().tolist()          # MAX_K3S2P1
// F.max_pool2d(x, 2, 1, 1).flatten().tolist()[:12]     # MAX_K2S1P1 (shape [2, 2, 6, 6])
// (F.avg_pool2d(x, 2, 2) * 4).flatten().tolist()       # SUM_K2S2
// x.mean((2, 3)), x.amax((2, 3)), x.sum((2, 3))        # GLOBAL_*
// F.max_pool2d(x, 3, 2, 1).sum().backward(); x.grad    # MAX_GRAD
// x.grad = None; F.avg_pool2d(x, 3, 2, 1).sum().backward(); x.grad[0, 0] * 9   # AVG_GRAD_PLANE0_X9
const AVG_K3S2P1: [f64; 36] = [
    -1.5555555555555556,
    1.4444444444444444,
    1.7777777777777777,
    -1.3333333333333333,
    3.6666666666666665,
    3.6666666666666665,
    -0.2222222222222222,
    0.8888888888888888,
    0.5555555555555556,
    0.6666666666666666,
    -0.3333333333333333,
    -1.1111111111111112,
    2.0,
    1.0,
    -0.6666666666666666,
    -0.5555555555555556,
    -0.8888888888888888,
    0.2222222222222222,
    -2.2222222222222223,
    -2.111111111111111,
    1.1111111111111112,
    -2.3333333333333335,
    -1.6666666666666667,
    0.1111111111111111,
    -0.8888888888888888,
    -0.1111111111111111,
    -2.6666666666666665,
    0.0,
    1.2222222222222223,
    -1.7777777777777777,
    1.0,
    0.7777777777777778,
    -1.6666666666666667,
    1.3333333333333333,
    -1.8888888888888888,
    -0.4444444444444444,
];
const MAX_K3S2P1: [f64; 36] = [
    4.0, 9.0, 9.0, 6.0, 11.0, 11.0, 7.0, 11.0, 11.0, 9.0, 9.0, 5.0, 11.0, 11.0, 7.0, 11.0, 11.0,
    8.0, 0.0, 5.0, 10.0, 2.0, 7.0, 11.0, 3.0, 8.0, -1.0, 5.0, 10.0, 1.0, 7.0, 11.0, 3.0, 8.0, 4.0,
    4.0,
];
const MAX_K2S1P1: [f64; 12] = [
    -11.0, 3.0, 3.0, 8.0, 8.0, -1.0, -10.0, 4.0, 4.0, 9.0, 9.0, 0.0,
];
const SUM_K2S2: [f64; 16] = [
    -14.0, 6.0, -6.0, 14.0, 6.0, -20.0, 14.0, -12.0, -20.0, 0.0, -12.0, 8.0, 0.0, 20.0, 8.0, 5.0,
];
const GLOBAL_AVG: [f64; 4] = [-0.32, 0.08, -0.44, -0.04];
const GLOBAL_MAX: [f64; 4] = [11.0, 11.0, 11.0, 11.0];
const GLOBAL_SUM: [f64; 4] = [-8.0, 2.0, -11.0, -1.0];
const MAX_GRAD: [f64; 100] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 4.0,
    0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0,
    0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0,
    1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0,
    1.0, 0.0, 0.0, 2.0, 0.0,
];
const AVG_GRAD_PLANE0_X9: [f64; 25] = [
    1., 2., 1., 2., 1., 2., 4., 2., 4., 2., 1., 2., 1., 2., 1., 2., 4., 2., 4., 2., 1., 2., 1., 2.,
    1.,
];

#[test]
fn pooling_forward_matches_pytorch() {
    let x = pool_input();
    let avg = x.avg_pool2d(3, 2, 1).unwrap();
    assert_eq!(avg.shape(), &[2, 2, 3, 3]);
    assert_close(&values(&avg), &AVG_K3S2P1, 1e-12);
    let max = x.max_pool2d(3, 2, 1).unwrap();
    assert_eq!(max.shape(), &[2, 2, 3, 3]);
    assert_close(&values(&max), &MAX_K3S2P1, 0.0);
    let max = x.max_pool2d(2, 1, 1).unwrap();
    assert_eq!(max.shape(), &[2, 2, 6, 6]);
    assert_close(&values(&max)[..12], &MAX_K2S1P1, 0.0);
    let sum = x.sum_pool2d(2, 2).unwrap();
    assert_eq!(sum.shape(), &[2, 2, 2, 2]);
    assert_close(&values(&sum), &SUM_K2S2, 0.0);
    let g = x.global_avg_pool2d().unwrap();
    assert_eq!(g.shape(), &[2, 2]);
    assert_close(&values(&g), &GLOBAL_AVG, 1e-12);
    assert_close(&values(&x.global_max_pool2d().unwrap()), &GLOBAL_MAX, 0.0);
    assert_close(&values(&x.global_sum_pool2d().unwrap()), &GLOBAL_SUM, 0.0);
    // f32 goes through the same kernels.
    let avg32 = x.to_dtype(DType::F32).unwrap().avg_pool2d(3, 2, 1).unwrap();
    let avg32: Vec<f64> = avg32
        .to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect();
    assert_close(&avg32, &AVG_K3S2P1, 1e-5);
    // A transposed (non-contiguous) input pools like its contiguous copy.
    let xt = x.transpose(2, 3).unwrap();
    let expect = values(&xt.contiguous().unwrap().max_pool2d(3, 2, 1).unwrap());
    assert_eq!(values(&xt.max_pool2d(3, 2, 1).unwrap()), expect);
}

#[test]
fn pooling_backward_matches_pytorch() {
    // Overlapping windows (stride 2 < kernel 3) and ties: the first maximum takes the gradient.
    let x = pool_input().with_requires_grad(true);
    let grads = x
        .max_pool2d(3, 2, 1)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(values(grads.get(&x).unwrap()), MAX_GRAD.to_vec());
    let grads = x
        .avg_pool2d(3, 2, 1)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let plane0: Vec<f64> = values(grads.get(&x).unwrap())[..25]
        .iter()
        .map(|v| v * 9.0)
        .collect();
    assert_close(&plane0, &AVG_GRAD_PLANE0_X9, 1e-12);
}

// u = torch.arange(12, dtype=torch.float64).reshape(1, 2, 2, 3)
// torch.nn.functional.interpolate(u, scale_factor=2, mode="nearest").flatten().tolist()
const UPSAMPLE_X2: [f64; 48] = [
    0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 3.0,
    3.0, 4.0, 4.0, 5.0, 5.0, 6.0, 6.0, 7.0, 7.0, 8.0, 8.0, 6.0, 6.0, 7.0, 7.0, 8.0, 8.0, 9.0, 9.0,
    10.0, 10.0, 11.0, 11.0, 9.0, 9.0, 10.0, 10.0, 11.0, 11.0,
];

#[test]
fn upsample_matches_pytorch_and_backward_sums_blocks() {
    let u = iota(12, &[1, 2, 2, 3]).with_requires_grad(true);
    let up = u.upsample_nearest2d(2).unwrap();
    assert_eq!(up.shape(), &[1, 2, 4, 6]);
    assert_eq!(values(&up), UPSAMPLE_X2.to_vec());
    // Gradient of sum(up * up_index) is the sum of each block's 4 output positions.
    let w = iota(48, &[1, 2, 4, 6]);
    let grads = up.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    let expected: Vec<f64> = (0..12)
        .map(|i| {
            let (plane, y, x) = (i / 6, (i % 6) / 3, i % 3);
            let at = |yy: usize, xx: usize| (plane * 24 + yy * 6 + xx) as f64;
            at(2 * y, 2 * x)
                + at(2 * y, 2 * x + 1)
                + at(2 * y + 1, 2 * x)
                + at(2 * y + 1, 2 * x + 1)
        })
        .collect();
    assert_eq!(values(grads.get(&u).unwrap()), expected);
    assert_eq!(
        values(&iota(4, &[1, 1, 2, 2]).upsample_nearest2d(1).unwrap()),
        vec![0., 1., 2., 3.]
    );
}

// r = torch.arange(12, dtype=torch.float64).reshape(1, 2, 2, 3)
// for k in (1, 2, 3, -1, 5): torch.rot90(r, k, dims=(2, 3)).flatten().tolist()
#[test]
fn rot90_matches_pytorch() {
    let r = iota(12, &[1, 2, 2, 3]);
    let cases: [(i32, [usize; 4], [f64; 12]); 5] = [
        (
            1,
            [1, 2, 3, 2],
            [2.0, 5.0, 1.0, 4.0, 0.0, 3.0, 8.0, 11.0, 7.0, 10.0, 6.0, 9.0],
        ),
        (
            2,
            [1, 2, 2, 3],
            [5.0, 4.0, 3.0, 2.0, 1.0, 0.0, 11.0, 10.0, 9.0, 8.0, 7.0, 6.0],
        ),
        (
            3,
            [1, 2, 3, 2],
            [3.0, 0.0, 4.0, 1.0, 5.0, 2.0, 9.0, 6.0, 10.0, 7.0, 11.0, 8.0],
        ),
        (
            -1,
            [1, 2, 3, 2],
            [3.0, 0.0, 4.0, 1.0, 5.0, 2.0, 9.0, 6.0, 10.0, 7.0, 11.0, 8.0],
        ),
        (
            5,
            [1, 2, 3, 2],
            [2.0, 5.0, 1.0, 4.0, 0.0, 3.0, 8.0, 11.0, 7.0, 10.0, 6.0, 9.0],
        ),
    ];
    for (k, shape, expected) in cases {
        let y = r.rot90(k).unwrap();
        assert_eq!(y.shape(), &shape, "k = {k}");
        assert_eq!(values(&y), expected.to_vec(), "k = {k}");
    }
    assert_eq!(values(&r.rot90(4).unwrap()), values(&r));
    assert_eq!(values(&r.rot90(-6).unwrap()), values(&r.rot90(2).unwrap()));
}

// s = torch.arange(24, dtype=torch.float64).reshape(2, 3, 4)
// torch.gather(s, 1, torch.tensor([[[2, 0], [1, 1]], [[0, 0], [2, 1]]])).flatten().tolist()
// torch.gather(s, 0, torch.tensor([[[1, 0, 1]], [[0, 0, 1]]])).flatten().tolist()
// torch.gather(s, 2, torch.tensor([[[3], [0]]])).flatten().tolist()
#[test]
fn gather_matches_pytorch() {
    let s = iota(24, &[2, 3, 4]);
    let g1 = s.gather(1, &[2, 0, 1, 1, 0, 0, 2, 1], &[2, 2, 2]).unwrap();
    assert_eq!(g1.shape(), &[2, 2, 2]);
    assert_eq!(
        values(&g1),
        vec![8.0, 1.0, 4.0, 5.0, 12.0, 13.0, 20.0, 17.0]
    );
    let g0 = s.gather(0, &[1, 0, 1, 0, 0, 1], &[2, 1, 3]).unwrap();
    assert_eq!(values(&g0), vec![12.0, 1.0, 14.0, 0.0, 1.0, 14.0]);
    let g2 = s.gather(2, &[3, 0], &[1, 2, 1]).unwrap();
    assert_eq!(values(&g2), vec![3.0, 4.0]);
    // Scatter-add backward: position [0, 2, 0] was read twice.
    let x = s.with_requires_grad(true);
    let grads = x
        .gather(1, &[2, 0, 1, 1, 0, 0, 2, 1], &[2, 2, 2])
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let mut expected = vec![0.0; 24];
    for &(i, j, k) in &[
        (0, 2, 0),
        (0, 0, 1),
        (0, 1, 0),
        (0, 1, 1),
        (1, 0, 0),
        (1, 0, 1),
        (1, 2, 0),
        (1, 1, 1),
    ] {
        expected[i * 12 + j * 4 + k] += 1.0;
    }
    assert_eq!(values(grads.get(&x).unwrap()), expected);
}

// a = torch.arange(6.).reshape(2, 3); b = torch.arange(6., 10.).reshape(2, 2)
// c = torch.arange(10., 16.).reshape(2, 3)
// torch.cat([a, b], 1), torch.cat([a, c], 0), torch.stack([a, c], d) for d in 0, 1, 2
#[test]
fn concat_and_stack_match_pytorch() {
    let a = iota(6, &[2, 3]);
    let b = t(&[6., 7., 8., 9.], &[2, 2]);
    let c = t(&[10., 11., 12., 13., 14., 15.], &[2, 3]);
    let cat1 = Tensor::concat(&[&a, &b], 1).unwrap();
    assert_eq!(cat1.shape(), &[2, 5]);
    assert_eq!(
        values(&cat1),
        vec![0.0, 1.0, 2.0, 6.0, 7.0, 3.0, 4.0, 5.0, 8.0, 9.0]
    );
    let cat0 = Tensor::concat(&[&a, &c], 0).unwrap();
    assert_eq!(
        values(&cat0),
        vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    );
    let expected: [(usize, [usize; 3], [f64; 12]); 3] = [
        (
            0,
            [2, 2, 3],
            [
                0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
            ],
        ),
        (
            1,
            [2, 2, 3],
            [
                0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 3.0, 4.0, 5.0, 13.0, 14.0, 15.0,
            ],
        ),
        (
            2,
            [2, 3, 2],
            [
                0.0, 10.0, 1.0, 11.0, 2.0, 12.0, 3.0, 13.0, 4.0, 14.0, 5.0, 15.0,
            ],
        ),
    ];
    for (dim, shape, v) in expected {
        let s = Tensor::stack(&[&a, &c], dim).unwrap();
        assert_eq!(s.shape(), &shape, "dim {dim}");
        assert_eq!(values(&s), v.to_vec(), "dim {dim}");
    }
    // Non-contiguous operands and f32.
    let at = a.t().unwrap().to_dtype(DType::F32).unwrap();
    let cat = Tensor::concat(&[&at, &at], 1).unwrap();
    assert_eq!(
        cat.to_vec::<f32>().unwrap(),
        vec![0., 3., 0., 3., 1., 4., 1., 4., 2., 5., 2., 5.]
    );
}

#[test]
fn index_select_accumulates_repeated_indices() {
    // An embedding table of 4 rows of 3; look up rows 1, 3, 1, 1.
    let table = iota(12, &[4, 3]).with_requires_grad(true);
    let rows = table.index_select(0, &[1, 3, 1, 1]).unwrap();
    assert_eq!(rows.shape(), &[4, 3]);
    assert_eq!(
        values(&rows),
        vec![3., 4., 5., 9., 10., 11., 3., 4., 5., 3., 4., 5.]
    );
    let g = t(
        &[
            1., 2., 3., 10., 20., 30., 100., 200., 300., 1000., 2000., 3000.,
        ],
        &[4, 3],
    );
    let grads = rows.backward_with(g).unwrap();
    assert_eq!(
        values(grads.get(&table).unwrap()),
        vec![0., 0., 0., 1101., 2202., 3303., 0., 0., 0., 10., 20., 30.]
    );
    // Along the last axis.
    let cols = iota(6, &[2, 3]).index_select(1, &[2, 2, 0]).unwrap();
    assert_eq!(values(&cols), vec![2., 2., 0., 5., 5., 3.]);
}

#[test]
fn where_and_masked_select_route_values_and_gradients() {
    let cond = t(&[1., 0., 0., 1., 1., 0.], &[2, 3]);
    let a = t(&[1., 2., 3., 4., 5., 6.], &[2, 3]).with_requires_grad(true);
    let b = t(&[-1., -2., -3.], &[3]).with_requires_grad(true);
    let y = Tensor::where_cond(&cond, &a, &b).unwrap();
    assert_eq!(values(&y), vec![1., -2., -3., 4., 5., -3.]);
    let grads = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(values(grads.get(&a).unwrap()), vec![1., 0., 0., 1., 1., 0.]);
    assert_eq!(values(grads.get(&b).unwrap()), vec![0., 1., 2.]);

    let x = t(&[1., 2., 3., 4., 5., 6.], &[2, 3]).with_requires_grad(true);
    let mask = t(&[0., 1., 1.], &[3]);
    let sel = x.masked_select(&mask).unwrap();
    assert_eq!(sel.shape(), &[4]);
    assert_eq!(values(&sel), vec![2., 3., 5., 6.]);
    let grads = sel.backward_with(t(&[10., 20., 30., 40.], &[4])).unwrap();
    assert_eq!(
        values(grads.get(&x).unwrap()),
        vec![0., 10., 20., 0., 30., 40.]
    );
}

// ------------------------------------------------------------------ errors

fn message(r: saddle_engine::Result<Tensor>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn errors_name_the_op_and_the_shapes() {
    let a = iota(6, &[2, 3]);
    let b = iota(9, &[3, 3]);
    let e = message(Tensor::concat(&[&a, &b], 1));
    assert!(
        e.contains("concat") && e.contains("[2, 3]") && e.contains("[3, 3]"),
        "{e}"
    );
    let e = message(Tensor::concat(&[], 0));
    assert!(e.contains("concat") && e.contains("empty"), "{e}");
    let e = message(Tensor::concat(&[&a, &a], 2));
    assert!(e.contains("concat") && e.contains("[2, 3]"), "{e}");
    let e = message(Tensor::stack(&[&a, &a, &b], 0));
    assert!(
        e.contains("stack") && e.contains("[2, 3]") && e.contains("[3, 3]"),
        "{e}"
    );
    let e = message(Tensor::stack(&[&a], 3));
    assert!(e.contains("stack") && e.contains("[2, 3]"), "{e}");
    let a32 = a.to_dtype(DType::F32).unwrap();
    assert!(matches!(
        Tensor::concat(&[&a, &a32], 0),
        Err(Error::DTypeMismatch { op: "concat", .. })
    ));
    assert!(matches!(
        Tensor::stack(&[&a32, &a], 0),
        Err(Error::DTypeMismatch { op: "stack", .. })
    ));

    let e = message(a.index_select(0, &[0, 7]));
    assert!(
        e.contains("index_select") && e.contains("index 7") && e.contains("size 2"),
        "{e}"
    );
    let e = message(a.index_select(2, &[0]));
    assert!(e.contains("index_select") && e.contains("[2, 3]"), "{e}");
    let e = message(a.gather(1, &[0, 3], &[1, 2]));
    assert!(
        e.contains("gather") && e.contains("index 3") && e.contains("size 3"),
        "{e}"
    );
    let e = message(a.gather(1, &[0, 1], &[2]));
    assert!(
        e.contains("gather") && e.contains("[2, 3]") && e.contains("[2]"),
        "{e}"
    );
    let e = message(a.gather(1, &[0; 6], &[3, 2]));
    assert!(
        e.contains("gather") && e.contains("[2, 3]") && e.contains("[3, 2]"),
        "{e}"
    );
    let e = message(a.gather(1, &[0; 5], &[2, 3]));
    assert!(e.contains("gather") && e.contains("[2, 3]"), "{e}");

    let e = message(Tensor::where_cond(&iota(4, &[4]), &a, &a));
    assert!(
        e.contains("where_cond") && e.contains("[4]") && e.contains("[2, 3]"),
        "{e}"
    );
    let e = message(a.masked_select(&iota(2, &[2])));
    assert!(
        e.contains("masked_select") && e.contains("[2, 3]") && e.contains("[2]"),
        "{e}"
    );

    let img = iota(2 * 3 * 4 * 4, &[2, 3, 4, 4]);
    let e = message(a.max_pool2d(2, 2, 0));
    assert!(e.contains("max_pool2d") && e.contains("[2, 3]"), "{e}");
    let e = message(img.avg_pool2d(5, 1, 0));
    assert!(
        e.contains("avg_pool2d") && e.contains("[2, 3, 4, 4]") && e.contains("larger"),
        "{e}"
    );
    let e = message(img.avg_pool2d(2, 1, 2));
    assert!(e.contains("avg_pool2d") && e.contains("padding"), "{e}");
    let e = message(img.sum_pool2d(2, 0));
    assert!(e.contains("sum_pool2d") && e.contains("stride"), "{e}");
    let e = message(a.global_avg_pool2d());
    assert!(
        e.contains("global_avg_pool2d") && e.contains("[2, 3]"),
        "{e}"
    );
    let e = message(a.upsample_nearest2d(2));
    assert!(
        e.contains("upsample_nearest2d") && e.contains("[2, 3]"),
        "{e}"
    );
    let e = message(img.upsample_nearest2d(0));
    assert!(
        e.contains("upsample_nearest2d") && e.contains("scale"),
        "{e}"
    );
    let e = message(iota(3, &[3]).rot90(1));
    assert!(e.contains("rot90") && e.contains("[3]"), "{e}");
}

// ------------------------------------------------------------------ gradient checks

/// `dims` sizes in 1..=3 for a given rank, from raw draws.
fn shape_from(raw: &[usize], rank: usize) -> Vec<usize> {
    raw.iter().take(rank).map(|r| 1 + r % 3).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn concat_gradients(rank in 1usize..4, raw in prop::collection::vec(0usize..30, 3), dim_raw in 0usize..3,
                        lens in prop::collection::vec(1usize..4, 1..4), seed in any::<u64>()) {
        let base = shape_from(&raw, rank);
        let dim = dim_raw % rank;
        let inputs: Vec<Tensor> = lens.iter().enumerate().map(|(i, &len)| {
            let mut s = base.clone();
            s[dim] = len;
            leaf(&s, seed.wrapping_add(i as u64))
        }).collect();
        grad_check(|xs| Tensor::concat(&xs.iter().collect::<Vec<_>>(), dim), &inputs);
    }

    #[test]
    fn stack_gradients(rank in 0usize..3, raw in prop::collection::vec(0usize..30, 2), dim_raw in 0usize..3,
                       count in 1usize..4, seed in any::<u64>()) {
        let shape = shape_from(&raw, rank);
        let dim = dim_raw % (rank + 1);
        let inputs: Vec<Tensor> = (0..count).map(|i| leaf(&shape, seed.wrapping_add(i as u64))).collect();
        grad_check(|xs| Tensor::stack(&xs.iter().collect::<Vec<_>>(), dim), &inputs);
    }

    #[test]
    fn index_select_gradients(rank in 1usize..4, raw in prop::collection::vec(0usize..30, 3), dim_raw in 0usize..3,
                              idx_raw in prop::collection::vec(0usize..30, 1..6), seed in any::<u64>()) {
        let shape = shape_from(&raw, rank);
        let dim = dim_raw % rank;
        let idx: Vec<usize> = idx_raw.iter().map(|i| i % shape[dim]).collect();
        grad_check(|xs| xs[0].index_select(dim, &idx), &[leaf(&shape, seed)]);
    }

    #[test]
    fn gather_gradients(rank in 1usize..4, raw in prop::collection::vec(0usize..30, 3), dim_raw in 0usize..3,
                        idx_raw in prop::collection::vec(0usize..30, 3), vals in prop::collection::vec(0usize..30, 81),
                        seed in any::<u64>()) {
        let shape = shape_from(&raw, rank);
        let dim = dim_raw % rank;
        // Index no larger than the input off `dim`, any length (1..=3) along it.
        let index_shape: Vec<usize> = (0..rank)
            .map(|d| if d == dim { 1 + idx_raw[d] % 3 } else { 1 + idx_raw[d] % shape[d] })
            .collect();
        let count: usize = index_shape.iter().product();
        let index: Vec<usize> = vals[..count].iter().map(|v| v % shape[dim]).collect();
        grad_check(|xs| xs[0].gather(dim, &index, &index_shape), &[leaf(&shape, seed)]);
    }

    #[test]
    fn where_cond_gradients(r in 1usize..4, c in 1usize..4, pattern in 0usize..4, bits in prop::collection::vec(any::<bool>(), 9),
                            seed in any::<u64>()) {
        // Broadcast patterns: cond [r, c] or [1, c]; a [r, c] or [r, 1]; b [c] or [r, c].
        let cond_shape = if pattern & 1 == 0 { vec![r, c] } else { vec![1, c] };
        let n: usize = cond_shape.iter().product();
        let cond = t(&bits[..n].iter().map(|&b| f64::from(u8::from(b))).collect::<Vec<_>>(), &cond_shape);
        let a_shape = if pattern & 2 == 0 { vec![r, c] } else { vec![r, 1] };
        let b_shape = if pattern & 2 == 0 { vec![c] } else { vec![r, c] };
        let (a, b) = (leaf(&a_shape, seed), leaf(&b_shape, seed ^ 1));
        grad_check(|xs| Tensor::where_cond(&cond, &xs[0], &xs[1]), &[a, b]);
    }

    #[test]
    fn masked_select_gradients(r in 1usize..4, c in 1usize..4, row_mask in any::<bool>(),
                               bits in prop::collection::vec(any::<bool>(), 9), seed in any::<u64>()) {
        let mask_shape = if row_mask { vec![c] } else { vec![r, c] };
        let n: usize = mask_shape.iter().product();
        let mut m: Vec<f64> = bits[..n].iter().map(|&b| f64::from(u8::from(b))).collect();
        m[0] = 1.0; // at least one selected value
        let mask = t(&m, &mask_shape);
        grad_check(|xs| xs[0].masked_select(&mask), &[leaf(&[r, c], seed)]);
    }

    #[test]
    fn avg_and_sum_pool_gradients(n in 1usize..3, c in 1usize..3, h in 1usize..6, w in 1usize..6, k in 1usize..4,
                                  s in 1usize..4, p_raw in 0usize..2, seed in any::<u64>()) {
        let p = p_raw.min(k / 2);
        prop_assume!(h + 2 * p >= k && w + 2 * p >= k);
        let x = leaf(&[n, c, h, w], seed);
        grad_check(|xs| xs[0].avg_pool2d(k, s, p), std::slice::from_ref(&x));
        prop_assume!(h >= k && w >= k);
        grad_check(|xs| xs[0].sum_pool2d(k, s), &[x]);
    }

    #[test]
    fn max_pool_gradients(n in 1usize..3, c in 1usize..3, h in 1usize..6, w in 1usize..6, k in 1usize..4,
                          s in 1usize..4, p_raw in 0usize..2, seed in any::<u64>()) {
        let p = p_raw.min(k / 2);
        prop_assume!(h + 2 * p >= k && w + 2 * p >= k);
        grad_check(|xs| xs[0].max_pool2d(k, s, p), &[distinct_leaf(&[n, c, h, w], seed)]);
    }

    #[test]
    fn global_pool_gradients(n in 1usize..3, c in 1usize..3, h in 1usize..4, w in 1usize..4, seed in any::<u64>()) {
        let x = leaf(&[n, c, h, w], seed);
        grad_check(|xs| xs[0].global_avg_pool2d(), std::slice::from_ref(&x));
        grad_check(|xs| xs[0].global_sum_pool2d(), &[x]);
        grad_check(|xs| xs[0].global_max_pool2d(), &[distinct_leaf(&[n, c, h, w], seed)]);
    }

    #[test]
    fn upsample_gradients(n in 1usize..3, c in 1usize..3, h in 1usize..4, w in 1usize..4, scale in 1usize..4,
                          seed in any::<u64>()) {
        grad_check(|xs| xs[0].upsample_nearest2d(scale), &[leaf(&[n, c, h, w], seed)]);
    }

    #[test]
    fn rot90_gradients(lead in 0usize..3, h in 1usize..4, w in 1usize..4, k in -5i32..6, seed in any::<u64>()) {
        let mut shape = vec![2; lead];
        shape.extend([h, w]);
        grad_check(|xs| xs[0].rot90(k), &[leaf(&shape, seed)]);
    }
}

// ------------------------------------------------------------------ determinism

#[test]
fn results_do_not_depend_on_the_thread_count() {
    // Large enough to take the kernels' parallel paths.
    let run = || {
        let x = leaf(&[4, 16, 32, 32], 7);
        let y = x
            .max_pool2d(3, 2, 1)
            .unwrap()
            .upsample_nearest2d(2)
            .unwrap()
            .avg_pool2d(3, 1, 1)
            .unwrap();
        let y = y.add(&x.rot90(1).unwrap()).unwrap();
        let z = Tensor::concat(&[&y, &x.sum_pool2d(1, 1).unwrap()], 1)
            .unwrap()
            .index_select(1, &[0, 3, 3, 17, 0])
            .unwrap();
        let loss = z.mul(&z).unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap();
        (values(&z), values(g.get(&x).unwrap()))
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(run);
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
        .install(run);
    assert!(
        one.0 == two.0 && one.1 == two.1,
        "outputs or gradients differ between 1 and 2 threads"
    );
}
