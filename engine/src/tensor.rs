use crate::autograd::{self, Node};
use crate::layout::{contiguous_strides, Layout};
use crate::storage::{CpuStorage, Storage};
use crate::{with_float, DType, Device, Element, Error, Result, Rng};
use rayon::prelude::*;
use saddle_kernels::cpu::strided;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

fn encode_device(d: Device) -> usize {
    match d {
        Device::Cpu => 0,
        Device::Cuda(n) => n + 1,
    }
}

/// Identity of a tensor (not of its storage): gradients are keyed by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

impl TensorId {
    fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TensorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

pub(crate) struct TensorImpl {
    pub(crate) id: TensorId,
    pub(crate) storage: Arc<RwLock<Storage>>,
    pub(crate) layout: Layout,
    pub(crate) dtype: DType,
    /// Encoded [`Device`] (0: CPU, n + 1: `cuda:n`); atomic so a leaf (a parameter) can move to
    /// another device in place, keeping its id ([`Tensor::to_device_`]).
    device: AtomicUsize,
    /// Atomic so a leaf (a parameter) can be frozen or unfrozen in place, keeping its id.
    pub(crate) requires_grad: AtomicBool,
    /// How this tensor was computed; `None` for leaves and for results built without grad.
    pub(crate) grad_fn: Option<Arc<Node>>,
}

/// An n-dimensional array on a device, cheap to clone (clones share storage).
///
/// Views (reshape of contiguous data, permute/transpose, narrow, broadcast) share storage with
/// their source; ops return new tensors. A tensor built from tensors that require gradients
/// records how it was made, and [`Tensor::backward`] walks that record.
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<TensorImpl>);

impl Tensor {
    // ---------------------------------------------------------------- construction

    pub(crate) fn from_parts(
        storage: Arc<RwLock<Storage>>,
        layout: Layout,
        dtype: DType,
        device: Device,
    ) -> Tensor {
        Tensor(Arc::new(TensorImpl {
            id: TensorId::fresh(),
            storage,
            layout,
            dtype,
            device: AtomicUsize::new(encode_device(device)),
            requires_grad: AtomicBool::new(false),
            grad_fn: None,
        }))
    }

