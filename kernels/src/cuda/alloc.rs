//! A caching device allocator: freed blocks go to per-size-class free lists and serve later
//! requests of the same class, so a training step that allocates the same tensors every
//! iteration stops calling the driver after the first one.
//!
//! Size classes: requests round up to a multiple of 512 bytes up to 1 MiB, and above that to
//! 2^k · {1, 1.25, 1.5, 1.75} (at most 25% slack on large tensors, few distinct classes for the
//! free lists). A block is only reused for its own class, never split, which keeps the
//! bookkeeping trivial; the price is memory held in classes nobody asks for any more, which
//! [`CachingAllocator::empty_cache`] returns (and which is returned automatically, then the
//! allocation retried once, when the driver reports out-of-memory). A request that still cannot
//! be served fails with [`CudaError::OutOfMemory`]: the bytes asked and the allocator's
//! accounting, for the engine to report with the op that asked.
//!
//! Reuse is safe without events because each device has one stream (see [`super`]): a block
//! released while kernels that read it are still queued is handed only to work queued after
//! them on the same stream.
//!
//! The raw allocation is behind [`RawAlloc`] so the bookkeeping is tested without a GPU.

use super::compile::lock;
use super::CudaError;
use crate::OutOfMemory;
use cudarc::driver::sys::CUresult;
use cudarc::driver::{CudaSlice, CudaStream, DeviceRepr, DriverError};
use std::collections::BTreeMap;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

/// Granularity of small classes.
const SMALL_STEP: usize = 512;
/// Largest small class.
const SMALL_MAX: usize = 1 << 20;

/// The class (bytes actually reserved) of a request of `bytes`.
pub fn size_class(bytes: usize) -> usize {
    let bytes = bytes.max(1);
    if bytes <= SMALL_MAX {
        return bytes.div_ceil(SMALL_STEP) * SMALL_STEP;
    }
    let log2_floor = usize::BITS - 1 - (bytes - 1).leading_zeros();
    let step = 1usize << (log2_floor - 2);
    bytes.div_ceil(step) * step
}

/// The driver side of allocation: reserve and return device memory (an address and its size).
pub trait RawAlloc {
    /// Reserves exactly `bytes` and returns the block's device address.
    fn alloc(&mut self, bytes: usize) -> Result<u64, RawError>;
    /// Returns a block from [`RawAlloc::alloc`] (its address and the size it was asked with).
    fn free(&mut self, ptr: u64, bytes: usize);
    /// The ordinal of the device the memory is on.
    fn device(&self) -> usize;
    /// The device's free and total memory in bytes, where the driver can tell (for reports).
    fn device_memory(&self) -> Option<(usize, usize)>;
}

/// Why [`RawAlloc::alloc`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawError {
    /// The device has no room for the block: worth retrying after freeing some.
    OutOfMemory,
    /// Anything else (a lost device, an error an earlier kernel left behind), passed on as is.
    Failed(CudaError),
}

/// Counters of one allocator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocStats {
    /// Allocation requests.
    pub requests: u64,
    /// Requests served from a free list.
    pub cache_hits: u64,
    /// Calls to the driver's allocation.
    pub raw_allocs: u64,
    /// Calls to the driver's free.
    pub raw_frees: u64,
    /// Bytes in blocks handed out and not yet released (class sizes).
    pub bytes_in_use: usize,
    /// Bytes in free lists.
    pub bytes_cached: usize,
    /// Largest `bytes_in_use` seen.
    pub peak_bytes_in_use: usize,
    /// Times the driver was out of memory and the cache was returned to it before a retry.
    pub cache_flushes: u64,
    /// Requests that failed for lack of memory (after the retry).
    pub out_of_memory: u64,
}

/// The allocator the module describes: per-class free lists over a [`RawAlloc`], with
/// [`AllocStats`] counters. Each device holds one behind a mutex.
pub struct CachingAllocator<R: RawAlloc> {
    raw: R,
    free: BTreeMap<usize, Vec<u64>>,
    stats: AllocStats,
}

impl<R: RawAlloc> CachingAllocator<R> {
    /// An allocator with empty free lists, taking its memory from `raw`.
    pub fn new(raw: R) -> Self {
        CachingAllocator {
            raw,
            free: BTreeMap::new(),
            stats: AllocStats::default(),
        }
    }

