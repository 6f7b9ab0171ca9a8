//! Normalisation kernels: batch-norm statistics, affine application and the fused backward, and
//! L2 normalisation of lanes.
//!
//! Batch-norm buffers are row-major `[outer, channels, inner]` (`[N, C]` has `inner = 1`,
//! `[N, C, H, W]` has `inner = H * W`); a channel's `M = outer * inner` values are its statistics'
//! sample. Per-channel sums are computed by one thread per channel in a fixed order (rows of
//! `inner` values with interleaved accumulators, rows added in order), so results are identical
//! for any number of threads.

use super::lanes::{map_lanes, Lanes};
use super::reduce::sum_slice;
use super::PAR_THRESHOLD;
pub use crate::geometry::Channels;
use crate::Float;
use rayon::prelude::*;

/// `(sum f(a), sum f(b))`-style per-channel reduction: `row(start)` reduces the `inner` values of
/// one row starting at `start`; rows of a channel are added in order of the batch index.
fn per_channel<R: Send>(
    geo: Channels,
    row: impl Fn(usize) -> R + Sync,
    add: impl Fn(R, R) -> R + Sync,
    zero: impl Fn() -> R + Sync,
) -> Vec<R> {
    let Channels {
        outer,
        channels,
        inner,
    } = geo;
    let one =
        |c: usize| (0..outer).fold(zero(), |acc, n| add(acc, row((n * channels + c) * inner)));
    if geo.numel() >= PAR_THRESHOLD && channels > 1 {
        (0..channels).into_par_iter().map(one).collect()
    } else {
        (0..channels).map(one).collect()
    }
}

/// Sum of `(a[i] - ca) * (b[i] - cb)` over a row with interleaved accumulators.
#[inline]
fn centred_dot<T: Float>(a: &[T], ca: T, b: &[T], cb: T) -> T {
    let mut acc = [T::ZERO; 4];
    let (xa, xb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ta, tb) = (xa.remainder(), xb.remainder());
    for (u, v) in xa.zip(xb) {
        for i in 0..4 {
            acc[i] += (u[i] - ca) * (v[i] - cb);
        }
    }
    let mut s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    for (&u, &v) in ta.iter().zip(tb) {
        s += (u - ca) * (v - cb);
    }
    s
}

/// Per-channel mean and biased (population) variance of `x`, two passes per channel.
pub fn channel_mean_var<T: Float>(x: &[T], geo: Channels) -> (Vec<T>, Vec<T>) {
    assert_eq!(x.len(), geo.numel());
    let inner = geo.inner;
    let m = T::from_usize(geo.per_channel());
    let sums = per_channel(
        geo,
        |s| sum_slice(&x[s..s + inner]),
        |a, b| a + b,
        || T::ZERO,
    );
    let mean: Vec<T> = sums.into_iter().map(|s| s / m).collect();
    let Channels {
        outer, channels, ..
    } = geo;
    let one = |c: usize| {
        let mu = mean[c];
        (0..outer).fold(T::ZERO, |acc, n| {
            let s = (n * channels + c) * inner;
            acc + centred_dot(&x[s..s + inner], mu, &x[s..s + inner], mu)
        }) / m
    };
    let var = if geo.numel() >= PAR_THRESHOLD && channels > 1 {
        (0..channels).into_par_iter().map(one).collect()
    } else {
        (0..channels).map(one).collect()
    };
    (mean, var)
}

/// Applies `f(c, values of one row, output row)` to every row of `inner` values (channel `c`).
fn per_row<T: Float>(geo: Channels, out: &mut [T], f: impl Fn(usize, usize, &mut [T]) + Sync) {
    let Channels {
        channels, inner, ..
    } = geo;
    if geo.numel() == 0 {
        return;
    }
    // Rows of one element ([N, C]) are grouped by batch index to keep rayon tasks large.
    let (chunk, per_chunk_rows) = if inner == 1 {
        (channels, channels)
    } else {
        (inner, 1)
    };
    let run = |(i, o): (usize, &mut [T])| {
        for r in 0..per_chunk_rows {
            let row = i * per_chunk_rows + r;
            f(
                row % channels,
                row * inner,
                &mut o[r * inner..(r + 1) * inner],
            );
        }
    };
    if geo.numel() >= PAR_THRESHOLD {
        out.par_chunks_mut(chunk)
            .with_min_len((4096 / chunk).max(1))
            .enumerate()
            .for_each(run);
    } else {
        out.chunks_mut(chunk).enumerate().for_each(run);
    }
}

/// `y = (x - mean[c]) * scale[c] + shift[c]` per channel (normalise and affine in one pass).
pub fn channel_affine<T: Float>(
    x: &[T],
    geo: Channels,
    mean: &[T],
    scale: &[T],
    shift: &[T],
) -> Vec<T> {
    assert_eq!(x.len(), geo.numel());
    let mut out = vec![T::ZERO; x.len()];
    per_row(geo, &mut out, |c, start, y| {
        let (mu, k, b) = (mean[c], scale[c], shift[c]);
        let xs = &x[start..start + y.len()];
        for (o, &v) in y.iter_mut().zip(xs) {
            *o = (v - mu) * k + b;
        }
    });
    out
}

