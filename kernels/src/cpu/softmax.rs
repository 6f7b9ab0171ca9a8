//! Softmax and log-softmax along one axis, forward and backward, fused per lane.
//!
//! Numerically stable: the lane's maximum is subtracted before exponentiating, so inputs of any
//! magnitude give finite results (a lane of all `-inf` gives NaN, as in PyTorch).

use super::lanes::{map_lanes, Lanes};
use super::reduce::sum_slice;
use crate::Float;

fn lane_max<T: Float>(x: &[T]) -> T {
    x.iter().fold(
        T::NEG_INFINITY,
        |m, &v| if v > m || v.is_nan() { v } else { m },
    )
}

/// Writes `exp(x - max)` into `y` and returns `(max, sum of the exponentials)`.
#[inline]
fn shifted_exp<T: Float>(x: &[T], y: &mut [T]) -> (T, T) {
    let m = lane_max(x);
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (v - m).exp();
    }
    (m, sum_slice(y))
}

/// `softmax` of one lane into `y`.
#[inline]
pub fn softmax_lane<T: Float>(x: &[T], y: &mut [T]) {
    let (_, s) = shifted_exp(x, y);
    let inv = T::ONE / s;
    for o in y.iter_mut() {
        *o *= inv;
    }
}

/// `log_softmax` of one lane into `y`: `x - max - ln(sum(exp(x - max)))`.
#[inline]
pub fn log_softmax_lane<T: Float>(x: &[T], y: &mut [T]) {
    let (m, s) = shifted_exp(x, y);
    // (x - max) first: it is exact near the maximum, where adding ln(s) to a large max is not.
    let ls = s.ln();
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (v - m) - ls;
    }
}

/// `log(sum(exp(x)))` of one lane, stable.
pub fn logsumexp<T: Float>(x: &[T]) -> T {
    let m = lane_max(x);
    if m == T::INFINITY || m == T::NEG_INFINITY {
        return m;
    }
    let mut acc = [T::ZERO; 4];
    let chunks = x.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..4 {
            acc[i] += (c[i] - m).exp();
        }
    }
    let mut s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    for &v in tail {
        s += (v - m).exp();
    }
    m + s.ln()
}

/// Softmax along the middle axis of `x` viewed as `[outer, n, inner]`.
pub fn softmax<T: Float>(x: &[T], lanes: Lanes) -> Vec<T> {
    map_lanes([x], lanes, |[x], y| softmax_lane(x, y))
}

/// Log-softmax along the middle axis of `x` viewed as `[outer, n, inner]`.
pub fn log_softmax<T: Float>(x: &[T], lanes: Lanes) -> Vec<T> {
    map_lanes([x], lanes, |[x], y| log_softmax_lane(x, y))
}

/// Gradient of softmax from its output `y` and the output gradient `g`: `y * (g - sum(g * y))`.
pub fn softmax_backward<T: Float>(y: &[T], g: &[T], lanes: Lanes) -> Vec<T> {
    map_lanes([y, g], lanes, |[y, g], dx| {
        let mut acc = [T::ZERO; 4];
        let (cy, cg) = (y.chunks_exact(4), g.chunks_exact(4));
        let (ty, tg) = (cy.remainder(), cg.remainder());
        for (a, b) in cy.zip(cg) {
            for i in 0..4 {
                acc[i] += a[i] * b[i];
            }
        }
        let mut dot = (acc[0] + acc[2]) + (acc[1] + acc[3]);
        for (&a, &b) in ty.iter().zip(tg) {
            dot += a * b;
        }
        for ((o, &yv), &gv) in dx.iter_mut().zip(y).zip(g) {
            *o = yv * (gv - dot);
        }
    })
}

/// Gradient of log-softmax from its output `y` and the output gradient `g`:
/// `g - softmax * sum(g)` with `softmax = exp(y)`.
pub fn log_softmax_backward<T: Float>(y: &[T], g: &[T], lanes: Lanes) -> Vec<T> {
    map_lanes([y, g], lanes, |[y, g], dx| {
        let total = sum_slice(g);
        for ((o, &yv), &gv) in dx.iter_mut().zip(y).zip(g) {
            *o = gv - yv.exp() * total;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_one_and_logs_agree() {
        let x = [1.0f64, 2.0, 3.0, -1.0, 0.0, 1e4];
        let lanes = Lanes {
            outer: 2,
            n: 3,
            inner: 1,
        };
        let y = softmax(&x, lanes);
        let ly = log_softmax(&x, lanes);
        for r in 0..2 {
            let s: f64 = y[r * 3..r * 3 + 3].iter().sum();
            assert!((s - 1.0).abs() < 1e-12);
        }
        for (a, b) in y.iter().zip(&ly) {
            assert!((a.ln() - b).abs() < 1e-12 || *a == 0.0);
        }
        assert!((logsumexp(&x[..3]) - (1f64.exp() + 2f64.exp() + 3f64.exp()).ln()).abs() < 1e-12);
    }
}