    /// A block of at least `bytes`: `(address, class)`. Pass both back to [`Self::release`].
    pub fn allocate(&mut self, bytes: usize) -> Result<(u64, usize), CudaError> {
        self.stats.requests += 1;
        if bytes > isize::MAX as usize {
            // No device has that much (and its class would overflow).
            return Err(self.out_of_memory(bytes, 0));
        }
        let class = size_class(bytes);
        let ptr = match self.free.get_mut(&class).and_then(Vec::pop) {
            Some(ptr) => {
                self.stats.cache_hits += 1;
                self.stats.bytes_cached -= class;
                ptr
            }
            None => self.raw_alloc(bytes, class)?,
        };
        self.stats.bytes_in_use += class;
        self.stats.peak_bytes_in_use = self.stats.peak_bytes_in_use.max(self.stats.bytes_in_use);
        Ok((ptr, class))
    }

    /// A new block of `class` bytes from the driver for a request of `bytes`. When the driver
    /// is out of memory while blocks of other classes sit in the cache, they are given back and
    /// the allocation tried once more.
    fn raw_alloc(&mut self, bytes: usize, class: usize) -> Result<u64, CudaError> {
        let mut released = 0;
        loop {
            self.stats.raw_allocs += 1;
            match self.raw.alloc(class) {
                Ok(ptr) => return Ok(ptr),
                Err(RawError::Failed(e)) => return Err(e),
                Err(RawError::OutOfMemory) if self.stats.bytes_cached > 0 => {
                    released = self.stats.bytes_cached;
                    self.stats.cache_flushes += 1;
                    self.empty_cache();
                }
                Err(RawError::OutOfMemory) => return Err(self.out_of_memory(bytes, released)),
            }
        }
    }

    /// The error for a request of `bytes` that cannot be served, after `released` bytes of
    /// cache were returned to the driver.
    fn out_of_memory(&mut self, bytes: usize, released: usize) -> CudaError {
        self.stats.out_of_memory += 1;
        CudaError::OutOfMemory(OutOfMemory {
            device: self.raw.device(),
            requested: bytes,
            in_use: self.stats.bytes_in_use,
            released,
            device_memory: self.raw.device_memory(),
        })
    }

    /// Returns a block obtained from [`Self::allocate`] to its free list.
    pub fn release(&mut self, ptr: u64, class: usize) {
        self.stats.bytes_in_use -= class;
        self.stats.bytes_cached += class;
        self.free.entry(class).or_default().push(ptr);
    }

    /// Frees every cached block.
    pub fn empty_cache(&mut self) {
        for (class, ptrs) in std::mem::take(&mut self.free) {
            for ptr in ptrs {
                self.raw.free(ptr, class);
                self.stats.raw_frees += 1;
            }
        }
        self.stats.bytes_cached = 0;
    }

    /// The counters so far.
    pub fn stats(&self) -> AllocStats {
        self.stats
    }
}

impl<R: RawAlloc> Drop for CachingAllocator<R> {
    fn drop(&mut self) {
        self.empty_cache();
    }
}

/// Device memory from cudarc on the device's stream (stream-ordered `cuMemAllocAsync` where the
/// device supports it).
pub(crate) struct StreamAlloc(pub(crate) Arc<CudaStream>);

impl RawAlloc for StreamAlloc {
    fn alloc(&mut self, bytes: usize) -> Result<u64, RawError> {
        // SAFETY: raw bytes; every typed use goes through DeviceBuffer, whose users write before
        // reading (or accept uninitialised contents, as `CudaDevice::alloc` documents).
        match unsafe { self.0.alloc::<u8>(bytes) } {
            Ok(slice) => Ok(slice.leak()),
            Err(DriverError(CUresult::CUDA_ERROR_OUT_OF_MEMORY)) => Err(RawError::OutOfMemory),
            Err(e) => Err(RawError::Failed(CudaError::driver("device allocation", e))),
        }
    }
    fn free(&mut self, ptr: u64, bytes: usize) {
        // SAFETY: `ptr` came from `alloc` above with this size and is no longer referenced;
        // dropping the re-wrapped slice frees it on the stream.
        drop(unsafe { self.0.upgrade_device_ptr::<u8>(ptr, bytes) });
    }
    fn device(&self) -> usize {
        self.0.context().ordinal()
    }
    fn device_memory(&self) -> Option<(usize, usize)> {
        self.0.context().mem_get_info().ok()
    }
}

pub(crate) type DevicePool = Arc<Mutex<CachingAllocator<StreamAlloc>>>;

/// A typed device buffer from the caching allocator; dereferences to a cudarc [`CudaSlice`] (so
/// it can be passed to launchers and copies) and returns its block to the cache when dropped.
pub struct DeviceBuffer<T> {
    slice: ManuallyDrop<CudaSlice<T>>,
    class: usize,
    pool: DevicePool,
}

