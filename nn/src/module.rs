use crate::BatchNorm;
use saddle_engine::{Device, Error, Result, Tensor};

/// Whether a named tensor of a module is trained (a parameter) or tracked state (a buffer such
/// as batch norm's running mean or spectral norm's `u`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// A trained tensor: optimisers update it and checkpoints store it.
    Parameter,
    /// State that is not trained but is stored in checkpoints (running statistics, power
    /// iteration vectors).
    Buffer,
}

/// A layer or a model: a forward function plus named parameters and buffers.
///
/// Names are dotted paths as in PyTorch (`gen.block1.conv1.weight`) so checkpoints line up with
/// PyTorch's `state_dict`. Parameters and buffers are updated in place (optimisers, running
/// statistics), so a module is used through `&self` in forward.
///
/// A module of your own implements [`forward`](Module::forward) and [`visit`](Module::visit)
/// (forwarding `visit` to its children under their names), and gets
/// [`ModuleExt`]'s conveniences, checkpoints and the optimisers for free:
///
/// ```
/// use saddle_nn::engine::{DType, Result, Rng, Tensor};
/// use saddle_nn::{child_name, Activation, Linear, Module, ModuleExt, Slot};
///
/// /// `x + mlp(x)` over the last dimension.
/// struct Residual {
///     fc: Linear,
/// }
///
/// impl Module for Residual {
///     fn forward(&self, x: &Tensor) -> Result<Tensor> {
///         x.add(&Activation::Tanh.forward(&self.fc.forward(x)?)?)
///     }
///     fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
///         self.fc.visit(&child_name(prefix, "fc"), f);
///     }
/// }
///
/// let mut rng = Rng::new(0);
/// let block = Residual { fc: Linear::new(4, 4, true, DType::F32, &mut rng)? };
/// let names: Vec<String> = block.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["fc.weight", "fc.bias"]);
/// assert_eq!(block.num_parameters(), 4 * 4 + 4);
/// let x = Tensor::zeros(&[2, 4], DType::F32, saddle_nn::engine::Device::Cpu)?;
/// assert_eq!(block.forward(&x)?.shape(), &[2, 4]);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub trait Module: Send + Sync {
    /// Runs the module on `x`. Which shapes it takes is each layer's own (see its docs); the
    /// built-in layers return an error for a shape they cannot take.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Calls `f` for each parameter and buffer of this module and its children, with its full
    /// dotted name under `prefix`, in a fixed order.
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot));

    /// Switches between training (`true`) and evaluation mode, for this module and its
    /// children. Layers without mode-dependent behaviour keep the default no-op.
    fn set_training(&mut self, _training: bool) {}

    /// Calls `f` on every batch-norm layer in this module and its children (conditional batch
    /// norm's inner one included), so their statistics can be re-estimated from outside
    /// ([`crate::standing_stats`]). Containers forward it to their children exactly as they do
    /// `set_training`; the default no-op is right for every module that holds no batch norm.
    fn visit_batch_norms(&mut self, _f: &mut dyn FnMut(&mut BatchNorm)) {}
}

/// `prefix.name`, or `name` at the top level.
pub fn child_name(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Conveniences every module gets.
pub trait ModuleExt {
    /// All parameters with their names, in visiting order.
    fn named_parameters(&self) -> Vec<(String, Tensor)>;
    /// All buffers with their names, in visiting order.
    fn named_buffers(&self) -> Vec<(String, Tensor)>;
    /// Number of scalar parameters.
    fn num_parameters(&self) -> usize;
    /// Stops (or restarts) gradient tracking of every parameter, in place.
    fn set_frozen(&self, frozen: bool) -> Result<()>;
    /// Moves every parameter and buffer to `device` in place (ids unchanged, so optimisers
    /// built over the parameters keep working; their state is created on the parameters'
    /// device). Call it before training, while no views of the parameters exist.
    fn to_device(&self, device: Device) -> Result<()>;
}

impl<M: Module + ?Sized> ModuleExt for M {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit("", &mut |name, t, slot| {
            if slot == Slot::Parameter {
                out.push((name, t.clone()));
            }
        });
        out
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit("", &mut |name, t, slot| {
            if slot == Slot::Buffer {
                out.push((name, t.clone()));
            }
        });
        out
    }

    fn num_parameters(&self) -> usize {
        self.named_parameters().iter().map(|(_, t)| t.numel()).sum()
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        for (_, p) in self.named_parameters() {
            p.set_requires_grad(!frozen)?;
        }
        Ok(())
    }

    fn to_device(&self, device: Device) -> Result<()> {
        let mut tensors = Vec::new();
        self.visit("", &mut |name, t, _| tensors.push((name, t.clone())));
        for (name, t) in tensors {
            t.to_device_(device).map_err(|e| Error::InvalidArgument {
                op: "Module::to_device",
                reason: format!("{name}: {e}"),
            })?;
        }
        Ok(())
    }
}
