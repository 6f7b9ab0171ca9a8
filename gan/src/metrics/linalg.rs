//! Dense f64 linear algebra for the metrics: covariance, symmetric eigendecomposition and the
//! square root of a positive semi-definite matrix.
//!
//! Matrices are row-major `n × n` slices. The eigensolver is Householder reduction to
//! tridiagonal form followed by the implicit QL algorithm with Wilkinson shifts: O(n³) with
//! about 2n³ flops for the reduction, (4/3)n³ to accumulate the transform and ~3n³ for the QL
//! rotations when eigenvectors are wanted (eigenvalues alone cost ~(2/3)n³ + O(n²)). It runs
//! on one thread; n = 512 takes a fraction of a second in release, n = 2048 tens of seconds.

use super::{bad_shape, check_rows, invalid};
use saddle_engine::Result;
use saddle_kernels::cpu::gemm::{gemm, MatRef};

/// Eigenvalues of a negative sign smaller than this fraction of the largest |eigenvalue| are
/// taken as rounding error of a PSD matrix and clamped to zero by [`sqrtm_psd`]; more negative
/// ones mean the matrix is not PSD and give an error. Rounding in a computed product such as
/// √S₁·S₂·√S₁ stays orders of magnitude below this.
pub const PSD_NEG_TOL: f64 = 1e-6;

/// Relative asymmetry `max|a_ij - a_ji| / max|a_ij|` accepted by the symmetric routines (the
/// input is then symmetrised); larger means the caller passed a non-symmetric matrix.
pub const SYM_TOL: f64 = 1e-8;

/// The QL sweep gives up after this many iterations for one eigenvalue (it typically needs 1-3).
const MAX_QL_ITERS: usize = 60;

/// `A = V · diag(values) · Vᵀ`.
#[derive(Clone, Debug, PartialEq)]
pub struct SymEigen {
    /// Eigenvalues in ascending order.
    pub values: Vec<f64>,
    /// Row-major `n × n`; column `j` is the unit eigenvector of `values[j]` (numpy's layout).
    pub vectors: Vec<f64>,
    /// The matrix's side.
    pub n: usize,
}

/// Row-major `C[m×n] = A·B` for row-major `A[m×k]`, `B[k×n]`.
pub fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    gemm(
        MatRef::row_major(a, m, k),
        MatRef::row_major(b, k, n),
        0.0,
        &mut c,
        n,
    );
    c
}

/// Mean and unbiased covariance (divided by `n - 1`, as `numpy.cov`) of the `n × dim` rows.
/// Centres first (two passes) so large offsets do not cancel. Needs `n >= 2`.
pub fn covariance(x: &[f64], dim: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let n = check_rows("covariance", "features", x, dim, 2)?;
    let mut mean = vec![0.0; dim];
    for row in x.chunks_exact(dim) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let centred: Vec<f64> = x
        .chunks_exact(dim)
        .flat_map(|row| row.iter().zip(&mean).map(|(v, m)| v - m))
        .collect();
    let xc = MatRef::row_major(&centred, n, dim);
    let mut cov = vec![0.0; dim * dim];
    gemm(xc.t(), xc, 0.0, &mut cov, dim);
    let scale = 1.0 / (n - 1) as f64;
    cov.iter_mut().for_each(|c| *c *= scale);
    symmetrise(&mut cov, dim);
    Ok((mean, cov))
}

/// Eigenvalues (ascending) and eigenvectors of the symmetric `n × n` matrix `a`.
pub fn sym_eigen(a: &[f64], n: usize) -> Result<SymEigen> {
    let (values, vectors) = eigen_impl("sym_eigen", a, n, true)?;
    Ok(SymEigen {
        values,
        vectors: vectors.expect("vectors requested"),
        n,
    })
}

