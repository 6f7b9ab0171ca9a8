//! 2-D pooling over NCHW planes: sum/average and max, forward and backward.
//!
//! The input is a contiguous buffer of `planes` planes of `h × w` values (`planes = N * C`). Each
//! output plane is computed by one thread in a fixed order, so results are bit-identical for any
//! thread count. Backward kernels scatter each output gradient into its window serially within a
//! plane (windows overlap when the stride is below the kernel size).

use super::PAR_THRESHOLD;
pub use crate::geometry::Pool2d;
use crate::Float;
use rayon::prelude::*;

/// Runs `f(plane_index, out_plane)` over the planes of `out`, in parallel when `work` (a rough
/// count of operations) is large enough to pay for it.
pub(crate) fn for_each_plane<T: Send>(
    out: &mut [T],
    plane_len: usize,
    work: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    if plane_len == 0 || out.is_empty() {
        return;
    }
    if work >= PAR_THRESHOLD && out.len() > plane_len {
        out.par_chunks_mut(plane_len)
            .enumerate()
            .for_each(|(i, o)| f(i, o));
    } else {
        out.chunks_mut(plane_len)
            .enumerate()
            .for_each(|(i, o)| f(i, o));
    }
}

/// Sum of each window divided by `divisor` (1 for sum pooling, `kh * kw` for average pooling
/// counting the padding, as PyTorch's default `count_include_pad=True`).
pub fn sum_pool2d<T: Float>(
    x: &[T],
    planes: usize,
    h: usize,
    w: usize,
    p: &Pool2d,
    divisor: T,
) -> Vec<T> {
    let Some((oh, ow)) = p.out_size(h, w) else {
        return Vec::new();
    };
    assert_eq!(x.len(), planes * h * w, "sum_pool2d: input length");
    let mut out = vec![T::ZERO; planes * oh * ow];
    for_each_plane(
        &mut out,
        oh * ow,
        planes * oh * ow * p.kh * p.kw,
        |plane, o| {
            let src = &x[plane * h * w..(plane + 1) * h * w];
            for oy in 0..oh {
                for ox in 0..ow {
                    let (rows, cols) = p.window(oy, ox, h, w);
                    let mut s = T::ZERO;
                    for y in rows {
                        for &v in &src[y * w + cols.start..y * w + cols.end] {
                            s += v;
                        }
                    }
                    o[oy * ow + ox] = s / divisor;
                }
            }
        },
    );
    out
}

/// Gradient of [`sum_pool2d`]: each output gradient divided by `divisor` is added to every
/// in-bounds position of its window.
pub fn sum_pool2d_backward<T: Float>(
    g: &[T],
    planes: usize,
    h: usize,
    w: usize,
    p: &Pool2d,
    divisor: T,
) -> Vec<T> {
    let mut dx = vec![T::ZERO; planes * h * w];
    let Some((oh, ow)) = p.out_size(h, w) else {
        return dx;
    };
    assert_eq!(
        g.len(),
        planes * oh * ow,
        "sum_pool2d_backward: gradient length"
    );
    for_each_plane(
        &mut dx,
        h * w,
        planes * oh * ow * p.kh * p.kw,
        |plane, d| {
            let gp = &g[plane * oh * ow..(plane + 1) * oh * ow];
            for oy in 0..oh {
                for ox in 0..ow {
                    let (rows, cols) = p.window(oy, ox, h, w);
                    let v = gp[oy * ow + ox] / divisor;
                    for y in rows {
                        for slot in &mut d[y * w + cols.start..y * w + cols.end] {
                            *slot += v;
                        }
                    }
                }
            }
        },
    );
    dx
}

/// Maximum of each window (padding counts as -inf) and, for the backward, the position of the
/// maximum within its plane (`y * w + x`; the first maximum in row-major window order wins ties,
/// the first NaN wins over numbers; `usize::MAX` for a window with no input inside).
pub fn max_pool2d<T: Float>(
    x: &[T],
    planes: usize,
    h: usize,
    w: usize,
    p: &Pool2d,
) -> (Vec<T>, Vec<usize>) {
    let Some((oh, ow)) = p.out_size(h, w) else {
        return (Vec::new(), Vec::new());
    };
    assert_eq!(x.len(), planes * h * w, "max_pool2d: input length");
    let plane_out = oh * ow;
    let mut out = vec![T::NEG_INFINITY; planes * plane_out];
    let mut args = vec![usize::MAX; planes * plane_out];
    let fill = |(plane, (o, a)): (usize, (&mut [T], &mut [usize]))| {
        let src = &x[plane * h * w..(plane + 1) * h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let (rows, cols) = p.window(oy, ox, h, w);
                let at = |y: usize| y * w + cols.start..y * w + cols.end;
                // Two branch-free passes (a data-dependent branch would mispredict on random
                // data): the maximum, then the first position holding it (scanning backwards so
                // the earliest match is written last). NaNs take a rare slow path. An
                // all-padding window (impossible when padding <= kernel / 2) keeps -inf and
                // usize::MAX: it passes no gradient.
                let mut best = T::NEG_INFINITY;
                let mut nan = false;
                for y in rows.clone() {
                    for &v in &src[at(y)] {
                        best = if v > best { v } else { best };
                        nan |= v.is_nan();
                    }
                }
                let mut arg = usize::MAX;
                for y in rows.rev() {
                    for xx in at(y).rev() {
                        let hit = if nan {
                            src[xx].is_nan()
                        } else {
                            src[xx] == best
                        };
                        arg = if hit { xx } else { arg };
                    }
                }
                if nan {
                    best = src[arg];
                }
                o[oy * ow + ox] = best;
                a[oy * ow + ox] = arg;
            }
        }
    };
    if planes * plane_out * p.kh * p.kw >= PAR_THRESHOLD && planes > 1 {
        out.par_chunks_mut(plane_out)
            .zip(args.par_chunks_mut(plane_out))
            .enumerate()
            .for_each(fill);
    } else {
        out.chunks_mut(plane_out)
            .zip(args.chunks_mut(plane_out))
            .enumerate()
            .for_each(fill);
    }
    (out, args)
}

