//! Finite-difference gradient checks (f64) of the core ops on random shapes and broadcast
//! patterns drawn by proptest.

// `&[x.clone()]` keeps every check on one readable line.
#![allow(clippy::cloned_ref_to_slice_refs)]

use proptest::prelude::*;
use saddle_engine::gradcheck::check_gradients;
use saddle_engine::{DType, Result, Tensor};

mod common;
use common::*;

const EPS: f64 = 1e-6;
const ATOL: f64 = 1e-6;
const RTOL: f64 = 1e-5;

fn check(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
) -> std::result::Result<(), TestCaseError> {
    check_gradients(f, inputs, EPS, ATOL, RTOL).map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn broadcasting_binary_ops((sa, sb) in broadcast_pair(), swap in any::<bool>(), seed in 0u64..1000) {
        let (sa, sb) = if swap { (sb, sa) } else { (sa, sb) };
        let a = leaf(&sa, seed);
        let b = positive_leaf(&sb, seed + 1);
        let c = off_kink_leaf(&sb, seed + 2);
        check(|x| x[0].add(&x[1]), &[a.clone(), b.clone()])?;
        check(|x| x[0].sub(&x[1]), &[a.clone(), b.clone()])?;
        check(|x| x[0].mul(&x[1]), &[a.clone(), b.clone()])?;
        check(|x| x[0].div(&x[1]), &[a.clone(), b.clone()])?;
        check(|x| x[1].pow(&x[0]), &[a.clone(), b.clone()])?;
        // maximum/minimum: shift one side so no pair is (nearly) tied.
        check(|x| x[0].maximum(&x[1].add_scalar(0.5)?), &[c.clone(), b.clone()])?;
        check(|x| x[0].minimum(&x[1].add_scalar(0.5)?), &[c, b])?;
    }

    #[test]
    fn smooth_unary_ops(shape in shape_strategy(), seed in 0u64..1000) {
        let x = leaf(&shape, seed);
        let p = positive_leaf(&shape, seed);
        check(|x| x[0].neg(), &[x.clone()])?;
        check(|x| x[0].exp(), &[x.clone()])?;
        check(|x| x[0].sigmoid(), &[x.clone()])?;
        check(|x| x[0].tanh(), &[x.clone()])?;
        check(|x| x[0].softplus(), &[x.clone()])?;
        check(|x| x[0].square(), &[x.clone()])?;
        check(|x| x[0].mul_scalar(-1.5)?.add_scalar(0.25)?.sub_scalar(1.0)?.div_scalar(3.0)?.rsub_scalar(2.0), &[x])?;
        check(|x| x[0].log(), &[p.clone()])?;
        check(|x| x[0].sqrt(), &[p.clone()])?;
        check(|x| x[0].powf(2.5), &[p.clone()])?;
        check(|x| x[0].recip(), &[p])?;
    }

    #[test]
    fn piecewise_unary_ops(shape in shape_strategy(), seed in 0u64..1000) {
        let x = off_kink_leaf(&shape, seed);
        check(|x| x[0].abs(), &[x.clone()])?;
        check(|x| x[0].relu(), &[x.clone()])?;
        check(|x| x[0].leaky_relu(0.2), &[x.clone()])?;
        check(|x| x[0].elu(1.3), &[x.clone()])?;
        // clamp bounds chosen between grid points of the data (values are >= 0.05 from 0).
        check(|x| x[0].clamp(-0.01, 0.02), &[x])?;
    }

    #[test]
    fn reductions_over_random_axes(shape in shape_strategy(), mask in prop::collection::vec(any::<bool>(), 3), keep in any::<bool>(), seed in 0u64..1000) {
        let x = leaf(&shape, seed);
        let mut dims: Vec<usize> = (0..shape.len()).filter(|&d| mask[d]).collect();
        if dims.is_empty() { dims.push(0); }
        let n: usize = dims.iter().map(|&d| shape[d]).product();
        check(|x| x[0].sum(&dims, keep), &[x.clone()])?;
        check(|x| x[0].mean(&dims, keep), &[x.clone()])?;
        check(|x| x[0].max(&dims, keep), &[x.clone()])?;
        check(|x| x[0].min(&dims, keep), &[x.clone()])?;
        check(|x| x[0].var(&dims, keep, 0), &[x.clone()])?;
        if n > 1 {
            check(|x| x[0].var(&dims, keep, 1), &[x.clone()])?;
        }
        check(|x| x[0].sum_all(), &[x.clone()])?;
        check(|x| x[0].mean_all(), &[x])?;
    }

    #[test]
    fn matmul_plain_transposed_and_batched(m in 1usize..5, k in 1usize..5, n in 1usize..5, batch in 1usize..3, seed in 0u64..1000) {
        let a = leaf(&[m, k], seed);
        let b = leaf(&[k, n], seed + 1);
        check(|x| x[0].matmul(&x[1]), &[a.clone(), b.clone()])?;
        let at = leaf(&[k, m], seed + 2);
        check(|x| x[0].t()?.matmul(&x[1]), &[at, b.clone()])?;
        let ab = leaf(&[batch, m, k], seed + 3);
        check(|x| x[0].matmul(&x[1]), &[ab.clone(), b])?; // rhs broadcast over the batch
        let bb = leaf(&[batch, k, n], seed + 4);
        check(|x| x[0].matmul(&x[1]), &[ab, bb])?;
    }

    #[test]
    fn views(shape in prop::collection::vec(1usize..4, 2..4), seed in 0u64..1000) {
        let x = leaf(&shape, seed);
        let rank = shape.len();
        let numel: usize = shape.iter().product();
        check(|x| x[0].reshape(&[numel]), &[x.clone()])?;
        check(|x| x[0].t()?.contiguous(), &[x.clone()])?;
        check(|x| x[0].transpose(0, -1)?.reshape(&[numel]), &[x.clone()])?;
        let mut perm: Vec<usize> = (0..rank).rev().collect();
        perm.rotate_left(1);
        check(|x| x[0].permute(&perm), &[x.clone()])?;
        let len = shape[rank - 1];
        check(|x| x[0].narrow(rank - 1, len / 2, len - len / 2), &[x.clone()])?;
        check(|x| x[0].unsqueeze(1)?.squeeze(1)?.flatten(0, 1), &[x.clone()])?;
        let mut big = vec![2];
        big.extend_from_slice(&shape);
        check(|x| x[0].broadcast_as(&big), &[x.clone()])?;
        let pieces = x.split(1, 0).unwrap().len();
        check(|x| x[0].split(1, 0).unwrap()[pieces - 1].mul_scalar(2.0), &[x.clone()])?;
        // Through f32 the finite difference is quantised: a coarser step and tolerance.
        check_gradients(|x| x[0].to_dtype(DType::F32)?.to_dtype(DType::F64), &[x], 1e-2, 1e-3, 1e-3)
            .map_err(TestCaseError::fail)?;
    }
}
