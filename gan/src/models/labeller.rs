//! The pre-trained label sources of the fewer-labels paper (Lucic et al. 2019, section 3.1):
//! a network trained before the GAN gives the real images the labels the GAN is conditioned on.
//!
//! - **S2GAN / S3GAN**: a classifier trained on the k% labelled images, with rotation
//!   self-supervision on all images (the paper's S2L, after Zhai et al.'s S4L), labels the
//!   unlabelled rest by its argmax. The labelled images keep their own labels.
//! - **CLUSTERING**: the same network trained on rotation alone (no labels), its features of
//!   every image clustered by k-means into as many clusters as the data has classes; the
//!   cluster is the label.
//!
//! The network is BigGAN's discriminator body ([`BigGanDiscriminator::features`], the GAN's
//! own architecture at the same width, as the paper uses one ResNet for both), with two linear
//! heads on its pooled features: a 4-way rotation head and a class head. One update sees every
//! image of an unlabelled batch in its four orientations (rotation cross-entropy) and, when
//! labels are used, a labelled batch upright (class cross-entropy), the two losses summed.

use super::biggan::{BigGanConfig, BigGanDiscriminator};
pub use super::rotation::all_rotations;
use super::rotation::{rotation_loss, RotationHead};
use crate::data::{ImageDataset, Loader, Scale};
use crate::metrics::kmeans;
use saddle_nn::engine::{no_grad, DType, Error, Result, Rng, Tensor};
use saddle_nn::optim::{Adam, AdamConfig, Optimizer};
use saddle_nn::{Linear, Module, ModuleExt, SpectralNorm};

/// How a [`Labeller`] is built and trained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabellerConfig {
    /// The body's architecture: resolution, channels and width as the GAN's D (its class
    /// settings are ignored: the body is unconditional).
    pub model: BigGanConfig,
    /// Classes of the class head.
    pub classes: usize,
    /// Updates.
    pub steps: u64,
    /// Images per batch: unlabelled (each seen 4 times, rotated) and labelled alike.
    pub batch_size: usize,
    /// Adam's learning rate (β 0.9 / 0.999).
    pub lr: f64,
}

/// The losses of one labeller update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabellerLosses {
    /// The rotation cross-entropy.
    pub rotation: f32,
    /// The class cross-entropy (absent when the update saw no labelled batch).
    pub class: Option<f32>,
}

/// The labelling network: body, rotation head, class head and their optimiser.
pub struct Labeller {
    /// BigGAN's discriminator body, whose pooled features both heads read.
    pub body: BigGanDiscriminator,
    /// The 4-way rotation head.
    pub rotation: RotationHead,
    /// The class head.
    pub classifier: SpectralNorm<Linear>,
    opt: Adam,
}

impl Labeller {
    /// A new network for `cfg`, initialised from `seed`.
    pub fn new(cfg: &LabellerConfig, seed: u64) -> Result<Self> {
        if cfg.classes == 0 {
            return Err(Error::InvalidArgument {
                op: "Labeller",
                reason: "the class head needs at least one class".into(),
            });
        }
        let model = BigGanConfig {
            num_classes: None,
            ..cfg.model
        };
        let mut rng = Rng::new(seed);
        let body = BigGanDiscriminator::new(model, DType::F32, &mut rng)?;
        let width = body.linear.named_parameters()[0].1.shape()[1];
        let rotation = RotationHead::new(width, model.init, DType::F32, &mut rng)?;
        let linear = model
            .init
            .linear(width, cfg.classes, true, DType::F32, &mut rng)?;
        let classifier = SpectralNorm::new(linear, &mut rng)?;
        // The body's own GAN head (`linear`) is never used: it gets no gradient, so Adam
        // leaves it alone.
        let mut params = body.named_parameters();
        params.extend(rotation.named_parameters());
        params.extend(classifier.named_parameters());
        let opt = Adam::with_lr(params, cfg.lr, AdamConfig::default());
        Ok(Labeller {
            body,
            rotation,
            classifier,
            opt,
        })
    }

    /// One update: the rotation loss on all four orientations of `unlabelled` `[N, C, H, W]`
    /// plus, when given, the class loss on `labelled` images and their labels.
    pub fn step(
        &mut self,
        unlabelled: &Tensor,
        labelled: Option<(&Tensor, &[usize])>,
    ) -> Result<LabellerLosses> {
        let (turned, targets) = all_rotations(unlabelled)?;
        let h = self.body.features(&turned)?;
        let rotation = rotation_loss(&self.rotation.forward(&h)?, &targets)?;
        let class = match labelled {
            None => None,
            Some((x, labels)) => {
                let logits = self.classifier.forward(&self.body.features(x)?)?;
                Some(logits.cross_entropy(labels)?)
            }
        };
        let loss = match &class {
            None => rotation.clone(),
            Some(c) => rotation.add(c)?,
        };
        self.opt.step(&loss.backward()?)?;
        Ok(LabellerLosses {
            rotation: rotation.to_scalar()? as f32,
            class: class.map(|c| c.to_scalar()).transpose()?.map(|c| c as f32),
        })
    }

