//! Fused optimiser updates: one pass over a parameter, its gradient and its state.
//!
//! Formulas follow PyTorch's `torch.optim.SGD`, `Adam` and `AdamW` (non-foreach, non-fused), so
//! trajectories match step for step.

use super::PAR_THRESHOLD;
use crate::Float;
use rayon::prelude::*;

/// Hyper-parameters of one Adam/AdamW step.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    /// Learning rate.
    pub lr: f64,
    /// Decay rate of the first-moment (mean) estimate.
    pub beta1: f64,
    /// Decay rate of the second-moment (uncentred variance) estimate.
    pub beta2: f64,
    /// Added to the bias-corrected root of the second moment in the denominator.
    pub eps: f64,
    /// Weight decay factor (0: none); how it applies depends on `decoupled`.
    pub weight_decay: f64,
    /// AdamW: decay the weights directly instead of adding `wd * p` to the gradient.
    pub decoupled: bool,
    /// 1-based step count (for bias correction).
    pub step: u64,
}

/// One Adam step in place. `vmax` is the AMSGrad running maximum (pass `None` to disable).
/// Elements are independent, so large parameters are split over threads without changing any
/// result.
pub fn adam_update<T: Float>(
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    vmax: Option<&mut [T]>,
    h: AdamStep,
) {
    let n = p.len();
    assert!(g.len() == n && m.len() == n && v.len() == n);
    match vmax {
        Some(vm) => {
            assert_eq!(vm.len(), n);
            if n >= PAR_THRESHOLD {
                p.par_chunks_mut(CHUNK)
                    .zip(g.par_chunks(CHUNK))
                    .zip(m.par_chunks_mut(CHUNK))
                    .zip(v.par_chunks_mut(CHUNK))
                    .zip(vm.par_chunks_mut(CHUNK))
                    .for_each(|((((p, g), m), v), vm)| adam_chunk(p, g, m, v, Some(vm), &h));
            } else {
                adam_chunk(p, g, m, v, Some(vm), &h);
            }
        }
        None if n >= PAR_THRESHOLD => {
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .for_each(|(((p, g), m), v)| adam_chunk(p, g, m, v, None, &h));
        }
        None => adam_chunk(p, g, m, v, None, &h),
    }
}

/// Elements per parallel task of the optimiser updates.
const CHUNK: usize = 1 << 14;

fn adam_chunk<T: Float>(
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    mut vmax: Option<&mut [T]>,
    h: &AdamStep,
) {
    let (b1, b2) = (T::from_f64(h.beta1), T::from_f64(h.beta2));
    let (one_b1, one_b2) = (T::from_f64(1.0 - h.beta1), T::from_f64(1.0 - h.beta2));
    let bc1 = 1.0 - h.beta1.powi(h.step as i32);
    let bc2_sqrt = T::from_f64((1.0 - h.beta2.powi(h.step as i32)).sqrt());
    let step_size = T::from_f64(h.lr / bc1);
    let eps = T::from_f64(h.eps);
    let wd = T::from_f64(h.weight_decay);
    let decay = T::from_f64(1.0 - h.lr * h.weight_decay);
    if h.weight_decay == 0.0 && vmax.is_none() {
        // The common case as a branch-free loop the compiler vectorises.
        for (((p, &grad), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = b1 * *m + one_b1 * grad;
            *v = b2 * *v + one_b2 * grad * grad;
            let denom = v.sqrt() / bc2_sqrt + eps;
            *p -= step_size * *m / denom;
        }
        return;
    }
    for i in 0..p.len() {
        let mut grad = g[i];
        if h.weight_decay != 0.0 {
            if h.decoupled {
                p[i] *= decay;
            } else {
                grad += wd * p[i];
            }
        }
        m[i] = b1 * m[i] + one_b1 * grad;
        v[i] = b2 * v[i] + one_b2 * grad * grad;
        let second = match vmax.as_deref_mut() {
            Some(vm) => {
                vm[i] = vm[i].max(v[i]);
                vm[i]
            }
            None => v[i],
        };
        let denom = second.sqrt() / bc2_sqrt + eps;
        p[i] -= step_size * m[i] / denom;
    }
}

/// Hyper-parameters of one SGD step.
#[derive(Clone, Copy, Debug)]
pub struct SgdStep {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0: plain SGD, the buffer is not used).
    pub momentum: f64,
    /// Fraction of the gradient held back when it is added to the momentum buffer.
    pub dampening: f64,
    /// L2 penalty: `weight_decay * p` is added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum: step along `g + momentum * buf` instead of `buf`.
    pub nesterov: bool,
    /// True on the first step: the momentum buffer starts as the gradient itself.
    pub first: bool,
}

/// One SGD step in place; `buf` is the momentum buffer (ignored when momentum is 0). Large
/// parameters are split over threads (elements are independent: same result for any count).
pub fn sgd_update<T: Float>(p: &mut [T], g: &[T], buf: &mut [T], h: SgdStep) {
    assert!(g.len() == p.len() && buf.len() == p.len());
    if p.len() >= PAR_THRESHOLD {
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(buf.par_chunks_mut(CHUNK))
            .for_each(|((p, g), buf)| sgd_chunk(p, g, buf, &h));
    } else {
        sgd_chunk(p, g, buf, &h);
    }
}

fn sgd_chunk<T: Float>(p: &mut [T], g: &[T], buf: &mut [T], h: &SgdStep) {
    let lr = T::from_f64(h.lr);
    let mom = T::from_f64(h.momentum);
    let damp = T::from_f64(1.0 - h.dampening);
    let wd = T::from_f64(h.weight_decay);
    if h.weight_decay == 0.0 && h.momentum != 0.0 && !h.nesterov && !h.first {
        // Plain momentum, the common case, as a branch-free loop the compiler vectorises.
        for ((p, &d), b) in p.iter_mut().zip(g).zip(buf.iter_mut()) {
            *b = mom * *b + damp * d;
            *p -= lr * *b;
        }
        return;
    }
    for ((p, &grad), b) in p.iter_mut().zip(g).zip(buf.iter_mut()) {
        let mut d = grad;
        if h.weight_decay != 0.0 {
            d += wd * *p;
        }
        if h.momentum != 0.0 {
            *b = if h.first { d } else { mom * *b + damp * d };
            d = if h.nesterov { d + mom * *b } else { *b };
        }
        *p -= lr * d;
    }
}
