//! `saddle bench ...`: the engine's side of the benchmark tables (median of several timed runs,
//! after a warm-up). The PyTorch side is `benches/torch_bench.py`; `benches/compare.sh` prints
//! both side by side.

use clap::{Args, Subcommand};
use saddle_engine::{DType, Device, Rng, Tensor};
use std::time::Instant;

#[derive(Subcommand, Clone, Debug)]
pub enum Suite {
    /// Square SGEMM (f32) at several sizes.
    Gemm {
        /// Matrix sizes to time.
        #[arg(long, value_delimiter = ',', default_values_t = vec![256, 512, 1024, 2048])]
        sizes: Vec<usize>,
        #[command(flatten)]
        opts: BenchOpts,
    },
}

#[derive(Args, Clone, Debug)]
pub struct BenchOpts {
    /// Timed runs per case (the median is reported).
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
    /// Print JSON lines (name, median_ms, gflops) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One measured case.
pub struct Measurement {
    pub name: String,
    pub median_ms: f64,
    pub gflops: f64,
}

/// Median wall time of `f` over `runs` runs after one warm-up run, in milliseconds.
pub fn median_ms(runs: usize, mut f: impl FnMut() -> saddle_engine::Result<()>) -> saddle_engine::Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn report(rows: &[Measurement], json: bool) {
    if json {
        for r in rows {
            println!(
                "{}",
                serde_json::json!({ "name": r.name, "median_ms": r.median_ms, "gflops": r.gflops })
            );
        }
        return;
    }
    println!("{:<40} {:>12} {:>10}", "case", "median ms", "GFLOP/s");
    for r in rows {
        println!("{:<40} {:>12.3} {:>10.1}", r.name, r.median_ms, r.gflops);
    }
}

pub fn run(suite: Suite) -> Result<(), Box<dyn std::error::Error>> {
    match suite {
        Suite::Gemm { sizes, opts } => {
            let mut rows = Vec::new();
            let mut rng = Rng::new(0);
            for n in sizes {
                let a = Tensor::randn(&[n, n], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)?;
                let b = Tensor::randn(&[n, n], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)?;
                let ms = median_ms(opts.runs, || a.matmul(&b).map(drop))?;
                let flops = 2.0 * (n as f64).powi(3);
                rows.push(Measurement { name: format!("sgemm_{n}"), median_ms: ms, gflops: flops / ms / 1e6 });
            }
            report(&rows, opts.json);
        }
    }
    Ok(())
}
