//! Shared by the training-loop tests: a tiny DCGAN on the embedded digits, the loop's options
//! and a scratch folder.

use saddle_gan::data::ImageDataset;
use saddle_gan::models::dcgan::DcganConfig;
use saddle_gan::run::LoopOptions;
use std::path::PathBuf;

/// A DCGAN small enough for a step in milliseconds, on 16x16 digits.
pub fn tiny() -> DcganConfig {
    DcganConfig {
        nz: 8,
        ngf: 4,
        ndf: 4,
        ..DcganConfig::digits16()
    }
}

/// The embedded 8x8 digits padded to 16x16.
#[allow(dead_code)] // not every test file trains on them
pub fn digits16() -> ImageDataset {
    ImageDataset::digits().unwrap().pad_to(16).unwrap()
}

/// Options logging every step, with grids and checkpoints at the given intervals.
pub fn loop_options(steps: u64, sample_every: u64, checkpoint_every: u64) -> LoopOptions {
    LoopOptions {
        steps,
        log_every: 1,
        sample_every,
        checkpoint_every,
        grid_count: 4,
        grid_rows: 2,
        grid_upscale: 2,
        seed: 3,
        title: "test".into(),
        resume_changes: Default::default(),
    }
}

/// An empty scratch path `saddle-<tag>-<name>-<pid>` in the temporary folder (not created).
pub fn temp_dir(tag: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("saddle-{tag}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
