//! Launchers for `cuda/reduce.cu`: sum / mean / max / min along the middle axis of
//! `[outer, n, inner]`.

use super::{check_len, launch, scratch, u32_size};
use crate::cuda::{CudaDevice, CudaError, CudaFloat, KernelModule};
use crate::geometry::Lanes;
use cudarc::driver::{CudaSlice, CudaView, CudaViewMut, LaunchConfig};

/// Elements per row of the first pass when one long row is split (a block's worth of work:
/// 16 elements per thread).
pub const ROW_CHUNK: usize = 4096;
const THREADS: u32 = 256;

/// What a reduction computes over each lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// The sum.
    Sum,
    /// The sum divided by the lane length.
    Mean,
    /// The maximum.
    Max,
    /// The minimum.
    Min,
}

impl ReduceOp {
    fn stem(self) -> &'static str {
        match self {
            ReduceOp::Sum | ReduceOp::Mean => "sum",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
        }
    }
}

/// `y[o, i] = op_k x[o, k, i]`; `y` gets `outer · inner` elements. `n` must be positive.
pub fn reduce<T: CudaFloat>(
    dev: &CudaDevice,
    op: ReduceOp,
    x: &CudaSlice<T>,
    lanes: Lanes,
    y: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda reduce";
    let numel = lanes.numel();
    u32_size(OP, numel)?;
    if lanes.n == 0 {
        return Err(CudaError::invalid(OP, "cannot reduce an empty axis"));
    }
    check_len(OP, "input", x, numel)?;
    check_len(OP, "output", y, lanes.count())?;
    if numel == 0 {
        return Ok(());
    }
    let scale = if op == ReduceOp::Mean {
        T::ONE / T::from_usize(lanes.n)
    } else {
        T::ONE
    };
    if lanes.inner > 1 {
        let f = dev.function(
            KernelModule::Reduce,
            &format!("reduce_cols_{}_{}", op.stem(), T::SUFFIX),
        )?;
        let (o, n, i) = (lanes.outer as u32, lanes.n as u32, lanes.inner as u32);
        return launch!(dev, f, dev.grid_1d(lanes.count(), 256), OP; &o, &n, &i, x, y, &scale);
    }
    // Rows. Few long rows would leave most SMs idle: split them first, then reduce the partials.
    if lanes.outer < dev.sm_count() as usize && lanes.n > 2 * ROW_CHUNK {
        if lanes.outer != 1 {
            // Chunks would straddle rows; reduce row by row instead (each split in two passes).
            for o in 0..lanes.outer {
                let row = x.slice(o * lanes.n..(o + 1) * lanes.n);
                let mut out = y.slice_mut(o..o + 1);
                reduce_long_row(dev, op, &row, lanes.n, &mut out, scale)?;
            }
            return Ok(());
        }
        let mut out = y.slice_mut(0..1);
        return reduce_long_row(dev, op, &x.slice(0..lanes.n), lanes.n, &mut out, scale);
    }
    let mut out = y.slice_mut(..);
    rows_pass(
        dev,
        op,
        &x.slice(..),
        lanes.n,
        numel,
        lanes.outer,
        &mut out,
        scale,
    )
}

/// One block per row of `len` elements (the last row may be shorter: `total` bounds them).
#[allow(clippy::too_many_arguments)]
fn rows_pass<T: CudaFloat>(
    dev: &CudaDevice,
    op: ReduceOp,
    x: &CudaView<'_, T>,
    len: usize,
    total: usize,
    rows: usize,
    y: &mut CudaViewMut<'_, T>,
    scale: T,
) -> Result<(), CudaError> {
    const OP: &str = "cuda reduce";
    let f = dev.function(
        KernelModule::Reduce,
        &format!("reduce_rows_{}_{}", op.stem(), T::SUFFIX),
    )?;
    let cfg = LaunchConfig {
        grid_dim: (rows as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    let (len, total) = (len as u32, total as u64);
    launch!(dev, f, cfg, OP; &len, &total, x, y, &scale)
}

fn reduce_long_row<T: CudaFloat>(
    dev: &CudaDevice,
    op: ReduceOp,
    row: &CudaView<'_, T>,
    n: usize,
    y: &mut CudaViewMut<'_, T>,
    scale: T,
) -> Result<(), CudaError> {
    let chunks = n.div_ceil(ROW_CHUNK);
    let mut partial = scratch::<T>(dev, chunks)?;
    rows_pass(
        dev,
        op,
        row,
        ROW_CHUNK,
        n,
        chunks,
        &mut partial.slice_mut(..),
        T::ONE,
    )?;
    rows_pass(dev, op, &partial.slice(..), chunks, chunks, 1, y, scale)
}
