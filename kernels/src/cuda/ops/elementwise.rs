//! Launchers for `cuda/elementwise.cu`: strided unary maps, broadcasting binary ops, their
//! backward maps, select by mask, fill, and copies and conversions between views (f32, f64,
//! bf16, f16).

use super::{check_len, launch, u32_size};
use crate::cuda::{CudaDevice, CudaError, CudaFloat, CudaStore, KernelModule};
use cudarc::driver::{CudaSlice, DeviceRepr};

/// Dimensions the kernels take (`MAX_RANK` in elementwise.cu).
pub const MAX_RANK: usize = 8;

/// A strided view into a buffer: element `idx` lives at `offset + Σ idx[d] · strides[d]`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// Size of each dimension.
    pub shape: &'a [usize],
    /// Step in the buffer per unit of each dimension.
    pub strides: &'a [usize],
    /// Position in the buffer of the element at index `[0, 0, ...]`.
    pub offset: usize,
}

impl<'a> View<'a> {
    /// A row-major contiguous view of `shape` (strides computed into `strides`).
    pub fn contiguous(shape: &'a [usize], strides: &'a mut Vec<usize>) -> View<'a> {
        strides.clear();
        let mut s = 1;
        for &d in shape.iter().rev() {
            strides.push(s);
            s *= d;
        }
        strides.reverse();
        View {
            shape,
            strides,
            offset: 0,
        }
    }
}

/// `StridedArgs` of elementwise.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StridedArgs {
    /// Dimensions in use after merging (0 for a single element).
    pub rank: u32,
    /// Output size of each dimension in use.
    pub shape: [u32; MAX_RANK],
    /// Strides of the first operand per dimension (0 where it is broadcast).
    pub stride_a: [u32; MAX_RANK],
    /// Strides of the second operand (the second input, or a copy's destination).
    pub stride_b: [u32; MAX_RANK],
    /// Offset of the first operand in its buffer.
    pub offset_a: u32,
    /// Offset of the second operand in its buffer.
    pub offset_b: u32,
}
// SAFETY: plain repr(C) integers, laid out as the C struct.
unsafe impl DeviceRepr for StridedArgs {}

/// Strides of `view` broadcast to `out` (right-aligned; size-1 or missing dims get stride 0), or
/// why it cannot be.
fn broadcast_strides(
    op: &'static str,
    view: &View,
    out: &[usize],
) -> Result<Vec<usize>, CudaError> {
    if view.shape.len() != view.strides.len() || view.shape.len() > out.len() {
        return Err(CudaError::invalid(
            op,
            format!("shape {:?} does not broadcast to {out:?}", view.shape),
        ));
    }
    let lead = out.len() - view.shape.len();
    let mut strides = vec![0; out.len()];
    for (d, &n) in out.iter().enumerate().skip(lead) {
        let (m, s) = (view.shape[d - lead], view.strides[d - lead]);
        if m == n {
            strides[d] = if n == 1 { 0 } else { s };
        } else if m != 1 {
            return Err(CudaError::invalid(
                op,
                format!("shape {:?} does not broadcast to {out:?}", view.shape),
            ));
        }
    }
    Ok(strides)
}

