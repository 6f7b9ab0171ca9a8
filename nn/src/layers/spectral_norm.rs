use crate::{child_name, Linear, Module, Slot};
use saddle_engine::{no_grad, DType, Device, Error, Result, Rng, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};

/// A layer whose weight can be replaced at forward time: what [`SpectralNorm`] wraps
/// (Linear, Conv2d, Embedding, ...). The weight's dimension 0 is its output dimension.
pub trait WeightedLayer: Send + Sync {
    /// The layer's own weight, `[out, ...]`.
    fn weight(&self) -> &Tensor;
    /// The layer's forward with `weight` in place of its own.
    fn forward_with_weight(&self, x: &Tensor, weight: &Tensor) -> Result<Tensor>;
    /// Visits the layer's tensors other than the weight (bias, ...).
    fn visit_without_weight(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot));
}

impl WeightedLayer for Linear {
    fn weight(&self) -> &Tensor {
        &self.weight
    }
    fn forward_with_weight(&self, x: &Tensor, weight: &Tensor) -> Result<Tensor> {
        x.linear(weight, self.bias.as_ref())
    }
    fn visit_without_weight(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        if let Some(b) = &self.bias {
            f(child_name(prefix, "bias"), b, Slot::Parameter);
        }
    }
}

/// Spectral normalisation (Miyato et al. 2018): the layer uses `W / σ(W)`, with σ estimated by
/// power iteration. One iteration per training forward updates the persistent vectors `u` and
/// `v` (buffers, not differentiated); σ = uᵀ W v is differentiated through W. Evaluation
/// reuses the stored vectors without iterating. Names follow PyTorch's `spectral_norm`:
/// `weight_orig`, `weight_u`, `weight_v`.
///
/// Input and output shapes are the wrapped layer's.
///
/// ```
/// use saddle_nn::engine::{DType, Device, Rng, Tensor};
/// use saddle_nn::{Linear, Module, SpectralNorm};
///
/// // diag(3, 1) has spectral norm 3: the normalised weight is diag(1, 1/3).
/// let w = Tensor::from_vec(vec![3.0f32, 0.0, 0.0, 1.0], &[2, 2], Device::Cpu)?;
/// let sn = SpectralNorm::new(Linear::from_weights(w, None)?, &mut Rng::new(0))?;
/// let x = Tensor::from_vec(vec![1.0f32, 1.0], &[1, 2], Device::Cpu)?;
/// for _ in 0..10 {
///     sn.forward(&x)?; // each training forward runs one power iteration
/// }
/// assert!((sn.sigma()?.to_scalar()? - 3.0).abs() < 1e-4);
/// let y = sn.forward(&x)?.to_vec::<f32>()?;
/// assert!((y[0] - 1.0).abs() < 1e-4 && (y[1] - 1.0 / 3.0).abs() < 1e-4);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub struct SpectralNorm<L: WeightedLayer> {
    /// The wrapped layer, holding the unnormalised weight.
    pub inner: L,
    /// `[out]`, a buffer: the left singular vector estimate.
    pub u: Tensor,
    /// `[numel / out]`, a buffer: the right singular vector estimate.
    pub v: Tensor,
    /// Guards the normalisation of `u` and `v` against division by zero.
    pub eps: f64,
    training: AtomicBool,
}

impl<L: WeightedLayer> SpectralNorm<L> {
    /// Wraps `inner`, with `u` and `v` random unit vectors drawn from `rng`; starts in training
    /// mode. A weight of rank below 2 is an error.
    pub fn new(inner: L, rng: &mut Rng) -> Result<Self> {
        let w = inner.weight();
        if w.rank() < 2 {
            return Err(Error::BadShape {
                op: "SpectralNorm",
                shape: w.shape().to_vec(),
                reason: "weight needs at least 2 dimensions".into(),
            });
        }
        let rows = w.shape()[0];
        let cols = w.numel() / rows;
        let dtype: DType = w.dtype();
        let unit = |n: usize, rng: &mut Rng| -> Result<Tensor> {
            Tensor::randn(&[n], 0.0, 1.0, dtype, Device::Cpu, rng)?.l2_normalize(0, 1e-12)
        };
        let u = unit(rows, rng)?;
        let v = unit(cols, rng)?;
        Ok(SpectralNorm {
            inner,
            u,
            v,
            eps: 1e-12,
            training: AtomicBool::new(true),
        })
    }

    fn matrix(&self) -> Result<Tensor> {
        let w = self.inner.weight();
        w.reshape(&[w.shape()[0], w.numel() / w.shape()[0]])
    }

    /// One power iteration on the stored vectors: v ← normalise(Wᵀu), u ← normalise(Wv).
    pub fn power_iteration(&self) -> Result<()> {
        let w = self.matrix()?.detach();
        no_grad(|| {
            let v = w
                .t()?
                .matmul(&self.u.unsqueeze(1)?)?
                .squeeze(1)?
                .l2_normalize(0, self.eps)?;
            let u = w
                .matmul(&v.unsqueeze(1)?)?
                .squeeze(1)?
                .l2_normalize(0, self.eps)?;
            self.v.assign(&v)?;
            self.u.assign(&u)
        })
    }

    /// σ = uᵀ W v with the stored vectors (differentiable in W).
    pub fn sigma(&self) -> Result<Tensor> {
        let wv = self.matrix()?.matmul(&self.v.unsqueeze(1)?)?.squeeze(1)?;
        self.u.mul(&wv)?.sum_all()
    }

    /// The normalised weight `W / σ` (after one power iteration in training mode).
    pub fn normalized_weight(&self) -> Result<Tensor> {
        if self.training.load(Ordering::Relaxed) {
            self.power_iteration()?;
        }
        self.inner.weight().div(&self.sigma()?)
    }
}

impl<L: WeightedLayer> Module for SpectralNorm<L> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.inner
            .forward_with_weight(x, &self.normalized_weight()?)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        f(
            child_name(prefix, "weight_orig"),
            self.inner.weight(),
            Slot::Parameter,
        );
        self.inner.visit_without_weight(prefix, f);
        f(child_name(prefix, "weight_u"), &self.u, Slot::Buffer);
        f(child_name(prefix, "weight_v"), &self.v, Slot::Buffer);
    }

    fn set_training(&mut self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }
}
