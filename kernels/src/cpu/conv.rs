//! 2-D convolution (NCHW) and its adjoint, transposed convolution, lowered to GEMM.
//!
//! A convolution is described by a [`Conv2dGeometry`]. For a run of images the patches of the
//! input are unfolded into a column buffer `col` of `K = C·kH·kW` rows and `images·P` columns
//! (`P = OH·OW`; column `n·P + p` is output pixel `p` of image `n`), so that, per group,
//!
//! * forward:         `Y[OC, nP]  = W[OC, K] · col[K, nP]`
//! * backward-data:   `gcol[K, nP] = Wᵀ[K, OC] · gY[OC, nP]`, then `col2im(gcol) -> gx`
//! * backward-weight: `gW[OC, K]  = gY[OC, nP] · colᵀ[nP, K]`
//!
//! Batching several images into one GEMM gives the GEMM wide operands even when `P` is small
//! (a 4×4 output has `P = 16`). `Y` and `gY` are channel-major (`[OC, nP]`), so the forward
//! scatters `Y` into NCHW (adding the bias on the way) and the backward gathers `gy` from NCHW;
//! both copies are a small fraction of the GEMM's work. The images are processed in chunks sized
//! by [`COL_BUDGET`] (not by the thread count), and `gW` accumulates the chunks in order, so every
//! result is bit-identical for any number of threads.
//!
//! Transposed convolution is the adjoint of convolution: its forward is a convolution's
//! backward-data and its backward-data is a convolution's forward. The `conv_transpose2d_*`
//! functions take the geometry of that underlying convolution ([`Conv2dGeometry::transposed`]).
//!
//! Which path runs is decided per shape:
//!
//! * Pointwise convolutions (1×1 kernel, stride 1, no padding) skip the unfolding: each image's
//!   `[C, H·W]` plane block already is its column matrix, so per-image GEMMs read the input and
//!   write the output in place (see [`Conv2dGeometry::is_pointwise`]). Measured fwd+bwd at
//!   batch 64 (8..64 px planes, 32..128 channels): 1.6-2.3x faster than the lowered path on one
//!   thread, faster on two threads from 16×16 planes up, and within 0.15 ms on 4×4 planes.
//! * Everything else is lowered as above. Tiny channel counts (3 -> 64) get no direct kernel:
//!   lowered, with the weight gradient split into partial products (see `SPLIT_OUTPUT_MAX`),
//!   the 3 -> 64 layer's fwd+bwd takes 0.6-0.75× PyTorch's time, so a direct kernel has little
//!   to win there.

use super::gemm::{gemm, MatRef};
use super::PAR_THRESHOLD;
pub use crate::geometry::{conv_out_len, conv_transpose_out_len, Conv2dGeometry};
use crate::Float;
use rayon::prelude::*;
use std::any::Any;
use std::sync::Mutex;

/// The most elements the column buffer of one chunk of images may hold (8 MiB of f32). Within
/// this budget the column matrix of a chunk is written and read back through the cache rather
/// than memory, while the GEMMs still get at least 1024 columns for the DCGAN layers at batch 64
/// (narrower products parallelise poorly over two threads). Measured on the 2-core machine:
/// budgets of 2^20..2^22 elements are within noise of each other; 2^16 is clearly slower.
pub const COL_BUDGET: usize = 1 << 21;

impl Conv2dGeometry {
    /// Images per chunk: as many as fit the column budget (at least one), spread evenly over the
    /// chunks the batch needs.
    pub fn chunk_images(&self) -> usize {
        let per_image = (self.col_rows() * self.out_plane()).max(1);
        let most = (COL_BUDGET / per_image).clamp(1, self.batch.max(1));
        let chunks = self.batch.max(1).div_ceil(most);
        self.batch.max(1).div_ceil(chunks)
    }
}

// ------------------------------------------------------------------------------------- workspace

/// Column buffers kept between calls, so a training loop does not pay for a fresh multi-megabyte
/// allocation (and its page faults) on every convolution. A buffer holds at most one chunk's
/// worth: [`COL_BUDGET`] elements of columns plus the channel-major block and the lowering
/// scratch, about 14 MiB of f32 for the DCGAN layers.
static WORKSPACES: Mutex<Vec<Box<dyn Any + Send>>> = Mutex::new(Vec::new());

/// How many idle buffers the pool keeps (one per concurrently running convolution is enough).
const MAX_POOLED: usize = 4;

/// A buffer of at least `len` elements from the pool (contents unspecified), returned to the pool
/// on drop.
struct Workspace<T: Float> {
    buf: Vec<T>,
}

impl<T: Float> Workspace<T> {
    /// The smallest pooled buffer that holds `len` elements, else the largest one grown to `len`.
    fn take(len: usize) -> Self {
        let mut pool = WORKSPACES.lock().unwrap_or_else(|e| e.into_inner());
        let size = |b: &Box<dyn Any + Send>| b.downcast_ref::<Vec<T>>().map(Vec::len);
        let fits = (0..pool.len()).filter(|&i| size(&pool[i]).is_some_and(|n| n >= len));
        let best = fits.min_by_key(|&i| size(&pool[i]));
        let best = best.or_else(|| {
            (0..pool.len())
                .filter(|&i| size(&pool[i]).is_some())
                .max_by_key(|&i| size(&pool[i]))
        });
        let mut buf = match best {
            Some(i) => *pool
                .swap_remove(i)
                .downcast::<Vec<T>>()
                .expect("type checked"),
            None => Vec::new(),
        };
        drop(pool);
        if buf.len() < len {
            buf.resize(len, T::ZERO);
        }
        Workspace { buf }
    }

    /// The buffers for chunks of `images` images: the column matrix `[C·kH·kW, images·P]`, a
    /// channel-major block `[OC, images·P]` and the lowering scratch.
    fn for_chunk(g: &Conv2dGeometry, images: usize) -> Self {
        let p = g.out_plane();
        Workspace::take(
            g.col_rows() * images * p
                + g.out_channels * images * p
                + g.lowering_scratch_len(images),
        )
    }

    fn split(&mut self, g: &Conv2dGeometry, images: usize) -> (&mut [T], &mut [T], &mut [T]) {
        let p = g.out_plane();
        let (col, rest) = self.buf.split_at_mut(g.col_rows() * images * p);
        let (mid, rest) = rest.split_at_mut(g.out_channels * images * p);
        (col, mid, &mut rest[..g.lowering_scratch_len(images)])
    }
}

