use super::{Optimizer, ParamGroup};
use saddle_engine::ops::optim::SgdStep;
use saddle_engine::{Error, Grads, Result, Tensor};
use std::collections::BTreeMap;

/// SGD hyper-parameters (PyTorch's semantics). `Default` is plain SGD: every field zero or off.
#[derive(Clone, Copy, Debug, Default)]
pub struct SgdConfig {
    /// Weight of the previous update in the momentum buffer (0: no momentum).
    pub momentum: f64,
    /// How much of the current gradient is held back from the buffer (`1 − dampening` goes in).
    pub dampening: f64,
    /// L2 penalty: `weight_decay · param` is added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum (needs `momentum > 0` and zero dampening).
    pub nesterov: bool,
}

/// Stochastic gradient descent with optional (Nesterov) momentum and weight decay.
///
/// ```
/// use saddle_nn::engine::{Device, Tensor};
/// use saddle_nn::optim::{Optimizer, ParamGroup, Sgd, SgdConfig};
///
/// let p = Tensor::from_vec(vec![0.0f64], &[1], Device::Cpu)?.with_requires_grad(true);
/// let group = ParamGroup::new(vec![("p".into(), p.clone())], 0.25);
/// let mut opt = Sgd::new(vec![group], SgdConfig::default())?;
/// // loss = (p - 3)², gradient -6 at p = 0: one step of 0.25 moves p to 1.5.
/// let loss = p.add_scalar(-3.0)?.square()?.sum_all()?;
/// opt.step(&loss.backward()?)?;
/// assert_eq!(p.to_vec::<f64>()?, [1.5]);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub struct Sgd {
    groups: Vec<ParamGroup>,
    config: SgdConfig,
    /// Momentum buffers, created on a parameter's first step.
    buffers: BTreeMap<String, Tensor>,
}

impl Sgd {
    /// An optimiser over `groups`. Nesterov momentum without positive momentum and zero
    /// dampening is an error.
    pub fn new(groups: Vec<ParamGroup>, config: SgdConfig) -> Result<Self> {
        if config.nesterov && (config.momentum <= 0.0 || config.dampening != 0.0) {
            return Err(Error::InvalidArgument {
                op: "Sgd::new",
                reason: "Nesterov momentum needs momentum > 0 and zero dampening".into(),
            });
        }
        Ok(Sgd {
            groups,
            config,
            buffers: BTreeMap::new(),
        })
    }

    /// The current momentum.
    pub fn momentum(&self) -> f64 {
        self.config.momentum
    }

    /// Changes the momentum from the next step on, keeping the buffers (schedules that ramp
    /// momentum, as the GAN 2014 reference configuration does).
    pub fn set_momentum(&mut self, momentum: f64) {
        self.config.momentum = momentum;
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        let c = self.config;
        for group in &self.groups {
            for (name, p) in &group.params {
                let Some(g) = grads.get(p) else { continue };
                let first = !self.buffers.contains_key(name);
                if first {
                    self.buffers.insert(name.clone(), p.zeros_like()?);
                }
                let h = SgdStep {
                    lr: group.lr,
                    momentum: c.momentum,
                    dampening: c.dampening,
                    weight_decay: c.weight_decay,
                    nesterov: c.nesterov,
                    first,
                };
                p.sgd_step_(g, &self.buffers[name], h)?;
            }
        }
        Ok(())
    }

    fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    fn set_lr(&mut self, group: usize, lr: f64) {
        if let Some(g) = self.groups.get_mut(group) {
            g.lr = lr;
        }
    }

    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.buffers
            .iter()
            .map(|(n, b)| (format!("{n}.momentum_buffer"), b.clone()))
            .collect()
    }

    fn load_state_tensors(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        self.buffers.clear();
        for (key, t) in state {
            if let Some(name) = key.strip_suffix(".momentum_buffer") {
                // The buffer lives on its parameter's device (a checkpoint loads on the host).
                let device = self
                    .groups
                    .iter()
                    .flat_map(|g| &g.params)
                    .find(|(n, _)| n == name)
                    .map_or(t.device(), |(_, p)| p.device());
                self.buffers.insert(
                    name.to_string(),
                    // A copy: the buffer is updated in place, and state handed over from another
                    // optimiser (an in-memory checkpoint) must not move with it.
                    t.deep_copy()?.to_device(device)?.detach(),
                );
            }
        }
        Ok(())
    }
}