/// Eigenvalues (ascending) of the symmetric `n × n` matrix `a`, without the vectors (cheaper).
pub fn sym_eigenvalues(a: &[f64], n: usize) -> Result<Vec<f64>> {
    Ok(eigen_impl("sym_eigenvalues", a, n, false)?.0)
}

/// The symmetric PSD square root `V · diag(√λ) · Vᵀ` of the symmetric PSD matrix `a`.
///
/// Near-singular input is fine: negative eigenvalues within [`PSD_NEG_TOL`] of the largest
/// (rounding in a matrix that is PSD in exact arithmetic) are clamped to zero; a clearly
/// negative eigenvalue is an error rather than a silently wrong root.
pub fn sqrtm_psd(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let eig = sym_eigen(a, n)?;
    let roots = psd_roots("sqrtm_psd", &eig.values)?;
    // V·diag(√λ)·Vᵀ = W·Wᵀ with W = V·diag(λ^¼): one GEMM, symmetric by construction.
    let mut w = eig.vectors;
    for row in w.chunks_exact_mut(n) {
        for (v, r) in row.iter_mut().zip(&roots) {
            *v *= r.sqrt();
        }
    }
    let wm = MatRef::row_major(&w, n, n);
    let mut out = vec![0.0; n * n];
    gemm(wm, wm.t(), 0.0, &mut out, n);
    symmetrise(&mut out, n);
    Ok(out)
}

/// `√max(λ, 0)` for eigenvalues of a matrix that should be PSD; errors on a clearly negative one.
pub(crate) fn psd_roots(op: &'static str, values: &[f64]) -> Result<Vec<f64>> {
    let scale = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let tol = PSD_NEG_TOL * scale;
    values
        .iter()
        .map(|&v| {
            if v < -tol {
                Err(invalid(
                    op,
                    format!(
                        "matrix is not positive semi-definite: eigenvalue {v:e} (largest \
                         magnitude {scale:e})"
                    ),
                ))
            } else {
                Ok(v.max(0.0).sqrt())
            }
        })
        .collect()
}

fn symmetrise(a: &mut [f64], n: usize) {
    for i in 0..n {
        for j in i + 1..n {
            let m = 0.5 * (a[i * n + j] + a[j * n + i]);
            a[i * n + j] = m;
            a[j * n + i] = m;
        }
    }
}

fn eigen_impl(
    op: &'static str,
    a: &[f64],
    n: usize,
    want_vectors: bool,
) -> Result<(Vec<f64>, Option<Vec<f64>>)> {
    if n == 0 || a.len() != n * n {
        return Err(bad_shape(
            op,
            &[a.len()],
            format!("expected a non-empty {n}×{n} matrix ({} values)", n * n),
        ));
    }
    check_rows(op, "matrix", a, n, n)?;
    let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if scale == 0.0 {
        let vectors = want_vectors.then(|| identity(n));
        return Ok((vec![0.0; n], vectors));
    }
    // Work on a copy scaled to max |a_ij| = 1 so no intermediate over- or underflows.
    let mut w: Vec<f64> = a.iter().map(|v| v / scale).collect();
    let asym = (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .fold(0.0f64, |m, (i, j)| {
            m.max((w[i * n + j] - w[j * n + i]).abs())
        });
    if asym > SYM_TOL {
        return Err(invalid(
            op,
            format!("matrix is not symmetric (relative asymmetry {asym:e})"),
        ));
    }
    symmetrise(&mut w, n);
    let (mut d, mut e, mut zt) = tridiagonalise(&mut w, n, want_vectors);
    tridiagonal_ql(op, &mut d, &mut e, zt.as_deref_mut(), n)?;

    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[i].total_cmp(&d[j]));
    let values = order.iter().map(|&i| d[i] * scale).collect();
    let vectors = zt.map(|zt| {
        // Row `i` of `zt` is the eigenvector of d[i]; lay them out as sorted columns.
        let mut v = vec![0.0; n * n];
        for (col, &i) in order.iter().enumerate() {
            for r in 0..n {
                v[r * n + col] = zt[i * n + r];
            }
        }
        v
    });
    Ok((values, vectors))
}

