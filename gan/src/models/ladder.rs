//! The fully connected ladder network (Rasmus et al. 2015) for permutation-invariant
//! semi-supervised MNIST, and EBGAN-LN (Zhao et al. 2017): the same network used as EBGAN's
//! discriminator, its energy the bottom layer's denoising cost.
//!
//! Ladder network, as published (sizes 784-1000-500-250-250-250-10):
//! - a corrupted encoder: Gaussian noise (std `noise_std`) added to the input and to every
//!   layer's batch-normalised pre-activation `z̃_l`, then `h̃_l = φ(γ_l ⊙ (z̃_l + β_l))` with φ =
//!   ReLU on hidden layers and softmax on the top (γ only on the top layer, where it is not
//!   redundant with the next layer's normalisation);
//! - a clean encoder sharing the weights, without noise, whose normalised `z_l` are the
//!   denoising targets and whose batch statistics (μ_l, σ_l) also normalise the reconstructions;
//! - a decoder from the top down: `u_L = BN(h̃_L)`, `u_l = BN(V_{l+1} ẑ_{l+1})`, and per layer the
//!   denoising combinator `ẑ_l = g(z̃_l, u_l)` ([`Combinator`]);
//! - the cost: cross-entropy of the corrupted output on the labelled examples plus
//!   `Σ_l λ_l · mean_n ‖(ẑ_l - μ_l)/σ_l - z_l‖² / width_l` (for l = 0 the target is the input).
//!
//! The EBGAN paper's ladder baseline and EBGAN-LN keep only the bottom layer's cost (λ_0, the
//! reconstruction of the input): [`LadderConfig::bottom_cost`]; the full per-layer costs are
//! [`LadderConfig::mnist`]. When only λ_0 is non-zero the clean encoder is not needed for the
//! cost, so training skips it and the evaluation-mode statistics come from
//! [`Ladder::estimate_statistics`] (which runs it on training batches).
//!
//! The semi-supervised trainer of both, EBGAN-LN's generator and margin included, is in
//! [`super::ebgan_ln`].

use saddle_nn::engine::{no_grad, DType, Device, Error, Result, Rng, Tensor};
use saddle_nn::{child_name, BatchNorm, Linear, Module, Slot};

/// Sizes, noise and cost weights.
#[derive(Clone, Debug, PartialEq)]
pub struct LadderConfig {
    /// Layer widths from the input to the classes (at least 2 entries).
    pub sizes: Vec<usize>,
    /// Std of the Gaussian noise of the corrupted encoder (input and every layer).
    pub noise_std: f64,
    /// λ_l, one per layer including the input (`sizes.len()` entries).
    pub denoise_weights: Vec<f64>,
    /// Batch norm's variance epsilon.
    pub eps: f64,
}

impl LadderConfig {
    /// Rasmus et al.'s MNIST network with their per-layer cost weights for 100 labels
    /// (1000, 10, 0.1, 0.1, 0.1, 0.1, 0.1) and noise 0.3.
    pub fn mnist() -> Self {
        LadderConfig {
            sizes: vec![784, 1000, 500, 250, 250, 250, 10],
            noise_std: 0.3,
            denoise_weights: vec![1000.0, 10.0, 0.1, 0.1, 0.1, 0.1, 0.1],
            eps: 1e-5,
        }
    }

    /// The same network with only the bottom layer's cost (λ_0 = 1000): the EBGAN paper's
    /// "LN bottom-layer-cost" baseline and the discriminator of its EBGAN-LN.
    pub fn bottom_cost() -> Self {
        let mut cfg = Self::mnist();
        let n = cfg.denoise_weights.len();
        cfg.denoise_weights = std::iter::once(1000.0)
            .chain(std::iter::repeat_n(0.0, n - 1))
            .collect();
        cfg
    }

    fn layers(&self) -> usize {
        self.sizes.len() - 1
    }
}