    /// A new contiguous CPU tensor owning `data`.
    pub(crate) fn from_cpu(data: CpuStorage, shape: &[usize]) -> Tensor {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>());
        let dtype = data.dtype();
        Tensor::from_parts(
            Arc::new(RwLock::new(Storage::Cpu(data))),
            Layout::contiguous(shape),
            dtype,
            Device::Cpu,
        )
    }

    /// A new contiguous tensor from typed data (internal: no checks beyond debug asserts).
    pub(crate) fn from_data<T: Element>(data: Vec<T>, shape: &[usize]) -> Tensor {
        Tensor::from_cpu(T::into_storage(data), shape)
    }

    fn check_device(op: &'static str, device: Device) -> Result<()> {
        match device {
            Device::Cpu => Ok(()),
            other => Err(other.unsupported(op, DType::F32)),
        }
    }

    /// A tensor holding `data` (row-major) with the given shape, on `device`. Fails when
    /// `data.len()` is not the product of `shape` or the device is unavailable.
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize], device: Device) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        if numel != data.len() {
            return Err(Error::bad_shape(
                "from_vec",
                shape,
                format!("needs {numel} elements, got {}", data.len()),
            ));
        }
        on_cuda!(
            !device.is_cpu(),
            Tensor::from_data(data, shape).copy_to_device(device)
        );
        Self::check_device("from_vec", device)?;
        Ok(Tensor::from_data(data, shape))
    }

    /// A 0-dimensional CPU tensor (shape `[]`) holding `value`.
    pub fn scalar<T: Element>(value: T) -> Tensor {
        Tensor::from_data(vec![value], &[])
    }

    /// A tensor of `shape` with every element `value` (rounded to `dtype`).
    ///
    /// ```
    /// use saddle_engine::{DType, Device, Tensor};
    /// let t = Tensor::full(0.5, &[2, 3], DType::F32, Device::Cpu)?;
    /// assert_eq!(t.shape(), &[2, 3]);
    /// assert_eq!(t.to_vec::<f32>()?, vec![0.5; 6]);
    /// assert_eq!(t.zeros_like()?.ones_like()?.to_vec::<f32>()?, vec![1.0; 6]);
    /// let r = Tensor::arange(0.0, 1.0, 0.25, DType::F64, Device::Cpu)?;
    /// assert_eq!(r.to_vec::<f64>()?, vec![0.0, 0.25, 0.5, 0.75]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn full(value: f64, shape: &[usize], dtype: DType, device: Device) -> Result<Tensor> {
        on_cuda!(
            !device.is_cpu(),
            crate::cuda::full("full", device, value, shape, dtype)
        );
        Self::check_device("full", device)?;
        let n = shape.iter().product();
        Ok(match dtype {
            DType::F32 => Tensor::from_data(vec![value as f32; n], shape),
            DType::F64 => Tensor::from_data(vec![value; n], shape),
            DType::BF16 | DType::F16 => {
                Tensor::from_cpu(CpuStorage::from_f64(dtype, (0..n).map(|_| value)), shape)
            }
        })
    }

    /// A tensor of `shape` filled with 0.
    pub fn zeros(shape: &[usize], dtype: DType, device: Device) -> Result<Tensor> {
        Self::full(0.0, shape, dtype, device)
    }

    /// A tensor of `shape` filled with 1.
    pub fn ones(shape: &[usize], dtype: DType, device: Device) -> Result<Tensor> {
        Self::full(1.0, shape, dtype, device)
    }

    /// Zeros of this tensor's shape, dtype and device (no history).
    pub fn zeros_like(&self) -> Result<Tensor> {
        Self::zeros(self.shape(), self.dtype(), self.device())
    }

    /// Ones of this tensor's shape, dtype and device (no history).
    pub fn ones_like(&self) -> Result<Tensor> {
        Self::ones(self.shape(), self.dtype(), self.device())
    }

    /// `value` everywhere, in this tensor's shape, dtype and device (no history).
    pub fn full_like(&self, value: f64) -> Result<Tensor> {
        Self::full(value, self.shape(), self.dtype(), self.device())
    }

    /// `start, start+step, ...` up to but excluding `end`, as a 1-D tensor of `dtype`. Fails for
    /// a zero or non-finite step, or one that moves away from `end`.
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType, device: Device) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || (end - start) / step < 0.0 {
            return Err(Error::arg(
                "arange",
                format!("empty or endless range {start}..{end} step {step}"),
            ));
        }
        let n = ((end - start) / step).ceil() as usize;
        let values: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
        Tensor::from_vec(values, &[n], device)?.to_dtype(dtype)
    }

    /// A tensor of `shape` sampled from N(mean, std²), drawn from `rng` (on a device, by the
    /// device from the same stream).
    pub fn randn(
        shape: &[usize],
        mean: f64,
        std: f64,
        dtype: DType,
        device: Device,
        rng: &mut Rng,
    ) -> Result<Tensor> {
        on_cuda!(
            !device.is_cpu(),
            crate::cuda::random(
                "randn",
                device,
                shape,
                dtype,
                crate::cuda::Draw::Normal { mean, std },
                rng
            )
        );
        // The words of n `normal_f64` draws, taken in one batch (same values, same state), the
        // transcendental functions of large draws on all threads.
        let values = Self::values_from_words(shape, 4, rng, |w| {
            mean + std * Rng::normal_from_words([w[0], w[1], w[2], w[3]])
        });
        Tensor::from_vec(values, shape, device)?.to_dtype(dtype)
    }

    /// A tensor of `shape` sampled from U[low, high), drawn from `rng`.
    pub fn rand(
        shape: &[usize],
        low: f64,
        high: f64,
        dtype: DType,
        device: Device,
        rng: &mut Rng,
    ) -> Result<Tensor> {
        on_cuda!(
            !device.is_cpu(),
            crate::cuda::random(
                "rand",
                device,
                shape,
                dtype,
                crate::cuda::Draw::Uniform { low, high },
                rng
            )
        );
        // The words of n `uniform_f64` draws, taken in one batch (same values, same state).
        let values = Self::values_from_words(shape, 2, rng, |w| {
            low + (high - low) * Rng::unit_f64((u64::from(w[0]) << 32) | u64::from(w[1]))
        });
        Tensor::from_vec(values, shape, device)?.to_dtype(dtype)
    }

    /// One value per element of `shape`, element i being `value` of words `k i .. k i + k` of
    /// the generator's stream (drawn in one batch); computed in parallel when there are many.
    fn values_from_words(
        shape: &[usize],
        k: usize,
        rng: &mut Rng,
        value: impl Fn(&[u32]) -> f64 + Sync + Send,
    ) -> Vec<f64> {
        let n: usize = shape.iter().product();
        let mut words = vec![0u32; k * n];
        rng.fill_u32(&mut words);
        if n >= 1 << 14 {
            words
                .par_chunks_exact(k)
                .with_min_len(1 << 12)
                .map(value)
                .collect()
        } else {
            words.chunks_exact(k).map(value).collect()
        }
    }

    // ---------------------------------------------------------------- accessors

    /// This tensor's identity, the key of its gradient in [`crate::Grads`]. `clone` keeps it;
    /// views, detached copies and op results are new tensors with ids of their own (except where
    /// an op has nothing to do and returns `self`, as `reshape` to the same shape).
    pub fn id(&self) -> TensorId {
        self.0.id
    }
    /// Size of each dimension (`[]` for a scalar).
    pub fn shape(&self) -> &[usize] {
        self.0.layout.shape()
    }
    /// Shape, strides and offset of this view into its storage.
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }
    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.layout.rank()
    }
    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }
    /// Element type.
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    /// Where the storage lives.
    pub fn device(&self) -> Device {
        match self.0.device.load(Ordering::Relaxed) {
            0 => Device::Cpu,
            n => Device::Cuda(n - 1),
        }
    }
    /// True when the tensor lives on a CUDA device.
    pub fn is_cuda(&self) -> bool {
        self.0.device.load(Ordering::Relaxed) != 0
    }
    /// True when the view is dense and row-major (it may still start at an offset).
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }
    /// True when gradients flow to or through this tensor: a leaf marked with
    /// [`Tensor::with_requires_grad`], or a result computed from one while grad mode was on.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }
    /// A leaf was created by the user, not computed by an op that recorded its history.
    pub fn is_leaf(&self) -> bool {
        self.0.grad_fn.is_none()
    }
    pub(crate) fn grad_fn(&self) -> Option<&Arc<Node>> {
        self.0.grad_fn.as_ref()
    }

    /// Size of dimension `dim`, with a clear error when it is out of range.
    pub fn dim(&self, op: &'static str, dim: usize) -> Result<usize> {
        self.shape().get(dim).copied().ok_or_else(|| {
            Error::bad_shape(
                op,
                self.shape(),
                format!("dimension {dim} out of range for rank {}", self.rank()),
            )
        })
    }

    /// Marks a leaf as needing gradients (or not) and returns it (same id, same storage). On a
    /// computed tensor, `false` returns a detached copy and `true` changes nothing.
    pub fn with_requires_grad(self, on: bool) -> Tensor {
        if self.is_leaf() {
            self.0.requires_grad.store(on, Ordering::Relaxed);
            self
        } else if on {
            self
        } else {
            self.detach()
        }
    }

    /// Freezes (`false`) or unfreezes a leaf in place; every handle to it sees the change.
    pub fn set_requires_grad(&self, on: bool) -> Result<()> {
        if !self.is_leaf() {
            return Err(Error::Autograd(
                "requires_grad can only be changed on leaf tensors (use detach)".into(),
            ));
        }
        self.0.requires_grad.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// The same values, cut off from the autodiff graph (shares storage).
    pub fn detach(&self) -> Tensor {
        Tensor::from_parts(
            self.0.storage.clone(),
            self.0.layout.clone(),
            self.0.dtype,
            self.device(),
        )
    }

    /// A view sharing storage with `self` and a new layout; records `backward` when needed.
    pub(crate) fn view_with(&self, layout: Layout) -> Tensor {
        Tensor::from_parts(self.0.storage.clone(), layout, self.0.dtype, self.device())
    }

    /// Attaches an autodiff node to a freshly made `self` when grad mode is on and any input
    /// requires a gradient. `backward(ctx)` returns one gradient per input (None where
    /// `ctx.needs[i]` is false): with ops that record when `ctx.create_graph` is set, so that
    /// [`Tensor::grad_with_graph`] can go through the op, else with the fastest formula. The
    /// closure reads the inputs and the output from `ctx` rather than keeping copies.
    pub(crate) fn record(
        self,
        op: &'static str,
        inputs: &[&Tensor],
        backward: impl Fn(&autograd::GradCtx) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
    ) -> Tensor {
        self.attach(op, inputs, Arc::new(backward))
    }

    fn attach(self, op: &'static str, inputs: &[&Tensor], backward: autograd::Backward) -> Tensor {
        if !autograd::is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
            return self;
        }
        let node = Arc::new(Node::new(
            op,
            inputs.iter().map(|t| (*t).clone()).collect(),
            backward,
        ));
        let mut out = self;
        if Arc::get_mut(&mut out.0).is_none() {
            out = out.detach();
        }
        let inner = Arc::get_mut(&mut out.0).expect("a fresh tensor has one handle");
        inner.requires_grad = AtomicBool::new(true);
        inner.grad_fn = Some(node);
        out
    }

    // ---------------------------------------------------------------- data access

    /// The storage behind this tensor, read-locked (an error naming `op` if a panic poisoned
    /// the lock).
    pub(crate) fn storage_read(&self, op: &'static str) -> Result<RwLockReadGuard<'_, Storage>> {
        self.0
            .storage
            .read()
            .map_err(|_| Error::arg(op, "tensor storage lock poisoned"))
    }

    /// The storage behind this tensor, write-locked, as [`Tensor::storage_read`].
    pub(crate) fn storage_write(&self, op: &'static str) -> Result<RwLockWriteGuard<'_, Storage>> {
        self.0
            .storage
            .write()
            .map_err(|_| Error::arg(op, "tensor storage lock poisoned"))
    }

    /// Runs `f` on the CPU storage behind this tensor (read lock held during `f`).
    pub(crate) fn with_storage<R>(
        &self,
        op: &'static str,
        f: impl FnOnce(&CpuStorage) -> Result<R>,
    ) -> Result<R> {
        let guard = self.storage_read(op)?;
        match &*guard {
            Storage::Cpu(s) => f(s),
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => Err(Error::NoCudaKernel {
                op,
                device: self.device(),
            }),
        }
    }

    /// Runs `f` on the values in row-major order: borrowed when the view is contiguous, gathered
    /// into a temporary buffer otherwise.
    pub(crate) fn with_contiguous<T: Element, R>(
        &self,
        op: &'static str,
        f: impl FnOnce(&[T]) -> R,
    ) -> Result<R> {
        let layout = &self.0.layout;
        self.with_storage(op, |s| {
            let data = T::slice(s).ok_or(Error::DTypeMismatch {
                op,
                lhs: T::DTYPE,
                rhs: s.dtype(),
            })?;
            Ok(gathered(data, layout, f))
        })
    }

    /// A contiguous CPU copy of this CPU tensor's values, whatever the dtype (no history).
    fn cpu_copy(&self, op: &'static str) -> Result<Tensor> {
        let l = &self.0.layout;
        let data = self.with_storage(op, |s| {
            Ok(match s {
                CpuStorage::F32(v) => CpuStorage::F32(gathered(v, l, <[f32]>::to_vec)),
                CpuStorage::F64(v) => CpuStorage::F64(gathered(v, l, <[f64]>::to_vec)),
                CpuStorage::BF16(v) => CpuStorage::BF16(gathered(v, l, <[half::bf16]>::to_vec)),
                CpuStorage::F16(v) => CpuStorage::F16(gathered(v, l, <[half::f16]>::to_vec)),
            })
        })?;
        Ok(Tensor::from_cpu(data, self.shape()))
    }

    /// Runs `f` on the raw storage slice and the layout (for kernels that take strides).
    pub(crate) fn with_strided<T: Element, R>(
        &self,
        op: &'static str,
        f: impl FnOnce(&[T], &Layout) -> R,
    ) -> Result<R> {
        let layout = &self.0.layout;
        self.with_storage(op, |s| {
            let data = T::slice(s).ok_or(Error::DTypeMismatch {
                op,
                lhs: T::DTYPE,
                rhs: s.dtype(),
            })?;
            Ok(f(data, layout))
        })
    }

    /// The values in row-major order as a `Vec<T>`; `T` must match the dtype, except that bf16
    /// and f16 values are read as either (exactly: both hold every 16-bit value).
    /// On a device this copies the values back (and waits for the device).
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        on_cuda!(
            self.is_cuda(),
            self.copy_to_device(Device::Cpu)?.to_vec::<T>()
        );
        if self.dtype().is_half() {
            return Ok(self.to_vec_f64()?.into_iter().map(T::from_f64).collect());
        }
        self.with_contiguous("to_vec", |d: &[T]| d.to_vec())
    }

    /// The values converted to f64 (exactly), whatever the dtype.
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        on_cuda!(
            self.is_cuda(),
            self.copy_to_device(Device::Cpu)?.to_vec_f64()
        );
        let l = &self.0.layout;
        self.with_storage("to_vec_f64", |s| {
            Ok(match s {
                CpuStorage::F32(v) => gathered(v, l, |d| d.iter().map(|&x| f64::from(x)).collect()),
                CpuStorage::F64(v) => gathered(v, l, <[f64]>::to_vec),
                CpuStorage::BF16(v) => gathered(v, l, |d| d.iter().map(|x| x.to_f64()).collect()),
                CpuStorage::F16(v) => gathered(v, l, |d| d.iter().map(|x| x.to_f64()).collect()),
            })
        })
    }

    /// The single value of a one-element tensor, as f64.
    pub fn to_scalar(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(Error::bad_shape(
                "to_scalar",
                self.shape(),
                "needs exactly one element",
            ));
        }
        Ok(self.to_vec_f64()?[0])
    }

    /// A contiguous tensor with the same values (no copy when already contiguous).
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() && self.0.layout.offset() == 0 {
            return Ok(self.clone());
        }
        let out = cuda_or!(
            self.is_cuda(),
            crate::cuda::copy("contiguous", self),
            self.cpu_copy("contiguous")?
        );
        // Gradient of a copy is the identity.
        Ok(out.record("contiguous", &[self], |ctx| Ok(vec![Some(ctx.g.clone())])))
    }

    /// A copy with its own storage and no history (`detach` shares storage; this does not).
    pub fn deep_copy(&self) -> Result<Tensor> {
        on_cuda!(self.is_cuda(), crate::cuda::copy("deep_copy", self));
        self.cpu_copy("deep_copy")
    }

    /// Converts to another dtype, rounding each value once to the nearest (ties to even) where
    /// the target is narrower, on the tensor's device. Differentiable: the gradient is converted
    /// back to the source dtype.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let out = crate::backend::backend(self.device()).cast("to_dtype", self, dtype)?;
        let src = self.dtype();
        Ok(out.record("to_dtype", &[self], move |ctx| {
            Ok(vec![Some(ctx.g.to_dtype(src)?)])
        }))
    }

    /// Overwrites this tensor's values in place with those of `src` (same shape and dtype).
    /// Not recorded by autodiff: this is how optimisers update parameters.
    pub fn assign(&self, src: &Tensor) -> Result<()> {
        if src.shape() != self.shape() {
            return Err(Error::shape("assign", self.shape(), src.shape(), ""));
        }
        if src.dtype() != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "assign",
                lhs: self.dtype(),
                rhs: src.dtype(),
            });
        }
        on_cuda!(self.is_cuda(), {
            let src = src.detach().to_device(self.device())?;
            crate::cuda::copy_into("assign", &src, self)
        });
        with_float!(self, "assign", |T| {
            let values = src.to_vec::<T>()?;
            self.with_values_mut(|data: &mut [T]| data.copy_from_slice(&values))
        })
    }

    /// Runs `f` on this tensor's values in place. The tensor must be contiguous and `T` must
    /// match its dtype. Not recorded by autodiff (optimisers, running statistics, EMA).
    pub fn with_values_mut<T: Element, R>(&self, f: impl FnOnce(&mut [T]) -> R) -> Result<R> {
        const OP: &str = "with_values_mut";
        if !self.is_contiguous() {
            return Err(Error::arg(
                OP,
                "tensor must be contiguous to be written in place",
            ));
        }
        let mut guard = self.storage_write(OP)?;
        // One arm without the `cuda` feature, two with it.
        #[allow(clippy::infallible_destructuring_match)]
        let s = match &mut *guard {
            Storage::Cpu(s) => s,
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => {
                return Err(Error::NoCudaKernel {
                    op: OP,
                    device: self.device(),
                })
            }
        };
        let dtype = s.dtype();
        let data = T::slice_mut(s).ok_or(Error::DTypeMismatch {
            op: OP,
            lhs: T::DTYPE,
            rhs: dtype,
        })?;
        let off = self.0.layout.offset();
        Ok(f(&mut data[off..off + self.numel()]))
    }

    /// The same values on `device` (a copy unless already there). Differentiable: the gradient
    /// goes back to the source's device. Moving to a device waits for nothing; moving back to
    /// the CPU waits for the device's queued work.
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        if device == self.device() {
            return Ok(self.clone());
        }
        let out = self.copy_to_device(device)?;
        let src = self.device();
        Ok(out.record("to_device", &[self], move |ctx| {
            Ok(vec![Some(ctx.g.to_device(src)?)])
        }))
    }

    /// A contiguous copy of the values on `device`, without history.
    // The `return` ends the CUDA build's block; without the feature the `Err` below is the tail.
    #[allow(clippy::needless_return)]
    fn copy_to_device(&self, device: Device) -> Result<Tensor> {
        const OP: &str = "to_device";
        if device == self.device() {
            return self.deep_copy();
        }
        #[cfg(feature = "cuda")]
        {
            if device.is_cpu() {
                return crate::cuda::to_host(OP, self);
            }
            // To a device: from the host values (a device-to-device move goes through the host,
            // which only multi-GPU code would do).
            let host = if self.is_cuda() {
                self.copy_to_device(Device::Cpu)?
            } else {
                self.clone()
            };
            let l = &host.0.layout;
            return host.with_storage(OP, |s| crate::cuda::upload_storage(OP, device, s, l));
        }
        #[cfg(not(feature = "cuda"))]
        Err(device.unsupported(OP, self.dtype()))
    }

    /// Moves this leaf to `device` in place: same id (so optimiser state and gradients keyed by
    /// it stay valid), new storage. For parameters and buffers, before any views of them exist:
    /// fails on a computed tensor, a non-contiguous one, or one whose storage another tensor
    /// (a view, a detached copy) shares, since that tensor would keep the old device.
    pub fn to_device_(&self, device: Device) -> Result<()> {
        const OP: &str = "to_device_";
        if device == self.device() {
            return Ok(());
        }
        if !self.is_leaf() {
            return Err(Error::arg(OP, "only a leaf tensor can move in place"));
        }
        if !self.is_contiguous() || self.layout().offset() != 0 {
            return Err(Error::bad_shape(
                OP,
                self.shape(),
                "only a contiguous tensor can move in place",
            ));
        }
        if Arc::strong_count(&self.0.storage) != 1 {
            return Err(Error::arg(
                OP,
                "another tensor (a view or a detached copy) shares this storage",
            ));
        }
        let moved = self.copy_to_device(device)?;
        let new = {
            let mut g = moved.storage_write(OP)?;
            std::mem::replace(&mut *g, Storage::Cpu(CpuStorage::F32(Vec::new())))
        };
        *self.storage_write(OP)? = new;
        self.0
            .device
            .store(encode_device(device), Ordering::Relaxed);
        Ok(())
    }

    /// Row-major strides of this tensor's shape (what a contiguous copy would have).
    pub fn contiguous_strides(&self) -> Vec<usize> {
        contiguous_strides(self.shape())
    }
}

/// Runs `f` on the values of `data` seen through `layout`, in row-major order: borrowed when the
/// view is contiguous, gathered into a temporary buffer otherwise.
pub(crate) fn gathered<T: Copy + Send + Sync, R>(
    data: &[T],
    layout: &Layout,
    f: impl FnOnce(&[T]) -> R,
) -> R {
    if layout.is_contiguous() {
        f(&data[layout.offset()..layout.offset() + layout.numel()])
    } else {
        f(&strided::to_contiguous(
            data,
            layout.shape(),
            layout.strides(),
            layout.offset(),
        ))
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor(shape={:?}, dtype={}, device={}",
            self.shape(),
            self.dtype(),
            self.device()
        )?;
        if self.requires_grad() {
            write!(f, ", requires_grad")?;
        }
        if let Some(node) = self.grad_fn() {
            write!(f, ", grad_fn={}", node.op)?;
        }
        if self.numel() <= 16 {
            if let Ok(v) = self.to_vec_f64() {
                write!(f, ", values={v:?}")?;
            }
        }
        write!(f, ")")
    }
}
