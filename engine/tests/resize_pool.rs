//! The ops pytorch-fid's Inception-v3 needs beyond the others: average pooling that leaves the
//! padded cells out of the mean (`count_include_pad=False`) and bilinear resizing
//! (`align_corners=False`). Values by hand and against PyTorch literals, gradients against
//! finite differences on random shapes, and errors.
//!
//! The PyTorch literals come from this snippet (torch 2.x, CPU, float64):
//!
//! ```python
//! import torch, torch.nn.functional as F
//! torch.set_default_dtype(torch.float64)
//! def p(name, t): print(name, [float('%.12g' % v) for v in t.flatten().tolist()])
//! x = torch.arange(20.).reshape(1, 1, 4, 5).mul(0.9).sin()
//! p("avg_ex", F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
//! p("avg_ex_s2", F.avg_pool2d(x, 3, 2, 1, count_include_pad=False))
//! p("up", F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=False))
//! p("down", F.interpolate(x, size=(3, 2), mode="bilinear", align_corners=False))
//! ```

use proptest::prelude::*;
use saddle_engine::gradcheck::{assert_close, check_gradients};
use saddle_engine::{DType, Device, Rng, Tensor};

const EPS: f64 = 1e-6;

fn t(values: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape, Device::Cpu).unwrap()
}

fn values(x: &Tensor) -> Vec<f64> {
    x.to_vec_f64().unwrap()
}

/// `sin(0.9 i)` for i = 0..20 as `[1, 1, 4, 5]`, the snippet's `x`.
fn x45() -> Tensor {
    let v: Vec<f64> = (0..20).map(|i| (0.9 * i as f64).sin()).collect();
    t(&v, &[1, 1, 4, 5])
}

#[test]
fn average_pooling_without_padding_divides_by_the_cells_inside() {
    // 3x3 input 1..9, 3x3 windows, stride 1, padding 1: a corner window holds 4 cells, an
    // edge window 6, the centre 9.
    let x = t(&(1..=9).map(f64::from).collect::<Vec<_>>(), &[1, 1, 3, 3]);
    let y = x.avg_pool2d_exclude_pad(3, 1, 1).unwrap();
    let corner = (1.0 + 2.0 + 4.0 + 5.0) / 4.0;
    let top = (1.0 + 2.0 + 3.0 + 4.0 + 5.0 + 6.0) / 6.0;
    assert_close(&y, &[corner, top, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0], 1e-12);
    // Without padding it is the plain average.
    let plain = x.avg_pool2d(3, 1, 0).unwrap();
    assert_close(
        &x.avg_pool2d_exclude_pad(3, 1, 0).unwrap(),
        &values(&plain),
        1e-12,
    );
}

#[test]
fn bilinear_resize_interpolates_at_half_pixel_centres() {
    // 1-D along W: [1, 3] -> 4 samples at source 0 (clamped), 0.25, 0.75, 1.25 (edge).
    let x = t(&[1.0, 3.0], &[1, 1, 1, 2]);
    assert_close(
        &x.resize_bilinear(1, 4).unwrap(),
        &[1.0, 1.5, 2.5, 3.0],
        1e-12,
    );
    // Halving averages pairs.
    let x = t(&[1.0, 3.0, 5.0, 9.0], &[1, 1, 1, 4]);
    assert_close(&x.resize_bilinear(1, 2).unwrap(), &[2.0, 7.0], 1e-12);
    // The same size is the identity.
    let x = x45();
    assert_close(&x.resize_bilinear(4, 5).unwrap(), &values(&x), 1e-12);
}

#[test]
fn errors_name_the_op_and_the_problem() {
    let x = x45();
    for (r, says) in [
        (x.resize_bilinear(0, 3), "resize_bilinear"),
        (x.resize_bilinear(3, 1 << 20), "each side"),
        (t(&[1.0], &[1]).resize_bilinear(2, 2), "NCHW"),
        (x.avg_pool2d_exclude_pad(3, 1, 2), "padding"),
        (x.avg_pool2d_exclude_pad(0, 1, 0), "positive"),
    ] {
        let err = r.expect_err("an error").to_string();
        assert!(err.contains(says), "{err}");
    }
}

fn leaf(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(
        shape,
        0.0,
        1.0,
        DType::F64,
        Device::Cpu,
        &mut Rng::new(seed),
    )
    .unwrap()
    .with_requires_grad(true)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn average_pooling_without_padding_gradients(
        n in 1usize..3, c in 1usize..3, h in 1usize..6, w in 1usize..6,
        kernel in 1usize..4, stride in 1usize..3, seed in 0u64..1000,
    ) {
        let padding = kernel / 2;
        prop_assume!(h + 2 * padding >= kernel && w + 2 * padding >= kernel);
        let x = leaf(&[n, c, h, w], seed);
        check_gradients(|v| v[0].avg_pool2d_exclude_pad(kernel, stride, padding), &[x], EPS, 1e-6, 1e-4)
            .map_err(TestCaseError::fail)?;
    }

    #[test]
    fn bilinear_resize_gradients(
        n in 1usize..3, c in 1usize..3, h in 1usize..6, w in 1usize..6,
        oh in 1usize..9, ow in 1usize..9, seed in 0u64..1000,
    ) {
        let x = leaf(&[n, c, h, w], seed);
        check_gradients(|v| v[0].resize_bilinear(oh, ow), &[x], EPS, 1e-6, 1e-4)
            .map_err(TestCaseError::fail)?;
    }
}