/// Builds the kernels' argument block: drops size-1 dimensions and merges neighbours that are
/// contiguous for every operand, so most calls reach the kernel as rank 1. Also checks that the
/// furthest element of each input lies inside its buffer (`lens`).
pub fn strided_args(
    op: &'static str,
    out: &[usize],
    inputs: &[(View, usize)],
) -> Result<StridedArgs, CudaError> {
    let numel: usize = out.iter().product();
    u32_size(op, numel)?;
    let mut per_input = Vec::with_capacity(inputs.len());
    for (view, len) in inputs {
        let strides = broadcast_strides(op, view, out)?;
        if numel > 0 {
            let last = view.offset
                + out
                    .iter()
                    .zip(&strides)
                    .map(|(&n, &s)| (n - 1) * s)
                    .sum::<usize>();
            if last >= *len {
                return Err(CudaError::invalid(
                    op,
                    format!(
                        "a view of shape {:?} reaches element {last} of a buffer of {len}",
                        view.shape
                    ),
                ));
            }
            u32_size(op, last)?;
        }
        per_input.push(strides);
    }
    // Merge from the innermost dimension outwards.
    let mut dims: Vec<(usize, Vec<usize>)> = Vec::new(); // (size, strides per input), outer first
    for d in 0..out.len() {
        if out[d] == 1 {
            continue;
        }
        let strides: Vec<usize> = per_input.iter().map(|s| s[d]).collect();
        if let Some((size, prev)) = dims.last_mut() {
            if prev.iter().zip(&strides).all(|(&p, &s)| p == s * out[d]) {
                *size *= out[d];
                *prev = strides;
                continue;
            }
        }
        dims.push((out[d], strides));
    }
    if dims.len() > MAX_RANK {
        return Err(CudaError::invalid(
            op,
            format!(
                "{} non-mergeable dimensions, the kernels take {MAX_RANK}",
                dims.len()
            ),
        ));
    }
    let mut args = StridedArgs {
        rank: dims.len() as u32,
        ..Default::default()
    };
    for (d, (size, strides)) in dims.iter().enumerate() {
        args.shape[d] = *size as u32;
        args.stride_a[d] = strides.first().copied().unwrap_or(0) as u32;
        args.stride_b[d] = strides.get(1).copied().unwrap_or(0) as u32;
    }
    args.offset_a = inputs.first().map_or(0, |(v, _)| v.offset) as u32;
    args.offset_b = inputs.get(1).map_or(0, |(v, _)| v.offset) as u32;
    Ok(args)
}

/// Elementwise unary ops (forward formulas of engine/src/ops/unary.rs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `e^x`.
    Exp,
    /// `ln x`.
    Log,
    /// `√x`.
    Sqrt,
    /// `x²`.
    Square,
    /// `|x|`.
    Abs,
    /// `max(x, 0)`.
    Relu,
    /// `x` for positive x, `slope * x` otherwise.
    LeakyRelu(f64),
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh x`.
    Tanh,
    /// `ln(1 + e^x)`.
    Softplus,
    /// `x` for positive x, `alpha * (e^x - 1)` otherwise.
    Elu(f64),
    /// `x^e` for a constant exponent.
    Powf(f64),
    /// `x` limited to `[min, max]`.
    Clamp(f64, f64),
    /// `x * scale + shift` (add/sub/mul/div/rsub by a scalar).
    Affine(f64, f64),
    /// `1 / x`.
    Recip,
    /// 1 where `x > c`, else 0.
    GtScalar(f64),
    /// `x` unchanged (a strided gather into a contiguous output).
    Copy,
}

impl UnaryOp {
    /// Kernel name stem and the two scalar parameters.
    pub fn name_and_params(self) -> (&'static str, f64, f64) {
        use UnaryOp::*;
        match self {
            Neg => ("neg", 0.0, 0.0),
            Exp => ("exp", 0.0, 0.0),
            Log => ("log", 0.0, 0.0),
            Sqrt => ("sqrt", 0.0, 0.0),
            Square => ("square", 0.0, 0.0),
            Abs => ("abs", 0.0, 0.0),
            Relu => ("relu", 0.0, 0.0),
            LeakyRelu(s) => ("leaky_relu", s, 0.0),
            Sigmoid => ("sigmoid", 0.0, 0.0),
            Tanh => ("tanh", 0.0, 0.0),
            Softplus => ("softplus", 0.0, 0.0),
            Elu(a) => ("elu", a, 0.0),
            Powf(e) => ("powf", e, 0.0),
            Clamp(lo, hi) => ("clamp", lo, hi),
            Affine(k, b) => ("affine", k, b),
            Recip => ("recip", 0.0, 0.0),
            GtScalar(c) => ("gt_scalar", c, 0.0),
            Copy => ("copy", 0.0, 0.0),
        }
    }
}

/// Broadcasting binary ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// `a^b`.
    Pow,
    /// The larger of `a` and `b`.
    Maximum,
    /// The smaller of `a` and `b`.
    Minimum,
    /// Comparisons: 1 where the relation holds, else 0. This one is `a > b`.
    Gt,
    /// `a >= b` as 0/1.
    Ge,
    /// `a < b` as 0/1.
    Lt,
    /// `a <= b` as 0/1.
    Le,
    /// `a == b` as 0/1.
    Eq,
}

impl BinaryOp {
    /// Kernel name stem (`"add"`, `"maximum"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Gt => "gt",
            BinaryOp::Ge => "ge",
            BinaryOp::Lt => "lt",
            BinaryOp::Le => "le",
            BinaryOp::Eq => "eq",
        }
    }
}

