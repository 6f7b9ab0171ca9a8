//! Exponential moving average of a module's weights (BigGAN samples from the EMA generator).

use crate::{Module, Slot};
use saddle_engine::{Error, Result, Tensor};

/// Shadow copies of a module's parameters, updated as `shadow = decay·shadow + (1−decay)·param`
/// from `start_step` on, and plainly copied before it (BigGAN starts its EMA after 20k steps).
/// Buffers (running statistics, spectral-norm vectors) are copied, not averaged.
///
/// The module passed to [`Ema::update`] and [`Ema::copy_to`] must have the same tensors, by
/// name and order, as the one the average was made from (an error otherwise).
///
/// ```
/// use saddle_nn::engine::{Device, Tensor};
/// use saddle_nn::{Ema, Linear};
///
/// let w = |v: f32| Tensor::from_vec(vec![v], &[1, 1], Device::Cpu);
/// let live = Linear::from_weights(w(0.0)?, None)?;
/// let ema = Ema::new(&live, 0.9, 0)?;
/// live.weight.assign(&w(10.0)?)?; // an optimiser step
/// ema.update(&live, 1)?;
/// // 0.9 · 0 + 0.1 · 10
/// let eval_copy = Linear::from_weights(w(0.0)?, None)?;
/// ema.copy_to(&eval_copy)?;
/// assert!((eval_copy.weight.to_vec::<f32>()?[0] - 1.0).abs() < 1e-6);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub struct Ema {
    /// Weight of the old average in each update, in `[0, 1]`.
    pub decay: f64,
    /// The first step that averages; earlier updates copy the parameters.
    pub start_step: u64,
    shadow: Vec<(String, Tensor, Slot)>,
}

impl Ema {
    /// Starts the average at `module`'s current values. A `decay` outside `[0, 1]` is an error.
    pub fn new(module: &dyn Module, decay: f64, start_step: u64) -> Result<Self> {
        if !(0.0..=1.0).contains(&decay) {
            return Err(Error::InvalidArgument {
                op: "Ema::new",
                reason: format!("decay {decay} not in [0, 1]"),
            });
        }
        let mut shadow = Vec::new();
        let mut failure = None;
        module.visit("", &mut |name, t, slot| match t.deep_copy() {
            Ok(copy) => shadow.push((name, copy, slot)),
            Err(e) => failure = Some(e),
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(Ema {
                decay,
                start_step,
                shadow,
            }),
        }
    }

    /// Folds `module`'s current values into the average after optimiser step `step`.
    pub fn update(&self, module: &dyn Module, step: u64) -> Result<()> {
        let averaging = step >= self.start_step;
        self.for_pairs(module, |shadow, live, slot| {
            if averaging && slot == Slot::Parameter {
                let mixed = shadow
                    .mul_scalar(self.decay)?
                    .add(&live.mul_scalar(1.0 - self.decay)?)?;
                shadow.assign(&mixed)
            } else {
                shadow.assign(live)
            }
        })
    }

    /// Writes the averaged values into `target` (a module of the same structure, e.g. an
    /// evaluation copy of the generator).
    pub fn copy_to(&self, target: &dyn Module) -> Result<()> {
        self.for_pairs(target, |shadow, live, _| live.assign(shadow))
    }

    /// The averaged tensors with their names (for checkpoints).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        self.shadow
            .iter()
            .map(|(n, t, _)| (n.clone(), t.clone()))
            .collect()
    }

    fn for_pairs(
        &self,
        module: &dyn Module,
        mut f: impl FnMut(&Tensor, &Tensor, Slot) -> Result<()>,
    ) -> Result<()> {
        let mut live = Vec::new();
        module.visit("", &mut |name, t, _| live.push((name, t.clone())));
        if live.len() != self.shadow.len() {
            return Err(Error::InvalidArgument {
                op: "Ema",
                reason: format!(
                    "module has {} tensors, the average {}",
                    live.len(),
                    self.shadow.len()
                ),
            });
        }
        saddle_engine::no_grad(|| {
            for ((name, t), (shadow_name, shadow, slot)) in live.iter().zip(&self.shadow) {
                if name != shadow_name {
                    return Err(Error::InvalidArgument {
                        op: "Ema",
                        reason: format!("tensor `{name}` where the average has `{shadow_name}`"),
                    });
                }
                f(shadow, t, *slot)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Linear;
    use saddle_engine::{Device, Tensor};

    #[test]
    fn copies_before_start_then_averages() {
        let w = Tensor::from_vec(vec![1.0f64, 2.0], &[1, 2], Device::Cpu).unwrap();
        let lin = Linear::from_weights(w, None).unwrap();
        let ema = Ema::new(&lin, 0.9, 2).unwrap();
        lin.weight
            .assign(&Tensor::from_vec(vec![3.0f64, 4.0], &[1, 2], Device::Cpu).unwrap())
            .unwrap();
        ema.update(&lin, 1).unwrap(); // before start: copy
        assert_eq!(
            ema.named_tensors()[0].1.to_vec::<f64>().unwrap(),
            vec![3.0, 4.0]
        );
        lin.weight
            .assign(&Tensor::from_vec(vec![13.0f64, 14.0], &[1, 2], Device::Cpu).unwrap())
            .unwrap();
        ema.update(&lin, 2).unwrap(); // 0.9 * 3 + 0.1 * 13 = 4, 0.9 * 4 + 0.1 * 14 = 5
        let avg = ema.named_tensors()[0].1.to_vec::<f64>().unwrap();
        assert!(
            (avg[0] - 4.0).abs() < 1e-12 && (avg[1] - 5.0).abs() < 1e-12,
            "{avg:?}"
        );
        let target = Linear::from_weights(
            Tensor::from_vec(vec![0.0f64, 0.0], &[1, 2], Device::Cpu).unwrap(),
            None,
        )
        .unwrap();
        ema.copy_to(&target).unwrap();
        assert_eq!(target.weight.to_vec::<f64>().unwrap(), avg);
    }
}
