//! Open a run folder written by `saddle train ...`, load its generator from a checkpoint and
//! write a grid of samples as a PNG.
//!
//! Run: `cargo run --release --example sample_from_run -- RUN_DIR [OUT.png]`.
//! With no RUN_DIR it first trains a short DCGAN on the embedded 8x8 digits (what
//! `saddle train dcgan --steps 300` does) into a temporary folder, so it runs anywhere.

use clap::Parser;
use saddle::cli::BoxError;
use saddle::sample::load_run_model;
use saddle::train::Model;
use saddle_engine::{no_grad, Rng};
use saddle_gan::plot::save_image_grid;
use std::path::PathBuf;

/// `saddle train`'s models, parsed from a command line as the `saddle` binary does.
#[derive(Parser)]
struct Train {
    #[command(subcommand)]
    model: Model,
}

fn main() {
    if let Err(e) = sample_from_run() {
        eprintln!("sample_from_run: {e}");
        std::process::exit(1);
    }
}

fn sample_from_run() -> Result<(), BoxError> {
    let mut args = std::env::args_os().skip(1);
    let run = match args.next() {
        Some(dir) => PathBuf::from(dir),
        None => {
            let dir =
                std::env::temp_dir().join(format!("saddle-example-run-{}", std::process::id()));
            let out = dir.to_string_lossy().into_owned();
            println!("no run folder given: training a short DCGAN into {out}");
            let train = Train::try_parse_from(["train", "dcgan", "--steps", "300", "--out", &out])?;
            saddle::train::run(train.model)?;
            dir
        }
    };
    let out = args
        .next()
        .map_or_else(|| run.join("example-grid.png"), PathBuf::from);

    // The model the run's config.json describes, with the weights of its latest checkpoint
    // (`best` and a .safetensors path work too).
    let mut model = load_run_model(&run, "latest")?;
    let mut rng = Rng::new(0);
    // A class-conditional model (BigGAN) gets its classes in turn; the others take no labels.
    let labels: Option<Vec<usize>> = model
        .num_classes()
        .map(|c| (0..64).map(|i| i % c).collect());
    let images = no_grad(|| -> Result<_, BoxError> {
        let z = model.sample_latent(64, &mut rng)?;
        model.generate_labelled(&z, labels.as_deref())
    })?;
    println!("samples: {:?} in {:?}", images.shape(), model.value_range());
    save_image_grid(&out, &images, 8, model.value_range(), 2)?;
    println!("wrote {}", out.display());
    Ok(())
}
