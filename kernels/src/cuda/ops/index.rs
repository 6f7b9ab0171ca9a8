//! Launchers for `cuda/index.cu`: index_select and gather with their scatter-add backwards,
//! masked_select (a count pass, one host read, a compaction pass) with its backward, and rot90.
//!
//! Indices reach the kernels as [`DeviceIndices`], which can only be made by uploading host
//! indices checked against a bound, so a launcher that checks the bound against the axis never
//! launches a kernel that reads or writes out of range.

use super::elementwise::fill;
use super::{check_len, launch, u32_size};
use crate::cuda::{CudaDevice, CudaError, CudaFloat, DeviceBuffer, KernelModule};
use crate::geometry::Lanes;
use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig};

/// Dimensions gather takes (`MAX_RANK` in index.cu).
pub const MAX_RANK: usize = 8;
/// Threads per block of the mask kernels (`MASK_THREADS` in index.cu).
const MASK_THREADS: u32 = 256;
/// Mask elements per block of the mask kernels: 16 tiles of `MASK_THREADS`.
pub const MASK_CHUNK: usize = 4096;

/// Indices on the device, each below `bound` (checked when uploaded).
pub struct DeviceIndices {
    buf: DeviceBuffer<u32>,
    len: usize,
    bound: usize,
}

impl DeviceIndices {
    /// Uploads `indices` as the kernels' u32, refusing any index `>= bound`.
    pub fn upload(
        dev: &CudaDevice,
        indices: &[usize],
        bound: usize,
    ) -> Result<DeviceIndices, CudaError> {
        const OP: &str = "cuda index upload";
        u32_size(OP, bound)?;
        u32_size(OP, indices.len())?;
        if let Some(pos) = indices.iter().position(|&i| i >= bound) {
            return Err(CudaError::invalid(
                OP,
                format!(
                    "index {} (at position {pos}) out of range for size {bound}",
                    indices[pos]
                ),
            ));
        }
        let host: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
        let buf = if host.is_empty() {
            dev.alloc::<u32>(1)?
        } else {
            dev.upload(&host)?
        };
        Ok(DeviceIndices {
            buf,
            len: indices.len(),
            bound,
        })
    }

    /// Number of indices.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when there are no indices.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Every index is below this.
    pub fn bound(&self) -> usize {
        self.bound
    }
}

/// Checks indices below `bound` against the axis of `n` entries they index.
fn check_bound(op: &'static str, bound: usize, n: usize) -> Result<(), CudaError> {
    if bound > n {
        return Err(CudaError::invalid(
            op,
            format!("indices checked below {bound} index an axis of {n}"),
        ));
    }
    Ok(())
}

/// Sizes of index_select and its backward: `(x elements, y elements)` of `x` as `lanes` and
/// `y` as `[outer, idx.len(), inner]`, both within the kernels' indexing.
fn select_sizes(
    op: &'static str,
    lanes: Lanes,
    idx: &DeviceIndices,
) -> Result<(usize, usize), CudaError> {
    check_bound(op, idx.bound, lanes.n)?;
    let (nx, ny) = (lanes.numel(), lanes.outer * idx.len * lanes.inner);
    u32_size(op, nx)?;
    u32_size(op, ny)?;
    Ok((nx, ny))
}

/// `y[o, i, r] = x[o, idx[i], r]` for `x` viewed as `lanes` (`[outer, n, inner]`); `y` holds
/// `outer · idx.len() · inner` elements.
pub fn index_select<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    lanes: Lanes,
    idx: &DeviceIndices,
    y: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda index_select";
    let (nx, ny) = select_sizes(OP, lanes, idx)?;
    check_len(OP, "input", x, nx)?;
    check_len(OP, "output", y, ny)?;
    if ny == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Index, &format!("index_select_{}", T::SUFFIX))?;
    let (o, n, m, i) = (
        lanes.outer as u32,
        lanes.n as u32,
        idx.len as u32,
        lanes.inner as u32,
    );
    launch!(dev, f, dev.grid_1d(ny, 256), OP; &o, &n, &m, &i, &*idx.buf, x, y)
}

