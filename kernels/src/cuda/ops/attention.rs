//! Launchers for `cuda/attention.cu`: fused `softmax(scale · Q Kᵀ) V` in f32, forward (output
//! and row log-sum-exp) and backward (recomputing the probabilities from the log-sum-exp).

use super::{check_len, launch, scratch};
use crate::cuda::{CudaDevice, CudaError, KernelModule};
use crate::geometry::AttentionDims;
use cudarc::driver::{CudaSlice, LaunchConfig};

/// Widest `d` or `dv` the kernels take: each lane keeps up to 8 columns of 32 in registers.
pub const MAX_WIDTH: usize = 256;
/// Query (forward, dQ) or key (dK/dV) rows per block, and rows of a staged tile.
const BLOCK_ROWS: usize = 16;
const TILE: usize = 32;
/// Dynamic shared memory every CUDA GPU grants a block without opting in.
const SHARED_LIMIT: usize = 48 * 1024;

/// Register chunks of 32 columns for a width: 1, 2, 4 or 8 (the compiled variants).
fn chunks(width: usize) -> Option<usize> {
    [1, 2, 4, 8].into_iter().find(|c| 32 * c >= width)
}

/// Dynamic shared memory (bytes) of each kernel, mirroring the layouts in attention.cu.
struct Shared {
    fwd: usize,
    dq: usize,
    dkdv: usize,
}

fn shared(dims: AttentionDims) -> Option<Shared> {
    let (d, dv) = (dims.d, dims.dv);
    let c = chunks(dims.dv)?;
    let floats = |n: usize| n * std::mem::size_of::<f32>();
    let rows = BLOCK_ROWS * (d + dv) + TILE * ((d | 1) + (dv | 1));
    Some(Shared {
        fwd: floats(BLOCK_ROWS * d + TILE * (d | 1) + TILE * 32 * c),
        dq: floats(rows),
        dkdv: floats(rows + 2 * TILE),
    })
}

/// Whether the fused kernels take these sizes: `d, dv ≤ 256`, shared memory within 48 KiB, a
/// batch within the grid's y limit, and 32-bit indexing. Otherwise the caller composes the
/// attention from separate ops.
pub fn supports(dims: AttentionDims) -> bool {
    let Some(s) = shared(dims) else {
        return false;
    };
    let largest = (dims.nq.max(dims.nk)) * dims.d.max(dims.dv).max(1);
    dims.d <= MAX_WIDTH
        && dims.dv <= MAX_WIDTH
        && s.fwd.max(s.dq).max(s.dkdv) <= SHARED_LIMIT
        && (1..=65535).contains(&dims.batch)
        && dims
            .batch
            .checked_mul(largest)
            .is_some_and(|n| n <= super::MAX_ELEMENTS)
}

fn refuse(op: &'static str, dims: AttentionDims) -> Result<(), CudaError> {
    if supports(dims) {
        Ok(())
    } else {
        Err(CudaError::invalid(
            op,
            format!(
                "{dims:?} is outside the fused kernels (widths ≤ {MAX_WIDTH}, 48 KiB of shared \
                 memory, batch ≤ 65535)"
            ),
        ))
    }
}

fn cfg(rows: usize, batch: usize, shared_bytes: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows.div_ceil(BLOCK_ROWS) as u32, batch as u32, 1),
        block_dim: (128, 1, 1),
        shared_mem_bytes: shared_bytes as u32,
    }
}

fn check_inputs(
    op: &'static str,
    dims: AttentionDims,
    q: &CudaSlice<f32>,
    k: &CudaSlice<f32>,
    v: &CudaSlice<f32>,
) -> Result<(), CudaError> {
    check_len(op, "q", q, dims.q_len())?;
    check_len(op, "k", k, dims.k_len())?;
    check_len(op, "v", v, dims.v_len())
}

