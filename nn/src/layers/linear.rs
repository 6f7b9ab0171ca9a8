use crate::init;
use crate::{child_name, Module, Slot};
use saddle_engine::{DType, Error, Result, Rng, Tensor};

/// `y = x Wᵀ + b` over the last dimension. `weight` is `[out, in]` and `bias` `[out]`, as in
/// PyTorch; both start as PyTorch's defaults (U(±1/sqrt(in))).
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
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

    /// A layer with the given weight `[out, in]` and optional bias `[out]`.
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
