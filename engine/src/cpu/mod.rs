//! The host backend: [`Backend`]'s value functions on the kernels of `saddle_kernels::cpu`.

use crate::backend::{
    foreign_state, ArgMax, Backend, BatchNormGrads, BatchNormValues, Compaction, Indices, PoolPlan,
};
use crate::ops::{distinct_dense, with_contiguous_pair};
use crate::storage::CpuStorage;
use crate::{with_float, DType, Device, Element, Float, Result, Rng, Tensor};
use saddle_kernels::cpu::attention::{self, AttentionNeeds};
use saddle_kernels::cpu::{elementwise, index, loss, norm, pool};
use saddle_kernels::geometry::{AttentionDims, Channels, Lanes};

/// The host backend.
pub(crate) struct Cpu;

/// The host arg-max of a max pooling, or an error when a device made it.
fn host_arg<'a>(op: &'static str, arg: &'a ArgMax) -> Result<&'a [usize]> {
    match arg {
        ArgMax::Host(a) => Ok(a),
        #[allow(unreachable_patterns)]
        _ => Err(foreign_state(op, "max pooling's arg-max")),
    }
}

/// The dropout mask for `n` elements: `1 / (1 - p)` where kept, 0 where dropped. One 32-bit draw
/// per element, in row-major order, so a seed fixes the mask.
fn dropout_values<T: Element>(n: usize, p: f64, rng: &mut Rng) -> Vec<T> {
    // Keep when the draw is at or above p * 2^32: probability 1 - p up to 2^-32.
    let threshold = (p * 4_294_967_296.0).ceil() as u64;
    let keep = T::from_f64(1.0 / (1.0 - p));
    let mut bits = vec![0u32; n];
    rng.fill_u32(&mut bits);
    elementwise::map(&bits, move |b| {
        if u64::from(b) >= threshold {
            keep
        } else {
            T::ZERO
        }
    })
}

impl Backend for Cpu {
    fn cast(&self, _op: &'static str, x: &Tensor, dtype: DType) -> Result<Tensor> {
        // Through f64, which holds every value of the other three exactly.
        let values = x.to_vec_f64()?;
        Ok(Tensor::from_cpu(
            CpuStorage::from_f64(dtype, values.into_iter()),
            x.shape(),
        ))
    }

    fn dropout_mask(
        &self,
        op: &'static str,
        _device: Device,
        shape: &[usize],
        dtype: DType,
        p: f64,
        rng: &mut Rng,
    ) -> Result<Tensor> {
        let _ = op;
        let n = shape.iter().product();
        // Drawn and scaled in f64, then rounded once to `dtype`: the values `T::from_f64` gives.
        let values = dropout_values::<f64>(n, p, rng);
        Ok(Tensor::from_cpu(
            CpuStorage::from_f64(dtype, values.into_iter()),
            shape,
        ))
    }

    fn bce_with_logits(&self, op: &'static str, x: &Tensor, t: &Tensor) -> Result<Tensor> {
        let n = x.numel();
        Ok(with_float!(x, op, |T| {
            let sum = with_contiguous_pair(x, t, op, |x: &[T], t: &[T]| {
                loss::sum_zip(x, t, loss::bce_with_logits)
            })?;
            Tensor::scalar(sum / T::from_usize(n))
        }))
    }

    fn bce_with_logits_grad(
        &self,
        op: &'static str,
        x: &Tensor,
        t: &Tensor,
        g: &Tensor,
    ) -> Result<Tensor> {
        let n = x.numel();
        Ok(with_float!(x, op, |T| {
            let scale = T::from_f64(g.to_scalar()?) / T::from_usize(n);
            let v = with_contiguous_pair(x, t, op, |x: &[T], t: &[T]| {
                elementwise::zip(x, t, |a, b| loss::bce_with_logits_dx(a, b) * scale)
            })?;
            Tensor::from_data(v, x.shape())
        }))
    }

