//! Scoring generators: classifier-feature FID/KID, the Inception-style score and EBGAN's I'
//! (with the project's own domain classifier), and the Parzen-window log-likelihood of the GAN
//! paper. Shared by `saddle eval` and the training loop's periodic evaluation.

use crate::metrics::inception::{InceptionV3, NUM_LOGITS};
use crate::metrics::{
    ebgan_i_prime, fid_from_stats, inception_score, kid, logspace, parzen_log_likelihood,
    parzen_select_sigma, GaussianStats, Parzen,
};
use crate::models::classifier::{Classifier, FEATURE_DIM};
use crate::run::{BoxError, GanModel};
use saddle_nn::engine::{no_grad, Result, Rng, Tensor};

/// Images per forward pass of the classifier.
const BATCH: usize = 500;
/// Rows per KID subset and the number of subsets (the usual 1,000 × 100 when there are enough).
const KID_SUBSET: usize = 1000;
const KID_SUBSETS: usize = 50;

/// The classifier's features and class probabilities of `images` (`[N, 1, H, W]` in [0, 1]),
/// row-major f64.
pub fn features_and_probabilities(
    classifier: &Classifier,
    images: &Tensor,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let n = images.shape()[0];
    let mut features = Vec::with_capacity(n * FEATURE_DIM);
    let mut probs = Vec::with_capacity(n * classifier.num_classes);
    for start in (0..n).step_by(BATCH) {
        let x = images.narrow(0, start, BATCH.min(n - start))?;
        let (f, p) = no_grad(|| {
            let f = classifier.features(&x)?;
            let p = classifier.head_forward(&f)?.softmax(-1)?;
            Ok::<_, saddle_nn::engine::Error>((f, p))
        })?;
        features.extend(f.to_vec_f64()?);
        probs.extend(p.to_vec_f64()?);
    }
    Ok((features, probs))
}

/// `count` samples of `model` (noise from `seed`, G in evaluation mode) mapped from the model's
/// value range to [0, 1], in batches of 500.
pub fn generate_unit(
    model: &mut dyn GanModel,
    count: usize,
    seed: u64,
) -> std::result::Result<Tensor, BoxError> {
    let mut rng = Rng::new(seed);
    let (lo, hi) = model.value_range();
    let mut parts = Vec::new();
    let mut done = 0;
    while done < count {
        let n = (count - done).min(500);
        let z = model.sample_latent(n, &mut rng)?;
        let images = no_grad(|| model.generate(&z))?;
        parts.push(
            images
                .sub_scalar(lo as f64)?
                .div_scalar((hi - lo) as f64)?
                .clamp(0.0, 1.0)?,
        );
        done += n;
    }
    Ok(Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)?)
}

/// Scores of a set of generated images against the real test set.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifierScores {
    /// Fréchet distance between the two sets' classifier features (lower is better).
    pub fid: f64,
    /// Mean KID (unbiased MMD² over random subsets) of the same features (lower is better).
    pub kid: f64,
    /// The Inception-style score from the classifier's class probabilities (higher is better).
    pub inception_score: f64,
    /// EBGAN's I' from the same probabilities (grows as predictions become confident and
    /// varied).
    pub i_prime: f64,
    /// How many generated images were scored.
    pub samples: usize,
}

impl ClassifierScores {
    /// The scores as `(name, value)` pairs: `fid`, `kid`, `inception_score`, `i_prime`.
    pub fn named(&self) -> Vec<(String, f64)> {
        vec![
            ("fid".into(), self.fid),
            ("kid".into(), self.kid),
            ("inception_score".into(), self.inception_score),
            ("i_prime".into(), self.i_prime),
        ]
    }
}

/// The classifier with the real set's feature statistics, computed once.
pub struct ClassifierScorer {
    /// The trained domain classifier whose features and probabilities are scored.
    pub classifier: Classifier,
    real_stats: GaussianStats,
    real_features: Vec<f64>,
}

impl ClassifierScorer {
    /// `real` `[N, 1, 28|32, 28|32]` in [0, 1], e.g. the MNIST test set.
    pub fn new(classifier: Classifier, real: &Tensor) -> Result<Self> {
        let (real_features, _) = features_and_probabilities(&classifier, real)?;
        let real_stats = GaussianStats::from_features(&real_features, FEATURE_DIM)?;
        Ok(ClassifierScorer {
            classifier,
            real_stats,
            real_features,
        })
    }

