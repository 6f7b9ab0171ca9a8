//! Times loading MNIST-format data (IDX, gzipped or raw) into an `ImageDataset`, the issue's
//! "under a second" check:
//! `cargo run --release -p saddle-gan --example load_mnist -- [dir] [repeats]`
//! (default dir: the shared dataset store's mnist folder beside the repository).
use saddle_gan::data::{ImageDataset, Split};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    // Display, not Debug: a bad file is reported as "path: problem".
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/mnist")
    });
    let repeats: usize = args.next().map_or(Ok(5), |s| s.parse())?;
    for split in [Split::Train, Split::Test] {
        let mut times = Vec::new();
        let mut n = 0;
        for _ in 0..repeats.max(1) {
            let t = Instant::now();
            n = ImageDataset::mnist(&dir, split)?.n;
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{split:?}: {n} images from {}, best {:.3} s, median {:.3} s over {} loads",
            dir.display(),
            times[0],
            times[times.len() / 2],
            times.len()
        );
    }
    Ok(())
}
