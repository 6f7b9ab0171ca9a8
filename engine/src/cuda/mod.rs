//! The engine's CUDA side: device storage, host <-> device copies, creation ops on a device, and
//! (in [`ops`]) the device implementations the public ops dispatch to.
//!
//! Everything runs the kernels of `saddle_kernels::cuda` on the device's single stream, so work
//! queued by one op is ordered before the next without events; nothing waits for the device
//! except a read back to the host ([`download`]). Buffers come from the device's caching
//! allocator and go back to it when the last tensor sharing them is dropped.
//!
//! Layouts stay device-independent metadata: a view of a device tensor shares its buffer, and
//! kernels that need dense operands get them from [`dense`] (a strided-copy kernel).

pub(crate) mod backend;
pub(crate) mod ops;

use crate::dtype::{bf16_from_f64, f16_from_f64};
use crate::layout::Layout;
use crate::storage::{CpuStorage, Storage};
use crate::tensor::{gathered, Tensor};
use crate::{DType, Device, Error, Result, Rng};
use saddle_kernels::cuda::ops::elementwise::{self, View};
use saddle_kernels::cuda::ops::random;
use saddle_kernels::cuda::{Bf16, CudaDevice, CudaError, CudaFloat, CudaStore, DeviceBuffer, F16};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// Device memory of one dtype.
pub(crate) enum CudaData {
    F32(DeviceBuffer<f32>),
    F64(DeviceBuffer<f64>),
    BF16(DeviceBuffer<Bf16>),
    F16(DeviceBuffer<F16>),
}

/// A tensor's memory on a CUDA device: the buffer and the device that owns it (its context,
/// stream and allocator).
pub struct CudaStorage {
    pub(crate) dev: Arc<CudaDevice>,
    pub(crate) data: CudaData,
}

impl CudaStorage {
    pub fn dtype(&self) -> DType {
        match self.data {
            CudaData::F32(_) => DType::F32,
            CudaData::F64(_) => DType::F64,
            CudaData::BF16(_) => DType::BF16,
            CudaData::F16(_) => DType::F16,
        }
    }
    pub fn len(&self) -> usize {
        match &self.data {
            CudaData::F32(b) => b.len(),
            CudaData::F64(b) => b.len(),
            CudaData::BF16(b) => b.len(),
            CudaData::F16(b) => b.len(),
        }
    }
}

impl fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CudaStorage({} x {} on cuda:{})",
            self.len(),
            self.dtype(),
            self.dev.ordinal()
        )
    }
}

/// Element types with device storage: f32 and f64 (the types `with_float!` binds, which the
/// arithmetic kernels take) and the bits of bf16 and f16 values.
pub(crate) trait DevStore: CudaStore {
    const STORED: DType;
    fn buf(d: &CudaData) -> Option<&DeviceBuffer<Self>>;
    fn buf_mut(d: &mut CudaData) -> Option<&mut DeviceBuffer<Self>>;
    fn wrap(b: DeviceBuffer<Self>) -> CudaData;
    /// `v` rounded to this type (once, to nearest even).
    fn rounded(v: f64) -> Self;
}

macro_rules! dev_store {
    ($t:ty, $variant:ident, |$v:ident| $rounded:expr) => {
        impl DevStore for $t {
            const STORED: DType = DType::$variant;
            fn rounded($v: f64) -> Self {
                $rounded
            }
            fn buf(d: &CudaData) -> Option<&DeviceBuffer<Self>> {
                match d {
                    CudaData::$variant(b) => Some(b),
                    _ => None,
                }
            }
            fn buf_mut(d: &mut CudaData) -> Option<&mut DeviceBuffer<Self>> {
                match d {
                    CudaData::$variant(b) => Some(b),
                    _ => None,
                }
            }
            fn wrap(b: DeviceBuffer<Self>) -> CudaData {
                CudaData::$variant(b)
            }
        }
    };
}
dev_store!(f32, F32, |v| v as f32);
dev_store!(f64, F64, |v| v);
dev_store!(Bf16, BF16, |v| Bf16(bf16_from_f64(v).to_bits()));
dev_store!(F16, F16, |v| F16(f16_from_f64(v).to_bits()));

