//! Raw compute kernels for saddle, working on plain slices: no tensors, no autodiff.
//!
//! The engine (`saddle-engine`) owns shapes, strides and gradients and calls into this crate for
//! the number crunching. Everything here is deterministic: the order in which any output element
//! is accumulated does not depend on the number of threads.
//!
//! Use it directly when you want one kernel without the tensor machinery (a benchmark, another
//! engine). Each function's docs give the buffer layout it expects; the CPU kernels check buffer
//! lengths with assertions (a mismatch panics), the CUDA launchers return an error instead.
//!
//! * [`cpu`]: the CPU kernels, generic over [`Float`] (f32 and f64) and parallel with rayon:
//!   the packed GEMM ([`cpu::gemm`]), convolution lowered to it ([`cpu::conv`]), elementwise
//!   maps ([`cpu::elementwise`]), reductions ([`cpu::reduce`]), softmax, normalisation, pooling,
//!   indexing, attention, losses and the fused optimiser updates ([`cpu::optim`]).
#![cfg_attr(
    feature = "cuda",
    doc = " * [`cuda`] (the default `cuda` feature): the same families as CUDA C compiled by NVRTC"
)]
#![cfg_attr(
    not(feature = "cuda"),
    doc = " * `cuda` (the default `cuda` feature, off in this build): the same families as CUDA C \
           compiled by NVRTC"
)]
//!   at run time, a caching device allocator and safe launchers. Building needs no CUDA; a
//!   machine without a driver gets an error from the probe, never a panic.
//! * [`require`]: how the test suites decide whether a missing GPU is a skip or a failure.
//! * [`OutOfMemory`]: the report of a device allocation that failed, in every build.
//!
//! ```
//! use saddle_kernels::cpu::gemm::{gemm, MatRef};
//!
//! // [2, 3] · [3, 2] -> [2, 2], row-major; beta = 0 overwrites C.
//! let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let b = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0];
//! let mut c = [0.0f32; 4];
//! gemm(MatRef::row_major(&a, 2, 3), MatRef::row_major(&b, 3, 2), 0.0, &mut c, 2);
//! assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
//! ```

#![warn(missing_docs)]

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
mod float;
pub mod geometry;
mod out_of_memory;
pub mod require;

pub use float::Float;
pub use out_of_memory::OutOfMemory;
