//! Classifier-based scores from class probabilities `p(y|x)` of generated samples: the
//! Inception score (Salimans et al. 2016) and EBGAN's modified score I' (Zhao et al. 2017).
//!
//! Probabilities are `n × classes` row-major, one distribution per sample (a softmax output).
//! Rows must be non-negative and sum to 1 within 1e-3 (they are renormalised exactly, so f32
//! softmax outputs are fine); anything else is an error, since logits passed by mistake would
//! give meaningless scores.

use super::{check_rows, invalid};
use saddle_engine::Result;

/// Floor applied to `p(y|x)` inside the logarithm of I', where the classifier may output an
/// exact 0 (an f32 softmax underflows for logit gaps above ~104) and KL(p(y) ‖ p(y|x)) would
/// be infinite. With one-hot predictions over K balanced classes it caps each sample's KL at
/// about `(K-1)/K · ln(1/(K·eps))` (≈ 24.8 for K = 10): compare I' values only under the same
/// eps and classifier.
pub const PROB_EPS: f64 = 1e-12;

/// Tolerance on each row's sum.
const ROW_SUM_TOL: f64 = 1e-3;

/// Inception score over splits: mean and standard deviation (ddof = 0, as the original
/// implementation) of the per-split scores.
#[derive(Clone, Debug, PartialEq)]
pub struct InceptionScore {
    /// Mean of the per-split scores.
    pub mean: f64,
    /// Their standard deviation (ddof = 0).
    pub std: f64,
    /// One score per split, in order.
    pub per_split: Vec<f64>,
}

/// `exp(E_x KL(p(y|x) ‖ p(y)))`, computed on each of `splits` contiguous, near-equal parts of
/// the rows (`p(y)` is each part's mean prediction). Ranges from 1 (every prediction the same)
/// to `classes` (confident predictions spread evenly over the classes). Zero probabilities need
/// no floor here: `0·ln 0 = 0`, and `p(y) > 0` wherever some `p(y|x) > 0`.
pub fn inception_score(probs: &[f64], classes: usize, splits: usize) -> Result<InceptionScore> {
    const OP: &str = "inception_score";
    let p = normalised_rows(OP, probs, classes)?;
    let n = p.len() / classes;
    if splits == 0 || splits > n {
        return Err(invalid(
            OP,
            format!("splits must be in 1..={n} (the number of samples), got {splits}"),
        ));
    }
    let per_split: Vec<f64> = (0..splits)
        .map(|s| {
            let part = &p[s * n / splits * classes..(s + 1) * n / splits * classes];
            let py = marginal(part, classes);
            let rows = part.len() / classes;
            let kl: f64 = part
                .chunks_exact(classes)
                .map(|row| {
                    row.iter()
                        .zip(&py)
                        .filter(|(&q, _)| q > 0.0)
                        .map(|(&q, &m)| q * (q.ln() - m.ln()))
                        .sum::<f64>()
                })
                .sum();
            (kl / rows as f64).exp()
        })
        .collect();
    let mean = per_split.iter().sum::<f64>() / splits as f64;
    let var = per_split.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / splits as f64;
    Ok(InceptionScore {
        mean,
        std: var.sqrt(),
        per_split,
    })
}

/// EBGAN's I' = `E_x KL(p(y) ‖ p(y|x))` over all rows, with `p(y)` their mean prediction and
/// `p(y|x)` floored at [`PROB_EPS`] inside the logarithm.
///
/// The EBGAN paper (its MNIST grid search, Table 1) derives it from the Inception score by
/// swapping the two distributions and dropping the exponential, and reports it not as one
/// number but as histograms of I' over its 512 EBGAN and 6144 GAN runs on MNIST (from an MNIST
/// classifier), where EBGAN puts more runs at high scores. Like the Inception score it is 0
/// when every prediction equals the marginal and grows as predictions become confident while
/// the marginal stays spread out.
pub fn ebgan_i_prime(probs: &[f64], classes: usize) -> Result<f64> {
    let p = normalised_rows("ebgan_i_prime", probs, classes)?;
    let n = p.len() / classes;
    let py = marginal(&p, classes);
    let total: f64 = p
        .chunks_exact(classes)
        .map(|row| {
            py.iter()
                .zip(row)
                .filter(|(&m, _)| m > 0.0)
                .map(|(&m, &q)| m * (m.ln() - q.max(PROB_EPS).ln()))
                .sum::<f64>()
        })
        .sum();
    Ok(total / n as f64)
}

fn marginal(p: &[f64], classes: usize) -> Vec<f64> {
    let mut m = vec![0.0; classes];
    for row in p.chunks_exact(classes) {
        for (a, v) in m.iter_mut().zip(row) {
            *a += v;
        }
    }
    let n = (p.len() / classes) as f64;
    m.iter_mut().for_each(|a| *a /= n);
    m
}

fn normalised_rows(op: &'static str, probs: &[f64], classes: usize) -> Result<Vec<f64>> {
    check_rows(op, "probabilities", probs, classes, 1)?;
    let mut p = probs.to_vec();
    for (i, row) in p.chunks_exact_mut(classes).enumerate() {
        if let Some(v) = row.iter().find(|v| **v < 0.0) {
            return Err(invalid(
                op,
                format!("row {i} has a negative probability {v}"),
            ));
        }
        let sum: f64 = row.iter().sum();
        if (sum - 1.0).abs() > ROW_SUM_TOL {
            return Err(invalid(
                op,
                format!("row {i} sums to {sum}, not 1: pass softmax probabilities, not logits"),
            ));
        }
        row.iter_mut().for_each(|v| *v /= sum);
    }
    Ok(p)
}
