//! Launchers for `cuda/conv.cu`: convolution forward, its input and weight gradients, and
//! transposed convolution (whose forward is the input-gradient kernel), on the same
//! [`Conv2dGeometry`] as the CPU kernels. f32 runs the implicit-GEMM kernels, f64 the direct
//! ones (one thread per output element).

use super::elementwise::fill;
use super::reduce::{reduce, ReduceOp};
use super::{check_len, launch, scratch, u32_size};
use crate::cuda::{CudaDevice, CudaError, CudaFloat, KernelModule};
use crate::geometry::Lanes;
use crate::geometry::{conv_out_len, Conv2dGeometry};
use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig};

const TILE: usize = 64;
const BK: usize = 16;

/// Division by a constant as multiply-high and shift, exact for numerators below 2^31 (see
/// conv.cu): `q = (umulhi(n, mul) + n) >> shift`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastDiv {
    /// The divisor.
    pub d: u32,
    /// The multiplier `mul` of the formula.
    pub mul: u32,
    /// The final right shift, `ceil(log2 d)`.
    pub shift: u32,
}

impl FastDiv {
    /// The magic numbers for divisor `d` (1 ..= 2^31).
    pub fn new(d: u32) -> FastDiv {
        let d = d.max(1);
        let shift = 32 - (d - 1).leading_zeros(); // ceil(log2 d)
        let mul = (((1u64 << 32) * ((1u64 << shift) - u64::from(d))) / u64::from(d) + 1) as u32;
        FastDiv { d, mul, shift }
    }

    /// The device's formula, for tests.
    pub fn apply(self, n: u32) -> u32 {
        let hi = ((u64::from(n) * u64::from(self.mul)) >> 32) as u32;
        (hi + n) >> self.shift
    }
}

/// `ConvArgs` of conv.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct ConvArgs {
    batch: i32,
    c: i32,
    h: i32,
    w: i32,
    oc: i32,
    oh: i32,
    ow: i32,
    kh: i32,
    kw: i32,
    sh: i32,
    sw: i32,
    ph: i32,
    pw: i32,
    dh: i32,
    dw: i32,
    groups: i32,
    splits: i32,
    k_chunk: i32,
    div_khw: FastDiv,
    div_kw: FastDiv,
    div_ohw: FastDiv,
    div_ow: FastDiv,
    div_hw: FastDiv,
    div_w: FastDiv,
    div_sh: FastDiv,
    div_sw: FastDiv,
}
// SAFETY: repr(C) 32-bit integers laid out as the C struct.
unsafe impl DeviceRepr for ConvArgs {}

/// Validates `g` (what the CPU kernels assert) and the sizes the kernels can index.
fn conv_args(op: &'static str, g: &Conv2dGeometry) -> Result<ConvArgs, CudaError> {
    let bad = |reason: String| Err(CudaError::invalid(op, reason));
    if g.groups == 0
        || !g.in_channels.is_multiple_of(g.groups)
        || !g.out_channels.is_multiple_of(g.groups)
    {
        return bad(format!(
            "{} and {} channels are not divisible into {} groups",
            g.in_channels, g.out_channels, g.groups
        ));
    }
    for a in 0..2 {
        let natural = conv_out_len(
            [g.in_h, g.in_w][a],
            g.kernel[a],
            g.stride[a],
            g.padding[a],
            g.dilation[a],
        );
        match natural {
            Some(n) if [g.out_h, g.out_w][a] <= n && [g.out_h, g.out_w][a] > 0 => {}
            _ => return bad(format!("inconsistent geometry {g:?}")),
        }
    }
    let biggest = [
        g.batch * g.in_image(),
        g.batch * g.out_image(),
        g.weight_len(),
        g.col_rows() * g.out_channels,
    ];
    for n in biggest {
        u32_size(op, n)?;
    }
    let i = |v: usize| v as i32;
    let div = |v: usize| FastDiv::new(v as u32);
    Ok(ConvArgs {
        batch: i(g.batch),
        c: i(g.in_channels),
        h: i(g.in_h),
        w: i(g.in_w),
        oc: i(g.out_channels),
        oh: i(g.out_h),
        ow: i(g.out_w),
        kh: i(g.kernel[0]),
        kw: i(g.kernel[1]),
        sh: i(g.stride[0]),
        sw: i(g.stride[1]),
        ph: i(g.padding[0]),
        pw: i(g.padding[1]),
        dh: i(g.dilation[0]),
        dw: i(g.dilation[1]),
        groups: i(g.groups),
        splits: 1,
        k_chunk: i32::MAX,
        div_khw: div(g.kernel[0] * g.kernel[1]),
        div_kw: div(g.kernel[1]),
        div_ohw: div(g.out_h * g.out_w),
        div_ow: div(g.out_w),
        div_hw: div(g.in_h * g.in_w),
        div_w: div(g.in_w),
        div_sh: div(g.stride[0]),
        div_sw: div(g.stride[1]),
    })
}

