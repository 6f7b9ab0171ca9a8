//! Trains the toy GAN on 8 Gaussians on a ring and prints mode coverage:
//! `cargo run --release -p saddle-gan --example ring -- [steps] [seed]`
use saddle_gan::data::Mixture2d;
use saddle_gan::toy::{train_toy_gan, ToyConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut cfg = ToyConfig::default();
    if let Some(s) = args.get(1) {
        cfg.steps = s.parse().expect("steps");
    }
    if let Some(s) = args.get(2) {
        cfg.seed = s.parse().expect("seed");
    }
    let ring = Mixture2d::ring(8, 2.0, 0.02);
    let t = std::time::Instant::now();
    let (_, cov) = train_toy_gan(&ring, &cfg).expect("training failed");
    println!(
        "{cfg:?}\nmodes covered {}/8, high-quality share {:.3}, per mode {:?}, {:.1}s",
        cov.covered,
        cov.high_quality,
        cov.counts,
        t.elapsed().as_secs_f64()
    );
}
