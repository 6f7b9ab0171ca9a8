//! saddle: a GAN toolkit on a from-scratch tensor engine.
//!
//! This root crate re-exports the four layers, each built on the one before:
//!
//! - [`kernels`] (`saddle-kernels`): raw compute on plain slices (GEMM, convolution lowering,
//!   reductions, optimiser updates) on the CPU, and the CUDA backend, loaded at run time, in
//!   builds with the `cuda` feature. No tensors, no autodiff.
//! - [`engine`] (`saddle-engine`): [`Tensor`] on a [`Device`] with a [`DType`], reverse-mode
//!   autodiff, the ops GANs need, the seeded RNG and the [`Error`] type.
//! - [`nn`] (`saddle-nn`): the [`Module`](nn::Module) trait with PyTorch-style named
//!   parameters, layers, initialisers, optimisers, EMA and safetensors
//!   [`Checkpoint`](nn::Checkpoint)s.
//! - [`gan`] (`saddle-gan`): the papers' models and trainers, data loaders, metrics, the run
//!   folder and the shared training loop.
//!
//! An embedding program can depend on this crate and use the layers as `saddle::nn::...`, or
//! depend on a layer's crate alone. Start with the guides in the crate docs: [`nn`]'s (define a
//! module and train it, save and load checkpoints, load PyTorch weights) and [`gan`]'s (its main
//! modules, open a run folder and sample from a trained generator).
//!
//! The repository's `examples/` folder holds complete programs, run with
//! `cargo run --example <name>`: `sample_from_run` (samples from a run folder written by
//! `saddle train`), `custom_gan` (a GAN model type of your own on a 2-D mixture), `custom_op`
//! (a new differentiable op built from existing ones, gradient-checked) and `pytorch_interop`
//! (a `state_dict` PyTorch saved as safetensors, loaded and run on saddle).
//!
//! The modules below are the library of the `saddle` command line (`src/main.rs`), one per
//! command: [`train`], [`sample`], [`eval`], [`grid`], [`probe`] and [`bench`](mod@bench),
//! with the flags they share in [`cli`] and [`flags`]. [`sample::load_run_model`] rebuilds the
//! model of any run folder `saddle train` wrote, with the weights of one of its checkpoints.

#![warn(missing_docs)]

pub use saddle_engine as engine;
pub use saddle_gan as gan;
pub use saddle_kernels as kernels;
pub use saddle_nn as nn;

pub mod allocator;
pub mod bench;
pub mod bigbigan;
pub mod classify;
pub mod cli;
pub mod eval;
pub mod flags;
pub mod grid;
pub mod label_source;
pub mod probe;
pub mod resume;
pub mod sample;
pub mod semisup;
pub mod train;

pub use saddle_engine::{DType, Device, Error, Result, Tensor};
