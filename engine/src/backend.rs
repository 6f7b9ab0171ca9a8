//! The value functions every device implements, with the same names, arguments and meaning on
//! each: [`Cpu`](crate::cpu::Cpu) in `cpu/`, `Cuda` in `cuda/backend.rs`. An op in `ops/` asks
//! [`backend`] for its operands' device once, computes its value through the trait and records
//! exactly one backward, built from trait calls and from other ops, whatever the device. So the
//! two devices cannot disagree on a gradient's formula (ties, zero norms, bad arguments): only
//! on how a value is computed, which the device-parity tests compare.
//!
//! The trait holds the ops whose forward keeps device-specific state for its backward (indices,
//! masks, arg-maxes, saved statistics) and those whose backward is a kernel of its own. Ops that
//! are pure functions of their operands' values (elementwise, reductions, matmul, convolution)
//! still dispatch on the device inside the op with `cuda_or!`, and record one backward after it;
//! they move onto the trait as it grows.

use crate::{DType, Device, Error, Result, Rng, Tensor};
use saddle_kernels::geometry::{AttentionDims, Channels, Lanes, Pool2d};
use std::sync::Arc;

/// Geometry of one pooling: `planes` planes of `h × w` under the window `p`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolPlan {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub p: Pool2d,
}

/// Indices into one axis (each below `bound`), shared by a forward and its backward. A device
/// backend keeps its own copy of them, made on first use.
pub(crate) struct Indices {
    pub host: Arc<[usize]>,
    pub bound: usize,
    #[cfg(feature = "cuda")]
    pub device: std::sync::OnceLock<Arc<saddle_kernels::cuda::ops::index::DeviceIndices>>,
}

impl Indices {
    pub fn new(host: &[usize], bound: usize) -> Indices {
        Indices {
            host: host.into(),
            bound,
            #[cfg(feature = "cuda")]
            device: std::sync::OnceLock::new(),
        }
    }
}

/// Where each window of a max pooling took its value from, kept for the backward.
pub(crate) enum ArgMax {
    /// Per output, the flat position in its input plane (`usize::MAX`: an empty window).
    Host(Vec<usize>),
    #[cfg(feature = "cuda")]
    Device(saddle_kernels::cuda::DeviceBuffer<u32>),
}

/// What a masked compaction's backward needs besides the mask: on a device, the per-chunk
/// offsets the forward computed.
pub(crate) enum Compaction {
    Host,
    #[cfg(feature = "cuda")]
    Device(Arc<saddle_kernels::cuda::ops::index::MaskOffsets>),
}

/// Training-mode batch norm's forward values: the output and, per channel, the batch mean, the
/// biased variance and `1 / sqrt(var + eps)`.
pub(crate) struct BatchNormValues {
    pub output: Tensor,
    pub mean: Tensor,
    pub var: Tensor,
    pub invstd: Tensor,
}

/// Training-mode batch norm's first-order backward: `dx` when asked for, and per channel
/// `sum(dy)` and `sum(dy · xhat)`.
pub(crate) struct BatchNormGrads {
    pub dx: Option<Tensor>,
    pub sum_dy: Tensor,
    pub sum_dy_xhat: Tensor,
}

