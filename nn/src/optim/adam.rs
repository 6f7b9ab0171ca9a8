use super::{Optimizer, ParamGroup};
use saddle_engine::ops::optim::AdamStep;
use saddle_engine::{Error, Grads, Result, Tensor};
use std::collections::BTreeMap;

/// Adam / AdamW hyper-parameters (PyTorch's defaults).
#[derive(Clone, Copy, Debug)]
pub struct AdamConfig {
    /// Decay of the running mean of the gradient (0.9).
    pub beta1: f64,
    /// Decay of the running mean of the squared gradient (0.999).
    pub beta2: f64,
    /// Added to the denominator's square root (1e-8).
    pub eps: f64,
    /// Weight decay (0): an L2 term in the gradient, or AdamW's decoupled decay.
    pub weight_decay: f64,
    /// AdamW's decoupled weight decay instead of L2 added to the gradient.
    pub decoupled_weight_decay: bool,
    /// AMSGrad: divide by the running maximum of the second moment.
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            amsgrad: false,
        }
    }
}

impl AdamConfig {
    /// AdamW with PyTorch's default decay of 0.01.
    pub fn adamw() -> Self {
        AdamConfig {
            weight_decay: 0.01,
            decoupled_weight_decay: true,
            ..Self::default()
        }
    }
}

struct Moments {
    step: u64,
    m: Tensor,
    v: Tensor,
    vmax: Option<Tensor>,
}

/// Adam (Kingma & Ba) and AdamW (Loshchilov & Hutter).
///
/// Moments are created on a parameter's first step, next to it; a parameter without a
/// gradient in a step is left alone.
///
/// ```
/// use saddle_nn::engine::{Device, Tensor};
/// use saddle_nn::optim::{Adam, AdamConfig, Optimizer};
///
/// let p = Tensor::from_vec(vec![1.0f64, -2.0], &[2], Device::Cpu)?.with_requires_grad(true);
/// let q = Tensor::from_vec(vec![1.0f64], &[1], Device::Cpu)?.with_requires_grad(true);
/// let mut adam = Adam::with_lr(vec![("p".into(), p.clone())], 0.1, AdamConfig::default());
/// let mut adamw = Adam::with_lr(vec![("q".into(), q.clone())], 0.1, AdamConfig::adamw());
/// let loss = p.square()?.sum_all()?.add(&q.square()?.sum_all()?)?;
/// let grads = loss.backward()?;
/// adam.step(&grads)?;
/// adamw.step(&grads)?;
/// // Adam's first step moves each value by about lr against its gradient's sign...
/// let p = p.to_vec::<f64>()?;
/// assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] + 1.9).abs() < 1e-6);
/// // ...and AdamW first shrinks the value by lr · weight_decay = 0.1%.
/// assert!((q.to_vec::<f64>()?[0] - (0.999 - 0.1)).abs() < 1e-6);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub struct Adam {
    groups: Vec<ParamGroup>,
    config: AdamConfig,
    state: BTreeMap<String, Moments>,
}

impl Adam {
    /// An optimiser over `groups` with hyper-parameters `config`.
    pub fn new(groups: Vec<ParamGroup>, config: AdamConfig) -> Self {
        Adam {
            groups,
            config,
            state: BTreeMap::new(),
        }
    }

    /// One group of parameters at one learning rate.
    pub fn with_lr(params: Vec<(String, Tensor)>, lr: f64, config: AdamConfig) -> Self {
        Self::new(vec![ParamGroup::new(params, lr)], config)
    }
}

impl Optimizer for Adam {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        let c = self.config;
        for group in &self.groups {
            for (name, p) in &group.params {
                let Some(g) = grads.get(p) else { continue };
                let st = match self.state.get_mut(name) {
                    Some(st) => st,
                    None => {
                        let moments = Moments {
                            step: 0,
                            m: p.zeros_like()?,
                            v: p.zeros_like()?,
                            vmax: if c.amsgrad {
                                Some(p.zeros_like()?)
                            } else {
                                None
                            },
                        };
                        self.state.entry(name.clone()).or_insert(moments)
                    }
                };
                st.step += 1;
                let h = AdamStep {
                    lr: group.lr,
                    beta1: c.beta1,
                    beta2: c.beta2,
                    eps: c.eps,
                    weight_decay: c.weight_decay,
                    decoupled: c.decoupled_weight_decay,
                    step: st.step,
                };
                p.adam_step_(g, &st.m, &st.v, st.vmax.as_ref(), h)?;
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
        let mut out = Vec::new();
        for (name, st) in &self.state {
            out.push((format!("{name}.step"), Tensor::scalar(st.step as f64)));
            out.push((format!("{name}.exp_avg"), st.m.clone()));
            out.push((format!("{name}.exp_avg_sq"), st.v.clone()));
            if let Some(vm) = &st.vmax {
                out.push((format!("{name}.max_exp_avg_sq"), vm.clone()));
            }
        }
        out
    }

    fn load_state_tensors(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let find = |key: String| -> Result<Tensor> {
            state
                .iter()
                .find(|(n, _)| *n == key)
                // A copy: the optimiser updates its moments in place, and state handed over
                // from another optimiser (an in-memory checkpoint) must not move with it.
                .map(|(_, t)| t.deep_copy())
                .transpose()?
                .ok_or_else(|| Error::InvalidArgument {
                    op: "Adam::load_state_tensors",
                    reason: format!("missing `{key}`"),
                })
        };
        self.state.clear();
        for group in &self.groups {
            for (name, param) in &group.params {
                // Moments live on their parameter's device (a checkpoint loads on the host).
                let find = |key: String| -> Result<Tensor> {
                    Ok(find(key)?.to_device(param.device())?.detach())
                };
                if !state.iter().any(|(n, _)| *n == format!("{name}.step")) {
                    continue; // never stepped
                }
                let step = find(format!("{name}.step"))?.to_scalar()? as u64;
                let vmax = if self.config.amsgrad {
                    Some(find(format!("{name}.max_exp_avg_sq"))?.detach())
                } else {
                    None
                };
                let m = find(format!("{name}.exp_avg"))?.detach();
                let v = find(format!("{name}.exp_avg_sq"))?.detach();
                self.state
                    .insert(name.clone(), Moments { step, m, v, vmax });
            }
        }
        Ok(())
    }
}
