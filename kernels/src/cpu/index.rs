//! Data movement by index over contiguous buffers: slab copies (concatenation), index-select and
//! its accumulating backward, gather and scatter-add along one axis.
//!
//! Indices are assumed in range (the engine checks them and reports a clear error first); an
//! out-of-range index here panics on the slice access. Accumulating kernels add in a fixed order
//! (index order, one thread per independent slab), so results do not depend on the thread count.

use super::pool::for_each_plane;
use super::PAR_THRESHOLD;
use crate::Float;
use rayon::prelude::*;

/// Writes `src`, made of rows of `slab` values, into the column window `col..col + slab` of
/// every row of `dst` (rows of `row_len` values). Concatenation along an axis is one such copy
/// per operand.
pub fn copy_into_columns<T: Copy + Send + Sync>(
    dst: &mut [T],
    row_len: usize,
    col: usize,
    src: &[T],
    slab: usize,
) {
    if slab == 0 || row_len == 0 {
        return;
    }
    assert!(
        col + slab <= row_len,
        "copy_into_columns: window beyond the row"
    );
    assert_eq!(
        dst.len() / row_len,
        src.len() / slab,
        "copy_into_columns: row counts differ"
    );
    let copy = |(d, s): (&mut [T], &[T])| d[col..col + slab].copy_from_slice(s);
    if dst.len() >= PAR_THRESHOLD {
        dst.par_chunks_mut(row_len)
            .zip(src.par_chunks(slab))
            .with_min_len((4096 / row_len).max(1))
            .for_each(copy);
    } else {
        dst.chunks_mut(row_len).zip(src.chunks(slab)).for_each(copy);
    }
}

/// `src` viewed as `outer × n × inner`: output `[o, i, r] = src[o, idx[i], r]`, shape
/// `outer × idx.len() × inner`.
pub fn index_select<T: Copy + Send + Sync + Default>(
    src: &[T],
    outer: usize,
    n: usize,
    inner: usize,
    idx: &[usize],
) -> Vec<T> {
    assert_eq!(src.len(), outer * n * inner, "index_select: input length");
    let mut out = vec![T::default(); outer * idx.len() * inner];
    for_each_plane(
        &mut out,
        idx.len() * inner,
        outer * idx.len() * inner,
        |o, dst| {
            let slab = &src[o * n * inner..(o + 1) * n * inner];
            for (row, &i) in dst.chunks_mut(inner).zip(idx) {
                row.copy_from_slice(&slab[i * inner..(i + 1) * inner]);
            }
        },
    );
    out
}

/// Gradient of [`index_select`]: `g` is `outer × idx.len() × inner`; returns `outer × n × inner`
/// where row `idx[i]` accumulates `g[o, i, :]` for every `i` (repeated indices add up, in index
/// order).
pub fn index_add<T: Float>(g: &[T], outer: usize, n: usize, inner: usize, idx: &[usize]) -> Vec<T> {
    assert_eq!(
        g.len(),
        outer * idx.len() * inner,
        "index_add: gradient length"
    );
    let mut dx = vec![T::ZERO; outer * n * inner];
    for_each_plane(&mut dx, n * inner, outer * idx.len() * inner, |o, dst| {
        let gs = &g[o * idx.len() * inner..(o + 1) * idx.len() * inner];
        for (row, &i) in gs.chunks(inner).zip(idx) {
            for (d, &v) in dst[i * inner..(i + 1) * inner].iter_mut().zip(row) {
                *d += v;
            }
        }
    });
    dx
}

