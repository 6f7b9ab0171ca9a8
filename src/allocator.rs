//! Allocator settings for training processes.
//!
//! A training step allocates and frees the same large activation and gradient buffers (hundreds
//! of KiB to tens of MiB each) every time. glibc's malloc serves blocks above a moving threshold
//! with fresh `mmap`ed pages and gives a freed heap top back to the system, so each step pays a
//! page fault and the kernel's zeroing for every 4 KiB of those buffers (about 3% of a DCGAN CPU
//! step in `perf`, plus the cache misses on fresh pages). Keeping them in the heap made the DCGAN 32x32 step 7-10% faster in
//! alternating runs on the 2-core development machine (benches/results/2026-12-04-*).

/// Keeps freed blocks of up to 32 MiB (glibc's ceiling for this setting) in the process heap
/// instead of returning them to the system, and trims the heap only past 256 MiB of free space
/// at its top. Call it once at the start of a training binary; a no-op except on Linux with
/// glibc. The `saddle` program calls it; programs embedding the crates may call it too.
pub fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes malloc's tuning parameters; it is called with documented
    // parameter numbers and in-range values, and has no other effect on memory safety.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}
