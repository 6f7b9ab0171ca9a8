//! Square SGEMM through `Tensor::matmul` (f32, all rayon threads), plain and with the left
//! operand a transposed view (`[k, m]ᵀ`, multiplied without a copy). Throughput is reported in
//! floating-point operations (2·n³ per product) as "elements".
//!
//! `cargo bench --bench gemm` (about a minute). For a quick table to set beside PyTorch's, use
//! `cargo run --release -- bench gemm` instead.

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use saddle::engine::Rng;
use saddle::{DType, Device, Tensor};
use std::time::Duration;

fn sgemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    let mut rng = Rng::new(0);
    for n in [256usize, 512, 1024, 2048] {
        let a = Tensor::randn(&[n, n], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
        let b = Tensor::randn(&[n, n], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
        let at = a.t().unwrap();
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        // Large products: a fixed number of iterations per sample keeps the run short.
        group.sampling_mode(if n >= 1024 {
            SamplingMode::Flat
        } else {
            SamplingMode::Auto
        });
        group.bench_with_input(BenchmarkId::new("a_b", n), &n, |bench, _| {
            bench.iter(|| a.matmul(&b).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("at_b", n), &n, |bench, _| {
            bench.iter(|| at.matmul(&b).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, sgemm);
criterion_main!(benches);