impl<T: Float> Drop for Workspace<T> {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let mut pool = WORKSPACES.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < MAX_POOLED {
            pool.push(Box::new(buf));
        }
    }
}

// ----------------------------------------------------------------------------- im2col / col2im
//
// A strided convolution reads every `stride`-th input position. The lowering first splits each
// input plane into its `sH·sW` stride phases (phase `(qh, qw)` holds the positions
// `(qh + sH·j, qw + sW·i)`), stored channel- and phase-major: `xph[c, phase, n, j, i]`. Kernel
// tap `kh` then reads phase `(kh·dil - pad) mod s` at offset `⌊(kh·dil - pad) / s⌋` from the
// output position, so a column row `(c, kh, kw)` is a shifted copy of one phase region.
//
// When a phase plane has exactly the output's size (`⌈H/sH⌉ = OH`, `⌈W/sW⌉ = OW`: true for
// "same"-style padding such as k4 s2 p1, k3 s1 p1, k3 s2 p1), that shift is one constant offset
// over all the images, so a whole column row is one contiguous copy, after which the few
// positions that fall in the padding are zeroed. col2im is the mirror image: zero the padding
// positions of each row, then add the row into its phase region with one contiguous add. Other
// geometries copy and add row by row.

/// Column rows or phase regions below which the lowering also splits the images among tasks, so
/// that small channel counts (3 -> 64) still spread over the threads. The split depends only on
/// the shapes, never on the thread count.
const MIN_TASKS: usize = 16;

impl Conv2dGeometry {
    /// Height and width of one stride-phase plane (`⌈H / sH⌉ × ⌈W / sW⌉`).
    fn phase_dims(&self) -> (usize, usize) {
        (
            self.in_h.div_ceil(self.stride[0]),
            self.in_w.div_ceil(self.stride[1]),
        )
    }

    /// Elements of the scratch buffer [`im2col`] and [`col2im`] need for `images` images: the
    /// stride phases of every input plane.
    pub fn lowering_scratch_len(&self, images: usize) -> usize {
        let (hp, wp) = self.phase_dims();
        images * self.in_channels * self.stride[0] * self.stride[1] * hp * wp
    }

    /// Kernel tap `k` along `axis`: the stride phase it reads and its offset, in phase-plane
    /// positions, from the output position.
    #[inline]
    fn tap(&self, axis: usize, k: usize) -> (usize, isize) {
        let s = self.stride[axis] as isize;
        let off = (k * self.dilation[axis]) as isize - self.padding[axis] as isize;
        (off.rem_euclid(s) as usize, off.div_euclid(s))
    }
}

/// Output positions `o` in `0..out` for which `o + shift` lies in `0..len`, as a half-open range
/// (empty when none do).
#[inline]
fn shifted_range(shift: isize, len: usize, out: usize) -> (usize, usize) {
    let lo = (-shift).max(0) as usize;
    let hi = (len as isize - shift).clamp(0, out as isize) as usize;
    (lo.min(hi), hi)
}

/// The shapes the lowering works with.
struct Lowering {
    images: usize,
    phases: usize,
    hp: usize,
    wp: usize,
    /// Elements of one output plane (`OH·OW`) and of one phase plane (`hp·wp`).
    p: usize,
    plane: usize,
    /// Phase planes have the output's size: rows are single shifted copies.
    aligned: bool,
    /// Images per task.
    nb: usize,
    parallel: bool,
}

impl Lowering {
    fn new(g: &Conv2dGeometry, images: usize, units: usize, work: usize) -> Self {
        let (hp, wp) = g.phase_dims();
        let blocks = MIN_TASKS.div_ceil(units.max(1)).clamp(1, images.max(1));
        Lowering {
            images,
            phases: g.stride[0] * g.stride[1],
            hp,
            wp,
            p: g.out_plane(),
            plane: hp * wp,
            aligned: hp == g.out_h && wp == g.out_w,
            nb: images.div_ceil(blocks).max(1),
            parallel: work >= PAR_THRESHOLD,
        }
    }
}

/// Where column row `(c, kh, kw)` reads from: phase `phase` of channel `c`, shifted by
/// `(sh, sw)`, valid over output rows `oh` and columns `ow`.
struct RowMap {
    phase: usize,
    sh: isize,
    sw: isize,
    oh: (usize, usize),
    ow: (usize, usize),
}

impl RowMap {
    fn new(g: &Conv2dGeometry, l: &Lowering, kh: usize, kw: usize) -> Self {
        let (qh, sh) = g.tap(0, kh);
        let (qw, sw) = g.tap(1, kw);
        let oh = shifted_range(sh, l.hp, g.out_h);
        let ow = shifted_range(sw, l.wp, g.out_w);
        RowMap {
            phase: qh * g.stride[1] + qw,
            sh,
            sw,
            oh,
            ow,
        }
    }

    /// Offset from a column position to the phase-region position it reads (aligned case).
    fn delta(&self, wp: usize) -> isize {
        self.sh * wp as isize + self.sw
    }

    /// Start, in its phase plane, of the valid part of output row `oh`.
    #[inline]
    fn src_start(&self, oh: usize, wp: usize) -> usize {
        (oh as isize + self.sh) as usize * wp + (self.ow.0 as isize + self.sw) as usize
    }

    /// Zeroes the positions of each image's `[OH, OW]` column block in `block` that fall in the
    /// padding. Position by position across the images: a few positions per image, so one
    /// strided loop per position beats a `memset` call per piece of each image.
    #[inline]
    fn zero_padding<T: Float>(&self, block: &mut [T], oh_n: usize, ow_n: usize) {
        let ((oh_lo, oh_hi), (ow_lo, ow_hi)) = (self.oh, self.ow);
        let p = oh_n * ow_n;
        let mut zero_at = |pos: usize| {
            for v in block[pos..].iter_mut().step_by(p) {
                *v = T::ZERO;
            }
        };
        for oh in (0..oh_lo).chain(oh_hi..oh_n) {
            (0..ow_n).for_each(|ow| zero_at(oh * ow_n + ow));
        }
        for oh in oh_lo..oh_hi {
            (0..ow_lo)
                .chain(ow_hi..ow_n)
                .for_each(|ow| zero_at(oh * ow_n + ow));
        }
    }
}

