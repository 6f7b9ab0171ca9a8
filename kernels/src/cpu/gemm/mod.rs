//! General matrix multiply on strided operands: `C = A·B + beta·C`.
//!
//! A packed, cache-blocked GEMM in the style of BLIS / GotoBLAS:
//!
//! ```text
//! for jc in 0..n step NC                      (B panel: KC×NC, shared by all threads, in L3)
//!   for pc in 0..k step KC                    (fixed k-blocking: the accumulation order)
//!     pack B[pc.., jc..] into NR-column slivers            (in parallel)
//!     for each task (row block ≤ MC) × (column range)      (in parallel)
//!       pack A[ic.., pc..] into MR-row slivers              (per thread, stays in L2)
//!       for jr in the task's columns step NR                (a B sliver stays in L1)
//!         for ir in the row block step MR
//!           micro-kernel: MR×NR tile of C += A sliver · B sliver
//! ```
//!
//! Packing reads the operands through arbitrary strides, so transposed views cost the same as
//! contiguous ones. When C is narrow (n ≤ 512) and A row-major, the micro-kernel reads A in
//! place instead (packing it would be a larger share of the work) and the threads split the
//! columns, each running the loops above on its own B panel with no synchronisation at all.
//!
//! The micro-kernel is chosen once at run time from the CPU's features ([`isa`]): AVX-512F
//! (f32 6×32), AVX2+FMA (f32 6×16, f64 6×8; k loops in inline assembly), otherwise a portable
//! one written in plain Rust that the compiler vectorises. `SADDLE_CPU_ISA` caps the choice.
//!
//! Determinism: the k-blocking depends only on `k` (never on the number of threads), every C
//! element is accumulated over one k-block in increasing order by one micro-kernel call, and the
//! k-blocks are applied one after another. Threads only split the M/N plane, at MR/NR-aligned
//! boundaries, so the result is bit-identical for any rayon thread count.

mod kernel;
mod pack;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests;

use crate::Float;
use kernel::{MicroKernel, Portable};
use std::any::TypeId;
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A read-only strided matrix: element `(i, j)` lives at `data[i * rs + j * cs]`.
///
/// Transposes are free: swap `rows`/`cols` and `rs`/`cs`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    /// The elements, starting at element `(0, 0)`.
    pub data: &'a [T],
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Row stride: step in `data` from one row to the next.
    pub rs: usize,
    /// Column stride: step in `data` from one column to the next.
    pub cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A row-major matrix with rows of length `cols` packed one after another.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> T
    where
        T: Copy,
    {
        self.data[i * self.rs + j * self.cs]
    }

    /// Panics unless every element `(i, j)` with `i < rows`, `j < cols` is inside `data`.
    fn check_bounds(&self, what: &str) {
        if self.rows == 0 || self.cols == 0 {
            return;
        }
        let last = (self.rows - 1).checked_mul(self.rs).and_then(|r| {
            (self.cols - 1)
                .checked_mul(self.cs)
                .and_then(|c| r.checked_add(c))
        });
        assert!(
            last.is_some_and(|l| l < self.data.len()),
            "gemm: {what} ({}×{}, strides {}, {}) reaches past its buffer of {} elements",
            self.rows,
            self.cols,
            self.rs,
            self.cs,
            self.data.len()
        );
    }
}

/// Below this many multiply-adds (`m·n·k`) a product runs on the calling thread: rayon's
/// fork/join would cost more than it saves.
const PAR_MIN_WORK: usize = 64 * 64 * 64;

/// Up to this many columns of C, row-major A is read in place instead of packed.
const DIRECT_A_MAX_N: usize = 512;