/// The vanilla denoising combinator of the ladder network, per unit of a layer of width w:
/// `ẑ = (z̃ - μ(u)) ⊙ v(u) + μ(u)` with
/// `μ(u) = a1 ⊙ σ(a2 ⊙ u + a3) + a4 ⊙ u + a5` and `v(u) = a6 ⊙ σ(a7 ⊙ u + a8) + a9 ⊙ u + a10`
/// (σ the logistic sigmoid; `a[0]` is a1). Initialised as the authors' code: a2 = a7 = 1, the
/// rest 0, so ẑ starts at 0.
pub struct Combinator {
    /// a1..a10, each `[w]`.
    pub a: Vec<Tensor>,
}

impl Combinator {
    /// A combinator for a layer of `width` units, initialised as the authors' code.
    pub fn new(width: usize, dtype: DType) -> Result<Self> {
        let a = (0..10)
            .map(|i| {
                let v = if i == 1 || i == 6 { 1.0 } else { 0.0 };
                Ok(Tensor::full(v, &[width], dtype, Device::Cpu)?.with_requires_grad(true))
            })
            .collect::<Result<_>>()?;
        Ok(Combinator { a })
    }

    /// From ten `[w]` tensors a1..a10 (e.g. for tests).
    pub fn from_params(a: Vec<Tensor>) -> Result<Self> {
        if a.len() != 10 || a.iter().any(|t| t.rank() != 1 || t.shape() != a[0].shape()) {
            return Err(Error::InvalidArgument {
                op: "Combinator::from_params",
                reason: "needs ten [width] tensors a1..a10".into(),
            });
        }
        Ok(Combinator { a })
    }

    /// ẑ from the corrupted `z̃` and the top-down signal `u`, both `[N, w]`.
    pub fn forward(&self, z_noisy: &Tensor, u: &Tensor) -> Result<Tensor> {
        if z_noisy.shape() != u.shape() || z_noisy.shape().last() != self.a[0].shape().last() {
            return Err(Error::BadShape {
                op: "Combinator",
                shape: z_noisy.shape().to_vec(),
                reason: format!(
                    "z̃ and u must both be [N, {}] (u is {:?})",
                    self.a[0].shape()[0],
                    u.shape()
                ),
            });
        }
        let a = &self.a;
        let gate =
            |s: &Tensor, m: &Tensor, b: &Tensor, lin: &Tensor, c: &Tensor| -> Result<Tensor> {
                s.mul(&u.mul(m)?.add(b)?.sigmoid()?)?
                    .add(&u.mul(lin)?)?
                    .add(c)
            };
        let mu = gate(&a[0], &a[1], &a[2], &a[3], &a[4])?;
        let v = gate(&a[5], &a[6], &a[7], &a[8], &a[9])?;
        z_noisy.sub(&mu)?.mul(&v)?.add(&mu)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        for (i, t) in self.a.iter().enumerate() {
            f(
                child_name(prefix, &format!("a{}", i + 1)),
                t,
                Slot::Parameter,
            );
        }
    }
}

/// What one training pass of the ladder gives.
pub struct LadderPass {
    /// Logits of the corrupted encoder `[N, classes]` (the supervised cost uses these).
    pub noisy_logits: Tensor,
    /// Per-sample denoising cost of each layer, `[N]` each, unweighted (an empty placeholder
    /// where λ_l is 0 and the layer's cost was not computed).
    pub layer_costs: Vec<Option<Tensor>>,
}

impl LadderPass {
    /// `Σ_l λ_l · mean_n cost_l` (scalar).
    pub fn denoising_cost(&self, weights: &[f64]) -> Result<Tensor> {
        let mut total: Option<Tensor> = None;
        for (c, &w) in self.layer_costs.iter().zip(weights) {
            if let (Some(c), true) = (c, w != 0.0) {
                let term = c.mean_all()?.mul_scalar(w)?;
                total = Some(match total {
                    Some(t) => t.add(&term)?,
                    None => term,
                });
            }
        }
        match total {
            Some(t) => Ok(t),
            None => Tensor::zeros(&[], self.noisy_logits.dtype(), self.noisy_logits.device()),
        }
    }
}

