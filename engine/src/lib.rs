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

mod autograd;
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
pub use device::Device;
pub use dtype::{DType, Element};
pub use error::{Error, Result};
pub use layout::Layout;
pub use ops::conv::{Conv2dParams, ConvTranspose2dParams};
pub use ops::BatchNormOutput;
pub use rng::Rng;
pub use saddle_kernels::Float;
pub use tensor::{Tensor, TensorId};
