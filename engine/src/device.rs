use crate::{DType, Error, Result};
use std::fmt;

/// Where a tensor's storage lives. `Cuda(ordinal)` tensors hold device buffers and their ops run
/// the kernels of `saddle_kernels::cuda` (see the engine's `cuda` module); creating one fails
/// with `Error::DeviceUnavailable` (saying why) when the device does not exist here, and an op
/// with no device kernel yet fails with `Error::NoCudaKernel` naming it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// Host memory; every op runs here.
    #[default]
    Cpu,
    /// The CUDA device with this ordinal (`cuda:N`).
    Cuda(usize),
}

impl Device {
    /// The best device this process can use and a one-line reason: `cuda:0` when a driver, a
    /// device and its kernels (NVRTC, or compiled PTX in the cache) are present, else the CPU.
    /// Probing never panics.
    pub fn best_with_reason() -> (Device, String) {
        #[cfg(feature = "cuda")]
        {
            let (ordinal, why) = saddle_kernels::cuda::probe::best();
            (ordinal.map_or(Device::Cpu, Device::Cuda), why)
        }
        #[cfg(not(feature = "cuda"))]
        {
            (
                Device::Cpu,
                "using the CPU: built without the `cuda` feature".to_string(),
            )
        }
    }

    /// The best device, printing the one-line reason to stderr.
    pub fn best() -> Device {
        let (device, why) = Self::best_with_reason();
        eprintln!("saddle: {why}");
        device
    }

    /// True for [`Device::Cpu`].
    pub fn is_cpu(self) -> bool {
        matches!(self, Device::Cpu)
    }

    /// Ok when this device exists on this machine (always for the CPU); otherwise
    /// `Error::DeviceUnavailable` naming `op` and the reason (no driver, no such ordinal, neither
    /// NVRTC nor cached PTX, or a build without CUDA).
    pub fn check_available(self, op: &'static str) -> Result<()> {
        let Device::Cuda(ordinal) = self else {
            return Ok(());
        };
        #[cfg(feature = "cuda")]
        let outcome = saddle_kernels::cuda::probe::check_device(ordinal)
            .and_then(|()| saddle_kernels::cuda::probe::kernel_source().map(|_| ()))
            .map_err(|e| e.to_string());
        #[cfg(not(feature = "cuda"))]
        let outcome: std::result::Result<(), String> = {
            let _ = ordinal;
            Err("this build has no CUDA backend (the `cuda` feature is off)".to_string())
        };
        outcome.map_err(|reason| Error::DeviceUnavailable {
            op,
            device: self,
            reason,
        })
    }

    /// Errors for an op that cannot run on this device yet: `DeviceUnavailable` when the device
    /// does not exist here, `Unsupported` when it does.
    pub(crate) fn unsupported(self, op: &'static str, dtype: DType) -> Error {
        match self.check_available(op) {
            Err(e) => e,
            Ok(()) => Error::Unsupported {
                op,
                dtype,
                device: self,
            },
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_names_its_choice_and_cuda_requests_fail_clearly_without_a_gpu() {
        let (device, why) = Device::best_with_reason();
        assert!(why.starts_with(&format!(
            "using {}",
            if device.is_cpu() { "the CPU" } else { "cuda:0" }
        )));
        assert!(Device::Cpu.check_available("t").is_ok());
        // An ordinal no machine has always fails, with a reason that names the device.
        let err = Device::Cuda(1000).check_available("zeros").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("zeros: cuda:1000 is not available"),
            "{msg}"
        );
        if device.is_cpu() {
            let err = crate::Tensor::zeros(&[2], DType::F32, Device::Cuda(0)).unwrap_err();
            assert!(matches!(err, Error::DeviceUnavailable { .. }), "{err}");
        }
    }
}
