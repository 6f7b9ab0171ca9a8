//! Maxout over a contiguous buffer viewed as `[outer, groups * pieces, inner]`: each output
//! `[o, j, s]` is the maximum of the `pieces` inputs `[o, j * pieces + k, s]`.
//!
//! Rows of the outer dimension are independent, so they are split over threads without
//! changing any result.

use super::PAR_THRESHOLD;
pub use crate::geometry::MaxoutDims;
use crate::Float;
use rayon::prelude::*;

/// Outer rows per parallel task so each task handles about `PAR_THRESHOLD / 8` outputs.
fn rows_per_task(out_row: usize) -> usize {
    (PAR_THRESHOLD / 8 / out_row.max(1)).max(1)
}

/// The maxima and, for each, the index of the winning piece (the first maximum on ties; a NaN
/// in the first piece stays the result).
pub fn maxout<T: Float>(x: &[T], d: MaxoutDims) -> (Vec<T>, Vec<u32>) {
    let (in_row, out_row) = (d.in_row(), d.out_row());
    assert_eq!(x.len(), d.outer * in_row);
    let mut out = vec![T::ZERO; d.outer * out_row];
    let mut win = vec![0u32; d.outer * out_row];
    if out.is_empty() {
        return (out, win);
    }
    let row = |(xr, (or, wr)): (&[T], (&mut [T], &mut [u32]))| {
        if d.inner == 1 {
            // Selects rather than branches: which piece wins is unpredictable.
            for ((piece, o), w) in xr.chunks_exact(d.pieces).zip(or.iter_mut()).zip(wr) {
                let (mut best, mut at) = (piece[0], 0u32);
                for (k, &v) in piece.iter().enumerate().skip(1) {
                    let better = v > best;
                    best = if better { v } else { best };
                    at = if better { k as u32 } else { at };
                }
                *o = best;
                *w = at;
            }
        } else {
            for (j, (og, wg)) in or
                .chunks_exact_mut(d.inner)
                .zip(wr.chunks_exact_mut(d.inner))
                .enumerate()
            {
                og.copy_from_slice(&xr[j * d.pieces * d.inner..][..d.inner]);
                for k in 1..d.pieces {
                    let src = &xr[(j * d.pieces + k) * d.inner..][..d.inner];
                    for ((o, w), &v) in og.iter_mut().zip(wg.iter_mut()).zip(src) {
                        if v > *o {
                            (*o, *w) = (v, k as u32);
                        }
                    }
                }
            }
        }
    };
    if out.len() >= PAR_THRESHOLD {
        let per = rows_per_task(out_row);
        x.par_chunks(in_row * per)
            .zip(
                out.par_chunks_mut(out_row * per)
                    .zip(win.par_chunks_mut(out_row * per)),
            )
            .for_each(|(xs, (os, ws))| {
                xs.chunks(in_row)
                    .zip(os.chunks_mut(out_row).zip(ws.chunks_mut(out_row)))
                    .for_each(row)
            });
    } else {
        x.chunks(in_row)
            .zip(out.chunks_mut(out_row).zip(win.chunks_mut(out_row)))
            .for_each(row);
    }
    (out, win)
}