/// `y = op(x)` over `x`'s strided view; `y` is contiguous with `x.shape`'s element count.
pub fn unary<T: CudaFloat>(
    dev: &CudaDevice,
    op: UnaryOp,
    x: &CudaSlice<T>,
    view: View,
    y: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda unary";
    let numel: usize = view.shape.iter().product();
    let args = strided_args(OP, view.shape, &[(view, x.len())])?;
    check_len(OP, "output", y, numel)?;
    if numel == 0 {
        return Ok(());
    }
    let (stem, p0, p1) = op.name_and_params();
    let f = dev.function(
        KernelModule::Elementwise,
        &format!("unary_{stem}_{}", T::SUFFIX),
    )?;
    let (n, p0, p1) = (numel as u32, T::from_f64(p0), T::from_f64(p1));
    launch!(dev, f, dev.grid_1d(numel, 256), OP; &n, &args, x, y, &p0, &p1)
}

/// `dx = op'(x, y) · g` for contiguous `x` (the forward's input), `y` (its output) and `g`.
pub fn unary_backward<T: CudaFloat>(
    dev: &CudaDevice,
    op: UnaryOp,
    x: &CudaSlice<T>,
    y: &CudaSlice<T>,
    g: &CudaSlice<T>,
    dx: &mut CudaSlice<T>,
    numel: usize,
) -> Result<(), CudaError> {
    const OP: &str = "cuda unary backward";
    let n = u32_size(OP, numel)?;
    for (what, b) in [("x", x), ("y", y), ("g", g)] {
        check_len(OP, what, b, numel)?;
    }
    check_len(OP, "dx", dx, numel)?;
    if numel == 0 {
        return Ok(());
    }
    let (stem, p0, p1) = op.name_and_params();
    let f = dev.function(
        KernelModule::Elementwise,
        &format!("unary_bwd_{stem}_{}", T::SUFFIX),
    )?;
    let (p0, p1) = (T::from_f64(p0), T::from_f64(p1));
    launch!(dev, f, dev.grid_1d(numel, 256), OP; &n, x, y, g, dx, &p0, &p1)
}

/// `y = op(a, b)` with NumPy broadcasting of both views to `out_shape`; `y` is contiguous.
#[allow(clippy::too_many_arguments)]
pub fn binary<T: CudaFloat>(
    dev: &CudaDevice,
    op: BinaryOp,
    a: &CudaSlice<T>,
    a_view: View,
    b: &CudaSlice<T>,
    b_view: View,
    out_shape: &[usize],
    y: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda binary";
    let numel: usize = out_shape.iter().product();
    let args = strided_args(OP, out_shape, &[(a_view, a.len()), (b_view, b.len())])?;
    check_len(OP, "output", y, numel)?;
    if numel == 0 {
        return Ok(());
    }
    let f = dev.function(
        KernelModule::Elementwise,
        &format!("binary_{}_{}", op.name(), T::SUFFIX),
    )?;
    let n = numel as u32;
    launch!(dev, f, dev.grid_1d(numel, 256), OP; &n, &args, a, b, y)
}

/// `y[i] = mask[i] != 0 ? a : b` (a NaN mask value selects `a`), with `a` and `b` broadcast to
/// `out_shape` through their views and `mask` dense in `out_shape`; `y` is contiguous.
#[allow(clippy::too_many_arguments)]
pub fn select<T: CudaFloat>(
    dev: &CudaDevice,
    mask: &CudaSlice<T>,
    a: &CudaSlice<T>,
    a_view: View,
    b: &CudaSlice<T>,
    b_view: View,
    out_shape: &[usize],
    y: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda select";
    let numel: usize = out_shape.iter().product();
    let args = strided_args(OP, out_shape, &[(a_view, a.len()), (b_view, b.len())])?;
    check_len(OP, "mask", mask, numel)?;
    check_len(OP, "output", y, numel)?;
    if numel == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Elementwise, &format!("select_{}", T::SUFFIX))?;
    let n = numel as u32;
    launch!(dev, f, dev.grid_1d(numel, 256), OP; &n, &args, mask, a, b, y)
}

