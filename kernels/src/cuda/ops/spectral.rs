//! Launcher for `cuda/spectral.cu`: one power-iteration step of spectral normalisation.

use super::{check_len, launch, scratch, u32_size};
use crate::cuda::{CudaDevice, CudaError, CudaFloat, KernelModule};
use cudarc::driver::{CudaSlice, LaunchConfig};

/// One step on `w` viewed as `[rows, cols]` (row-major): `v = normalize(wᵀ u)`, then
/// `u = normalize(w v)`, with `normalize(x) = x / max(||x||, eps)`. `u` (`rows` elements) and
/// `v` (`cols`) are updated in place, as the CPU layer updates its persistent vectors.
pub fn power_iteration<T: CudaFloat>(
    dev: &CudaDevice,
    w: &CudaSlice<T>,
    rows: usize,
    cols: usize,
    u: &mut CudaSlice<T>,
    v: &mut CudaSlice<T>,
    eps: T,
) -> Result<(), CudaError> {
    const OP: &str = "cuda spectral norm";
    u32_size(OP, rows.saturating_mul(cols))?;
    check_len(OP, "weight", w, rows * cols)?;
    check_len(OP, "u", u, rows)?;
    check_len(OP, "v", v, cols)?;
    if rows == 0 || cols == 0 {
        return Err(CudaError::invalid(
            OP,
            "an empty weight has no spectral norm",
        ));
    }
    let (r, c) = (rows as u32, cols as u32);
    let mut tmp = scratch::<T>(dev, rows.max(cols))?;
    let gemv_t = dev.function(KernelModule::Spectral, &format!("sn_gemv_t_{}", T::SUFFIX))?;
    let gemv = dev.function(KernelModule::Spectral, &format!("sn_gemv_{}", T::SUFFIX))?;
    let normalize = dev.function(
        KernelModule::Spectral,
        &format!("sn_normalize_{}", T::SUFFIX),
    )?;
    let one_block = LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    launch!(dev, gemv_t, dev.grid_1d(cols, 256), OP; &r, &c, w, &*u, &mut *tmp)?;
    launch!(dev, normalize.clone(), one_block, OP; &c, &*tmp, &eps, &mut *v)?;
    // One warp per row: 8 rows per 256-thread block.
    launch!(dev, gemv, dev.grid_1d(rows * 32, 256), OP; &r, &c, w, &*v, &mut *tmp)?;
    launch!(dev, normalize, one_block, OP; &r, &*tmp, &eps, &mut *u)
}
