//! Fused scaled dot-product attention, `O = softmax(scale · Q Kᵀ) V` per batch item, forward and
//! backward, on contiguous row-major buffers (`q` `[batch, nq, d]`, `k` `[batch, nk, d]`, `v`
//! `[batch, nk, dv]`).
//!
//! Built from the packed GEMM and the softmax lane kernels: per batch item `S = Q Kᵀ` (one
//! GEMM), a row-wise stable softmax that also keeps each row's log-sum-exp, and `O = P V`.
//! Batch items run in parallel; each GEMM may split further inside.
//!
//! The backward recomputes `P = exp(scale · Q Kᵀ − lse)` from the saved row log-sum-exp instead
//! of keeping `P` from the forward: `P` is `nq × nk` per item (16 MiB in f32 for one 64×64 image
//! in SAGAN's block, where 4096 positions attend to 1024 pooled ones), the log-sum-exp is `nq`;
//! recomputing costs one GEMM next to the backward's four. The GPU kernels make the same choice.
//!
//! Determinism: every row is reduced by one thread in a fixed order and the GEMM is
//! thread-count independent, so results do not depend on the number of threads.

use super::gemm::{gemm, MatRef};
use super::lanes::Lanes;
use super::softmax::{logsumexp, softmax_backward};
pub use crate::geometry::{AttentionDims, AttentionNeeds};
use crate::Float;
use rayon::prelude::*;

/// `S = scale · Q Kᵀ` for one item, then `P = exp(S − lse)` row by row. With `lse` empty the
/// rows' log-sum-exps are computed (forward) and returned; otherwise the given ones are used
/// (backward), so the backward's `P` is the forward's to rounding.
fn probabilities<T: Float>(
    q: &[T],
    k: &[T],
    dims: AttentionDims,
    scale: T,
    lse: Option<&[T]>,
) -> (Vec<T>, Vec<T>) {
    let AttentionDims { nq, nk, d, .. } = dims;
    let mut p = vec![T::ZERO; nq * nk];
    gemm(
        MatRef::row_major(q, nq, d),
        MatRef::row_major(k, nk, d).t(),
        T::ZERO,
        &mut p,
        nk,
    );
    let mut out_lse = vec![T::ZERO; if lse.is_some() { 0 } else { nq }];
    let row = |(i, s): (usize, &mut [T])| -> T {
        if scale != T::ONE {
            s.iter_mut().for_each(|x| *x *= scale);
        }
        let m = match lse {
            Some(l) => l[i],
            None => logsumexp(s),
        };
        s.iter_mut().for_each(|x| *x = (*x - m).exp());
        m
    };
    if nk == 0 {
        return (p, vec![T::NEG_INFINITY; out_lse.len()]);
    }
    match lse {
        Some(_) => p.par_chunks_mut(nk).enumerate().for_each(|r| {
            row(r);
        }),
        None => p
            .par_chunks_mut(nk)
            .enumerate()
            .zip(out_lse.par_iter_mut())
            .for_each(|(r, l)| *l = row(r)),
    }
    (p, out_lse)
}

/// Forward: `(O [batch, nq, dv], lse [batch, nq])` with `lse[i] = log Σ_j exp(scale · q_i·k_j)`.
///
/// A row whose scores are all `-inf` gives NaN, as softmax does; with `nk = 0` the output is 0.
pub fn attention_forward<T: Float>(
    q: &[T],
    k: &[T],
    v: &[T],
    dims: AttentionDims,
    scale: T,
) -> (Vec<T>, Vec<T>) {
    let AttentionDims { nq, nk, d, dv, .. } = dims;
    dims.check("q", q.len(), dims.q_len());
    dims.check("k", k.len(), dims.k_len());
    dims.check("v", v.len(), dims.v_len());
    let items: Vec<(Vec<T>, Vec<T>)> = (0..dims.batch)
        .into_par_iter()
        .map(|b| {
            let (p, lse) = probabilities(
                &q[b * nq * d..(b + 1) * nq * d],
                &k[b * nk * d..(b + 1) * nk * d],
                dims,
                scale,
                None,
            );
            let mut o = vec![T::ZERO; nq * dv];
            gemm(
                MatRef::row_major(&p, nq, nk),
                MatRef::row_major(&v[b * nk * dv..(b + 1) * nk * dv], nk, dv),
                T::ZERO,
                &mut o,
                dv,
            );
            (o, lse)
        })
        .collect();
    let (o, lse): (Vec<Vec<T>>, Vec<Vec<T>>) = items.into_iter().unzip();
    (o.concat(), lse.concat())
}

