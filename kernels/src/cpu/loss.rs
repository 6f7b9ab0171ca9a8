//! Elementwise losses: per-element formulas, a fused map-and-sum with a fixed summation order,
//! and the matching gradient maps.
//!
//! The sum splits the input into blocks of a fixed size (not a per-thread share), sums each block
//! with interleaved accumulators and adds the block sums in order, so it is identical for any
//! number of threads.

use super::reduce::sum_slice;
use super::PAR_THRESHOLD;
use crate::Float;
use rayon::prelude::*;

/// Elements per block of the fixed-order sum.
const BLOCK: usize = 4096;

/// `sum(f(a[i], b[i]))` without materialising the terms beyond one block.
pub fn sum_zip<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync) -> T {
    assert_eq!(a.len(), b.len());
    let block = |(xa, xb): (&[T], &[T])| {
        let mut terms = [T::ZERO; BLOCK];
        let terms = &mut terms[..xa.len()];
        for ((t, &u), &v) in terms.iter_mut().zip(xa).zip(xb) {
            *t = f(u, v);
        }
        sum_slice(terms)
    };
    let partials: Vec<T> = if a.len() >= PAR_THRESHOLD {
        a.par_chunks(BLOCK)
            .zip(b.par_chunks(BLOCK))
            .map(block)
            .collect()
    } else {
        a.chunks(BLOCK).zip(b.chunks(BLOCK)).map(block).collect()
    };
    partials.into_iter().fold(T::ZERO, |s, p| s + p)
}

/// Binary cross-entropy of logit `x` against target `t`: `max(x, 0) - x t + ln(1 + e^-|x|)`,
/// which never overflows.
#[inline]
pub fn bce_with_logits<T: Float>(x: T, t: T) -> T {
    x.max(T::ZERO) - x * t + (-x.abs()).exp().ln_1p()
}

/// `sigmoid(x)` without overflow.
#[inline]
pub fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

/// `d/dx` of [`bce_with_logits`]: `sigmoid(x) - t`.
#[inline]
pub fn bce_with_logits_dx<T: Float>(x: T, t: T) -> T {
    sigmoid(x) - t
}

/// `d/dt` of [`bce_with_logits`]: `-x`.
#[inline]
pub fn bce_with_logits_dt<T: Float>(x: T) -> T {
    -x
}

/// Sign with `sign(0) = 0` (the L1 loss's subgradient, as PyTorch).
#[inline]
pub fn sign<T: Float>(v: T) -> T {
    if v > T::ZERO {
        T::ONE
    } else if v < T::ZERO {
        -T::ONE
    } else {
        T::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_order_sum_matches_naive() {
        let a: Vec<f64> = (0..10_000).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..10_000).map(|i| (i as f64 * 0.11).cos()).collect();
        let naive: f64 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        let fused = sum_zip(&a, &b, |x, y| (x - y) * (x - y));
        assert!((naive - fused).abs() < 1e-9 * naive.abs());
        assert!(bce_with_logits(1e4f32, 0.0).is_finite());
        assert!((bce_with_logits(-1e4f64, 0.0)).abs() < 1e-300);
    }
}
