//! Per-plane image kernels over contiguous `planes × h × w` buffers: nearest-neighbour
//! upsampling (and its block-summing backward) and rotation by quarter turns. One thread per
//! output plane, so results do not depend on the thread count.

use super::pool::for_each_plane;
use crate::Float;

/// Nearest-neighbour upsampling by an integer `scale`: output `(y, x)` of each plane is input
/// `(y / scale, x / scale)`. Output planes are `(h * scale) × (w * scale)`.
pub fn upsample_nearest2d<T: Float>(
    x: &[T],
    planes: usize,
    h: usize,
    w: usize,
    scale: usize,
) -> Vec<T> {
    assert_eq!(x.len(), planes * h * w, "upsample_nearest2d: input length");
    let (oh, ow) = (h * scale, w * scale);
    let mut out = vec![T::ZERO; planes * oh * ow];
    for_each_plane(&mut out, oh * ow, planes * oh * ow, |plane, o| {
        let src = &x[plane * h * w..(plane + 1) * h * w];
        for (oy, row) in o.chunks_mut(ow).enumerate() {
            let s = &src[(oy / scale) * w..(oy / scale + 1) * w];
            for (ox, v) in row.iter_mut().enumerate() {
                *v = s[ox / scale];
            }
        }
    });
    out
}

/// Gradient of [`upsample_nearest2d`]: each input position receives the sum of its
/// `scale × scale` block of the output gradient (summed row by row, left to right).
pub fn upsample_nearest2d_backward<T: Float>(
    g: &[T],
    planes: usize,
    h: usize,
    w: usize,
    scale: usize,
) -> Vec<T> {
    let (oh, ow) = (h * scale, w * scale);
    assert_eq!(
        g.len(),
        planes * oh * ow,
        "upsample_nearest2d_backward: gradient length"
    );
    let mut dx = vec![T::ZERO; planes * h * w];
    for_each_plane(&mut dx, h * w, planes * oh * ow, |plane, d| {
        let gp = &g[plane * oh * ow..(plane + 1) * oh * ow];
        for y in 0..h {
            for x in 0..w {
                let mut s = T::ZERO;
                for dy in 0..scale {
                    let row = &gp[(y * scale + dy) * ow + x * scale
                        ..(y * scale + dy) * ow + (x + 1) * scale];
                    for &v in row {
                        s += v;
                    }
                }
                d[y * w + x] = s;
            }
        }
    });
    dx
}

/// Rotates every `h × w` plane counter-clockwise by `k` quarter turns (`k` taken mod 4, so
/// negative turns are clockwise), as `torch.rot90(x, k, dims=(-2, -1))`. Odd `k` gives `w × h`
/// planes.
pub fn rot90<T: Copy + Send + Sync + Default>(
    x: &[T],
    planes: usize,
    h: usize,
    w: usize,
    k: i64,
) -> Vec<T> {
    assert_eq!(x.len(), planes * h * w, "rot90: input length");
    let k = k.rem_euclid(4);
    let (oh, ow) = if k % 2 == 1 { (w, h) } else { (h, w) };
    let mut out = vec![T::default(); planes * h * w];
    let n = h * w;
    for_each_plane(&mut out, n, planes * n, |plane, o| {
        let src = &x[plane * n..(plane + 1) * n];
        for i in 0..oh {
            for j in 0..ow {
                // Where output (i, j) comes from in the input.
                let (y, xx) = match k {
                    0 => (i, j),
                    1 => (j, w - 1 - i),
                    2 => (h - 1 - i, w - 1 - j),
                    _ => (h - 1 - j, i),
                };
                o[i * ow + j] = src[y * w + xx];
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsample_roundtrip() {
        let x = [1.0, 2.0, 3.0, 4.0]; // one 2x2 plane
        let up = upsample_nearest2d(&x, 1, 2, 2, 2);
        assert_eq!(
            up,
            vec![1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.]
        );
        assert_eq!(
            upsample_nearest2d_backward(&up, 1, 2, 2, 2),
            vec![4.0, 8.0, 12.0, 16.0]
        );
    }

    #[test]
    fn rotations_compose() {
        let x: Vec<i32> = (0..6).collect(); // 2x3: [[0,1,2],[3,4,5]]
        assert_eq!(rot90(&x, 1, 2, 3, 1), vec![2, 5, 1, 4, 0, 3]);
        assert_eq!(rot90(&x, 1, 2, 3, 2), vec![5, 4, 3, 2, 1, 0]);
        assert_eq!(rot90(&x, 1, 2, 3, -1), vec![3, 0, 4, 1, 5, 2]);
        assert_eq!(rot90(&rot90(&x, 1, 2, 3, 1), 1, 3, 2, -1), x);
        assert_eq!(rot90(&x, 1, 2, 3, 4), x);
    }
}
