//! The domain classifier that scores generated MNIST / Fashion-MNIST images: its penultimate
//! layer gives the features for FID/KID, its softmax the class probabilities for the
//! Inception-style scores and EBGAN's I'. The project trains it itself (`saddle train
//! classifier`); nothing is downloaded.
//!
//! A small conv net, on 28×28 single-channel images in [0, 1]:
//! conv 3×3 32 → ReLU → max-pool 2 → conv 3×3 64 → ReLU → max-pool 2 → linear 3136→128 → ReLU
//! (the features) → linear 128→10. 32×32 inputs (DCGAN's padded MNIST) are centre-cropped to 28.

use saddle_nn::engine::{Conv2dParams, DType, Error, Result, Rng, Tensor};
use saddle_nn::optim::{Adam, AdamConfig, Optimizer};
use saddle_nn::{
    child_name, Activation, Conv2d, Linear, Module, ModuleExt, Pool2d, PoolKind, Sequential, Slot,
};

/// Width of the feature layer.
pub const FEATURE_DIM: usize = 128;
/// Side of the images the classifier reads.
pub const IMAGE_SIZE: usize = 28;

pub struct Classifier {
    pub conv: Sequential,
    pub fc: Linear,
    pub head: Linear,
    pub num_classes: usize,
}

impl Classifier {
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

    /// `[N, 1, 28|32, 28|32]` in [0, 1] → features `[N, 128]`.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let x = crop_to_28(x)?;
        let h = self.conv.forward(&x)?;
        let n = h.shape()[0];
        self.fc.forward(&h.reshape(&[n, 64 * 7 * 7])?)?.relu()
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