/// Gradient of [`max_pool2d`]: each output gradient goes to its window's arg-max (summed where
/// several windows share one).
pub fn max_pool2d_backward<T: Float>(
    g: &[T],
    arg: &[usize],
    planes: usize,
    h: usize,
    w: usize,
) -> Vec<T> {
    assert_eq!(
        g.len(),
        arg.len(),
        "max_pool2d_backward: gradient and arg-max lengths"
    );
    let mut dx = vec![T::ZERO; planes * h * w];
    if planes == 0 {
        return dx;
    }
    let plane_out = g.len() / planes;
    for_each_plane(&mut dx, h * w, g.len(), |plane, d| {
        let range = plane * plane_out..(plane + 1) * plane_out;
        for (&gv, &a) in g[range.clone()].iter().zip(&arg[range]) {
            if let Some(slot) = d.get_mut(a) {
                *slot += gv;
            }
        }
    });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_with_padding() {
        // 1 plane, 3x3 input 0..9, kernel 2, stride 2, padding 1 -> 2x2 output.
        let x: Vec<f64> = (0..9).map(f64::from).collect();
        let p = Pool2d {
            kh: 2,
            kw: 2,
            sh: 2,
            sw: 2,
            ph: 1,
            pw: 1,
        };
        assert_eq!(p.out_size(3, 3), Some((2, 2)));
        assert_eq!(
            sum_pool2d(&x, 1, 3, 3, &p, 1.0),
            vec![0.0, 1.0 + 2.0, 3.0 + 6.0, 4.0 + 5.0 + 7.0 + 8.0]
        );
        let (m, a) = max_pool2d(&x, 1, 3, 3, &p);
        assert_eq!(m, vec![0.0, 2.0, 6.0, 8.0]);
        assert_eq!(a, vec![0, 2, 6, 8]);
        let g = max_pool2d_backward(&[1.0, 2.0, 3.0, 4.0], &a, 1, 3, 3);
        assert_eq!(g, vec![1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 4.0]);
        let d = sum_pool2d_backward(&[4.0, 4.0, 4.0, 4.0], 1, 3, 3, &p, 4.0);
        assert_eq!(d, vec![1.0; 9]);
    }

    #[test]
    fn max_ties_nan_and_infinities() {
        // One 2x2 window per case: first maximum wins ties; the first NaN wins; -inf inputs are
        // still real positions.
        let p = Pool2d {
            kh: 2,
            kw: 2,
            sh: 2,
            sw: 2,
            ph: 0,
            pw: 0,
        };
        let x = [
            1.0,
            3.0,
            3.0,
            2.0,
            1.0,
            f64::NAN,
            5.0,
            f64::NAN,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        let (m, a) = max_pool2d(&x[..4], 1, 2, 2, &p);
        assert_eq!((m, a), (vec![3.0], vec![1]));
        let (m, a) = max_pool2d(&x[4..8], 1, 2, 2, &p);
        assert!(m[0].is_nan() && a == vec![1]);
        let (m, a) = max_pool2d(&[x[8], x[9], x[8], x[9]], 1, 2, 2, &p);
        assert_eq!((m, a), (vec![f64::NEG_INFINITY], vec![0]));
    }

    #[test]
    fn parallel_matches_serial() {
        // Enough planes to cross the parallel threshold; compare against a per-plane run.
        let (planes, h, w) = (64, 17, 13);
        let x: Vec<f32> = (0..planes * h * w)
            .map(|i| ((i * 7919) % 1013) as f32 * 0.01)
            .collect();
        let p = Pool2d {
            kh: 3,
            kw: 3,
            sh: 2,
            sw: 2,
            ph: 1,
            pw: 1,
        };
        let all = sum_pool2d(&x, planes, h, w, &p, 9.0);
        let (oh, ow) = p.out_size(h, w).unwrap();
        for plane in [0, 31, 63] {
            let one = sum_pool2d(&x[plane * h * w..(plane + 1) * h * w], 1, h, w, &p, 9.0);
            assert_eq!(&all[plane * oh * ow..(plane + 1) * oh * ow], &one[..]);
        }
    }
}