/// The network: `enc.l` (W, no bias: batch norm follows), `beta.l`, `gamma` (top layer),
/// `dec.l` (V from layer l+1 to l), `comb.l` (l = 0..=L) and the clean encoder's batch norms
/// `bn.l` (statistics only).
pub struct Ladder {
    /// The sizes and cost weights.
    pub cfg: LadderConfig,
    /// W_l: the encoder's linear maps, layer l to l+1, without bias.
    pub enc: Vec<Linear>,
    /// β_l: the shift after each encoder layer's normalisation.
    pub beta: Vec<Tensor>,
    /// γ: the top layer's scale.
    pub gamma: Tensor,
    /// V_l: the decoder's linear maps, layer l+1 to l.
    pub dec: Vec<Linear>,
    /// One combinator per layer, the input's included.
    pub comb: Vec<Combinator>,
    /// The clean encoder's batch norms (statistics only, no affine).
    pub bn: Vec<BatchNorm>,
    training: bool,
}

impl Ladder {
    /// The network of `cfg`, initialised from `rng`. Fewer than 2 sizes, or a cost weight
    /// count other than the size count, is an error.
    pub fn new(cfg: LadderConfig, rng: &mut Rng) -> Result<Self> {
        if cfg.sizes.len() < 2 || cfg.denoise_weights.len() != cfg.sizes.len() {
            return Err(Error::InvalidArgument {
                op: "Ladder::new",
                reason: format!(
                    "needs at least 2 layer sizes and one cost weight per size; got {} sizes and {} weights",
                    cfg.sizes.len(),
                    cfg.denoise_weights.len()
                ),
            });
        }
        let dt = DType::F32;
        let s = &cfg.sizes;
        let l = cfg.layers();
        let mut enc = Vec::with_capacity(l);
        let mut dec = Vec::with_capacity(l);
        let mut beta = Vec::with_capacity(l);
        let mut bn = Vec::with_capacity(l);
        for i in 0..l {
            enc.push(Linear::new(s[i], s[i + 1], false, dt, rng)?);
            beta.push(Tensor::zeros(&[s[i + 1]], dt, Device::Cpu)?.with_requires_grad(true));
            bn.push(BatchNorm::new_1d(s[i + 1], false, dt)?);
        }
        for i in 0..l {
            dec.push(Linear::new(s[i + 1], s[i], false, dt, rng)?);
        }
        let comb = s
            .iter()
            .map(|&w| Combinator::new(w, dt))
            .collect::<Result<_>>()?;
        let gamma = Tensor::ones(&[s[l]], dt, Device::Cpu)?.with_requires_grad(true);
        for b in &mut bn {
            b.eps = cfg.eps;
        }
        Ok(Ladder {
            cfg,
            enc,
            beta,
            gamma,
            dec,
            comb,
            bn,
            training: true,
        })
    }

    pub(crate) fn classes(&self) -> usize {
        *self.cfg.sizes.last().expect("at least 2 sizes")
    }

    /// φ(γ ⊙ (z + β)) of layer `i` (0-based encoder layer), or its pre-softmax value on top.
    fn activate(&self, i: usize, z: &Tensor) -> Result<Tensor> {
        let h = z.add(&self.beta[i])?;
        if i + 1 == self.enc.len() {
            h.mul(&self.gamma)
        } else {
            h.relu()
        }
    }

    /// Where the parameters (and every pass's tensors) live.
    pub fn device(&self) -> Device {
        self.gamma.device()
    }

    /// `x` plus Gaussian noise drawn on the host from `rng` (the same numbers on every device),
    /// then moved to `x`'s device.
    fn noise(&self, x: &Tensor, rng: &mut Rng) -> Result<Tensor> {
        if self.cfg.noise_std == 0.0 {
            return Ok(x.clone());
        }
        let noise = Tensor::randn(
            x.shape(),
            0.0,
            self.cfg.noise_std,
            x.dtype(),
            Device::Cpu,
            rng,
        )?;
        x.add(&noise.to_device(x.device())?)
    }

