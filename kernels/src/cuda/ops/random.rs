//! Launchers for `cuda/random.cu`: Philox normal, uniform and dropout-mask draws that reproduce
//! the CPU `Rng` stream (engine/src/rng.rs) from a block boundary.
//!
//! A stream position is `(seed, counter)`, the counter counting 4-word Philox blocks. Each
//! launcher returns how many blocks it consumed, so the caller advances its counter by that much
//! (the CPU `Rng` would have advanced by the same number of blocks, given it started at a block
//! boundary).

use super::{check_len, launch, u32_size};
use crate::cuda::{CudaDevice, CudaError, CudaFloat, KernelModule};
use cudarc::driver::CudaSlice;

/// `out[i] ~ N(mean, std²)`, one block per element; returns the blocks consumed (`n`).
pub fn normal<T: CudaFloat>(
    dev: &CudaDevice,
    seed: u64,
    counter: u64,
    mean: f64,
    std: f64,
    out: &mut CudaSlice<T>,
    n: usize,
) -> Result<u64, CudaError> {
    const OP: &str = "cuda randn";
    let n32 = u32_size(OP, n)?;
    check_len(OP, "output", out, n)?;
    if n > 0 {
        let f = dev.function(
            KernelModule::Random,
            &format!("philox_normal_{}", T::SUFFIX),
        )?;
        launch!(dev, f, dev.grid_1d(n, 256), OP; &n32, &seed, &counter, &mean, &std, out)?;
    }
    Ok(n as u64)
}

/// `out[i] ~ U[low, high)`, two elements per block; returns the blocks consumed.
pub fn uniform<T: CudaFloat>(
    dev: &CudaDevice,
    seed: u64,
    counter: u64,
    low: f64,
    high: f64,
    out: &mut CudaSlice<T>,
    n: usize,
) -> Result<u64, CudaError> {
    const OP: &str = "cuda rand";
    let n32 = u32_size(OP, n)?;
    check_len(OP, "output", out, n)?;
    if n > 0 {
        let f = dev.function(
            KernelModule::Random,
            &format!("philox_uniform_{}", T::SUFFIX),
        )?;
        launch!(dev, f, dev.grid_1d(n.div_ceil(2), 256), OP;
            &n32, &seed, &counter, &low, &high, out)?;
    }
    Ok(n.div_ceil(2) as u64)
}

/// Inverted-dropout mask: `1 / (1 − p)` where kept, 0 where dropped, one 32-bit word per element
/// (the CPU's rule: kept when the word is at least `ceil(p · 2^32)`); returns the blocks consumed.
pub fn dropout_mask<T: CudaFloat>(
    dev: &CudaDevice,
    seed: u64,
    counter: u64,
    p: f64,
    out: &mut CudaSlice<T>,
    n: usize,
) -> Result<u64, CudaError> {
    const OP: &str = "cuda dropout";
    if !(0.0..1.0).contains(&p) {
        return Err(CudaError::invalid(
            OP,
            format!("drop probability must be in [0, 1), got {p}"),
        ));
    }
    let n32 = u32_size(OP, n)?;
    check_len(OP, "output", out, n)?;
    let threshold = (p * 4_294_967_296.0).ceil() as u64;
    let keep = T::from_f64(1.0 / (1.0 - p));
    if n > 0 {
        let name = format!("philox_dropout_mask_{}", T::SUFFIX);
        let f = dev.function(KernelModule::Random, &name)?;
        launch!(dev, f, dev.grid_1d(n.div_ceil(4), 256), OP;
            &n32, &seed, &counter, &threshold, &keep, out)?;
    }
    Ok(n.div_ceil(4) as u64)
}
