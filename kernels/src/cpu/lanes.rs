//! Per-lane maps along one axis: the buffers are viewed as `[outer, n, inner]` (row-major) and a
//! function sees each lane `x[o, :, i]` (length `n`) as a contiguous slice and writes the output
//! lane. Softmax, log-softmax and L2 normalisation along any axis are built on this.
//!
//! Lanes along the last axis (`inner == 1`) are borrowed in place. Otherwise each lane is gathered
//! into a small buffer and the results are written lane-major (`[outer, inner, n]`) and then
//! transposed back, so that every thread writes a contiguous block and all lanes run in parallel
//! whatever `outer` is. Each lane is handled by one thread in a fixed order: results do not depend
//! on the number of threads.

use super::{strided, PAR_THRESHOLD};
pub use crate::geometry::Lanes;
use crate::Float;
use rayon::prelude::*;

/// Output of `f(inputs' lanes, output lane)` for every lane; each input is a row-major buffer of
/// `lanes.numel()` elements.
pub fn map_lanes<T: Float, const K: usize>(
    inputs: [&[T]; K],
    lanes: Lanes,
    f: impl Fn([&[T]; K], &mut [T]) + Sync,
) -> Vec<T> {
    let Lanes { outer, n, inner } = lanes;
    let numel = lanes.numel();
    for x in &inputs {
        assert_eq!(
            x.len(),
            numel,
            "map_lanes: input length does not match the lane geometry"
        );
    }
    if numel == 0 {
        return Vec::new();
    }
    let mut out = vec![T::ZERO; numel];
    let parallel = numel >= PAR_THRESHOLD;
    // Enough lanes per rayon task that each task touches a few thousand elements.
    let min_lanes = (4096 / n).max(1);
    if inner == 1 {
        let run = |(l, y): (usize, &mut [T])| f(inputs.map(|x| &x[l * n..(l + 1) * n]), y);
        if parallel {
            out.par_chunks_mut(n)
                .with_min_len(min_lanes)
                .enumerate()
                .for_each(run);
        } else {
            out.chunks_mut(n).enumerate().for_each(run);
        }
        return out;
    }
    let gather = |bufs: &mut [Vec<T>; K], l: usize| {
        let (o, i) = (l / inner, l % inner);
        let base = o * n * inner + i;
        for (buf, x) in bufs.iter_mut().zip(&inputs) {
            buf.clear();
            buf.extend((0..n).map(|k| x[base + k * inner]));
        }
    };
    let run = |bufs: &mut [Vec<T>; K], (l, y): (usize, &mut [T])| {
        gather(bufs, l);
        f(std::array::from_fn(|j| bufs[j].as_slice()), y);
    };
    let new_bufs = || -> [Vec<T>; K] { std::array::from_fn(|_| Vec::with_capacity(n)) };
    if parallel {
        out.par_chunks_mut(n)
            .with_min_len(min_lanes)
            .enumerate()
            .for_each_init(new_bufs, run);
    } else {
        let mut bufs = new_bufs();
        out.chunks_mut(n)
            .enumerate()
            .for_each(|item| run(&mut bufs, item));
    }
    // `out` is [outer, inner, n]; read it as [outer, n, inner].
    strided::to_contiguous(&out, &[outer, n, inner], &[inner * n, 1, n], 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_along_middle_axis_see_the_right_values() {
        // [2, 3, 2]: lane (o, i) = x[o, :, i]; output reverses each lane.
        let x: Vec<f64> = (0..12).map(|v| v as f64).collect();
        let lanes = Lanes::along(&[2, 3, 2], 1);
        let y = map_lanes([&x], lanes, |[l], out| {
            for (k, o) in out.iter_mut().enumerate() {
                *o = l[l.len() - 1 - k];
            }
        });
        assert_eq!(y, vec![4., 5., 2., 3., 0., 1., 10., 11., 8., 9., 6., 7.]);
        let last = map_lanes([&x], Lanes::along(&[4, 3], 1), |[l], out| {
            out.copy_from_slice(l)
        });
        assert_eq!(last, x);
    }
}
