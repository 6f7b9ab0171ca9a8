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
//! Pointwise convolutions (1×1 kernel, stride 1, no padding) skip the unfolding: each image's
//! `[C, H·W]` plane block already is its column matrix, so the GEMMs read the input and write the
//! output in place (see [`Conv2dGeometry::is_pointwise`]).

use super::gemm::{gemm, MatRef};
use super::PAR_THRESHOLD;
use crate::Float;
use rayon::prelude::*;
use std::any::Any;
use std::sync::Mutex;

/// The most elements the column buffer of one chunk of images may hold (16 MiB of f32). Large
/// enough that the DCGAN layers at batch 64 run as one GEMM per product; small enough that big
/// images do not allocate gigabytes.
pub const COL_BUDGET: usize = 1 << 22;

/// Shapes and hyper-parameters of one 2-D convolution `x[N, C, H, W] * w[OC, C/groups, kH, kW]
/// -> y[N, OC, OH, OW]`.
///
/// `out_h`/`out_w` are normally [`Conv2dGeometry::conv2d`]'s natural output size; the adjoint of a
/// transposed convolution with `output_padding` may use fewer rows (the input's last rows then only
/// receive zeros in backward-data), which every function here supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_channels: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

/// Natural output length of a convolution along one axis, or `None` when the dilated kernel does
/// not fit in the padded input (or a parameter is zero).
pub fn conv_out_len(input: usize, kernel: usize, stride: usize, padding: usize, dilation: usize) -> Option<usize> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let span = dilation * (kernel - 1) + 1;
    let padded = input + 2 * padding;
    (padded >= span).then(|| (padded - span) / stride + 1)
}

/// Output length of a transposed convolution along one axis, or `None` when it is not positive.
pub fn conv_transpose_out_len(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    output_padding: usize,
    dilation: usize,
) -> Option<usize> {
    if input == 0 || kernel == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let full = (input - 1) * stride + dilation * (kernel - 1) + output_padding + 1;
    full.checked_sub(2 * padding).filter(|&n| n > 0)
}

impl Conv2dGeometry {
    /// The geometry of a convolution with its natural output size; `None` when the output would
    /// be empty or a parameter is zero. Channel/group consistency is the caller's to check.
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d(
        batch: usize,
        in_channels: usize,
        in_hw: [usize; 2],
        out_channels: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Option<Self> {
        let out_h = conv_out_len(in_hw[0], kernel[0], stride[0], padding[0], dilation[0])?;
        let out_w = conv_out_len(in_hw[1], kernel[1], stride[1], padding[1], dilation[1])?;
        Some(Conv2dGeometry {
            batch,
            in_channels,
            in_h: in_hw[0],
            in_w: in_hw[1],
            out_channels,
            out_h,
            out_w,
            kernel,
            stride,
            padding,
            dilation,
            groups,
        })
    }

    /// The convolution whose adjoint is the transposed convolution `x[N, C_in, H, W] *
    /// w[C_in, C_out/groups, kH, kW] -> y[N, C_out, H', W']`: it maps `[N, C_out, H', W']` to
    /// `[N, C_in, H, W]` with weight `w` read as `[OC = C_in, C_out/groups, kH, kW]`. `None` when
    /// the output would be empty, a parameter is zero, or `output_padding` is not smaller than the
    /// stride or the dilation (as PyTorch requires).
    #[allow(clippy::too_many_arguments)]
    pub fn transposed(
        batch: usize,
        in_channels: usize,
        in_hw: [usize; 2],
        out_channels: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        output_padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Option<Self> {
        let mut out = [0; 2];
        for a in 0..2 {
            if output_padding[a] >= stride[a] && output_padding[a] >= dilation[a] {
                return None;
            }
            out[a] =
                conv_transpose_out_len(in_hw[a], kernel[a], stride[a], padding[a], output_padding[a], dilation[a])?;
        }
        Some(Conv2dGeometry {
            batch,
            in_channels: out_channels,
            in_h: out[0],
            in_w: out[1],
            out_channels: in_channels,
            out_h: in_hw[0],
            out_w: in_hw[1],
            kernel,
            stride,
            padding,
            dilation,
            groups,
        })
    }

    /// Elements of one input image (`C·H·W`).
    pub fn in_image(&self) -> usize {
        self.in_channels * self.in_h * self.in_w
    }
    /// Elements of one output image (`OC·OH·OW`).
    pub fn out_image(&self) -> usize {
        self.out_channels * self.out_h * self.out_w
    }
    /// Output pixels per channel (`OH·OW`).
    pub fn out_plane(&self) -> usize {
        self.out_h * self.out_w
    }
    /// Rows of the column matrix: `C·kH·kW` (all groups).
    pub fn col_rows(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }
    /// Elements of the weight: `OC · C/groups · kH · kW`.
    pub fn weight_len(&self) -> usize {
        self.out_channels * self.col_rows() / self.groups
    }
    /// 1×1 kernel, stride 1, no padding: the input is its own column matrix.
    pub fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1]
            && self.stride == [1, 1]
            && self.padding == [0, 0]
            && self.out_h == self.in_h
            && self.out_w == self.in_w
    }
    /// Images per chunk: as many as fit the column budget (at least one).
    pub fn chunk_images(&self) -> usize {
        let per_image = (self.col_rows() * self.out_plane()).max(1);
        (COL_BUDGET / per_image).clamp(1, self.batch.max(1))
    }