/// `C[m×n] = A[m×k]·B[k×n] + beta·C`, where C is row-major with leading dimension `ldc`.
///
/// `beta` is 0 (overwrite; C's previous contents are ignored, even NaN) or any other value
/// (accumulate). Each element of C is accumulated over k in the same order whatever the number
/// of threads, so the result does not depend on it.
///
/// # Panics
/// If the inner dimensions differ, `ldc < n`, or a buffer is too small for its shape/strides.
pub fn gemm<T: Float>(a: MatRef<T>, b: MatRef<T>, beta: T, c: &mut [T], ldc: usize) {
    gemm_impl(a, b, beta, c, ldc, Path::Auto);
}

/// `C[m×n] = A·B` into memory that need not be initialised: every element of the `m × n` block
/// (rows `ldc` apart) is written and none is read, so a new output buffer skips being zeroed
/// first (zeroing these buffers was 4.6% of the GAN 2014 training step in `perf`). Same results as [`gemm`] with `beta = 0`.
///
/// # Panics
/// As [`gemm`].
pub fn gemm_uninit<T: Float>(a: MatRef<T>, b: MatRef<T>, c: &mut [MaybeUninit<T>], ldc: usize) {
    // SAFETY: `c` is valid for writes of `c.len()` elements (MaybeUninit<T> has T's layout),
    // and with beta = 0 no path reads C.
    unsafe {
        gemm_raw(
            a,
            b,
            T::ZERO,
            c.as_mut_ptr().cast::<T>(),
            c.len(),
            ldc,
            Path::Auto,
        )
    }
}

/// Which micro-kernel to use: the tests force each one this CPU has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// The widest one this CPU supports, capped by `SADDLE_CPU_ISA` (see [`isa`]).
    Auto,
    /// The plain-Rust micro-kernel.
    #[cfg_attr(not(test), allow(dead_code))]
    Portable,
    /// AVX2 + FMA (when the CPU has them; otherwise portable).
    #[cfg_attr(not(test), allow(dead_code))]
    Avx2,
}

impl Path {
    /// The kernels this path runs on this CPU.
    fn isa(self) -> Isa {
        match self {
            Path::Auto => isa(),
            Path::Avx2 => Isa::Avx2.min(Isa::detected()),
            Path::Portable => Isa::Portable,
        }
    }
}

/// The instruction sets the GEMM micro-kernels come in, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Plain Rust, vectorised by the compiler for the build's target (any CPU).
    Portable,
    /// x86-64 AVX2 + FMA: f32 6×16 and f64 6×8 tiles.
    Avx2,
    /// x86-64 AVX-512F: f32 6×32 tiles (f64 stays on AVX2).
    Avx512,
}

impl Isa {
    /// The name `SADDLE_CPU_ISA` takes: `portable`, `avx2` or `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The widest set this CPU has (detected once).
    pub fn detected() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if x86::has_avx512f() {
                return Isa::Avx512;
            }
            if x86::has_avx2_fma() {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }
}

/// The f32 multiply-add peak of the calling thread in GFLOP/s on the kernels' instruction set
/// ([`isa`]): twelve independent vector FMA chains for about `millis` milliseconds, the best of
/// five tries. The yardstick for the GEMM's efficiency (`saddle bench gemm` reports both).
/// `None` where the GEMM runs the portable kernel (no fixed vector width to probe).
pub fn fma_peak_gflops(millis: u64) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if isa() >= Isa::Avx2 {
        let avx512 = isa() == Isa::Avx512;
        // Calibrate the rounds to the wanted time on a short run, then take the best of five.
        let t = Instant::now();
        x86::fma_probe(avx512, 100_000);
        let per_round = t.elapsed().as_secs_f64().max(1e-9) / 100_000.0;
        let iters = ((millis as f64 / 1000.0) / per_round).clamp(1e4, 1e10) as usize;
        let mut best: f64 = 0.0;
        for _ in 0..5 {
            let t = Instant::now();
            let flops = x86::fma_probe(avx512, iters);
            best = best.max(flops / t.elapsed().as_secs_f64() / 1e9);
        }
        return Some(best);
    }
    let _ = millis;
    None
}

