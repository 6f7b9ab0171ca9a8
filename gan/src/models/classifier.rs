//! The domain classifier that scores generated MNIST / Fashion-MNIST images: its penultimate
//! layer gives the features for FID/KID, its softmax the class probabilities for the
//! Inception-style scores and EBGAN's I'. The project trains it itself (`saddle train
//! classifier`); nothing is downloaded.
//!
//! A small conv net, on 28×28 single-channel images in [0, 1]:
//! conv 3×3 32 → ReLU → max-pool 2 → conv 3×3 64 → ReLU → max-pool 2 → linear 3136→128 → ReLU
//! (the features) → linear 128→10. 32×32 inputs (DCGAN's padded MNIST) are centre-cropped to 28.

use saddle_nn::engine::{no_grad, Conv2dParams, DType, Device, Error, Result, Rng, Tensor};
use saddle_nn::optim::{Adam, AdamConfig, Optimizer};
use saddle_nn::{
    child_name, Activation, Conv2d, Linear, Module, ModuleExt, Pool2d, PoolKind, Sequential, Slot,
};
use saddle_nn::{Checkpoint, CheckpointError};

/// Width of the feature layer.
pub const FEATURE_DIM: usize = 128;
/// Side of the images the classifier reads.
pub const IMAGE_SIZE: usize = 28;

/// The domain classifier (see the module docs for its layers).
pub struct Classifier {
    /// The two convolution stages: `[N, 1, 28, 28] -> [N, 64, 7, 7]`.
    pub conv: Sequential,
    /// The feature layer, 3136 → 128 (ReLU after it).
    pub fc: Linear,
    /// The class logits, 128 → `num_classes`.
    pub head: Linear,
    /// Number of classes.
    pub num_classes: usize,
}

impl Classifier {
    /// A classifier over `num_classes` classes with PyTorch's default initialisation from
    /// `rng`, on the CPU.
    pub fn new(num_classes: usize, rng: &mut Rng) -> Result<Self> {
        let same = Conv2dParams::default().with_padding(1);
        let pool = Pool2d {
            kind: PoolKind::Max,
            kernel: 2,
            stride: 2,
            padding: 0,
        };
        let conv = Sequential::new()
            .push(Conv2d::new(1, 32, 3, same, true, DType::F32, rng)?)
            .push(Activation::Relu)
            .push(pool)
            .push(Conv2d::new(32, 64, 3, same, true, DType::F32, rng)?)
            .push(Activation::Relu)
            .push(pool);
        Ok(Classifier {
            conv,
            fc: Linear::new(64 * 7 * 7, FEATURE_DIM, true, DType::F32, rng)?,
            head: Linear::new(FEATURE_DIM, num_classes, true, DType::F32, rng)?,
            num_classes,
        })
    }

    /// Where the weights live (moved with [`ModuleExt::to_device`]); inputs are moved there.
    pub fn device(&self) -> Device {
        self.head.weight.device()
    }

    /// `[N, 1, 28|32, 28|32]` in [0, 1] on any device → features `[N, 128]` on the
    /// classifier's.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let x = crop_to_28(&x.to_device(self.device())?)?;
        let h = self.conv.forward(&x)?;
        let n = h.shape()[0];
        self.fc.forward(&h.reshape(&[n, 64 * 7 * 7])?)?.relu()
    }

    /// Logits from features (the last layer alone).
    pub fn head_forward(&self, features: &Tensor) -> Result<Tensor> {
        self.head.forward(features)
    }

    /// Class probabilities `[N, classes]`.
    pub fn probabilities(&self, x: &Tensor) -> Result<Tensor> {
        self.forward(x)?.softmax(-1)
    }

    /// One Adam step of cross-entropy on a labelled batch; returns the loss.
    pub fn train_step(&self, opt: &mut Adam, x: &Tensor, labels: &[usize]) -> Result<f64> {
        let loss = self.forward(x)?.cross_entropy(labels)?;
        opt.step(&loss.backward()?)?;
        loss.to_scalar()
    }

    /// Adam with lr 1e-3 over all parameters.
    pub fn optimizer(&self) -> Adam {
        Adam::with_lr(self.named_parameters(), 1e-3, AdamConfig::default())
    }
}

fn crop_to_28(x: &Tensor) -> Result<Tensor> {
    let s = x.shape();
    match s {
        [_, 1, h, w] if *h == IMAGE_SIZE && *w == IMAGE_SIZE => Ok(x.clone()),
        [_, 1, h, w] if *h == 32 && *w == 32 => {
            x.narrow(2, 2, IMAGE_SIZE)?.narrow(3, 2, IMAGE_SIZE)
        }
        _ => Err(Error::bad_shape(
            "Classifier",
            s,
            "expected [N, 1, 28, 28] or [N, 1, 32, 32] images",
        )),
    }
}

impl Module for Classifier {
    /// Logits `[N, classes]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.head.forward(&self.features(x)?)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        self.conv.visit(&child_name(prefix, "conv"), f);
        self.fc.visit(&child_name(prefix, "fc"), f);
        self.head.visit(&child_name(prefix, "head"), f);
    }
}

impl Classifier {
    /// Writes the weights (PyTorch-style names) with `meta` (e.g. the dataset and the test
    /// accuracy) to a safetensors file, atomically.
    pub fn save(
        &self,
        path: impl AsRef<std::path::Path>,
        meta: &[(&str, String)],
    ) -> std::result::Result<(), CheckpointError> {
        let mut ck = Checkpoint::new();
        ck.add_module("", self);
        ck.set_meta("classifier.num_classes", self.num_classes);
        for (k, v) in meta {
            ck.set_meta(*k, v);
        }
        ck.save(path)
    }

    /// Loads a classifier written by [`Classifier::save`]; returns it with the file's metadata
    /// reader (the checkpoint).
    pub fn load(
        path: impl AsRef<std::path::Path>,
    ) -> std::result::Result<(Self, Checkpoint), CheckpointError> {
        let path = path.as_ref();
        let ck = Checkpoint::load(path)?;
        let classes = ck
            .meta("classifier.num_classes")
            .and_then(|c| c.parse().ok())
            .unwrap_or(10);
        // The weights are overwritten by the file; the seed only fills them meanwhile.
        let model = Classifier::new(classes, &mut Rng::new(0)).map_err(|e| CheckpointError {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        ck.restore_module("", &model)?;
        Ok((model, ck))
    }

    /// Accuracy on `images` `[N, 1, H, W]` in [0, 1] with `labels`, in batches without gradients.
    pub fn accuracy(&self, images: &Tensor, labels: &[usize], batch: usize) -> Result<f64> {
        let n = images.shape()[0];
        let mut correct = 0usize;
        for start in (0..n).step_by(batch.max(1)) {
            let len = batch.min(n - start);
            let logits = no_grad(|| self.forward(&images.narrow(0, start, len)?))?;
            let pred = logits.argmax(1)?;
            correct += pred
                .iter()
                .zip(&labels[start..start + len])
                .filter(|(p, l)| p == l)
                .count();
        }
        Ok(correct as f64 / n.max(1) as f64)
    }
}
