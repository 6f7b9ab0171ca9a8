//! Linear-probe accuracy: multinomial logistic regression on frozen features (the DCGAN
//! paper's test of what a discriminator learned, with an L2-regularised linear classifier).
//!
//! Features are standardised with the training split's mean and standard deviation, then the
//! softmax classifier is fitted by full-batch L-BFGS in f64 with a fixed iteration cap and
//! backtracking (Armijo) line search: no randomness, so the result depends only on the data.

use super::{bad_shape, check_rows, invalid};
use saddle_engine::Result;
use saddle_kernels::cpu::gemm::{gemm, MatRef};

/// Settings of the probe.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeConfig {
    /// L2 penalty `(λ/2)‖W‖²` on the weights (not the biases), added to the mean cross-entropy.
    /// Some penalty keeps the solution finite on separable data.
    pub weight_decay: f64,
    /// L-BFGS iteration cap.
    pub max_iters: usize,
    /// Stop when the largest gradient component falls below this.
    pub grad_tol: f64,
    /// L-BFGS memory (pairs of steps kept).
    pub memory: usize,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            weight_decay: 1e-4,
            max_iters: 500,
            grad_tol: 1e-6,
            memory: 10,
        }
    }
}

/// What [`linear_probe`] reports.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeResult {
    /// Fraction of the training rows classified correctly.
    pub train_accuracy: f64,
    /// Fraction of the test rows classified correctly.
    pub test_accuracy: f64,
    /// Final training objective (mean cross-entropy plus the penalty).
    pub train_loss: f64,
    /// L-BFGS iterations run.
    pub iterations: usize,
}

/// Fits the probe on `train_x` (`n × dim` row-major, `n >= 2`) with labels `train_y` in
/// `0..classes` and reports its accuracy on both splits.
#[allow(clippy::too_many_arguments)]
pub fn linear_probe(
    train_x: &[f64],
    train_y: &[usize],
    test_x: &[f64],
    test_y: &[usize],
    dim: usize,
    classes: usize,
    config: &ProbeConfig,
) -> Result<ProbeResult> {
    const OP: &str = "linear_probe";
    let n = check_rows(OP, "train features", train_x, dim, 2)?;
    let nt = check_rows(OP, "test features", test_x, dim, 1)?;
    if classes < 2 {
        return Err(invalid(OP, "need at least 2 classes"));
    }
    for (what, rows, labels) in [("train", n, train_y), ("test", nt, test_y)] {
        if labels.len() != rows {
            return Err(bad_shape(
                OP,
                &[labels.len()],
                format!("{what}: {} labels for {rows} feature rows", labels.len()),
            ));
        }
        if let Some(l) = labels.iter().find(|&&l| l >= classes) {
            return Err(invalid(
                OP,
                format!("{what}: label {l} >= {classes} classes"),
            ));
        }
    }
    if !(config.weight_decay >= 0.0 && config.weight_decay.is_finite()) {
        return Err(invalid(OP, "weight decay must be finite and >= 0"));
    }

    let (mean, scale) = standardiser(train_x, dim);
    let xs = standardise(train_x, dim, &mean, &scale);
    let xt = standardise(test_x, dim, &mean, &scale);
    let problem = Softmax {
        x: &xs,
        y: train_y,
        n,
        dim,
        classes,
        decay: config.weight_decay,
    };
    let (theta, train_loss, iterations) = lbfgs(&problem, config);
    Ok(ProbeResult {
        train_accuracy: accuracy(&xs, train_y, &theta, dim, classes),
        test_accuracy: accuracy(&xt, test_y, &theta, dim, classes),
        train_loss,
        iterations,
    })
}

/// Per-feature mean and 1/std (ddof = 0); constant features get scale 1 (they become 0).
fn standardiser(x: &[f64], dim: usize) -> (Vec<f64>, Vec<f64>) {
    let n = (x.len() / dim) as f64;
    let mut mean = vec![0.0; dim];
    for row in x.chunks_exact(dim) {
        mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0; dim];
    for row in x.chunks_exact(dim) {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m).powi(2);
        }
    }
    let scale = var
        .iter()
        .map(|s| {
            let sd = (s / n).sqrt();
            if sd > 1e-12 {
                1.0 / sd
            } else {
                1.0
            }
        })
        .collect();
    (mean, scale)
}

fn standardise(x: &[f64], dim: usize, mean: &[f64], scale: &[f64]) -> Vec<f64> {
    x.chunks_exact(dim)
        .flat_map(|row| {
            row.iter()
                .zip(mean)
                .zip(scale)
                .map(|((v, m), s)| (v - m) * s)
        })
        .collect()
}

