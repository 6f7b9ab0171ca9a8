//! Core behaviour of tensors and autodiff.

use saddle_engine::gradcheck::check_gradients;
use saddle_engine::{no_grad, DType, Device, Error, Rng, Tensor};

fn t(values: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape, Device::Cpu).unwrap()
}

fn leaf(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    Tensor::randn(shape, 0.0, 1.0, DType::F64, Device::Cpu, &mut rng)
        .unwrap()
        .with_requires_grad(true)
}

#[test]
fn views_share_storage_and_index_correctly() {
    let x = t(&[0., 1., 2., 3., 4., 5.], &[2, 3]);
    assert_eq!(
        x.t().unwrap().to_vec::<f64>().unwrap(),
        vec![0., 3., 1., 4., 2., 5.]
    );
    assert_eq!(
        x.narrow(1, 1, 2).unwrap().to_vec::<f64>().unwrap(),
        vec![1., 2., 4., 5.]
    );
    assert_eq!(x.reshape(&[3, 2]).unwrap().shape(), &[3, 2]);
    let b = t(&[7., 8.], &[2, 1]).broadcast_as(&[2, 3]).unwrap();
    assert_eq!(b.to_vec::<f64>().unwrap(), vec![7., 7., 7., 8., 8., 8.]);
    assert_eq!(
        x.t()
            .unwrap()
            .contiguous()
            .unwrap()
            .to_vec::<f64>()
            .unwrap(),
        vec![0., 3., 1., 4., 2., 5.]
    );
}

#[test]
fn gradient_accumulates_when_a_tensor_is_reused() {
    let x = t(&[1., 2., 3.], &[3]).with_requires_grad(true);
    // y = sum(x*x + x) -> dy/dx = 2x + 1
    let y = x.mul(&x).unwrap().add(&x).unwrap().sum_all().unwrap();
    let g = y.backward().unwrap();
    assert_eq!(
        g.get(&x).unwrap().to_vec::<f64>().unwrap(),
        vec![3., 5., 7.]
    );
}

#[test]
fn detach_and_no_grad_cut_history() {
    let x = t(&[1., 2.], &[2]).with_requires_grad(true);
    assert!(!x.detach().requires_grad());
    let y = no_grad(|| x.mul_scalar(2.0).unwrap());
    assert!(!y.requires_grad());
    assert!(x.mul_scalar(2.0).unwrap().requires_grad());
}

#[test]
fn graph_is_freed_after_backward() {
    let x = t(&[1., 2.], &[2]).with_requires_grad(true);
    let y = x.exp().unwrap().sum_all().unwrap();
    y.backward().unwrap();
    match y.backward() {
        Err(Error::Autograd(msg)) => assert!(
            msg.contains("second time") || msg.contains("freed"),
            "{msg}"
        ),
        other => panic!("expected an autograd error, got {other:?}"),
    }
}

#[test]
fn shape_errors_name_the_op_and_both_shapes() {
    let a = t(&[0.; 6], &[2, 3]);
    let b = t(&[0.; 8], &[4, 2]);
    let e = a.matmul(&b).unwrap_err().to_string();
    assert!(
        e.contains("matmul") && e.contains("[2, 3]") && e.contains("[4, 2]"),
        "{e}"
    );
    let e = a.add(&b).unwrap_err().to_string();
    assert!(
        e.contains("add") && e.contains("[2, 3]") && e.contains("[4, 2]"),
        "{e}"
    );
}