/// Runs `job(i, chunk)` over consecutive `len`-element chunks of `data`, in parallel when
/// `parallel`.
fn for_chunks<T: Float>(
    data: &mut [T],
    len: usize,
    parallel: bool,
    job: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    if len == 0 {
        return;
    }
    if parallel {
        data.par_chunks_mut(len)
            .enumerate()
            .for_each(|(i, c)| job(i, c));
    } else {
        data.chunks_mut(len)
            .enumerate()
            .for_each(|(i, c)| job(i, c));
    }
}

/// `xph[c, (qh, qw), n, j, i] = x[n, c, qh + sH·j, qw + sW·i]`, zero beyond the input. One
/// task per channel: it reads that channel's planes row by row and deals each row out to its
/// phase rows.
fn split_phases<T: Float>(g: &Conv2dGeometry, l: &Lowering, x: &[T], xph: &mut [T]) {
    let (h, w) = (g.in_h, g.in_w);
    let [s0, s1] = g.stride;
    let (hp, wp, images) = (l.hp, l.wp, l.images);
    let xph = &mut xph[..g.lowering_scratch_len(images)];
    for_chunks(xph, l.phases * images * l.plane, l.parallel, |c, region| {
        if h % s0 != 0 || w % s1 != 0 {
            // Phase planes reach past the input: their last rows/columns stay zero.
            region.fill(T::ZERO);
        }
        for n in 0..images {
            let src = &x[(n * g.in_channels + c) * h * w..][..h * w];
            if l.phases == 1 {
                // Stride 1: the plane is its own phase.
                region[n * l.plane..][..h * w].copy_from_slice(src);
                continue;
            }
            for (ih, row) in src.chunks_exact(w).enumerate() {
                let (qh, j) = (ih % s0, ih / s0);
                let dst_row = |qw: usize| ((qh * s1 + qw) * images + n) * l.plane + j * wp;
                match s1 {
                    1 => region[dst_row(0)..][..w].copy_from_slice(row),
                    2 => {
                        // Phase qw = 0 lies before qw = 1: split there to deal the pairs out.
                        let (e, o) = (dst_row(0), dst_row(1));
                        let (left, right) = region.split_at_mut(o);
                        let (even, odd) = (&mut left[e..e + wp], &mut right[..wp]);
                        for ((a, b), pair) in
                            even.iter_mut().zip(odd.iter_mut()).zip(row.chunks_exact(2))
                        {
                            *a = pair[0];
                            *b = pair[1];
                        }
                        if w % 2 == 1 {
                            even[w / 2] = row[w - 1];
                        }
                    }
                    _ => {
                        for (iw, &v) in row.iter().enumerate() {
                            region[dst_row(iw % s1) + iw / s1] = v;
                        }
                    }
                }
            }
        }
        debug_assert!(hp * s0 >= h && wp * s1 >= w);
    });
}

/// Unfolds `images` consecutive images starting at `x` into `col` (`[C·kH·kW, images·OH·OW]`,
/// row-major; every element is written). `scratch` needs
/// [`Conv2dGeometry::lowering_scratch_len`] elements. Parallel over rows (and image blocks when
/// there are few rows).
pub fn im2col<T: Float>(
    g: &Conv2dGeometry,
    x: &[T],
    images: usize,
    col: &mut [T],
    scratch: &mut [T],
) {
    let l = Lowering::new(
        g,
        images,
        g.col_rows(),
        g.col_rows() * images * g.out_plane(),
    );
    let ld = images * l.p;
    if ld == 0 || g.col_rows() == 0 {
        return;
    }
    split_phases(g, &l, x, scratch);
    let xph = &*scratch;
    let region = images * l.plane;
    let [kh_n, kw_n] = g.kernel;
    let ow_n = g.out_w;
    for_chunks(&mut col[..g.col_rows() * ld], ld, l.parallel, |r, row| {
        let (c, kh, kw) = (r / (kh_n * kw_n), (r / kw_n) % kh_n, r % kw_n);
        let m = RowMap::new(g, &l, kh, kw);
        let src = &xph[(c * l.phases + m.phase) * region..][..region];
        for_chunks(row, l.nb * l.p, l.parallel && l.nb < images, |b, block| {
            let n0 = b * l.nb;
            if l.aligned {
                // block[i] = src[n0·P + i + delta], clipped to the region (the clipped positions
                // are padding, zeroed below).
                let start = (n0 * l.p) as isize + m.delta(l.wp);
                let lo = (-start).clamp(0, block.len() as isize) as usize;
                let hi =
                    (region as isize - start).clamp(lo as isize, block.len() as isize) as usize;
                // An image block wholly outside the region (tiny images, large shifts) copies
                // nothing; its source offset would be negative.
                if hi > lo {
                    block[lo..hi]
                        .copy_from_slice(&src[(start + lo as isize) as usize..][..hi - lo]);
                }
                block[..lo].fill(T::ZERO);
                block[hi..].fill(T::ZERO);
                m.zero_padding(block, g.out_h, ow_n);
                return;
            }
            let ((oh_lo, oh_hi), (ow_lo, ow_hi)) = (m.oh, m.ow);
            for (i, d) in block.chunks_exact_mut(l.p).enumerate() {
                let plane = &src[(n0 + i) * l.plane..][..l.plane];
                d.fill(T::ZERO);
                for oh in oh_lo..oh_hi {
                    let len = ow_hi - ow_lo;
                    d[oh * ow_n + ow_lo..][..len]
                        .copy_from_slice(&plane[m.src_start(oh, l.wp)..][..len]);
                }
            }
        });
    });
}

