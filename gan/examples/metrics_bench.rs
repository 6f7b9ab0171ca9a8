//! Wall time of the metrics at the sizes the reproductions use:
//! `cargo run --release -p saddle-gan --example metrics_bench -- [parzen|fid|eigen|kid|all]`
//!
//! Parzen: 10k test points × 10k samples × 784 dimensions (MNIST scale), one σ and a 10-σ
//! search. FID: 10k × 64 and 10k × 512 feature sets. Eigen: symmetric n × n with vectors.
//! KID: 100 subsets of 1,000 at 64 dimensions. Inputs are uniform random values.

use saddle_gan::metrics::linalg::sym_eigen;
use saddle_gan::metrics::{fid, kid, logspace, parzen_log_likelihood, parzen_select_sigma};
use saddle_gan::nn::engine::Rng;
use saddle_kernels::cpu::gemm::{gemm, MatRef};
use std::time::Instant;

fn uniform(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.uniform_f64()).collect()
}

fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    println!("{label}: {:.2} s", t.elapsed().as_secs_f64());
    out
}

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let all = which == "all";
    println!("rayon threads: {}", rayon::current_num_threads());
    let mut rng = Rng::new(0);
    if all || which == "parzen" {
        let (n, d) = (10_000, 784);
        let test = uniform(&mut rng, n * d);
        let samples = uniform(&mut rng, n * d);
        timed("  (its GEMM alone: 10k x 784 by 784 x 10k, f64)", || {
            let mut c = vec![0.0; n * n];
            gemm(
                MatRef::row_major(&test, n, d),
                MatRef::row_major(&samples, n, d).t(),
                0.0,
                &mut c,
                n,
            );
            c[0]
        });
        let p = timed("parzen 10k x 10k x 784, one sigma", || {
            parzen_log_likelihood(&test, &samples, d, 0.2).unwrap()
        });
        println!("  mean {:.3} ± {:.3}", p.mean, p.std_err);
        let s = timed("parzen 10k x 10k x 784, 10-sigma search", || {
            parzen_select_sigma(&test, &samples, d, &logspace(-1.0, 0.0, 10)).unwrap()
        });
        println!("  best sigma {:.4}, mean {:.3}", s.best.sigma, s.best.mean);
    }
    if all || which == "fid" {
        for d in [64, 512] {
            let x = uniform(&mut rng, 10_000 * d);
            let y: Vec<f64> = uniform(&mut rng, 10_000 * d)
                .iter()
                .map(|v| v * 1.1)
                .collect();
            let f = timed(&format!("fid 10k x {d} vs 10k x {d}"), || {
                fid(&x, &y, d).unwrap()
            });
            println!("  fid {f:.6}");
        }
    }
    if all || which == "eigen" {
        for n in [512, 1024] {
            let b = uniform(&mut rng, n * n);
            let a: Vec<f64> = (0..n * n).map(|k| b[k] + b[(k % n) * n + k / n]).collect();
            timed(&format!("sym_eigen {n} x {n} with vectors"), || {
                sym_eigen(&a, n).unwrap()
            });
        }
    }
    if all || which == "kid" {
        let d = 64;
        let x = uniform(&mut rng, 10_000 * d);
        let y = uniform(&mut rng, 10_000 * d);
        let k = timed("kid 100 subsets of 1000 x 64", || {
            kid(&x, &y, d, 100, 1000, 0).unwrap()
        });
        println!("  kid {:.6} ± {:.6}", k.mean, k.std);
    }
}
