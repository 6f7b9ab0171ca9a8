//! Is CUDA usable here? Each check loads a library only after cudarc's `is_culib_present` has
//! confirmed it exists (cudarc panics when a missing library is first used), and every driver
//! call returns an error instead of panicking, so asking is always safe.

use super::{compile, CudaError};
use cudarc::driver::sys as dsys;
use cudarc::nvrtc::sys as nsys;
use std::sync::OnceLock;

/// What the driver reported: the device count, or why CUDA cannot be used.
pub fn device_count() -> Result<usize, CudaError> {
    static PROBE: OnceLock<Result<usize, CudaError>> = OnceLock::new();
    PROBE
        .get_or_init(|| without_panics("driver", probe_driver))
        .clone()
}

/// cudarc panics when a symbol is missing from a library that is present (an old driver, say);
/// a probe must answer instead.
fn without_panics<T>(what: &str, f: fn() -> Result<T, CudaError>) -> Result<T, CudaError> {
    std::panic::catch_unwind(f).unwrap_or_else(|_| {
        Err(CudaError::Unavailable(format!(
            "probing the CUDA {what} library failed (an incompatible version?)"
        )))
    })
}

fn probe_driver() -> Result<usize, CudaError> {
    // SAFETY: only tries to dlopen the driver library by its usual names.
    if !unsafe { dsys::is_culib_present() } {
        return Err(CudaError::Unavailable(
            "no CUDA driver library (libcuda.so) found".into(),
        ));
    }
    let count = cudarc::driver::CudaContext::device_count().map_err(|e| {
        CudaError::Unavailable(format!("the CUDA driver did not initialise ({e:?})"))
    })?;
    if count <= 0 {
        return Err(CudaError::Unavailable(
            "the CUDA driver reports no devices".into(),
        ));
    }
    Ok(count as usize)
}

/// Checks that device `ordinal` exists.
pub fn check_device(ordinal: usize) -> Result<(), CudaError> {
    let count = device_count()?;
    if ordinal >= count {
        return Err(CudaError::Unavailable(format!(
            "device cuda:{ordinal} requested but the driver reports {count} device(s)"
        )));
    }
    Ok(())
}

/// The NVRTC version `(major, minor)`, or why NVRTC cannot be used.
pub fn nvrtc_version() -> Result<(i32, i32), CudaError> {
    static PROBE: OnceLock<Result<(i32, i32), CudaError>> = OnceLock::new();
    PROBE
        .get_or_init(|| without_panics("NVRTC", probe_nvrtc))
        .clone()
}

fn probe_nvrtc() -> Result<(i32, i32), CudaError> {
    match crate::require::env_flag("SADDLE_NO_NVRTC") {
        Ok(false) => {}
        Ok(true) => {
            return Err(CudaError::Unavailable(
                "NVRTC switched off by SADDLE_NO_NVRTC=1".into(),
            ))
        }
        Err(e) => return Err(CudaError::Unavailable(e)),
    }
    // SAFETY: only tries to dlopen libnvrtc by its usual names.
    if !unsafe { nsys::is_culib_present() } {
        return Err(CudaError::Unavailable(
            "no NVRTC library (libnvrtc.so) found on the library path; \
             `eval \"$(../shared/tools/nvrtc-setup.sh)\"` installs one"
                .into(),
        ));
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is present; nvrtcVersion writes two ints.
    let status = unsafe { nsys::nvrtcVersion(&mut major, &mut minor) };
    if status != nsys::nvrtcResult::NVRTC_SUCCESS {
        return Err(CudaError::Unavailable(format!(
            "nvrtcVersion failed ({status:?})"
        )));
    }
    Ok((major, minor))
}

/// Where kernels come from: NVRTC (its version), else the on-disk PTX cache (when it holds
/// any; a module missing there fails when first loaded, naming it), else why neither can serve.
/// Asked once per process.
pub fn kernel_source() -> Result<String, CudaError> {
    static PROBE: OnceLock<Result<String, CudaError>> = OnceLock::new();
    PROBE.get_or_init(probe_kernel_source).clone()
}

fn probe_kernel_source() -> Result<String, CudaError> {
    let no_nvrtc = match nvrtc_version() {
        Ok((major, minor)) => return Ok(format!("NVRTC {major}.{minor}")),
        Err(CudaError::Unavailable(why)) => why,
        Err(e) => e.to_string(),
    };
    match compile::cache_dir() {
        Some(dir) if compile::holds_ptx(&dir) => {
            Ok(format!("PTX from {} (no NVRTC: {no_nvrtc})", dir.display()))
        }
        dir => Err(CudaError::Unavailable(format!(
            "{no_nvrtc}; and no cached PTX to load instead ({})",
            dir.map_or("no cache folder".to_string(), |d| format!(
                "none in {}; SADDLE_PTX_CACHE names another",
                d.display()
            ))
        ))),
    }
}

/// One line saying which device [`best`] picks and why (used by the engine's `Device::best`).
pub fn best() -> (Option<usize>, String) {
    match device_count() {
        Ok(n) => match kernel_source() {
            Ok(source) => (
                Some(0),
                format!("using cuda:0 ({n} CUDA device(s), kernels by {source})"),
            ),
            Err(e) => (
                None,
                format!("using the CPU: {n} CUDA device(s) but no kernels for them ({e})"),
            ),
        },
        Err(e) => (None, format!("using the CPU: {e}")),
    }
}
