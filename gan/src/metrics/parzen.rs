//! Parzen-window log-likelihood (Breuleux et al. 2011; the GAN 2014 paper's MNIST number):
//! fit an isotropic Gaussian kernel density to generated samples and report the mean
//! log-density of held-out points, with the bandwidth σ chosen on a validation split.
//!
//! `log p(x) = logsumexp_j(-‖x - s_j‖² / 2σ²) - ln N - (d/2) ln(2πσ²)` for N samples `s_j` in d
//! dimensions. Squared distances come from `‖x‖² + ‖s‖² - 2 x·s` with one GEMM per block of
//! test rows (so memory is one block × N), and the log-sum-exp subtracts each row's minimum
//! distance first, so no exponential underflows to a zero sum. The same distance block serves
//! every σ of a grid, so a σ search costs one GEMM pass plus one exp pass per σ.

use super::{check_rows, invalid};
use rayon::prelude::*;
use saddle_engine::Result;
use saddle_kernels::cpu::gemm::{gemm, MatRef};

/// Terms below `exp(-40)` of a row's largest are skipped: with the largest term 1, even 10⁵
/// of them change the log-sum-exp by < 1e-12, and on real data (MNIST at σ ≈ 0.2) they are
/// the vast majority, so skipping their `exp` saves most of the non-GEMM time.
const LSE_CUTOFF: f64 = -40.0;

/// Values of one distance block (test rows × samples) kept at once: 32 MiB of f64.
const BLOCK_ELEMS: usize = 1 << 22;

/// Parzen log-likelihood of a test set at one bandwidth.
#[derive(Clone, Debug, PartialEq)]
pub struct Parzen {
    /// The kernel bandwidth.
    pub sigma: f64,
    /// Mean log-likelihood over the test points (nats).
    pub mean: f64,
    /// Standard error of that mean: sample standard deviation (ddof = 1) / √n, the "± 2" of
    /// the GAN paper's 225 ± 2.
    pub std_err: f64,
}

/// The σ grid search: every σ tried with its validation score, and the best one.
#[derive(Clone, Debug, PartialEq)]
pub struct SigmaSearch {
    /// The σ with the highest mean validation log-likelihood, and its score.
    pub best: Parzen,
    /// One entry per σ, in the order given.
    pub table: Vec<Parzen>,
}

/// `steps` values evenly spaced in log10 from `10^lo` to `10^hi` inclusive (numpy's
/// `logspace`). The GAN papers searched σ on such a grid; `logspace(-1.0, 0.0, 10)`, the
/// reference code's grid, covers MNIST in [0, 1].
pub fn logspace(lo: f64, hi: f64, steps: usize) -> Vec<f64> {
    match steps {
        0 => Vec::new(),
        1 => vec![10f64.powf(lo)],
        _ => (0..steps)
            .map(|i| 10f64.powf(lo + (hi - lo) * i as f64 / (steps - 1) as f64))
            .collect(),
    }
}

/// Mean Parzen log-likelihood of the `test` rows (`n >= 2`) under a Gaussian kernel density
/// of bandwidth `sigma` centred on the `samples` rows; both row-major with `dim` columns.
pub fn parzen_log_likelihood(
    test: &[f64],
    samples: &[f64],
    dim: usize,
    sigma: f64,
) -> Result<Parzen> {
    Ok(parzen_multi(test, samples, dim, &[sigma])?.remove(0))
}

/// Scores every σ in `sigmas` on the `valid` rows and returns the table and the σ with the
/// highest mean log-likelihood (the first one on a tie). Score the test set afterwards with
/// [`parzen_log_likelihood`] at `best.sigma`.
pub fn parzen_select_sigma(
    valid: &[f64],
    samples: &[f64],
    dim: usize,
    sigmas: &[f64],
) -> Result<SigmaSearch> {
    let table = parzen_multi(valid, samples, dim, sigmas)?;
    let best = table
        .iter()
        .fold(&table[0], |b, p| if p.mean > b.mean { p } else { b })
        .clone();
    Ok(SigmaSearch { best, table })
}

fn parzen_multi(test: &[f64], samples: &[f64], dim: usize, sigmas: &[f64]) -> Result<Vec<Parzen>> {
    const OP: &str = "parzen";
    let n_test = check_rows(OP, "test points", test, dim, 2)?;
    let n_samples = check_rows(OP, "samples", samples, dim, 1)?;
    if sigmas.is_empty() {
        return Err(invalid(OP, "need at least one sigma"));
    }
    if let Some(s) = sigmas.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(invalid(
            OP,
            format!("sigma must be positive and finite, got {s}"),
        ));
    }
    let k = sigmas.len();
    let neg_half_inv_var: Vec<f64> = sigmas.iter().map(|s| -0.5 / (s * s)).collect();
    let sq_norms = |x: &[f64]| -> Vec<f64> {
        x.chunks_exact(dim)
            .map(|r| r.iter().map(|v| v * v).sum())
            .collect()
    };
    let sample_sq = sq_norms(samples);
    let test_sq = sq_norms(test);
    let s_t = MatRef::row_major(samples, n_samples, dim).t();

    let rows_per_block = (BLOCK_ELEMS / n_samples).clamp(1, n_test);
    let mut block = vec![0.0; rows_per_block * n_samples];
    // lse[i * k + s]: the log-sum-exp of test point i at sigma s.
    let mut lse = vec![0.0; n_test * k];
    for r0 in (0..n_test).step_by(rows_per_block) {
        let rows = rows_per_block.min(n_test - r0);
        let xb = MatRef::row_major(&test[r0 * dim..(r0 + rows) * dim], rows, dim);
        let block = &mut block[..rows * n_samples];
        gemm(xb, s_t, 0.0, block, n_samples);
        block
            .par_chunks_mut(n_samples)
            .zip(lse[r0 * k..(r0 + rows) * k].par_chunks_mut(k))
            .zip(&test_sq[r0..r0 + rows])
            .for_each(|((row, out), &xsq)| {
                let mut min_d2 = f64::INFINITY;
                for (v, ssq) in row.iter_mut().zip(&sample_sq) {
                    // Rounding can make a tiny distance negative; it is at least 0.
                    *v = (xsq + ssq - 2.0 * *v).max(0.0);
                    min_d2 = min_d2.min(*v);
                }
                for (o, &c) in out.iter_mut().zip(&neg_half_inv_var) {
                    let sum: f64 = row
                        .iter()
                        .map(|d2| {
                            let a = (d2 - min_d2) * c;
                            if a > LSE_CUTOFF {
                                a.exp()
                            } else {
                                0.0
                            }
                        })
                        .sum();
                    *o = min_d2 * c + sum.ln();
                }
            });
    }

    let ln_n = (n_samples as f64).ln();
    Ok(sigmas
        .iter()
        .enumerate()
        .map(|(s, &sigma)| {
            let norm = ln_n + 0.5 * dim as f64 * (std::f64::consts::TAU * sigma * sigma).ln();
            let lls = lse.iter().skip(s).step_by(k).map(|v| v - norm);
            let mean = lls.clone().sum::<f64>() / n_test as f64;
            let var = lls.map(|v| (v - mean).powi(2)).sum::<f64>() / (n_test - 1) as f64;
            Parzen {
                sigma,
                mean,
                std_err: (var / n_test as f64).sqrt(),
            }
        })
        .collect())
}
