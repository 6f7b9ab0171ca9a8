use crate::{child_name, Module, Slot};
use saddle_engine::{DType, Device, Error, Result, Tensor};

/// Layer normalisation over the trailing `normalized_shape` dimensions with an elementwise
/// affine (`weight` ones, `bias` zeros at start), as PyTorch's `nn.LayerNorm`.
pub struct LayerNorm {
    pub normalized_shape: Vec<usize>,
    pub eps: f64,
    pub weight: Tensor,
    pub bias: Tensor,
}

impl LayerNorm {
    pub fn new(normalized_shape: &[usize], eps: f64, dtype: DType) -> Result<Self> {
        Ok(LayerNorm {
            normalized_shape: normalized_shape.to_vec(),
            eps,
            weight: Tensor::ones(normalized_shape, dtype, Device::Cpu)?.with_requires_grad(true),
            bias: Tensor::zeros(normalized_shape, dtype, Device::Cpu)?.with_requires_grad(true),
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let k = self.normalized_shape.len();
        if x.rank() < k || x.shape()[x.rank() - k..] != self.normalized_shape[..] {
            return Err(Error::ShapeMismatch {
                op: "LayerNorm",
                lhs: x.shape().to_vec(),
                rhs: self.normalized_shape.clone(),
                reason: "the input must end with the normalised shape".into(),
            });
        }
        let dims: Vec<usize> = (x.rank() - k..x.rank()).collect();
        let centred = x.sub(&x.mean(&dims, true)?)?;
        let inv_std = x
            .var(&dims, true, 0)?
            .add_scalar(self.eps)?
            .sqrt()?
            .recip()?;
        centred.mul(&inv_std)?.mul(&self.weight)?.add(&self.bias)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        f(child_name(prefix, "weight"), &self.weight, Slot::Parameter);
        f(child_name(prefix, "bias"), &self.bias, Slot::Parameter);
    }
}
