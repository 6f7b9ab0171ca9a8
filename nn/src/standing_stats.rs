//! BigGAN's "standing statistics": before sampling, batch norm's running statistics are
//! re-estimated from many generated batches instead of the exponential average left over from
//! training, which lags behind the weights.

use crate::Module;
use saddle_engine::{no_grad, Error, Result};

/// Re-estimates the running statistics of every batch norm in `module` (conditional batch
/// norm's included) from `batches` forward passes made by `forward(module, i)`.
///
/// Each batch norm's statistics are reset, its momentum set to `None` (a cumulative average, so
/// every batch weighs the same) and it is put in training mode; the passes run under
/// [`no_grad`]. Afterwards each batch norm gets back its own momentum and train/eval mode, even
/// when a pass fails. Other layers keep their mode (dropout stays off in an evaluation-mode
/// module), so the closure sees the module as the caller left it apart from batch norm.
///
/// The resulting running mean is the mean of the batches' means and the running variance the
/// mean of their unbiased variances (PyTorch's `momentum=None` rule, as BigGAN's code uses).
///
/// Zero `batches` is an error, as is the first error `forward` returns (which stops the passes).
///
/// ```
/// use saddle_nn::engine::{DType, Device, Tensor};
/// use saddle_nn::{standing_stats, BatchNorm, Module, ModuleExt, Sequential};
///
/// let mut net = Sequential::new().push(BatchNorm::new_1d(1, false, DType::F32)?);
/// net.set_training(false);
/// let batches = [[1.0f32, 3.0], [5.0, 7.0]];
/// standing_stats(&mut net, 2, |net, i| {
///     net.forward(&Tensor::from_vec(batches[i].to_vec(), &[2, 1], Device::Cpu)?)?;
///     Ok(())
/// })?;
/// // The mean of the batch means (2 and 6) and of the unbiased variances (2 and 2).
/// let buffers = net.named_buffers();
/// assert_eq!(buffers[0].0, "0.running_mean");
/// assert_eq!(buffers[0].1.to_vec::<f32>()?, [4.0]);
/// assert_eq!(buffers[1].1.to_vec::<f32>()?, [2.0]);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub fn standing_stats<M: Module + ?Sized>(
    module: &mut M,
    batches: usize,
    mut forward: impl FnMut(&M, usize) -> Result<()>,
) -> Result<()> {
    if batches == 0 {
        return Err(Error::InvalidArgument {
            op: "standing_stats",
            reason: "needs at least one batch (zero would leave the statistics reset to 0 and 1)"
                .into(),
        });
    }
    let mut saved = Vec::new();
    let mut reset = Ok(());
    module.visit_batch_norms(&mut |bn| {
        saved.push((bn.momentum, bn.is_training()));
        bn.momentum = None;
        bn.set_training(true);
        if reset.is_ok() {
            reset = bn.reset_running_stats();
        }
    });
    let outcome = reset.and_then(|()| {
        let module: &M = module;
        no_grad(|| (0..batches).try_for_each(|i| forward(module, i)))
    });
    let mut saved = saved.into_iter();
    module.visit_batch_norms(&mut |bn| {
        if let Some((momentum, training)) = saved.next() {
            bn.momentum = momentum;
            bn.set_training(training);
        }
    });
    outcome
}
