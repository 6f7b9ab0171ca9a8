use crate::{child_name, Module, Slot};
use saddle_engine::{Result, Tensor};

/// Modules applied in order; children are named `0`, `1`, ... as in PyTorch's `nn.Sequential`.
///
/// ```
/// use saddle_nn::engine::{DType, Device, Rng, Tensor};
/// use saddle_nn::{Activation, Linear, Module, ModuleExt, Sequential};
///
/// let mut rng = Rng::new(0);
/// let mlp = Sequential::new()
///     .push(Linear::new(4, 8, true, DType::F32, &mut rng)?)
///     .push(Activation::Relu)
///     .push(Linear::new(8, 1, true, DType::F32, &mut rng)?);
/// let x = Tensor::zeros(&[5, 4], DType::F32, Device::Cpu)?;
/// assert_eq!(mlp.forward(&x)?.shape(), &[5, 1]);
/// // Every layer's output, in order: [5, 8], [5, 8], [5, 1].
/// assert_eq!(mlp.forward_all(&x)?[1].shape(), &[5, 8]);
/// let names: Vec<String> = mlp.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty container (the identity until layers are pushed).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a layer (builder style).
    pub fn push(mut self, layer: impl Module + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The output of every layer, in order (the last is `forward`'s result): for features from
    /// inside a network, e.g. a discriminator's activations for a linear probe.
    pub fn forward_all(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut outputs: Vec<Tensor> = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let h = layer.forward(outputs.last().unwrap_or(x))?;
            outputs.push(h);
        }
        Ok(outputs)
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for layer in &self.layers {
            h = layer.forward(&h)?;
        }
        Ok(h)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        for (i, layer) in self.layers.iter().enumerate() {
            layer.visit(&child_name(prefix, &i.to_string()), f);
        }
    }

    fn set_training(&mut self, training: bool) {
        for layer in &mut self.layers {
            layer.set_training(training);
        }
    }

    fn visit_batch_norms(&mut self, f: &mut dyn FnMut(&mut crate::BatchNorm)) {
        for layer in &mut self.layers {
            layer.visit_batch_norms(f);
        }
    }
}