/// The device-specific value functions. Every tensor argument is on the backend's device; `op`
/// names the public op in errors. Outputs are new dense tensors with no history.
pub(crate) trait Backend: Sync {
    /// The values converted to `dtype` (round to nearest, ties to even).
    fn cast(&self, op: &'static str, x: &Tensor, dtype: DType) -> Result<Tensor>;

    /// A dropout mask of `shape`: each element 0 with probability `p`, else `1 / (1 - p)`.
    fn dropout_mask(
        &self,
        op: &'static str,
        device: Device,
        shape: &[usize],
        dtype: DType,
        p: f64,
        rng: &mut Rng,
    ) -> Result<Tensor>;

    /// `mean(max(x, 0) - x t + log(1 + exp(-|x|)))` as a 0-d tensor (same shapes, not empty).
    fn bce_with_logits(&self, op: &'static str, x: &Tensor, t: &Tensor) -> Result<Tensor>;

    /// Its gradient in `x` from the 0-d upstream gradient `g`: `(sigmoid(x) - t) · g / n`.
    fn bce_with_logits_grad(
        &self,
        op: &'static str,
        x: &Tensor,
        t: &Tensor,
        g: &Tensor,
    ) -> Result<Tensor>;

    /// Entries `idx` along the middle axis of `x` viewed as `lanes`, shaped `out_shape`.
    fn index_select(
        &self,
        op: &'static str,
        x: &Tensor,
        lanes: Lanes,
        idx: &Indices,
        out_shape: &[usize],
    ) -> Result<Tensor>;

    /// The adjoint of [`Backend::index_select`]: `g` added into zeros of `in_shape` at the
    /// selected entries (repeated indices accumulate).
    fn index_add(
        &self,
        op: &'static str,
        g: &Tensor,
        lanes: Lanes,
        idx: &Indices,
        in_shape: &[usize],
    ) -> Result<Tensor>;

    /// `torch.gather(x, dim, idx)` with the index shaped `index_shape`.
    fn gather(
        &self,
        op: &'static str,
        x: &Tensor,
        dim: usize,
        idx: &Indices,
        index_shape: &[usize],
    ) -> Result<Tensor>;

    /// The adjoint of [`Backend::gather`]: `g` (shaped like the index) added into zeros of
    /// `src_shape` where it was read from.
    fn scatter_add(
        &self,
        op: &'static str,
        g: &Tensor,
        src_shape: &[usize],
        dim: usize,
        idx: &Indices,
    ) -> Result<Tensor>;

    /// `cond` broadcast to `shape` as a dense 0/1 tensor of `dtype` (any non-zero value, NaN
    /// included, is 1).
    fn mask_as(
        &self,
        op: &'static str,
        cond: &Tensor,
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor>;

    /// `mask != 0 ? a : b` with `a` and `b` (any views) broadcast to `shape`; `mask` from
    /// [`Backend::mask_as`].
    fn select(
        &self,
        op: &'static str,
        mask: &Tensor,
        a: &Tensor,
        b: &Tensor,
        shape: &[usize],
    ) -> Result<Tensor>;

    /// The values of `x` (broadcast to the mask's shape) where `mask` is set, in row-major order,
    /// as a 1-D tensor, and what [`Backend::mask_expand`] needs.
    fn mask_compact(
        &self,
        op: &'static str,
        mask: &Tensor,
        x: &Tensor,
    ) -> Result<(Tensor, Compaction)>;

    /// The adjoint of [`Backend::mask_compact`]: `g` back at the set positions of `mask`, zeros
    /// elsewhere (the mask's shape).
    fn mask_expand(
        &self,
        op: &'static str,
        at: &Compaction,
        mask: &Tensor,
        g: &Tensor,
    ) -> Result<Tensor>;

    /// Window sums divided by `divisor`, shaped `out_shape`.
    fn sum_pool2d(
        &self,
        op: &'static str,
        x: &Tensor,
        plan: PoolPlan,
        divisor: f64,
        out_shape: &[usize],
    ) -> Result<Tensor>;

    /// The adjoint of [`Backend::sum_pool2d`], shaped `in_shape`.
    fn sum_pool2d_backward(
        &self,
        op: &'static str,
        g: &Tensor,
        plan: PoolPlan,
        divisor: f64,
        in_shape: &[usize],
    ) -> Result<Tensor>;

    /// Window maxima shaped `out_shape` (padding counts as -inf; the first maximum in row-major
    /// order wins a tie) and each window's arg-max.
    fn max_pool2d(
        &self,
        op: &'static str,
        x: &Tensor,
        plan: PoolPlan,
        out_shape: &[usize],
    ) -> Result<(Tensor, ArgMax)>;

    /// Each element of `g` (shaped like the pooling's output) added at its window's arg-max,
    /// zeros elsewhere, shaped `in_shape`.
    fn max_pool2d_scatter(
        &self,
        op: &'static str,
        g: &Tensor,
        arg: &ArgMax,
        plan: PoolPlan,
        in_shape: &[usize],
    ) -> Result<Tensor>;

    /// The adjoint of [`Backend::max_pool2d_scatter`]: the value of `x` (shaped like the
    /// pooling's input) at each window's arg-max (0 for an empty window), shaped `out_shape`.
    fn max_pool2d_gather(
        &self,
        op: &'static str,
        x: &Tensor,
        arg: &ArgMax,
        plan: PoolPlan,
        out_shape: &[usize],
    ) -> Result<Tensor>;

    /// Training-mode batch norm over every dimension but 1, `gamma · xhat + beta` when given.
    fn batch_norm(
        &self,
        op: &'static str,
        x: &Tensor,
        gamma: Option<&Tensor>,
        beta: Option<&Tensor>,
        eps: f64,
        geo: Channels,
    ) -> Result<BatchNormValues>;

    /// Its closed-form backward from the saved `mean` and `invstd`.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_backward(
        &self,
        op: &'static str,
        x: &Tensor,
        dy: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
        gamma: Option<&Tensor>,
        geo: Channels,
        need_dx: bool,
    ) -> Result<BatchNormGrads>;

    /// Fused attention's output and each query's log-sum-exp, or `None` when this backend has
    /// no fused kernel for these operands (the op then composes it from other ops).
    fn attention(
        &self,
        op: &'static str,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        dims: AttentionDims,
        scale: f64,
    ) -> Result<Option<(Tensor, Tensor)>>;

    /// Fused attention's gradients for the inputs in `needs` (`[q, k, v]`), from the inputs,
    /// the output `o`, the log-sum-exp and the upstream gradient `g`.
    #[allow(clippy::too_many_arguments)]
    fn attention_backward(
        &self,
        op: &'static str,
        saved: [&Tensor; 5],
        g: &Tensor,
        dims: AttentionDims,
        scale: f64,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>>;
}

/// The backend of `device`.
pub(crate) fn backend(device: Device) -> &'static dyn Backend {
    match device {
        Device::Cpu => &crate::cpu::Cpu,
        #[cfg(feature = "cuda")]
        Device::Cuda(_) => &crate::cuda::backend::Cuda,
        #[allow(unreachable_patterns)]
        _ => &crate::cpu::Cpu,
    }
}

/// The error of a backend handed state that another backend made (an internal bug).
pub(crate) fn foreign_state(op: &'static str, what: &str) -> Error {
    Error::arg(
        op,
        format!("{what} was made on another device than this tensor's"),
    )
}