/// Runs `$body` with the type alias `$T` bound to the device element type of `$dtype`.
macro_rules! with_stored {
    ($dtype:expr, |$T:ident| $body:expr) => {
        with_stored!(@arms $dtype, $T, $body, F32 f32, F64 f64, BF16 Bf16, F16 F16)
    };
    (@arms $dtype:expr, $T:ident, $body:expr, $($variant:ident $t:ty),*) => {
        match $dtype {
            $(DType::$variant => {
                type $T = $t;
                $body
            })*
        }
    };
}

/// Maps a backend error to the engine's, naming the op (every device call of an op, its
/// allocations included, reports through this).
pub(crate) fn cu(op: &'static str) -> impl FnOnce(CudaError) -> Error {
    move |e| match e {
        CudaError::OutOfMemory(oom) => Error::OutOfMemory { op, oom },
        e => Error::Backend {
            op,
            reason: e.to_string(),
        },
    }
}

/// The shared handle of `device` (a CUDA device), or why it cannot be used.
pub(crate) fn handle(op: &'static str, device: Device) -> Result<Arc<CudaDevice>> {
    let Device::Cuda(ordinal) = device else {
        return Err(Error::arg(op, "internal: a CUDA handle for a CPU tensor"));
    };
    CudaDevice::get(ordinal).map_err(|e| Error::DeviceUnavailable {
        op,
        device,
        reason: e.to_string(),
    })
}

static POISON: AtomicBool = AtomicBool::new(false);
static TF32: AtomicBool = AtomicBool::new(false);

/// Lets f32 matrix products on CUDA devices use the tensor cores' TF32 inputs (relative error
/// about 1e-3 instead of 1e-6, several times faster). Off by default: results then match the
/// CPU to f32 rounding.
pub fn set_cuda_tf32(on: bool) {
    TF32.store(on, Ordering::Relaxed);
}

pub(crate) fn tf32_enabled() -> bool {
    TF32.load(Ordering::Relaxed)
}

/// Test aid: while on, every output buffer the engine allocates on a device is filled with NaN
/// before the kernel that should write it runs, so an element a kernel leaves unwritten shows up
/// as NaN instead of as whatever the allocator's cached block held. Off by default (it costs a
/// fill per allocation).
pub fn set_poison_outputs(on: bool) {
    POISON.store(on, Ordering::Relaxed);
}

/// `n` elements for an op's output (poisoned when [`set_poison_outputs`] is on).
pub(crate) fn alloc_out<T: DevStore>(
    op: &'static str,
    dev: &CudaDevice,
    n: usize,
) -> Result<DeviceBuffer<T>> {
    let mut buf = dev.alloc::<T>(n.max(1)).map_err(cu(op))?;
    if POISON.load(Ordering::Relaxed) {
        elementwise::fill(dev, &mut buf, n, T::NAN).map_err(cu(op))?;
    }
    Ok(buf)
}

/// An uninitialised device tensor (poisoned when [`set_poison_outputs`] is on) for an op that
/// writes every element.
pub(crate) fn empty(
    op: &'static str,
    device: Device,
    shape: &[usize],
    dtype: DType,
) -> Result<Tensor> {
    let dev = handle(op, device)?;
    let n: usize = shape.iter().product();
    with_stored!(dtype, |T| Ok(wrap(
        &dev,
        alloc_out::<T>(op, &dev, n)?,
        shape
    )))
}

/// A new contiguous tensor owning `buf`.
pub(crate) fn wrap<T: DevStore>(
    dev: &Arc<CudaDevice>,
    buf: DeviceBuffer<T>,
    shape: &[usize],
) -> Tensor {
    Tensor::from_parts(
        Arc::new(RwLock::new(Storage::Cuda(CudaStorage {
            dev: dev.clone(),
            data: T::wrap(buf),
        }))),
        Layout::contiguous(shape),
        T::STORED,
        Device::Cuda(dev.ordinal()),
    )
}

/// The kernels' view of a layout.
pub(crate) fn view(l: &Layout) -> View<'_> {
    View {
        shape: l.shape(),
        strides: l.strides(),
        offset: l.offset(),
    }
}

