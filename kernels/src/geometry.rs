//! The shapes the kernels work on, shared by the CPU kernels (`cpu`) and the CUDA launchers
//! (`cuda`): convolution geometry, pooling windows, lanes along an axis, attention and batch-norm
//! channel sizes, maxout groups. Plain data with their size arithmetic; no kernel code.

/// Geometry of a lane map: `[outer, n, inner]` with the lanes along the middle axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lanes {
    /// Product of the dimensions before the lane axis.
    pub outer: usize,
    /// Length of each lane (the size of the lane axis).
    pub n: usize,
    /// Product of the dimensions after the lane axis (1 for the last axis).
    pub inner: usize,
}

impl Lanes {
    /// The lanes along axis `dim` of a row-major tensor of `shape` (`dim < shape.len()`).
    pub fn along(shape: &[usize], dim: usize) -> Lanes {
        Lanes {
            outer: shape[..dim].iter().product(),
            n: shape[dim],
            inner: shape[dim + 1..].iter().product(),
        }
    }

    /// Elements of the whole buffer, `outer * n * inner`.
    pub fn numel(&self) -> usize {
        self.outer * self.n * self.inner
    }

    /// Number of lanes, `outer * inner`.
    pub fn count(&self) -> usize {
        self.outer * self.inner
    }
}

/// Window geometry of a 2-D pooling: kernel size, stride and zero padding per axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub sh: usize,
    /// Horizontal stride.
    pub sw: usize,
    /// Padding rows above and below.
    pub ph: usize,
    /// Padding columns left and right.
    pub pw: usize,
}

impl Pool2d {
    /// Output height and width for an `h × w` input (floor mode: windows never leave the
    /// padded input). `None` when the padded input is smaller than the kernel or a stride is 0.
    pub fn out_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        if self.sh == 0 || self.sw == 0 || self.kh == 0 || self.kw == 0 {
            return None;
        }
        let (hp, wp) = (h + 2 * self.ph, w + 2 * self.pw);
        if hp < self.kh || wp < self.kw {
            return None;
        }
        Some(((hp - self.kh) / self.sh + 1, (wp - self.kw) / self.sw + 1))
    }

    /// The in-bounds rows and columns of the window of output `(oy, ox)`.
    #[inline]
    pub(crate) fn window(
        &self,
        oy: usize,
        ox: usize,
        h: usize,
        w: usize,
    ) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let y0 = oy * self.sh;
        let x0 = ox * self.sw;
        let rows = y0.saturating_sub(self.ph)..(y0 + self.kh).saturating_sub(self.ph).min(h);
        let cols = x0.saturating_sub(self.pw)..(x0 + self.kw).saturating_sub(self.pw).min(w);
        (rows, cols)
    }
}

/// Shapes and hyper-parameters of one 2-D convolution `x[N, C, H, W] * w[OC, C/groups, kH, kW]
/// -> y[N, OC, OH, OW]`.
///
/// `out_h`/`out_w` are normally [`Conv2dGeometry::conv2d`]'s natural output size; the adjoint of a
/// transposed convolution with `output_padding` may use fewer rows (the input's last rows then only
/// receive zeros in backward-data), which every function here supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Images in the batch, `N`.
    pub batch: usize,
    /// Channels of `x`, `C` (all groups together).
    pub in_channels: usize,
    /// Height of `x`, `H`.
    pub in_h: usize,
    /// Width of `x`, `W`.
    pub in_w: usize,
    /// Channels of `y`, `OC` (all groups together).
    pub out_channels: usize,
    /// Height of `y`, `OH`.
    pub out_h: usize,
    /// Width of `y`, `OW`.
    pub out_w: usize,
    /// Kernel size `[kH, kW]`.
    pub kernel: [usize; 2],
    /// Step between windows `[height, width]`.
    pub stride: [usize; 2],
    /// Zeros added on each side of `x` `[height, width]`.
    pub padding: [usize; 2],
    /// Spacing between kernel taps `[height, width]` (1: adjacent).
    pub dilation: [usize; 2],
    /// Channel groups: each group of `OC / groups` outputs sees only its `C / groups` inputs.
    pub groups: usize,
}