/// The input gradient: each output's gradient goes to the pieces equal to its group's
/// maximum, shared equally among tied ones (as a max reduction's backward, on every device), 0
/// to the others. `x` is the forward's input and `win` its winners (the first maximum of each
/// group); a group whose maximum is NaN gives its gradient to its winner.
pub fn maxout_backward<T: Float>(x: &[T], g: &[T], win: &[u32], d: MaxoutDims) -> Vec<T> {
    let (in_row, out_row) = (d.in_row(), d.out_row());
    assert!(g.len() == d.outer * out_row && win.len() == g.len() && x.len() == d.outer * in_row);
    let mut dx = vec![T::ZERO; d.outer * in_row];
    if g.is_empty() {
        return dx;
    }
    type Row<'a, T> = (&'a mut [T], (&'a [T], (&'a [T], &'a [u32])));
    let row = |(dr, (xr, (gr, wr))): Row<T>| {
        for (i, (&gv, &k)) in gr.iter().zip(wr).enumerate() {
            let (j, s) = (i / d.inner, i % d.inner);
            let at = |p: usize| (j * d.pieces + p) * d.inner + s;
            let best = xr[at(k as usize)];
            let ties = (0..d.pieces).filter(|&p| xr[at(p)] == best).count();
            if ties <= 1 {
                dr[at(k as usize)] = gv;
            } else {
                let share = gv / T::from_usize(ties);
                for p in (0..d.pieces).filter(|&p| xr[at(p)] == best) {
                    dr[at(p)] = share;
                }
            }
        }
    };
    if dx.len() >= PAR_THRESHOLD {
        let per = rows_per_task(out_row);
        dx.par_chunks_mut(in_row * per)
            .zip(
                x.par_chunks(in_row * per).zip(
                    g.par_chunks(out_row * per)
                        .zip(win.par_chunks(out_row * per)),
                ),
            )
            .for_each(|(ds, (xs, (gs, ws)))| {
                ds.chunks_mut(in_row)
                    .zip(
                        xs.chunks(in_row)
                            .zip(gs.chunks(out_row).zip(ws.chunks(out_row))),
                    )
                    .for_each(row)
            });
    } else {
        dx.chunks_mut(in_row)
            .zip(
                x.chunks(in_row)
                    .zip(g.chunks(out_row).zip(win.chunks(out_row))),
            )
            .for_each(row);
    }
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_first_maximum_and_shares_the_gradient_among_ties() {
        // [outer 2, 2 groups x 3 pieces, inner 1]
        let x = [
            1.0f32, 5.0, 5.0, -1.0, -2.0, -3.0, 0.0, 0.0, 0.5, 9.0, 1.0, 2.0,
        ];
        let d = MaxoutDims {
            outer: 2,
            groups: 2,
            pieces: 3,
            inner: 1,
        };
        let (y, w) = maxout(&x, d);
        assert_eq!(y, vec![5.0, -1.0, 0.5, 9.0]);
        assert_eq!(w, vec![1, 0, 2, 0]);
        // The tied 5s of the first group share its gradient.
        let dx = maxout_backward(&x, &[1.0f32, 2.0, 3.0, 4.0], &w, d);
        assert_eq!(
            dx,
            vec![0.0, 0.5, 0.5, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0]
        );
        // inner 2: [1, 1 group x 2 pieces, 2]
        let d = MaxoutDims {
            outer: 1,
            groups: 1,
            pieces: 2,
            inner: 2,
        };
        let x = [1.0f64, 4.0, 3.0, 2.0];
        let (y, w) = maxout(&x, d);
        assert_eq!((y, w.clone()), (vec![3.0, 4.0], vec![1, 0]));
        assert_eq!(
            maxout_backward(&x, &[7.0f64, 8.0], &w, d),
            vec![0.0, 8.0, 7.0, 0.0]
        );
    }

    /// Both parallel paths (forward and backward split into tasks of several outer rows), with
    /// one value per position (`inner` 1) and with several: every maximum is its group's, and
    /// the backward writes each output's gradient (distinct values) at exactly its winner's
    /// position, or shared among tied maxima, and 0 elsewhere. Fails on the parallel backward routing every gradient to the
    /// first piece of its group (its winners lost: a deliberate change), which the sum of the
    /// gradients, checked before, did not see; and on rows written at another row's offset.
    #[test]
    fn parallel_split_matches_the_serial_result() {
        for (outer, groups, pieces, inner) in [(300, 240, 5, 1), (400, 40, 3, 3)] {
            let d = MaxoutDims {
                outer,
                groups,
                pieces,
                inner,
            };
            let x: Vec<f32> = (0..outer * groups * pieces * inner)
                .map(|i| ((i * 7919) % 1013) as f32)
                .collect();
            let (y, w) = maxout(&x, d);
            assert!(y.len() >= PAR_THRESHOLD, "the parallel forward");
            // Input index of piece `p` of output `i` ([outer, groups, inner] order).
            let at = |i: usize, p: usize| {
                let (o, j, s) = (i / (groups * inner), (i / inner) % groups, i % inner);
                ((o * groups + j) * pieces + p) * inner + s
            };
            for (i, (&v, &k)) in y.iter().zip(&w).enumerate() {
                let best = (0..pieces).map(|p| x[at(i, p)]).fold(f32::MIN, f32::max);
                assert_eq!(v, best);
                assert_eq!(x[at(i, k as usize)], best);
            }
            let g: Vec<f32> = (0..y.len()).map(|i| i as f32 + 1.0).collect();
            let dx = maxout_backward(&x, &g, &w, d);
            let mut want = vec![0.0f32; dx.len()];
            for (i, (&gv, &k)) in g.iter().zip(&w).enumerate() {
                let best = x[at(i, k as usize)];
                let tied: Vec<usize> = (0..pieces).filter(|&p| x[at(i, p)] == best).collect();
                for p in &tied {
                    want[at(i, *p)] = gv / tied.len() as f32;
                }
            }
            for (n, (a, b)) in dx.iter().zip(&want).enumerate() {
                assert_eq!(a, b, "input {n} ({outer}, {groups}, {pieces}, {inner})");
            }
        }
    }
}
