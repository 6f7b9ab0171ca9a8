//! Launchers for `cuda/norm.cu`: batch-norm statistics, normalise-and-affine, and the fused
//! backward, on the CPU kernels' [`Channels`] geometry.

use super::{check_len, launch, u32_size};
use crate::cuda::{CudaDevice, CudaError, CudaFloat, KernelModule};
use crate::geometry::Channels;
use cudarc::driver::{CudaSlice, LaunchConfig};

const THREADS: u32 = 256;

fn per_channel_cfg(channels: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (channels as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn check_geo(op: &'static str, geo: Channels) -> Result<(), CudaError> {
    u32_size(op, geo.numel())?;
    if geo.channels > 65_535 * 32_768 {
        return Err(CudaError::invalid(op, "too many channels"));
    }
    Ok(())
}

/// Per-channel mean and biased variance of `x` (`mean`, `var`: `channels` elements each).
pub fn batch_norm_stats<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    geo: Channels,
    mean: &mut CudaSlice<T>,
    var: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda batch_norm stats";
    check_geo(OP, geo)?;
    check_len(OP, "x", x, geo.numel())?;
    check_len(OP, "mean", mean, geo.channels)?;
    check_len(OP, "var", var, geo.channels)?;
    if geo.per_channel() == 0 {
        return Err(CudaError::invalid(OP, "no values per channel"));
    }
    if geo.channels == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Norm, &format!("bn_stats_{}", T::SUFFIX))?;
    let (o, c, i) = (geo.outer as u32, geo.channels as u32, geo.inner as u32);
    launch!(dev, f, per_channel_cfg(geo.channels), OP; &o, &c, &i, x, mean, var)
}

/// `y = (x − mean[c]) · scale[c] + shift[c]`.
pub fn batch_norm_apply<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    geo: Channels,
    mean: &CudaSlice<T>,
    scale: &CudaSlice<T>,
    shift: &CudaSlice<T>,
    y: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda batch_norm apply";
    check_geo(OP, geo)?;
    check_len(OP, "x", x, geo.numel())?;
    for (what, b) in [("mean", mean), ("scale", scale), ("shift", shift)] {
        check_len(OP, what, b, geo.channels)?;
    }
    check_len(OP, "y", y, geo.numel())?;
    if geo.numel() == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Norm, &format!("bn_apply_{}", T::SUFFIX))?;
    let (n, c, i) = (geo.numel() as u32, geo.channels as u32, geo.inner as u32);
    launch!(dev, f, dev.grid_1d(geo.numel(), 256), OP; &n, &c, &i, x, mean, scale, shift, y)
}

/// Per channel `sum_dy = Σ dy` and `sum_dy_xhat = Σ dy · (x − mean) · invstd` (dbeta, dgamma).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_grad_sums<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    dy: &CudaSlice<T>,
    geo: Channels,
    mean: &CudaSlice<T>,
    invstd: &CudaSlice<T>,
    sum_dy: &mut CudaSlice<T>,
    sum_dy_xhat: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda batch_norm grad sums";
    check_geo(OP, geo)?;
    check_len(OP, "x", x, geo.numel())?;
    check_len(OP, "dy", dy, geo.numel())?;
    for (what, b) in [("mean", mean), ("invstd", invstd)] {
        check_len(OP, what, b, geo.channels)?;
    }
    check_len(OP, "sum_dy", sum_dy, geo.channels)?;
    check_len(OP, "sum_dy_xhat", sum_dy_xhat, geo.channels)?;
    if geo.channels == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Norm, &format!("bn_grad_sums_{}", T::SUFFIX))?;
    let (o, c, i) = (geo.outer as u32, geo.channels as u32, geo.inner as u32);
    launch!(dev, f, per_channel_cfg(geo.channels), OP;
        &o, &c, &i, x, dy, mean, invstd, sum_dy, sum_dy_xhat)
}

/// Training-mode batch-norm input gradient from the sums of [`batch_norm_grad_sums`]
/// (`gamma = None` means no affine weight).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_input_grad<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    dy: &CudaSlice<T>,
    geo: Channels,
    mean: &CudaSlice<T>,
    invstd: &CudaSlice<T>,
    gamma: Option<&CudaSlice<T>>,
    sum_dy: &CudaSlice<T>,
    sum_dy_xhat: &CudaSlice<T>,
    dx: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda batch_norm input grad";
    check_geo(OP, geo)?;
    check_len(OP, "x", x, geo.numel())?;
    check_len(OP, "dy", dy, geo.numel())?;
    for (what, b) in [
        ("mean", mean),
        ("invstd", invstd),
        ("sum_dy", sum_dy),
        ("sum_dy_xhat", sum_dy_xhat),
    ] {
        check_len(OP, what, b, geo.channels)?;
    }
    if let Some(gm) = gamma {
        check_len(OP, "gamma", gm, geo.channels)?;
    }
    check_len(OP, "dx", dx, geo.numel())?;
    if geo.numel() == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Norm, &format!("bn_input_grad_{}", T::SUFFIX))?;
    let (n, c, i, m) = (
        geo.numel() as u32,
        geo.channels as u32,
        geo.inner as u32,
        geo.per_channel() as u32,
    );
    let cfg = dev.grid_1d(geo.numel(), 256);
    let null = 0u64;
    match gamma {
        Some(gm) => launch!(dev, f, cfg, OP;
            &n, &c, &i, &m, x, dy, mean, invstd, gm, sum_dy, sum_dy_xhat, dx),
        None => launch!(dev, f, cfg, OP;
            &n, &c, &i, &m, x, dy, mean, invstd, &null, sum_dy, sum_dy_xhat, dx),
    }
}