/// The instruction set the GEMM runs with: the widest this CPU has, or narrower when the
/// environment variable `SADDLE_CPU_ISA` (`portable`, `avx2` or `avx512`) asks for it, so that
/// the narrower paths can be tested and timed on a wider machine. Read once; an unknown value
/// or one the CPU lacks is capped at what the CPU has. Results are deterministic on each path,
/// and the AVX2 and AVX-512 f32 kernels give identical bits (one FMA chain per element, in
/// increasing k, with the same k-blocking): before the AVX-512 kernel is first chosen a few
/// products check that, falling back to AVX2 (with a warning) where they differ.
pub fn isa() -> Isa {
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| {
        let detected = Isa::detected();
        let wanted = match std::env::var("SADDLE_CPU_ISA").as_deref() {
            Ok("portable") => Isa::Portable,
            Ok("avx2") => Isa::Avx2,
            _ => Isa::Avx512,
        };
        let chosen = wanted.min(detected);
        #[cfg(target_arch = "x86_64")]
        if chosen == Isa::Avx512 && !x86::avx512_agrees_with_avx2() {
            eprintln!(
                "saddle: the AVX-512 GEMM kernel disagrees with the AVX2 one on this CPU; using AVX2"
            );
            return Isa::Avx2;
        }
        chosen
    })
}

fn gemm_impl<T: Float>(a: MatRef<T>, b: MatRef<T>, beta: T, c: &mut [T], ldc: usize, path: Path) {
    // SAFETY: `c` is an initialised slice of `c.len()` elements.
    unsafe { gemm_raw(a, b, beta, c.as_mut_ptr(), c.len(), ldc, path) }
}

/// The product into `len` elements at `c`.
///
/// # Safety
/// `c` must be valid for writes of `len` elements, and initialised unless `beta == 0`: with
/// `beta == 0` no path reads an element of C (the micro-kernels, edge tiles, `scale_c` and
/// `reference` all overwrite without reading).
unsafe fn gemm_raw<T: Float>(
    a: MatRef<T>,
    b: MatRef<T>,
    beta: T,
    c: *mut T,
    len: usize,
    ldc: usize,
    path: Path,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(
        b.rows, k,
        "gemm: inner dimensions differ ({m}×{k} · {}×{n})",
        b.rows
    );
    assert!(ldc >= n, "gemm: ldc {ldc} < n {n}");
    if m == 0 || n == 0 {
        return;
    }
    assert!(len >= (m - 1) * ldc + n, "gemm: C buffer too small");
    a.check_bounds("A");
    b.check_bounds("B");
    if k == 0 {
        scale_c(m, n, beta, c, ldc);
        return;
    }
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        // SAFETY: T is f32, so these are identity casts.
        let (a, b, c) = (
            cast_mat::<T, f32>(a),
            cast_mat::<T, f32>(b),
            c.cast::<f32>(),
        );
        let beta = beta.to_f64() as f32;
        #[cfg(target_arch = "x86_64")]
        match path.isa() {
            Isa::Avx512 => return driver::<f32, x86::Avx512F32>(a, b, beta, c, ldc),
            Isa::Avx2 => return driver::<f32, x86::Avx2F32>(a, b, beta, c, ldc),
            Isa::Portable => {}
        }
        driver::<f32, Portable<4, 8>>(a, b, beta, c, ldc);
    } else if TypeId::of::<T>() == TypeId::of::<f64>() {
        // SAFETY: T is f64, so these are identity casts.
        let (a, b, c) = (
            cast_mat::<T, f64>(a),
            cast_mat::<T, f64>(b),
            c.cast::<f64>(),
        );
        let beta = beta.to_f64();
        #[cfg(target_arch = "x86_64")]
        if path.isa() >= Isa::Avx2 {
            return driver::<f64, x86::Avx2F64>(a, b, beta, c, ldc);
        }
        driver::<f64, Portable<4, 4>>(a, b, beta, c, ldc);
    } else {
        reference(a, b, beta, c, ldc);
    }
}

