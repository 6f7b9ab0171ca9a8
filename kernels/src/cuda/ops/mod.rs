//! Safe launchers: device buffers and shapes in, results written into caller-provided output
//! buffers (so a caller can reuse memory, and a test can poison outputs before a launch). Every
//! launcher validates shapes and buffer lengths and returns [`CudaError::Invalid`] instead of
//! launching a kernel that would read or write out of bounds.
//!
//! All launches are asynchronous on the device's stream; errors raised inside a kernel surface
//! at the next [`CudaDevice::synchronize`] or download.

pub mod attention;
pub mod conv;
pub mod elementwise;
pub mod gemm;
pub mod index;
pub mod loss;
pub mod norm;
pub mod optim;
pub mod pool;
pub mod random;
pub mod reduce;
pub mod softmax;
pub mod spectral;

use super::{CudaDevice, CudaError};
use cudarc::driver::CudaSlice;

/// The kernels index with 32-bit integers; larger tensors are refused up front.
pub const MAX_ELEMENTS: usize = (1 << 31) - 1;

pub(crate) fn u32_size(op: &'static str, n: usize) -> Result<u32, CudaError> {
    if n > MAX_ELEMENTS {
        return Err(CudaError::invalid(
            op,
            format!("{n} elements exceed the kernels' 32-bit indexing (at most {MAX_ELEMENTS})"),
        ));
    }
    Ok(n as u32)
}

pub(crate) fn check_len<T>(
    op: &'static str,
    what: &str,
    buf: &CudaSlice<T>,
    need: usize,
) -> Result<(), CudaError> {
    if buf.len() < need {
        return Err(CudaError::invalid(
            op,
            format!("{what} holds {} elements, {need} needed", buf.len()),
        ));
    }
    Ok(())
}

/// Launches `$f` with `$cfg` and the listed arguments on `$dev`'s stream.
///
/// Every use must list the arguments in the order and types of the kernel's C signature; the
/// launchers check buffer sizes before reaching this.
macro_rules! launch {
    ($dev:expr, $f:expr, $cfg:expr, $op:expr; $($arg:expr),* $(,)?) => {{
        use cudarc::driver::PushKernelArg;
        let f = $f;
        let mut b = $dev.stream().launch_builder(&f);
        $( b.arg($arg); )*
        // SAFETY: see the macro's documentation; buffers were checked against the shapes.
        unsafe { b.launch($cfg) }
            .map(|_| ())
            .map_err(|e| $crate::cuda::CudaError::driver($op, e))
    }};
}
pub(crate) use launch;

/// Allocates a scratch buffer on `dev` (for multi-pass launchers).
pub(crate) fn scratch<T: cudarc::driver::DeviceRepr>(
    dev: &CudaDevice,
    len: usize,
) -> Result<super::DeviceBuffer<T>, CudaError> {
    dev.alloc::<T>(len.max(1))
}
