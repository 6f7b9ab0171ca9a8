//! The CUDA backend: [`Backend`]'s value functions on the kernels of `saddle_kernels::cuda`
//! (see `ops.rs` beside this file for each launch).

use super::ops as dev;
use crate::backend::{
    foreign_state, ArgMax, Backend, BatchNormGrads, BatchNormValues, Compaction, Indices, PoolPlan,
};
use crate::{DType, Device, Result, Rng, Tensor};
use saddle_kernels::cuda::ops::index::DeviceIndices;
use saddle_kernels::geometry::{AttentionDims, Channels, Lanes};
use std::sync::Arc;

/// The CUDA backend.
pub(crate) struct Cuda;

/// The indices on `device`, uploaded on first use and kept with them (a forward and its
/// backward upload once).
fn on_device(op: &'static str, device: Device, idx: &Indices) -> Result<Arc<DeviceIndices>> {
    if let Some(d) = idx.device.get() {
        return Ok(d.clone());
    }
    let d = dev::upload_indices(op, device, &idx.host, idx.bound)?;
    Ok(idx.device.get_or_init(|| d).clone())
}

fn device_arg<'a>(
    op: &'static str,
    arg: &'a ArgMax,
) -> Result<&'a saddle_kernels::cuda::DeviceBuffer<u32>> {
    match arg {
        ArgMax::Device(a) => Ok(a),
        ArgMax::Host(_) => Err(foreign_state(op, "max pooling's arg-max")),
    }
}

impl Backend for Cuda {
    fn cast(&self, op: &'static str, x: &Tensor, dtype: DType) -> Result<Tensor> {
        super::cast(op, x, dtype)
    }

    fn dropout_mask(
        &self,
        op: &'static str,
        device: Device,
        shape: &[usize],
        dtype: DType,
        p: f64,
        rng: &mut Rng,
    ) -> Result<Tensor> {
        // Drawn on the device from the same stream (see `cuda::random`).
        super::random(
            op,
            device,
            shape,
            dtype,
            super::Draw::DropoutMask { p },
            rng,
        )
    }

    fn bce_with_logits(&self, op: &'static str, x: &Tensor, t: &Tensor) -> Result<Tensor> {
        dev::bce_with_logits(op, x, t)
    }

    fn bce_with_logits_grad(
        &self,
        op: &'static str,
        x: &Tensor,
        t: &Tensor,
        g: &Tensor,
    ) -> Result<Tensor> {
        dev::bce_with_logits_grad(op, x, t, g)
    }

    fn index_select(
        &self,
        op: &'static str,
        x: &Tensor,
        lanes: Lanes,
        idx: &Indices,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let d = on_device(op, x.device(), idx)?;
        dev::index_select(op, x, lanes, &d, out_shape)
    }

    fn index_add(
        &self,
        op: &'static str,
        g: &Tensor,
        lanes: Lanes,
        idx: &Indices,
        in_shape: &[usize],
    ) -> Result<Tensor> {
        let d = on_device(op, g.device(), idx)?;
        dev::index_add(op, g, lanes, &d, in_shape)
    }

    fn gather(
        &self,
        op: &'static str,
        x: &Tensor,
        dim: usize,
        idx: &Indices,
        index_shape: &[usize],
    ) -> Result<Tensor> {
        let d = on_device(op, x.device(), idx)?;
        dev::gather(op, x, dim, &d, index_shape)
    }

    fn scatter_add(
        &self,
        op: &'static str,
        g: &Tensor,
        src_shape: &[usize],
        dim: usize,
        idx: &Indices,
    ) -> Result<Tensor> {
        let d = on_device(op, g.device(), idx)?;
        dev::scatter_add(op, g, src_shape, dim, &d)
    }

    fn mask_as(
        &self,
        op: &'static str,
        cond: &Tensor,
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor> {
        dev::mask_as(op, cond, shape, dtype)
    }

    fn select(
        &self,
        op: &'static str,
        mask: &Tensor,
        a: &Tensor,
        b: &Tensor,
        shape: &[usize],
    ) -> Result<Tensor> {
        dev::select(op, mask, a, b, shape)
    }

    fn mask_compact(
        &self,
        op: &'static str,
        mask: &Tensor,
        x: &Tensor,
    ) -> Result<(Tensor, Compaction)> {
        let at = dev::mask_offsets(op, mask)?;
        let out = dev::mask_compact(op, &at, mask, x)?;
        Ok((out, Compaction::Device(at)))
    }

    fn mask_expand(
        &self,
        op: &'static str,
        at: &Compaction,
        mask: &Tensor,
        g: &Tensor,
    ) -> Result<Tensor> {
        match at {
            Compaction::Device(at) => dev::mask_expand(op, at, mask, g),
            Compaction::Host => Err(foreign_state(op, "the compaction")),
        }
    }

    fn sum_pool2d(
        &self,
        op: &'static str,
        x: &Tensor,
        plan: PoolPlan,
        divisor: f64,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        dev::sum_pool2d(op, x, plan, divisor, out_shape)
    }

    fn sum_pool2d_backward(
        &self,
        op: &'static str,
        g: &Tensor,
        plan: PoolPlan,
        divisor: f64,
        in_shape: &[usize],
    ) -> Result<Tensor> {
        dev::sum_pool2d_backward(op, g, plan, divisor, in_shape)
    }

    fn max_pool2d(
        &self,
        op: &'static str,
        x: &Tensor,
        plan: PoolPlan,
        out_shape: &[usize],
    ) -> Result<(Tensor, ArgMax)> {
        let (out, arg) = dev::max_pool2d(op, x, plan, out_shape)?;
        Ok((out, ArgMax::Device(arg)))
    }

    fn max_pool2d_scatter(
        &self,
        op: &'static str,
        g: &Tensor,
        arg: &ArgMax,
        plan: PoolPlan,
        in_shape: &[usize],
    ) -> Result<Tensor> {
        dev::max_pool2d_backward(op, g, device_arg(op, arg)?, plan, in_shape)
    }

    fn max_pool2d_gather(
        &self,
        op: &'static str,
        x: &Tensor,
        arg: &ArgMax,
        plan: PoolPlan,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        dev::max_pool2d_gather(op, x, device_arg(op, arg)?, plan, out_shape)
    }

    fn batch_norm(
        &self,
        op: &'static str,
        x: &Tensor,
        gamma: Option<&Tensor>,
        beta: Option<&Tensor>,
        eps: f64,
        geo: Channels,
    ) -> Result<BatchNormValues> {
        let (output, mean, var, invstd) = dev::batch_norm(op, x, gamma, beta, eps, geo)?;
        Ok(BatchNormValues {
            output,
            mean,
            var,
            invstd,
        })
    }

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
    ) -> Result<BatchNormGrads> {
        let (dx, sum_dy, sum_dy_xhat) =
            dev::batch_norm_backward(op, x, dy, mean, invstd, gamma, geo, need_dx)?;
        Ok(BatchNormGrads {
            dx,
            sum_dy,
            sum_dy_xhat,
        })
    }

    fn attention(
        &self,
        op: &'static str,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        dims: AttentionDims,
        scale: f64,
    ) -> Result<Option<(Tensor, Tensor)>> {
        dev::attention(op, q, k, v, dims, scale)
    }

    fn attention_backward(
        &self,
        op: &'static str,
        saved: [&Tensor; 5],
        g: &Tensor,
        dims: AttentionDims,
        scale: f64,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let [q, k, v, o, lse] = saved;
        dev::attention_backward(op, q, k, v, o, lse, g, dims, scale, needs)
    }
}