fn storage_buf<'a, T: DevStore>(
    op: &'static str,
    t: &Tensor,
    s: &'a Storage,
) -> Result<(&'a Arc<CudaDevice>, &'a DeviceBuffer<T>)> {
    match s {
        Storage::Cuda(c) => {
            let b = T::buf(&c.data).ok_or(Error::DTypeMismatch {
                op,
                lhs: T::STORED,
                rhs: c.dtype(),
            })?;
            Ok((&c.dev, b))
        }
        Storage::Cpu(_) => Err(Error::DeviceMismatch {
            op,
            lhs: t.device(),
            rhs: Device::Cpu,
        }),
    }
}

/// Runs `f` with the device and the raw buffers of `ts` (all on one device, dtype `T`), each
/// storage read-locked once even when several tensors share it (a second read lock on one
/// RwLock could wait behind a writer). `f` reads each tensor through its own layout.
pub(crate) fn with_bufs<T: DevStore, R>(
    op: &'static str,
    ts: &[&Tensor],
    f: impl FnOnce(&Arc<CudaDevice>, &[&DeviceBuffer<T>]) -> Result<R>,
) -> Result<R> {
    let first = ts
        .first()
        .ok_or_else(|| Error::arg(op, "internal: no device operands"))?;
    for t in ts {
        if t.device() != first.device() {
            return Err(Error::DeviceMismatch {
                op,
                lhs: first.device(),
                rhs: t.device(),
            });
        }
    }
    let mut guards: Vec<(&Arc<RwLock<Storage>>, RwLockReadGuard<Storage>)> = Vec::new();
    for t in ts {
        if !guards.iter().any(|(s, _)| Arc::ptr_eq(s, &t.0.storage)) {
            guards.push((&t.0.storage, t.storage_read(op)?));
        }
    }
    let mut bufs = Vec::with_capacity(ts.len());
    let mut dev = None;
    for t in ts {
        let (_, guard) = guards
            .iter()
            .find(|(s, _)| Arc::ptr_eq(s, &t.0.storage))
            .expect("locked above");
        let (d, b) = storage_buf::<T>(op, t, guard)?;
        dev.get_or_insert(d);
        bufs.push(b);
    }
    f(dev.expect("at least one operand"), &bufs)
}

/// Runs `f` with write access to the buffer of `t` (in-place updates).
pub(crate) fn with_buf_mut<T: DevStore, R>(
    op: &'static str,
    t: &Tensor,
    f: impl FnOnce(&Arc<CudaDevice>, &mut DeviceBuffer<T>) -> Result<R>,
) -> Result<R> {
    let mut guard = t.storage_write(op)?;
    match &mut *guard {
        Storage::Cuda(c) => {
            let dtype = c.dtype();
            let dev = c.dev.clone();
            let b = T::buf_mut(&mut c.data).ok_or(Error::DTypeMismatch {
                op,
                lhs: T::STORED,
                rhs: dtype,
            })?;
            f(&dev, b)
        }
        Storage::Cpu(_) => Err(Error::DeviceMismatch {
            op,
            lhs: t.device(),
            rhs: Device::Cpu,
        }),
    }
}

/// A copy of the values of `t` (any layout) as a new contiguous device tensor of dtype `D`.
fn copy_as<S: DevStore, D: DevStore>(op: &'static str, t: &Tensor) -> Result<Tensor> {
    let l = t.layout();
    with_bufs::<S, _>(op, &[t], |dev, b| {
        let mut out = alloc_out::<D>(op, dev, t.numel())?;
        let mut strides = Vec::new();
        let dst = View::contiguous(l.shape(), &mut strides);
        elementwise::strided_copy(dev, b[0], view(l), &mut out, dst).map_err(cu(op))?;
        Ok(wrap(dev, out, l.shape()))
    })
}

/// A contiguous copy of a device tensor (no history).
pub(crate) fn copy(op: &'static str, t: &Tensor) -> Result<Tensor> {
    with_stored!(t.dtype(), |T| copy_as::<T, T>(op, t))
}