/// The backward of [`index_select`]: `dx` (`lanes`, overwritten) gets `g`
/// (`[outer, idx.len(), inner]`) added at the rows `idx` selected; repeated indices add up (by
/// atomics, in no fixed order).
pub fn index_add<T: CudaFloat>(
    dev: &CudaDevice,
    g: &CudaSlice<T>,
    lanes: Lanes,
    idx: &DeviceIndices,
    dx: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda index_add";
    let (nx, ny) = select_sizes(OP, lanes, idx)?;
    check_len(OP, "gradient", g, ny)?;
    check_len(OP, "input gradient", dx, nx)?;
    fill(dev, dx, nx, T::ZERO)?;
    if ny == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Index, &format!("index_add_{}", T::SUFFIX))?;
    let (o, n, m, i) = (
        lanes.outer as u32,
        lanes.n as u32,
        idx.len as u32,
        lanes.inner as u32,
    );
    launch!(dev, f, dev.grid_1d(ny, 256), OP; &o, &n, &m, &i, &*idx.buf, g, dx)
}

/// `GatherArgs` of index.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct GatherArgs {
    rank: u32,
    dim: u32,
    shape: [u32; MAX_RANK],
    stride: [u32; MAX_RANK],
}
// SAFETY: plain repr(C) integers, laid out as the C struct.
unsafe impl DeviceRepr for GatherArgs {}

/// Checks a gather of `index_shape` positions along `dim` of a contiguous `src_shape` tensor, by
/// `(count, bound)` indices, and returns the kernels' arguments with the element counts of the
/// source and the index.
fn gather_args(
    op: &'static str,
    src_shape: &[usize],
    dim: usize,
    (len, bound): (usize, usize),
    index_shape: &[usize],
) -> Result<(GatherArgs, usize, usize), CudaError> {
    let rank = src_shape.len();
    if index_shape.len() != rank || dim >= rank || rank > MAX_RANK {
        return Err(CudaError::invalid(
            op,
            format!(
                "index shape {index_shape:?} along dimension {dim} of {src_shape:?} (rank at most {MAX_RANK})"
            ),
        ));
    }
    if let Some(d) = (0..rank).find(|&d| d != dim && index_shape[d] > src_shape[d]) {
        return Err(CudaError::invalid(
            op,
            format!("index shape {index_shape:?} exceeds {src_shape:?} in dimension {d}"),
        ));
    }
    check_bound(op, bound, src_shape[dim])?;
    let (nsrc, nidx): (usize, usize) = (src_shape.iter().product(), index_shape.iter().product());
    if len != nidx {
        return Err(CudaError::invalid(
            op,
            format!("index shape {index_shape:?} needs {nidx} indices, {len} given"),
        ));
    }
    u32_size(op, nsrc)?;
    u32_size(op, nidx)?;
    let mut a = GatherArgs {
        rank: rank as u32,
        dim: dim as u32,
        ..Default::default()
    };
    let mut stride = 1;
    for d in (0..rank).rev() {
        a.shape[d] = index_shape[d] as u32;
        a.stride[d] = stride as u32;
        stride *= src_shape[d];
    }
    Ok((a, nsrc, nidx))
}

/// `torch.gather` on a contiguous `src_shape` tensor: `y` (shape `index_shape`) at coordinates
/// `c` is `x` at `c` with `c[dim]` replaced by the index at `c`.
pub fn gather<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    src_shape: &[usize],
    dim: usize,
    idx: &DeviceIndices,
    index_shape: &[usize],
    y: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda gather";
    let (args, nsrc, nidx) = gather_args(OP, src_shape, dim, (idx.len, idx.bound), index_shape)?;
    check_len(OP, "input", x, nsrc)?;
    check_len(OP, "output", y, nidx)?;
    if nidx == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Index, &format!("gather_{}", T::SUFFIX))?;
    let total = nidx as u32;
    launch!(dev, f, dev.grid_1d(nidx, 256), OP; &total, &args, &*idx.buf, x, y)
}