    fn index_select(
        &self,
        op: &'static str,
        x: &Tensor,
        lanes: Lanes,
        idx: &Indices,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let Lanes { outer, n, inner } = lanes;
        Ok(with_float!(x, op, |T| {
            let data = x.with_contiguous(op, |x: &[T]| {
                index::index_select(x, outer, n, inner, &idx.host)
            })?;
            Tensor::from_data(data, out_shape)
        }))
    }

    fn index_add(
        &self,
        op: &'static str,
        g: &Tensor,
        lanes: Lanes,
        idx: &Indices,
        in_shape: &[usize],
    ) -> Result<Tensor> {
        let Lanes { outer, n, inner } = lanes;
        Ok(with_float!(g, op, |T| {
            let data = g.with_contiguous(op, |g: &[T]| {
                index::index_add(g, outer, n, inner, &idx.host)
            })?;
            Tensor::from_data(data, in_shape)
        }))
    }

    fn gather(
        &self,
        op: &'static str,
        x: &Tensor,
        dim: usize,
        idx: &Indices,
        index_shape: &[usize],
    ) -> Result<Tensor> {
        Ok(with_float!(x, op, |T| {
            let data = x.with_contiguous(op, |xs: &[T]| {
                index::gather(xs, x.shape(), dim, &idx.host, index_shape)
            })?;
            Tensor::from_data(data, index_shape)
        }))
    }

    fn scatter_add(
        &self,
        op: &'static str,
        g: &Tensor,
        src_shape: &[usize],
        dim: usize,
        idx: &Indices,
    ) -> Result<Tensor> {
        Ok(with_float!(g, op, |T| {
            let data = g.with_contiguous(op, |gs: &[T]| {
                index::scatter_add(gs, src_shape, dim, &idx.host, g.shape())
            })?;
            Tensor::from_data(data, src_shape)
        }))
    }

