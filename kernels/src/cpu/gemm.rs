//! General matrix multiply on strided operands: `C = A·B + beta·C`.

use crate::Float;
use rayon::prelude::*;

/// A read-only strided matrix: element `(i, j)` lives at `data[i * rs + j * cs]`.
///
/// Transposes are free: swap `rows`/`cols` and `rs`/`cs`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A row-major matrix with rows of length `cols` packed one after another.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> T
    where
        T: Copy,
    {
        self.data[i * self.rs + j * self.cs]
    }
}

/// `C[m×n] = A[m×k]·B[k×n] + beta·C`, where C is row-major with leading dimension `ldc`.
///
/// `beta` is 0 (overwrite; C's previous contents are ignored, even NaN) or any other value
/// (accumulate). Each element of C is accumulated over k in increasing order by one thread, so the
/// result does not depend on the number of threads.
pub fn gemm<T: Float>(a: MatRef<T>, b: MatRef<T>, beta: T, c: &mut [T], ldc: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "gemm: inner dimensions differ");
    assert!(ldc >= n, "gemm: ldc {ldc} < n {n}");
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= (m - 1) * ldc + n, "gemm: C buffer too small");
    let row_job = |(i, c_row): (usize, &mut [T])| {
        let c_row = &mut c_row[..n];
        if beta == T::ZERO {
            c_row.iter_mut().for_each(|v| *v = T::ZERO);
        } else if beta != T::ONE {
            c_row.iter_mut().for_each(|v| *v *= beta);
        }
        for p in 0..k {
            let a_ip = a.at(i, p);
            if b.cs == 1 {
                let b_row = &b.data[p * b.rs..p * b.rs + n];
                for (cv, &bv) in c_row.iter_mut().zip(b_row) {
                    *cv = a_ip.mul_add(bv, *cv);
                }
            } else {
                for (j, cv) in c_row.iter_mut().enumerate() {
                    *cv = a_ip.mul_add(b.at(p, j), *cv);
                }
            }
        }
    };
    if m * n * k >= super::PAR_THRESHOLD * 8 {
        c.par_chunks_mut(ldc).take(m).enumerate().for_each(row_job);
    } else {
        c.chunks_mut(ldc).take(m).enumerate().for_each(row_job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: MatRef<f64>, b: MatRef<f64>) -> Vec<f64> {
        let mut c = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                c[i * b.cols + j] = (0..a.cols).map(|p| a.at(i, p) * b.at(p, j)).sum();
            }
        }
        c
    }

    #[test]
    fn matches_naive_with_transposes() {
        let a: Vec<f64> = (0..35).map(|v| (v as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..35).map(|v| (v as f64 * 0.91).cos()).collect();
        let am = MatRef::row_major(&a, 5, 7);
        let bm = MatRef::row_major(&b, 5, 7).t();
        let mut c = vec![f64::NAN; 25];
        gemm(am, bm, 0.0, &mut c, 5);
        let want = naive(am, bm);
        for (x, y) in c.iter().zip(&want) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
    }
}
