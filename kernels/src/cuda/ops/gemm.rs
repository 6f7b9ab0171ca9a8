//! Launchers for `cuda/gemm.cu` (f32 on CUDA cores) and `cuda/gemm_tf32.cu` (tensor cores):
//! `C = alpha · op(A) · op(B) + beta · C`, row-major, optionally batched with fixed strides.

use super::{check_len, launch};
use crate::cuda::{CudaDevice, CudaError, KernelModule};
use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig};

/// Block tile of both kernels (128 × 128 of C per 256-thread block).
const TILE: usize = 128;

/// Arithmetic of the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmPrecision {
    /// f32 FMAs: matches the CPU to rounding (relative error ~1e-6).
    F32,
    /// Inputs rounded to TF32 on tensor cores, f32 accumulation: relative error ~1e-3; needs
    /// compute capability 8.0.
    Tf32,
}

/// Shape of a (batched) product. `trans_a`: A is stored `k × m` (leading dimension `lda`) and
/// used transposed; otherwise stored `m × k`. Likewise `trans_b` (stored `n × k` vs `k × n`).
/// C is stored `m × n` with leading dimension `ldc`. Batch `b` offsets each operand by
/// `b · stride_*` elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmShape {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub lda: usize,
    pub ldb: usize,
    pub ldc: usize,
    pub batch: usize,
    pub stride_a: usize,
    pub stride_b: usize,
    pub stride_c: usize,
}

impl GemmShape {
    /// A single product of contiguous row-major operands.
    pub fn contiguous(m: usize, n: usize, k: usize, trans_a: bool, trans_b: bool) -> GemmShape {
        GemmShape {
            m,
            n,
            k,
            trans_a,
            trans_b,
            lda: if trans_a { m } else { k },
            ldb: if trans_b { k } else { n },
            ldc: n,
            batch: 1,
            stride_a: m * k,
            stride_b: k * n,
            stride_c: m * n,
        }
    }
}

/// `GemmArgs` of gemm.cu / gemm_tf32.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct GemmArgs {
    m: i32,
    n: i32,
    k: i32,
    lda: i32,
    ldb: i32,
    ldc: i32,
    stride_a: i64,
    stride_b: i64,
    stride_c: i64,
    alpha: f32,
    beta: f32,
}
// SAFETY: repr(C) scalars laid out as the C struct.
unsafe impl DeviceRepr for GemmArgs {}

/// Elements a stored `rows × cols` operand with leading dimension `ld` spans over `batch`
/// matrices `stride` apart, or an error if `ld` is too small.
fn span(
    what: &str,
    rows: usize,
    cols: usize,
    ld: usize,
    batch: usize,
    stride: usize,
) -> Result<usize, CudaError> {
    if rows > 0 && cols > 0 && ld < cols {
        return Err(CudaError::invalid(
            "cuda gemm",
            format!("{what}: leading dimension {ld} < {cols} columns"),
        ));
    }
    if rows == 0 || cols == 0 || batch == 0 {
        return Ok(0);
    }
    Ok((batch - 1) * stride + (rows - 1) * ld + cols)
}

fn to_i32(v: usize) -> Result<i32, CudaError> {
    i32::try_from(v).map_err(|_| CudaError::invalid("cuda gemm", format!("{v} exceeds i32")))
}

/// Runs the product; `c` must hold the whole (batched) output.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    dev: &CudaDevice,
    precision: GemmPrecision,
    shape: GemmShape,
    alpha: f32,
    a: &CudaSlice<f32>,
    b: &CudaSlice<f32>,
    beta: f32,
    c: &mut CudaSlice<f32>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda gemm";
    let s = shape;
    let (ar, ac) = if s.trans_a { (s.k, s.m) } else { (s.m, s.k) };
    let (br, bc) = if s.trans_b { (s.n, s.k) } else { (s.k, s.n) };
    check_len(OP, "A", a, span("A", ar, ac, s.lda, s.batch, s.stride_a)?)?;
    check_len(OP, "B", b, span("B", br, bc, s.ldb, s.batch, s.stride_b)?)?;
    check_len(OP, "C", c, span("C", s.m, s.n, s.ldc, s.batch, s.stride_c)?)?;
    if s.m == 0 || s.n == 0 || s.batch == 0 {
        return Ok(());
    }
    if s.batch > 65_535 {
        return Err(CudaError::invalid(OP, "more than 65535 batched products"));
    }
    let args = GemmArgs {
        m: to_i32(s.m)?,
        n: to_i32(s.n)?,
        k: to_i32(s.k)?,
        lda: to_i32(s.lda)?,
        ldb: to_i32(s.ldb)?,
        ldc: to_i32(s.ldc)?,
        stride_a: s.stride_a as i64,
        stride_b: s.stride_b as i64,
        stride_c: s.stride_c as i64,
        alpha,
        beta,
    };
    let variant = match (s.trans_a, s.trans_b) {
        (false, false) => "nn",
        (false, true) => "nt",
        (true, false) => "tn",
        (true, true) => "tt",
    };
    let (module, name) = match precision {
        GemmPrecision::F32 => (KernelModule::Gemm, format!("sgemm_{variant}")),
        GemmPrecision::Tf32 => (KernelModule::GemmTf32, format!("tf32_gemm_{variant}")),
    };
    let f = dev.function(module, &name)?;
    let cfg = LaunchConfig {
        grid_dim: (
            s.n.div_ceil(TILE) as u32,
            s.m.div_ceil(TILE) as u32,
            s.batch as u32,
        ),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    if s.m.div_ceil(TILE) > 65_535 {
        return Err(CudaError::invalid(OP, format!("m = {} is too tall", s.m)));
    }
    launch!(dev, f, cfg, OP; &args, a, b, c)
}