/// Folds `col` (`[C·kH·kW, images·OH·OW]`) back into `images` input-shaped images `x`
/// (overwritten), summing overlapping patches: the adjoint of [`im2col`]. The entries of `col`
/// that fall in the padding are zeroed in place. `scratch` needs
/// [`Conv2dGeometry::lowering_scratch_len`] elements. Every input element is summed by one task
/// over the kernel taps in a fixed order, so the result is thread-count independent.
pub fn col2im<T: Float>(
    g: &Conv2dGeometry,
    col: &mut [T],
    images: usize,
    x: &mut [T],
    scratch: &mut [T],
) {
    let (h, w) = (g.in_h, g.in_w);
    let x = &mut x[..images * g.in_image()];
    if x.is_empty() {
        return;
    }
    let [s0, s1] = g.stride;
    let units = g.in_channels * s0 * s1;
    let l = Lowering::new(
        g,
        images,
        units,
        (g.col_rows() * images * g.out_plane()).max(x.len()),
    );
    let ld = images * l.p;
    let [kh_n, kw_n] = g.kernel;
    let ow_n = g.out_w;
    let maps: Vec<RowMap> = (0..kh_n * kw_n)
        .map(|t| RowMap::new(g, &l, t / kw_n, t % kw_n))
        .collect();
    let col = &mut col[..g.col_rows() * ld];
    if l.aligned {
        for_chunks(col, ld, l.parallel, |r, row| {
            maps[r % (kh_n * kw_n)].zero_padding(row, g.out_h, ow_n)
        });
    }
    let col = &*col;
    // Accumulate into the phase regions tmp[c, phase, n, j, i]: a task owns one phase of one
    // channel (for a block of images) and adds, front to back, the rows of the taps that read
    // that phase.
    let region = images * l.plane;
    let tmp = &mut scratch[..g.lowering_scratch_len(images)];
    for_chunks(tmp, region, l.parallel, |cp, reg| {
        let (c, ph) = (cp / l.phases, cp % l.phases);
        for_chunks(
            reg,
            l.nb * l.plane,
            l.parallel && l.nb < images,
            |b, block| {
                block.fill(T::ZERO);
                let n0 = b * l.nb;
                for (t, m) in maps.iter().enumerate() {
                    let ((oh_lo, oh_hi), (ow_lo, ow_hi)) = (m.oh, m.ow);
                    if m.phase != ph || oh_lo >= oh_hi || ow_lo >= ow_hi {
                        continue;
                    }
                    let row = &col[(c * kh_n * kw_n + t) * ld..][..ld];
                    if l.aligned {
                        // block[q] += row[n0·P + q - delta] (the zeroed padding adds nothing).
                        let start = (n0 * l.p) as isize - m.delta(l.wp);
                        let lo = (-start).clamp(0, block.len() as isize) as usize;
                        let hi =
                            (ld as isize - start).clamp(lo as isize, block.len() as isize) as usize;
                        if hi > lo {
                            add_into(
                                &mut block[lo..hi],
                                &row[(start + lo as isize) as usize..][..hi - lo],
                            );
                        }
                        continue;
                    }
                    for (i, plane) in block.chunks_exact_mut(l.plane).enumerate() {
                        let src = &row[(n0 + i) * l.p..][..l.p];
                        for oh in oh_lo..oh_hi {
                            let len = ow_hi - ow_lo;
                            add_into(
                                &mut plane[m.src_start(oh, l.wp)..][..len],
                                &src[oh * ow_n + ow_lo..][..len],
                            );
                        }
                    }
                }
            },
        );
    });
    // Interleave the phases back: x[n, c, qh + sH·j, qw + sW·i] = tmp[c, (qh, qw), n, j, i].
    let tmp = &*tmp;
    for_chunks(x, h * w, l.parallel, |i, plane| {
        let (n, c) = (i / g.in_channels, i % g.in_channels);
        let phase_row = |qh: usize, qw: usize, j: usize| {
            &tmp[((c * l.phases + qh * s1 + qw) * images + n) * l.plane + j * l.wp..][..l.wp]
        };
        if l.phases == 1 {
            plane.copy_from_slice(&tmp[(c * images + n) * l.plane..][..h * w]);
            return;
        }
        for (ih, d) in plane.chunks_exact_mut(w).enumerate() {
            let (qh, j) = (ih % s0, ih / s0);
            match s1 {
                1 => d.copy_from_slice(&phase_row(qh, 0, j)[..w]),
                2 if w % 2 == 0 => {
                    for ((pair, &a), &b) in d
                        .chunks_exact_mut(2)
                        .zip(phase_row(qh, 0, j))
                        .zip(phase_row(qh, 1, j))
                    {
                        pair[0] = a;
                        pair[1] = b;
                    }
                }
                _ => {
                    for qw in 0..s1.min(w) {
                        for (dv, &sv) in d[qw..].iter_mut().step_by(s1).zip(phase_row(qh, qw, j)) {
                            *dv = sv;
                        }
                    }
                }
            }
        }
    });
}

#[inline]
fn add_into<T: Float>(dst: &mut [T], src: &[T]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

// ------------------------------------------------------------------- NCHW <-> channel-major

/// `dst[n, c, p] = src[c, n·P + p] (+ bias[c])`: a channel-major block of `images` images into NCHW.
fn scatter_nchw<T: Float>(
    src: &[T],
    images: usize,
    channels: usize,
    p: usize,
    bias: Option<&[T]>,
    dst: &mut [T],
) {
    let ld = images * p;
    let dst = &mut dst[..images * channels * p];
    let job = |(i, d): (usize, &mut [T])| {
        let (n, c) = (i / channels, i % channels);
        let s = &src[c * ld + n * p..][..p];
        match bias {
            Some(b) => {
                let bc = b[c];
                for (dv, &sv) in d.iter_mut().zip(s) {
                    *dv = sv + bc;
                }
            }
            None => d.copy_from_slice(s),
        }
    };
    if p == 0 {
        return;
    }
    if dst.len() >= PAR_THRESHOLD {
        dst.par_chunks_mut(p).enumerate().for_each(job);
    } else {
        dst.chunks_mut(p).enumerate().for_each(job);
    }
}

/// `dst[c, n·P + p] = src[n, c, p]`: NCHW images into a channel-major block.
fn gather_nchw<T: Float>(src: &[T], images: usize, channels: usize, p: usize, dst: &mut [T]) {
    let ld = images * p;
    if ld == 0 {
        return;
    }
    let dst = &mut dst[..channels * ld];
    let job = |(c, d): (usize, &mut [T])| {
        for (n, dn) in d.chunks_exact_mut(p).enumerate() {
            dn.copy_from_slice(&src[(n * channels + c) * p..][..p]);
        }
    };
    if dst.len() >= PAR_THRESHOLD {
        dst.par_chunks_mut(ld).enumerate().for_each(job);
    } else {
        dst.chunks_mut(ld).enumerate().for_each(job);
    }
}

/// Adds `bias[c]` to every element of channel `c` of NCHW data with planes of `p` elements.
pub fn add_channel_bias<T: Float>(data: &mut [T], channels: usize, p: usize, bias: &[T]) {
    if p == 0 {
        return;
    }
    let job = |(i, d): (usize, &mut [T])| {
        let b = bias[i % channels];
        d.iter_mut().for_each(|v| *v += b);
    };
    if data.len() >= PAR_THRESHOLD {
        data.par_chunks_mut(p).enumerate().for_each(job);
    } else {
        data.chunks_mut(p).enumerate().for_each(job);
    }
}

/// Per-channel sums of NCHW data (`[batch, channels, p]`): the gradient of a channel bias.
/// Each channel is summed by one thread, image by image, so the result is thread-count independent.
pub fn channel_sum<T: Float>(data: &[T], batch: usize, channels: usize, p: usize) -> Vec<T> {
    let job = |c: usize| {
        let mut total = T::ZERO;
        for n in 0..batch {
            total += super::reduce::sum_slice(&data[(n * channels + c) * p..][..p]);
        }
        total
    };
    if data.len() >= PAR_THRESHOLD {
        (0..channels).into_par_iter().map(job).collect()
    } else {
        (0..channels).map(job).collect()
    }
}

// ---------------------------------------------------------------------------- the three GEMMs

/// Group `gi`'s block of rows `rows` long in a row-major matrix with leading dimension `ld`.
#[inline]
fn block<T>(data: &[T], gi: usize, rows: usize, cols: usize, ld: usize) -> MatRef<'_, T> {
    MatRef {
        data: &data[gi * rows * ld..],
        rows,
        cols,
        rs: ld,
        cs: 1,
    }
}