/// Whether `T` runs the direct f64 kernels (one thread per output element, grid-stride).
fn direct<T: CudaFloat>() -> bool {
    T::SUFFIX == "f64"
}

fn grid(m: usize, n: usize, z: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (n.div_ceil(TILE) as u32, m.div_ceil(TILE) as u32, z as u32),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// `y[N, OC, OH, OW] = x ⋆ w (+ bias)`; `y` is overwritten.
pub fn conv2d_forward<T: CudaFloat>(
    dev: &CudaDevice,
    g: &Conv2dGeometry,
    x: &CudaSlice<T>,
    w: &CudaSlice<T>,
    bias: Option<&CudaSlice<T>>,
    y: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda conv2d";
    let args = conv_args(OP, g)?;
    check_len(OP, "x", x, g.batch * g.in_image())?;
    check_len(OP, "w", w, g.weight_len())?;
    check_len(OP, "y", y, g.batch * g.out_image())?;
    if let Some(b) = bias {
        check_len(OP, "bias", b, g.out_channels)?;
    }
    if g.batch == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Conv, &format!("conv2d_fwd_{}", T::SUFFIX))?;
    let cfg = if direct::<T>() {
        dev.grid_1d(g.batch * g.out_image(), 256)
    } else {
        grid(g.out_channels / g.groups, g.batch * g.out_plane(), g.groups)
    };
    let null = 0u64;
    match bias {
        Some(b) => launch!(dev, f, cfg, OP; &args, x, w, b, y),
        None => launch!(dev, f, cfg, OP; &args, x, w, &null, y),
    }
}

/// `gx` (shape of the input, overwritten) from `gy` and `w`, plus `bias` per input channel when
/// given (that is transposed convolution's forward).
fn backward_data_impl<T: CudaFloat>(
    dev: &CudaDevice,
    op: &'static str,
    g: &Conv2dGeometry,
    gy: &CudaSlice<T>,
    w: &CudaSlice<T>,
    bias: Option<&CudaSlice<T>>,
    gx: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    let args = conv_args(op, g)?;
    check_len(op, "gy", gy, g.batch * g.out_image())?;
    check_len(op, "w", w, g.weight_len())?;
    check_len(op, "gx", gx, g.batch * g.in_image())?;
    if let Some(b) = bias {
        check_len(op, "bias", b, g.in_channels)?;
    }
    if g.batch == 0 {
        return Ok(());
    }
    let f = dev.function(
        KernelModule::Conv,
        &format!("conv2d_bwd_data_{}", T::SUFFIX),
    )?;
    let cfg = if direct::<T>() {
        dev.grid_1d(g.batch * g.in_image(), 256)
    } else {
        grid(
            g.in_channels / g.groups,
            g.batch * g.in_h * g.in_w,
            g.groups,
        )
    };
    let null = 0u64;
    match bias {
        Some(b) => launch!(dev, f, cfg, op; &args, gy, w, b, gx),
        None => launch!(dev, f, cfg, op; &args, gy, w, &null, gx),
    }
}