    fn check(&self) {
        assert!(self.groups > 0, "conv: groups must be positive");
        assert!(
            self.in_channels.is_multiple_of(self.groups) && self.out_channels.is_multiple_of(self.groups),
            "conv: channels not divisible by groups"
        );
        for a in 0..2 {
            assert!(self.kernel[a] > 0 && self.stride[a] > 0 && self.dilation[a] > 0, "conv: zero parameter");
        }
        let natural_h = conv_out_len(self.in_h, self.kernel[0], self.stride[0], self.padding[0], self.dilation[0]);
        let natural_w = conv_out_len(self.in_w, self.kernel[1], self.stride[1], self.padding[1], self.dilation[1]);
        assert!(natural_h.is_some_and(|n| n >= self.out_h), "conv: output height too large");
        assert!(natural_w.is_some_and(|n| n >= self.out_w), "conv: output width too large");
    }
}

// ------------------------------------------------------------------------------------- workspace

/// Column buffers kept between calls, so a training loop does not pay for a fresh multi-megabyte
/// allocation (and its page faults) on every convolution. Each buffer is at most a chunk's worth
/// ([`COL_BUDGET`] plus the channel-major staging block).
static WORKSPACES: Mutex<Vec<Box<dyn Any + Send>>> = Mutex::new(Vec::new());

/// How many idle buffers the pool keeps (one per concurrently running convolution is enough).
const MAX_POOLED: usize = 4;

/// A buffer of at least `len` elements from the pool (contents unspecified), returned to the pool
/// on drop.
struct Workspace<T: Float> {
    buf: Vec<T>,
}

