//! Launchers for `cuda/loss.cu`: mean binary cross-entropy with logits and its gradient.

use super::reduce::{reduce, ReduceOp};
use super::{check_len, launch, scratch, u32_size};
use crate::cuda::{CudaDevice, CudaError, CudaFloat, KernelModule};
use crate::geometry::Lanes;
use cudarc::driver::{CudaSlice, LaunchConfig};

/// Elements per partial sum (`LOSS_CHUNK` in loss.cu).
const CHUNK: usize = 4096;

/// `out[0] = mean(bce_with_logits(x, t))` over `n` elements, without leaving the device.
pub fn bce_with_logits_mean<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    t: &CudaSlice<T>,
    n: usize,
    out: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda bce_with_logits";
    let n32 = u32_size(OP, n)?;
    if n == 0 {
        return Err(CudaError::invalid(OP, "the mean of no elements"));
    }
    check_len(OP, "x", x, n)?;
    check_len(OP, "target", t, n)?;
    check_len(OP, "out", out, 1)?;
    let chunks = n.div_ceil(CHUNK);
    let mut partial = scratch::<T>(dev, chunks)?;
    let f = dev.function(
        KernelModule::Loss,
        &format!("bce_logits_partial_{}", T::SUFFIX),
    )?;
    let cfg = LaunchConfig {
        grid_dim: (chunks as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    launch!(dev, f, cfg, OP; &n32, x, t, &mut *partial)?;
    // Sum of partials times 1/n: a mean over the row of partials rescaled by chunks / n.
    let lanes = Lanes {
        outer: 1,
        n: chunks,
        inner: 1,
    };
    let mut total = scratch::<T>(dev, 1)?;
    reduce(dev, ReduceOp::Sum, &partial, lanes, &mut total)?;
    super::elementwise::unary(
        dev,
        super::elementwise::UnaryOp::Affine(1.0 / n as f64, 0.0),
        &total,
        super::elementwise::View {
            shape: &[1],
            strides: &[1],
            offset: 0,
        },
        out,
    )
}

/// `dx = (sigmoid(x) − t) · g[0] · scale` (`scale = 1/n` for the mean's gradient); `g` is the
/// upstream gradient, read on the device.
pub fn bce_with_logits_grad<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    t: &CudaSlice<T>,
    g: &CudaSlice<T>,
    scale: T,
    n: usize,
    dx: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda bce_with_logits backward";
    let n32 = u32_size(OP, n)?;
    check_len(OP, "x", x, n)?;
    check_len(OP, "target", t, n)?;
    check_len(OP, "g", g, 1)?;
    check_len(OP, "dx", dx, n)?;
    if n == 0 {
        return Ok(());
    }
    let f = dev.function(
        KernelModule::Loss,
        &format!("bce_logits_grad_{}", T::SUFFIX),
    )?;
    launch!(dev, f, dev.grid_1d(n, 256), OP; &n32, x, t, g, &scale, dx)
}
