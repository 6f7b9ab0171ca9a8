use crate::OutOfMemory;
use std::fmt;

/// Everything the CUDA backend can report. Messages name the op or module and say what to do
/// when the cause is the environment (no driver, no NVRTC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CudaError {
    /// No usable driver, device or NVRTC on this machine (the reason says which).
    Unavailable(String),
    /// NVRTC rejected a module; `log` is its compile log.
    Compile {
        /// The module's file name.
        module: &'static str,
        /// NVRTC's compile log (or its error, when it failed before compiling).
        log: String,
    },
    /// A driver call failed.
    Driver {
        /// What was being done (a copy, a launch, a module load, ...).
        op: &'static str,
        /// The driver's error, as its debug form.
        error: String,
    },
    /// Arguments a launcher cannot take (shapes, lengths, sizes beyond the kernels' 32-bit
    /// indexing).
    Invalid {
        /// The launcher or copy that refused.
        op: &'static str,
        /// What is wrong with the arguments.
        reason: String,
    },
    /// A device allocation the caching allocator could not serve, even after returning its
    /// cache to the driver.
    OutOfMemory(OutOfMemory),
}

impl CudaError {
    pub(crate) fn driver(op: &'static str, error: impl fmt::Debug) -> Self {
        CudaError::Driver {
            op,
            error: format!("{error:?}"),
        }
    }
    pub(crate) fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        CudaError::Invalid {
            op,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for CudaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CudaError::Unavailable(why) => write!(f, "CUDA unavailable: {why}"),
            CudaError::Compile { module, log } => {
                write!(f, "NVRTC failed to compile {module}:\n{log}")
            }
            CudaError::Driver { op, error } => write!(f, "{op}: CUDA driver error {error}"),
            CudaError::Invalid { op, reason } => write!(f, "{op}: {reason}"),
            CudaError::OutOfMemory(oom) => write!(f, "device allocation: {oom}"),
        }
    }
}

impl std::error::Error for CudaError {}
