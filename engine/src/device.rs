use std::fmt;

/// Where a tensor's storage lives. Only the CPU has kernels today; `Cuda(ordinal)` is the slot the
/// CUDA backend fills (ops on it return `Error::Unsupported` until then).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Device {
    #[default]
    Cpu,
    Cuda(usize),
}

impl Device {
    /// The best device this process can use and a one-line reason. Without the CUDA backend this
    /// is always the CPU.
    pub fn best_with_reason() -> (Device, String) {
        (Device::Cpu, "using the CPU: this build has no CUDA backend yet".to_string())
    }

    /// The best device, printing the one-line reason to stderr.
    pub fn best() -> Device {
        let (device, why) = Self::best_with_reason();
        eprintln!("saddle: {why}");
        device
    }

    pub fn is_cpu(self) -> bool {
        matches!(self, Device::Cpu)
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}