/// The backward of [`gather`]: `dx` (`src_shape`, overwritten) gets each element of `g`
/// (`index_shape`) added where it was read from (by atomics, in no fixed order).
pub fn scatter_add<T: CudaFloat>(
    dev: &CudaDevice,
    g: &CudaSlice<T>,
    src_shape: &[usize],
    dim: usize,
    idx: &DeviceIndices,
    index_shape: &[usize],
    dx: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda scatter_add";
    let (args, nsrc, nidx) = gather_args(OP, src_shape, dim, (idx.len, idx.bound), index_shape)?;
    check_len(OP, "gradient", g, nidx)?;
    check_len(OP, "input gradient", dx, nsrc)?;
    fill(dev, dx, nsrc, T::ZERO)?;
    if nidx == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Index, &format!("scatter_add_{}", T::SUFFIX))?;
    let total = nidx as u32;
    launch!(dev, f, dev.grid_1d(nidx, 256), OP; &total, &args, &*idx.buf, g, dx)
}

/// Where the selected elements of a mask of `n` elements go: the exclusive prefix sums of the
/// per-chunk counts, and the total. Made by [`mask_offsets`] and valid for that mask only.
pub struct MaskOffsets {
    offsets: DeviceBuffer<u32>,
    n: usize,
    count: usize,
}