/// `C = beta·C` (the `k = 0` case); `beta = 0` writes zeros without reading C.
///
/// # Safety
/// As [`gemm_raw`], for the `m × n` block at `c` with row stride `ldc`.
unsafe fn scale_c<T: Float>(m: usize, n: usize, beta: T, c: *mut T, ldc: usize) {
    for i in 0..m {
        for j in 0..n {
            let v = c.add(i * ldc + j);
            if beta == T::ZERO {
                v.write(T::ZERO);
            } else if beta != T::ONE {
                *v *= beta;
            }
        }
    }
}

/// The straightforward algorithm, for `Float` types other than f32/f64.
///
/// # Safety
/// As [`gemm_raw`].
unsafe fn reference<T: Float>(a: MatRef<T>, b: MatRef<T>, beta: T, c: *mut T, ldc: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    for i in 0..m {
        for j in 0..n {
            let mut acc = T::ZERO;
            for p in 0..k {
                acc = a.at(i, p).mul_add(b.at(p, j), acc);
            }
            let cv = c.add(i * ldc + j);
            if beta == T::ZERO {
                cv.write(acc);
            } else {
                *cv = (*cv).mul_add(beta, acc);
            }
        }
    }
}

/// # Safety
/// `T` and `U` must be the same type.
unsafe fn cast_mat<T, U>(m: MatRef<T>) -> MatRef<U> {
    MatRef {
        data: std::slice::from_raw_parts(m.data.as_ptr().cast::<U>(), m.data.len()),
        rows: m.rows,
        cols: m.cols,
        rs: m.rs,
        cs: m.cs,
    }
}

/// Element types with a pool of reusable, per-thread packing buffers.
trait Elem: Float {
    fn with_pool<R>(f: impl FnOnce(&mut Vec<Vec<Self>>) -> R) -> R;
}

thread_local! {
    static POOL_F32: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
    static POOL_F64: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
}

impl Elem for f32 {
    fn with_pool<R>(f: impl FnOnce(&mut Vec<Vec<f32>>) -> R) -> R {
        POOL_F32.with(|p| f(&mut p.borrow_mut()))
    }
}

impl Elem for f64 {
    fn with_pool<R>(f: impl FnOnce(&mut Vec<Vec<f64>>) -> R) -> R {
        POOL_F64.with(|p| f(&mut p.borrow_mut()))
    }
}

/// Alignment of packed panels, in bytes (a cache line).
const ALIGN: usize = 64;

/// Most buffers kept per thread and element type.
const POOL_MAX: usize = 4;

/// A packing buffer taken from this thread's pool and returned to it on drop, so that repeated
/// products (and the blocks of one product) reuse the same memory. Nested use on one thread (a
/// rayon worker running another product while it waits) simply takes another buffer. A pool
/// keeps at most [`POOL_MAX`] buffers (the largest is a B panel, `KC·NC` elements: 4 MiB).
struct PackBuf<T: Elem> {
    vec: Vec<T>,
    start: usize,
    len: usize,
}

impl<T: Elem> PackBuf<T> {
    fn take(len: usize) -> Self {
        let pad = ALIGN / std::mem::size_of::<T>();
        // The smallest pooled buffer that is big enough, else the biggest (to be grown).
        let mut vec = T::with_pool(|pool| {
            let fits = |v: &Vec<T>| v.len() >= len + pad;
            let pick = (0..pool.len())
                .filter(|&i| fits(&pool[i]))
                .min_by_key(|&i| pool[i].len())
                .or_else(|| (0..pool.len()).max_by_key(|&i| pool[i].len()));
            pick.map(|i| pool.swap_remove(i))
        })
        .unwrap_or_default();
        if vec.len() < len + pad {
            vec.clear();
            vec.resize(len + pad, T::ZERO);
        }
        let start = vec.as_ptr().align_offset(ALIGN).min(pad);
        PackBuf { vec, start, len }
    }

    fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.vec[self.start..self.start + self.len]
    }
}

impl<T: Elem> Drop for PackBuf<T> {
    fn drop(&mut self) {
        let vec = std::mem::take(&mut self.vec);
        T::with_pool(|p| {
            if p.len() < POOL_MAX {
                p.push(vec);
            }
        });
    }
}

/// A raw pointer that may cross threads; users write disjoint parts only.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: the driver hands each task a disjoint set of C tiles / buffer parts.
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so that closures capture the whole `Send + Sync` wrapper).
    fn get(self) -> *mut T {
        self.0
    }
}

#[inline]
fn div_ceil(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// The blocked product for a concrete element type and micro-kernel. `k > 0`, `m, n > 0`.
///
/// # Safety
/// As [`gemm_raw`], for the `m × n` block at `c` (bounds checked by the caller).
unsafe fn driver<T: Elem, K: MicroKernel<T>>(
    a: MatRef<T>,
    b: MatRef<T>,
    beta: T,
    c: *mut T,
    ldc: usize,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    // k-blocking: balanced blocks of at most KC, a function of k alone (determinism).
    let kblocks = div_ceil(k, K::KC);
    let kc_max = div_ceil(k, kblocks);
    let nthreads = rayon::current_num_threads();
    // Parallel only when each k-block holds enough work to pay for a fork/join.
    let par = nthreads > 1 && m.saturating_mul(n).saturating_mul(kc_max) >= PAR_MIN_WORK;
    // Row-major A can be streamed by the micro-kernel in place, skipping its packing: worth it
    // when each A block is reused for few columns (packing is a larger share of the work), and
    // safe for the caches unless the row stride is a multiple of 4 KiB (the rows of a block
    // would then crowd into a few cache sets).
    let direct_a = a.cs == 1
        && a.rs > 0
        && n <= DIRECT_A_MAX_N
        && (a.rs * std::mem::size_of::<T>()) & 4095 != 0;
    let plan = Plan {
        kblocks,
        kc_max,
        threads: if par { nthreads } else { 1 },
        direct_a,
    };
    let c = SendPtr(c);
    if direct_a {
        private_panels::<T, K>(&plan, a, b, beta, c, ldc);
    } else {
        shared_b_panel::<T, K>(&plan, a, b, beta, c, ldc);
    }
}

/// How long the calling thread spins for helpers to finish their last tasks before it blocks.
const SPIN_WAIT: Duration = Duration::from_micros(500);

/// Runs `task(0)`, ..., `task(ntasks - 1)` on up to `threads` threads: the calling thread and
/// `threads - 1` rayon jobs take task indices from a shared counter (so the load balances and
/// the caller never waits for a helper to wake up before starting), and the caller spins briefly
/// rather than sleeping while the helpers finish, sparing it a wake-up too. Which thread runs a
/// task has no effect on the result: tasks write disjoint parts of C.
fn run_tasks(ntasks: usize, threads: usize, task: &(dyn Fn(usize) + Sync)) {
    let helpers = threads.min(ntasks).saturating_sub(1);
    if helpers == 0 {
        (0..ntasks).for_each(task);
        return;
    }
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let work = || loop {
        let t = next.fetch_add(1, Ordering::Relaxed);
        if t >= ntasks {
            break;
        }
        task(t);
        done.fetch_add(1, Ordering::Release);
    };
    rayon::in_place_scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(|_| work());
        }
        work();
        let start = Instant::now();
        while done.load(Ordering::Acquire) < ntasks && start.elapsed() < SPIN_WAIT {
            std::hint::spin_loop();
        }
        // The scope then waits (blocking) for whatever is left.
    });
}

