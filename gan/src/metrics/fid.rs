//! Fréchet distance (FID) and kernel distance (KID) between two sets of feature vectors.
//!
//! FID fits a Gaussian to each set and returns the squared Wasserstein-2 distance between them,
//! `‖μ₁ - μ₂‖² + Tr(S₁ + S₂ - 2 (S₁^½ S₂ S₁^½)^½)` (Heusel et al. 2017; the last term equals
//! `Tr((S₁S₂)^½)` but is computed from a symmetric PSD matrix, so an eigendecomposition gives it
//! without the complex round-off of a general `sqrtm`).
//!
//! **Sample-count caveat.** The FID estimate is biased upwards, and the bias shrinks roughly as
//! 1/n: the same generator scores worse with 1,000 samples than with 10,000, and with fewer
//! samples than feature dimensions the covariance is singular. Only compare FIDs computed with
//! the same number of samples (and the same feature extractor); the reference for the real data
//! should use that number too. KID is an unbiased estimator of a squared MMD, so its expectation
//! does not depend on n (its spread does), which makes it the better choice for small sets.

use super::linalg::{covariance, matmul, psd_roots, sym_eigen, sym_eigenvalues};
use super::{bad_shape, check_rows, invalid};
use saddle_engine::{Result, Rng};
use saddle_kernels::cpu::gemm::{gemm, MatRef};

/// Mean and covariance of a feature set: the Gaussian FID compares. Build it once for the real
/// data and reuse it for every generator scored against it.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianStats {
    /// The features' mean, `dim` values.
    pub mean: Vec<f64>,
    /// Row-major `dim × dim`, unbiased (divided by n - 1).
    pub cov: Vec<f64>,
    /// The feature dimension.
    pub dim: usize,
    /// How many samples the statistics came from (0 for population parameters).
    pub n: usize,
}

impl GaussianStats {
    /// Statistics of the `n × dim` row-major features (`n >= 2`).
    pub fn from_features(x: &[f64], dim: usize) -> Result<Self> {
        let (mean, cov) = covariance(x, dim)?;
        Ok(GaussianStats {
            mean,
            cov,
            dim,
            n: x.len() / dim,
        })
    }

    /// Population parameters (e.g. for closed-form checks); `cov` is row-major `dim × dim`.
    pub fn from_parameters(mean: Vec<f64>, cov: Vec<f64>) -> Result<Self> {
        let dim = mean.len();
        if dim == 0 || cov.len() != dim * dim {
            return Err(bad_shape(
                "GaussianStats",
                &[cov.len()],
                format!("covariance must be {dim}×{dim} for a mean of length {dim}"),
            ));
        }
        check_rows("GaussianStats", "mean", &mean, dim, 1)?;
        check_rows("GaussianStats", "covariance", &cov, dim, dim)?;
        Ok(GaussianStats {
            mean,
            cov,
            dim,
            n: 0,
        })
    }
}

/// FID between the `n₁ × dim` and `n₂ × dim` row-major feature sets (each `n >= 2`). See the
/// module docs for why both sets should have the same size across compared runs.
///
/// ```
/// use saddle_gan::metrics::fid;
///
/// // One feature; the second set is the first shifted by 2: same spread, means 2 apart.
/// let a = [0.0, 1.0, 2.0, 3.0];
/// let b = a.map(|v| v + 2.0);
/// assert!((fid(&a, &b, 1)? - 4.0).abs() < 1e-9);
/// assert!(fid(&a, &a, 1)?.abs() < 1e-9);
/// # Ok::<(), saddle_gan::nn::engine::Error>(())
/// ```
pub fn fid(x1: &[f64], x2: &[f64], dim: usize) -> Result<f64> {
    fid_from_stats(
        &GaussianStats::from_features(x1, dim)?,
        &GaussianStats::from_features(x2, dim)?,
    )
}

/// The Fréchet distance between two Gaussians. The result is clamped at 0 (it is a squared
/// distance; identical inputs can otherwise come out as -1e-13).
pub fn fid_from_stats(a: &GaussianStats, b: &GaussianStats) -> Result<f64> {
    const OP: &str = "fid";
    if a.dim != b.dim {
        return Err(invalid(
            OP,
            format!("feature dimensions differ: {} and {}", a.dim, b.dim),
        ));
    }
    let d = a.dim;
    let mean_term: f64 = a
        .mean
        .iter()
        .zip(&b.mean)
        .map(|(x, y)| (x - y).powi(2))
        .sum();
    // S₁ = V Λ Vᵀ gives S₁^½ S₂ S₁^½ = V (Λ^½ Vᵀ S₂ V Λ^½) Vᵀ: the bracket has the same
    // eigenvalues and costs one GEMM fewer than forming S₁^½.
    let eig = sym_eigen(&a.cov, d)?;
    let r = psd_roots(OP, &eig.values)?;
    let mut vt = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            vt[j * d + i] = eig.vectors[i * d + j];
        }
    }
    let s2v = matmul(&b.cov, &eig.vectors, d, d, d);
    let mut m = matmul(&vt, &s2v, d, d, d);
    for i in 0..d {
        for j in 0..d {
            m[i * d + j] *= r[i] * r[j];
        }
    }
    for i in 0..d {
        for j in i + 1..d {
            let s = 0.5 * (m[i * d + j] + m[j * d + i]);
            m[i * d + j] = s;
            m[j * d + i] = s;
        }
    }
    let trace_sqrt: f64 = psd_roots(OP, &sym_eigenvalues(&m, d)?)?.iter().sum();
    let tr_a: f64 = (0..d).map(|i| a.cov[i * d + i]).sum();
    let tr_b: f64 = (0..d).map(|i| b.cov[i * d + i]).sum();
    Ok((mean_term + tr_a + tr_b - 2.0 * trace_sqrt).max(0.0))
}

