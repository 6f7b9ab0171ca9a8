//! Gathering strided (possibly broadcast, stride 0) data into contiguous buffers.

use rayon::prelude::*;

/// Copies the strided view `(shape, strides, offset)` of `src` into a new row-major buffer.
pub fn to_contiguous<T: Copy + Send + Sync>(
    src: &[T],
    shape: &[usize],
    strides: &[usize],
    offset: usize,
) -> Vec<T> {
    let numel: usize = shape.iter().product();
    if numel == 0 {
        return Vec::new();
    }
    if shape.is_empty() {
        return vec![src[offset]];
    }
    let last = shape.len() - 1;
    let inner = shape[last];
    let inner_stride = strides[last];
    let outer = numel / inner;
    let mut out = Vec::with_capacity(numel);
    let row_start = |row: usize| -> usize {
        let mut rem = row;
        let mut idx = offset;
        for d in (0..last).rev() {
            let i = rem % shape[d];
            rem /= shape[d];
            idx += i * strides[d];
        }
        idx
    };
    if numel >= super::PAR_THRESHOLD && outer > 1 {
        let rows: Vec<Vec<T>> = (0..outer)
            .into_par_iter()
            .with_min_len(64)
            .map(|r| {
                let s = row_start(r);
                if inner_stride == 1 {
                    src[s..s + inner].to_vec()
                } else {
                    (0..inner).map(|j| src[s + j * inner_stride]).collect()
                }
            })
            .collect();
        for r in rows {
            out.extend_from_slice(&r);
        }
    } else {
        for r in 0..outer {
            let s = row_start(r);
            if inner_stride == 1 {
                out.extend_from_slice(&src[s..s + inner]);
            } else {
                out.extend((0..inner).map(|j| src[s + j * inner_stride]));
            }
        }
    }
    out
}

/// Writes the row-major values `src` into the strided view `(shape, strides, offset)` of `dst`
/// (the inverse of [`to_contiguous`]; the view must not overlap itself).
pub fn write_strided<T: Copy>(dst: &mut [T], shape: &[usize], strides: &[usize], offset: usize, src: &[T]) {
    let numel: usize = shape.iter().product();
    assert_eq!(numel, src.len(), "write_strided: source length");
    if numel == 0 {
        return;
    }
    if shape.is_empty() {
        dst[offset] = src[0];
        return;
    }
    let last = shape.len() - 1;
    let inner = shape[last];
    for (row, chunk) in src.chunks(inner).enumerate() {
        let mut rem = row;
        let mut idx = offset;
        for d in (0..last).rev() {
            idx += (rem % shape[d]) * strides[d];
            rem /= shape[d];
        }
        for (j, &v) in chunk.iter().enumerate() {
            dst[idx + j * strides[last]] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_and_broadcast() {
        let src: Vec<i32> = (0..6).collect(); // 2x3
        assert_eq!(to_contiguous(&src, &[3, 2], &[1, 3], 0), vec![0, 3, 1, 4, 2, 5]);
        assert_eq!(to_contiguous(&src, &[2, 3], &[0, 1], 3), vec![3, 4, 5, 3, 4, 5]);
        assert_eq!(to_contiguous(&src, &[], &[], 4), vec![4]);
        let mut dst = vec![0; 6];
        write_strided(&mut dst, &[3, 2], &[1, 3], 0, &[0, 3, 1, 4, 2, 5]);
        assert_eq!(dst, src);
    }
}
