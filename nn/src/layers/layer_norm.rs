use crate::{child_name, Module, Slot};
use saddle_engine::{DType, Device, Error, Result, Tensor};

/// Layer normalisation over the trailing `normalized_shape` dimensions with an elementwise
/// affine (`weight` ones, `bias` zeros at start), as PyTorch's `nn.LayerNorm`.
///
/// The input must end with `normalized_shape` (an error otherwise); the output has its shape.
/// Each slice over those trailing dimensions is shifted to mean 0 and scaled to variance 1
/// (biased, with `eps` added) before the affine.
///
/// ```
/// use saddle_nn::engine::{DType, Device, Tensor};
/// use saddle_nn::{LayerNorm, Module};
///
/// let norm = LayerNorm::new(&[4], 1e-5, DType::F32)?;
/// let rows = vec![1.0f32, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 10.0];
/// let x = Tensor::from_vec(rows, &[2, 4], Device::Cpu)?;
/// let y = norm.forward(&x)?.to_vec::<f32>()?;
/// // Each row comes out with mean 0; the constant row is all zeros.
/// assert!(y[..4].iter().sum::<f32>().abs() < 1e-5);
/// assert_eq!(y[4..], [0.0; 4]);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub struct LayerNorm {
    /// The trailing dimensions normalised over.
    pub normalized_shape: Vec<usize>,
    /// Added to the variance before the square root.
    pub eps: f64,
    /// Elementwise gain, of shape `normalized_shape`.
    pub weight: Tensor,
    /// Elementwise shift, of shape `normalized_shape`.
    pub bias: Tensor,
}

impl LayerNorm {
    /// Normalises over trailing dimensions `normalized_shape`, with affine parameters of that
    /// shape.
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
