use crate::{Module, Slot};
use saddle_engine::{Result, Tensor};

/// Parameter-free elementwise activations as modules (for [`crate::Sequential`]). The output
/// has the input's shape.
///
/// ```
/// use saddle_nn::engine::{Device, Tensor};
/// use saddle_nn::{Activation, Module};
///
/// let x = Tensor::from_vec(vec![-2.0f32, 0.0, 3.0], &[3], Device::Cpu)?;
/// assert_eq!(Activation::Relu.forward(&x)?.to_vec::<f32>()?, [0.0, 0.0, 3.0]);
/// assert_eq!(Activation::LeakyRelu(0.5).forward(&x)?.to_vec::<f32>()?, [-1.0, 0.0, 3.0]);
/// assert_eq!(Activation::Sigmoid.forward(&x)?.to_vec::<f32>()?[1], 0.5);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `x` for positive `x`, `slope · x` otherwise.
    LeakyRelu(f64),
    /// `x` for positive `x`, `alpha · (eˣ − 1)` otherwise.
    Elu(f64),
    /// `1 / (1 + e⁻ˣ)`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// `ln(1 + eˣ)`.
    Softplus,
    /// The input unchanged.
    Identity,
}

impl Module for Activation {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match *self {
            Activation::Relu => x.relu(),
            Activation::LeakyRelu(slope) => x.leaky_relu(slope),
            Activation::Elu(alpha) => x.elu(alpha),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
            Activation::Softplus => x.softplus(),
            Activation::Identity => Ok(x.clone()),
        }
    }

    fn visit(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Tensor, Slot)) {}
}