/// How one product is blocked and split.
struct Plan {
    kblocks: usize,
    kc_max: usize,
    /// Threads to split the M/N plane for (1: run sequentially).
    threads: usize,
    /// Whether A is read in place (row-major) rather than packed.
    direct_a: bool,
}

impl Plan {
    /// The `kb`-th k-block: (first index, length).
    fn kblock(&self, k: usize, kb: usize) -> (usize, usize) {
        let p0 = kb * k / self.kblocks;
        (p0, (kb + 1) * k / self.kblocks - p0)
    }
}

/// Splits `0..total` into `parts` contiguous, balanced ranges; returns range `i`.
fn split(total: usize, parts: usize, i: usize) -> (usize, usize) {
    (i * total / parts, (i + 1) * total / parts)
}

/// Scheme for A read in place: the M/N plane is cut into a few tasks, each running the whole
/// blocked loop for its part with its own B panel (no synchronisation at all; a task packs only
/// the B columns it uses, so B is packed redundantly only when rows are split too).
fn private_panels<T: Elem, K: MicroKernel<T>>(
    plan: &Plan,
    a: MatRef<T>,
    b: MatRef<T>,
    beta: T,
    c: SendPtr<T>,
    ldc: usize,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let (mr, nr) = (K::MR, K::NR);
    let (row_sl, col_sl) = (div_ceil(m, mr), div_ceil(n, nr));
    // Split the columns between the threads; if they do not divide evenly among few slivers,
    // split the rows as well (tasks ordered so that consecutive ones pair up big and small).
    let cols = col_sl.min(plan.threads);
    let rows = if col_sl % cols > 0 && col_sl < 4 * plan.threads {
        plan.threads.min(row_sl)
    } else {
        1
    };
    let task = |t: usize| {
        let (s0, s1) = split(row_sl, rows, t / cols);
        let (t0, t1) = split(col_sl, cols, t % cols);
        let (i0, i1) = (s0 * mr, (s1 * mr).min(m));
        let (j0, j1) = (t0 * nr, (t1 * nr).min(n));
        let nc_max = K::NC.min((t1 - t0) * nr);
        let mut bbuf = PackBuf::<T>::take(plan.kc_max * nc_max);
        let mut abuf = PackBuf::<T>::take(plan.kc_max * mr);
        for jc in (j0..j1).step_by(K::NC) {
            let nc = K::NC.min(j1 - jc);
            for kb in 0..plan.kblocks {
                let (p0, kc) = plan.kblock(k, kb);
                let bpanel = &mut bbuf.as_mut_slice()[..div_ceil(nc, nr) * nr * kc];
                K::pack_b(b, p0, kc, jc, nc, bpanel);
                for ic in (i0..i1).step_by(K::MC) {
                    let mc = K::MC.min(i1 - ic);
                    // SAFETY: tasks own disjoint parts of C, inside the region checked by
                    // `gemm_impl`; the block (ic.., jc..) is inside this task's part.
                    unsafe {
                        row_block::<T, K>(
                            plan,
                            a,
                            ic,
                            mc,
                            p0,
                            kc,
                            abuf.as_mut_slice(),
                            bpanel,
                            c.get().add(ic * ldc + jc),
                            ldc,
                            nc,
                            if kb == 0 { beta } else { T::ONE },
                        );
                    }
                }
            }
        }
    };
    run_tasks(rows * cols, plan.threads, &task);
}