    /// Pooled features `[N, width]` of images, without gradients.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        no_grad(|| self.body.features(x))
    }

    /// The class head's argmax for each image of `x`.
    pub fn predict(&self, x: &Tensor) -> Result<Vec<usize>> {
        no_grad(|| self.classifier.forward(&self.body.features(x)?))?.argmax(1)
    }
}

/// Trains a labeller for `cfg.steps` updates: rotation on batches of `all` and, with
/// `labelled`, classes on batches of it (each in a fixed order shuffled by `seed`, reshuffled
/// every epoch). `progress` sees each update's number (from 1) and losses.
pub fn train_labeller(
    cfg: &LabellerConfig,
    all: &ImageDataset,
    labelled: Option<&ImageDataset>,
    seed: u64,
    mut progress: impl FnMut(u64, &LabellerLosses),
) -> Result<Labeller> {
    let mut net = Labeller::new(cfg, seed)?;
    let mut images = Loader::new(all, cfg.batch_size.min(all.n), seed, Scale::MinusOneToOne)?;
    let mut examples = match labelled {
        Some(ds) if ds.labels.is_none() => {
            return Err(Error::InvalidArgument {
                op: "train_labeller",
                reason: format!("the labelled images ({}) carry no labels", ds.source),
            })
        }
        Some(ds) => Some(Loader::new(
            ds,
            cfg.batch_size.min(ds.n),
            seed ^ 0x1abe_11ed,
            Scale::MinusOneToOne,
        )?),
        None => None,
    };
    for step in 1..=cfg.steps {
        let batch = images.next_batch()?;
        let example = examples.as_mut().map(|l| l.next_batch()).transpose()?;
        let labelled = example
            .as_ref()
            .map(|b| (&b.images, b.labels.as_deref().unwrap_or(&[])));
        let losses = net.step(&batch.images, labelled)?;
        progress(step, &losses);
    }
    Ok(net)
}

/// Runs `f` on the images of `ds` in order, `batch` at a time (scaled to [-1, 1]), collecting
/// its per-image outputs.
fn in_order<T>(
    ds: &ImageDataset,
    batch: usize,
    mut f: impl FnMut(&Tensor) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    let mut loader = Loader::new(ds, batch.clamp(1, ds.n.max(1)), 0, Scale::MinusOneToOne)?
        .with_shuffle(false)
        .with_drop_last(false);
    let mut out = Vec::with_capacity(ds.n);
    for _ in 0..loader.batches_per_epoch() {
        out.extend(f(&loader.next_batch()?.images)?);
    }
    Ok(out)
}

/// The labeller's class for every image of `ds`, in order.
pub fn predict_labels(net: &Labeller, ds: &ImageDataset) -> Result<Vec<usize>> {
    if ds.n == 0 {
        return Ok(Vec::new());
    }
    in_order(ds, 256, |x| net.predict(x))
}

/// CLUSTERING's labels: the labeller's features of every image of `ds`, each scaled to unit
/// length (k-means then compares directions, as cosine similarity), clustered into `k` by
/// [`kmeans`] (k-means++ from `seed`, at most 100 Lloyd iterations). Returns each image's
/// cluster.
pub fn cluster_labels(
    net: &Labeller,
    ds: &ImageDataset,
    k: usize,
    seed: u64,
) -> Result<Vec<usize>> {
    let rows = in_order(ds, 256, |x| {
        let h = net.features(x)?;
        let width = h.shape()[1];
        let values = h.to_vec::<f32>()?;
        Ok(values
            .chunks(width)
            .map(|row| {
                let norm = row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
                let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
                row.iter().map(|v| *v as f64 * scale).collect::<Vec<f64>>()
            })
            .collect())
    })?;
    let width = rows.first().map_or(1, Vec::len);
    let flat: Vec<f64> = rows.into_iter().flatten().collect();
    let clusters = kmeans(&flat, width, k, 100, seed).map_err(|e| Error::InvalidArgument {
        op: "cluster_labels",
        reason: e.to_string(),
    })?;
    Ok(clusters.assignments)
}

