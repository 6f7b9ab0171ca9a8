use crate::{Module, Slot};
use saddle_engine::{Result, Tensor};

/// How a pooling window is reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// The mean; the divisor is always `kernel²`, padded cells included (PyTorch's default).
    Avg,
    /// The maximum.
    Max,
    /// The sum.
    Sum,
}

/// Square-window pooling on NCHW (`padding` is ignored by sum pooling).
///
/// Input `[N, C, H, W]`, output `[N, C, (H + 2·padding − kernel) / stride + 1, ...]` (likewise
/// for W, rounded down).
///
/// ```
/// use saddle_nn::engine::{Device, Tensor};
/// use saddle_nn::{Module, Pool2d, PoolKind};
///
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[1, 1, 2, 2], Device::Cpu)?;
/// let max = Pool2d { kind: PoolKind::Max, kernel: 2, stride: 2, padding: 0 };
/// let avg = Pool2d { kind: PoolKind::Avg, ..max };
/// assert_eq!(max.forward(&x)?.shape(), &[1, 1, 1, 1]);
/// assert_eq!(max.forward(&x)?.to_vec::<f32>()?, [4.0]);
/// assert_eq!(avg.forward(&x)?.to_vec::<f32>()?, [2.5]);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Pool2d {
    /// How each window is reduced.
    pub kind: PoolKind,
    /// The window's side.
    pub kernel: usize,
    /// How far the window moves between outputs.
    pub stride: usize,
    /// Border added on each side (at most `kernel / 2`; not used by [`PoolKind::Sum`]).
    pub padding: usize,
}

impl Module for Pool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self.kind {
            PoolKind::Avg => x.avg_pool2d(self.kernel, self.stride, self.padding),
            PoolKind::Max => x.max_pool2d(self.kernel, self.stride, self.padding),
            PoolKind::Sum => x.sum_pool2d(self.kernel, self.stride),
        }
    }
    fn visit(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Tensor, Slot)) {}
}

/// Pooling over all of H×W: `[N, C, H, W] -> [N, C]` (BigGAN's discriminator ends with a
/// global sum pool).
///
/// ```
/// use saddle_nn::engine::{Device, Tensor};
/// use saddle_nn::{GlobalPool2d, Module, PoolKind};
///
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[1, 1, 2, 2], Device::Cpu)?;
/// let y = GlobalPool2d { kind: PoolKind::Sum }.forward(&x)?;
/// assert_eq!(y.shape(), &[1, 1]);
/// assert_eq!(y.to_vec::<f32>()?, [10.0]);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct GlobalPool2d {
    /// How each plane is reduced.
    pub kind: PoolKind,
}

impl Module for GlobalPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self.kind {
            PoolKind::Avg => x.global_avg_pool2d(),
            PoolKind::Max => x.global_max_pool2d(),
            PoolKind::Sum => x.global_sum_pool2d(),
        }
    }
    fn visit(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Tensor, Slot)) {}
}

/// Nearest-neighbour upsampling of NCHW by an integer factor:
/// `[N, C, H, W] -> [N, C, scale·H, scale·W]`, each value repeated over a `scale x scale` block.
///
/// ```
/// use saddle_nn::engine::{Device, Tensor};
/// use saddle_nn::{Module, UpsampleNearest2d};
///
/// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 1, 1, 2], Device::Cpu)?;
/// let y = UpsampleNearest2d { scale: 2 }.forward(&x)?;
/// assert_eq!(y.shape(), &[1, 1, 2, 4]);
/// assert_eq!(y.to_vec::<f32>()?, [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct UpsampleNearest2d {
    /// The factor H and W are multiplied by (at least 1).
    pub scale: usize,
}

impl Module for UpsampleNearest2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.upsample_nearest2d(self.scale)
    }
    fn visit(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Tensor, Slot)) {}
}