/// Gradient of a convolution with respect to its input (`gx`, overwritten).
pub fn conv2d_backward_data<T: CudaFloat>(
    dev: &CudaDevice,
    g: &Conv2dGeometry,
    gy: &CudaSlice<T>,
    w: &CudaSlice<T>,
    gx: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    backward_data_impl(dev, "cuda conv2d backward-data", g, gy, w, None, gx)
}

/// Transposed convolution (`g` is the underlying convolution's geometry, as on the CPU): `x` has
/// that convolution's output shape, `w` its weight, `y` (overwritten) its input shape.
pub fn conv_transpose2d_forward<T: CudaFloat>(
    dev: &CudaDevice,
    g: &Conv2dGeometry,
    x: &CudaSlice<T>,
    w: &CudaSlice<T>,
    bias: Option<&CudaSlice<T>>,
    y: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    backward_data_impl(dev, "cuda conv_transpose2d", g, x, w, bias, y)
}

/// Backward of [`conv_transpose2d_forward`]: `gx` (shape of `x`: the underlying convolution's
/// forward of `gy`) and `gw` (its weight gradient with the roles of input and output swapped),
/// each computed when given and overwritten. The bias gradient is a channel sum of `gy`.
pub fn conv_transpose2d_backward<T: CudaFloat>(
    dev: &CudaDevice,
    g: &Conv2dGeometry,
    x: &CudaSlice<T>,
    w: &CudaSlice<T>,
    gy: &CudaSlice<T>,
    gx: Option<&mut CudaSlice<T>>,
    gw: Option<&mut CudaSlice<T>>,
) -> Result<(), CudaError> {
    if let Some(gx) = gx {
        conv2d_forward(dev, g, gy, w, None, gx)?;
    }
    if let Some(gw) = gw {
        conv2d_backward_weight(dev, g, gy, x, gw)?;
    }
    Ok(())
}

/// The launch of the f32 weight-gradient kernel: an `m × n` output per group in TILE tiles,
/// its `k` (batch × output plane) summed in `splits` chunks of `chunk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WeightPlan {
    m: usize,
    n: usize,
    splits: usize,
    chunk: usize,
}

/// The weight gradient's plan on a device of `sm_count` SMs, or `None` for an empty batch
/// (nothing to sum: the gradient is zero, and no launch may divide an empty `k`).
fn weight_plan(sm_count: u32, g: &Conv2dGeometry) -> Option<WeightPlan> {
    let (m, n) = (g.out_channels / g.groups, g.col_rows() / g.groups);
    let k = g.batch * g.out_plane();
    if k == 0 {
        return None;
    }
    let tiles = m.div_ceil(TILE) * n.div_ceil(TILE) * g.groups;
    let (splits, chunk) = weight_splits(sm_count, tiles, k);
    Some(WeightPlan {
        m,
        n,
        splits,
        chunk,
    })
}

/// How `k` (at least 1) is split for `tiles` output tiles on `sm_count` SMs: enough blocks for
/// about two waves, at most one split per 8 K-steps, each chunk a whole number of K-steps.
/// Returns (splits, chunk): every split non-empty, together covering `k`.
fn weight_splits(sm_count: u32, tiles: usize, k: usize) -> (usize, usize) {
    let wanted = (2 * sm_count as usize).div_ceil(tiles.max(1));
    let most = k.div_ceil(8 * BK).max(1);
    let splits = wanted.clamp(1, most);
    let chunk = k.div_ceil(splits).div_ceil(BK) * BK;
    (k.div_ceil(chunk).max(1), chunk)
}

