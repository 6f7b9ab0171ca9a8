//! k-means on the rows of a set (the metrics' row-major convention), for the CLUSTERING method
//! of the fewer-labels paper: k-means++ seeding, then Lloyd iterations.

use super::{check_rows, invalid};
use rayon::prelude::*;
use saddle_engine::{Result, Rng};

/// A finished clustering of `n` rows of dimension `dim`.
#[derive(Clone, Debug, PartialEq)]
pub struct KMeans {
    /// `k` centroids, row-major `[k, dim]`.
    pub centroids: Vec<f64>,
    /// The rows' (and centroids') dimension.
    pub dim: usize,
    /// The nearest centroid of each row (ties to the lower index), in `0..k`.
    pub assignments: Vec<usize>,
    /// Lloyd iterations run (centroid updates).
    pub iterations: usize,
    /// Whether the assignments stopped changing within the iteration limit.
    pub converged: bool,
    /// Sum of the squared distances of the rows to their centroids.
    pub inertia: f64,
}

impl KMeans {
    /// Number of clusters.
    pub fn k(&self) -> usize {
        self.centroids.len() / self.dim
    }

    /// Centroid `j`.
    pub fn centroid(&self, j: usize) -> &[f64] {
        &self.centroids[j * self.dim..(j + 1) * self.dim]
    }
}

/// Clusters the `n` rows of `data` (row-major, `dim` columns; see the module docs of
/// [`crate::metrics`], and [`crate::metrics::rows_from_tensor`] for a tensor) into `k` clusters.
///
/// Seeding is k-means++ from `seed`: the first centroid is a row drawn uniformly, each next one
/// a row drawn with probability proportional to its squared distance to the nearest centroid
/// chosen so far (uniformly among the rows not yet chosen when every distance is zero). Lloyd
/// iterations then alternate assigning each row to its nearest centroid and moving each centroid
/// to the mean of its rows, until an assignment equals the previous one or after `max_iters`
/// updates.
///
/// Empty clusters: a centroid left without rows moves onto the row farthest from its own
/// centroid, taken from a cluster that keeps at least one row (empties handled in index order,
/// each taking a different row). A cluster can therefore end empty only when the data has fewer
/// distinct rows than `k`.
///
/// The same data, `k` and seed give bit-identical results for any rayon thread count. Errors for
/// `k = 0`, `k > n`, a bad shape or a non-finite value.
pub fn kmeans(data: &[f64], dim: usize, k: usize, max_iters: usize, seed: u64) -> Result<KMeans> {
    const OP: &str = "kmeans";
    let n = check_rows(OP, "data", data, dim, 1)?;
    if k == 0 || k > n {
        return Err(invalid(
            OP,
            format!("k must be in 1..={n} (the number of rows), got {k}"),
        ));
    }
    let row = |i: usize| &data[i * dim..(i + 1) * dim];
    let mut centroids = plus_plus_seeds(data, dim, n, k, &mut Rng::new(seed));
    let mut assignments = assign(data, dim, &centroids);
    let (mut iterations, mut converged) = (0, false);
    while iterations < max_iters {
        iterations += 1;
        update(data, dim, &assignments, &mut centroids);
        let next = assign(data, dim, &centroids);
        if next == assignments {
            converged = true;
            break;
        }
        assignments = next;
    }
    let inertia = (0..n)
        .map(|i| sq_dist(row(i), &centroids[assignments[i] * dim..][..dim]))
        .sum();
    Ok(KMeans {
        centroids,
        dim,
        assignments,
        iterations,
        converged,
        inertia,
    })
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// k-means++ seeding: `k` rows as centroids, row-major.
fn plus_plus_seeds(data: &[f64], dim: usize, n: usize, k: usize, rng: &mut Rng) -> Vec<f64> {
    let row = |i: usize| &data[i * dim..(i + 1) * dim];
    let mut chosen = vec![false; n];
    let first = rng.below(n as u64) as usize;
    chosen[first] = true;
    let mut centroids = row(first).to_vec();
    let mut nearest: Vec<f64> = (0..n).map(|i| sq_dist(row(i), row(first))).collect();
    for _ in 1..k {
        let total: f64 = nearest.iter().sum();
        let next = if total > 0.0 {
            // The first row whose cumulative weight passes a uniform draw in [0, total); rows
            // at distance zero (the chosen ones among them) have no weight.
            let target = rng.uniform_f64() * total;
            let mut acc = 0.0;
            let mut pick = None;
            for (i, &d) in nearest.iter().enumerate() {
                acc += d;
                if d > 0.0 && acc > target {
                    pick = Some(i);
                    break;
                }
            }
            // Rounding can leave the sum short of `target`: take the last row with weight.
            pick.unwrap_or_else(|| nearest.iter().rposition(|&d| d > 0.0).unwrap())
        } else {
            let free: Vec<usize> = (0..n).filter(|&i| !chosen[i]).collect();
            free[rng.below(free.len() as u64) as usize]
        };
        chosen[next] = true;
        centroids.extend_from_slice(row(next));
        for (i, d) in nearest.iter_mut().enumerate() {
            *d = d.min(sq_dist(row(i), row(next)));
        }
    }
    centroids
}

/// The nearest centroid of every row, ties to the lower index.
fn assign(data: &[f64], dim: usize, centroids: &[f64]) -> Vec<usize> {
    data.par_chunks(dim)
        .map(|x| {
            let mut best = (0, f64::INFINITY);
            for (j, c) in centroids.chunks(dim).enumerate() {
                let d = sq_dist(x, c);
                if d < best.1 {
                    best = (j, d);
                }
            }
            best.0
        })
        .collect()
}

/// Moves each centroid to the mean of its rows; empty clusters take the row farthest from its
/// centroid among clusters that keep a row (see [`kmeans`]).
fn update(data: &[f64], dim: usize, assignments: &[usize], centroids: &mut [f64]) {
    let k = centroids.len() / dim;
    let mut sums = vec![0.0; k * dim];
    let mut counts = vec![0usize; k];
    for (x, &j) in data.chunks(dim).zip(assignments) {
        counts[j] += 1;
        for (s, v) in sums[j * dim..(j + 1) * dim].iter_mut().zip(x) {
            *s += v;
        }
    }
    for j in 0..k {
        if counts[j] > 0 {
            for (c, s) in centroids[j * dim..(j + 1) * dim]
                .iter_mut()
                .zip(&sums[j * dim..(j + 1) * dim])
            {
                *c = s / counts[j] as f64;
            }
        }
    }
    let mut owner = assignments.to_vec();
    let mut taken = vec![false; owner.len()];
    for j in 0..k {
        if counts[j] > 0 {
            continue;
        }
        let far = data
            .chunks(dim)
            .enumerate()
            .filter(|&(i, _)| !taken[i] && counts[owner[i]] > 1)
            .map(|(i, x)| (i, sq_dist(x, &centroids[owner[i] * dim..][..dim])))
            .fold(None, |best: Option<(usize, f64)>, (i, d)| match best {
                Some((_, bd)) if bd >= d => best,
                _ => Some((i, d)),
            });
        // With k <= n some cluster holds two rows while another is empty.
        let Some((i, _)) = far else { continue };
        counts[owner[i]] -= 1;
        owner[i] = j;
        counts[j] = 1;
        taken[i] = true;
        centroids[j * dim..(j + 1) * dim].copy_from_slice(&data[i * dim..(i + 1) * dim]);
    }
}
