//! Inputs and proptest strategies shared by the engine's gradient-check tests.

// Each test binary uses its own subset.
#![allow(dead_code)]

use proptest::prelude::*;
use saddle_engine::{DType, Device, Rng, Tensor};

/// A standard-normal f64 leaf that requires grad.
pub fn leaf(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    Tensor::randn(shape, 0.0, 1.0, DType::F64, Device::Cpu, &mut rng)
        .unwrap()
        .with_requires_grad(true)
}

/// Values in [0.5, 2] (for log, sqrt, division, pow).
pub fn positive_leaf(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    Tensor::rand(shape, 0.5, 2.0, DType::F64, Device::Cpu, &mut rng)
        .unwrap()
        .with_requires_grad(true)
}

/// Normal values at least 0.05 away from 0 and ±1 (the kinks of relu, abs, clamp(-1, 1)), so
/// no finite difference straddles one.
pub fn off_kink_leaf(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let v: Vec<f64> = (0..shape.iter().product::<usize>())
        .map(|_| {
            let mut x = rng.normal_f64();
            for kink in [0.0, 1.0, -1.0f64] {
                if (x - kink).abs() < 0.05 {
                    x += 0.05f64.copysign(x - kink);
                }
            }
            x
        })
        .collect();
    Tensor::from_vec(v, shape, Device::Cpu)
        .unwrap()
        .with_requires_grad(true)
}

/// Shapes of rank 1 to 3 with sizes 1 to 3.
pub fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..4, 1..4)
}

/// A shape and a second shape that broadcasts against it: some dimensions set to 1, some
/// leading dimensions dropped.
pub fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    shape_strategy()
        .prop_flat_map(|s| {
            let rank = s.len();
            (Just(s), prop::collection::vec(any::<bool>(), rank), 0..rank)
        })
        .prop_map(|(s, ones, drop)| {
            let other: Vec<usize> = s
                .iter()
                .zip(&ones)
                .map(|(&d, &one)| if one { 1 } else { d })
                .skip(drop)
                .collect();
            (s, other)
        })
}

/// A small convolution geometry: (batch, groups, in / out channels per group, [H, W], kernel
/// [h, w], stride, padding, dilation, with bias).
pub type ConvGeometry = (
    usize,
    usize,
    usize,
    usize,
    [usize; 2],
    [usize; 2],
    usize,
    usize,
    usize,
    bool,
);

pub fn conv_geometry() -> impl Strategy<Value = ConvGeometry> {
    (
        1..=2usize,
        1..=2usize,
        1..=2usize,
        1..=2usize,
        [3..=7usize, 3..=7],
        [1..=3usize, 1..=3],
        1..=2usize,
        0..=1usize,
        1..=2usize,
        any::<bool>(),
    )
}
