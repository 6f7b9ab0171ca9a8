//! Row reductions over a contiguous `rows × len` buffer: one output per row.
//!
//! Each row is reduced by one thread in a fixed order (8 interleaved partial sums, then combined
//! pairwise), so results do not depend on the thread count, and f32 sums of long rows lose less
//! precision than a single running sum.

use super::PAR_THRESHOLD;
use crate::Float;
use rayon::prelude::*;

/// Sum of a slice with 8 interleaved accumulators (vectorisable, deterministic).
#[inline]
pub fn sum_slice<T: Float>(x: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for &v in tail {
        s += v;
    }
    s
}

fn per_row<T: Float>(data: &[T], len: usize, f: impl Fn(&[T]) -> T + Sync + Send) -> Vec<T> {
    if len == 0 {
        // Rows of length zero: the caller decides the identity; we return one value per row.
        return Vec::new();
    }
    if data.len() >= PAR_THRESHOLD {
        data.par_chunks(len)
            .with_min_len((PAR_THRESHOLD / len).max(1))
            .map(f)
            .collect()
    } else {
        data.chunks(len).map(f).collect()
    }
}

/// Sum of each row of `len` values, one result per row (none when `len` is 0).
pub fn sum_rows<T: Float>(data: &[T], len: usize) -> Vec<T> {
    per_row(data, len, sum_slice)
}

/// Maximum of each row of `len` values (NaN for a row holding a NaN).
pub fn max_rows<T: Float>(data: &[T], len: usize) -> Vec<T> {
    per_row(data, len, |r| {
        r.iter().fold(
            T::NEG_INFINITY,
            |m, &v| if v > m || v.is_nan() { v } else { m },
        )
    })
}

/// Minimum of each row of `len` values (NaN for a row holding a NaN).
pub fn min_rows<T: Float>(data: &[T], len: usize) -> Vec<T> {
    per_row(data, len, |r| {
        r.iter()
            .fold(T::INFINITY, |m, &v| if v < m || v.is_nan() { v } else { m })
    })
}

/// Variance of each row around its own mean, divided by `len - correction` (two passes).
pub fn var_rows<T: Float>(data: &[T], len: usize, correction: usize) -> Vec<T> {
    let denom = T::from_usize(len.saturating_sub(correction));
    per_row(data, len, |r| {
        let mean = sum_slice(r) / T::from_usize(r.len());
        let mut acc = [T::ZERO; 4];
        let chunks = r.chunks_exact(4);
        let tail = chunks.remainder();
        for c in chunks {
            for i in 0..4 {
                let d = c[i] - mean;
                acc[i] += d * d;
            }
        }
        let mut s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
        for &v in tail {
            s += (v - mean) * (v - mean);
        }
        s / denom
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows() {
        let x: Vec<f64> = (0..22).map(|v| v as f64).collect();
        assert_eq!(sum_rows(&x, 11), vec![55.0, 176.0]);
        assert_eq!(max_rows(&x, 11), vec![10.0, 21.0]);
        assert_eq!(min_rows(&x, 11), vec![0.0, 11.0]);
        assert_eq!(var_rows(&x, 11, 1), vec![11.0, 11.0]);
    }
}
