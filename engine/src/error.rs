use crate::{DType, Device};
use saddle_kernels::OutOfMemory;
use std::fmt;

/// Everything that can go wrong in the engine. Each variant names the op so a user can find the
/// offending call; shape errors carry both shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// Two operands whose shapes cannot be combined.
    ShapeMismatch {
        /// The op that failed.
        op: &'static str,
        /// Shape of the first operand (or of the tensor acted on).
        lhs: Vec<usize>,
        /// Shape of the second operand (or the shape asked for).
        rhs: Vec<usize>,
        /// What does not fit (may be empty).
        reason: String,
    },
    /// A single operand whose shape the op cannot take.
    BadShape {
        /// The op that failed.
        op: &'static str,
        /// The operand's shape.
        shape: Vec<usize>,
        /// What is wrong with it.
        reason: String,
    },
    /// Operands of different dtypes.
    DTypeMismatch {
        /// The op that failed.
        op: &'static str,
        /// Dtype of the first operand (or the one expected).
        lhs: DType,
        /// Dtype of the second operand (or the one found).
        rhs: DType,
    },
    /// Operands on different devices.
    DeviceMismatch {
        /// The op that failed.
        op: &'static str,
        /// Device of the first operand.
        lhs: Device,
        /// Device of the second operand.
        rhs: Device,
    },
    /// The op is not implemented for this dtype or device (yet).
    Unsupported {
        /// The op that failed.
        op: &'static str,
        /// The dtype it was asked to handle.
        dtype: DType,
        /// The device it was asked to run on.
        device: Device,
    },
    /// A device this machine does not have (no driver, no such ordinal, no NVRTC, or a build
    /// without the CUDA backend); `reason` says which.
    DeviceUnavailable {
        /// The op that failed.
        op: &'static str,
        /// The device asked for.
        device: Device,
        /// Why it cannot be used.
        reason: String,
    },
    /// The op has no CUDA kernel yet: it refuses device tensors rather than copying them to
    /// the CPU behind the caller's back.
    NoCudaKernel {
        /// The op that failed.
        op: &'static str,
        /// The device of the tensor it was given.
        device: Device,
    },
    /// A CUDA driver, compiler or launcher error while running `op` on a device.
    Backend {
        /// The op that failed.
        op: &'static str,
        /// The backend's message.
        reason: String,
    },
    /// `op` needed device memory the device could not give, even after saddle returned the
    /// blocks its allocator had cached: the bytes asked and the allocator's accounting.
    OutOfMemory {
        /// The op that failed.
        op: &'static str,
        /// The allocator's report.
        oom: OutOfMemory,
    },
    /// An argument out of range (an axis, an index, a probability, ...).
    InvalidArgument {
        /// The op that failed.
        op: &'static str,
        /// What is wrong with the argument.
        reason: String,
    },
    /// Misuse of autodiff: backward from a non-scalar, through a freed graph, ...
    Autograd(String),
}

/// The engine's result type: every fallible op returns one.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An [`Error::ShapeMismatch`] of `op` between shapes `lhs` and `rhs`.
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
    /// An [`Error::BadShape`] of `op` for an operand of `shape`.
    pub fn bad_shape(op: &'static str, shape: &[usize], reason: impl Into<String>) -> Self {
        Error::BadShape {
            op,
            shape: shape.to_vec(),
            reason: reason.into(),
        }
    }
    /// An [`Error::InvalidArgument`] of `op`.
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