/// Natural output length of a convolution along one axis, or `None` when the dilated kernel does
/// not fit in the padded input (or a parameter is zero).
pub fn conv_out_len(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Option<usize> {
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
            out[a] = conv_transpose_out_len(
                in_hw[a],
                kernel[a],
                stride[a],
                padding[a],
                output_padding[a],
                dilation[a],
            )?;
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

    pub(crate) fn check(&self) {
        assert!(self.groups > 0, "conv: groups must be positive");
        assert!(
            self.in_channels.is_multiple_of(self.groups)
                && self.out_channels.is_multiple_of(self.groups),
            "conv: channels not divisible by groups"
        );
        for a in 0..2 {
            assert!(
                self.kernel[a] > 0 && self.stride[a] > 0 && self.dilation[a] > 0,
                "conv: zero parameter"
            );
        }
        let natural_h = conv_out_len(
            self.in_h,
            self.kernel[0],
            self.stride[0],
            self.padding[0],
            self.dilation[0],
        );
        let natural_w = conv_out_len(
            self.in_w,
            self.kernel[1],
            self.stride[1],
            self.padding[1],
            self.dilation[1],
        );
        assert!(
            natural_h.is_some_and(|n| n >= self.out_h),
            "conv: output height too large"
        );
        assert!(
            natural_w.is_some_and(|n| n >= self.out_w),
            "conv: output width too large"
        );
    }
}

/// Sizes of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionDims {
    /// Independent attention problems (batch items, or batch × heads).
    pub batch: usize,
    /// Queries per item.
    pub nq: usize,
    /// Keys (and values) per item.
    pub nk: usize,
    /// Query/key width.
    pub d: usize,
    /// Value width.
    pub dv: usize,
}

impl AttentionDims {
    /// Elements of q `[batch, nq, d]`.
    pub fn q_len(&self) -> usize {
        self.batch * self.nq * self.d
    }
    /// Elements of k `[batch, nk, d]`.
    pub fn k_len(&self) -> usize {
        self.batch * self.nk * self.d
    }
    /// Elements of v `[batch, nk, dv]`.
    pub fn v_len(&self) -> usize {
        self.batch * self.nk * self.dv
    }
    /// Elements of the output `[batch, nq, dv]`.
    pub fn out_len(&self) -> usize {
        self.batch * self.nq * self.dv
    }
    /// Query rows over the batch: elements of the log-sum-exp `[batch, nq]`.
    pub fn rows(&self) -> usize {
        self.batch * self.nq
    }
    /// Shape of q, `[batch, nq, d]`.
    pub fn q_shape(&self) -> [usize; 3] {
        [self.batch, self.nq, self.d]
    }
    /// Shape of k, `[batch, nk, d]`.
    pub fn k_shape(&self) -> [usize; 3] {
        [self.batch, self.nk, self.d]
    }
    /// Shape of v, `[batch, nk, dv]`.
    pub fn v_shape(&self) -> [usize; 3] {
        [self.batch, self.nk, self.dv]
    }
    /// Shape of the output, `[batch, nq, dv]`.
    pub fn out_shape(&self) -> [usize; 3] {
        [self.batch, self.nq, self.dv]
    }

    pub(crate) fn check(&self, what: &str, buf_len: usize, need: usize) {
        assert_eq!(
            buf_len, need,
            "attention: {what} holds {buf_len} elements, {self:?} needs {need}"
        );
    }
}

/// Which input gradients a backward pass computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionNeeds {
    /// Compute the gradient of the queries.
    pub q: bool,
    /// Compute the gradient of the keys.
    pub k: bool,
    /// Compute the gradient of the values.
    pub v: bool,
}

/// Geometry of a batch-norm buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channels {
    /// Batch size, `N`.
    pub outer: usize,
    /// Channels, `C`.
    pub channels: usize,
    /// Values per channel per batch item (`H * W` for an image, 1 for `[N, C]`).
    pub inner: usize,
}

impl Channels {
    /// Channels along dimension 1 of a row-major tensor of `shape` (rank >= 2).
    pub fn of_shape(shape: &[usize]) -> Channels {
        Channels {
            outer: shape[0],
            channels: shape[1],
            inner: shape[2..].iter().product(),
        }
    }
    /// Number of values per channel.
    pub fn per_channel(&self) -> usize {
        self.outer * self.inner
    }
    /// Elements of the whole buffer.
    pub fn numel(&self) -> usize {
        self.outer * self.channels * self.inner
    }
}

/// Sizes of a maxout: `x` is `[outer, groups * pieces, inner]`, the output `[outer, groups, inner]`.
#[derive(Clone, Copy, Debug)]
pub struct MaxoutDims {
    /// Product of the dimensions before the maxout axis.
    pub outer: usize,
    /// Outputs along the maxout axis.
    pub groups: usize,
    /// Consecutive inputs each output takes the maximum of.
    pub pieces: usize,
    /// Product of the dimensions after the maxout axis.
    pub inner: usize,
}

impl MaxoutDims {
    pub(crate) fn in_row(&self) -> usize {
        self.groups * self.pieces * self.inner
    }
    pub(crate) fn out_row(&self) -> usize {
        self.groups * self.inner
    }
}
