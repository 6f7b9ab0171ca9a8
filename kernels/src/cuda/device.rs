//! One CUDA device: its context, its single stream, the modules loaded on it and its caching
//! allocator. Devices are created once per ordinal and shared ([`CudaDevice::get`]).

use super::alloc::{AllocStats, CachingAllocator, DeviceBuffer, DevicePool, StreamAlloc};
use super::compile::{self, lock};
use super::{probe, CudaError, KernelModule};
use cudarc::driver::sys::CUdevice_attribute;
use cudarc::driver::{
    result, CudaContext, CudaEvent, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtrMut,
    DeviceRepr, LaunchConfig, PinnedHostSlice, ValidAsZeroBits,
};
use cudarc::nvrtc::Ptx;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A CUDA device opened for saddle: its context, its one stream, the kernels loaded so far and
/// its caching allocator. Shared through [`CudaDevice::get`]; all its methods queue work on the
/// one stream.
pub struct CudaDevice {
    ordinal: usize,
    name: String,
    arch: (u32, u32),
    sm_count: u32,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    modules: Mutex<HashMap<KernelModule, Arc<CudaModule>>>,
    functions: Mutex<HashMap<String, CudaFunction>>,
    pool: DevicePool,
    staging: Mutex<Staging>,
}

/// Page-locked host buffers that uploads are staged through. A copy from pageable memory may
/// make the driver wait for the stream to drain first (it stages through its own pinned memory),
/// so an upload queued mid-step, or from the batch-prefetch thread while a step's kernels run,
/// would stall on them; from page-locked memory the copy is queued and the call returns at once.
/// A ring of slots: each slot is reused only after the copy out of it finished (its event), which
/// with [`STAGING_SLOTS`] slots is long past by the time the ring comes round.
struct Staging {
    slots: Vec<StagingSlot>,
    next: usize,
}

struct StagingSlot {
    /// Grown (to a power of two) when an upload does not fit.
    buf: Option<PinnedHostSlice<u8>>,
    /// Recorded on the stream after the last copy out of `buf`.
    copied: CudaEvent,
}

/// Uploads in flight before the ring makes one wait for the oldest.
const STAGING_SLOTS: usize = 8;
/// Larger uploads (weights moved once at start-up) copy from pageable memory rather than grow a
/// slot's page-locked buffer to their size for good.
const STAGING_MAX_BYTES: usize = 16 << 20;

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cuda:{} ({}, sm_{}{}, {} SMs)",
            self.ordinal, self.name, self.arch.0, self.arch.1, self.sm_count
        )
    }
}

impl CudaDevice {
    /// The shared handle of device `ordinal`, created on first use. Fails with
    /// [`CudaError::Unavailable`] when there is no driver, no such device, or neither NVRTC nor
    /// cached PTX ([`probe::kernel_source`]).
    pub fn get(ordinal: usize) -> Result<Arc<CudaDevice>, CudaError> {
        static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<CudaDevice>>>> = OnceLock::new();
        probe::check_device(ordinal)?;
        probe::kernel_source()?;
        let mut devices = lock(DEVICES.get_or_init(Default::default));
        if let Some(d) = devices.get(&ordinal) {
            return Ok(d.clone());
        }
        let dev = Arc::new(Self::open(ordinal)?);
        devices.insert(ordinal, dev.clone());
        Ok(dev)
    }

