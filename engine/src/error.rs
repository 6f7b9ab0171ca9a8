use crate::{DType, Device};
use saddle_kernels::OutOfMemory;
use std::fmt;

/// Everything that can go wrong in the engine. Each variant names the op so a user can find the
/// offending call; shape errors carry both shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// Two operands whose shapes cannot be combined.
    ShapeMismatch {
        op: &'static str,
        lhs: Vec<usize>,
        rhs: Vec<usize>,
        reason: String,
    },
    /// A single operand whose shape the op cannot take.
    BadShape {
        op: &'static str,
        shape: Vec<usize>,
        reason: String,
    },
    /// Operands of different dtypes.
    DTypeMismatch {
        op: &'static str,
        lhs: DType,
        rhs: DType,
    },
    /// Operands on different devices.
    DeviceMismatch {
        op: &'static str,
        lhs: Device,
        rhs: Device,
    },
    /// The op is not implemented for this dtype or device (yet).
    Unsupported {
        op: &'static str,
        dtype: DType,
        device: Device,
    },
    /// A device this machine does not have (no driver, no such ordinal, no NVRTC, or a build
    /// without the CUDA backend); `reason` says which.
    DeviceUnavailable {
        op: &'static str,
        device: Device,
        reason: String,
    },
    /// The op has no CUDA kernel yet: it refuses device tensors rather than copying them to
    /// the CPU behind the caller's back.
    NoCudaKernel { op: &'static str, device: Device },
    /// A CUDA driver, compiler or launcher error while running `op` on a device.
    Backend { op: &'static str, reason: String },
    /// `op` needed device memory the device could not give, even after saddle returned the
    /// blocks its allocator had cached: the bytes asked and the allocator's accounting.
    OutOfMemory { op: &'static str, oom: OutOfMemory },
    /// An argument out of range (an axis, an index, a probability, ...).
    InvalidArgument { op: &'static str, reason: String },
    /// Misuse of autodiff: backward from a non-scalar, through a freed graph, ...
    Autograd(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn shape(
        op: &'static str,
        lhs: &[usize],
        rhs: &[usize],
        reason: impl Into<String>,
    ) -> Self {
        Error::ShapeMismatch {
            op,
            lhs: lhs.to_vec(),
            rhs: rhs.to_vec(),
            reason: reason.into(),
        }
    }
    pub fn bad_shape(op: &'static str, shape: &[usize], reason: impl Into<String>) -> Self {
        Error::BadShape {
            op,
            shape: shape.to_vec(),
            reason: reason.into(),
        }
    }
    pub fn arg(op: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch {
                op,
                lhs,
                rhs,
                reason,
            } => {
                write!(f, "{op}: incompatible shapes {lhs:?} and {rhs:?}")?;
                if !reason.is_empty() {
                    write!(f, " ({reason})")?;
                }
                Ok(())
            }
            Error::BadShape { op, shape, reason } => {
                write!(f, "{op}: invalid shape {shape:?} ({reason})")
            }
            Error::DTypeMismatch { op, lhs, rhs } => {
                write!(f, "{op}: dtype mismatch, {lhs} and {rhs}")
            }
            Error::DeviceMismatch { op, lhs, rhs } => {
                write!(f, "{op}: device mismatch, {lhs} and {rhs}")
            }
            Error::Unsupported { op, dtype, device } => {
                write!(f, "{op}: not supported for dtype {dtype} on {device}")
            }
            Error::DeviceUnavailable { op, device, reason } => {
                write!(f, "{op}: {device} is not available ({reason})")
            }
            Error::NoCudaKernel { op, device } => write!(
                f,
                "op {op} has no CUDA kernel yet (a tensor is on {device}; move it to the CPU with to_device)"
            ),
            Error::Backend { op, reason } => write!(f, "{op}: {reason}"),
            Error::OutOfMemory { op, oom } => write!(f, "{op}: {oom}"),
            Error::InvalidArgument { op, reason } => write!(f, "{op}: {reason}"),
            Error::Autograd(msg) => write!(f, "autograd: {msg}"),
        }
    }
}

impl std::error::Error for Error {}
