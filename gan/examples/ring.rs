//! Trains the toy GAN on 8 Gaussians on a ring and prints mode coverage:
//! `cargo run --release -p saddle-gan --example ring -- [steps] [seed] [hidden] [batch] [lr] [std] [sn 0|1]`
use saddle_gan::data::Mixture2d;
use saddle_gan::toy::{train_toy_gan, ToyConfig};

fn main() {
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric argument"))
        .collect();
    let arg = |i: usize, default: f64| args.get(i).copied().unwrap_or(default);
    let d = ToyConfig::default();
    let cfg = ToyConfig {
        steps: arg(0, d.steps as f64) as usize,
        seed: arg(1, d.seed as f64) as u64,
        hidden: arg(2, d.hidden as f64) as usize,
        batch: arg(3, d.batch as f64) as usize,
        lr: arg(4, d.lr),
        spectral_norm: arg(6, 0.0) != 0.0,
        ..d
    };
    let ring = Mixture2d::ring(8, 2.0, arg(5, 0.02));
    let t = std::time::Instant::now();
    let (_, cov) = train_toy_gan(&ring, &cfg, 0, &mut |_| {}).expect("training failed");
    println!(
        "{cfg:?} std {}\nmodes covered {}/8, high-quality share {:.3}, per mode {:?}, {:.1}s",
        ring.std,
        cov.covered,
        cov.high_quality,
        cov.counts,
        t.elapsed().as_secs_f64()
    );
}