    fn open(ordinal: usize) -> Result<CudaDevice, CudaError> {
        let ctx = CudaContext::new(ordinal).map_err(|e| CudaError::driver("context", e))?;
        // One stream per device orders all work (see the module docs of `cuda`), so cudarc's
        // per-buffer events would only add two event records per kernel argument.
        // SAFETY: nothing has been allocated in this context yet, and we never use a second
        // stream.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx
            .new_stream()
            .map_err(|e| CudaError::driver("stream", e))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| CudaError::driver("compute capability", e))?;
        let sm_count = ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| CudaError::driver("device attribute", e))?;
        let name = ctx.name().unwrap_or_else(|_| "unknown GPU".to_string());
        let pool = Arc::new(Mutex::new(CachingAllocator::new(StreamAlloc(
            stream.clone(),
        ))));
        let slots = (0..STAGING_SLOTS)
            .map(|_| {
                Ok(StagingSlot {
                    buf: None,
                    copied: ctx.new_event(None)?,
                })
            })
            .collect::<Result<_, cudarc::driver::DriverError>>()
            .map_err(|e| CudaError::driver("staging event", e))?;
        Ok(CudaDevice {
            ordinal,
            name,
            arch: (major as u32, minor as u32),
            sm_count: sm_count.max(1) as u32,
            ctx,
            stream,
            modules: Mutex::default(),
            functions: Mutex::default(),
            pool,
            staging: Mutex::new(Staging { slots, next: 0 }),
        })
    }

    /// The device's ordinal (`cuda:N`).
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }
    /// The name the driver gives the device ("unknown GPU" when it gives none).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Compute capability `(major, minor)`.
    pub fn arch(&self) -> (u32, u32) {
        self.arch
    }
    /// Number of streaming multiprocessors (at least 1).
    pub fn sm_count(&self) -> u32 {
        self.sm_count
    }
    /// The device's only stream: every copy and kernel goes on it.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }
    /// The device's cudarc context.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// `len` uninitialised elements from the caching allocator.
    pub fn alloc<T: DeviceRepr>(&self, len: usize) -> Result<DeviceBuffer<T>, CudaError> {
        DeviceBuffer::new(&self.pool, &self.stream, len)
    }

    /// `len` zeroed elements.
    pub fn alloc_zeros<T: DeviceRepr + ValidAsZeroBits>(
        &self,
        len: usize,
    ) -> Result<DeviceBuffer<T>, CudaError> {
        let mut buf = self.alloc::<T>(len)?;
        self.stream
            .memset_zeros(&mut *buf)
            .map_err(|e| CudaError::driver("memset", e))?;
        Ok(buf)
    }

    /// A device copy of `data`, queued on the stream without waiting for it: staged through a
    /// ring of page-locked buffers up to 16 MiB (so the copy never waits for queued kernels),
    /// copied from `data` directly above that.
    pub fn upload<T: DeviceRepr>(&self, data: &[T]) -> Result<DeviceBuffer<T>, CudaError> {
        let mut buf = self.alloc::<T>(data.len())?;
        let bytes = std::mem::size_of_val(data);
        if bytes == 0 || bytes > STAGING_MAX_BYTES {
            self.copy_to_device(data, &mut buf)?;
            return Ok(buf);
        }
        let err = |e| CudaError::driver("staged copy to device", e);
        let mut staging = lock(&self.staging);
        let at = staging.next;
        staging.next = (at + 1) % STAGING_SLOTS;
        let slot = &mut staging.slots[at];
        // The previous copy out of this slot must have left it before it is overwritten.
        slot.copied.synchronize().map_err(err)?;
        if slot.buf.as_ref().is_none_or(|b| b.len() < bytes) {
            // SAFETY: contents are written below before any copy reads them.
            let grown = unsafe { self.ctx.alloc_pinned::<u8>(bytes.next_power_of_two()) };
            slot.buf = Some(grown.map_err(err)?);
        }
        let host = slot
            .buf
            .as_mut()
            .expect("allocated above")
            .as_mut_slice()
            .map_err(err)?;
        // SAFETY: `DeviceRepr` types are plain values; this reads `data`'s bytes as they are.
        let src = unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), bytes) };
        host[..bytes].copy_from_slice(src);
        {
            let (dst, _record) = buf.device_ptr_mut(&self.stream);
            // SAFETY: `dst` holds at least `bytes` (allocated for `data.len()` elements) and
            // belongs to this stream; the page-locked source stays untouched until `copied`
            // (recorded next) says the copy is done.
            unsafe { result::memcpy_htod_async(dst, &host[..bytes], self.stream.cu_stream()) }
                .map_err(err)?;
        }
        slot.copied.record(&self.stream).map_err(err)?;
        Ok(buf)
    }

    /// Copies `data` into the start of `dst` (queued on the stream).
    pub fn copy_to_device<T: DeviceRepr>(
        &self,
        data: &[T],
        dst: &mut CudaSlice<T>,
    ) -> Result<(), CudaError> {
        if dst.len() < data.len() {
            return Err(CudaError::invalid(
                "copy to device",
                format!("{} elements into a buffer of {}", data.len(), dst.len()),
            ));
        }
        self.stream
            .memcpy_htod(data, dst)
            .map_err(|e| CudaError::driver("copy to device", e))
    }

    /// The contents of `src` (waits for the stream: this is a synchronisation point).
    pub fn download<T: DeviceRepr + Clone + Default>(
        &self,
        src: &CudaSlice<T>,
    ) -> Result<Vec<T>, CudaError> {
        let mut out = vec![T::default(); src.len()];
        self.stream
            .memcpy_dtoh(src, &mut out)
            .map_err(|e| CudaError::driver("copy to host", e))?;
        self.synchronize()?;
        Ok(out)
    }

    /// Waits for all queued work, and reports any error a kernel raised.
    pub fn synchronize(&self) -> Result<(), CudaError> {
        self.stream
            .synchronize()
            .map_err(|e| CudaError::driver("synchronize", e))?;
        self.ctx
            .check_err()
            .map_err(|e| CudaError::driver("deferred", e))
    }

    /// The counters of this device's caching allocator.
    pub fn alloc_stats(&self) -> AllocStats {
        lock(&self.pool).stats()
    }

    /// Returns the allocator's cached blocks to the driver.
    pub fn empty_cache(&self) {
        lock(&self.pool).empty_cache();
    }

    /// Kernel `name` of `module`, compiling and loading the module on first use.
    pub fn function(&self, module: KernelModule, name: &str) -> Result<CudaFunction, CudaError> {
        if let Some(f) = lock(&self.functions).get(name) {
            return Ok(f.clone());
        }
        let loaded = self.module(module)?;
        let f = loaded
            .load_function(name)
            .map_err(|e| CudaError::driver("load kernel", e))?;
        lock(&self.functions).insert(name.to_string(), f.clone());
        Ok(f)
    }

    fn module(&self, module: KernelModule) -> Result<Arc<CudaModule>, CudaError> {
        let mut modules = lock(&self.modules);
        if let Some(m) = modules.get(&module) {
            return Ok(m.clone());
        }
        let ptx = compile::ptx_for(module, self.arch)?;
        let loaded = self
            .ctx
            .load_module(Ptx::from_src(ptx.to_string()))
            .map_err(|e| CudaError::driver("load module", e))?;
        modules.insert(module, loaded.clone());
        Ok(loaded)
    }

    /// A 1-D launch of `threads`-thread blocks covering `n` items with grid-stride loops: at
    /// most 8 blocks per SM (a few waves), at least one block.
    pub fn grid_1d(&self, n: usize, threads: u32) -> LaunchConfig {
        let blocks = n
            .div_ceil(threads as usize)
            .clamp(1, 8 * self.sm_count as usize);
        LaunchConfig {
            grid_dim: (blocks as u32, 1, 1),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: 0,
        }
    }
}