/// Logits `X·W + b` for `θ = [W (dim × classes, row-major), b (classes)]`.
fn logits(x: &[f64], theta: &[f64], dim: usize, classes: usize) -> Vec<f64> {
    let n = x.len() / dim;
    let (w, b) = theta.split_at(dim * classes);
    let mut z = vec![0.0; n * classes];
    gemm(
        MatRef::row_major(x, n, dim),
        MatRef::row_major(w, dim, classes),
        0.0,
        &mut z,
        classes,
    );
    for row in z.chunks_exact_mut(classes) {
        row.iter_mut().zip(b).for_each(|(z, b)| *z += b);
    }
    z
}

fn accuracy(x: &[f64], y: &[usize], theta: &[f64], dim: usize, classes: usize) -> f64 {
    let z = logits(x, theta, dim, classes);
    let correct = z
        .chunks_exact(classes)
        .zip(y)
        .filter(|(row, &label)| {
            let best = row
                .iter()
                .enumerate()
                .fold(0, |b, (i, v)| if *v > row[b] { i } else { b });
            best == label
        })
        .count();
    correct as f64 / y.len() as f64
}

struct Softmax<'a> {
    x: &'a [f64],
    y: &'a [usize],
    n: usize,
    dim: usize,
    classes: usize,
    decay: f64,
}

impl Softmax<'_> {
    fn len(&self) -> usize {
        (self.dim + 1) * self.classes
    }

    /// Objective and gradient at `theta`.
    fn eval(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        let (k, d) = (self.classes, self.dim);
        let mut z = logits(self.x, theta, d, k);
        let inv_n = 1.0 / self.n as f64;
        let mut loss = 0.0;
        // z becomes (softmax(z) - onehot(y)) / n, the gradient with respect to the logits.
        for (row, &label) in z.chunks_exact_mut(k).zip(self.y) {
            let max = row.iter().fold(f64::NEG_INFINITY, |m, v| m.max(*v));
            let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
            let lse = max + sum.ln();
            loss += lse - row[label];
            row.iter_mut().for_each(|v| *v = (*v - lse).exp() * inv_n);
            row[label] -= inv_n;
        }
        let (w, _) = theta.split_at(d * k);
        loss = loss * inv_n + 0.5 * self.decay * w.iter().map(|v| v * v).sum::<f64>();
        let mut grad = vec![0.0; self.len()];
        let (gw, gb) = grad.split_at_mut(d * k);
        gemm(
            MatRef::row_major(self.x, self.n, d).t(),
            MatRef::row_major(&z, self.n, k),
            0.0,
            gw,
            k,
        );
        gw.iter_mut().zip(w).for_each(|(g, w)| *g += self.decay * w);
        for row in z.chunks_exact(k) {
            gb.iter_mut().zip(row).for_each(|(g, v)| *g += v);
        }
        (loss, grad)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimises the (convex) objective from θ = 0; returns θ, the objective and the iterations.
fn lbfgs(p: &Softmax, cfg: &ProbeConfig) -> (Vec<f64>, f64, usize) {
    let mut theta = vec![0.0; p.len()];
    let (mut f, mut g) = p.eval(&theta);
    let mut hist: Vec<(Vec<f64>, Vec<f64>, f64)> = Vec::new(); // (s, y, 1/(sᵀy))
    let mut iters = 0;
    while iters < cfg.max_iters {
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) <= cfg.grad_tol {
            break;
        }
        iters += 1;
        // Two-loop recursion: dir = -H·g.
        let mut q = g.clone();
        let mut alphas = vec![0.0; hist.len()];
        for (a, (s, y, rho)) in alphas.iter_mut().zip(&hist).rev() {
            *a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(q, y)| *q -= *a * y);
        }
        if let Some((s, y, _)) = hist.last() {
            let gamma = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|v| *v *= gamma);
        }
        for (a, (s, y, rho)) in alphas.iter().zip(&hist) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(q, s)| *q += (a - b) * s);
        }
        let mut dir: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &dir);
        if slope >= 0.0 {
            hist.clear();
            dir = g.iter().map(|v| -v).collect();
            slope = -dot(&g, &g);
        }
        let mut t = if hist.is_empty() {
            1.0 / dot(&g, &g).sqrt().max(1.0)
        } else {
            1.0
        };
        let accepted = loop {
            let cand: Vec<f64> = theta.iter().zip(&dir).map(|(x, d)| x + t * d).collect();
            let (fc, gc) = p.eval(&cand);
            if fc <= f + 1e-4 * t * slope {
                break Some((cand, fc, gc));
            }
            t *= 0.5;
            if t < 1e-20 {
                break None;
            }
        };
        let Some((cand, fc, gc)) = accepted else {
            break; // No decrease left at machine precision.
        };
        let s: Vec<f64> = cand.iter().zip(&theta).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gc.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y).max(f64::MIN_POSITIVE) {
            if hist.len() == cfg.memory.max(1) {
                hist.remove(0);
            }
            hist.push((s, y, 1.0 / sy));
        }
        let converged = (f - fc).abs() <= 1e-14 * f.abs().max(1.0);
        theta = cand;
        f = fc;
        g = gc;
        if converged {
            break;
        }
    }
    (theta, f, iters)
}