/// Calls `f(position, offset)` for every element of `index` (row-major over `index_shape`) with
/// the offset in a contiguous `src_shape` buffer it points at: the element's own coordinates,
/// except along `dim` where the index value is used.
fn visit_targets(
    src_shape: &[usize],
    dim: usize,
    index: &[usize],
    index_shape: &[usize],
    mut f: impl FnMut(usize, usize),
) {
    let rank = index_shape.len();
    assert!(
        dim < rank && src_shape.len() == rank,
        "gather/scatter: rank and axis"
    );
    assert_eq!(
        index.len(),
        index_shape.iter().product::<usize>(),
        "gather/scatter: index length"
    );
    let mut strides = vec![1; rank];
    for d in (0..rank - 1).rev() {
        strides[d] = strides[d + 1] * src_shape[d + 1];
    }
    let mut coord = vec![0; rank];
    // Offset of the current coordinates, leaving out the `dim` component.
    let mut base = 0;
    for (pos, &i) in index.iter().enumerate() {
        f(pos, base + i * strides[dim]);
        for d in (0..rank).rev() {
            coord[d] += 1;
            if d != dim {
                base += strides[d];
            }
            if coord[d] < index_shape[d] {
                break;
            }
            if d != dim {
                base -= coord[d] * strides[d];
            }
            coord[d] = 0;
        }
    }
}

/// `torch.gather` on a contiguous buffer: output (shape `index_shape`) at coordinates `c` is
/// `src` at `c` with `c[dim]` replaced by the index there.
pub fn gather<T: Copy + Default>(
    src: &[T],
    src_shape: &[usize],
    dim: usize,
    index: &[usize],
    index_shape: &[usize],
) -> Vec<T> {
    let mut out = vec![T::default(); index.len()];
    visit_targets(src_shape, dim, index, index_shape, |pos, off| {
        out[pos] = src[off]
    });
    out
}

/// Gradient of [`gather`]: zeros of `src_shape` with each `g` value added where it was read from
/// (in index order, serially: several positions may read the same element).
pub fn scatter_add<T: Float>(
    g: &[T],
    src_shape: &[usize],
    dim: usize,
    index: &[usize],
    index_shape: &[usize],
) -> Vec<T> {
    assert_eq!(g.len(), index.len(), "scatter_add: gradient length");
    let mut dx = vec![T::ZERO; src_shape.iter().product()];
    visit_targets(src_shape, dim, index, index_shape, |pos, off| {
        dx[off] += g[pos]
    });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_columns() {
        let mut dst = vec![0; 10]; // 2 rows of 5
        copy_into_columns(&mut dst, 5, 0, &[1, 2, 3, 4, 5, 6], 3);
        copy_into_columns(&mut dst, 5, 3, &[7, 8, 9, 10], 2);
        assert_eq!(dst, vec![1, 2, 3, 7, 8, 4, 5, 6, 9, 10]);
    }

    #[test]
    fn select_and_accumulate() {
        let src: Vec<f64> = (0..12).map(f64::from).collect(); // 2 x 3 x 2
        let out = index_select(&src, 2, 3, 2, &[2, 0, 2]);
        assert_eq!(
            out,
            vec![4., 5., 0., 1., 4., 5., 10., 11., 6., 7., 10., 11.]
        );
        let dx = index_add(&[1.0; 12], 2, 3, 2, &[2, 0, 2]);
        assert_eq!(dx, vec![1., 1., 0., 0., 2., 2., 1., 1., 0., 0., 2., 2.]);
    }

    #[test]
    fn gather_scatter_dim1() {
        // src 2x3 = [[0,1,2],[3,4,5]], index 2x2 along dim 1.
        let src: Vec<f64> = (0..6).map(f64::from).collect();
        let out = gather(&src, &[2, 3], 1, &[2, 2, 0, 1], &[2, 2]);
        assert_eq!(out, vec![2., 2., 3., 4.]);
        let dx = scatter_add(&[1., 1., 1., 1.], &[2, 3], 1, &[2, 2, 0, 1], &[2, 2]);
        assert_eq!(dx, vec![0., 0., 2., 1., 1., 0.]);
        // Along dim 0 with a smaller index in dim 1.
        let out = gather(&src, &[2, 3], 0, &[1, 0, 0, 1], &[2, 2]);
        assert_eq!(out, vec![3., 1., 0., 4.]);
    }
}
