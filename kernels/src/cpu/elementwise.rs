//! Elementwise maps over contiguous and strided (broadcast) operands.

use super::PAR_THRESHOLD;
use rayon::prelude::*;

/// A strided operand: element at multi-index `i` is `data[offset + sum(i[d] * strides[d])]`.
#[derive(Clone, Copy)]
pub struct Strided<'a, T> {
    /// The whole storage the view reads from.
    pub data: &'a [T],
    /// Step in `data` per unit of each dimension (0 for a broadcast dimension).
    pub strides: &'a [usize],
    /// Position in `data` of the element at index `[0, 0, ...]`.
    pub offset: usize,
}

/// Elements per parallel task of the contiguous maps below.
const MAP_CHUNK: usize = 8192;

/// A vector of `n` values written chunk by chunk by `fill(start, chunk)`, in parallel above
/// [`PAR_THRESHOLD`]. Each chunk is a `&mut` slice of its own, so the compiler knows the writes
/// alias none of `fill`'s captures (a scalar parameter, the inputs) and vectorises the loop; the
/// equivalent `par_iter().map().collect()` wrote through raw pointers.
///
/// The maps take `f: Clone` and work on a local copy per chunk: a `move` closure's captured
/// scalars (a leaky ReLU's slope) then live in registers and the loop vectorises; through a
/// shared reference they were reloaded per element and the loop stayed scalar (4x slower).
fn fill_chunked<U: Copy + Send + Sync>(
    n: usize,
    fill: impl Fn(usize, &mut [std::mem::MaybeUninit<U>]) + Sync,
) -> Vec<U> {
    let mut out: Vec<U> = Vec::with_capacity(n);
    let spare = &mut out.spare_capacity_mut()[..n];
    if n >= PAR_THRESHOLD {
        spare
            .par_chunks_mut(MAP_CHUNK)
            .enumerate()
            .for_each(|(i, chunk)| fill(i * MAP_CHUNK, chunk));
    } else {
        fill(0, spare);
    }
    // SAFETY: the chunks partition `spare[..n]` and every `fill` below writes each element of its
    // chunk (it zips the chunk with input slices of the chunk's length).
    unsafe { out.set_len(n) };
    out
}

/// `f` applied to every element of a contiguous slice.
pub fn map<T: Copy + Send + Sync, U: Copy + Send + Sync>(
    x: &[T],
    f: impl Fn(T) -> U + Sync + Clone,
) -> Vec<U> {
    fill_chunked(x.len(), |start, out| {
        let f = f.clone();
        let x = &x[start..start + out.len()];
        for (o, &v) in out.iter_mut().zip(x) {
            o.write(f(v));
        }
    })
}

/// `f(a[i], b[i])` for two contiguous slices of equal length.
pub fn zip<T: Copy + Send + Sync, U: Copy + Send + Sync>(
    a: &[T],
    b: &[T],
    f: impl Fn(T, T) -> U + Sync + Clone,
) -> Vec<U> {
    assert_eq!(a.len(), b.len());
    fill_chunked(a.len(), |start, out| {
        let f = f.clone();
        let range = start..start + out.len();
        for ((o, &x), &y) in out.iter_mut().zip(&a[range.clone()]).zip(&b[range]) {
            o.write(f(x, y));
        }
    })
}

/// `f(a[i], b[i], c[i])` for three contiguous slices of equal length.
pub fn zip3<T: Copy + Send + Sync, U: Copy + Send + Sync>(
    a: &[T],
    b: &[T],
    c: &[T],
    f: impl Fn(T, T, T) -> U + Sync + Clone,
) -> Vec<U> {
    assert!(a.len() == b.len() && b.len() == c.len());
    fill_chunked(a.len(), |start, out| {
        let f = f.clone();
        let range = start..start + out.len();
        let inputs = a[range.clone()]
            .iter()
            .zip(&b[range.clone()])
            .zip(&c[range]);
        for (o, ((&x, &y), &z)) in out.iter_mut().zip(inputs) {
            o.write(f(x, y, z));
        }
    })
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
