//! saddle's tensor engine: strided tensors on a device, reverse-mode autodiff (define-by-run) and
//! the op set GANs need. Every op lives in one file under [`ops`] with its backward beside its
//! forward.
//!
//! ```
//! use saddle_engine::{Tensor, DType, Device};
//! let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3], Device::Cpu).unwrap().with_requires_grad(true);
//! let y = x.mul(&x).unwrap().sum_all().unwrap();
//! let grads = y.backward().unwrap();
//! assert_eq!(grads.get(&x).unwrap().to_vec::<f32>().unwrap(), vec![2.0, 4.0, 6.0]);
//! ```

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