/// Input gradients of [`attention_forward`] from its saved `lse` and the output gradient `g`
/// (`[batch, nq, dv]`): with `P` recomputed,
///
/// ```text
/// dV = Pᵀ g      dP = g Vᵀ      dS = P ∘ (dP − rowsum(dP ∘ P))
/// dQ = scale · dS K             dK = scale · dSᵀ Q
/// ```
///
/// Each gradient is returned only when asked for (`None` otherwise).
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub fn attention_backward<T: Float>(
    q: &[T],
    k: &[T],
    v: &[T],
    lse: &[T],
    g: &[T],
    dims: AttentionDims,
    scale: T,
    needs: AttentionNeeds,
) -> (Option<Vec<T>>, Option<Vec<T>>, Option<Vec<T>>) {
    let AttentionDims { nq, nk, d, dv, .. } = dims;
    dims.check("q", q.len(), dims.q_len());
    dims.check("k", k.len(), dims.k_len());
    dims.check("v", v.len(), dims.v_len());
    dims.check("lse", lse.len(), dims.rows());
    dims.check("g", g.len(), dims.out_len());
    let need_ds = needs.q || needs.k;
    let items: Vec<[Vec<T>; 3]> = (0..dims.batch)
        .into_par_iter()
        .map(|b| {
            let (qb, kb) = (
                &q[b * nq * d..(b + 1) * nq * d],
                &k[b * nk * d..(b + 1) * nk * d],
            );
            let vb = MatRef::row_major(&v[b * nk * dv..(b + 1) * nk * dv], nk, dv);
            let gb = MatRef::row_major(&g[b * nq * dv..(b + 1) * nq * dv], nq, dv);
            let lb = &lse[b * nq..(b + 1) * nq];
            let (p, _) = probabilities(qb, kb, dims, scale, Some(lb));
            // Zeros where asked for (the gradients with no keys, when the output is constant 0);
            // the GEMMs below overwrite them.
            let zeros = |need: bool, n: usize| if need { vec![T::ZERO; n] } else { Vec::new() };
            let (mut dqb, mut dkb, mut dvb) = (
                zeros(needs.q, nq * d),
                zeros(needs.k, nk * d),
                zeros(needs.v, nk * dv),
            );
            if needs.v {
                gemm(MatRef::row_major(&p, nq, nk).t(), gb, T::ZERO, &mut dvb, dv);
            }
            if need_ds && nk > 0 {
                let mut dp = vec![T::ZERO; nq * nk];
                gemm(gb, vb.t(), T::ZERO, &mut dp, nk);
                // The softmax backward of the rows: P ∘ (dP − rowsum(dP ∘ P)).
                let mut ds = softmax_backward(&p, &dp, Lanes::along(&[nq, nk], 1));
                if scale != T::ONE {
                    ds.iter_mut().for_each(|x| *x *= scale);
                }
                let ds = MatRef::row_major(&ds, nq, nk);
                if needs.q {
                    gemm(ds, MatRef::row_major(kb, nk, d), T::ZERO, &mut dqb, d);
                }
                if needs.k {
                    gemm(ds.t(), MatRef::row_major(qb, nq, d), T::ZERO, &mut dkb, d);
                }
            }
            [dqb, dkb, dvb]
        })
        .collect();
    let gather = |i: usize, need: bool| {
        need.then(|| items.iter().flat_map(|it| it[i].iter().copied()).collect())
    };
    (gather(0, needs.q), gather(1, needs.k), gather(2, needs.v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Softmax attention written out directly in f64, one element at a time.
    fn naive(q: &[f64], k: &[f64], v: &[f64], dims: AttentionDims, scale: f64) -> Vec<f64> {
        let (batch, nq, nk, d, dv) = (dims.batch, dims.nq, dims.nk, dims.d, dims.dv);
        let mut out = vec![0.0; batch * nq * dv];
        for b in 0..batch {
            for i in 0..nq {
                let s: Vec<f64> = (0..nk)
                    .map(|j| {
                        scale
                            * (0..d)
                                .map(|c| q[(b * nq + i) * d + c] * k[(b * nk + j) * d + c])
                                .sum::<f64>()
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
                for c in 0..dv {
                    out[(b * nq + i) * dv + c] = (0..nk)
                        .map(|j| (s[j] - m).exp() / z * v[(b * nk + j) * dv + c])
                        .sum();
                }
            }
        }
        out
    }

    fn values(n: usize, seed: u64) -> Vec<f64> {
        // A fixed, irregular sequence in [-2, 2): enough to exercise every element.
        (0..n)
            .map(|i| ((i as u64 * 2654435761 + seed * 97) % 1000) as f64 / 250.0 - 2.0)
            .collect()
    }

    #[test]
    fn forward_matches_the_definition_and_lse_normalises() {
        let dims = AttentionDims {
            batch: 2,
            nq: 5,
            nk: 7,
            d: 3,
            dv: 4,
        };
        let (q, k, v) = (values(30, 1), values(42, 2), values(56, 3));
        let (o, lse) = attention_forward(&q, &k, &v, dims, 0.7);
        let want = naive(&q, &k, &v, dims, 0.7);
        for (a, b) in o.iter().zip(&want) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        // exp(scale · s − lse) sums to one over each row.
        let (p, _) = probabilities(&q[..15], &k[..21], dims, 0.7, Some(&lse[..5]));
        for row in p.chunks(7) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn no_keys_give_zero_output_and_gradients() {
        let dims = AttentionDims {
            batch: 1,
            nq: 2,
            nk: 0,
            d: 3,
            dv: 2,
        };
        let q = values(6, 4);
        let (o, lse) = attention_forward(&q, &[], &[], dims, 1.0);
        assert_eq!(o, vec![0.0; 4]);
        let all = AttentionNeeds {
            q: true,
            k: true,
            v: true,
        };
        let (dq, dk, dv) = attention_backward(&q, &[], &[], &lse, &[1.0; 4], dims, 1.0, all);
        assert_eq!(dq.unwrap(), vec![0.0; 6]);
        assert!(dk.unwrap().is_empty() && dv.unwrap().is_empty());
    }
}
