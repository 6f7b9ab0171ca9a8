//! Metrics against independently computed values: numpy/scipy literals (the snippet that
//! produced them is below) and closed-form cases.
//!
//! ```python
//! import numpy as np, scipy.linalg, scipy.special
//! M64 = (1 << 64) - 1
//! def lcg(seed, n):  # mirrors `lcg` below
//!     out = []
//!     for k in range(n):
//!         s = ((seed * 1000003 + k) * 6364136223846793005 + 1442695040888963407) & M64
//!         s ^= s >> 29
//!         s = (s * 0xBF58476D1CE4E5B9) & M64
//!         s ^= s >> 32
//!         out.append((s >> 11) / 2.0**53 - 0.5)
//!     return np.array(out)
//! # FID
//! x1 = lcg(1, 40*5).reshape(40, 5)
//! x2 = (lcg(2, 30*5).reshape(30, 5) @ lcg(3, 25).reshape(5, 5)) + 0.25
//! def fid(a, b):
//!     m1, m2 = a.mean(0), b.mean(0)
//!     s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
//!     return ((m1-m2)**2).sum() + np.trace(s1) + np.trace(s2) \
//!         - 2*np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
//! print(fid(x1, x2))
//! # eigenvalues
//! a = lcg(4, 25).reshape(5, 5); a = a + a.T
//! print(np.linalg.eigvalsh(a))
//! # KID
//! kx = lcg(5, 20*3).reshape(20, 3); ky = lcg(6, 15*3).reshape(15, 3) * 1.3 + 0.4
//! def mmd2(x, y):
//!     d = x.shape[1]
//!     k = lambda a, b: (a @ b.T / d + 1) ** 3
//!     kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
//!     m, n = len(x), len(y)
//!     return ((kxx.sum() - np.trace(kxx)) / (m*(m-1)) + (kyy.sum() - np.trace(kyy)) / (n*(n-1))
//!             - 2 * kxy.mean())
//! print(mmd2(kx, ky))
//! # Parzen
//! pt = lcg(7, 6*3).reshape(6, 3); ps = lcg(8, 10*3).reshape(10, 3); sigma = 0.3
//! d2 = ((pt[:, None, :] - ps[None, :, :])**2).sum(-1)
//! ll = scipy.special.logsumexp(-d2 / (2*sigma**2), axis=1) - np.log(10) \
//!     - 1.5*np.log(2*np.pi*sigma**2)
//! print(ll.mean(), ll.std(ddof=1)/np.sqrt(6))
//! # IS and I'
//! p = scipy.special.softmax(lcg(9, 12*4).reshape(12, 4) * 6, axis=1)
//! def inception(p, splits):
//!     s, n = [], len(p)
//!     for k in range(splits):
//!         part = p[k*n//splits:(k+1)*n//splits]
//!         py = part.mean(0)
//!         s.append(np.exp((part * (np.log(part) - np.log(py))).sum(1).mean()))
//!     return np.mean(s), np.std(s)
//! print(inception(p, 3))
//! py = p.mean(0)
//! print((py * (np.log(py) - np.log(p))).sum(1).mean())
//! # Probe: the minimum of mean cross-entropy + (1e-2 / 2)‖W‖² on standardised features
//! import scipy.optimize
//! px = lcg(30, 60*4).reshape(60, 4); py_ = ((lcg(31, 60) + 0.5) * 3).astype(int)
//! xs = (px - px.mean(0)) / px.std(0)
//! def obj(t):
//!     W = t[:12].reshape(4, 3); b = t[12:]
//!     z = xs @ W + b
//!     return (scipy.special.logsumexp(z, axis=1) - z[np.arange(60), py_]).mean() \
//!         + 0.5e-2 * (W**2).sum()
//! r = scipy.optimize.minimize(obj, np.zeros(15), method="BFGS", options=dict(gtol=1e-10))
//! W = r.x[:12].reshape(4, 3); b = r.x[12:]
//! print(r.fun, ((xs @ W + b).argmax(1) == py_).mean())  # max |gradient| 2e-8
//! ```

use saddle_gan::data::Mixture2d;
use saddle_gan::metrics::linalg::{covariance, matmul, sqrtm_psd, sym_eigen, sym_eigenvalues};
use saddle_gan::metrics::{
    ebgan_i_prime, fid, fid_from_stats, inception_score, kid, kid_mmd2, linear_probe, logspace,
    mode_coverage, parzen_log_likelihood, parzen_select_sigma, rows_from_tensor, GaussianStats,
    ProbeConfig, PROB_EPS,
};
use saddle_gan::nn::engine::{DType, Rng};