/// Scheme for packed A (BLIS order): per (NC, KC) block of B, the B panel is packed once (in
/// parallel) and shared; then tasks of at most MC rows (times a column range when there are few
/// rows) pack their A block and multiply. Two fork/joins per k-block.
fn shared_b_panel<T: Elem, K: MicroKernel<T>>(
    plan: &Plan,
    a: MatRef<T>,
    b: MatRef<T>,
    beta: T,
    c: SendPtr<T>,
    ldc: usize,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let (mr, nr) = (K::MR, K::NR);
    let threads = plan.threads;
    // Row blocks: at most MC rows, MR-aligned; in parallel, a multiple of the thread count.
    let row_sl = div_ceil(m, mr);
    let mut row_blocks = div_ceil(row_sl, K::MC / mr);
    if threads > 1 {
        row_blocks = (div_ceil(row_blocks, threads) * threads).min(row_sl);
    }
    let a_len = div_ceil(row_sl, row_blocks) * mr * plan.kc_max;
    let nc_max = K::NC.min(div_ceil(n, nr) * nr);
    let mut bbuf = PackBuf::<T>::take(plan.kc_max * nc_max);

    for jc in (0..n).step_by(K::NC) {
        let nc = K::NC.min(n - jc);
        let col_sl = div_ceil(nc, nr);
        // Few row blocks: split the columns too, so that every thread has work.
        let col_blocks = if row_blocks < threads {
            div_ceil(threads, row_blocks).min(col_sl)
        } else {
            1
        };
        for kb in 0..plan.kblocks {
            let (p0, kc) = plan.kblock(k, kb);
            let beta_k = if kb == 0 { beta } else { T::ONE };
            let sliver = nr * kc;
            let bpanel = &mut bbuf.as_mut_slice()[..col_sl * sliver];
            // Pack the B panel in pieces of `per` slivers.
            let per = if threads > 1 {
                div_ceil(col_sl, 2 * threads)
            } else {
                col_sl
            };
            let bptr = SendPtr(bpanel.as_mut_ptr());
            run_tasks(div_ceil(col_sl, per), threads, &|ci| {
                let s0 = ci * per;
                let slivers = per.min(col_sl - s0);
                // SAFETY: piece `ci` is slivers s0..s0+slivers of the panel, disjoint from the
                // other pieces and inside `bpanel`.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(bptr.get().add(s0 * sliver), slivers * sliver)
                };
                K::pack_b(b, p0, kc, jc + s0 * nr, (nc - s0 * nr).min(per * nr), dst);
            });
            let bpanel = &*bpanel;
            let task = |t: usize| {
                let (s0, s1) = split(row_sl, row_blocks, t / col_blocks);
                let (t0, t1) = split(col_sl, col_blocks, t % col_blocks);
                let i0 = s0 * mr;
                let j0 = t0 * nr;
                let mut abuf = PackBuf::<T>::take(a_len);
                // SAFETY: tasks cover disjoint (row block × column block) parts of C, all inside
                // the region checked by `gemm_impl`.
                unsafe {
                    row_block::<T, K>(
                        plan,
                        a,
                        i0,
                        (s1 * mr).min(m) - i0,
                        p0,
                        kc,
                        abuf.as_mut_slice(),
                        &bpanel[t0 * sliver..],
                        c.get().add(i0 * ldc + jc + j0),
                        ldc,
                        (t1 * nr).min(nc) - j0,
                        beta_k,
                    );
                }
            };
            run_tasks(row_blocks * col_blocks, threads, &task);
        }
    }
}

