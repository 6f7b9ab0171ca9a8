use crate::{child_name, Module, Slot};
use saddle_engine::{no_grad, BatchNormOutput, DType, Device, Error, Result, Tensor};
use std::sync::atomic::{AtomicU64, Ordering};

/// Batch normalisation over dimension 1 (PyTorch's `BatchNorm1d` for `[N, C]`/`[N, C, L]` and
/// `BatchNorm2d` for `[N, C, H, W]`). Training mode normalises with the batch statistics
/// (one fused engine op) and folds them into `running_mean`/`running_var`; evaluation mode uses
/// the running statistics.
///
/// The output has the input's shape. A new layer is in training mode, with `weight` ones and
/// `bias` zeros when affine; an input of another rank, or with other than `num_features`
/// channels in dimension 1, is an error.
///
/// ```
/// use saddle_nn::engine::{DType, Device, Tensor};
/// use saddle_nn::{BatchNorm, Module};
///
/// let mut bn = BatchNorm::new_1d(2, true, DType::F32)?;
/// let x = Tensor::from_vec(vec![1.0f32, 10.0, 3.0, 30.0], &[2, 2], Device::Cpu)?;
/// // Training: each channel normalised with the batch's mean and variance.
/// let y = bn.forward(&x)?.to_vec::<f32>()?;
/// assert!((y[0] + 1.0).abs() < 1e-3 && (y[2] - 1.0).abs() < 1e-3);
/// // ...and the running mean moved 10% of the way from 0 to the batch mean.
/// assert_eq!(bn.running_mean.to_vec::<f32>()?, [0.2, 2.0]);
/// // Evaluation uses the running statistics instead.
/// bn.set_training(false);
/// assert_eq!(bn.forward(&x)?.shape(), &[2, 2]);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub struct BatchNorm {
    /// Channels, the size of dimension 1.
    pub num_features: usize,
    /// Added to the variance before the square root.
    pub eps: f64,
    /// Weight of the newest batch in the running statistics; `None` is a cumulative average
    /// over every batch since the last reset (BigGAN's "standing statistics").
    pub momentum: Option<f64>,
    /// Per-channel gain `[C]` (affine layers only).
    pub weight: Option<Tensor>,
    /// Per-channel shift `[C]` (affine layers only).
    pub bias: Option<Tensor>,
    /// `[C]`, a buffer: the mean evaluation mode normalises with.
    pub running_mean: Tensor,
    /// `[C]`, a buffer: the unbiased variance evaluation mode normalises with.
    pub running_var: Tensor,
    /// Input ranks this layer accepts (2 and 3 for 1-d, 4 for 2-d).
    ranks: &'static [usize],
    batches_tracked: AtomicU64,
    training: bool,
}

impl BatchNorm {
    fn new(
        num_features: usize,
        affine: bool,
        dtype: DType,
        ranks: &'static [usize],
    ) -> Result<Self> {
        let param = |v: f64| -> Result<Option<Tensor>> {
            Ok(if affine {
                Some(Tensor::full(v, &[num_features], dtype, Device::Cpu)?.with_requires_grad(true))
            } else {
                None
            })
        };
        Ok(BatchNorm {
            num_features,
            eps: 1e-5,
            momentum: Some(0.1),
            weight: param(1.0)?,
            bias: param(0.0)?,
            running_mean: Tensor::zeros(&[num_features], dtype, Device::Cpu)?,
            running_var: Tensor::ones(&[num_features], dtype, Device::Cpu)?,
            ranks,
            batches_tracked: AtomicU64::new(0),
            training: true,
        })
    }

    /// For `[N, C]` or `[N, C, L]` inputs (PyTorch's `BatchNorm1d`, eps 1e-5, momentum 0.1).
    pub fn new_1d(num_features: usize, affine: bool, dtype: DType) -> Result<Self> {
        Self::new(num_features, affine, dtype, &[2, 3])
    }

    /// For `[N, C, H, W]` inputs (PyTorch's `BatchNorm2d`, eps 1e-5, momentum 0.1).
    pub fn new_2d(num_features: usize, affine: bool, dtype: DType) -> Result<Self> {
        Self::new(num_features, affine, dtype, &[4])
    }

    /// Resets the running statistics to mean 0, variance 1.
    pub fn reset_running_stats(&self) -> Result<()> {
        self.running_mean.assign(&self.running_mean.zeros_like()?)?;
        self.running_var.assign(&self.running_var.ones_like()?)?;
        self.batches_tracked.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the layer is in training mode (batch statistics) rather than evaluation mode.
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// The training-mode forward that also hands back the batch statistics it normalised with
    /// (mean and biased variance per channel), folding them into the running statistics as
    /// [`Module::forward`] does. For models that reuse the statistics: the ladder network's
    /// decoder normalises its reconstructions with the clean encoder's batch statistics. An
    /// error in evaluation mode, where no batch statistics are used.
    pub fn forward_with_stats(&self, x: &Tensor) -> Result<BatchNormOutput> {
        self.check_input(x)?;
        if !self.training {
            return Err(Error::InvalidArgument {
                op: "BatchNorm::forward_with_stats",
                reason: "batch statistics exist only in training mode".into(),
            });
        }
        let out = x.batch_norm(self.weight.as_ref(), self.bias.as_ref(), self.eps)?;
        self.update_running(&out.mean, &out.var_unbiased)?;
        Ok(out)
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        if !self.ranks.contains(&x.rank()) || x.shape()[1] != self.num_features {
            return Err(Error::BadShape {
                op: "BatchNorm",
                shape: x.shape().to_vec(),
                reason: format!(
                    "expected rank {:?} with {} channels in dimension 1",
                    self.ranks, self.num_features
                ),
            });
        }
        Ok(())
    }

    fn update_running(&self, mean: &Tensor, var_unbiased: &Tensor) -> Result<()> {
        let n = self.batches_tracked.fetch_add(1, Ordering::Relaxed) + 1;
        let m = self.momentum.unwrap_or(1.0 / n as f64);
        no_grad(|| {
            let mix = |running: &Tensor, batch: &Tensor| -> Result<()> {
                running.assign(&running.mul_scalar(1.0 - m)?.add(&batch.mul_scalar(m)?)?)
            };
            mix(&self.running_mean, mean)?;
            mix(&self.running_var, var_unbiased)
        })
    }
}

impl Module for BatchNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.training {
            Ok(self.forward_with_stats(x)?.output)
        } else {
            self.check_input(x)?;
            x.batch_norm_eval(
                &self.running_mean,
                &self.running_var,
                self.weight.as_ref(),
                self.bias.as_ref(),
                self.eps,
            )
        }
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        if let Some(w) = &self.weight {
            f(child_name(prefix, "weight"), w, Slot::Parameter);
        }
        if let Some(b) = &self.bias {
            f(child_name(prefix, "bias"), b, Slot::Parameter);
        }
        f(
            child_name(prefix, "running_mean"),
            &self.running_mean,
            Slot::Buffer,
        );
        f(
            child_name(prefix, "running_var"),
            &self.running_var,
            Slot::Buffer,
        );
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn visit_batch_norms(&mut self, f: &mut dyn FnMut(&mut BatchNorm)) {
        f(self);
    }
}