/// The share of `predicted` equal to `truth` (0 for empty input).
pub fn accuracy(predicted: &[usize], truth: &[u8]) -> f64 {
    let hits = predicted
        .iter()
        .zip(truth)
        .filter(|(p, t)| **p == **t as usize)
        .count();
    hits as f64 / predicted.len().max(1) as f64
}

/// Cluster purity: each cluster counted as its most common true class, the share of images
/// whose class is their cluster's (1 for clusters that follow the classes exactly, about the
/// largest class's share for clusters that ignore them).
pub fn purity(clusters: &[usize], truth: &[u8]) -> f64 {
    let k = clusters.iter().max().map_or(0, |m| m + 1);
    let classes = truth.iter().max().map_or(0, |m| *m as usize + 1);
    let mut counts = vec![vec![0usize; classes]; k];
    for (&c, &t) in clusters.iter().zip(truth) {
        counts[c][t as usize] += 1;
    }
    let majority: usize = counts
        .iter()
        .map(|row| row.iter().copied().max().unwrap_or(0))
        .sum();
    majority as f64 / clusters.len().max(1) as f64
}

/// S2GAN's labels for `data` (labelled, at the GAN's image size): its `percent` labelled split
/// (seeded by `seed`, as [`ImageDataset::percent_split_indices`]) keeps its labels; a labeller
/// trained on that split (and on rotations of all images) labels the rest. Returns the labels
/// of all images and the labeller's accuracy on the rest (against the labels it never saw).
pub fn s2l_labels(
    cfg: &LabellerConfig,
    data: &ImageDataset,
    percent: f64,
    seed: u64,
    progress: impl FnMut(u64, &LabellerLosses),
) -> Result<(Vec<u8>, f64)> {
    let invalid = |reason: String| Error::InvalidArgument {
        op: "s2l_labels",
        reason,
    };
    let (known, rest) = data
        .percent_split_indices(percent, seed)
        .map_err(|e| invalid(e.to_string()))?;
    if known.is_empty() {
        return Err(invalid(format!(
            "{percent}% of {} images labels none: the classifier needs labelled images",
            data.n
        )));
    }
    let labelled = data.subset(&known).map_err(|e| invalid(e.to_string()))?;
    let unlabelled = data.subset(&rest).map_err(|e| invalid(e.to_string()))?;
    let net = train_labeller(cfg, data, Some(&labelled), seed ^ 0x5214, progress)?;
    let predicted = predict_labels(&net, &unlabelled)?;
    let truth = unlabelled.labels.unwrap_or_default();
    let mut labels = data.labels.clone().unwrap_or_default();
    for (&i, &p) in rest.iter().zip(&predicted) {
        labels[i] = p as u8;
    }
    Ok((labels, accuracy(&predicted, &truth)))
}

/// CLUSTERING's labels for `data`: a labeller trained on rotations alone, its features
/// clustered into `data.num_classes` clusters (see [`cluster_labels`]). Returns each image's
/// cluster and, when `data` has labels (never used to train), the clusters' purity.
pub fn clustering_labels(
    cfg: &LabellerConfig,
    data: &ImageDataset,
    seed: u64,
    progress: impl FnMut(u64, &LabellerLosses),
) -> Result<(Vec<u8>, Option<f64>)> {
    let k = data.num_classes;
    if !(1..=usize::from(u8::MAX)).contains(&k) {
        return Err(Error::InvalidArgument {
            op: "clustering_labels",
            reason: format!("{k} clusters: between 1 and 255 are stored as labels"),
        });
    }
    let net = train_labeller(cfg, data, None, seed ^ 0xc105, progress)?;
    let clusters = cluster_labels(&net, data, k, seed)?;
    let quality = data.labels.as_ref().map(|t| purity(&clusters, t));
    Ok((clusters.into_iter().map(|c| c as u8).collect(), quality))
}

/// Co-training's labels for `data`: the `percent` labelled split (as [`s2l_labels`]) keeps
/// its labels, every other image is [`crate::data::UNLABELLED`].
pub fn hidden_rest_labels(data: &ImageDataset, percent: f64, seed: u64) -> Result<Vec<u8>> {
    let (known, _) =
        data.percent_split_indices(percent, seed)
            .map_err(|e| Error::InvalidArgument {
                op: "hidden_rest_labels",
                reason: e.to_string(),
            })?;
    let given = data.labels.as_deref().unwrap_or_default();
    let mut labels = vec![crate::data::UNLABELLED; data.n];
    for i in known {
        labels[i] = given[i];
    }
    Ok(labels)
}
