//! Raw compute kernels for saddle, working on plain slices: no tensors, no autodiff.
//!
//! The engine (`saddle-engine`) owns shapes, strides and gradients and calls into this crate for
//! the number crunching. Everything here is deterministic: the order in which any output element
//! is accumulated does not depend on the number of threads.

#![warn(missing_docs)]

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
mod float;
mod out_of_memory;
pub mod require;

pub use float::Float;
pub use out_of_memory::OutOfMemory;