/// `t` itself when it is contiguous from the start of its buffer, else a contiguous copy: what
/// the kernels that take dense operands need (no history).
pub(crate) fn dense(op: &'static str, t: &Tensor) -> Result<Tensor> {
    if t.is_contiguous() && t.layout().offset() == 0 {
        Ok(t.detach())
    } else {
        copy(op, &t.detach())
    }
}

/// Converts a device tensor to another dtype on the device, rounding each value once to nearest
/// even where the target is narrower (no history).
pub(crate) fn cast(op: &'static str, t: &Tensor, dtype: DType) -> Result<Tensor> {
    with_stored!(t.dtype(), |S| with_stored!(dtype, |D| copy_as::<S, D>(
        op, t
    )))
}

/// Copies the values of `src` (same shape and dtype, on `dst`'s device) into the view `dst` in
/// place.
pub(crate) fn copy_into(op: &'static str, src: &Tensor, dst: &Tensor) -> Result<()> {
    // The source is read under its own lock first when it shares the destination's storage.
    let src = if Arc::ptr_eq(&src.0.storage, &dst.0.storage) {
        copy(op, src)?
    } else {
        src.clone()
    };
    crate::with_float!(dst, op, |T| {
        let sl = src.layout().clone();
        let dl = dst.layout().clone();
        let guard = src.storage_read(op)?;
        let (_, x) = storage_buf::<T>(op, &src, &guard)?;
        with_buf_mut::<T, _>(op, dst, |dev, y| {
            elementwise::strided_copy(dev, x, view(&sl), y, view(&dl)).map_err(cu(op))
        })
    })
}

/// A device tensor holding `data` with `shape`.
pub(crate) fn upload<T: DevStore>(
    op: &'static str,
    device: Device,
    data: &[T],
    shape: &[usize],
) -> Result<Tensor> {
    let dev = handle(op, device)?;
    let buf = if data.is_empty() {
        dev.alloc::<T>(1).map_err(cu(op))?
    } else {
        dev.upload(data).map_err(cu(op))?
    };
    Ok(wrap(&dev, buf, shape))
}

/// The values of a device tensor in row-major order (waits for the device).
pub(crate) fn download<T: DevStore>(op: &'static str, t: &Tensor) -> Result<Vec<T>> {
    let d = dense(op, t)?;
    let n = d.numel();
    let mut v = with_bufs::<T, _>(op, &[&d], |dev, b| dev.download(b[0]).map_err(cu(op)))?;
    v.truncate(n);
    Ok(v)
}

/// A contiguous CPU copy of a device tensor (waits for the device).
pub(crate) fn to_host(op: &'static str, t: &Tensor) -> Result<Tensor> {
    let data = match t.dtype() {
        DType::F32 => CpuStorage::F32(download(op, t)?),
        DType::F64 => CpuStorage::F64(download(op, t)?),
        DType::BF16 => CpuStorage::BF16(
            download::<Bf16>(op, t)?
                .into_iter()
                .map(|b| half::bf16::from_bits(b.0))
                .collect(),
        ),
        DType::F16 => CpuStorage::F16(
            download::<F16>(op, t)?
                .into_iter()
                .map(|b| half::f16::from_bits(b.0))
                .collect(),
        ),
    };
    Ok(Tensor::from_cpu(data, t.shape()))
}

/// A device tensor holding the values of host storage `s` seen through `l`.
pub(crate) fn upload_storage(
    op: &'static str,
    device: Device,
    s: &CpuStorage,
    l: &Layout,
) -> Result<Tensor> {
    let shape = l.shape();
    match s {
        CpuStorage::F32(v) => gathered(v, l, |d| upload(op, device, d, shape)),
        CpuStorage::F64(v) => gathered(v, l, |d| upload(op, device, d, shape)),
        CpuStorage::BF16(v) => gathered(v, l, |d| {
            let bits: Vec<Bf16> = d.iter().map(|h| Bf16(h.to_bits())).collect();
            upload(op, device, &bits, shape)
        }),
        CpuStorage::F16(v) => gathered(v, l, |d| {
            let bits: Vec<F16> = d.iter().map(|h| F16(h.to_bits())).collect();
            upload(op, device, &bits, shape)
        }),
    }
}

