//! The CUDA backend: our own kernels (`kernels/cuda/*.cu`, embedded in the binary), compiled by
//! NVRTC for the device's architecture at first use, and safe launchers for them.
//!
//! Nothing here needs CUDA at build time: cudarc loads `libcuda` and `libnvrtc` when first asked,
//! and [`probe`] checks that they exist before anything touches them, so a machine without a
//! driver gets an error (or the CPU), never a panic.
//!
//! * [`probe`]: is there a driver, how many devices, is NVRTC there.
//! * [`compile`]: NVRTC compilation with an in-memory and an on-disk PTX cache.
//! * [`device`]: one context and one stream per device, module loading, launch helpers, uploads
//!   staged through page-locked memory so they never wait for queued kernels.
//! * [`alloc`]: the caching device allocator behind [`DeviceBuffer`].
//! * [`ops`]: shape-checked launchers, one function per kernel family.
//!
//! Ordering model: every device has exactly one stream and all work (copies, kernels, frees back
//! to the cache) is issued on it, so stream order alone makes reuse of freed memory safe. cudarc's
//! per-buffer event tracking, needed only with several streams, is switched off.

pub mod alloc;
pub mod compile;
pub mod device;
mod error;
pub mod ops;
pub mod probe;

pub use alloc::{AllocStats, DeviceBuffer};
pub use device::CudaDevice;
pub use error::CudaError;

/// Our CUDA C modules, one kernel family per file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KernelModule {
    /// Unary and broadcasting binary maps, select by mask, fills, and strided copies and casts
    /// (`elementwise.cu`).
    Elementwise,
    /// Sum, max and min over axes (`reduce.cu`).
    Reduce,
    /// Batched f32 matrix product on CUDA cores, and a simple f64 one (`gemm.cu`).
    Gemm,
    /// The f32 matrix product on tensor cores with TF32 inputs (`gemm_tf32.cu`, sm_80+).
    GemmTf32,
    /// The bf16/f16 matrix product on tensor cores, accumulating in f32 (`gemm_half.cu`, sm_80+).
    GemmHalf,
    /// 2-D convolution as implicit GEMM: forward, backward-data and backward-weight (`conv.cu`).
    Conv,
    /// Batch-norm statistics, application and backward (`norm.cu`).
    Norm,
    /// Softmax and log-softmax along an axis, with their backward (`softmax.cu`).
    Softmax,
    /// Binary cross-entropy with logits and its gradient (`loss.cu`).
    Loss,
    /// Fused Adam and SGD updates (`optim.cu`).
    Optim,
    /// Philox random draws: normal, uniform and dropout masks (`random.cu`).
    Random,
    /// Spectral-norm power iteration (`spectral.cu`).
    Spectral,
    /// index_select and gather with their scatter-add backwards, masked_select and rot90
    /// (`index.cu`).
    Index,
    /// Windowed sum/average and max pooling (`pool.cu`).
    Pool,
    /// Fused scaled dot-product attention (`attention.cu`).
    Attention,
}

impl KernelModule {
    /// Every module, in declaration order.
    pub const ALL: [KernelModule; 15] = [
        KernelModule::Elementwise,
        KernelModule::Reduce,
        KernelModule::Gemm,
        KernelModule::GemmTf32,
        KernelModule::GemmHalf,
        KernelModule::Conv,
        KernelModule::Norm,
        KernelModule::Softmax,
        KernelModule::Loss,
        KernelModule::Optim,
        KernelModule::Random,
        KernelModule::Spectral,
        KernelModule::Index,
        KernelModule::Pool,
        KernelModule::Attention,
    ];