/// KID estimate: mean and standard deviation (numpy's default, ddof = 0) of the unbiased MMD²
/// over `subsets` random subset pairs.
#[derive(Clone, Debug, PartialEq)]
pub struct Kid {
    /// Mean of the per-subset MMD² values: the KID reported.
    pub mean: f64,
    /// Their standard deviation (ddof = 0).
    pub std: f64,
    /// The per-subset MMD² values.
    pub values: Vec<f64>,
}

/// Unbiased MMD² between all of `x` and all of `y` (`n × dim` row-major, each `n >= 2`; sizes
/// may differ) with the cubic polynomial kernel `k(a, b) = (a·b / dim + 1)³` of Bińkowski et
/// al. (2018). Kernel sums are taken in row blocks, so memory stays O(block · n).
pub fn kid_mmd2(x: &[f64], y: &[f64], dim: usize) -> Result<f64> {
    const OP: &str = "kid";
    let m = check_rows(OP, "x", x, dim, 2)?;
    let n = check_rows(OP, "y", y, dim, 2)?;
    Ok(mmd2_unchecked(x, m, y, n, dim))
}

/// KID (Bińkowski et al. 2018): the unbiased MMD² of [`kid_mmd2`] averaged over `subsets`
/// pairs of random subsets of `subset_size` rows from each set (drawn without replacement,
/// seeded by `seed`). The usual setting is 100 subsets of 1,000; cost is
/// `subsets · 3 · subset_size² · dim` multiply-adds.
pub fn kid(
    x: &[f64],
    y: &[f64],
    dim: usize,
    subsets: usize,
    subset_size: usize,
    seed: u64,
) -> Result<Kid> {
    const OP: &str = "kid";
    let nx = check_rows(OP, "x", x, dim, 2)?;
    let ny = check_rows(OP, "y", y, dim, 2)?;
    if subsets == 0 {
        return Err(invalid(OP, "need at least one subset"));
    }
    if subset_size < 2 || subset_size > nx.min(ny) {
        return Err(invalid(
            OP,
            format!(
                "subset size {subset_size} must be in 2..={} (the smaller set)",
                nx.min(ny)
            ),
        ));
    }
    let mut rng = Rng::new(seed);
    let mut xs = vec![0.0; subset_size * dim];
    let mut ys = vec![0.0; subset_size * dim];
    let mut ix: Vec<usize> = (0..nx).collect();
    let mut iy: Vec<usize> = (0..ny).collect();
    let values: Vec<f64> = (0..subsets)
        .map(|_| {
            gather(x, dim, choose(&mut ix, subset_size, &mut rng), &mut xs);
            gather(y, dim, choose(&mut iy, subset_size, &mut rng), &mut ys);
            mmd2_unchecked(&xs, subset_size, &ys, subset_size, dim)
        })
        .collect();
    let mean = values.iter().sum::<f64>() / subsets as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / subsets as f64;
    Ok(Kid {
        mean,
        std: var.sqrt(),
        values,
    })
}

/// The first `k` entries of `idx` after a partial Fisher-Yates shuffle: a uniform subset.
fn choose<'a>(idx: &'a mut [usize], k: usize, rng: &mut Rng) -> &'a [usize] {
    let n = idx.len();
    for i in 0..k {
        let j = i + rng.below((n - i) as u64) as usize;
        idx.swap(i, j);
    }
    &idx[..k]
}

fn gather(src: &[f64], dim: usize, rows: &[usize], dst: &mut [f64]) {
    for (out, &r) in dst.chunks_exact_mut(dim).zip(rows) {
        out.copy_from_slice(&src[r * dim..(r + 1) * dim]);
    }
}

fn mmd2_unchecked(x: &[f64], m: usize, y: &[f64], n: usize, dim: usize) -> f64 {
    let kxx = kernel_sum(x, m, x, m, dim, true);
    let kyy = kernel_sum(y, n, y, n, dim, true);
    let kxy = kernel_sum(x, m, y, n, dim, false);
    let (m, n) = (m as f64, n as f64);
    kxx / (m * (m - 1.0)) + kyy / (n * (n - 1.0)) - 2.0 * kxy / (m * n)
}

/// Σ k(a_i, b_j) over all pairs (minus i = j when `skip_diagonal`), in row blocks of `a`.
fn kernel_sum(a: &[f64], na: usize, b: &[f64], nb: usize, dim: usize, skip_diagonal: bool) -> f64 {
    const BLOCK: usize = 256;
    let inv_d = 1.0 / dim as f64;
    let bm = MatRef::row_major(b, nb, dim).t();
    let mut block = vec![0.0; BLOCK.min(na) * nb];
    let mut total = 0.0;
    for r0 in (0..na).step_by(BLOCK) {
        let rows = BLOCK.min(na - r0);
        let am = MatRef::row_major(&a[r0 * dim..(r0 + rows) * dim], rows, dim);
        gemm(am, bm, 0.0, &mut block[..rows * nb], nb);
        for (i, row) in block[..rows * nb].chunks_exact(nb).enumerate() {
            for (j, dot) in row.iter().enumerate() {
                if skip_diagonal && r0 + i == j {
                    continue;
                }
                total += (dot * inv_d + 1.0).powi(3);
            }
        }
    }
    total
}