/// Per channel `(sum dy, sum dy * xhat)` with `xhat = (x - mean) * invstd`, both in one pass.
/// These are `dbeta` and `dgamma` of batch norm.
pub fn channel_grad_sums<T: Float>(
    x: &[T],
    dy: &[T],
    geo: Channels,
    mean: &[T],
    invstd: &[T],
) -> (Vec<T>, Vec<T>) {
    assert_eq!(x.len(), geo.numel());
    assert_eq!(dy.len(), geo.numel());
    let inner = geo.inner;
    let channels = geo.channels;
    let Channels { outer, .. } = geo;
    let one = |c: usize| {
        let mu = mean[c];
        let (mut sdy, mut sdyx) = (T::ZERO, T::ZERO);
        for n in 0..outer {
            let s = (n * channels + c) * inner;
            let (xr, gr) = (&x[s..s + inner], &dy[s..s + inner]);
            sdy += sum_slice(gr);
            sdyx += centred_dot(xr, mu, gr, T::ZERO);
        }
        (sdy, sdyx * invstd[c])
    };
    let pairs: Vec<(T, T)> = if geo.numel() >= PAR_THRESHOLD && channels > 1 {
        (0..channels).into_par_iter().map(one).collect()
    } else {
        (0..channels).map(one).collect()
    };
    pairs.into_iter().unzip()
}

/// Input gradient of training-mode batch norm, closed form:
/// `dx = gamma * invstd / M * (M * dy - sum_dy - xhat * sum_dy_xhat)`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_input_grad<T: Float>(
    x: &[T],
    dy: &[T],
    geo: Channels,
    mean: &[T],
    invstd: &[T],
    gamma: Option<&[T]>,
    sum_dy: &[T],
    sum_dy_xhat: &[T],
) -> Vec<T> {
    assert_eq!(x.len(), geo.numel());
    assert_eq!(dy.len(), geo.numel());
    let m = T::from_usize(geo.per_channel());
    let mut out = vec![T::ZERO; x.len()];
    per_row(geo, &mut out, |c, start, dx| {
        let k = gamma.map_or(T::ONE, |g| g[c]) * invstd[c] / m;
        let (mu, is, sdy, sdyx) = (mean[c], invstd[c], sum_dy[c], sum_dy_xhat[c]);
        let xs = &x[start..start + dx.len()];
        let gs = &dy[start..start + dx.len()];
        for ((o, &v), &g) in dx.iter_mut().zip(xs).zip(gs) {
            let xhat = (v - mu) * is;
            *o = k * (m * g - sdy - xhat * sdyx);
        }
    });
    out
}

/// `x / max(||x||, eps)` along the middle axis of `[outer, n, inner]`.
pub fn l2_normalize<T: Float>(x: &[T], lanes: Lanes, eps: T) -> Vec<T> {
    map_lanes([x], lanes, |[x], y| {
        let d = centred_dot(x, T::ZERO, x, T::ZERO).sqrt().max(eps);
        for (o, &v) in y.iter_mut().zip(x) {
            *o = v / d;
        }
    })
}

/// Gradient of [`l2_normalize`] from the input `x` and output gradient `g`: with `r = ||x||`,
/// `(g - y * sum(g * y)) / r` where `r >= eps` (`y = x / r`), else `g / eps`.
pub fn l2_normalize_backward<T: Float>(x: &[T], g: &[T], lanes: Lanes, eps: T) -> Vec<T> {
    map_lanes([x, g], lanes, |[x, g], dx| {
        let r = centred_dot(x, T::ZERO, x, T::ZERO).sqrt();
        if r >= eps {
            // sum(g * y) = sum(g * x) / r
            let gy = centred_dot(g, T::ZERO, x, T::ZERO) / r;
            for ((o, &v), &gv) in dx.iter_mut().zip(x).zip(g) {
                *o = (gv - v / r * gy) / r;
            }
        } else {
            for (o, &gv) in dx.iter_mut().zip(g) {
                *o = gv / eps;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_nchw() {
        // [2, 2, 2]: channel 0 holds 0, 1, 4, 5; channel 1 holds 2, 3, 6, 7.
        let x: Vec<f64> = (0..8).map(|v| v as f64).collect();
        let geo = Channels::of_shape(&[2, 2, 2]);
        let (mean, var) = channel_mean_var(&x, geo);
        assert_eq!(mean, vec![2.5, 4.5]);
        assert_eq!(var, vec![4.25, 4.25]);
        let y = channel_affine(&x, geo, &mean, &[2.0, 1.0], &[0.0, 1.0]);
        assert_eq!(y, vec![-5.0, -3.0, -1.5, -0.5, 3.0, 5.0, 2.5, 3.5]);
    }
}