fn identity(n: usize) -> Vec<f64> {
    let mut m = vec![0.0; n * n];
    (0..n).for_each(|i| m[i * n + i] = 1.0);
    m
}

/// Householder reduction `A = Q·T·Qᵀ` of the symmetric `a` (overwritten). Returns T's diagonal
/// `d`, its off-diagonal `e` (`e[i]` couples `i` and `i + 1`, `e[n-1] = 0`) and, if wanted, `Qᵀ`
/// row-major (row `i` is column `i` of Q), the layout the QL rotations update in place.
fn tridiagonalise(a: &mut [f64], n: usize, want_q: bool) -> (Vec<f64>, Vec<f64>, Option<Vec<f64>>) {
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    // Reflector k is I - beta_k v_k v_kᵀ on indices k+1..n; v_k is kept in row k of `a`.
    let mut betas = vec![0.0; n];
    let mut p = vec![0.0; n];
    for k in 0..n.saturating_sub(2) {
        d[k] = a[k * n + k];
        let m = n - k - 1;
        // Row k equals column k below the diagonal (symmetry) and is contiguous.
        let norm = a[k * n + k + 1..(k + 1) * n]
            .iter()
            .fold(0.0f64, |s, v| s.hypot(*v));
        let x0 = a[k * n + k + 1];
        if norm == 0.0 || norm == x0.abs() {
            // Already tridiagonal in this column: the reflector is the identity.
            e[k] = x0;
            betas[k] = 0.0;
            continue;
        }
        let alpha = -norm.copysign(x0);
        e[k] = alpha;
        a[k * n + k + 1] = x0 - alpha;
        // vᵀv = 2·norm² + 2·|x0|·norm, exact form avoids cancellation.
        let beta = 1.0 / (norm * (norm + x0.abs()));
        betas[k] = beta;
        let (head, tail) = a.split_at_mut((k + 1) * n);
        let v = &head[k * n + k + 1..(k + 1) * n];
        // p = beta·A22·v, q = p - (beta/2)(vᵀp)·v, A22 -= v·qᵀ + q·vᵀ.
        for i in 0..m {
            let row = &tail[i * n + k + 1..i * n + n];
            p[i] = beta * row.iter().zip(v).map(|(r, v)| r * v).sum::<f64>();
        }
        let kk = 0.5 * beta * v.iter().zip(&p[..m]).map(|(v, p)| v * p).sum::<f64>();
        for i in 0..m {
            p[i] -= kk * v[i];
        }
        for i in 0..m {
            let (vi, qi) = (v[i], p[i]);
            let row = &mut tail[i * n + k + 1..i * n + n];
            for ((r, vj), qj) in row.iter_mut().zip(v).zip(&p[..m]) {
                *r -= vi * qj + qi * vj;
            }
        }
    }
    if n >= 2 {
        d[n - 2] = a[(n - 2) * n + n - 2];
        e[n - 2] = a[(n - 2) * n + n - 1];
    }
    d[n - 1] = a[n * n - 1];

    let zt = want_q.then(|| {
        // Q = H_0·H_1·…; applying the reflectors last-to-first keeps each one's work on the
        // trailing block, the only part of Q that is not yet the identity.
        let mut q = identity(n);
        let mut w = vec![0.0; n];
        for k in (0..n.saturating_sub(2)).rev() {
            let beta = betas[k];
            if beta == 0.0 {
                continue;
            }
            let v = &a[k * n + k + 1..(k + 1) * n];
            let lo = k + 1;
            let w = &mut w[lo..n];
            w.iter_mut().for_each(|x| *x = 0.0);
            for (i, vi) in v.iter().enumerate() {
                let row = &q[(lo + i) * n + lo..(lo + i + 1) * n];
                for (wj, qj) in w.iter_mut().zip(row) {
                    *wj += vi * qj;
                }
            }
            for (i, vi) in v.iter().enumerate() {
                let f = beta * vi;
                let row = &mut q[(lo + i) * n + lo..(lo + i + 1) * n];
                for (qj, wj) in row.iter_mut().zip(w.iter()) {
                    *qj -= f * wj;
                }
            }
        }
        // Transpose so the QL rotations (column operations on Q) touch contiguous rows.
        let mut qt = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                qt[j * n + i] = q[i * n + j];
            }
        }
        qt
    });
    (d, e, zt)
}