/// Copies the view `src` of `x` into the view `dst` of `y` (same shape): contiguous copies of
/// strided views, writes into a window of a larger tensor, in-place assignment. `S` and `D` may
/// differ (any pair of f32, f64, bf16, f16), which converts each value rounding once to nearest
/// even. The destination view must not overlap itself (no stride-0 dimension of size > 1).
pub fn strided_copy<S: CudaStore, D: CudaStore>(
    dev: &CudaDevice,
    x: &CudaSlice<S>,
    src: View,
    y: &mut CudaSlice<D>,
    dst: View,
) -> Result<(), CudaError> {
    const OP: &str = "cuda strided copy";
    if src.shape != dst.shape {
        return Err(CudaError::invalid(
            OP,
            format!(
                "source {:?} and destination {:?} differ",
                src.shape, dst.shape
            ),
        ));
    }
    if dst
        .shape
        .iter()
        .zip(dst.strides)
        .any(|(&n, &s)| n > 1 && s == 0)
    {
        return Err(CudaError::invalid(
            OP,
            "the destination view writes one element several times",
        ));
    }
    let numel: usize = src.shape.iter().product();
    let args = strided_args(OP, src.shape, &[(src, x.len()), (dst, y.len())])?;
    if numel == 0 {
        return Ok(());
    }
    let name = if S::SUFFIX == D::SUFFIX {
        format!("strided_copy_{}", S::SUFFIX)
    } else {
        format!("strided_cast_{}_{}", S::SUFFIX, D::SUFFIX)
    };
    let f = dev.function(KernelModule::Elementwise, &name)?;
    let n = numel as u32;
    launch!(dev, f, dev.grid_1d(numel, 256), OP; &n, &args, x, y)
}

/// Sets the first `numel` elements of `y` to `value`.
pub fn fill<T: CudaStore>(
    dev: &CudaDevice,
    y: &mut CudaSlice<T>,
    numel: usize,
    value: T,
) -> Result<(), CudaError> {
    const OP: &str = "cuda fill";
    let n = u32_size(OP, numel)?;
    check_len(OP, "output", y, numel)?;
    if numel == 0 {
        return Ok(());
    }
    let f = dev.function(KernelModule::Elementwise, &format!("fill_{}", T::SUFFIX))?;
    launch!(dev, f, dev.grid_1d(numel, 256), OP; &n, y, &value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(shape: &'a [usize], strides: &'a [usize]) -> View<'a> {
        View {
            shape,
            strides,
            offset: 0,
        }
    }

    #[test]
    fn contiguous_operands_collapse_to_rank_one() {
        let a = strided_args("t", &[4, 5, 6], &[(view(&[4, 5, 6], &[30, 6, 1]), 120)]).unwrap();
        assert_eq!((a.rank, a.shape[0], a.stride_a[0]), (1, 120, 1));
        // A row vector broadcast over rows: two dims, the broadcast one with stride 0.
        let b = strided_args(
            "t",
            &[4, 6],
            &[(view(&[4, 6], &[6, 1]), 24), (view(&[6], &[1]), 6)],
        )
        .unwrap();
        assert_eq!(b.rank, 2);
        assert_eq!((b.shape[0], b.shape[1]), (4, 6));
        assert_eq!((b.stride_a[0], b.stride_a[1]), (6, 1));
        assert_eq!((b.stride_b[0], b.stride_b[1]), (0, 1));
        // A transposed view keeps both dims, with its strides.
        let t = strided_args("t", &[3, 2], &[(view(&[3, 2], &[1, 3]), 6)]).unwrap();
        assert_eq!((t.rank, t.stride_a[0], t.stride_a[1]), (2, 1, 3));
        // Size-1 dims vanish; a scalar broadcast everywhere is rank 1 with stride 0.
        let s = strided_args("t", &[1, 7, 1], &[(view(&[1], &[1]), 1)]).unwrap();
        assert_eq!((s.rank, s.shape[0], s.stride_a[0]), (1, 7, 0));
    }

    #[test]
    fn bad_views_are_errors() {
        assert!(strided_args("t", &[4, 6], &[(view(&[4, 5], &[5, 1]), 20)]).is_err());
        assert!(strided_args("t", &[4, 6], &[(view(&[4, 6], &[6, 1]), 23)]).is_err());
        let huge = [1usize << 16, 1 << 16];
        assert!(strided_args("t", &huge, &[]).is_err());
    }
}
