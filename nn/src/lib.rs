//! saddle's layer library: the [`Module`] abstraction with named parameters and buffers,
//! layers, initialisers ([`init`]) and optimisers ([`optim`]).
//!
//! It sits on the tensor engine ([`engine`], re-exported) and below the GAN crate: a module is
//! a forward function plus named tensors, named as PyTorch names them in a `state_dict`, so the
//! optimisers, the exponential moving average ([`Ema`]) and the [`checkpoint`]s work on any
//! module, and a checkpoint's tensors line up with a PyTorch model's.
//!
//! - Layers: [`Linear`], [`Conv2d`], [`ConvTranspose2d`], [`BatchNorm`],
//!   [`ConditionalBatchNorm`], [`LayerNorm`], [`Embedding`], [`SpectralNorm`],
//!   [`SelfAttention`], [`Dropout`], [`Maxout`], [`Pool2d`], [`GlobalPool2d`],
//!   [`UpsampleNearest2d`], [`Activation`], [`Sequential`], and BigGAN's residual blocks
//!   [`ResBlockUp`] and [`ResBlockDown`].
//! - Training: [`optim`] ([`optim::Sgd`], [`optim::Adam`] and AdamW, schedules, gradient
//!   clipping), [`Ema`], and [`standing_stats`] for batch norm before sampling.
//! - Storage: [`Checkpoint`], safetensors files with checksums.
//!
//! Modules are built on the CPU; [`ModuleExt::to_device`] moves one to a GPU in builds with the
//! `cuda` feature.
//!
//! # Define a module and train it with Adam
//!
//! A two-layer network fitted to `y = 2x − 1` on four points. Gradients come from
//! [`Tensor::backward`](engine::Tensor::backward) on the loss, and the optimiser updates the
//! parameters in place:
//!
//! ```
//! use saddle_nn::engine::{DType, Device, Rng, Tensor};
//! use saddle_nn::optim::{Adam, AdamConfig, Optimizer};
//! use saddle_nn::{Activation, Linear, Module, ModuleExt, Sequential};
//!
//! let mut rng = Rng::new(0);
//! let net = Sequential::new()
//!     .push(Linear::new(1, 8, true, DType::F32, &mut rng)?)
//!     .push(Activation::Tanh)
//!     .push(Linear::new(8, 1, true, DType::F32, &mut rng)?);
//! let mut opt = Adam::with_lr(net.named_parameters(), 0.05, AdamConfig::default());
//! let x = Tensor::from_vec(vec![-1.0f32, -0.5, 0.5, 1.0], &[4, 1], Device::Cpu)?;
//! let y = x.mul_scalar(2.0)?.add_scalar(-1.0)?;
//! for _ in 0..300 {
//!     let loss = net.forward(&x)?.mse_loss(&y)?;
//!     opt.step(&loss.backward()?)?;
//! }
//! assert!(net.forward(&x)?.mse_loss(&y)?.to_scalar()? < 1e-3);
//! # Ok::<(), saddle_nn::engine::Error>(())
//! ```
//!
//! A model of your own is a struct that implements [`Module`] (see its docs for an example);
//! [`Module::set_training`] switches batch norm, dropout and spectral norm between training and
//! evaluation.
//!
//! # Save and load a checkpoint, and load one made by PyTorch
//!
//! [`Checkpoint`] writes and reads safetensors files. [`Checkpoint::add_module`] stores a
//! module's tensors under a prefix and [`Checkpoint::restore_module`] copies them back into a
//! module of the same structure, checking every name and shape first. A module's names are
//! those of the PyTorch model built the same way, so a PyTorch `state_dict` saved with the
//! `safetensors` package loads as it is:
//!
//! ```python
//! import torch
//! from safetensors.torch import save_file, load_file
//!
//! net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
//! save_file({k: v.contiguous() for k, v in net.state_dict().items()}, "net.safetensors")
//!
//! # The other way: a file saddle saved (no prefix) loads into the same PyTorch model.
//! net.load_state_dict(load_file("saddle_net.safetensors"))
//! ```
//!
//! Only F32 and F64 tensors load, so leave out batch norm's integer `num_batches_tracked` on
//! the PyTorch side (saddle does not keep it; pass `strict=False` to `load_state_dict` when
//! loading saddle's file into a model with batch norm). Convolution weights keep PyTorch's
//! layouts. The Rust side, on a file written here as the Python above would write it:
//!
//! ```
//! use saddle_nn::engine::{DType, Device, Rng, Tensor};
//! use saddle_nn::{Activation, Checkpoint, Linear, Module, Sequential};
//!
//! # let dir = std::env::temp_dir().join(format!("saddle-doc-nn-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let torch_file = dir.join("net.safetensors");
//! // What `save_file` writes: the state_dict's names and shapes, little-endian f32 data and
//! // no checksums (made here with the `safetensors` crate).
//! # use safetensors::tensor::{Dtype, TensorView};
//! # let le = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
//! # let (w0, b0, w2, b2) = (le(&[0.5; 8]), le(&[0.0; 4]), le(&[1.0; 4]), le(&[0.25]));
//! # safetensors::serialize_to_file(
//! #     [
//! #         ("0.weight", TensorView::new(Dtype::F32, vec![4, 2], &w0)?),
//! #         ("0.bias", TensorView::new(Dtype::F32, vec![4], &b0)?),
//! #         ("2.weight", TensorView::new(Dtype::F32, vec![1, 4], &w2)?),
//! #         ("2.bias", TensorView::new(Dtype::F32, vec![1], &b2)?),
//! #     ],
//! #     None,
//! #     &torch_file,
//! # )?;
//!
//! // The same architecture; its initial weights are about to be replaced.
//! let mut rng = Rng::new(0);
//! let net = Sequential::new()
//!     .push(Linear::new(2, 4, true, DType::F32, &mut rng)?)
//!     .push(Activation::Relu)
//!     .push(Linear::new(4, 1, true, DType::F32, &mut rng)?);
//! Checkpoint::load(&torch_file)?.restore_module("", &net)?;
//! let x = Tensor::ones(&[1, 2], DType::F32, Device::Cpu)?;
//! // relu(0.5 + 0.5) = 1 in each of 4 hidden units, summed, plus 0.25.
//! assert_eq!(net.forward(&x)?.to_vec::<f32>()?, [4.25]);
//!
//! // saddle's own checkpoint: the module under a prefix, plus string metadata.
//! let mut ck = Checkpoint::new();
//! ck.add_module("", &net);
//! ck.set_meta("step", 1000);
//! let saddle_file = dir.join("saddle_net.safetensors");
//! ck.save(&saddle_file)?;
//! let back = Checkpoint::load(&saddle_file)?;
//! assert_eq!(back.meta("step"), Some("1000"));
//! assert_eq!(back.tensor("2.bias").unwrap().to_vec::<f32>()?, [0.25]);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Saving is atomic (a crash mid-save leaves the previous file whole) and the checksums catch
//! a damaged file on load; see [`checkpoint`].

#![warn(missing_docs)]

pub mod checkpoint;
pub mod ema;
pub mod init;
mod layers;
mod module;
pub mod optim;
pub mod penalty;
mod standing_stats;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use ema::Ema;
pub use layers::{
    Activation, BatchNorm, BlockNorm, BlockNormKind, ConditionalBatchNorm, Conv2d, ConvTranspose2d,
    Dropout, Embedding, GlobalPool2d, LayerNorm, Linear, Maxout, Pool2d, PoolKind, ResBlockDown,
    ResBlockUp, SelfAttention, Sequential, SpectralNorm, UpsampleNearest2d, WeightedLayer,
};
pub use module::{child_name, Module, ModuleExt, Slot};
pub use saddle_engine as engine;
pub use standing_stats::standing_stats;
