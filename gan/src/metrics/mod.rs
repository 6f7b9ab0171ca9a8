//! Sample-quality metrics: Parzen-window log-likelihood, FID and KID, Inception-style scores
//! (including EBGAN's I'), mode coverage on 2-D mixtures, the linear probe and k-means.
//!
//! # Input convention
//!
//! A set of `n` vectors of dimension `dim` is a row-major slice `&[f64]` of length `n * dim`
//! (row `i` is `data[i * dim..(i + 1) * dim]`), passed together with `dim`. Class probabilities
//! are the same with `dim` = number of classes. [`rows_from_tensor`] turns an `[n, ...]` tensor
//! of any float dtype into that form. All arithmetic is f64, every function validates its input
//! (shape, finiteness, sample count) and reports problems as [`Error`] instead of panicking, and
//! results are bit-identical for any rayon thread count.

pub mod fid;
pub mod inception;
mod kmeans;
pub mod linalg;
mod mode_coverage;
pub mod parzen;
pub mod probe;
pub mod scores;

pub use fid::{fid, fid_from_stats, kid, kid_mmd2, GaussianStats, Kid};
pub use kmeans::{kmeans, KMeans};
pub use mode_coverage::{mode_coverage, ModeCoverage};
pub use parzen::{logspace, parzen_log_likelihood, parzen_select_sigma, Parzen, SigmaSearch};
pub use probe::{linear_probe, ProbeConfig, ProbeResult};
pub use scores::{ebgan_i_prime, inception_score, InceptionScore, PROB_EPS};

use saddle_engine::{Error, Result, Tensor};

/// Flattens an `[n, ...]` tensor into `(rows, dim)` with `dim` the product of the trailing
/// dimensions, converting to f64.
pub fn rows_from_tensor(t: &Tensor) -> Result<(Vec<f64>, usize)> {
    let shape = t.shape();
    if shape.len() < 2 {
        return Err(bad_shape(
            "rows_from_tensor",
            shape,
            "need at least 2 dimensions: [samples, features...]",
        ));
    }
    let dim: usize = shape[1..].iter().product();
    Ok((t.to_vec_f64()?, dim))
}

pub(crate) fn bad_shape(op: &'static str, shape: &[usize], reason: impl Into<String>) -> Error {
    Error::BadShape {
        op,
        shape: shape.to_vec(),
        reason: reason.into(),
    }
}

pub(crate) fn invalid(op: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        op,
        reason: reason.into(),
    }
}

/// Checks a row-major set (`what` names it in errors) and returns its row count: `dim > 0`,
/// the length a multiple of `dim`, at least `min_rows` rows and every value finite.
pub(crate) fn check_rows(
    op: &'static str,
    what: &str,
    data: &[f64],
    dim: usize,
    min_rows: usize,
) -> Result<usize> {
    if dim == 0 {
        return Err(invalid(op, format!("{what}: dimension must be positive")));
    }
    if !data.len().is_multiple_of(dim) {
        return Err(bad_shape(
            op,
            &[data.len()],
            format!(
                "{what}: length {} is not a multiple of the dimension {dim}",
                data.len()
            ),
        ));
    }
    let n = data.len() / dim;
    if n < min_rows {
        return Err(bad_shape(
            op,
            &[n, dim],
            format!("{what}: need at least {min_rows} rows, got {n}"),
        ));
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(invalid(
            op,
            format!(
                "{what}: non-finite value {} at row {}, column {}",
                data[i],
                i / dim,
                i % dim
            ),
        ));
    }
    Ok(n)
}