/// Rows `i0..i0+mc` of C (columns given by the packed B part, `nc` of them, C pointer at
/// `(i0, first column)`) updated with k-block `p0..p0+kc`: A is packed into `abuf` or read in
/// place (then `abuf` holds only a partial last sliver), then the macro-kernel runs.
///
/// # Safety
/// `c` must be valid for the `mc × nc` block with row stride `ldc`, and no other thread may
/// touch that block meanwhile; `abuf` must hold `ceil(mc/MR)·MR·kc` elements (packed A) or
/// `MR·kc` (A in place); `bpanel` the packed B slivers covering `nc` columns.
#[allow(clippy::too_many_arguments)]
unsafe fn row_block<T: Elem, K: MicroKernel<T>>(
    plan: &Plan,
    a: MatRef<T>,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    abuf: &mut [T],
    bpanel: &[T],
    c: *mut T,
    ldc: usize,
    nc: usize,
    beta: T,
) {
    let mr = K::MR;
    let asrc = if plan.direct_a {
        // Read full slivers of A in place; pack only a partial last sliver.
        let full = mc / mr;
        let edge = &mut abuf[..mr * kc];
        if full * mr < mc {
            K::pack_a(a, i0 + full * mr, mc - full * mr, p0, kc, edge);
        }
        ASrc {
            // In bounds: (i0, p0) is an element of A (checked by `gemm_impl`).
            ptr: a.data.as_ptr().add(i0 * a.rs + p0 * a.cs),
            rs: a.rs,
            cs: a.cs,
            step: mr * a.rs,
            full,
            edge: edge.as_ptr(),
        }
    } else {
        let slivers = div_ceil(mc, mr);
        let apanel = &mut abuf[..slivers * mr * kc];
        K::pack_a(a, i0, mc, p0, kc, apanel);
        ASrc {
            ptr: apanel.as_ptr(),
            rs: 1,
            cs: mr,
            step: mr * kc,
            full: slivers,
            edge: apanel.as_ptr(),
        }
    };
    macro_kernel::<T, K>(kc, &asrc, bpanel, c, ldc, mc, nc, beta);
}

/// Where the micro-kernel reads A from for one row block: slivers `0..full` at `ptr + s·step`
/// with strides `(rs, cs)`; a partial last sliver (if the block has one beyond `full`) packed at
/// `edge` (strides `(1, MR)`, zero-padded).
struct ASrc<T> {
    ptr: *const T,
    rs: usize,
    cs: usize,
    step: usize,
    full: usize,
    edge: *const T,
}

/// Runs the micro-kernel over an `mc × nc` block of C at `c` (row stride `ldc`) from A (see
/// [`ASrc`]) and packed B (NR-column slivers), each over `kc`.
///
/// # Safety
/// `c` must be valid for writes of the `mc × nc` block with row stride `ldc`; `asrc` must
/// describe readable A slivers covering `mc` rows and the packed B panel must hold
/// `ceil(nc/NR)` slivers of length `kc`.
#[allow(clippy::too_many_arguments)]
unsafe fn macro_kernel<T: Elem, K: MicroKernel<T>>(
    kc: usize,
    asrc: &ASrc<T>,
    bpanel: &[T],
    c: *mut T,
    ldc: usize,
    mc: usize,
    nc: usize,
    beta: T,
) {
    let (mr, nr) = (K::MR, K::NR);
    debug_assert!(bpanel.len() >= div_ceil(nc, nr) * nr * kc);
    let bp = bpanel.as_ptr();
    for jr in (0..nc).step_by(nr) {
        let nw = nr.min(nc - jr);
        let b_sl = bp.add(jr * kc);
        for (s, ir) in (0..mc).step_by(mr).enumerate() {
            let mw = mr.min(mc - ir);
            let (a_sl, rsa, csa) = if s < asrc.full {
                (asrc.ptr.add(s * asrc.step), asrc.rs, asrc.cs)
            } else {
                (asrc.edge, 1, mr)
            };
            let ct = c.add(ir * ldc + jr);
            if mw == mr && nw == nr {
                K::run(kc, a_sl, rsa, csa, b_sl, ct, ldc, beta);
            } else {
                // Edge tile: run the same kernel on a full-size scratch tile, so that the
                // arithmetic is identical to an interior tile, and copy the valid part.
                let mut tmp = [T::ZERO; kernel::MAX_TILE];
                if beta != T::ZERO {
                    for i in 0..mw {
                        for j in 0..nw {
                            tmp[i * nr + j] = *ct.add(i * ldc + j);
                        }
                    }
                }
                K::run(kc, a_sl, rsa, csa, b_sl, tmp.as_mut_ptr(), nr, beta);
                for i in 0..mw {
                    for j in 0..nw {
                        *ct.add(i * ldc + j) = tmp[i * nr + j];
                    }
                }
            }
        }
    }
}