impl MaskOffsets {
    /// Number of set elements.
    pub fn count(&self) -> usize {
        self.count
    }
    /// Elements of the mask.
    pub fn len(&self) -> usize {
        self.n
    }
    /// True for an empty mask.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

fn mask_launch(n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (n.div_ceil(MASK_CHUNK).max(1) as u32, 1, 1),
        block_dim: (MASK_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Counts the set (non-zero, or NaN) elements of the first `n` of `mask`, per chunk of
/// [`MASK_CHUNK`] and in all. Reads the counts back to the host (waits for the device: the one
/// synchronisation masked_select needs, since its output length depends on the values).
pub fn mask_offsets<T: CudaFloat>(
    dev: &CudaDevice,
    mask: &CudaSlice<T>,
    n: usize,
) -> Result<MaskOffsets, CudaError> {
    const OP: &str = "cuda mask count";
    u32_size(OP, n)?;
    check_len(OP, "mask", mask, n)?;
    let chunks = n.div_ceil(MASK_CHUNK);
    let mut counts = dev.alloc::<u32>(chunks.max(1))?;
    if n > 0 {
        let f = dev.function(KernelModule::Index, &format!("mask_count_{}", T::SUFFIX))?;
        let (n32, chunk) = (n as u32, MASK_CHUNK as u32);
        launch!(dev, f, mask_launch(n), OP; &n32, &chunk, mask, &mut *counts)?;
    }
    let counts = if n > 0 {
        dev.download(&counts)?
    } else {
        vec![0]
    };
    let mut offsets = Vec::with_capacity(counts.len());
    let mut total = 0u32;
    for &c in &counts[..chunks.max(1)] {
        offsets.push(total);
        total += c;
    }
    Ok(MaskOffsets {
        offsets: dev.upload(&offsets)?,
        n,
        count: total as usize,
    })
}

/// Shared checks of the two mask moves; `packed` is the buffer of `count` elements, `full` the
/// one of `n`.
fn check_move<T>(
    op: &'static str,
    at: &MaskOffsets,
    mask: &CudaSlice<T>,
    packed: (&str, usize),
    full: (&str, usize),
) -> Result<(), CudaError> {
    check_len(op, "mask", mask, at.n)?;
    if packed.1 < at.count {
        return Err(CudaError::invalid(
            op,
            format!(
                "{} holds {} elements, {} needed",
                packed.0, packed.1, at.count
            ),
        ));
    }
    if full.1 < at.n {
        return Err(CudaError::invalid(
            op,
            format!("{} holds {} elements, {} needed", full.0, full.1, at.n),
        ));
    }
    Ok(())
}

/// masked_select: `y[j] = x[i]` for the `j`-th set element `i` of `mask` in row-major order
/// (`x` and `mask` have `at.len()` elements, `y` at least `at.count()`). `mask` must be the
/// mask `at` was counted from (the kernel never writes past `at.count()` regardless).
pub fn mask_compact<T: CudaFloat>(
    dev: &CudaDevice,
    at: &MaskOffsets,
    mask: &CudaSlice<T>,
    x: &CudaSlice<T>,
    y: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda mask compact";
    check_move(OP, at, mask, ("output", y.len()), ("input", x.len()))?;
    mask_move(dev, "mask_compact", OP, at, mask, x, y)
}

/// The backward of [`mask_compact`]: `dx[i] = g[j]` for the `j`-th set element `i`, zero where
/// the mask is not set (`dx` gets `at.len()` elements, `g` holds at least `at.count()`).
pub fn mask_expand<T: CudaFloat>(
    dev: &CudaDevice,
    at: &MaskOffsets,
    mask: &CudaSlice<T>,
    g: &CudaSlice<T>,
    dx: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda mask expand";
    check_move(OP, at, mask, ("gradient", g.len()), ("output", dx.len()))?;
    mask_move(dev, "mask_expand", OP, at, mask, g, dx)
}

fn mask_move<T: CudaFloat>(
    dev: &CudaDevice,
    stem: &str,
    op: &'static str,
    at: &MaskOffsets,
    mask: &CudaSlice<T>,
    src: &CudaSlice<T>,
    dst: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    if at.n == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Index, &format!("{stem}_{}", T::SUFFIX))?;
    let (n, chunk, limit) = (at.n as u32, MASK_CHUNK as u32, at.count as u32);
    launch!(dev, f, mask_launch(at.n), op; &n, &chunk, &limit, mask, &*at.offsets, src, dst)
}

/// Rotates `planes` planes of `h × w` counter-clockwise by `k` quarter turns (any integer; odd
/// `k` makes the planes `w × h`), as the CPU's `image::rot90`.
#[allow(clippy::too_many_arguments)]
pub fn rot90<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    planes: usize,
    h: usize,
    w: usize,
    k: i64,
    y: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda rot90";
    let numel = planes * h * w;
    u32_size(OP, numel)?;
    check_len(OP, "input", x, numel)?;
    check_len(OP, "output", y, numel)?;
    if numel == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Index, &format!("rot90_{}", T::SUFFIX))?;
    let (p, h, w, k) = (planes as u32, h as u32, w as u32, k.rem_euclid(4) as u32);
    launch!(dev, f, dev.grid_1d(numel, 256), OP; &p, &h, &w, &k, x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_args_are_the_source_strides_and_the_index_shape() {
        // (count, bound) of the indices.
        let a = gather_args("t", &[3, 4, 5], 1, (6, 4), &[2, 3, 1])
            .unwrap()
            .0;
        assert_eq!((a.rank, a.dim), (3, 1));
        assert_eq!(&a.shape[..3], &[2, 3, 1]);
        assert_eq!(&a.stride[..3], &[20, 5, 1]);
        // Larger than the source off the gathered axis, wrong count, bound beyond the axis.
        assert!(gather_args("t", &[3, 4, 5], 1, (6, 4), &[4, 3, 1]).is_err());
        assert!(gather_args("t", &[3, 4, 5], 1, (5, 4), &[2, 3, 1]).is_err());
        assert!(gather_args("t", &[3, 4, 5], 1, (6, 5), &[2, 3, 1]).is_err());
        assert!(gather_args("t", &[3, 4, 5], 3, (6, 4), &[2, 3, 1]).is_err());
    }
}
