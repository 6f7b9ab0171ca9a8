use crate::init;
use crate::{child_name, Module, Slot};
use saddle_engine::{DType, Error, Result, Rng, Tensor};

/// `y = x Wᵀ + b` over the last dimension. `weight` is `[out, in]` and `bias` `[out]`, as in
/// PyTorch; both start as PyTorch's defaults (U(±1/sqrt(in))).
///
/// Input `[..., in]`, output `[..., out]`; any other last dimension is an error.
///
/// ```
/// use saddle_nn::engine::{Device, Tensor};
/// use saddle_nn::{Linear, Module};
///
/// // y = [1, 2] · [[1, 0], [1, 1]]ᵀ + [0.5, -0.5]
/// let w = Tensor::from_vec(vec![1.0f32, 0.0, 1.0, 1.0], &[2, 2], Device::Cpu)?;
/// let b = Tensor::from_vec(vec![0.5f32, -0.5], &[2], Device::Cpu)?;
/// let fc = Linear::from_weights(w, Some(b))?;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2], Device::Cpu)?;
/// assert_eq!(fc.forward(&x)?.to_vec::<f32>()?, [1.5, 2.5]);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub struct Linear {
    /// `[out, in]`.
    pub weight: Tensor,
    /// `[out]`, if the layer has one.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// A layer `in_features -> out_features` (with a bias when `bias`), initialised as
    /// PyTorch's `nn.Linear` from `rng`.
    pub fn new(
        in_features: usize,
        out_features: usize,
        bias: bool,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Self> {
        let weight = init::kaiming_uniform(
            &[out_features, in_features],
            5f64.sqrt(),
            init::FanMode::FanIn,
            dtype,
            rng,
        )?;
        let bound = 1.0 / (in_features.max(1) as f64).sqrt();
        let bias = if bias {
            Some(
                init::uniform(&[out_features], -bound, bound, dtype, rng)?.with_requires_grad(true),
            )
        } else {
            None
        };
        Ok(Linear {
            weight: weight.with_requires_grad(true),
            bias,
        })
    }

    /// A layer with the given weight `[out, in]` and optional bias `[out]` (both set to require
    /// gradients). A weight of another rank or a bias of another length is an error.
    pub fn from_weights(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        if weight.rank() != 2 {
            return Err(Error::BadShape {
                op: "Linear",
                shape: weight.shape().to_vec(),
                reason: "weight must be [out, in]".into(),
            });
        }
        if let Some(b) = &bias {
            if b.shape() != [weight.shape()[0]] {
                return Err(Error::ShapeMismatch {
                    op: "Linear",
                    lhs: weight.shape().to_vec(),
                    rhs: b.shape().to_vec(),
                    reason: "bias must be [out]".into(),
                });
            }
        }
        Ok(Linear {
            weight: weight.with_requires_grad(true),
            bias: bias.map(|b| b.with_requires_grad(true)),
        })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let in_features = self.weight.shape()[1];
        if x.rank() == 0 || x.shape()[x.rank() - 1] != in_features {
            return Err(Error::ShapeMismatch {
                op: "Linear",
                lhs: x.shape().to_vec(),
                rhs: self.weight.shape().to_vec(),
                reason: format!("input's last dimension must be {in_features}"),
            });
        }
        x.linear(&self.weight, self.bias.as_ref())
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        f(child_name(prefix, "weight"), &self.weight, Slot::Parameter);
        if let Some(b) = &self.bias {
            f(child_name(prefix, "bias"), b, Slot::Parameter);
        }
    }
}