    /// FID and KID against the real set, the Inception-style score (10 splits) and I' of
    /// `images` in [0, 1]. FID is biased upwards at small sample counts: compare runs at the
    /// same count.
    pub fn score(&self, images: &Tensor) -> Result<ClassifierScores> {
        let n = images.shape()[0];
        let (features, probs) = features_and_probabilities(&self.classifier, images)?;
        let fake_stats = GaussianStats::from_features(&features, FEATURE_DIM)?;
        let subset = KID_SUBSET
            .min(n)
            .min(self.real_features.len() / FEATURE_DIM);
        let kid = kid(
            &features,
            &self.real_features,
            FEATURE_DIM,
            KID_SUBSETS,
            subset,
            0,
        )?;
        let classes = self.classifier.num_classes;
        Ok(ClassifierScores {
            fid: fid_from_stats(&fake_stats, &self.real_stats)?,
            kid: kid.mean,
            inception_score: inception_score(&probs, classes, 10.min(n / 2).max(1))?.mean,
            i_prime: ebgan_i_prime(&probs, classes)?,
            samples: n,
        })
    }
}

/// The GAN paper's protocol: σ chosen on `valid` from a log grid, then the mean Parzen
/// log-likelihood of `test` under `samples` (all rows of pixels in [0, 1]).
pub fn parzen_protocol(samples: &[f64], valid: &[f64], test: &[f64], dim: usize) -> Result<Parzen> {
    let search = parzen_select_sigma(valid, samples, dim, &logspace(-1.0, 0.0, 10))?;
    parzen_log_likelihood(test, samples, dim, search.best.sigma)
}

/// Images per forward pass of Inception-v3 (at 299x299 each image's activations take tens of
/// megabytes).
const INCEPTION_BATCH: usize = 25;

/// Inception-v3's pool3 features and class probabilities (softmax over its 1008 logits, as
/// torch-fidelity scores IS) of `images` (`[N, 1 or 3, H, W]` in [0, 1]), row-major f64;
/// `progress` sees the count done after each batch.
pub fn inception_features(
    net: &InceptionV3,
    images: &Tensor,
    mut progress: impl FnMut(usize),
) -> Result<(Vec<f64>, Vec<f64>)> {
    let n = images.shape().first().copied().unwrap_or(0);
    let mut features = Vec::new();
    let mut probs = Vec::new();
    for start in (0..n).step_by(INCEPTION_BATCH) {
        let x = images.narrow(0, start, INCEPTION_BATCH.min(n - start))?;
        let out = no_grad(|| net.forward_features(&x))?;
        features.extend(out.pool3.to_vec_f64()?);
        probs.extend(no_grad(|| out.logits.softmax(-1))?.to_vec_f64()?);
        progress((start + INCEPTION_BATCH).min(n));
    }
    Ok((features, probs))
}

/// FID and KID between two image sets in Inception-v3's pool3 space, and the Inception Score
/// of the first.
#[derive(Clone, Debug, PartialEq)]
pub struct InceptionScores {
    /// Fréchet distance between the sets' pool3 features (lower is better).
    pub fid: f64,
    /// Mean KID of the same features (lower is better).
    pub kid: f64,
    /// Of the first set, over 10 splits (fewer for fewer than 20 images).
    pub inception_score: f64,
    /// Images in the first and the second set.
    pub samples: [usize; 2],
}

impl InceptionScores {
    /// The figures as `(name, value)` pairs.
    pub fn named(&self) -> Vec<(String, f64)> {
        vec![
            ("inception_fid".into(), self.fid),
            ("inception_kid".into(), self.kid),
            ("inception_is".into(), self.inception_score),
        ]
    }
}

/// [`InceptionScores`] of `a` against `b` (each `[N, C, H, W]` in [0, 1], at least 2 images);
/// `progress` sees the images done of both sets together.
pub fn inception_scores(
    net: &InceptionV3,
    a: &Tensor,
    b: &Tensor,
    mut progress: impl FnMut(usize),
) -> Result<InceptionScores> {
    let na = a.shape().first().copied().unwrap_or(0);
    let nb = b.shape().first().copied().unwrap_or(0);
    let (fa, pa) = inception_features(net, a, &mut progress)?;
    let (fb, _) = inception_features(net, b, |done| progress(na + done))?;
    let dim = fa.len() / na.max(1);
    let subset = KID_SUBSET.min(na).min(nb);
    Ok(InceptionScores {
        fid: fid_from_stats(
            &GaussianStats::from_features(&fa, dim)?,
            &GaussianStats::from_features(&fb, dim)?,
        )?,
        kid: kid(&fa, &fb, dim, KID_SUBSETS, subset, 0)?.mean,
        inception_score: inception_score(&pa, NUM_LOGITS, 10.min(na / 2).max(1))?.mean,
        samples: [na, nb],
    })
}
