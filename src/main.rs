//! The `saddle` command line: benchmarks and the first training job; the papers' models,
//! sampling and evaluation arrive with the GAN issues.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use saddle::{bench, eval, grid, probe, sample, train};

#[derive(Parser)]
#[command(
    name = "saddle",
    version,
    about = "GAN toolkit on a from-scratch tensor engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    limits: saddle::cli::DataLimitArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Time the engine's kernels (median of several runs).
    Bench {
        #[command(subcommand)]
        what: bench::Suite,
    },
    /// Train a model.
    Train {
        #[command(subcommand)]
        what: train::Model,
    },
    /// Write samples of a trained run as PNG files (and .npy), or an interpolation grid.
    Sample(sample::SampleArgs),
    /// Score a trained run (classifier-feature FID/KID, Inception-style score, I').
    Eval(eval::EvalArgs),
    /// EBGAN's MNIST grid search, reduced: train configurations drawn from the paper's grid for
    /// a few steps each, score them with I', and plot the distribution per family.
    Grid(grid::GridArgs),
    /// Linear probe on a DCGAN discriminator's features vs a random D (few labels).
    Probe(probe::ProbeArgs),
}

fn main() {
    let matches = Cli::command().get_matches();
    // Which flags were typed, not defaulted: a resumed run applies or refuses each of them.
    saddle::resume::record_given_flags(&matches);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    saddle::cli::set_data_limits(&cli.limits);
    saddle::allocator::retain_freed_memory();
    let result = match cli.command {
        Command::Bench { what } => bench::run(what),
        Command::Train { what } => train::run(what).map_err(|e| e as Box<dyn std::error::Error>),
        Command::Probe(args) => probe::probe(args).map_err(|e| e as Box<dyn std::error::Error>),
        Command::Grid(args) => grid::grid(args).map_err(|e| e as Box<dyn std::error::Error>),
        Command::Eval(args) => eval::eval(args).map_err(|e| e as Box<dyn std::error::Error>),
        Command::Sample(args) => sample::sample(args).map_err(|e| e as Box<dyn std::error::Error>),
    };
    if let Err(e) = result {
        eprintln!("saddle: {e}");
        std::process::exit(1);
    }
}
