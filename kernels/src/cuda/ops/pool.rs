//! Launchers for `cuda/pool.cu`: windowed sum/average and max pooling of `planes` contiguous
//! `h × w` planes, forward and backward, on the CPU kernels' [`Pool2d`] geometry.

use super::{check_len, launch, u32_size};
use crate::cuda::{CudaDevice, CudaError, CudaFloat, KernelModule};
use crate::geometry::Pool2d;
use cudarc::driver::{CudaSlice, DeviceRepr};

/// `PoolArgs` of pool.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PoolArgs {
    planes: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
}
// SAFETY: plain repr(C) integers, laid out as the C struct.
unsafe impl DeviceRepr for PoolArgs {}

/// The kernels' arguments and the element counts of the input and the output, or why the
/// geometry cannot be pooled (the kernels compute window bounds in 32-bit signed integers).
fn pool_args(
    op: &'static str,
    planes: usize,
    h: usize,
    w: usize,
    p: &Pool2d,
) -> Result<(PoolArgs, usize, usize), CudaError> {
    let (oh, ow) = p.out_size(h, w).ok_or_else(|| {
        CudaError::invalid(
            op,
            format!("window {p:?} does not fit a padded {h} x {w} plane"),
        )
    })?;
    if h + 2 * p.ph > i32::MAX as usize || w + 2 * p.pw > i32::MAX as usize {
        return Err(CudaError::invalid(op, "padded plane too large"));
    }
    let (nx, ny) = (planes * h * w, planes * oh * ow);
    u32_size(op, nx)?;
    u32_size(op, ny)?;
    let u = |v: usize| v as u32;
    let args = PoolArgs {
        planes: u(planes),
        h: u(h),
        w: u(w),
        oh: u(oh),
        ow: u(ow),
        kh: u(p.kh),
        kw: u(p.kw),
        sh: u(p.sh),
        sw: u(p.sw),
        ph: u(p.ph),
        pw: u(p.pw),
    };
    Ok((args, nx, ny))
}

/// `y` = sum of each window divided by `divisor` (1 for sum pooling, `kh · kw` for average
/// pooling with the padding counted); `y` gets `planes · oh · ow` elements.
#[allow(clippy::too_many_arguments)]
pub fn sum_pool2d<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    planes: usize,
    h: usize,
    w: usize,
    p: &Pool2d,
    divisor: T,
    y: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda sum_pool2d";
    let (args, nx, ny) = pool_args(OP, planes, h, w, p)?;
    check_len(OP, "input", x, nx)?;
    check_len(OP, "output", y, ny)?;
    if ny == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Pool, &format!("sum_pool2d_{}", T::SUFFIX))?;
    launch!(dev, f, dev.grid_1d(ny, 256), OP; &args, x, y, &divisor)
}

/// Gradient of [`sum_pool2d`]: each input element gets `g / divisor` summed over the windows
/// covering it; `dx` gets `planes · h · w` elements.
#[allow(clippy::too_many_arguments)]
pub fn sum_pool2d_backward<T: CudaFloat>(
    dev: &CudaDevice,
    g: &CudaSlice<T>,
    planes: usize,
    h: usize,
    w: usize,
    p: &Pool2d,
    divisor: T,
    dx: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda sum_pool2d backward";
    let (args, nx, ny) = pool_args(OP, planes, h, w, p)?;
    check_len(OP, "gradient", g, ny)?;
    check_len(OP, "input gradient", dx, nx)?;
    if nx == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Pool, &format!("sum_pool2d_bwd_{}", T::SUFFIX))?;
    launch!(dev, f, dev.grid_1d(nx, 256), OP; &args, g, dx, &divisor)
}

/// `y` = maximum of each window and `arg` = its position `y · w + x` within the plane (the first
/// maximum in row-major window order; the first NaN wins over numbers), as the CPU's
/// `pool::max_pool2d`. Both get `planes · oh · ow` elements.
#[allow(clippy::too_many_arguments)]
pub fn max_pool2d<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    planes: usize,
    h: usize,
    w: usize,
    p: &Pool2d,
    y: &mut CudaSlice<T>,
    arg: &mut CudaSlice<u32>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda max_pool2d";
    let (args, nx, ny) = pool_args(OP, planes, h, w, p)?;
    check_len(OP, "input", x, nx)?;
    check_len(OP, "output", y, ny)?;
    check_len(OP, "arg-max", arg, ny)?;
    if ny == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Pool, &format!("max_pool2d_{}", T::SUFFIX))?;
    launch!(dev, f, dev.grid_1d(ny, 256), OP; &args, x, y, arg)
}

/// Gradient of [`max_pool2d`]: each output gradient goes to its window's arg-max, summed where
/// windows share one; `dx` gets `planes · h · w` elements.
#[allow(clippy::too_many_arguments)]
pub fn max_pool2d_backward<T: CudaFloat>(
    dev: &CudaDevice,
    g: &CudaSlice<T>,
    arg: &CudaSlice<u32>,
    planes: usize,
    h: usize,
    w: usize,
    p: &Pool2d,
    dx: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda max_pool2d backward";
    let (args, nx, ny) = pool_args(OP, planes, h, w, p)?;
    check_len(OP, "gradient", g, ny)?;
    check_len(OP, "arg-max", arg, ny)?;
    check_len(OP, "input gradient", dx, nx)?;
    if nx == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Pool, &format!("max_pool2d_bwd_{}", T::SUFFIX))?;
    launch!(dev, f, dev.grid_1d(nx, 256), OP; &args, g, arg, dx)
}

/// `y[o]` = `x` at window `o`'s arg-max from [`max_pool2d`] (0 for an empty window): the adjoint
/// of [`max_pool2d_backward`], for max pooling's second derivative.
#[allow(clippy::too_many_arguments)]
pub fn max_pool2d_gather<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    arg: &CudaSlice<u32>,
    planes: usize,
    h: usize,
    w: usize,
    p: &Pool2d,
    y: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda max_pool2d gather";
    let (args, nx, ny) = pool_args(OP, planes, h, w, p)?;
    check_len(OP, "input", x, nx)?;
    check_len(OP, "arg-max", arg, ny)?;
    check_len(OP, "output", y, ny)?;
    if ny == 0 {
        return Ok(());
    }
    let f = dev.function(
        KernelModule::Pool,
        &format!("max_pool2d_gather_{}", T::SUFFIX),
    )?;
    launch!(dev, f, dev.grid_1d(ny, 256), OP; &args, x, arg, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_follow_the_cpu_geometry_and_refuse_bad_windows() {
        let p = Pool2d {
            kh: 3,
            kw: 2,
            sh: 2,
            sw: 1,
            ph: 1,
            pw: 0,
        };
        let (a, nx, ny) = pool_args("t", 6, 7, 5, &p).unwrap();
        // oh = (7 + 2 - 3) / 2 + 1 = 4, ow = (5 - 2) / 1 + 1 = 4.
        assert_eq!((a.oh, a.ow, nx, ny), (4, 4, 6 * 35, 6 * 16));
        assert_eq!((a.kh, a.kw, a.sh, a.sw, a.ph, a.pw), (3, 2, 2, 1, 1, 0));
        let big = Pool2d { kh: 10, ..p }; // the padded height is 9
        assert!(pool_args("t", 6, 7, 5, &big).is_err());
        assert!(pool_args("t", 1 << 20, 1 << 6, 1 << 6, &p).is_err());
    }
}