    /// The clean encoder: logits, and (in training mode) each layer's normalised `z_l` with the
    /// batch mean and biased variance used. In evaluation mode the running statistics are used
    /// and the lists are empty.
    #[allow(clippy::type_complexity)]
    pub fn clean(&self, x: &Tensor) -> Result<(Tensor, Vec<(Tensor, Tensor, Tensor)>)> {
        let mut h = x.to_device(self.device())?;
        let mut stats = Vec::new();
        for (i, layer) in self.enc.iter().enumerate() {
            let pre = layer.forward(&h)?;
            let z = if self.training {
                let out = self.bn[i].forward_with_stats(&pre)?;
                stats.push((out.output.clone(), out.mean, out.var));
                out.output
            } else {
                self.bn[i].forward(&pre)?
            };
            h = self.activate(i, &z)?;
        }
        Ok((h, stats))
    }

    /// Class logits of the clean encoder (evaluation mode: running statistics), `[N, classes]`.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.clean(x)?.0)
    }

    /// The corrupted encoder and the decoder on `x` (`[N, sizes[0]]`), with the per-sample
    /// denoising cost of each layer `l` where `costs[l]` (one flag per layer, the input's
    /// first). Runs the clean encoder for the targets when a layer above the input is asked for
    /// (its batch norms then update their running statistics).
    pub fn pass(&self, x: &Tensor, costs: &[bool], rng: &mut Rng) -> Result<LadderPass> {
        self.pass_impl(x, costs, &mut |_, t| self.noise(t, rng))
    }

    /// [`Ladder::pass`] with the corrupted encoder's noise given: `noise[l]` is added to the
    /// input (l = 0) and to layer l's normalised pre-activation, `[N, sizes[l]]` each (for
    /// comparisons against another implementation on the same noise).
    pub fn pass_with_noise(
        &self,
        x: &Tensor,
        costs: &[bool],
        noise: &[Tensor],
    ) -> Result<LadderPass> {
        if noise.len() != self.cfg.sizes.len() {
            return Err(Error::InvalidArgument {
                op: "Ladder::pass_with_noise",
                reason: format!(
                    "{} noise tensors for {} layers (the input's first)",
                    noise.len(),
                    self.cfg.sizes.len()
                ),
            });
        }
        self.pass_impl(x, costs, &mut |l, t| {
            t.add(&noise[l].to_device(t.device())?)
        })
    }

    /// The pass, with `add_noise(l, z)` corrupting the input (l = 0) and layer l's `z̃`.
    fn pass_impl(
        &self,
        x: &Tensor,
        costs: &[bool],
        add_noise: &mut dyn FnMut(usize, &Tensor) -> Result<Tensor>,
    ) -> Result<LadderPass> {
        let x = &x.to_device(self.device())?;
        let l = self.enc.len();
        if costs.len() != l + 1 {
            return Err(Error::InvalidArgument {
                op: "Ladder::pass",
                reason: format!("{} cost flags for {} layers", costs.len(), l + 1),
            });
        }
        let clean = if costs[1..].iter().any(|&c| c) {
            Some(self.clean(x)?.1)
        } else {
            None
        };
        // Corrupted encoder.
        let mut z_noisy = vec![add_noise(0, x)?];
        let mut h = z_noisy[0].clone();
        for (i, layer) in self.enc.iter().enumerate() {
            let pre = layer.forward(&h)?;
            let z = add_noise(i + 1, &pre.batch_norm(None, None, self.cfg.eps)?.output)?;
            h = self.activate(i, &z)?;
            z_noisy.push(z);
        }
        let noisy_logits = h;
        // Decoder, top down.
        let mut layer_costs = vec![None; l + 1];
        let mut z_hat_above: Option<Tensor> = None;
        for i in (0..=l).rev() {
            let u = match &z_hat_above {
                None => noisy_logits.softmax(-1)?,
                Some(above) => self.dec[i].forward(above)?,
            };
            let u = u.batch_norm(None, None, self.cfg.eps)?.output;
            let z_hat = self.comb[i].forward(&z_noisy[i], &u)?;
            if costs[i] {
                let (target, z_hat_bn) = if i == 0 {
                    (x.clone(), z_hat.clone())
                } else {
                    let (z, mean, var) = &clean.as_ref().expect("clean pass run")[i - 1];
                    let std = var.add_scalar(self.cfg.eps)?.sqrt()?;
                    (z.clone(), z_hat.sub(mean)?.div(&std)?)
                };
                layer_costs[i] = Some(z_hat_bn.sub(&target)?.square()?.mean(&[1], false)?);
            }
            z_hat_above = Some(z_hat);
        }
        Ok(LadderPass {
            noisy_logits,
            layer_costs,
        })
    }

    /// [`Ladder::pass`] computing the costs the training loss weights (λ_l non-zero).
    pub fn training_pass(&self, x: &Tensor, rng: &mut Rng) -> Result<LadderPass> {
        let costs: Vec<bool> = self.cfg.denoise_weights.iter().map(|&w| w != 0.0).collect();
        self.pass(x, &costs, rng)
    }

    /// EBGAN-LN's energy of `x`: `λ_0 ·` the per-sample bottom-layer cost, `[N]` (λ_0 must be
    /// positive; [`super::ebgan_ln::SemiSupervised::new`] checks).
    pub fn energy(&self, x: &Tensor, rng: &mut Rng) -> Result<Tensor> {
        let mut costs = vec![false; self.enc.len() + 1];
        costs[0] = true;
        let pass = self.pass(x, &costs, rng)?;
        pass.layer_costs[0]
            .as_ref()
            .expect("bottom cost computed")
            .mul_scalar(self.cfg.denoise_weights[0])
    }

    /// Re-estimates the clean encoder's statistics (for evaluation mode) from `batches` passes
    /// of `batch(i)` (BigGAN's standing statistics: each batch weighs the same).
    pub fn estimate_statistics(
        &mut self,
        batches: usize,
        mut batch: impl FnMut(usize) -> Result<Tensor>,
    ) -> Result<()> {
        saddle_nn::standing_stats(self, batches, |m, i| m.clean(&batch(i)?).map(|_| ()))
    }

    /// Share of `labels` the clean encoder (evaluation mode) gets wrong on `x`, in batches.
    pub fn error_rate(&mut self, x: &Tensor, labels: &[usize], batch: usize) -> Result<f64> {
        let was = self.training;
        self.set_training(false);
        let n = x.shape()[0];
        let mut wrong = 0usize;
        let result = (|| -> Result<()> {
            for start in (0..n).step_by(batch.max(1)) {
                let len = batch.min(n - start);
                let logits = no_grad(|| self.logits(&x.narrow(0, start, len)?))?;
                wrong += logits
                    .argmax(1)?
                    .iter()
                    .zip(&labels[start..start + len])
                    .filter(|(p, l)| p != l)
                    .count();
            }
            Ok(())
        })();
        self.set_training(was);
        result?;
        Ok(wrong as f64 / n.max(1) as f64)
    }
}

impl Module for Ladder {
    /// Class logits of the clean encoder.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.logits(x)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        for (i, layer) in self.enc.iter().enumerate() {
            layer.visit(&child_name(prefix, &format!("enc.{i}")), f);
            f(
                child_name(prefix, &format!("beta.{i}")),
                &self.beta[i],
                Slot::Parameter,
            );
            self.bn[i].visit(&child_name(prefix, &format!("bn.{i}")), f);
        }
        f(child_name(prefix, "gamma"), &self.gamma, Slot::Parameter);
        for (i, layer) in self.dec.iter().enumerate() {
            layer.visit(&child_name(prefix, &format!("dec.{i}")), f);
        }
        for (i, c) in self.comb.iter().enumerate() {
            c.visit(&child_name(prefix, &format!("comb.{i}")), f);
        }
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        for bn in &mut self.bn {
            bn.set_training(training);
        }
    }

    fn visit_batch_norms(&mut self, f: &mut dyn FnMut(&mut BatchNorm)) {
        for bn in &mut self.bn {
            f(bn);
        }
    }
}
