//! Launchers for `cuda/softmax.cu`: softmax and log-softmax along the middle axis of
//! `[outer, n, inner]`, forward and backward.

use super::{check_len, launch, u32_size};
use crate::cuda::{CudaDevice, CudaError, CudaFloat, KernelModule};
use crate::geometry::Lanes;
use cudarc::driver::{CudaSlice, LaunchConfig};

fn stem(log: bool) -> &'static str {
    if log {
        "log_softmax"
    } else {
        "softmax"
    }
}

fn rows_cfg(rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// `y = softmax(x)` (or log-softmax when `log`) along the lanes.
pub fn softmax<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    lanes: Lanes,
    log: bool,
    y: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda softmax";
    u32_size(OP, lanes.numel())?;
    check_len(OP, "x", x, lanes.numel())?;
    check_len(OP, "y", y, lanes.numel())?;
    if lanes.numel() == 0 {
        return Ok(());
    }
    let n = lanes.n as u32;
    if lanes.inner == 1 {
        let f = dev.function(
            KernelModule::Softmax,
            &format!("{}_rows_{}", stem(log), T::SUFFIX),
        )?;
        launch!(dev, f, rows_cfg(lanes.outer), OP; &n, x, y)
    } else {
        let f = dev.function(
            KernelModule::Softmax,
            &format!("{}_cols_{}", stem(log), T::SUFFIX),
        )?;
        let (o, i) = (lanes.outer as u32, lanes.inner as u32);
        launch!(dev, f, dev.grid_1d(lanes.count(), 256), OP; &o, &n, &i, x, y)
    }
}

/// Input gradient from the forward's output `y` and the output gradient `g`.
pub fn softmax_backward<T: CudaFloat>(
    dev: &CudaDevice,
    y: &CudaSlice<T>,
    g: &CudaSlice<T>,
    lanes: Lanes,
    log: bool,
    dx: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda softmax backward";
    u32_size(OP, lanes.numel())?;
    check_len(OP, "y", y, lanes.numel())?;
    check_len(OP, "g", g, lanes.numel())?;
    check_len(OP, "dx", dx, lanes.numel())?;
    if lanes.numel() == 0 {
        return Ok(());
    }
    let n = lanes.n as u32;
    if lanes.inner == 1 {
        let name = format!("{}_bwd_rows_{}", stem(log), T::SUFFIX);
        let f = dev.function(KernelModule::Softmax, &name)?;
        launch!(dev, f, rows_cfg(lanes.outer), OP; &n, y, g, dx)
    } else {
        let name = format!("{}_bwd_cols_{}", stem(log), T::SUFFIX);
        let f = dev.function(KernelModule::Softmax, &name)?;
        let (o, i) = (lanes.outer as u32, lanes.inner as u32);
        launch!(dev, f, dev.grid_1d(lanes.count(), 256), OP; &o, &n, &i, y, g, dx)
    }
}
