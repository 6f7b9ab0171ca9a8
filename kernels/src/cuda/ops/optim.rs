//! Launchers for `cuda/optim.cu`: fused Adam/AdamW and SGD steps with the CPU kernels'
//! hyper-parameter structs.

use super::{check_len, launch, u32_size};
use crate::cpu::optim::{AdamStep, SgdStep};
use crate::cuda::{CudaDevice, CudaError, CudaFloat, KernelModule};
use cudarc::driver::{CudaSlice, DeviceRepr};

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct AdamArgs {
    beta1: f64,
    beta2: f64,
    one_minus_beta1: f64,
    one_minus_beta2: f64,
    step_size: f64,
    bc2_sqrt: f64,
    eps: f64,
    weight_decay: f64,
    decay: f64,
    has_weight_decay: i32,
    decoupled: i32,
    amsgrad: i32,
}
// SAFETY: repr(C) scalars laid out as the C struct.
unsafe impl DeviceRepr for AdamArgs {}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct SgdArgs {
    lr: f64,
    momentum: f64,
    one_minus_dampening: f64,
    weight_decay: f64,
    has_weight_decay: i32,
    has_momentum: i32,
    nesterov: i32,
    first: i32,
}
// SAFETY: as above.
unsafe impl DeviceRepr for SgdArgs {}

/// One Adam step in place over `p` (`m`, `v` and, for AMSGrad, `vmax` are its state).
#[allow(clippy::too_many_arguments)]
pub fn adam_update<T: CudaFloat>(
    dev: &CudaDevice,
    p: &mut CudaSlice<T>,
    g: &CudaSlice<T>,
    m: &mut CudaSlice<T>,
    v: &mut CudaSlice<T>,
    vmax: Option<&mut CudaSlice<T>>,
    h: AdamStep,
    n: usize,
) -> Result<(), CudaError> {
    const OP: &str = "cuda adam";
    let n32 = u32_size(OP, n)?;
    if h.step == 0 {
        return Err(CudaError::invalid(OP, "the step count starts at 1"));
    }
    check_len(OP, "param", p, n)?;
    check_len(OP, "grad", g, n)?;
    check_len(OP, "m", m, n)?;
    check_len(OP, "v", v, n)?;
    if let Some(vm) = vmax.as_deref() {
        check_len(OP, "vmax", vm, n)?;
    }
    if n == 0 {
        return Ok(());
    }
    let args = AdamArgs {
        beta1: h.beta1,
        beta2: h.beta2,
        one_minus_beta1: 1.0 - h.beta1,
        one_minus_beta2: 1.0 - h.beta2,
        step_size: h.lr / (1.0 - h.beta1.powi(h.step as i32)),
        bc2_sqrt: (1.0 - h.beta2.powi(h.step as i32)).sqrt(),
        eps: h.eps,
        weight_decay: h.weight_decay,
        decay: 1.0 - h.lr * h.weight_decay,
        has_weight_decay: i32::from(h.weight_decay != 0.0),
        decoupled: i32::from(h.decoupled),
        amsgrad: i32::from(vmax.is_some()),
    };
    let f = dev.function(KernelModule::Optim, &format!("adam_{}", T::SUFFIX))?;
    let cfg = dev.grid_1d(n, 256);
    let null = 0u64;
    match vmax {
        Some(vm) => launch!(dev, f, cfg, OP; &n32, p, g, m, v, vm, &args),
        None => launch!(dev, f, cfg, OP; &n32, p, g, m, v, &null, &args),
    }
}

/// One SGD step in place; `buf` is the momentum buffer (unused, may be empty, without
/// momentum).
pub fn sgd_update<T: CudaFloat>(
    dev: &CudaDevice,
    p: &mut CudaSlice<T>,
    g: &CudaSlice<T>,
    buf: &mut CudaSlice<T>,
    h: SgdStep,
    n: usize,
) -> Result<(), CudaError> {
    const OP: &str = "cuda sgd";
    let n32 = u32_size(OP, n)?;
    check_len(OP, "param", p, n)?;
    check_len(OP, "grad", g, n)?;
    if h.momentum != 0.0 {
        check_len(OP, "momentum buffer", buf, n)?;
    }
    if n == 0 {
        return Ok(());
    }
    let args = SgdArgs {
        lr: h.lr,
        momentum: h.momentum,
        one_minus_dampening: 1.0 - h.dampening,
        weight_decay: h.weight_decay,
        has_weight_decay: i32::from(h.weight_decay != 0.0),
        has_momentum: i32::from(h.momentum != 0.0),
        nesterov: i32::from(h.nesterov),
        first: i32::from(h.first),
    };
    let f = dev.function(KernelModule::Optim, &format!("sgd_{}", T::SUFFIX))?;
    launch!(dev, f, dev.grid_1d(n, 256), OP; &n32, p, g, buf, &args)
}
