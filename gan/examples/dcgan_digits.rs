//! A small DCGAN trained on the 1797 embedded 8×8 UCI digits (upscaled ×2 to 16×16) on the CPU;
//! prints the losses and writes a grid of samples from a fixed noise batch, plus a grid of real
//! digits beside it for comparison:
//! `cargo run --release -p saddle-gan --example dcgan_digits -- [out.png] [steps] [seed]`
//! (defaults: runs/dcgan-digits/samples.png, 1500 steps (about 53 epochs, one to two minutes),
//! seed 0). A step count rather than a time budget, so a seed gives the same grid everywhere.
//! dcgan_digits.png beside this file is the grid of the default run (1500 steps, seed 0).
use saddle_gan::data::{ImageDataset, Loader, Scale};
use saddle_gan::models::dcgan::{DcganConfig, DcganTrainer};
use saddle_gan::plot::save_image_grid;
use saddle_nn::engine::{no_grad, DType, Device, Rng, Tensor};
use saddle_nn::Module;
use std::path::PathBuf;
use std::time::Instant;

const BATCH: usize = 64;
const UPSCALE: usize = 2;

fn main() {
    // Display, not Debug: a bad file is reported as "path: problem".
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = PathBuf::from(
        args.first()
            .map_or("runs/dcgan-digits/samples.png", String::as_str),
    );
    let steps: usize = args.get(1).map_or(Ok(1500), |s| s.parse())?;
    let seed: u64 = args.get(2).map_or(Ok(0), |s| s.parse())?;

    let digits = ImageDataset::digits()?;
    let cfg = DcganConfig::digits16();
    let mut rng = Rng::new(seed);
    let mut trainer = DcganTrainer::new(cfg, &mut rng)?;
    let mut loader = Loader::new(&digits, BATCH, seed, Scale::MinusOneToOne)?;
    let fixed_noise = Tensor::randn(
        &[BATCH, cfg.nz, 1, 1],
        0.0,
        1.0,
        DType::F32,
        Device::Cpu,
        &mut Rng::new(seed ^ 0x5eed),
    )?;
    println!(
        "DCGAN {cfg:?} on {} digits ({}x{} shown at {s}x{s}), batch {BATCH}, {steps} steps",
        digits.n,
        digits.height,
        digits.width,
        s = digits.height * UPSCALE
    );

    let start = Instant::now();
    let (mut sum_d, mut sum_g, mut window) = (0.0, 0.0, 0usize);
    for step in 1..=steps {
        let real = loader.next_batch()?.images.upsample_nearest2d(UPSCALE)?;
        let (loss_d, loss_g) = trainer.step(&real, &mut rng)?;
        if !(loss_d.is_finite() && loss_g.is_finite()) {
            return Err(format!("step {step}: non-finite loss (D {loss_d}, G {loss_g})").into());
        }
        (sum_d, sum_g, window) = (sum_d + loss_d, sum_g + loss_g, window + 1);
        if step % 200 == 0 {
            println!(
                "step {step:5}  epoch {:3}  loss D {:.3}  loss G {:.3}  ({:.1} s)",
                loader.epoch(),
                sum_d / window as f64,
                sum_g / window as f64,
                start.elapsed().as_secs_f64()
            );
            (sum_d, sum_g, window) = (0.0, 0.0, 0);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{steps} steps in {elapsed:.1} s ({:.1} ms/step, {:.1} epochs)",
        1e3 * elapsed / steps.max(1) as f64,
        (steps * BATCH) as f64 / digits.n as f64
    );

    // Eval mode: batch norm uses the running statistics gathered in training, so a sample does
    // not depend on the rest of its batch.
    trainer.g.set_training(false);
    let samples = no_grad(|| trainer.g.forward(&fixed_noise))?;
    save_image_grid(&out, &samples, 8, (-1.0, 1.0), 3)?;
    let real_path = out.with_file_name("real.png");
    let real = Loader::new(&digits, BATCH, seed, Scale::MinusOneToOne)?.next_batch()?;
    save_image_grid(
        &real_path,
        &real.images.upsample_nearest2d(UPSCALE)?,
        8,
        (-1.0, 1.0),
        3,
    )?;
    println!(
        "samples: {}  real digits: {}",
        out.display(),
        real_path.display()
    );
    Ok(())
}