/// Deterministic values in [-0.5, 0.5) that Python reproduces exactly (see the snippet).
fn lcg(seed: u64, n: usize) -> Vec<f64> {
    (0..n as u64)
        .map(|k| {
            let mut s = (seed * 1_000_003 + k)
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s ^= s >> 29;
            s = s.wrapping_mul(0xBF58476D1CE4E5B9);
            s ^= s >> 32;
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1.0)
}

fn normals(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.normal_f64()).collect()
}

fn fid_sets() -> (Vec<f64>, Vec<f64>) {
    let x1 = lcg(1, 40 * 5);
    let mix = lcg(3, 25);
    let x2: Vec<f64> = matmul(&lcg(2, 30 * 5), &mix, 30, 5, 5)
        .iter()
        .map(|v| v + 0.25)
        .collect();
    (x1, x2)
}

#[test]
fn fid_matches_scipy_sqrtm_formula() {
    let (x1, x2) = fid_sets();
    let f = fid(&x1, &x2, 5).unwrap();
    assert!(close(f, 0.3919634675806861, 1e-10), "{f}");
    // Symmetric in its arguments.
    assert!(close(fid(&x2, &x1, 5).unwrap(), f, 1e-10));
}

#[test]
fn fid_of_a_set_with_itself_is_zero() {
    let mut rng = Rng::new(3);
    let x = normals(&mut rng, 300 * 16);
    let f = fid(&x, &x, 16).unwrap();
    assert!(f.abs() < 1e-8, "{f}");
    // A shifted copy differs by the squared mean shift alone.
    let y: Vec<f64> = x.iter().map(|v| v + 0.5).collect();
    assert!(close(fid(&x, &y, 16).unwrap(), 16.0 * 0.25, 1e-8));
}