impl<T: DeviceRepr> DeviceBuffer<T> {
    /// `len` elements from `pool`, uninitialised.
    pub(crate) fn new(
        pool: &DevicePool,
        stream: &Arc<CudaStream>,
        len: usize,
    ) -> Result<Self, CudaError> {
        let bytes = len.checked_mul(std::mem::size_of::<T>()).ok_or_else(|| {
            CudaError::invalid("device allocation", format!("{len} elements overflow"))
        })?;
        let (ptr, class) = lock(pool).allocate(bytes)?;
        // SAFETY: the block holds at least `bytes` and stays reserved until this buffer drops.
        let slice = unsafe { stream.upgrade_device_ptr::<T>(ptr, len) };
        Ok(DeviceBuffer {
            slice: ManuallyDrop::new(slice),
            class,
            pool: pool.clone(),
        })
    }
}

impl<T> Deref for DeviceBuffer<T> {
    type Target = CudaSlice<T>;
    fn deref(&self) -> &CudaSlice<T> {
        &self.slice
    }
}

impl<T> DerefMut for DeviceBuffer<T> {
    fn deref_mut(&mut self) -> &mut CudaSlice<T> {
        &mut self.slice
    }
}

impl<T> Drop for DeviceBuffer<T> {
    fn drop(&mut self) {
        // SAFETY: taken once, here; `leak` hands the address back without freeing it.
        let slice = unsafe { ManuallyDrop::take(&mut self.slice) };
        let ptr = slice.leak();
        lock(&self.pool).release(ptr, self.class);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out increasing fake addresses and is out of memory above a byte budget (or fails
    /// every call with another error when `broken`).
    struct FakeRaw {
        next: u64,
        live: usize,
        budget: usize,
        broken: bool,
    }

    impl RawAlloc for FakeRaw {
        fn alloc(&mut self, bytes: usize) -> Result<u64, RawError> {
            if self.broken {
                return Err(RawError::Failed(CudaError::driver("fake", "device lost")));
            }
            if self.live + bytes > self.budget {
                return Err(RawError::OutOfMemory);
            }
            self.live += bytes;
            self.next += bytes as u64;
            Ok(self.next)
        }
        fn free(&mut self, _ptr: u64, bytes: usize) {
            self.live -= bytes;
        }
        fn device(&self) -> usize {
            3
        }
        fn device_memory(&self) -> Option<(usize, usize)> {
            Some((self.budget - self.live, self.budget))
        }
    }

    fn allocator(budget: usize) -> CachingAllocator<FakeRaw> {
        CachingAllocator::new(FakeRaw {
            next: 0,
            live: 0,
            budget,
            broken: false,
        })
    }

    /// The report of a failed allocation (panics on anything else).
    fn out_of_memory(result: Result<(u64, usize), CudaError>) -> OutOfMemory {
        match result {
            Err(CudaError::OutOfMemory(oom)) => oom,
            other => panic!("expected out of memory, got {other:?}"),
        }
    }

    #[test]
    fn classes_round_up_with_bounded_slack() {
        assert_eq!(size_class(0), 512);
        assert_eq!(size_class(1), 512);
        assert_eq!(size_class(512), 512);
        assert_eq!(size_class(513), 1024);
        assert_eq!(size_class(1 << 20), 1 << 20);
        assert_eq!(size_class((1 << 20) + 1), 1_310_720); // 1.25 MiB
        assert_eq!(size_class(3 << 20), 3 << 20); // 1.5 · 2^21 is a class
        assert_eq!(size_class((3 << 20) + 1), 3_670_016); // -> 3.5 MiB
        for bytes in (1..40_000_000).step_by(99_991) {
            let c = size_class(bytes);
            assert!(c >= bytes && size_class(c) == c, "{bytes} -> {c}");
            assert!(c - bytes <= (bytes / 4).max(SMALL_STEP), "{bytes} -> {c}");
        }
    }

    #[test]
    fn steady_state_training_does_no_raw_allocation() {
        let mut a = allocator(usize::MAX);
        // One "step": a few tensors of assorted sizes, allocated then all released.
        let sizes = [4usize, 1000, 4096, 65_536, 3 << 20, 1000, 12_345_678];
        let step = |a: &mut CachingAllocator<FakeRaw>| {
            let blocks: Vec<_> = sizes.iter().map(|&s| a.allocate(s).unwrap()).collect();
            for (ptr, class) in blocks {
                a.release(ptr, class);
            }
        };
        step(&mut a);
        let warm = a.stats();
        assert_eq!(warm.raw_allocs, sizes.len() as u64);
        for _ in 0..10 {
            step(&mut a);
        }
        let s = a.stats();
        assert_eq!(
            s.raw_allocs, warm.raw_allocs,
            "no driver calls after warm-up"
        );
        assert_eq!(s.cache_hits, 10 * sizes.len() as u64);
        assert_eq!(s.requests, 11 * sizes.len() as u64);
        assert_eq!(s.bytes_in_use, 0);
        assert_eq!(
            s.bytes_cached,
            sizes.iter().map(|&b| size_class(b)).sum::<usize>()
        );
        assert_eq!(s.peak_bytes_in_use, s.bytes_cached);
    }

    #[test]
    fn blocks_are_reused_only_within_their_class() {
        let mut a = allocator(usize::MAX);
        let (p1, c1) = a.allocate(1000).unwrap();
        a.release(p1, c1);
        let (p2, _) = a.allocate(3000).unwrap();
        assert_ne!(p1, p2);
        let (p3, c3) = a.allocate(900).unwrap(); // same 1024-byte class as the first
        assert_eq!((p3, c3), (p1, c1));
        assert_eq!(a.stats().raw_allocs, 2);
    }

    #[test]
    fn out_of_memory_returns_the_cache_and_retries() {
        let mut a = allocator(4096);
        let (p, c) = a.allocate(3000).unwrap(); // 3072 bytes
        a.release(p, c);
        // 2048 more would exceed the budget while 3072 sit in the cache: the cache goes back
        // to the driver and the second try succeeds.
        let (_, c2) = a.allocate(2048).unwrap();
        assert_eq!(c2, 2048);
        let s = a.stats();
        assert_eq!((s.raw_frees, s.bytes_cached, s.bytes_in_use), (1, 0, 2048));
        assert_eq!((s.raw_allocs, s.cache_flushes, s.out_of_memory), (3, 1, 0));
        // A request the empty cache cannot help with fails at once, saying what it asked for
        // and what the allocator holds.
        let oom = out_of_memory(a.allocate(4000));
        assert_eq!(
            oom,
            OutOfMemory {
                device: 3,
                requested: 4000,
                in_use: 2048,
                released: 0,
                device_memory: Some((2048, 4096)),
            }
        );
        let s = a.stats();
        assert_eq!((s.raw_allocs, s.cache_flushes, s.out_of_memory), (4, 1, 1));
        a.empty_cache();
        assert_eq!(a.stats().raw_frees, 1);
    }

    #[test]
    fn a_request_the_released_cache_cannot_cover_reports_what_was_released() {
        let mut a = allocator(4096);
        let kept = a.allocate(2048).unwrap();
        let (p, c) = a.allocate(1000).unwrap(); // 1024 bytes, then cached
        a.release(p, c);
        // 3072 bytes: 2048 + 1024 + 3072 > 4096 and, with the cache returned, 2048 + 3072 still
        // is.
        let oom = out_of_memory(a.allocate(3000));
        assert_eq!(
            (oom.requested, oom.in_use, oom.released, oom.device_memory),
            (3000, 2048, 1024, Some((2048, 4096)))
        );
        let s = a.stats();
        assert_eq!(
            (s.raw_allocs, s.raw_frees),
            (4, 1),
            "one retry, after the flush"
        );
        assert_eq!((s.cache_flushes, s.out_of_memory), (1, 1));
        assert_eq!((s.bytes_in_use, s.bytes_cached), (2048, 0));
        // The failure leaves the accounting whole: the live block goes back, and a request
        // that fits is served.
        a.release(kept.0, kept.1);
        assert_eq!(a.allocate(3000).unwrap().1, 3072);
        let s = a.stats();
        assert_eq!(
            (s.bytes_in_use, s.bytes_cached, s.cache_flushes),
            (3072, 0, 2)
        );
    }

    #[test]
    fn other_driver_errors_pass_through_without_a_retry() {
        let mut a = allocator(usize::MAX);
        let (p, c) = a.allocate(1000).unwrap();
        a.release(p, c);
        a.raw.broken = true;
        let err = a.allocate(5000).unwrap_err();
        assert_eq!(err, CudaError::driver("fake", "device lost"));
        let s = a.stats();
        assert_eq!((s.raw_allocs, s.cache_flushes, s.out_of_memory), (2, 0, 0));
        assert_eq!(s.bytes_cached, 1024, "the cache stays");
    }

    #[test]
    fn an_impossible_request_is_out_of_memory_without_a_driver_call() {
        let mut a = allocator(usize::MAX);
        for bytes in [usize::MAX, isize::MAX as usize + 1] {
            let oom = out_of_memory(a.allocate(bytes));
            assert_eq!((oom.requested, oom.in_use, oom.released), (bytes, 0, 0));
        }
        assert_eq!(a.stats().raw_allocs, 0);
        // The largest possible request gets a class without overflowing.
        assert_eq!(size_class(isize::MAX as usize), 1 << 63);
    }
}
