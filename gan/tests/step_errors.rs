//! Issue 14, "GPU faults": a training step that fails (here with the engine's out-of-memory
//! error, as a device allocation that cannot be served raises it) ends the run with that error,
//! word for word and still typed, and leaves the latest checkpoint exactly as the last
//! checkpoint step wrote it: loadable, and a run resumes from it to the end.

mod tiny_run;

use saddle_gan::data::{Loader, Scale};
use saddle_gan::models::dcgan::DcganTrainer;
use saddle_gan::run::{
    train, BoxError, GanModel, LoopOptions, Outcome, Progress, RunDir, StopFlag,
};
use saddle_nn::engine::{Error, OutOfMemory, Rng, Tensor};
use saddle_nn::{Checkpoint, CheckpointError};
use serde_json::json;
use std::path::{Path, PathBuf};
use tiny_run::{loop_options, tiny};

fn options(steps: u64, checkpoint_every: u64) -> LoopOptions {
    loop_options(steps, 100, checkpoint_every)
}

fn temp_dir(name: &str) -> PathBuf {
    tiny_run::temp_dir("steperr", name)
}

/// What a conv2d that cannot get its output buffer reports.
fn out_of_memory() -> Error {
    Error::OutOfMemory {
        op: "conv2d",
        oom: OutOfMemory {
            device: 0,
            requested: 3 << 29,
            in_use: 78 << 30,
            released: 1 << 30,
            device_memory: Some((200 << 20, 80 << 30)),
        },
    }
}

/// A tiny DCGAN whose step `fail_at` runs out of device memory half-way: its update has changed
/// the weights in memory when the error comes, as an allocation failing between D's and G's
/// updates would leave them.
struct OutOfMemoryAt {
    inner: DcganTrainer,
    step: u64,
    fail_at: u64,
}

impl GanModel for OutOfMemoryAt {
    fn train_step(
        &mut self,
        real: &Tensor,
        labels: Option<&[usize]>,
        rng: &mut Rng,
    ) -> Result<Vec<(&'static str, Tensor)>, BoxError> {
        self.step += 1;
        let losses = self.inner.train_step(real, labels, rng)?;
        if self.step == self.fail_at {
            return Err(out_of_memory().into());
        }
        Ok(losses)
    }
    fn sample_latent(&self, n: usize, rng: &mut Rng) -> Result<Tensor, BoxError> {
        self.inner.sample_latent(n, rng)
    }
    fn generate(&mut self, z: &Tensor) -> Result<Tensor, BoxError> {
        self.inner.generate(z)
    }
    fn value_range(&self) -> (f32, f32) {
        self.inner.value_range()
    }
    fn checkpoint(&self) -> Checkpoint {
        self.inner.checkpoint()
    }
    fn restore(&mut self, ck: &Checkpoint) -> Result<(), CheckpointError> {
        self.inner.restore(ck)
    }
}

fn latest(dir: &Path) -> PathBuf {
    dir.join("checkpoints/latest.safetensors")
}

/// Trains `model` on the digits in a new run folder `dir` (or resumes the run there).
fn run_in<M: GanModel>(
    dir: &Path,
    model: &mut M,
    opts: &LoopOptions,
    resume: bool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Outcome, BoxError> {
    let data = tiny_run::digits16();
    let config = json!({"model": "dcgan-test"});
    let mut loader = Loader::new(&data, 16, 11, Scale::MinusOneToOne)?;
    let mut run = if resume {
        RunDir::resume(dir)?.0
    } else {
        RunDir::create(dir, &config)?
    };
    train(
        model,
        &mut loader,
        &mut run,
        opts,
        &config,
        None,
        resume,
        &StopFlag::new(),
        progress,
    )
}

/// Trains 6 steps with a checkpoint every `checkpoint_every`, out of memory at step `fail_at`;
/// checks the run ends with that error and keeps, byte for byte, the checkpoint written at step
/// `kept`, then resumes from it to step 6.
fn check_stop_keeps_checkpoint(name: &str, fail_at: u64, checkpoint_every: u64, kept: u64) {
    let dir = temp_dir(name);
    let opts = options(6, checkpoint_every);
    let mut model = OutOfMemoryAt {
        inner: DcganTrainer::new(tiny(), &mut Rng::new(7)).unwrap(),
        step: 0,
        fail_at,
    };
    // The checkpoint's bytes as they were right after step `kept` (progress is reported after
    // a step's checkpoint; the start's, step 0, is checked by its step counter only).
    let mut written = None;
    let err = run_in(&dir, &mut model, &opts, false, &mut |p| {
        if p.step == kept {
            written = Some(std::fs::read(latest(&dir)).unwrap());
        }
    })
    .unwrap_err();

    // The step's error comes out as it went in: typed, and with its text unchanged.
    assert_eq!(err.to_string(), out_of_memory().to_string());
    assert!(
        err.to_string().starts_with(
            "conv2d: out of GPU memory on cuda:0: 1.50 GiB asked, 78.00 GiB in use by saddle"
        ),
        "{err}"
    );
    assert_eq!(err.downcast_ref::<Error>(), Some(&out_of_memory()));

    // The latest checkpoint is the last checkpoint step's, untouched, and loads.
    assert_eq!(written.is_some(), kept > 0);
    if let Some(bytes) = &written {
        assert!(
            std::fs::read(latest(&dir)).unwrap() == *bytes,
            "the latest checkpoint changed after step {kept}"
        );
    }
    let ck = Checkpoint::load(latest(&dir)).unwrap();
    assert_eq!(ck.meta("run.step"), Some(kept.to_string().as_str()));
    // No half-written checkpoint lies beside it.
    let mut files: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["latest.safetensors"]);

    // The run resumes from it and finishes.
    let mut model = DcganTrainer::new(tiny(), &mut Rng::new(7)).unwrap();
    let outcome = run_in(&dir, &mut model, &opts, true, &mut |_| {}).unwrap();
    assert_eq!(outcome, Outcome::Finished { step: 6 });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn out_of_memory_between_checkpoints_keeps_the_last_one() {
    check_stop_keeps_checkpoint("between", 5, 2, 4);
}

#[test]
fn out_of_memory_at_a_checkpoint_step_keeps_the_one_before() {
    // Step 4 would have written a checkpoint: its failure leaves step 2's.
    check_stop_keeps_checkpoint("at-checkpoint", 4, 2, 2);
}

#[test]
fn out_of_memory_at_the_first_step_keeps_the_start() {
    check_stop_keeps_checkpoint("first-step", 1, 3, 0);
}