    fn mask_as(
        &self,
        op: &'static str,
        cond: &Tensor,
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor> {
        let view = cond.detach().broadcast_as(shape)?;
        let set: Vec<bool> = with_float!(cond, op, |T| view
            .with_contiguous(op, |x: &[T]| x.iter().map(|&v| v != T::ZERO).collect())?);
        let flags = set.into_iter().map(|s| if s { 1.0 } else { 0.0 });
        Ok(Tensor::from_cpu(CpuStorage::from_f64(dtype, flags), shape))
    }

    fn select(
        &self,
        op: &'static str,
        mask: &Tensor,
        a: &Tensor,
        b: &Tensor,
        shape: &[usize],
    ) -> Result<Tensor> {
        Ok(with_float!(a, op, |T| {
            let m = mask.to_vec::<T>()?;
            let x = a.detach().broadcast_as(shape)?.to_vec::<T>()?;
            let y = b.detach().broadcast_as(shape)?.to_vec::<T>()?;
            let data: Vec<T> = m
                .iter()
                .zip(x.into_iter().zip(y))
                .map(|(&c, (u, v))| if c != T::ZERO { u } else { v })
                .collect();
            Tensor::from_data(data, shape)
        }))
    }

    fn mask_compact(
        &self,
        op: &'static str,
        mask: &Tensor,
        x: &Tensor,
    ) -> Result<(Tensor, Compaction)> {
        Ok(with_float!(x, op, |T| {
            let m = mask.to_vec::<T>()?;
            let values =
                x.detach()
                    .broadcast_as(mask.shape())?
                    .with_contiguous(op, |x: &[T]| {
                        x.iter()
                            .zip(&m)
                            .filter(|(_, &keep)| keep != T::ZERO)
                            .map(|(&v, _)| v)
                            .collect::<Vec<T>>()
                    })?;
            let count = values.len();
            (Tensor::from_data(values, &[count]), Compaction::Host)
        }))
    }

    fn mask_expand(
        &self,
        op: &'static str,
        _at: &Compaction,
        mask: &Tensor,
        g: &Tensor,
    ) -> Result<Tensor> {
        Ok(with_float!(g, op, |T| {
            let m = mask.to_vec::<T>()?;
            let gs = g.to_vec::<T>()?;
            let mut buf = vec![T::ZERO; m.len()];
            for (slot, v) in buf
                .iter_mut()
                .zip(&m)
                .filter(|(_, &keep)| keep != T::ZERO)
                .map(|(s, _)| s)
                .zip(gs)
            {
                *slot = v;
            }
            Tensor::from_data(buf, mask.shape())
        }))
    }

    fn sum_pool2d(
        &self,
        op: &'static str,
        x: &Tensor,
        plan: PoolPlan,
        divisor: f64,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let PoolPlan { planes, h, w, p } = plan;
        Ok(with_float!(x, op, |T| {
            let data = x.with_contiguous(op, |x: &[T]| {
                pool::sum_pool2d(x, planes, h, w, &p, T::from_f64(divisor))
            })?;
            Tensor::from_data(data, out_shape)
        }))
    }

    fn sum_pool2d_backward(
        &self,
        op: &'static str,
        g: &Tensor,
        plan: PoolPlan,
        divisor: f64,
        in_shape: &[usize],
    ) -> Result<Tensor> {
        let PoolPlan { planes, h, w, p } = plan;
        Ok(with_float!(g, op, |T| {
            let data = g.with_contiguous(op, |gs: &[T]| {
                pool::sum_pool2d_backward(gs, planes, h, w, &p, T::from_f64(divisor))
            })?;
            Tensor::from_data(data, in_shape)
        }))
    }

    fn max_pool2d(
        &self,
        op: &'static str,
        x: &Tensor,
        plan: PoolPlan,
        out_shape: &[usize],
    ) -> Result<(Tensor, ArgMax)> {
        let PoolPlan { planes, h, w, p } = plan;
        Ok(with_float!(x, op, |T| {
            let (data, arg) =
                x.with_contiguous(op, |x: &[T]| pool::max_pool2d(x, planes, h, w, &p))?;
            (Tensor::from_data(data, out_shape), ArgMax::Host(arg))
        }))
    }

    fn max_pool2d_scatter(
        &self,
        op: &'static str,
        g: &Tensor,
        arg: &ArgMax,
        plan: PoolPlan,
        in_shape: &[usize],
    ) -> Result<Tensor> {
        let arg = host_arg(op, arg)?;
        let PoolPlan { planes, h, w, .. } = plan;
        Ok(with_float!(g, op, |T| {
            let data = g.with_contiguous(op, |gs: &[T]| {
                pool::max_pool2d_backward(gs, arg, planes, h, w)
            })?;
            Tensor::from_data(data, in_shape)
        }))
    }

    fn max_pool2d_gather(
        &self,
        op: &'static str,
        x: &Tensor,
        arg: &ArgMax,
        plan: PoolPlan,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let arg = host_arg(op, arg)?;
        let plane_in = plan.h * plan.w;
        let plane_out = arg.len() / plan.planes.max(1);
        Ok(with_float!(x, op, |T| {
            let data = x.with_contiguous(op, |xs: &[T]| {
                arg.iter()
                    .enumerate()
                    .map(|(i, &a)| {
                        if a < plane_in {
                            xs[(i / plane_out) * plane_in + a]
                        } else {
                            T::ZERO
                        }
                    })
                    .collect::<Vec<T>>()
            })?;
            Tensor::from_data(data, out_shape)
        }))
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
        let c = geo.channels;
        Ok(with_float!(x, op, |T| {
            let (mean, var) = x.with_contiguous(op, |x: &[T]| norm::channel_mean_var(x, geo))?;
            let invstd: Vec<T> = var
                .iter()
                .map(|&v| T::ONE / (v + T::from_f64(eps)).sqrt())
                .collect();
            let scale: Vec<T> = match gamma {
                Some(g) => invstd
                    .iter()
                    .zip(g.to_vec::<T>()?)
                    .map(|(&s, g)| s * g)
                    .collect(),
                None => invstd.clone(),
            };
            let shift = match beta {
                Some(b) => b.to_vec::<T>()?,
                None => vec![T::ZERO; c],
            };
            let y = x.with_contiguous(op, |x: &[T]| {
                norm::channel_affine(x, geo, &mean, &scale, &shift)
            })?;
            BatchNormValues {
                output: Tensor::from_data(y, x.shape()),
                mean: Tensor::from_data(mean, &[c]),
                var: Tensor::from_data(var, &[c]),
                invstd: Tensor::from_data(invstd, &[c]),
            }
        }))
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
        let c = geo.channels;
        Ok(with_float!(x, op, |T| {
            let (mean, invstd) = (mean.to_vec::<T>()?, invstd.to_vec::<T>()?);
            let gamma = gamma.map(|g| g.to_vec::<T>()).transpose()?;
            let (sum_dy, sum_dy_xhat) = with_contiguous_pair(x, dy, op, |x: &[T], dy: &[T]| {
                norm::channel_grad_sums(x, dy, geo, &mean, &invstd)
            })?;
            let dx = if need_dx {
                let dx = with_contiguous_pair(x, dy, op, |x: &[T], dy: &[T]| {
                    norm::batch_norm_input_grad(
                        x,
                        dy,
                        geo,
                        &mean,
                        &invstd,
                        gamma.as_deref(),
                        &sum_dy,
                        &sum_dy_xhat,
                    )
                })?;
                Some(Tensor::from_data(dx, x.shape()))
            } else {
                None
            };
            BatchNormGrads {
                dx,
                sum_dy: Tensor::from_data(sum_dy, &[c]),
                sum_dy_xhat: Tensor::from_data(sum_dy_xhat, &[c]),
            }
        }))
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
        Ok(Some(with_float!(q, op, |T| {
            let ops = distinct_dense::<T>(op, &[q, k, v])?;
            let (o, lse) = ops[0].with_contiguous(op, |q: &[T]| {
                ops[1].with_contiguous(op, |k: &[T]| {
                    ops[2].with_contiguous(op, |v: &[T]| {
                        attention::attention_forward(q, k, v, dims, T::from_f64(scale))
                    })
                })
            })???;
            (
                Tensor::from_data(o, &dims.out_shape()),
                Tensor::from_data(lse, &[dims.batch, dims.nq]),
            )
        })))
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
        let [q, k, v, _, lse] = saved;
        let needs = AttentionNeeds {
            q: needs[0],
            k: needs[1],
            v: needs[2],
        };
        Ok(with_float!(g, op, |T| {
            // `g` may be a view of anything, even of an input: read every operand from a
            // storage of its own.
            let ops = distinct_dense::<T>(op, &[q, k, v, lse, g])?;
            let (dq, dk, dv) = ops[0].with_contiguous(op, |q: &[T]| {
                ops[1].with_contiguous(op, |k: &[T]| {
                    ops[2].with_contiguous(op, |v: &[T]| {
                        ops[3].with_contiguous(op, |l: &[T]| {
                            ops[4].with_contiguous(op, |g: &[T]| {
                                attention::attention_backward(
                                    q,
                                    k,
                                    v,
                                    l,
                                    g,
                                    dims,
                                    T::from_f64(scale),
                                    needs,
                                )
                            })
                        })
                    })
                })
            })?????;
            let wrap =
                |x: Option<Vec<T>>, shape: [usize; 3]| x.map(|x| Tensor::from_data(x, &shape));
            vec![
                wrap(dq, dims.q_shape()),
                wrap(dk, dims.k_shape()),
                wrap(dv, dims.v_shape()),
            ]
        }))
    }
}