    /// The file name under `kernels/cuda/`.
    pub fn file_name(self) -> &'static str {
        match self {
            KernelModule::Elementwise => "elementwise.cu",
            KernelModule::Reduce => "reduce.cu",
            KernelModule::Gemm => "gemm.cu",
            KernelModule::GemmTf32 => "gemm_tf32.cu",
            KernelModule::GemmHalf => "gemm_half.cu",
            KernelModule::Conv => "conv.cu",
            KernelModule::Norm => "norm.cu",
            KernelModule::Softmax => "softmax.cu",
            KernelModule::Loss => "loss.cu",
            KernelModule::Optim => "optim.cu",
            KernelModule::Random => "random.cu",
            KernelModule::Spectral => "spectral.cu",
            KernelModule::Index => "index.cu",
            KernelModule::Pool => "pool.cu",
            KernelModule::Attention => "attention.cu",
        }
    }

    /// The CUDA C source, embedded at build time (with any shared part it builds on in front).
    pub fn source(self) -> &'static str {
        match self {
            KernelModule::Elementwise => include_str!("../../cuda/elementwise.cu"),
            KernelModule::Reduce => include_str!("../../cuda/reduce.cu"),
            // The GEMMs share their argument block and tiling: gemm_tile.cuh goes in front.
            KernelModule::Gemm => concat!(
                include_str!("../../cuda/gemm_tile.cuh"),
                include_str!("../../cuda/gemm.cu")
            ),
            KernelModule::GemmTf32 => concat!(
                "",
                include_str!("../../cuda/gemm_tile.cuh"),
                include_str!("../../cuda/gemm_tf32.cu")
            ),
            KernelModule::GemmHalf => concat!(
                "",
                include_str!("../../cuda/gemm_tile.cuh"),
                include_str!("../../cuda/gemm_half.cu")
            ),
            KernelModule::Conv => include_str!("../../cuda/conv.cu"),
            KernelModule::Norm => include_str!("../../cuda/norm.cu"),
            KernelModule::Softmax => include_str!("../../cuda/softmax.cu"),
            KernelModule::Loss => include_str!("../../cuda/loss.cu"),
            KernelModule::Optim => include_str!("../../cuda/optim.cu"),
            KernelModule::Random => include_str!("../../cuda/random.cu"),
            KernelModule::Spectral => include_str!("../../cuda/spectral.cu"),
            KernelModule::Index => include_str!("../../cuda/index.cu"),
            KernelModule::Pool => include_str!("../../cuda/pool.cu"),
            KernelModule::Attention => include_str!("../../cuda/attention.cu"),
        }
    }

    /// Lowest compute capability the module needs (mma.sync with TF32, bf16 or f16 operands
    /// needs sm_80).
    pub fn min_arch(self) -> (u32, u32) {
        match self {
            KernelModule::GemmTf32 | KernelModule::GemmHalf => (8, 0),
            _ => (6, 0),
        }
    }
}

/// Element types device buffers hold and the copy, cast and fill kernels move: the suffix of
/// their kernel names, and the value that poisons an output buffer.
pub trait CudaStore:
    cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits + Copy + Default + 'static
{
    /// The type's suffix in kernel names (`"f32"`, `"bf16"`, ...).
    const SUFFIX: &'static str;
    /// A NaN of this type.
    const NAN: Self;
}

/// Element types with arithmetic kernels (f32 and f64).
pub trait CudaFloat: crate::Float + CudaStore {}

impl CudaStore for f32 {
    const SUFFIX: &'static str = "f32";
    const NAN: Self = f32::NAN;
}
impl CudaStore for f64 {
    const SUFFIX: &'static str = "f64";
    const NAN: Self = f64::NAN;
}
impl CudaFloat for f32 {}
impl CudaFloat for f64 {}

/// The bits of a bfloat16 value on a device. The kernels only store, convert and multiply
/// these (on tensor cores, accumulating in f32); the host converts with the `half` crate.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bf16(pub u16);

/// The bits of an IEEE binary16 value on a device (as [`Bf16`]).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct F16(pub u16);

// SAFETY: plain 16-bit values, laid out as the kernels' `unsigned short`.
unsafe impl cudarc::driver::DeviceRepr for Bf16 {}
// SAFETY: all-zero bits are the value +0.
unsafe impl cudarc::driver::ValidAsZeroBits for Bf16 {}
// SAFETY: as for `Bf16`.
unsafe impl cudarc::driver::DeviceRepr for F16 {}
// SAFETY: as for `Bf16`.
unsafe impl cudarc::driver::ValidAsZeroBits for F16 {}

impl CudaStore for Bf16 {
    const SUFFIX: &'static str = "bf16";
    const NAN: Self = Bf16(0x7fc0);
}
impl CudaStore for F16 {
    const SUFFIX: &'static str = "f16";
    const NAN: Self = F16(0x7e00);
}

/// The 16-bit types the tensor-core GEMM of `cuda/gemm_half.cu` takes.
pub trait CudaHalf: CudaStore {}
impl CudaHalf for Bf16 {}
impl CudaHalf for F16 {}