#[test]
fn matmul_values_and_batched_broadcast() {
    let a = t(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
    let b = t(&[1., 0., 0., 1., 1., 1.], &[3, 2]);
    assert_eq!(
        a.matmul(&b).unwrap().to_vec::<f64>().unwrap(),
        vec![4., 5., 10., 11.]
    );
    let batch = a.unsqueeze(0).unwrap().broadcast_as(&[4, 2, 3]).unwrap();
    let c = batch.matmul(&b).unwrap();
    assert_eq!(c.shape(), &[4, 2, 2]);
    assert_eq!(&c.to_vec::<f64>().unwrap()[12..], &[4., 5., 10., 11.]);
}

#[test]
fn elementwise_and_reduction_gradients() {
    let a = leaf(&[3, 4], 1);
    let b = leaf(&[4], 2);
    check_gradients(
        |x| x[0].mul(&x[1])?.tanh()?.sum(&[1], false),
        &[a.clone(), b.clone()],
        1e-6,
        1e-7,
        1e-5,
    )
    .unwrap();
    check_gradients(
        |x| x[0].div(&x[1].exp()?)?.var(&[0], true, 1),
        &[a.clone(), b.clone()],
        1e-6,
        1e-7,
        1e-5,
    )
    .unwrap();
    check_gradients(
        |x| x[0].matmul(&x[1].unsqueeze(1)?),
        &[a, b],
        1e-6,
        1e-7,
        1e-5,
    )
    .unwrap();
}

/// `[2, 3, 2]` with ties: `[[[1, 5], [3, 5], [2, 0]], [[-1, -2], [-3, 7], [-1, 7]]]`.
fn with_ties() -> Tensor {
    t(
        &[1., 5., 3., 5., 2., 0., -1., -2., -3., 7., -1., 7.],
        &[2, 3, 2],
    )
}

/// The gradient of the scalar `loss` with respect to `x`.
fn gradient(loss: &Tensor, x: &Tensor) -> Vec<f64> {
    let grads = loss.backward().unwrap();
    grads.get(x).unwrap().to_vec::<f64>().unwrap()
}

/// `argmax` along each axis, worked out by hand: one index per position of the other axes in
/// their row-major order, the first of tied maxima, and a transposed (strided) input read by
/// its logical layout. Fails (each shown by a deliberate change) on ties going to the last
/// maximum (`>=`), and on the reduced axis permuted to the front instead of the back.
#[test]
fn argmax_picks_the_first_maximum_along_any_axis() {
    let x = with_ties();
    assert_eq!(x.argmax(0).unwrap(), [0, 0, 0, 1, 0, 1]);
    assert_eq!(x.argmax(1).unwrap(), [1, 0, 0, 1]);
    assert_eq!(x.argmax(2).unwrap(), [1, 1, 0, 0, 1, 1]);
    // [k][j][b] = x[b][j][k]: over b for each (k, j).
    assert_eq!(
        x.transpose(0, 2).unwrap().argmax(2).unwrap(),
        [0, 0, 0, 0, 1, 1]
    );
    assert!(x.argmax(3).is_err());
}

/// `max_all`: the largest element as a 0-d tensor (all negative here too), a 0-d input itself,
/// and a gradient shared equally by tied maxima (as PyTorch's `amax`). Fails (each shown by a
/// deliberate change) on a maximum started from 0 instead of -inf (0 for all-negative input),
/// and on the whole gradient given to each tie.
#[test]
fn max_all_takes_the_largest_element_and_shares_its_gradient_between_ties() {
    let x = with_ties().with_requires_grad(true);
    let m = x.max_all().unwrap();
    assert_eq!((m.shape(), m.to_scalar().unwrap()), (&[][..], 7.0));
    let g = gradient(&m, &x);
    let mut want = [0.0; 12];
    (want[9], want[11]) = (0.5, 0.5);
    assert_eq!(g, want);
    let negative = t(&[-3.0, -1.5, -2.0, -8.0], &[2, 2]);
    assert_eq!(negative.max_all().unwrap().to_scalar().unwrap(), -1.5);
    assert_eq!(
        Tensor::scalar(4.0f64)
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap(),
        4.0
    );
}

/// `split_sizes` along either axis: consecutive pieces of the given sizes (an empty one
/// included) whose gradients land back in their columns; sizes that do not add up are refused.
/// Fails on every piece starting at 0 (its start not advanced: a deliberate change).
#[test]
fn split_sizes_cuts_consecutive_pieces_and_routes_their_gradients_back() {
    let x = t(&[0., 1., 2., 3., 4., 10., 11., 12., 13., 14.], &[2, 5]).with_requires_grad(true);
    let pieces = x.split_sizes(&[2, 0, 3], 1).unwrap();
    let shapes: Vec<&[usize]> = pieces.iter().map(|p| p.shape()).collect();
    assert_eq!(shapes, [&[2, 2][..], &[2, 0], &[2, 3]]);
    assert_eq!(pieces[0].to_vec::<f64>().unwrap(), [0., 1., 10., 11.]);
    assert_eq!(
        pieces[2].to_vec::<f64>().unwrap(),
        [2., 3., 4., 12., 13., 14.]
    );
    // Gradient of 1·sum(first) + 3·sum(last): 1 in columns 0-1, 3 in columns 2-4.
    let loss = pieces[0]
        .sum_all()
        .unwrap()
        .add(&pieces[2].sum_all().unwrap().mul_scalar(3.0).unwrap())
        .unwrap();
    let g = gradient(&loss, &x);
    assert_eq!(g, [1., 1., 3., 3., 3., 1., 1., 3., 3., 3.]);
    let rows = x.split_sizes(&[1, 1], 0).unwrap();
    assert_eq!(rows[1].to_vec::<f64>().unwrap(), [10., 11., 12., 13., 14.]);
    let err = x.split_sizes(&[2, 2], 1).unwrap_err().to_string();
    assert!(
        err.contains("split_sizes") && err.contains("[2, 2]"),
        "{err}"
    );
}

// ------------------------------------------------------------------------- bf16 and f16

fn p2(e: i32) -> f64 {
    2f64.powi(e)
}

#[test]
fn half_tensors_round_trip_representable_values_and_round_others_once() {
    // Exactly representable in both: back unchanged through f32, f64 and the other 16-bit type.
    let exact = [
        0.0,
        -0.0,
        1.5,
        -7.0,
        256.0,
        1.0 + p2(-7),
        p2(-14),
        -3.0 * p2(10),
    ];
    for dtype in [DType::BF16, DType::F16] {
        let other = if dtype == DType::BF16 {
            DType::F16
        } else {
            DType::BF16
        };
        let x = t(&exact, &[2, 4]).to_dtype(dtype).unwrap();
        assert_eq!(x.dtype(), dtype);
        assert_eq!(x.shape(), &[2, 4]);
        let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect::<Vec<_>>();
        let want = bits(exact.to_vec());
        assert_eq!(bits(x.to_vec_f64().unwrap()), want, "{dtype} via f64");
        for via in [DType::F32, DType::F64, other] {
            let back = x.to_dtype(via).unwrap().to_dtype(dtype).unwrap();
            assert_eq!(bits(back.to_vec_f64().unwrap()), want, "{dtype} via {via}");
        }
        // f32 readback widens exactly; views and copies of 16-bit tensors keep their values.
        let exact_f32: Vec<u32> = exact.iter().map(|&v| (v as f32).to_bits()).collect();
        let read: Vec<u32> = x
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(read, exact_f32);
        let tv = x.t().unwrap();
        assert_eq!(tv.dtype(), dtype);
        let transposed = [
            0.0,
            256.0,
            -0.0,
            1.0 + p2(-7),
            1.5,
            p2(-14),
            -7.0,
            -3.0 * p2(10),
        ];
        assert_eq!(tv.to_vec_f64().unwrap(), transposed);
        assert_eq!(
            tv.contiguous().unwrap().to_vec_f64().unwrap(),
            transposed,
            "{dtype} contiguous copy of a view"
        );
        assert_eq!(tv.reshape(&[8]).unwrap().to_vec_f64().unwrap(), transposed);
        assert_eq!(
            x.narrow(1, 3, 1)
                .unwrap()
                .narrow(0, 1, 1)
                .unwrap()
                .to_scalar()
                .unwrap(),
            -3.0 * p2(10)
        );
    }
    // Rounding to nearest, ties to even, once: from f64 even where f32 would have made a tie.
    let cases: [(DType, f64, f64); 9] = [
        (DType::BF16, 1.0 + p2(-8), 1.0),
        (DType::BF16, 1.0 + 3.0 * p2(-8), 1.0 + p2(-6)),
        (DType::BF16, 1.0 + p2(-8) + p2(-40), 1.0 + p2(-7)),
        (DType::BF16, 257.0, 256.0),
        (DType::BF16, 1e300, f64::INFINITY),
        (DType::F16, 1.0 + p2(-11), 1.0),
        (DType::F16, 1.0 + p2(-11) + p2(-45), 1.0 + p2(-10)),
        (DType::F16, 65520.0, f64::INFINITY),
        (DType::F16, p2(-25), 0.0),
    ];
    for (dtype, v, want) in cases {
        let got = t(&[v], &[1]).to_dtype(dtype).unwrap().to_scalar().unwrap();
        assert_eq!(got, want, "{v:e} to {dtype}");
    }
    // From f32: 1 + 2^-8 + 2^-20 is past the tie.
    let x = Tensor::from_vec(
        vec![1.0f32 + 2f32.powi(-8) + 2f32.powi(-20)],
        &[1],
        Device::Cpu,
    )
    .unwrap();
    assert_eq!(
        x.to_dtype(DType::BF16).unwrap().to_scalar().unwrap(),
        1.0 + p2(-7)
    );
    // Creation: the value rounded once.
    let z = Tensor::full(1.0 + p2(-8) + p2(-40), &[2, 3], DType::BF16, Device::Cpu).unwrap();
    assert_eq!(z.dtype(), DType::BF16);
    assert_eq!(z.to_vec_f64().unwrap(), vec![1.0 + p2(-7); 6]);
    let z = Tensor::zeros(&[4], DType::F16, Device::Cpu).unwrap();
    assert_eq!(
        (z.dtype(), z.to_vec_f64().unwrap()),
        (DType::F16, vec![0.0; 4])
    );
}

/// `sum(w * x)` for a 16-bit `x` and f32 weights, in f32 (the product and sum refuse 16-bit
/// tensors): the gradient reaching `x` is `w` rounded to its dtype.
fn weighted_sum(x: &Tensor, w: &Tensor) -> Tensor {
    x.to_dtype(DType::F32)
        .unwrap()
        .mul(w)
        .unwrap()
        .sum_all()
        .unwrap()
}

#[test]
fn half_conversion_is_differentiable() {
    let x = Tensor::from_vec(
        vec![1.0f32 + 2f32.powi(-8) + 2f32.powi(-20), -2.0],
        &[2],
        Device::Cpu,
    )
    .unwrap()
    .with_requires_grad(true);
    let h = x.to_dtype(DType::BF16).unwrap();
    assert!(h.requires_grad());
    // d/dx sum(w * f32(bf16(x))) = w, converted to bf16 and back.
    let w = t(&[1.0 + p2(-8) + p2(-30), 3.0], &[2])
        .to_dtype(DType::F32)
        .unwrap();
    let loss = weighted_sum(&h, &w);
    let g = loss.backward().unwrap();
    let gx = g.get(&x).unwrap();
    assert_eq!(gx.dtype(), DType::F32);
    assert_eq!(gx.to_vec_f64().unwrap(), vec![1.0, 3.0]);
}

/// Small integers: every product and partial sum is exact in f32, so the expected results are
/// the exact sums rounded once.
fn small_ints(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| (rng.uniform_f64() * 17.0).floor() - 8.0)
        .collect()
}

