//! Determinism: with the same seed, a small conv net's outputs and gradients are bit-identical
//! with 1 and with 2 rayon threads, and from run to run.

use saddle::engine::{Conv2dParams, ConvTranspose2dParams, Rng};
use saddle::{DType, Device, Tensor};

/// Forward + backward of conv -> batch norm -> leaky ReLU -> transposed conv -> tanh -> loss;
/// returns the bits of the output and of every gradient. Sized so the parallel paths of the
/// GEMM, the convolution lowering and the elementwise kernels all engage.
fn run_once() -> Vec<u64> {
    let mut rng = Rng::new(1234);
    let mut randn = |shape: &[usize], std: f64| {
        Tensor::randn(shape, 0.0, std, DType::F32, Device::Cpu, &mut rng)
            .unwrap()
            .with_requires_grad(true)
    };
    let x = randn(&[8, 3, 32, 32], 1.0);
    let w1 = randn(&[32, 3, 4, 4], 0.1);
    let b1 = randn(&[32], 0.1);
    let gamma = randn(&[32], 0.1)
        .add_scalar(1.0)
        .unwrap()
        .detach()
        .with_requires_grad(true);
    let beta = randn(&[32], 0.1);
    let w2 = randn(&[32, 3, 4, 4], 0.1);
    let s2 = Conv2dParams::default().with_stride(2).with_padding(1);
    let h = x.conv2d(&w1, Some(&b1), s2).unwrap();
    let h = h
        .batch_norm(Some(&gamma), Some(&beta), 1e-5)
        .unwrap()
        .output
        .leaky_relu(0.2)
        .unwrap();
    let t2 = ConvTranspose2dParams::default()
        .with_stride(2)
        .with_padding(1);
    let y = h.conv_transpose2d(&w2, None, t2).unwrap().tanh().unwrap();
    let loss = y.square().unwrap().mean_all().unwrap();
    let grads = loss.backward().unwrap();
    let mut bits: Vec<u64> = y
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits() as u64)
        .collect();
    for p in [&x, &w1, &b1, &gamma, &beta, &w2] {
        bits.extend(
            grads
                .get(p)
                .unwrap()
                .to_vec::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits() as u64),
        );
    }
    bits
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn conv_net_is_bit_identical_across_thread_counts_and_runs() {
    let one = in_pool(1, run_once);
    let two = in_pool(2, run_once);
    let again = in_pool(2, run_once);
    assert_eq!(one.len(), two.len());
    let first_diff = one.iter().zip(&two).position(|(a, b)| a != b);
    assert_eq!(
        first_diff, None,
        "1 vs 2 threads differ first at value {first_diff:?}"
    );
    assert!(two == again, "two runs with 2 threads differ");
}
