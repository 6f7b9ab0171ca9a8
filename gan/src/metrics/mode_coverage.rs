//! Mode coverage and high-quality share for samples of a 2-D mixture (as in Srivastava et al.,
//! VEEGAN, 2017): a sample is high quality when it lies within 3 standard deviations of its
//! nearest mode; a mode is covered when it holds at least `min_share / modes` of the samples
//! as high-quality ones.

use crate::data::Mixture2d;

/// How well a set of 2-D samples covers a [`Mixture2d`]'s modes: a sample is high quality
/// within 3 standard deviations of its nearest mode, and a mode is covered when it holds at
/// least `min_share / modes` of the samples as high-quality ones.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeCoverage {
    /// Number of covered modes.
    pub covered: usize,
    /// Fraction of samples within 3σ of a mode.
    pub high_quality: f64,
    /// High-quality samples per mode.
    pub counts: Vec<usize>,
}

/// Scores `points` (x, y pairs). `min_share` is the fraction of an equal share a mode needs to
/// count as covered (0.25: a mode of 8 needs 1/32 of the samples).
///
/// ```
/// use saddle_gan::data::Mixture2d;
/// use saddle_gan::metrics::mode_coverage;
/// use saddle_gan::nn::engine::{DType, Rng};
///
/// let ring = Mixture2d::ring(8, 2.0, 0.02);
/// // Samples of the mixture itself cover every mode; a collapsed generator covers one.
/// let xy = ring.sample(400, DType::F64, &mut Rng::new(0))?.to_vec::<f64>()?;
/// let points: Vec<[f64; 2]> = xy.chunks(2).map(|p| [p[0], p[1]]).collect();
/// assert_eq!(mode_coverage(&ring, &points, 0.25).covered, 8);
/// let collapsed = vec![ring.centers[0]; 400];
/// let score = mode_coverage(&ring, &collapsed, 0.25);
/// assert_eq!((score.covered, score.high_quality), (1, 1.0));
/// # Ok::<(), saddle_gan::nn::engine::Error>(())
/// ```
pub fn mode_coverage(mixture: &Mixture2d, points: &[[f64; 2]], min_share: f64) -> ModeCoverage {
    let k = mixture.centers.len();
    let mut counts = vec![0usize; k];
    let mut good = 0;
    let limit = (3.0 * mixture.std).powi(2);
    for p in points {
        let (best, d2) = mixture
            .centers
            .iter()
            .enumerate()
            .map(|(i, c)| (i, (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)))
            .fold((0, f64::INFINITY), |a, b| if b.1 < a.1 { b } else { a });
        if d2 <= limit {
            counts[best] += 1;
            good += 1;
        }
    }
    let need = (min_share * points.len() as f64 / k as f64).max(1.0);
    let covered = counts.iter().filter(|&&c| c as f64 >= need).count();
    ModeCoverage {
        covered,
        high_quality: good as f64 / points.len().max(1) as f64,
        counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_modes_and_quality() {
        let ring = Mixture2d::ring(4, 1.0, 0.1);
        // 3 points at mode 0, 1 at mode 1, one far away; modes 2 and 3 empty.
        let pts = [
            [1.0, 0.0],
            [1.05, 0.0],
            [0.98, 0.02],
            [0.0, 1.0],
            [5.0, 5.0],
        ];
        let c = mode_coverage(&ring, &pts, 1.0);
        assert_eq!(c.counts, vec![3, 1, 0, 0]);
        assert!((c.high_quality - 0.8).abs() < 1e-12);
        // An equal share is 5/4 = 1.25 samples: only mode 0 reaches it.
        assert_eq!(c.covered, 1);
        assert_eq!(mode_coverage(&ring, &pts, 0.5).covered, 2);
    }
}