/// `a [.., m, k] @ b [k, n]` in f64 (exact for small integers), each result rounded to `dtype`.
fn matmul_rounded(
    a: &[f64],
    b: &[f64],
    (m, k, n): (usize, usize, usize),
    dtype: DType,
) -> Vec<f64> {
    let mut out = Vec::new();
    for am in a.chunks(m * k) {
        for i in 0..m {
            for j in 0..n {
                out.push((0..k).map(|p| am[i * k + p] * b[p * n + j]).sum());
            }
        }
    }
    t(&out, &[out.len()])
        .to_dtype(dtype)
        .unwrap()
        .to_vec_f64()
        .unwrap()
}

#[test]
fn half_matmul_rounds_the_f32_product_once() {
    for dtype in [DType::BF16, DType::F16] {
        // 256 + 1 + 1 (bf16) and 2048 + 1 + 1 (f16) are representable; summing in the 16-bit type
        // would have lost both ones to ties-to-even.
        let big = if dtype == DType::BF16 { 256.0 } else { 2048.0 };
        let a = t(&[big, 1.0, 1.0, 1.0, 2.0, 3.0], &[2, 3])
            .to_dtype(dtype)
            .unwrap();
        let b = t(&[1.0, 0.5, 1.0, 0.0, 1.0, -1.0], &[3, 2])
            .to_dtype(dtype)
            .unwrap();
        let c = a.matmul(&b).unwrap();
        assert_eq!(c.dtype(), dtype);
        assert_eq!(
            c.to_vec_f64().unwrap(),
            vec![big + 2.0, big / 2.0 - 1.0, 6.0, -2.5]
        );

        // A batch broadcast against a transposed view, forward and both gradients, on sums
        // large enough to be rounded (up to 9 · 64).
        let (m, k, n) = (3, 9, 5);
        let av = small_ints(2 * m * k, 1);
        let bv = small_ints(n * k, 2);
        let a = t(&av, &[2, m, k])
            .to_dtype(dtype)
            .unwrap()
            .with_requires_grad(true);
        let bt = t(&bv, &[n, k])
            .to_dtype(dtype)
            .unwrap()
            .with_requires_grad(true);
        let c = a.matmul(&bt.t().unwrap()).unwrap();
        assert_eq!((c.shape(), c.dtype()), (&[2, m, n][..], dtype));
        let b_kn = bt.t().unwrap().to_vec_f64().unwrap();
        assert_eq!(
            c.to_vec_f64().unwrap(),
            matmul_rounded(&av, &b_kn, (m, k, n), dtype)
        );
        // loss = sum(w * c) with integer weights: da = w @ b^T, db^T = sum over the batch of a^T w.
        let wv = small_ints(2 * m * n, 3);
        let w = t(&wv, &[2, m, n]).to_dtype(DType::F32).unwrap();
        let loss = weighted_sum(&c, &w);
        let grads = loss.backward().unwrap();
        let (ga, gbt) = (grads.get(&a).unwrap(), grads.get(&bt).unwrap());
        assert_eq!((ga.dtype(), gbt.dtype()), (dtype, dtype));
        assert_eq!(
            ga.to_vec_f64().unwrap(),
            matmul_rounded(&wv, &bv, (m, n, k), dtype)
        );
        // Each batch's a^T w rounded, then the two summed in f32 and rounded again (as PyTorch).
        let mut per_batch = Vec::new();
        for z in 0..2 {
            let at: Vec<f64> = (0..k * m)
                .map(|i| av[z * m * k + (i % m) * k + i / m])
                .collect();
            per_batch.push(matmul_rounded(
                &at,
                &wv[z * m * n..(z + 1) * m * n],
                (k, m, n),
                dtype,
            ));
        }
        let summed: Vec<f64> = (0..k * n)
            .map(|i| per_batch[0][i] + per_batch[1][i])
            .collect();
        let want_bt: Vec<f64> = (0..n * k).map(|i| summed[(i % k) * n + i / k]).collect();
        let want_bt = t(&want_bt, &[n * k])
            .to_dtype(dtype)
            .unwrap()
            .to_vec_f64()
            .unwrap();
        assert_eq!(gbt.to_vec_f64().unwrap(), want_bt);
    }
}