/// `o = softmax(scale · q kᵀ) v` (`[B, Nq, dv]`) and `lse` (`[B, Nq]`), both overwritten.
#[allow(clippy::too_many_arguments)]
pub fn attention_forward(
    dev: &CudaDevice,
    dims: AttentionDims,
    scale: f32,
    q: &CudaSlice<f32>,
    k: &CudaSlice<f32>,
    v: &CudaSlice<f32>,
    o: &mut CudaSlice<f32>,
    lse: &mut CudaSlice<f32>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda attention";
    refuse(OP, dims)?;
    check_inputs(OP, dims, q, k, v)?;
    check_len(OP, "o", o, dims.out_len())?;
    check_len(OP, "lse", lse, dims.rows())?;
    if dims.nq == 0 {
        return Ok(());
    }
    let c = chunks(dims.dv).expect("checked by supports");
    let s = shared(dims).expect("checked by supports");
    let f = dev.function(KernelModule::Attention, &format!("attn_fwd_c{c}_f32"))?;
    let [nq, nk, d, dv] = [dims.nq, dims.nk, dims.d, dims.dv].map(|n| n as u32);
    launch!(dev, f, cfg(dims.nq, dims.batch, s.fwd), OP;
        &nq, &nk, &d, &dv, &scale, q, k, v, o, lse)
}

/// The saved forward state a backward pass reads.
pub struct AttentionSaved<'a> {
    /// The queries, `[batch, nq, d]`.
    pub q: &'a CudaSlice<f32>,
    /// The keys, `[batch, nk, d]`.
    pub k: &'a CudaSlice<f32>,
    /// The values, `[batch, nk, dv]`.
    pub v: &'a CudaSlice<f32>,
    /// The forward's output.
    pub o: &'a CudaSlice<f32>,
    /// The forward's row log-sum-exp.
    pub lse: &'a CudaSlice<f32>,
}

/// Input gradients from the output gradient `dout` (`[B, Nq, dv]`): `dq` when given, and `dk`
/// and `dv` when given (one kernel computes both), each overwritten.
pub fn attention_backward(
    dev: &CudaDevice,
    dims: AttentionDims,
    scale: f32,
    saved: AttentionSaved,
    dout: &CudaSlice<f32>,
    dq: Option<&mut CudaSlice<f32>>,
    dkdv: Option<(&mut CudaSlice<f32>, &mut CudaSlice<f32>)>,
) -> Result<(), CudaError> {
    const OP: &str = "cuda attention backward";
    refuse(OP, dims)?;
    let AttentionSaved { q, k, v, o, lse } = saved;
    check_inputs(OP, dims, q, k, v)?;
    check_len(OP, "o", o, dims.out_len())?;
    check_len(OP, "dout", dout, dims.out_len())?;
    check_len(OP, "lse", lse, dims.rows())?;
    let s = shared(dims).expect("checked by supports");
    let mut delta = scratch::<f32>(dev, dims.rows())?;
    let (batch, nq, nk) = (dims.batch, dims.nq, dims.nk);
    let [nq32, nk32, d32, dv32] = [nq, nk, dims.d, dims.dv].map(|n| n as u32);
    if nq > 0 {
        let rows = dims.rows() as u32;
        let f = dev.function(KernelModule::Attention, "attn_bwd_delta_f32")?;
        let cfg = LaunchConfig {
            grid_dim: (dims.rows().div_ceil(4) as u32, 1, 1),
            block_dim: (128, 1, 1),
            shared_mem_bytes: 0,
        };
        launch!(dev, f, cfg, OP; &rows, &dv32, dout, o, &mut *delta)?;
    }
    if let Some(dq) = dq {
        check_len(OP, "dq", dq, dims.q_len())?;
        if nq > 0 {
            let c = chunks(dims.d).expect("checked by supports");
            let f = dev.function(KernelModule::Attention, &format!("attn_bwd_dq_c{c}_f32"))?;
            launch!(dev, f, cfg(nq, batch, s.dq), OP;
                &nq32, &nk32, &d32, &dv32, &scale, q, k, v, dout, lse, &*delta, dq)?;
        }
    }
    if let Some((dk, dvo)) = dkdv {
        check_len(OP, "dk", dk, dims.k_len())?;
        check_len(OP, "dv", dvo, dims.v_len())?;
        if nk > 0 {
            let c = chunks(dims.d.max(dims.dv)).expect("checked by supports");
            let f = dev.function(KernelModule::Attention, &format!("attn_bwd_dkdv_c{c}_f32"))?;
            launch!(dev, f, cfg(nk, batch, s.dkdv), OP;
                &nq32, &nk32, &d32, &dv32, &scale, q, k, v, dout, lse, &*delta, dk, dvo)?;
        }
    }
    Ok(())
}