/// `value` repeated over `shape` on `device`.
pub(crate) fn full(
    op: &'static str,
    device: Device,
    value: f64,
    shape: &[usize],
    dtype: DType,
) -> Result<Tensor> {
    fn go<T: DevStore>(
        op: &'static str,
        device: Device,
        v: f64,
        shape: &[usize],
    ) -> Result<Tensor> {
        let dev = handle(op, device)?;
        let n: usize = shape.iter().product();
        let mut buf = dev.alloc::<T>(n.max(1)).map_err(cu(op))?;
        elementwise::fill(&dev, &mut buf, n, T::rounded(v)).map_err(cu(op))?;
        Ok(wrap(&dev, buf, shape))
    }
    with_stored!(dtype, |T| go::<T>(op, device, value, shape))
}

/// Which Philox draw a device random tensor takes.
#[derive(Clone, Copy)]
pub(crate) enum Draw {
    Normal {
        mean: f64,
        std: f64,
    },
    Uniform {
        low: f64,
        high: f64,
    },
    /// Inverted-dropout mask with drop probability `p`.
    DropoutMask {
        p: f64,
    },
}

/// A random tensor drawn on the device from `rng`'s stream: the same values the CPU draws from
/// the same stream position when `rng` sits at a Philox block boundary (it then advances by the
/// same amount). Mid-block, the unused words of the current block are skipped first.
pub(crate) fn random(
    op: &'static str,
    device: Device,
    shape: &[usize],
    dtype: DType,
    draw: Draw,
    rng: &mut Rng,
) -> Result<Tensor> {
    fn go<T: DevStore + CudaFloat>(
        op: &'static str,
        device: Device,
        shape: &[usize],
        draw: Draw,
        rng: &mut Rng,
    ) -> Result<Tensor> {
        let dev = handle(op, device)?;
        let n: usize = shape.iter().product();
        let mut buf = alloc_out::<T>(op, &dev, n)?;
        let blocks = match draw {
            Draw::Normal { .. } => n,
            Draw::Uniform { .. } => n.div_ceil(2),
            Draw::DropoutMask { .. } => n.div_ceil(4),
        } as u64;
        let (seed, counter) = rng.take_blocks(blocks);
        let used = match draw {
            Draw::Normal { mean, std } => {
                random::normal(&dev, seed, counter, mean, std, &mut buf, n)
            }
            Draw::Uniform { low, high } => {
                random::uniform(&dev, seed, counter, low, high, &mut buf, n)
            }
            Draw::DropoutMask { p } => random::dropout_mask(&dev, seed, counter, p, &mut buf, n),
        }
        .map_err(cu(op))?;
        debug_assert_eq!(used, blocks);
        Ok(wrap(&dev, buf, shape))
    }
    match dtype {
        DType::F32 => go::<f32>(op, device, shape, draw, rng),
        DType::F64 => go::<f64>(op, device, shape, draw, rng),
        // 16-bit tensors: drawn in f32, then rounded (as the CPU draws in f64 and rounds).
        DType::BF16 | DType::F16 => cast(op, &go::<f32>(op, device, shape, draw, rng)?, dtype),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use saddle_kernels::OutOfMemory;

    #[test]
    fn an_allocation_that_cannot_be_served_names_the_op_and_the_bytes() {
        let oom = OutOfMemory {
            device: 0,
            requested: 3 << 29,
            in_use: 78 << 30,
            released: 1 << 30,
            device_memory: Some((200 << 20, 80 << 30)),
        };
        let err = cu("conv2d")(CudaError::OutOfMemory(oom.clone()));
        assert_eq!(err, Error::OutOfMemory { op: "conv2d", oom });
        let text = err.to_string();
        assert!(
            text.starts_with(
                "conv2d: out of GPU memory on cuda:0: 1.50 GiB asked, 78.00 GiB in use by saddle \
                 (1.00 GiB of cached blocks returned to the driver before retrying), 200.00 MiB \
                 free of the device's 80.00 GiB;"
            ),
            "{text}"
        );
        // Other backend errors keep their text, after the op.
        let err = cu("matmul")(CudaError::Unavailable("no driver".into()));
        assert_eq!(err.to_string(), "matmul: CUDA unavailable: no driver");
    }
}
