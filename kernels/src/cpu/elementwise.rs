//! Elementwise maps over contiguous and strided (broadcast) operands.

use super::PAR_THRESHOLD;
use rayon::prelude::*;

/// A strided operand: element at multi-index `i` is `data[offset + sum(i[d] * strides[d])]`.
#[derive(Clone, Copy)]
pub struct Strided<'a, T> {
    pub data: &'a [T],
    pub strides: &'a [usize],
    pub offset: usize,
}

/// `f` applied to every element of a contiguous slice.
pub fn map<T: Copy + Send + Sync, U: Copy + Send + Sync>(
    x: &[T],
    f: impl Fn(T) -> U + Sync,
) -> Vec<U> {
    if x.len() >= PAR_THRESHOLD {
        x.par_iter().with_min_len(4096).map(|&v| f(v)).collect()
    } else {
        x.iter().map(|&v| f(v)).collect()
    }
}

/// `f(a[i], b[i])` for two contiguous slices of equal length.
pub fn zip<T: Copy + Send + Sync, U: Copy + Send + Sync>(
    a: &[T],
    b: &[T],
    f: impl Fn(T, T) -> U + Sync,
) -> Vec<U> {
    assert_eq!(a.len(), b.len());
    if a.len() >= PAR_THRESHOLD {
        a.par_iter()
            .zip(b.par_iter())
            .with_min_len(4096)
            .map(|(&x, &y)| f(x, y))
            .collect()
    } else {
        a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
    }
}

/// `f(a[i], b[i], c[i])` for three contiguous slices of equal length.
pub fn zip3<T: Copy + Send + Sync, U: Copy + Send + Sync>(
    a: &[T],
    b: &[T],
    c: &[T],
    f: impl Fn(T, T, T) -> U + Sync,
) -> Vec<U> {
    assert!(a.len() == b.len() && b.len() == c.len());
    if a.len() >= PAR_THRESHOLD {
        a.par_iter()
            .zip(b.par_iter())
            .zip(c.par_iter())
            .with_min_len(4096)
            .map(|((&x, &y), &z)| f(x, y, z))
            .collect()
    } else {
        a.iter()
            .zip(b)
            .zip(c)
            .map(|((&x, &y), &z)| f(x, y, z))
            .collect()
    }
}

/// Offset of the first element of row `row` (all dimensions but the last) in a strided operand.
#[inline]
fn row_offset(row: usize, shape: &[usize], strides: &[usize], offset: usize) -> usize {
    let mut rem = row;
    let mut idx = offset;
    for d in (0..shape.len() - 1).rev() {
        idx += (rem % shape[d]) * strides[d];
        rem /= shape[d];
    }
    idx
}

/// `f(a[i], b[i])` over `shape`, with both operands given by strides (0 for broadcast dims).
pub fn zip_strided<T: Copy + Send + Sync, U: Copy + Send + Sync + Default>(
    shape: &[usize],
    a: Strided<T>,
    b: Strided<T>,
    f: impl Fn(T, T) -> U + Sync,
) -> Vec<U> {
    let numel: usize = shape.iter().product();
    if numel == 0 {
        return Vec::new();
    }
    if shape.is_empty() {
        return vec![f(a.data[a.offset], b.data[b.offset])];
    }
    let inner = shape[shape.len() - 1];
    let (sa, sb) = (a.strides[shape.len() - 1], b.strides[shape.len() - 1]);
    let mut out = vec![U::default(); numel];
    let fill_row = |(row, out_row): (usize, &mut [U])| {
        let oa = row_offset(row, shape, a.strides, a.offset);
        let ob = row_offset(row, shape, b.strides, b.offset);
        match (sa, sb) {
            (1, 1) => {
                for ((o, &x), &y) in out_row
                    .iter_mut()
                    .zip(&a.data[oa..oa + inner])
                    .zip(&b.data[ob..ob + inner])
                {
                    *o = f(x, y);
                }
            }
            (1, 0) => {
                let y = b.data[ob];
                for (o, &x) in out_row.iter_mut().zip(&a.data[oa..oa + inner]) {
                    *o = f(x, y);
                }
            }
            (0, 1) => {
                let x = a.data[oa];
                for (o, &y) in out_row.iter_mut().zip(&b.data[ob..ob + inner]) {
                    *o = f(x, y);
                }
            }
            _ => {
                for (j, o) in out_row.iter_mut().enumerate() {
                    *o = f(a.data[oa + j * sa], b.data[ob + j * sb]);
                }
            }
        }
    };
    if numel >= PAR_THRESHOLD {
        out.par_chunks_mut(inner)
            .with_min_len((4096 / inner).max(1))
            .enumerate()
            .for_each(fill_row);
    } else {
        out.chunks_mut(inner).enumerate().for_each(fill_row);
    }
    out
}

/// Adds `row` to every row of the row-major `out` (`out.len()` a multiple of `row.len()`) in
/// place: a bias added to a batch of outputs.
pub fn add_row_vector<T: Copy + Send + Sync + std::ops::AddAssign>(out: &mut [T], row: &[T]) {
    if row.is_empty() {
        return;
    }
    assert_eq!(out.len() % row.len(), 0, "add_row_vector: ragged rows");
    let add = |o: &mut [T]| {
        for (v, &b) in o.iter_mut().zip(row) {
            *v += b;
        }
    };
    if out.len() >= PAR_THRESHOLD {
        out.par_chunks_mut(row.len())
            .with_min_len((4096 / row.len()).max(1))
            .for_each(add);
    } else {
        out.chunks_mut(row.len()).for_each(add);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_zip() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2x3
        let b = [10.0, 20.0]; // 2x1
        let out = zip_strided(
            &[2, 3],
            Strided {
                data: &a,
                strides: &[3, 1],
                offset: 0,
            },
            Strided {
                data: &b,
                strides: &[1, 0],
                offset: 0,
            },
            |x, y| x + y,
        );
        assert_eq!(out, vec![11.0, 12.0, 13.0, 24.0, 25.0, 26.0]);
    }
}
