//! Launchers for `cuda/gemm.cu` (f32 and f64 on CUDA cores), `cuda/gemm_tf32.cu` and
//! `cuda/gemm_half.cu` (tensor cores): `C = alpha · op(A) · op(B) + beta · C`, row-major,
//! optionally batched with fixed strides.

use super::launch;
use crate::cuda::{CudaDevice, CudaError, CudaHalf, KernelModule};
use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig};

/// Block tile of the f32, TF32 and 16-bit kernels (128 × 128 of C per 256-thread block).
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
    /// Rows of C (and of op(A)).
    pub m: usize,
    /// Columns of C (and of op(B)).
    pub n: usize,
    /// The summed dimension: columns of op(A), rows of op(B).
    pub k: usize,
    /// A is stored `k × m` and used transposed.
    pub trans_a: bool,
    /// B is stored `n × k` and used transposed.
    pub trans_b: bool,
    /// Leading dimension of A: elements between consecutive stored rows.
    pub lda: usize,
    /// Leading dimension of B.
    pub ldb: usize,
    /// Leading dimension of C.
    pub ldc: usize,
    /// Number of products.
    pub batch: usize,
    /// Elements between consecutive A matrices of the batch (0: one A shared by all).
    pub stride_a: usize,
    /// Elements between consecutive B matrices of the batch (0: shared).
    pub stride_b: usize,
    /// Elements between consecutive C matrices of the batch.
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

/// `GemmArgs` of gemm_tile.cuh (the f32, TF32 and 16-bit kernels: `S` = f32) and `DGemmArgs`
/// of gemm.cu (`S` = f64).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct GemmArgs<S> {
    m: i32,
    n: i32,
    k: i32,
    lda: i32,
    ldb: i32,
    ldc: i32,
    stride_a: i64,
    stride_b: i64,
    stride_c: i64,
    alpha: S,
    beta: S,
}
// SAFETY: repr(C) scalars laid out as the C structs.
unsafe impl<S: DeviceRepr> DeviceRepr for GemmArgs<S> {}

impl<S> GemmArgs<S> {
    fn new(s: &GemmShape, alpha: S, beta: S) -> Result<Self, CudaError> {
        Ok(GemmArgs {
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
        })
    }
}

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

/// Checks the operands' lengths against `s`; `false` when there is nothing to compute.
fn check_shape(s: &GemmShape, a: usize, b: usize, c: usize) -> Result<bool, CudaError> {
    const OP: &str = "cuda gemm";
    let (ar, ac) = if s.trans_a { (s.k, s.m) } else { (s.m, s.k) };
    let (br, bc) = if s.trans_b { (s.n, s.k) } else { (s.k, s.n) };
    let need = |what, rows, cols, ld, stride, have: usize| -> Result<(), CudaError> {
        let need = span(what, rows, cols, ld, s.batch, stride)?;
        if have < need {
            return Err(CudaError::invalid(
                OP,
                format!("{what} holds {have} elements, {need} needed"),
            ));
        }
        Ok(())
    };
    need("A", ar, ac, s.lda, s.stride_a, a)?;
    need("B", br, bc, s.ldb, s.stride_b, b)?;
    need("C", s.m, s.n, s.ldc, s.stride_c, c)?;
    if s.m == 0 || s.n == 0 || s.batch == 0 {
        return Ok(false);
    }
    if s.batch > 65_535 {
        return Err(CudaError::invalid(OP, "more than 65535 batched products"));
    }
    Ok(true)
}

/// Kernel name suffix of the transposes.
fn variant(s: &GemmShape) -> &'static str {
    match (s.trans_a, s.trans_b) {
        (false, false) => "nn",
        (false, true) => "nt",
        (true, false) => "tn",
        (true, true) => "tt",
    }
}

/// A grid of `tile × tile` blocks of C, one z slice per product.
fn grid(s: &GemmShape, tile: usize) -> Result<LaunchConfig, CudaError> {
    if s.m.div_ceil(tile) > 65_535 {
        return Err(CudaError::invalid(
            "cuda gemm",
            format!("m = {} is too tall", s.m),
        ));
    }
    Ok(LaunchConfig {
        grid_dim: (
            s.n.div_ceil(tile) as u32,
            s.m.div_ceil(tile) as u32,
            s.batch as u32,
        ),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    })
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
    let (module, stem) = match precision {
        GemmPrecision::F32 => (KernelModule::Gemm, "sgemm"),
        GemmPrecision::Tf32 => (KernelModule::GemmTf32, "tf32_gemm"),
    };
    launch_gemm(dev, module, stem, TILE, shape, (alpha, beta), a, b, c)
}

/// The product of 16-bit operands (`T`: bf16 or f16) on tensor cores: products accumulated in
/// f32, each element of C rounded once to `T` (a `beta` term is read from C and added in f32
/// before that rounding); needs compute capability 8.0. `c` must hold the whole (batched)
/// output.
#[allow(clippy::too_many_arguments)]
pub fn gemm_half<T: CudaHalf>(
    dev: &CudaDevice,
    shape: GemmShape,
    alpha: f32,
    a: &CudaSlice<T>,
    b: &CudaSlice<T>,
    beta: f32,
    c: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    let stem = format!("{}_gemm", T::SUFFIX);
    launch_gemm(
        dev,
        KernelModule::GemmHalf,
        &stem,
        TILE,
        shape,
        (alpha, beta),
        a,
        b,
        c,
    )
}

/// Checks the shape and launches kernel `{stem}_{variant}` of `module` (a `tile` × `tile` block
/// of C per 256-thread block) with a `GemmArgs` block.
#[allow(clippy::too_many_arguments)]
fn launch_gemm<T: DeviceRepr, S: DeviceRepr>(
    dev: &CudaDevice,
    module: KernelModule,
    stem: &str,
    tile: usize,
    s: GemmShape,
    (alpha, beta): (S, S),
    a: &CudaSlice<T>,
    b: &CudaSlice<T>,
    c: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    if !check_shape(&s, a.len(), b.len(), c.len())? {
        return Ok(());
    }
    let args = GemmArgs::new(&s, alpha, beta)?;
    let f = dev.function(module, &format!("{stem}_{}", variant(&s)))?;
    let cfg = grid(&s, tile)?;
    launch!(dev, f, cfg, "cuda gemm"; &args, a, b, c)
}

/// Block tile of the f64 kernel (32 × 32 of C per 256-thread block).
const DG_TILE: usize = 32;

/// The f64 product (a simple tiled kernel: correct to f64 rounding, not tuned for speed); `c`
/// must hold the whole (batched) output.
#[allow(clippy::too_many_arguments)]
pub fn dgemm(
    dev: &CudaDevice,
    shape: GemmShape,
    alpha: f64,
    a: &CudaSlice<f64>,
    b: &CudaSlice<f64>,
    beta: f64,
    c: &mut CudaSlice<f64>,
) -> Result<(), CudaError> {
    launch_gemm(
        dev,
        KernelModule::Gemm,
        "dgemm",
        DG_TILE,
        shape,
        (alpha, beta),
        a,
        b,
        c,
    )
}
