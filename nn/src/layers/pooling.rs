use crate::{Module, Slot};
use saddle_engine::{Result, Tensor};

/// How a pooling window is reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Avg,
    Max,
    Sum,
}

/// Square-window pooling on NCHW (`padding` is ignored by sum pooling).
#[derive(Clone, Copy, Debug)]
pub struct Pool2d {
    pub kind: PoolKind,
    pub kernel: usize,
    pub stride: usize,
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
#[derive(Clone, Copy, Debug)]
pub struct GlobalPool2d {
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

/// Nearest-neighbour upsampling of NCHW by an integer factor.
#[derive(Clone, Copy, Debug)]
pub struct UpsampleNearest2d {
    pub scale: usize,
}

impl Module for UpsampleNearest2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.upsample_nearest2d(self.scale)
    }
    fn visit(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Tensor, Slot)) {}
}
