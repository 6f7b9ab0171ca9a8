//! `saddle train ...`: training jobs. Today the toy GAN on a 2-D Gaussian mixture; the papers'
//! models (GAN 2014, DCGAN, EBGAN, ...) arrive with the reproduction issues.

use clap::Subcommand;
use saddle_gan::data::Mixture2d;
use saddle_gan::plot::scatter_png;
use saddle_gan::toy::{train_toy_gan, ToyConfig};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Subcommand, Clone, Debug)]
pub enum Model {
    /// A GAN on 8 Gaussians on a ring (data generated in the program): prints progress and
    /// mode coverage, writes a scatter plot of samples.
    Ring {
        #[arg(long, default_value_t = ToyConfig::default().steps)]
        steps: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value_t = ToyConfig::default().batch)]
        batch_size: usize,
        /// Standard deviation of each Gaussian.
        #[arg(long, default_value_t = 0.05)]
        std: f64,
        /// Folder for the outputs.
        #[arg(long, default_value = "runs/ring")]
        out: PathBuf,
    },
}

pub fn run(model: Model) -> Result<(), Box<dyn std::error::Error>> {
    match model {
        Model::Ring {
            steps,
            seed,
            batch_size,
            std,
            out,
        } => {
            let ring = Mixture2d::ring(8, 2.0, std);
            let cfg = ToyConfig {
                steps,
                seed,
                batch: batch_size,
                ..ToyConfig::default()
            };
            println!("saddle: training a GAN on 8 Gaussians on a ring (std {std}) for {steps} steps, batch {batch_size}, on the CPU");
            let start = Instant::now();
            let (points, cov) = train_toy_gan(&ring, &cfg, (steps / 10).max(1), &mut |p| {
                let rate = p.step as f64 / start.elapsed().as_secs_f64();
                let eta = (steps - p.step) as f64 / rate;
                println!("  step {:>6}/{steps}  loss D {:.4}  loss G {:.4}  {rate:.0} steps/s  ETA {eta:.0} s", p.step, p.loss_d, p.loss_g);
            })?;
            let png = out.join("samples.png");
            scatter_png(&points, &ring.centers, 3.0, 512, &png)?;
            println!(
                "modes covered: {}/8, high-quality samples: {:.1}% (within 3 std of a mode), per mode {:?}",
                cov.covered,
                100.0 * cov.high_quality,
                cov.counts
            );
            println!(
                "samples plotted in {} ({:.1} s)",
                png.display(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