/// `Y[OC, ld] = W · col` per group (`col` is `[K, ld]`, `Y` row-major with leading dimension `ld`).
fn gemm_forward<T: Float>(g: &Conv2dGeometry, w: &[T], col: &[T], ld: usize, y: &mut [T]) {
    let (kg, ocg) = (g.col_rows() / g.groups, g.out_channels / g.groups);
    for gi in 0..g.groups {
        let a = block(w, gi, ocg, kg, kg);
        let b = block(col, gi, kg, ld, ld);
        gemm(a, b, T::ZERO, &mut y[gi * ocg * ld..], ld);
    }
}

/// `gcol[K, ld] = Wᵀ · gY` per group.
fn gemm_backward_data<T: Float>(g: &Conv2dGeometry, w: &[T], gy: &[T], ld: usize, gcol: &mut [T]) {
    let (kg, ocg) = (g.col_rows() / g.groups, g.out_channels / g.groups);
    for gi in 0..g.groups {
        let a = block(w, gi, ocg, kg, kg).t();
        let b = block(gy, gi, ocg, ld, ld);
        gemm(a, b, T::ZERO, &mut gcol[gi * kg * ld..], ld);
    }
}

/// Weight-gradient products with at most this many outputs per group are split along their
/// reduction (the image columns) when it is long: a GEMM with a tiny output (3 -> 64 channels:
/// 64×48) and a reduction of 16384 finds little to share among threads in its output, so the
/// parts run in parallel instead and are summed in a fixed order. The split depends only on the
/// shapes, so the result does not depend on the thread count.
const SPLIT_OUTPUT_MAX: usize = 1 << 14;
/// Reduction length per part of a split weight-gradient product, and the most parts.
const SPLIT_PART_LEN: usize = 2048;
const SPLIT_PARTS_MAX: usize = 8;

/// `gW[OC, K] = gY · colᵀ + beta·gW` per group; `beta` 0 overwrites, 1 accumulates.
fn gemm_backward_weight<T: Float>(
    g: &Conv2dGeometry,
    gy: &[T],
    col: &[T],
    ld: usize,
    beta: T,
    gw: &mut [T],
) {
    let (kg, ocg) = (g.col_rows() / g.groups, g.out_channels / g.groups);
    let parts = if ocg * kg <= SPLIT_OUTPUT_MAX {
        (ld / SPLIT_PART_LEN).clamp(1, SPLIT_PARTS_MAX)
    } else {
        1
    };
    if parts == 1 {
        for gi in 0..g.groups {
            let a = block(gy, gi, ocg, ld, ld);
            let b = block(col, gi, kg, ld, ld).t();
            gemm(a, b, beta, &mut gw[gi * ocg * kg..], kg);
        }
        return;
    }
    let out = ocg * kg;
    let part_len = ld.div_ceil(parts);
    let mut ws = Workspace::<T>::take(parts * out);
    let partials = &mut ws.buf[..parts * out];
    for gi in 0..g.groups {
        partials
            .par_chunks_mut(out)
            .enumerate()
            .for_each(|(s, part)| {
                let (c0, c1) = ((s * part_len).min(ld), ((s + 1) * part_len).min(ld));
                let a = MatRef {
                    data: &gy[gi * ocg * ld + c0..],
                    rows: ocg,
                    cols: c1 - c0,
                    rs: ld,
                    cs: 1,
                };
                let b = MatRef {
                    data: &col[gi * kg * ld + c0..],
                    rows: kg,
                    cols: c1 - c0,
                    rs: ld,
                    cs: 1,
                };
                gemm(a, b.t(), T::ZERO, part, kg);
            });
        let partials = &*partials;
        for (i, d) in gw[gi * out..][..out].iter_mut().enumerate() {
            let mut acc = if beta == T::ZERO { T::ZERO } else { *d * beta };
            for s in 0..parts {
                acc += partials[s * out + i];
            }
            *d = acc;
        }
    }
}

// -------------------------------------------------------------------------------- convolution

/// Body of [`conv2d_forward`].
fn conv2d_forward_impl<T: Float>(
    g: &Conv2dGeometry,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    y: &mut [T],
) {
    g.check();
    const OP: &str = "conv2d_forward";
    check_len(OP, "x", x.len(), g.batch * g.in_image());
    check_len(OP, "w", w.len(), g.weight_len());
    check_len(OP, "y", y.len(), g.batch * g.out_image());
    check_opt_len(OP, "bias", bias.map(<[T]>::len), g.out_channels);
    let p = g.out_plane();
    if y.is_empty() {
        return;
    }
    if g.is_pointwise() {
        for n in 0..g.batch {
            let yn = &mut y[n * g.out_image()..][..g.out_image()];
            gemm_forward(g, w, &x[n * g.in_image()..][..g.in_image()], p, yn);
            if let Some(b) = bias {
                add_channel_bias(yn, g.out_channels, p, b);
            }
        }
        return;
    }
    let cn = g.chunk_images();
    let mut ws = Workspace::<T>::for_chunk(g, cn);
    let (col, ybuf, scratch) = ws.split(g, cn);
    for n0 in (0..g.batch).step_by(cn) {
        let images = cn.min(g.batch - n0);
        let ld = images * p;
        im2col(g, &x[n0 * g.in_image()..], images, col, scratch);
        gemm_forward(g, w, col, ld, ybuf);
        scatter_nchw(
            ybuf,
            images,
            g.out_channels,
            p,
            bias,
            &mut y[n0 * g.out_image()..],
        );
    }
}