impl<T: Float> Workspace<T> {
    fn take(len: usize) -> Self {
        let mut pool = WORKSPACES.lock().unwrap_or_else(|e| e.into_inner());
        let found = pool.iter().position(|b| b.is::<Vec<T>>());
        let mut buf = match found {
            Some(i) => *pool.swap_remove(i).downcast::<Vec<T>>().expect("type checked"),
            None => Vec::new(),
        };
        drop(pool);
        if buf.len() < len {
            buf.resize(len, T::ZERO);
        }
        Workspace { buf }
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

/// Output positions `o` in `0..out` whose input index `o·stride + offset` lies in `0..len`, as a
/// half-open range (empty when none do).
#[inline]
fn valid_range(offset: isize, stride: usize, len: usize, out: usize) -> (usize, usize) {
    let s = stride as isize;
    let lo = if offset >= 0 { 0 } else { ((-offset + s - 1) / s) as usize };
    let last = len as isize - 1 - offset;
    let hi = if last < 0 { 0 } else { (last / s + 1) as usize };
    let hi = hi.min(out);
    (lo.min(hi), hi)
}

/// Fills row `r = (c, kh, kw)` of a column matrix for `images` consecutive images of `x`.
fn im2col_row<T: Float>(g: &Conv2dGeometry, x: &[T], images: usize, r: usize, row: &mut [T]) {
    let [kh_n, kw_n] = g.kernel;
    let (c, kh, kw) = (r / (kh_n * kw_n), (r / kw_n) % kh_n, r % kw_n);
    let (h, w, oh_n, ow_n) = (g.in_h, g.in_w, g.out_h, g.out_w);
    let [sh, sw] = g.stride;
    let h_off = (kh * g.dilation[0]) as isize - g.padding[0] as isize;
    let w_off = (kw * g.dilation[1]) as isize - g.padding[1] as isize;
    let (oh_lo, oh_hi) = valid_range(h_off, sh, h, oh_n);
    let (ow_lo, ow_hi) = valid_range(w_off, sw, w, ow_n);
    let p = oh_n * ow_n;
    for n in 0..images {
        let src = &x[n * g.in_image() + c * h * w..][..h * w];
        let dst = &mut row[n * p..(n + 1) * p];
        dst[..oh_lo * ow_n].fill(T::ZERO);
        dst[oh_hi * ow_n..].fill(T::ZERO);
        for oh in oh_lo..oh_hi {
            let ih = (oh * sh) as isize + h_off;
            let src_row = &src[ih as usize * w..][..w];
            let d = &mut dst[oh * ow_n..][..ow_n];
            d[..ow_lo].fill(T::ZERO);
            d[ow_hi..].fill(T::ZERO);
            if ow_lo < ow_hi {
                let start = (ow_lo * sw) as isize + w_off;
                let s = &src_row[start as usize..];
                let d = &mut d[ow_lo..ow_hi];
                if sw == 1 {
                    d.copy_from_slice(&s[..d.len()]);
                } else {
                    for (dv, &sv) in d.iter_mut().zip(s.iter().step_by(sw)) {
                        *dv = sv;
                    }
                }
            }
        }
    }
}

/// Unfolds `images` consecutive images starting at `x` into `col` (`[C·kH·kW, images·OH·OW]`,
/// row-major; every element is written). Parallel over rows.
pub fn im2col<T: Float>(g: &Conv2dGeometry, x: &[T], images: usize, col: &mut [T]) {
    let ld = images * g.out_plane();
    if ld == 0 {
        return;
    }
    let col = &mut col[..g.col_rows() * ld];
    let job = |(r, row): (usize, &mut [T])| im2col_row(g, x, images, r, row);
    if col.len() >= PAR_THRESHOLD {
        col.par_chunks_mut(ld).enumerate().for_each(job);
    } else {
        col.chunks_mut(ld).enumerate().for_each(job);
    }
}

/// Accumulates the column entries of channel `c` of image `n` into `plane` (`[H, W]`, overwritten):
/// the adjoint of [`im2col`] for one plane. Contributions are added in (kh, kw, oh, ow) order.
fn col2im_plane<T: Float>(g: &Conv2dGeometry, col: &[T], ld: usize, n: usize, c: usize, plane: &mut [T]) {
    plane.fill(T::ZERO);
    let [kh_n, kw_n] = g.kernel;
    let (w, ow_n, p) = (g.in_w, g.out_w, g.out_plane());
    let [sh, sw] = g.stride;
    for kh in 0..kh_n {
        let h_off = (kh * g.dilation[0]) as isize - g.padding[0] as isize;
        let (oh_lo, oh_hi) = valid_range(h_off, sh, g.in_h, g.out_h);
        for kw in 0..kw_n {
            let w_off = (kw * g.dilation[1]) as isize - g.padding[1] as isize;
            let (ow_lo, ow_hi) = valid_range(w_off, sw, w, ow_n);
            if ow_lo >= ow_hi {
                continue;
            }
            let r = (c * kh_n + kh) * kw_n + kw;
            let src = &col[r * ld + n * p..][..p];
            for oh in oh_lo..oh_hi {
                let ih = ((oh * sh) as isize + h_off) as usize;
                let start = ((ow_lo * sw) as isize + w_off) as usize;
                let d = &mut plane[ih * w + start..(ih + 1) * w];
                let s = &src[oh * ow_n + ow_lo..oh * ow_n + ow_hi];
                if sw == 1 {
                    for (dv, &sv) in d.iter_mut().zip(s) {
                        *dv += sv;
                    }
                } else {
                    for (dv, &sv) in d.iter_mut().step_by(sw).zip(s) {
                        *dv += sv;
                    }
                }
            }
        }
    }
}

/// Folds `col` (`[C·kH·kW, images·OH·OW]`) back into `images` input-shaped images `x`
/// (overwritten), summing overlapping patches: the adjoint of [`im2col`]. Parallel over
/// (image, channel) planes, each summed by one thread in a fixed order.
pub fn col2im<T: Float>(g: &Conv2dGeometry, col: &[T], images: usize, x: &mut [T]) {
    let plane = g.in_h * g.in_w;
    let x = &mut x[..images * g.in_image()];
    if plane == 0 || x.is_empty() {
        return;
    }
    let ld = images * g.out_plane();
    let c_n = g.in_channels;
    let job = |(i, pl): (usize, &mut [T])| col2im_plane(g, col, ld, i / c_n, i % c_n, pl);
    if x.len() >= PAR_THRESHOLD {
        x.par_chunks_mut(plane).enumerate().for_each(job);
    } else {
        x.chunks_mut(plane).enumerate().for_each(job);
    }
}

// ------------------------------------------------------------------- NCHW <-> channel-major

/// `dst[n, c, p] = src[c, n·P + p] (+ bias[c])`: a channel-major block of `images` images into NCHW.
fn scatter_nchw<T: Float>(src: &[T], images: usize, channels: usize, p: usize, bias: Option<&[T]>, dst: &mut [T]) {
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
    MatRef { data: &data[gi * rows * ld..], rows, cols, rs: ld, cs: 1 }
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

/// `gW[OC, K] (+)= gY · colᵀ` per group; `beta` 0 overwrites, 1 accumulates.
fn gemm_backward_weight<T: Float>(g: &Conv2dGeometry, gy: &[T], col: &[T], ld: usize, beta: T, gw: &mut [T]) {
    let (kg, ocg) = (g.col_rows() / g.groups, g.out_channels / g.groups);
    for gi in 0..g.groups {
        let a = block(gy, gi, ocg, ld, ld);
        let b = block(col, gi, kg, ld, ld).t();
        gemm(a, b, beta, &mut gw[gi * ocg * kg..], kg);
    }
}

// -------------------------------------------------------------------------------- convolution

/// Forward convolution: `y[N, OC, OH, OW] = x * w (+ bias)`; `y` is overwritten.
pub fn conv2d_forward<T: Float>(g: &Conv2dGeometry, x: &[T], w: &[T], bias: Option<&[T]>, y: &mut [T]) {
    g.check();
    assert_eq!(x.len(), g.batch * g.in_image(), "conv2d_forward: x has the wrong length");
    assert_eq!(w.len(), g.weight_len(), "conv2d_forward: w has the wrong length");
    assert_eq!(y.len(), g.batch * g.out_image(), "conv2d_forward: y has the wrong length");
    assert!(bias.is_none_or(|b| b.len() == g.out_channels), "conv2d_forward: bias has the wrong length");
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
    let col_len = g.col_rows() * cn * p;
    let mut ws = Workspace::<T>::take(col_len + g.out_channels * cn * p);
    let (col, ybuf) = ws.buf.split_at_mut(col_len);
    for n0 in (0..g.batch).step_by(cn) {
        let images = cn.min(g.batch - n0);
        let ld = images * p;
        im2col(g, &x[n0 * g.in_image()..], images, col);
        gemm_forward(g, w, col, ld, ybuf);
        scatter_nchw(ybuf, images, g.out_channels, p, bias, &mut y[n0 * g.out_image()..]);
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
    assert_eq!(x.len(), g.batch * g.in_image(), "conv2d_backward: x has the wrong length");
    assert_eq!(w.len(), g.weight_len(), "conv2d_backward: w has the wrong length");
    conv2d_backward_impl(g, gy, gx.map(|gx| (w, gx)), gw.map(|gw| (x, gw)));
}

/// Gradient of a convolution with respect to its input (`gx`, overwritten).
pub fn conv2d_backward_data<T: Float>(g: &Conv2dGeometry, gy: &[T], w: &[T], gx: &mut [T]) {
    assert_eq!(w.len(), g.weight_len(), "conv2d_backward_data: w has the wrong length");
    conv2d_backward_impl(g, gy, Some((w, gx)), None);
}

/// Gradient of a convolution with respect to its weight (`gw`, overwritten).
pub fn conv2d_backward_weight<T: Float>(g: &Conv2dGeometry, x: &[T], gy: &[T], gw: &mut [T]) {
    assert_eq!(x.len(), g.batch * g.in_image(), "conv2d_backward_weight: x has the wrong length");
    conv2d_backward_impl(g, gy, None, Some((x, gw)));
}

/// `data`: the weight and the input-gradient buffer; `weight`: the input and the weight-gradient
/// buffer. The output gradient is gathered into channel-major order once per chunk for both.
fn conv2d_backward_impl<T: Float>(
    g: &Conv2dGeometry,
    gy: &[T],
    mut data: Option<(&[T], &mut [T])>,
    mut weight: Option<(&[T], &mut [T])>,
) {
    g.check();
    assert_eq!(gy.len(), g.batch * g.out_image(), "conv2d_backward: gy has the wrong length");
    assert!(
        data.as_ref().is_none_or(|(_, gx)| gx.len() == g.batch * g.in_image()),
        "conv2d_backward: gx has the wrong length"
    );
    assert!(
        weight.as_ref().is_none_or(|(_, gw)| gw.len() == g.weight_len()),
        "conv2d_backward: gw has the wrong length"
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
    let col_len = g.col_rows() * cn * p;
    let mut ws = Workspace::<T>::take(col_len + g.out_channels * cn * p);
    let (col, gybuf) = ws.buf.split_at_mut(col_len);
    for n0 in (0..g.batch).step_by(cn) {
        let images = cn.min(g.batch - n0);
        let ld = images * p;
        gather_nchw(&gy[n0 * g.out_image()..], images, g.out_channels, p, gybuf);
        if let Some((x, gw)) = weight.as_mut() {
            im2col(g, &x[n0 * g.in_image()..], images, col);
            let beta = if n0 == 0 { T::ZERO } else { T::ONE };
            gemm_backward_weight(g, gybuf, col, ld, beta, gw);
        }
        if let Some((w, gx)) = data.as_mut() {
            gemm_backward_data(g, w, gybuf, ld, col);
            col2im(g, col, images, &mut gx[n0 * g.in_image()..]);
        }
    }
}

// ---------------------------------------------------------------------- transposed convolution

/// Transposed convolution `y = conv_transposeᵀ(x, w) (+ bias)`, where `g` is the geometry of the
/// underlying convolution ([`Conv2dGeometry::transposed`]): `x` has that convolution's output
/// shape `[N, g.out_channels, g.out_h, g.out_w]`, `w` its weight shape (PyTorch's transposed
/// layout `[C_in, C_out/groups, kH, kW]`), and `y` (overwritten) its input shape.
pub fn conv_transpose2d_forward<T: Float>(g: &Conv2dGeometry, x: &[T], w: &[T], bias: Option<&[T]>, y: &mut [T]) {
    g.check();
    assert_eq!(x.len(), g.batch * g.out_image(), "conv_transpose2d_forward: x has the wrong length");
    assert_eq!(w.len(), g.weight_len(), "conv_transpose2d_forward: w has the wrong length");
    assert_eq!(y.len(), g.batch * g.in_image(), "conv_transpose2d_forward: y has the wrong length");
    assert!(bias.is_none_or(|b| b.len() == g.in_channels), "conv_transpose2d_forward: bias has the wrong length");
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
        let col_len = g.col_rows() * cn * p;
        let mut ws = Workspace::<T>::take(col_len + g.out_channels * cn * p);
        let (col, xbuf) = ws.buf.split_at_mut(col_len);
        for n0 in (0..g.batch).step_by(cn) {
            let images = cn.min(g.batch - n0);
            gather_nchw(&x[n0 * g.out_image()..], images, g.out_channels, p, xbuf);
            gemm_backward_data(g, w, xbuf, images * p, col);
            col2im(g, col, images, &mut y[n0 * g.in_image()..]);
        }
    }
    if let Some(b) = bias {
        add_channel_bias(y, g.in_channels, g.in_h * g.in_w, b);
    }
}

/// Backward of [`conv_transpose2d_forward`]: `gx` (shape of `x`) and `gw` (shape of `w`) of
/// `sum(y · gy)`, each computed only when its buffer is given (and overwritten). The bias
/// gradient is [`channel_sum`] of `gy` over `g.in_channels` channels.
pub fn conv_transpose2d_backward<T: Float>(
    g: &Conv2dGeometry,
    x: &[T],
    w: &[T],
    gy: &[T],
    mut gx: Option<&mut [T]>,
    mut gw: Option<&mut [T]>,
) {
    g.check();
    assert_eq!(x.len(), g.batch * g.out_image(), "conv_transpose2d_backward: x has the wrong length");
    assert_eq!(w.len(), g.weight_len(), "conv_transpose2d_backward: w has the wrong length");
    assert_eq!(gy.len(), g.batch * g.in_image(), "conv_transpose2d_backward: gy has the wrong length");
    assert!(gx.as_ref().is_none_or(|b| b.len() == x.len()), "conv_transpose2d_backward: gx has the wrong length");
    assert!(gw.as_ref().is_none_or(|b| b.len() == w.len()), "conv_transpose2d_backward: gw has the wrong length");
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
                gemm_backward_weight(g, &x[n * g.out_image()..][..g.out_image()], gyn, p, beta, gw);
            }
        }
        return;
    }
    // gx is the convolution of gy with w; gw pairs x (as the convolution's output gradient) with
    // the unfolded gy. Both need im2col(gy), done once per chunk.
    let cn = g.chunk_images();
    let col_len = g.col_rows() * cn * p;
    let mut ws = Workspace::<T>::take(col_len + g.out_channels * cn * p);
    let (col, buf) = ws.buf.split_at_mut(col_len);
    for n0 in (0..g.batch).step_by(cn) {
        let images = cn.min(g.batch - n0);
        let ld = images * p;
        im2col(g, &gy[n0 * g.in_image()..], images, col);
        if let Some(gw) = gw.as_deref_mut() {
            gather_nchw(&x[n0 * g.out_image()..], images, g.out_channels, p, buf);
            let beta = if n0 == 0 { T::ZERO } else { T::ONE };
            gemm_backward_weight(g, buf, col, ld, beta, gw);
        }
        if let Some(gx) = gx.as_deref_mut() {
            gemm_forward(g, w, col, ld, buf);
            scatter_nchw(buf, images, g.out_channels, p, None, &mut gx[n0 * g.out_image()..]);
        }
    }
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
                                    let ih = (oh * g.stride[0] + kh * g.dilation[0]) as isize - g.padding[0] as isize;
                                    let iw = (ow * g.stride[1] + kw * g.dilation[1]) as isize - g.padding[1] as isize;
                                    if ih < 0 || iw < 0 || ih >= g.in_h as isize || iw >= g.in_w as isize {
                                        continue;
                                    }
                                    let xv = x[((n * g.in_channels + c) * g.in_h + ih as usize) * g.in_w + iw as usize];
                                    let wv = w[((oc * cg + ci) * g.kernel[0] + kh) * g.kernel[1] + kw];
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
            let g = Conv2dGeometry::conv2d(3, 4, hw, 6, [k, k], [s, s], [p, p], [d, d], groups).unwrap();
            out.push(g);
        }
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
        let g = Conv2dGeometry::conv2d(300, 16, [18, 18], 2, [4, 4], [2, 2], [1, 1], [1, 1], 1).unwrap();
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
            conv2d_backward(&one, xs, &w, &gy[n * g.out_image()..][..g.out_image()], None, Some(&mut part));
            want.iter_mut().zip(&part).for_each(|(a, b)| *a += b);
        }
        for (a, b) in gw.iter().zip(&want) {
            assert!((a - b).abs() < 1e-8 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn transposed_geometry_with_output_padding() {
        // x [2, 4, 3, 3], w [4, 3, 3, 3], stride 2, pad 1, output_padding 1 -> y [2, 3, 6, 6].
        let g = Conv2dGeometry::transposed(2, 4, [3, 3], 3, [3, 3], [2, 2], [1, 1], [1, 1], [1, 1], 1).unwrap();
        assert_eq!((g.in_channels, g.in_h, g.in_w, g.out_channels, g.out_h, g.out_w), (3, 6, 6, 4, 3, 3));
        assert!(Conv2dGeometry::transposed(2, 4, [3, 3], 3, [3, 3], [2, 2], [1, 1], [2, 2], [1, 1], 1).is_none());
    }
}