#[test]
fn half_tensors_refuse_other_ops_naming_the_op_and_dtype() {
    let x = t(&[1.0, -2.0, 3.0, 0.5], &[2, 2])
        .to_dtype(DType::BF16)
        .unwrap();
    let y = x.to_dtype(DType::F16).unwrap();
    type Op = fn(&Tensor) -> saddle_engine::Result<Tensor>;
    let ops: [(&str, Op); 8] = [
        ("add", |x| x.add(x)),
        ("mul", |x| x.mul(x)),
        ("exp", |x| x.exp()),
        ("relu", |x| x.relu()),
        ("sum", |x| x.sum_all()),
        ("softmax", |x| x.softmax(1)),
        ("linear", |x| x.linear(x, None)),
        ("concat", |x| Tensor::concat(&[x, x], 0)),
    ];
    for h in [&x, &y] {
        for (name, op) in ops {
            let e = op(h).unwrap_err();
            let msg = e.to_string();
            assert!(
                matches!(e, Error::Unsupported { dtype, .. } if dtype == h.dtype())
                    && msg.contains(name)
                    && msg.contains(h.dtype().name()),
                "{name} on {}: {msg}",
                h.dtype()
            );
        }
    }
    // Mixed dtypes are a mismatch, not a silent conversion.
    let f = t(&[1.0; 4], &[2, 2]).to_dtype(DType::F32).unwrap();
    assert!(matches!(
        x.matmul(&f).unwrap_err(),
        Error::DTypeMismatch { op: "matmul", .. }
    ));
}
