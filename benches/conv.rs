//! Criterion benches of the conv suite: forward + backward (input and weight gradients) of the
//! DCGAN layers at batch 64, plus the lowering steps alone (im2col, col2im) so their share of a
//! layer's time can be read off next to the GEMMs.
//!
//! `cargo bench --bench conv`; the PyTorch side is `benches/torch_bench.py conv`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use saddle::bench::DCGAN_LAYERS;
use saddle::engine::Rng;
use saddle::kernels::cpu::conv::{col2im, im2col, Conv2dGeometry};
use std::hint::black_box;
use std::time::Duration;

const BATCH: usize = 64;

fn layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv_fwd_bwd");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let mut rng = Rng::new(0);
    for layer in DCGAN_LAYERS {
        let step = layer.setup(BATCH, &mut rng).expect("setup");
        group.throughput(Throughput::Elements(layer.flops(BATCH) as u64));
        group.bench_function(layer.name(), |b| b.iter(|| step.run().expect("conv step")));
    }
    group.finish();
}

/// The geometry of the convolution each layer lowers to (for a transposed convolution, the
/// convolution it is the adjoint of).
fn geometry(transposed: bool, c_in: usize, hw: usize, c_out: usize) -> Conv2dGeometry {
    if transposed {
        Conv2dGeometry::transposed(
            BATCH,
            c_in,
            [hw, hw],
            c_out,
            [4, 4],
            [2, 2],
            [1, 1],
            [0, 0],
            [1, 1],
            1,
        )
    } else {
        Conv2dGeometry::conv2d(
            BATCH,
            c_in,
            [hw, hw],
            c_out,
            [4, 4],
            [2, 2],
            [1, 1],
            [1, 1],
            1,
        )
    }
    .expect("valid geometry")
}

/// im2col and col2im alone, chunk by chunk as the convolution runs them (the column matrix of a
/// chunk stays in cache), to read their share of a layer's time next to the GEMMs.
fn lowering(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv_lowering");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for layer in DCGAN_LAYERS {
        let g = geometry(layer.transposed, layer.c_in, layer.hw, layer.c_out);
        let cn = g.chunk_images();
        let x: Vec<f32> = (0..g.batch * g.in_image())
            .map(|i| (i % 7) as f32)
            .collect();
        let mut col = vec![0f32; g.col_rows() * cn * g.out_plane()];
        let mut scratch = vec![0f32; g.lowering_scratch_len(cn)];
        let mut back = vec![0f32; x.len()];
        group.throughput(Throughput::Bytes(
            (g.col_rows() * g.batch * g.out_plane() * 4) as u64,
        ));
        group.bench_function(format!("im2col_{}", layer.name()), |b| {
            b.iter(|| {
                for n0 in (0..g.batch).step_by(cn) {
                    let images = cn.min(g.batch - n0);
                    im2col(
                        &g,
                        black_box(&x[n0 * g.in_image()..]),
                        images,
                        &mut col,
                        &mut scratch,
                    );
                }
            })
        });
        group.bench_function(format!("col2im_{}", layer.name()), |b| {
            b.iter(|| {
                for n0 in (0..g.batch).step_by(cn) {
                    let images = cn.min(g.batch - n0);
                    col2im(
                        &g,
                        black_box(&mut col),
                        images,
                        &mut back[n0 * g.in_image()..],
                        &mut scratch,
                    );
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, layers, lowering);
criterion_main!(benches);