/// Backward of [`conv2d_forward`]: `gx = ∂/∂x` and `gw = ∂/∂w` of `sum(y · gy)`, each computed
/// only when its buffer is given (and overwritten). The bias gradient is [`channel_sum`] of `gy`.
pub fn conv2d_backward<T: Float>(
    g: &Conv2dGeometry,
    x: &[T],
    w: &[T],
    gy: &[T],
    gx: Option<&mut [T]>,
    gw: Option<&mut [T]>,
) {
    check_len("conv2d_backward", "x", x.len(), g.batch * g.in_image());
    check_len("conv2d_backward", "w", w.len(), g.weight_len());
    conv2d_backward_impl(g, gy, gx.map(|gx| (w, gx)), gw.map(|gw| (x, gw)));
}

/// Gradient of a convolution with respect to its input (`gx`, overwritten).
pub fn conv2d_backward_data<T: Float>(g: &Conv2dGeometry, gy: &[T], w: &[T], gx: &mut [T]) {
    check_len("conv2d_backward_data", "w", w.len(), g.weight_len());
    conv2d_backward_impl(g, gy, Some((w, gx)), None);
}

/// Gradient of a convolution with respect to its weight (`gw`, overwritten).
pub fn conv2d_backward_weight<T: Float>(g: &Conv2dGeometry, x: &[T], gy: &[T], gw: &mut [T]) {
    check_len(
        "conv2d_backward_weight",
        "x",
        x.len(),
        g.batch * g.in_image(),
    );
    conv2d_backward_impl(g, gy, None, Some((x, gw)));
}

/// Body of [`conv2d_backward_impl`].
fn conv2d_backward_body<T: Float>(
    g: &Conv2dGeometry,
    gy: &[T],
    mut data: Option<(&[T], &mut [T])>,
    mut weight: Option<(&[T], &mut [T])>,
) {
    g.check();
    const OP: &str = "conv2d_backward";
    check_len(OP, "gy", gy.len(), g.batch * g.out_image());
    check_opt_len(
        OP,
        "gx",
        data.as_ref().map(|(_, gx)| gx.len()),
        g.batch * g.in_image(),
    );
    check_opt_len(
        OP,
        "gw",
        weight.as_ref().map(|(_, gw)| gw.len()),
        g.weight_len(),
    );
    let p = g.out_plane();
    if gy.is_empty() {
        data.into_iter().for_each(|(_, b)| b.fill(T::ZERO));
        weight.into_iter().for_each(|(_, b)| b.fill(T::ZERO));
        return;
    }
    if g.is_pointwise() {
        for n in 0..g.batch {
            let gyn = &gy[n * g.out_image()..][..g.out_image()];
            if let Some((w, gx)) = data.as_mut() {
                gemm_backward_data(g, w, gyn, p, &mut gx[n * g.in_image()..][..g.in_image()]);
            }
            if let Some((x, gw)) = weight.as_mut() {
                let beta = if n == 0 { T::ZERO } else { T::ONE };
                gemm_backward_weight(g, gyn, &x[n * g.in_image()..][..g.in_image()], p, beta, gw);
            }
        }
        return;
    }
    let cn = g.chunk_images();
    let mut ws = Workspace::<T>::for_chunk(g, cn);
    let (col, gybuf, scratch) = ws.split(g, cn);
    for n0 in (0..g.batch).step_by(cn) {
        let images = cn.min(g.batch - n0);
        let ld = images * p;
        gather_nchw(&gy[n0 * g.out_image()..], images, g.out_channels, p, gybuf);
        if let Some((x, gw)) = weight.as_mut() {
            im2col(g, &x[n0 * g.in_image()..], images, col, scratch);
            let beta = if n0 == 0 { T::ZERO } else { T::ONE };
            gemm_backward_weight(g, gybuf, col, ld, beta, gw);
        }
        if let Some((w, gx)) = data.as_mut() {
            gemm_backward_data(g, w, gybuf, ld, col);
            col2im(g, col, images, &mut gx[n0 * g.in_image()..], scratch);
        }
    }
}

// ---------------------------------------------------------------------- transposed convolution

/// Body of [`conv_transpose2d_forward`].
fn conv_transpose2d_forward_impl<T: Float>(
    g: &Conv2dGeometry,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    y: &mut [T],
) {
    g.check();
    const OP: &str = "conv_transpose2d_forward";
    check_len(OP, "x", x.len(), g.batch * g.out_image());
    check_len(OP, "w", w.len(), g.weight_len());
    check_len(OP, "y", y.len(), g.batch * g.in_image());
    check_opt_len(OP, "bias", bias.map(<[T]>::len), g.in_channels);
    if g.out_image() == 0 {
        y.fill(T::ZERO);
    } else if g.is_pointwise() {
        let p = g.out_plane();
        for n in 0..g.batch {
            let xn = &x[n * g.out_image()..][..g.out_image()];
            gemm_backward_data(g, w, xn, p, &mut y[n * g.in_image()..][..g.in_image()]);
        }
    } else {
        let p = g.out_plane();
        let cn = g.chunk_images();
        let mut ws = Workspace::<T>::for_chunk(g, cn);
        let (col, xbuf, scratch) = ws.split(g, cn);
        for n0 in (0..g.batch).step_by(cn) {
            let images = cn.min(g.batch - n0);
            gather_nchw(&x[n0 * g.out_image()..], images, g.out_channels, p, xbuf);
            gemm_backward_data(g, w, xbuf, images * p, col);
            col2im(g, col, images, &mut y[n0 * g.in_image()..], scratch);
        }
    }
    if let Some(b) = bias {
        add_channel_bias(y, g.in_channels, g.in_h * g.in_w, b);
    }
}