/// A `d × d` rotation (orthonormal columns of a QR-like Gram-Schmidt on lcg values).
fn rotation(d: usize, seed: u64) -> Vec<f64> {
    let a = lcg(seed, d * d);
    let mut q = vec![0.0; d * d];
    for j in 0..d {
        let mut v: Vec<f64> = (0..d).map(|i| a[i * d + j]).collect();
        for k in 0..j {
            let proj: f64 = (0..d).map(|i| v[i] * q[i * d + k]).sum();
            (0..d).for_each(|i| v[i] -= proj * q[i * d + k]);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        (0..d).for_each(|i| q[i * d + j] = v[i] / norm);
    }
    q
}

fn congruence(r: &[f64], diag: &[f64]) -> Vec<f64> {
    let d = diag.len();
    let rd: Vec<f64> = (0..d * d).map(|k| r[k] * diag[k % d]).collect();
    let mut rt = vec![0.0; d * d];
    (0..d).for_each(|i| (0..d).for_each(|j| rt[j * d + i] = r[i * d + j]));
    let mut c = matmul(&rd, &rt, d, d, d);
    // Exact symmetry, as a covariance would have.
    for i in 0..d {
        for j in i + 1..d {
            let m = 0.5 * (c[i * d + j] + c[j * d + i]);
            c[i * d + j] = m;
            c[j * d + i] = m;
        }
    }
    c
}

#[test]
fn fid_of_gaussians_matches_closed_form() {
    // Diagonal covariances: FID = ‖μ₁-μ₂‖² + Σ(√a_i - √b_i)². Rotating both covariances by the
    // same R leaves it unchanged and exercises the full (non-diagonal) path.
    let a = [1.0, 0.25, 4.0, 0.01, 2.0, 1e-6];
    let b = [0.5, 1.0, 4.0, 0.09, 0.3, 1.0];
    let mu1: Vec<f64> = vec![0.0, 1.0, -1.0, 0.5, 0.0, 2.0];
    let mu2: Vec<f64> = vec![0.5, 1.0, 0.0, 0.5, -1.0, 2.0];
    let expected: f64 = mu1
        .iter()
        .zip(&mu2)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        + a.iter()
            .zip(&b)
            .map(|(x, y): (&f64, &f64)| (x.sqrt() - y.sqrt()).powi(2))
            .sum::<f64>();
    let eye: Vec<f64> = (0..36)
        .map(|k| if k % 7 == 0 { 1.0 } else { 0.0 })
        .collect();
    for r in [eye, rotation(6, 11)] {
        let s1 = GaussianStats::from_parameters(mu1.clone(), congruence(&r, &a)).unwrap();
        let s2 = GaussianStats::from_parameters(mu2.clone(), congruence(&r, &b)).unwrap();
        let f = fid_from_stats(&s1, &s2).unwrap();
        assert!(close(f, expected, 1e-9), "{f} vs {expected}");
    }

    // Sampled sets approach the population value as n grows (bias and noise ~ 1/√n here).
    let mut rng = Rng::new(5);
    let n = 20_000;
    let draw = |rng: &mut Rng, mu: &[f64], var: &[f64]| -> Vec<f64> {
        (0..n * 3)
            .map(|k| mu[k % 3] + var[k % 3].sqrt() * rng.normal_f64())
            .collect()
    };
    let x = draw(&mut rng, &[0.0, 1.0, 0.0], &[1.0, 0.25, 4.0]);
    let y = draw(&mut rng, &[0.5, 1.0, 1.0], &[0.5, 1.0, 4.0]);
    let population = 0.25 + 1.0 + (1.0 - 0.5f64.sqrt()).powi(2) + 0.25;
    let f = fid(&x, &y, 3).unwrap();
    assert!((f - population).abs() < 0.05, "{f} vs {population}");
}

fn check_eigen(a: &[f64], n: usize, tol: f64) {
    let e = sym_eigen(a, n).unwrap();
    assert!(e.values.windows(2).all(|w| w[0] <= w[1]));
    let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for i in 0..n {
        for j in 0..n {
            let recon: f64 = (0..n)
                .map(|k| e.vectors[i * n + k] * e.values[k] * e.vectors[j * n + k])
                .sum();
            assert!((recon - a[i * n + j]).abs() <= tol * scale, "A[{i},{j}]");
            let gram: f64 = (0..n)
                .map(|k| e.vectors[k * n + i] * e.vectors[k * n + j])
                .sum();
            let id = if i == j { 1.0 } else { 0.0 };
            assert!((gram - id).abs() <= tol, "VᵀV[{i},{j}] = {gram}");
        }
    }
    let values = sym_eigenvalues(a, n).unwrap();
    for (x, y) in values.iter().zip(&e.values) {
        assert!((x - y).abs() <= tol * scale);
    }
}

#[test]
fn eigendecomposition_reconstructs_and_is_orthogonal() {
    // Against numpy.linalg.eigvalsh.
    let b = lcg(4, 25);
    let a: Vec<f64> = (0..25).map(|k| b[k] + b[(k % 5) * 5 + k / 5]).collect();
    let v = sym_eigenvalues(&a, 5).unwrap();
    let numpy = [
        -1.0860363548620073,
        -0.4289108521560403,
        -0.1669531706716649,
        0.44031934712047466,
        0.8969514063456226,
    ];
    for (x, y) in v.iter().zip(numpy) {
        assert!((x - y).abs() < 1e-13, "{x} vs {y}");
    }

    // A random symmetric 40×40.
    let n = 40;
    let b = lcg(12, n * n);
    let a: Vec<f64> = (0..n * n).map(|k| b[k] + b[(k % n) * n + k / n]).collect();
    check_eigen(&a, n, 1e-12);

    // Rank 4 of 30 (B·Bᵀ): 26 eigenvalues are zero up to rounding.
    let (n, r) = (30, 4);
    let bm = lcg(13, n * r);
    let mut bt = vec![0.0; r * n];
    (0..n).for_each(|i| (0..r).for_each(|j| bt[j * n + i] = bm[i * r + j]));
    let a = matmul(&bm, &bt, n, r, n);
    check_eigen(&a, n, 1e-12);
    let e = sym_eigenvalues(&a, n).unwrap();
    assert!(e[..n - r].iter().all(|v| v.abs() < 1e-13), "{e:?}");
    assert!(e[n - r] > 0.1);

    // Repeated eigenvalues (identity plus a rank-1 term) and an already diagonal matrix.
    let u = lcg(14, 8);
    let a: Vec<f64> = (0..64)
        .map(|k| u[k / 8] * u[k % 8] + if k % 9 == 0 { 2.0 } else { 0.0 })
        .collect();
    check_eigen(&a, 8, 1e-13);
    let d: Vec<f64> = (0..16)
        .map(|k| if k % 5 == 0 { k as f64 } else { 0.0 })
        .collect();
    assert_eq!(sym_eigenvalues(&d, 4).unwrap(), vec![0.0, 5.0, 10.0, 15.0]);
}

#[test]
fn sqrtm_of_near_singular_psd_matrix() {
    let n = 12;
    let r = rotation(n, 21);
    // Eigenvalues from 4 down to 1e-14, plus one rounding-level negative one.
    let mut lam: Vec<f64> = (0..n)
        .map(|i| 4.0 * 10f64.powi(-(i as i32) * 14 / 11))
        .collect();
    lam[n - 1] = -1e-15;
    let a = congruence(&r, &lam);
    let s = sqrtm_psd(&a, n).unwrap();
    let s2 = matmul(&s, &s, n, n, n);
    for (x, y) in s2.iter().zip(&a) {
        assert!((x - y).abs() < 1e-12, "{x} vs {y}");
    }
    for i in 0..n {
        for j in 0..n {
            assert_eq!(s[i * n + j], s[j * n + i]);
        }
    }
    // The root's eigenvalues are the clamped roots of the input's.
    let ev = sym_eigenvalues(&s, n).unwrap();
    assert!((ev[n - 1] - 2.0).abs() < 1e-12);
    assert!(ev.iter().all(|v| *v > -1e-7));
    // A clearly indefinite matrix is refused.
    lam[n - 1] = -0.1;
    assert!(sqrtm_psd(&congruence(&r, &lam), n).is_err());
}

#[test]
fn covariance_matches_definition() {
    let x = lcg(15, 7 * 3);
    let (mean, cov) = covariance(&x, 3).unwrap();
    for j in 0..3 {
        let m: f64 = (0..7).map(|i| x[i * 3 + j]).sum::<f64>() / 7.0;
        assert!((mean[j] - m).abs() < 1e-15);
        for k in 0..3 {
            let c: f64 = (0..7)
                .map(|i| (x[i * 3 + j] - mean[j]) * (x[i * 3 + k] - mean[k]))
                .sum::<f64>()
                / 6.0;
            assert!((cov[j * 3 + k] - c).abs() < 1e-15);
        }
    }
}

#[test]
fn kid_matches_numpy() {
    let x = lcg(5, 20 * 3);
    let y: Vec<f64> = lcg(6, 15 * 3).iter().map(|v| v * 1.3 + 0.4).collect();
    let m = kid_mmd2(&x, &y, 3).unwrap();
    assert!(close(m, 0.4095596681887188, 1e-12), "{m}");
    // Subsets holding every row are permutations of the full sets: same value, no spread.
    let y15 = &y[..];
    let x15 = &x[..15 * 3];
    let full = kid_mmd2(x15, y15, 3).unwrap();
    let k = kid(x15, y15, 3, 4, 15, 1).unwrap();
    assert_eq!(k.values.len(), 4);
    assert!(close(k.mean, full, 1e-12) && k.std < 1e-12);
    // Real subsets vary, and are seeded.
    let a = kid(&x, &y, 3, 10, 8, 7).unwrap();
    assert!(a.std > 0.0);
    assert_eq!(a, kid(&x, &y, 3, 10, 8, 7).unwrap());
    // Same distribution: the unbiased estimate is near zero.
    let mut rng = Rng::new(9);
    let (p, q) = (normals(&mut rng, 2000 * 4), normals(&mut rng, 2000 * 4));
    assert!(kid_mmd2(&p, &q, 4).unwrap().abs() < 5e-3);
}

#[test]
fn parzen_matches_scipy_logsumexp() {
    let test = lcg(7, 6 * 3);
    let samples = lcg(8, 10 * 3);
    let p = parzen_log_likelihood(&test, &samples, 3, 0.3).unwrap();
    assert!(close(p.mean, -1.1665793556030655, 1e-12), "{}", p.mean);
    assert!(close(p.std_err, 0.2047181854384755, 1e-10), "{}", p.std_err);

    // The search scores each σ as the single-σ call does and keeps the best.
    let grid = logspace(-1.0, 0.0, 5);
    assert!((grid[0] - 0.1).abs() < 1e-15 && (grid[4] - 1.0).abs() < 1e-15);
    let search = parzen_select_sigma(&test, &samples, 3, &grid).unwrap();
    assert_eq!(search.table.len(), 5);
    for row in &search.table {
        let single = parzen_log_likelihood(&test, &samples, 3, row.sigma).unwrap();
        assert!(close(row.mean, single.mean, 1e-13));
        assert!(search.best.mean >= row.mean);
    }
    assert!(search.table.contains(&search.best));

    // Far points: every exp underflows without the log-sum-exp shift, but the value is finite
    // and equals the single nearest sample's term.
    let far = [100.0, 0.0, 0.0, 0.0, 100.0, 0.0];
    let one = [0.0, 0.0, 0.0];
    let p = parzen_log_likelihood(&far, &one, 3, 0.1).unwrap();
    let expected = -1e4 / (2.0 * 0.01) - 1.5 * (std::f64::consts::TAU * 0.01).ln();
    assert!(close(p.mean, expected, 1e-12) && p.std_err == 0.0);
}

#[test]
fn inception_score_bounds_and_numpy_literal() {
    let k = 5;
    let one_hot: Vec<f64> = (0..50 * k)
        .map(|i| if i % k == (i / k) % k { 1.0 } else { 0.0 })
        .collect();
    let s = inception_score(&one_hot, k, 1).unwrap();
    assert!((s.mean - k as f64).abs() < 1e-12 && s.std == 0.0);
    let same: Vec<f64> = (0..30).flat_map(|_| [0.2, 0.5, 0.3]).collect();
    assert!((inception_score(&same, 3, 2).unwrap().mean - 1.0).abs() < 1e-14);

    let p = softmax_rows(&lcg(9, 12 * 4), 4, 6.0);
    let s = inception_score(&p, 4, 3).unwrap();
    assert!(close(s.mean, 1.6695543759876081, 1e-12), "{}", s.mean);
    assert!(close(s.std, 0.02454897658242094, 1e-10), "{}", s.std);
}

fn softmax_rows(x: &[f64], k: usize, scale: f64) -> Vec<f64> {
    x.chunks(k)
        .flat_map(|r| {
            let e: Vec<f64> = r.iter().map(|v| (v * scale).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(move |v| v / s)
        })
        .collect()
}

#[test]
fn ebgan_i_prime_literal_and_zero_handling() {
    let p = softmax_rows(&lcg(9, 12 * 4), 4, 6.0);
    let v = ebgan_i_prime(&p, 4).unwrap();
    assert!(close(v, 0.9253883169276399, 1e-12), "{v}");
    // Identical predictions: p(y) = p(y|x), so 0.
    let same: Vec<f64> = (0..10).flat_map(|_| [0.2, 0.5, 0.3]).collect();
    assert!(ebgan_i_prime(&same, 3).unwrap().abs() < 1e-15);
    // Balanced one-hot over K: each sample's KL is ln(1/K) - (K-1)/K·ln(eps) (one term has
    // p(y|x) = 1, the others hit the floor).
    let k = 4;
    let one_hot: Vec<f64> = (0..8 * k)
        .map(|i| if i % k == (i / k) % k { 1.0 } else { 0.0 })
        .collect();
    let expected = (1.0 / k as f64).ln() - (k - 1) as f64 / k as f64 * PROB_EPS.ln();
    assert!(close(ebgan_i_prime(&one_hot, k).unwrap(), expected, 1e-12));
}

#[test]
fn probe_separates_blobs_and_not_random_labels() {
    // Three Gaussian blobs in 6-D, well apart: linearly separable.
    let mut rng = Rng::new(17);
    let (dim, classes) = (6, 3);
    let centres = [[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]];
    let blobs = |rng: &mut Rng, n: usize| -> (Vec<f64>, Vec<usize>) {
        let y: Vec<usize> = (0..n).map(|i| i % classes).collect();
        let x = y
            .iter()
            .flat_map(|&c| {
                let noise = normals(rng, dim);
                (0..dim)
                    .map(|j| noise[j] + if j < 2 { centres[c][j] } else { 0.0 })
                    .collect::<Vec<_>>()
            })
            .collect();
        (x, y)
    };
    let (xtr, ytr) = blobs(&mut rng, 300);
    let (xte, yte) = blobs(&mut rng, 300);
    let cfg = ProbeConfig::default();
    let r = linear_probe(&xtr, &ytr, &xte, &yte, dim, classes, &cfg).unwrap();
    assert!(r.train_accuracy == 1.0 && r.test_accuracy >= 0.99, "{r:?}");
    assert_eq!(
        r,
        linear_probe(&xtr, &ytr, &xte, &yte, dim, classes, &cfg).unwrap()
    );

    // Labels independent of the features: the test accuracy stays at chance (1/2 ± 3σ).
    let x = normals(&mut rng, 1200 * 10);
    let y: Vec<usize> = (0..1200).map(|_| rng.below(2) as usize).collect();
    let r = linear_probe(
        &x[..200 * 10],
        &y[..200],
        &x[200 * 10..],
        &y[200..],
        10,
        2,
        &cfg,
    )
    .unwrap();
    assert!((r.test_accuracy - 0.5).abs() < 0.05, "{r:?}");
}

#[test]
fn probe_reaches_the_scipy_optimum() {
    let x = lcg(30, 60 * 4);
    let y: Vec<usize> = lcg(31, 60)
        .iter()
        .map(|v| ((v + 0.5) * 3.0) as usize)
        .collect();
    let cfg = ProbeConfig {
        weight_decay: 1e-2,
        ..ProbeConfig::default()
    };
    let r = linear_probe(&x, &y, &x[..4], &y[..1], 4, 3, &cfg).unwrap();
    assert!(close(r.train_loss, 0.8703181966477271, 1e-10), "{r:?}");
    assert!((r.train_accuracy - 37.0 / 60.0).abs() < 1e-12, "{r:?}");
}

#[test]
fn mode_coverage_of_the_mixture_itself() {
    // Samples from the mixture: all modes covered, and the high-quality share is the 2-D
    // Gaussian mass within 3σ, 1 - exp(-9/2) = 0.98889.
    let ring = Mixture2d::ring(8, 2.0, 0.02);
    let mut rng = Rng::new(23);
    let pts = ring.sample(20_000, DType::F64, &mut rng).unwrap();
    let (flat, dim) = rows_from_tensor(&pts).unwrap();
    assert_eq!(dim, 2);
    let pts: Vec<[f64; 2]> = flat.chunks(2).map(|p| [p[0], p[1]]).collect();
    let c = mode_coverage(&ring, &pts, 0.25);
    assert_eq!(c.covered, 8);
    assert!(
        (c.high_quality - (1.0 - (-4.5f64).exp())).abs() < 0.003,
        "{c:?}"
    );
}

#[test]
fn bad_inputs_are_errors() {
    let x = lcg(1, 40 * 5);
    // Length not a multiple of the dimension, zero dimension, too few rows, NaN.
    assert!(fid(&x[..41], &x, 5).is_err());
    assert!(fid(&x, &x, 0).is_err());
    assert!(fid(&x[..5], &x, 5).is_err());
    let mut nan = x.clone();
    nan[7] = f64::NAN;
    assert!(fid(&nan, &x, 5).is_err());
    assert!(kid_mmd2(&x, &nan, 5).is_err());
    assert!(kid(&x, &x, 5, 3, 41, 0).is_err());
    assert!(kid(&x, &x, 5, 0, 4, 0).is_err());
    assert!(parzen_log_likelihood(&x[..5], &x, 5, 0.1).is_err());
    assert!(parzen_log_likelihood(&x, &nan, 5, 0.1).is_err());
    assert!(parzen_log_likelihood(&x, &x, 5, 0.0).is_err());
    assert!(parzen_select_sigma(&x, &x, 5, &[]).is_err());
    // Logits instead of probabilities, negative entries, too many splits.
    assert!(inception_score(&[2.0, -1.0, 0.5, 0.5], 2, 1).is_err());
    assert!(inception_score(&[0.5, 0.5, 0.5, 0.5], 2, 3).is_err());
    assert!(ebgan_i_prime(&[1.2, -0.2], 2).is_err());
    // Label out of range, label count mismatch.
    let cfg = ProbeConfig::default();
    assert!(linear_probe(&x, &[0; 8], &x, &[2; 8], 5, 2, &cfg).is_err());
    assert!(linear_probe(&x, &[0; 7], &x, &[0; 8], 5, 2, &cfg).is_err());
    let e = fid(&nan, &x, 5).unwrap_err().to_string();
    assert!(e.contains("non-finite") && e.contains("row 1"), "{e}");
}
