//! saddle's tensor engine: strided tensors on a device, reverse-mode autodiff (define-by-run) and
//! the op set GANs need. Every op lives in one file under [`ops`] with its backward beside its
//! forward.
//!
//! A [`Tensor`] is an n-dimensional array of a [`DType`] on a [`Device`], cheap to clone. Ops
//! are methods returning [`Result`]: a wrong shape, dtype or device is an [`Error`] naming the
//! op and the shapes, never a panic. Elementwise ops broadcast as numpy does (see
//! [`Tensor::add`]). Views (reshape, permute, narrow, broadcast) share storage.
//!
//! # Build a tensor and differentiate it
//!
//! Mark the leaves you want gradients for with [`Tensor::with_requires_grad`], compute a
//! one-element result, and call [`Tensor::backward`]; the returned [`Grads`] holds one gradient
//! per leaf, of the leaf's shape.
//!
//! ```
//! use saddle_engine::{Device, Tensor};
//!
//! // loss = sum((x w - t)²) for a weight w that requires gradients.
//! let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2], Device::Cpu)?;
//! let t = Tensor::from_vec(vec![1.0f32, 0.0], &[2, 1], Device::Cpu)?;
//! let w = Tensor::from_vec(vec![0.5f32, -1.0], &[2, 1], Device::Cpu)?.with_requires_grad(true);
//! let loss = x.matmul(&w)?.sub(&t)?.square()?.sum_all()?; // a 0-d tensor
//! assert_eq!(loss.to_scalar()?, 12.5);
//!
//! let grads = loss.backward()?;
//! let dw = grads.get(&w).expect("w took part in the loss");
//! assert_eq!(dw.shape(), &[2, 1]);
//! assert_eq!(dw.to_vec::<f32>()?, vec![-20.0, -30.0]); // 2 xᵀ (x w - t)
//! # Ok::<(), saddle_engine::Error>(())
//! ```
//!
//! Inside [`no_grad`] (or while a [`NoGradGuard`] lives) ops record nothing: use it for
//! evaluation and sampling. [`gradcheck::check_gradients`] compares an op's gradient with finite
//! differences.
//!
//! # Run an op on the GPU when there is one
//!
//! An op runs on the device its operands live on; operands on different devices are an
//! [`Error::DeviceMismatch`]. Put tensors on a device when you create them (the `device`
//! argument of [`Tensor::from_vec`], [`Tensor::zeros`], [`Tensor::randn`], ...) or copy them
//! there with [`Tensor::to_device`]; [`Tensor::to_vec`] copies the values back. A parameter can
//! move in place with [`Tensor::to_device_`], keeping its id.
//!
//! [`Device::best`] picks `cuda:0` when a CUDA driver, a device and the kernels for it (NVRTC, or
//! compiled PTX in the cache) are all present, and the CPU otherwise, so the same program runs
//! on either; [`Device::best_with_reason`] also says why. Probing never panics. Asking for a
//! device that is not there is an [`Error::DeviceUnavailable`], and an op without a CUDA kernel
//! refuses device tensors with [`Error::NoCudaKernel`] rather than copying them behind your
//! back. With the `cuda` feature, `set_cuda_tf32` lets f32 matrix products use TF32 tensor
//! cores.
//!
//! ```
//! use saddle_engine::{DType, Device, Tensor};
//!
//! // cuda:0 when this machine can run the kernels, else the CPU (as in CI).
//! let (device, why) = Device::best_with_reason();
//! println!("{why}");
//! let a = Tensor::ones(&[2, 3], DType::F32, device)?;
//! let b = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3], Device::Cpu)?.to_device(device)?;
//! let c = a.add(&b)?; // runs where a and b are
//! assert_eq!(c.device(), device);
//! assert_eq!(c.to_vec::<f32>()?, vec![2.0, 3.0, 4.0, 2.0, 3.0, 4.0]);
//! # Ok::<(), saddle_engine::Error>(())
//! ```
//!
//! # Choose a CPU-only build
//!
//! The CUDA backend is the `cuda` feature, on by default. It needs no CUDA to build (the driver
//! and NVRTC are loaded at run time, if present), but it does pull in `cudarc`. To leave it
//! out, turn default features off:
//!
//! ```toml
//! [dependencies]
//! saddle-engine = { version = "0.1", default-features = false }
//! ```
//!
//! In such a build every tensor is on the CPU: [`Device::best`] returns [`Device::Cpu`],
//! creating a `Device::Cuda` tensor fails with [`Error::DeviceUnavailable`], and the CUDA-only
//! switches (`set_cuda_tf32`, `set_poison_outputs`) do not exist.

#![warn(missing_docs)]

/// `$cuda` when `$cond` holds in a build with the CUDA backend, else `$cpu`; `?` is applied to
/// `$cuda`. Without the `cuda` feature only `$cpu` is compiled (a tensor cannot be on a device
/// there), so the CPU path pays one branch at most.
macro_rules! cuda_or {
    ($cond:expr, $cuda:expr, $cpu:expr) => {{
        #[cfg(feature = "cuda")]
        let on_device = if $cond { Some($cuda) } else { None };
        #[cfg(not(feature = "cuda"))]
        let on_device: Option<$crate::Result<_>> = None;
        match on_device {
            Some(r) => r?,
            None => $cpu,
        }
    }};
}

/// Returns `$cuda` from the enclosing function when `$cond` holds in a build with the CUDA
/// backend; compiles to nothing without the `cuda` feature.
macro_rules! on_cuda {
    ($cond:expr, $cuda:expr) => {
        #[cfg(feature = "cuda")]
        {
            if $cond {
                return $cuda;
            }
        }
    };
}

mod autograd;
mod backend;
mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
mod device;
mod dtype;
mod error;
pub mod gradcheck;
mod layout;
pub mod ops;
mod rng;
mod storage;
mod tensor;

pub use autograd::{is_grad_enabled, no_grad, Grads, NoGradGuard};
#[cfg(feature = "cuda")]
pub use cuda::{set_cuda_tf32, set_poison_outputs};
pub use device::Device;
pub use dtype::{DType, Element};
pub use error::{Error, Result};
pub use layout::Layout;
pub use ops::conv::{Conv2dParams, ConvTranspose2dParams};
pub use ops::BatchNormOutput;
pub use rng::Rng;
pub use saddle_kernels::{Float, OutOfMemory};
pub use tensor::{Tensor, TensorId};