/// Body of [`conv_transpose2d_backward`].
fn conv_transpose2d_backward_impl<T: Float>(
    g: &Conv2dGeometry,
    x: &[T],
    w: &[T],
    gy: &[T],
    mut gx: Option<&mut [T]>,
    mut gw: Option<&mut [T]>,
) {
    g.check();
    const OP: &str = "conv_transpose2d_backward";
    check_len(OP, "x", x.len(), g.batch * g.out_image());
    check_len(OP, "w", w.len(), g.weight_len());
    check_len(OP, "gy", gy.len(), g.batch * g.in_image());
    check_opt_len(OP, "gx", gx.as_deref().map(<[T]>::len), x.len());
    check_opt_len(OP, "gw", gw.as_deref().map(<[T]>::len), w.len());
    let p = g.out_plane();
    if x.is_empty() {
        gx.into_iter().for_each(|b| b.fill(T::ZERO));
        gw.into_iter().for_each(|b| b.fill(T::ZERO));
        return;
    }
    if g.is_pointwise() {
        for n in 0..g.batch {
            let gyn = &gy[n * g.in_image()..][..g.in_image()];
            if let Some(gx) = gx.as_deref_mut() {
                gemm_forward(g, w, gyn, p, &mut gx[n * g.out_image()..][..g.out_image()]);
            }
            if let Some(gw) = gw.as_deref_mut() {
                let beta = if n == 0 { T::ZERO } else { T::ONE };
                gemm_backward_weight(
                    g,
                    &x[n * g.out_image()..][..g.out_image()],
                    gyn,
                    p,
                    beta,
                    gw,
                );
            }
        }
        return;
    }
    // gx is the convolution of gy with w; gw pairs x (as the convolution's output gradient) with
    // the unfolded gy. Both need im2col(gy), done once per chunk.
    let cn = g.chunk_images();
    let mut ws = Workspace::<T>::for_chunk(g, cn);
    let (col, buf, scratch) = ws.split(g, cn);
    for n0 in (0..g.batch).step_by(cn) {
        let images = cn.min(g.batch - n0);
        let ld = images * p;
        im2col(g, &gy[n0 * g.in_image()..], images, col, scratch);
        if let Some(gw) = gw.as_deref_mut() {
            gather_nchw(&x[n0 * g.out_image()..], images, g.out_channels, p, buf);
            let beta = if n0 == 0 { T::ZERO } else { T::ONE };
            gemm_backward_weight(g, buf, col, ld, beta, gw);
        }
        if let Some(gx) = gx.as_deref_mut() {
            gemm_forward(g, w, col, ld, buf);
            scatter_nchw(
                buf,
                images,
                g.out_channels,
                p,
                None,
                &mut gx[n0 * g.out_image()..],
            );
        }
    }
}

// ------------------------------------------------------------------------------- entry points

/// The entry points' contract on a buffer: `op` needs `want` values in `buffer`, which has
/// `len`.
#[track_caller]
fn check_len(op: &str, buffer: &str, len: usize, want: usize) {
    assert_eq!(len, want, "{op}: {buffer} has the wrong length");
}

/// [`check_len`] for a buffer that may be absent (`None`: nothing to check).
#[track_caller]
fn check_opt_len(op: &str, buffer: &str, len: Option<usize>, want: usize) {
    assert!(
        len.is_none_or(|len| len == want),
        "{op}: {buffer} has the wrong length"
    );
}

/// Runs `f` on a rayon worker thread (the calling thread waits once), so that the many parallel
/// loops of one convolution fork and join among the workers instead of each one waking the
/// calling thread when it finishes.
fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    rayon::scope(|_| f())
}

/// Forward convolution: `y[N, OC, OH, OW] = x * w (+ bias)`; `y` is overwritten.
pub fn conv2d_forward<T: Float>(
    g: &Conv2dGeometry,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    y: &mut [T],
) {
    on_pool(|| conv2d_forward_impl(g, x, w, bias, y))
}

/// `data`: the weight and the input-gradient buffer; `weight`: the input and the weight-gradient
/// buffer (see [`conv2d_backward`]).
fn conv2d_backward_impl<T: Float>(
    g: &Conv2dGeometry,
    gy: &[T],
    data: Option<(&[T], &mut [T])>,
    weight: Option<(&[T], &mut [T])>,
) {
    on_pool(|| conv2d_backward_body(g, gy, data, weight))
}

/// Transposed convolution `y = conv_transposeᵀ(x, w) (+ bias)`, where `g` is the geometry of the
/// underlying convolution ([`Conv2dGeometry::transposed`]): `x` has that convolution's output
/// shape `[N, g.out_channels, g.out_h, g.out_w]`, `w` its weight shape (PyTorch's transposed
/// layout `[C_in, C_out/groups, kH, kW]`), and `y` (overwritten) its input shape.
pub fn conv_transpose2d_forward<T: Float>(
    g: &Conv2dGeometry,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    y: &mut [T],
) {
    on_pool(|| conv_transpose2d_forward_impl(g, x, w, bias, y))
}