/// Implicit QL with Wilkinson shifts on the symmetric tridiagonal (d, e); on return `d` holds
/// the eigenvalues (unsorted) and each row `i` of `zt` has been rotated into the eigenvector
/// of `d[i]`.
fn tridiagonal_ql(
    op: &'static str,
    d: &mut [f64],
    e: &mut [f64],
    mut zt: Option<&mut [f64]>,
    n: usize,
) -> Result<()> {
    // An off-diagonal below ε·‖T‖ changes no eigenvalue by more than the reduction's own
    // rounding (Weyl), so it may be dropped even next to tiny diagonal entries (rank-deficient
    // matrices), where the relative test alone would wait for an underflow.
    let tnorm = (0..n).fold(0.0f64, |m, i| m.max(d[i].abs() + e[i].abs()));
    let eps = f64::EPSILON;
    for l in 0..n {
        let mut iters = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= eps * dd || e[m].abs() <= eps * tnorm {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iters += 1;
            if iters > MAX_QL_ITERS {
                return Err(invalid(
                    op,
                    format!("QL iteration did not converge for eigenvalue {l}"),
                ));
            }
            // Shift: the eigenvalue of the leading 2×2 block closer to d[l].
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0f64, 1.0f64, 0.0f64);
            let mut deflated = false;
            for i in (l..m).rev() {
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    // The rotation underflowed: the matrix split at i+1; restart the search.
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                if let Some(z) = zt.as_deref_mut() {
                    let (lo, hi) = z.split_at_mut((i + 1) * n);
                    let zi = &mut lo[i * n..];
                    let zi1 = &mut hi[..n];
                    for (a, b) in zi.iter_mut().zip(zi1.iter_mut()) {
                        let (x, y) = (*a, *b);
                        *b = s * x + c * y;
                        *a = c * x - s * y;
                    }
                }
            }
            if deflated {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_by_two() {
        // [[2, 1], [1, 2]] has eigenvalues 1 and 3.
        let e = sym_eigen(&[2.0, 1.0, 1.0, 2.0], 2).unwrap();
        assert!((e.values[0] - 1.0).abs() < 1e-14 && (e.values[1] - 3.0).abs() < 1e-14);
        let s = std::f64::consts::FRAC_1_SQRT_2;
        assert!((e.vectors[0].abs() - s).abs() < 1e-14);
    }

    #[test]
    fn one_by_one_and_zero() {
        assert_eq!(sym_eigenvalues(&[-4.0], 1).unwrap(), vec![-4.0]);
        let z = sym_eigen(&[0.0; 9], 3).unwrap();
        assert_eq!(z.values, vec![0.0; 3]);
        assert!((sqrtm_psd(&[9.0], 1).unwrap()[0] - 3.0).abs() < 1e-15);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(sym_eigen(&[1.0, 2.0, 3.0], 2).is_err());
        assert!(sym_eigen(&[1.0, 2.0, 0.0, 1.0], 2).is_err());
        assert!(sym_eigen(&[1.0, f64::NAN, f64::NAN, 1.0], 2).is_err());
        assert!(sqrtm_psd(&[1.0, 0.0, 0.0, -1.0], 2).is_err());
        assert!(covariance(&[1.0, 2.0], 2).is_err());
    }
}