/// Gradient of a convolution with respect to its weight (`gw`, overwritten). Deterministic: the
/// split-K partials are summed in a fixed order.
pub fn conv2d_backward_weight<T: CudaFloat>(
    dev: &CudaDevice,
    g: &Conv2dGeometry,
    x: &CudaSlice<T>,
    gy: &CudaSlice<T>,
    gw: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda conv2d backward-weight";
    let mut args = conv_args(OP, g)?;
    check_len(OP, "x", x, g.batch * g.in_image())?;
    check_len(OP, "gy", gy, g.batch * g.out_image())?;
    check_len(OP, "gw", gw, g.weight_len())?;
    let Some(plan) = weight_plan(dev.sm_count(), g) else {
        // An empty batch: the gradient is zero (as on the CPU).
        return fill(dev, gw, g.weight_len(), T::ZERO);
    };
    if direct::<T>() {
        // One thread per weight element, each summing over the whole batch and image.
        let f = dev.function(KernelModule::Conv, "conv2d_bwd_weight_f64")?;
        let cfg = dev.grid_1d(g.weight_len(), 256);
        return launch!(dev, f, cfg, OP; &args, x, gy, gw);
    }
    let WeightPlan {
        m,
        n,
        splits,
        chunk,
    } = plan;
    args.splits = splits as i32;
    args.k_chunk = chunk as i32;
    let f = dev.function(KernelModule::Conv, "conv2d_bwd_weight_f32")?;
    let cfg = grid(m, n, g.groups * splits);
    if splits == 1 {
        return launch!(dev, f, cfg, OP; &args, x, gy, gw);
    }
    let len = g.weight_len();
    let mut partial = scratch::<T>(dev, splits * len)?;
    launch!(dev, f, cfg, OP; &args, x, gy, &mut *partial)?;
    let lanes = Lanes {
        outer: 1,
        n: splits,
        inner: len,
    };
    reduce(dev, ReduceOp::Sum, &partial, lanes, gw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_division_is_exact_below_2_pow_31() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for d in (1..=2000u32).chain([4095, 4096, 65_537, 1 << 20, (1 << 31) - 1, 1 << 31]) {
            let f = FastDiv::new(d);
            for n in (0..3000u32).chain([(1 << 31) - 1, (1 << 31) - 2, d.wrapping_mul(7)]) {
                let n = n & 0x7fff_ffff;
                assert_eq!(f.apply(n), n / d, "{n} / {d}");
            }
            for _ in 0..200 {
                let n = (next() as u32) & 0x7fff_ffff;
                assert_eq!(f.apply(n), n / d, "{n} / {d}");
            }
        }
    }

    #[test]
    fn weight_gradient_plan_skips_an_empty_batch_and_covers_k() {
        // An empty batch has no launch (before, splitting its k = 0 divided by zero).
        let conv = |batch| {
            Conv2dGeometry::conv2d(batch, 64, [16, 16], 128, [4, 4], [2, 2], [1, 1], [1, 1], 1)
                .unwrap()
        };
        assert_eq!(weight_plan(132, &conv(0)), None);
        // DCGAN's second D layer at batch 256 on an H100: 2 × 16 tiles, k = 256 · 8 · 8 split
        // for two waves.
        let plan = weight_plan(132, &conv(256)).unwrap();
        assert_eq!((plan.m, plan.n), (128, 64 * 16));
        assert_eq!((plan.splits, plan.chunk), (9, 1824));
        for sm_count in [1, 2, 108, 132] {
            for tiles in [0, 1, 3, 64, 1000] {
                for k in (1..300).chain([4095, 4096, 65_536, 1 << 20]) {
                    let (splits, chunk) = weight_splits(sm_count, tiles, k);
                    let case = format!("sm {sm_count}, tiles {tiles}, k {k}: {splits} x {chunk}");
                    assert!(splits >= 1 && chunk >= BK && chunk % BK == 0, "{case}");
                    assert!(splits * chunk >= k, "{case}: k not covered");
                    assert!((splits - 1) * chunk < k, "{case}: an empty split");
                    assert!(splits <= k.div_ceil(8 * BK), "{case}: too many splits");
                }
            }
        }
    }

    #[test]
    fn inconsistent_geometry_is_an_error() {
        let g = Conv2dGeometry::conv2d(2, 3, [8, 8], 4, [3, 3], [1, 1], [1, 1], [1, 1], 1).unwrap();
        assert!(conv_args("t", &g).is_ok());
        let mut bad = g;
        bad.groups = 2;
        assert!(conv_args("t", &bad).is_err());
        let mut bad = g;
        bad.out_h = 9;
        assert!(conv_args("t", &bad).is_err());
    }
}