/// Backward of [`conv_transpose2d_forward`]: `gx` (shape of `x`) and `gw` (shape of `w`) of
/// `sum(y · gy)`, each computed only when its buffer is given (and overwritten). The bias
/// gradient is [`channel_sum`] of `gy` over `g.in_channels` channels.
pub fn conv_transpose2d_backward<T: Float>(
    g: &Conv2dGeometry,
    x: &[T],
    w: &[T],
    gy: &[T],
    gx: Option<&mut [T]>,
    gw: Option<&mut [T]>,
) {
    on_pool(|| conv_transpose2d_backward_impl(g, x, w, gy, gx, gw))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct definition of the convolution, for checking the lowered version.
    fn naive_forward(g: &Conv2dGeometry, x: &[f64], w: &[f64]) -> Vec<f64> {
        let (cg, ocg) = (g.in_channels / g.groups, g.out_channels / g.groups);
        let mut y = vec![0.0; g.batch * g.out_image()];
        for n in 0..g.batch {
            for oc in 0..g.out_channels {
                let gi = oc / ocg;
                for oh in 0..g.out_h {
                    for ow in 0..g.out_w {
                        let mut acc = 0.0;
                        for ci in 0..cg {
                            let c = gi * cg + ci;
                            for kh in 0..g.kernel[0] {
                                for kw in 0..g.kernel[1] {
                                    let ih = (oh * g.stride[0] + kh * g.dilation[0]) as isize
                                        - g.padding[0] as isize;
                                    let iw = (ow * g.stride[1] + kw * g.dilation[1]) as isize
                                        - g.padding[1] as isize;
                                    if ih < 0
                                        || iw < 0
                                        || ih >= g.in_h as isize
                                        || iw >= g.in_w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x[((n * g.in_channels + c) * g.in_h + ih as usize)
                                        * g.in_w
                                        + iw as usize];
                                    let wv =
                                        w[((oc * cg + ci) * g.kernel[0] + kh) * g.kernel[1] + kw];
                                    acc += xv * wv;
                                }
                            }
                        }
                        y[((n * g.out_channels + oc) * g.out_h + oh) * g.out_w + ow] = acc;
                    }
                }
            }
        }
        y
    }

    fn values(n: usize, seed: f64) -> Vec<f64> {
        (0..n).map(|i| ((i as f64 + seed) * 0.731).sin()).collect()
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn geometries() -> Vec<Conv2dGeometry> {
        let mut out = Vec::new();
        for &(k, s, p, d, groups, hw) in &[
            (3, 1, 1, 1, 1, [5, 6]),
            (4, 2, 1, 1, 1, [8, 8]),
            (3, 2, 0, 2, 2, [7, 9]),
            (1, 1, 0, 1, 1, [3, 4]),
            (1, 1, 0, 1, 2, [3, 3]),
            (2, 3, 1, 1, 2, [6, 5]),
        ] {
            let g = Conv2dGeometry::conv2d(3, 4, hw, 6, [k, k], [s, s], [p, p], [d, d], groups)
                .unwrap();
            out.push(g);
        }
        // Few channels and many images: the lowering splits images among tasks and runs in
        // parallel (both only happen above the parallel threshold).
        out.push(
            Conv2dGeometry::conv2d(48, 1, [16, 17], 3, [3, 3], [2, 1], [1, 1], [1, 1], 1).unwrap(),
        );
        out.push(
            Conv2dGeometry::conv2d(40, 2, [16, 16], 2, [4, 4], [2, 2], [1, 1], [1, 1], 2).unwrap(),
        );
        out
    }

    #[test]
    fn forward_matches_the_definition() {
        for g in geometries() {
            let x = values(g.batch * g.in_image(), 0.0);
            let w = values(g.weight_len(), 5.0);
            let mut y = vec![f64::NAN; g.batch * g.out_image()];
            conv2d_forward(&g, &x, &w, None, &mut y);
            let want = naive_forward(&g, &x, &w);
            for (a, b) in y.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "{g:?}: {a} vs {b}");
            }
        }
    }

    /// `<conv(x, w), gy> = <x, gx> = <w, gw>`: backward-data and backward-weight are the adjoints
    /// of the forward in x and in w; the transposed convolution is the adjoint of the convolution.
    #[test]
    fn backward_and_transpose_are_adjoints() {
        for g in geometries() {
            let x = values(g.batch * g.in_image(), 1.0);
            let w = values(g.weight_len(), 2.0);
            let gy = values(g.batch * g.out_image(), 3.0);
            let mut y = vec![0.0; gy.len()];
            conv2d_forward(&g, &x, &w, None, &mut y);
            let (mut gx, mut gw) = (vec![f64::NAN; x.len()], vec![f64::NAN; w.len()]);
            conv2d_backward(&g, &x, &w, &gy, Some(&mut gx), Some(&mut gw));
            let lhs = dot(&y, &gy);
            assert!((lhs - dot(&x, &gx)).abs() < 1e-9, "{g:?}");
            assert!((lhs - dot(&w, &gw)).abs() < 1e-9, "{g:?}");

            let mut yt = vec![f64::NAN; x.len()];
            conv_transpose2d_forward(&g, &gy, &w, None, &mut yt);
            assert_eq!(yt, gx);
            let (mut tgx, mut tgw) = (vec![f64::NAN; gy.len()], vec![f64::NAN; w.len()]);
            conv_transpose2d_backward(&g, &gy, &w, &x, Some(&mut tgx), Some(&mut tgw));
            for (a, b) in tgx.iter().zip(&y) {
                assert!((a - b).abs() < 1e-12);
            }
            for (a, b) in tgw.iter().zip(&gw) {
                assert!((a - b).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn chunked_batches_match_one_chunk() {
        // 300 images of 8·8·16 columns each overflow the column budget, forcing several chunks.
        let g = Conv2dGeometry::conv2d(300, 16, [18, 18], 2, [4, 4], [2, 2], [1, 1], [1, 1], 1)
            .unwrap();
        assert!(g.chunk_images() < g.batch);
        let x = values(g.batch * g.in_image(), 0.5);
        let w = values(g.weight_len(), 1.5);
        let gy = values(g.batch * g.out_image(), 2.5);
        let mut gw = vec![0.0; w.len()];
        conv2d_backward(&g, &x, &w, &gy, None, Some(&mut gw));
        let mut want = vec![0.0; w.len()];
        for n in 0..g.batch {
            let one = Conv2dGeometry { batch: 1, ..g };
            let mut part = vec![0.0; w.len()];
            let xs = &x[n * g.in_image()..][..g.in_image()];
            conv2d_backward(
                &one,
                xs,
                &w,
                &gy[n * g.out_image()..][..g.out_image()],
                None,
                Some(&mut part),
            );
            want.iter_mut().zip(&part).for_each(|(a, b)| *a += b);
        }
        for (a, b) in gw.iter().zip(&want) {
            assert!((a - b).abs() < 1e-8 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn transposed_geometry_with_output_padding() {
        // x [2, 4, 3, 3], w [4, 3, 3, 3], stride 2, pad 1, output_padding 1 -> y [2, 3, 6, 6].
        let g =
            Conv2dGeometry::transposed(2, 4, [3, 3], 3, [3, 3], [2, 2], [1, 1], [1, 1], [1, 1], 1)
                .unwrap();
        assert_eq!(
            (
                g.in_channels,
                g.in_h,
                g.in_w,
                g.out_channels,
                g.out_h,
                g.out_w
            ),
            (3, 6, 6, 4, 3, 3)
        );
        assert!(Conv2dGeometry::transposed(
            2,
            4,
            [3, 3],
            3,
            [3, 3],
            [2, 2],
            [1, 1],
            [2, 2],
            [1, 1],
            1
        )
        .is_none());
    }
}
