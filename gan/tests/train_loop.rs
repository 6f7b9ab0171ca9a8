//! The shared training loop end to end on a tiny DCGAN and the embedded digits: an interrupted
//! and resumed run ends bit-identical to an uninterrupted one; a diverging run stops with a
//! clear error and keeps its last good checkpoint; the best checkpoint follows the metric's
//! direction; the run folder holds what it promises.

mod tiny_run;

use saddle_gan::data::{ImageDataset, Loader, Scale};
use saddle_gan::models::dcgan::{DcganConfig, DcganTrainer};
use saddle_gan::run::{
    train, BoxError, Evaluation, GanModel, LoopOptions, Outcome, RunDir, StopFlag,
};
use saddle_nn::engine::{Rng, Tensor};
use saddle_nn::{Checkpoint, CheckpointError, ModuleExt};
use serde_json::json;
use std::path::{Path, PathBuf};
use tiny_run::{digits16, loop_options, tiny};

fn options(steps: u64) -> LoopOptions {
    loop_options(steps, 2, 2)
}

fn temp_dir(name: &str) -> PathBuf {
    tiny_run::temp_dir("loop", name)
}

/// Runs (or resumes) `steps` steps in `dir`, raising the stop flag after `stop_after` steps.
fn run(
    dir: &Path,
    data: &ImageDataset,
    cfg: DcganConfig,
    steps: u64,
    resume: bool,
    stop_after: Option<u64>,
) -> Result<Outcome, Box<dyn std::error::Error + Send + Sync>> {
    run_evaluated(dir, data, cfg, steps, resume, stop_after, None)
}

/// [`run`] with `evaluation`, if given.
fn run_evaluated(
    dir: &Path,
    data: &ImageDataset,
    cfg: DcganConfig,
    steps: u64,
    resume: bool,
    stop_after: Option<u64>,
    evaluation: Option<Evaluation<'_, DcganTrainer>>,
) -> Result<Outcome, Box<dyn std::error::Error + Send + Sync>> {
    let config = json!({"model": "dcgan-test"});
    let mut model = DcganTrainer::new(cfg, &mut Rng::new(7)).unwrap();
    let mut loader = Loader::new(data, 16, 11, Scale::MinusOneToOne).unwrap();
    let mut dir_handle = if resume {
        RunDir::resume(dir).unwrap().0
    } else {
        RunDir::create(dir, &config).unwrap()
    };
    let stop = StopFlag::new();
    let stopper = stop.clone();
    train(
        &mut model,
        &mut loader,
        &mut dir_handle,
        &options(steps),
        &config,
        evaluation,
        resume,
        &stop,
        &mut |p| {
            if Some(p.step) == stop_after {
                stopper.request_stop();
            }
        },
    )
}

fn tensors(path: &Path) -> Vec<(String, Vec<f64>)> {
    let ck = Checkpoint::load(path).unwrap();
    let mut names: Vec<String> = ck.names().map(str::to_string).collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let v = ck.tensor(&n).unwrap().to_vec_f64().unwrap();
            (n, v)
        })
        .collect()
}

#[test]
fn interrupted_and_resumed_run_matches_an_uninterrupted_one() {
    let data = digits16();
    let straight = temp_dir("straight");
    assert_eq!(
        run(&straight, &data, tiny(), 5, false, None).unwrap(),
        Outcome::Finished { step: 5 }
    );
    let broken = temp_dir("broken");
    assert_eq!(
        run(&broken, &data, tiny(), 5, false, Some(3)).unwrap(),
        Outcome::Interrupted { step: 3 }
    );
    assert_eq!(
        run(&broken, &data, tiny(), 5, true, None).unwrap(),
        Outcome::Finished { step: 5 }
    );
    let a = tensors(&straight.join("checkpoints/latest.safetensors"));
    let b = tensors(&broken.join("checkpoints/latest.safetensors"));
    assert!(a.len() > 10);
    assert_eq!(a, b, "resumed run must be bit-identical");

    // One metrics line per step, none duplicated by the resume.
    let steps: Vec<u64> = saddle_gan::run::read_metrics(&broken.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, vec![1, 2, 3, 4, 5]);
    // Grids at steps 0, 2, 4 and the final 5; a report.
    for s in [0, 2, 4, 5] {
        assert!(
            broken.join(format!("samples/step_{s:06}.png")).exists(),
            "grid {s}"
        );
    }
    let report = std::fs::read_to_string(broken.join("report.html")).unwrap();
    assert!(report.contains("d_loss") && report.contains("data:image/png;base64,"));
    for d in [straight, broken] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// An evaluation after every step whose metric `score` takes the values NaN, 2, 1, 3, 1.5 in
/// turn: a lower-is-better run keeps step 3's checkpoint as its best, a higher-is-better one
/// step 4's, and neither the unscored (NaN) first step's. Fails on the direction ignored or
/// inverted in the loop's comparison, on every evaluation replacing the best checkpoint, and on
/// a NaN taken as a best.
#[test]
fn the_metric_direction_decides_which_checkpoint_is_kept_as_best() {
    let data = digits16();
    for (higher_is_better, best_step, best) in [(false, "3", 1.0), (true, "4", 3.0)] {
        let dir = temp_dir(&format!("best-{higher_is_better}"));
        let mut scores = [f64::NAN, 2.0, 1.0, 3.0, 1.5].into_iter();
        let evaluation = Evaluation {
            every: 1,
            run: Box::new(move |_: &mut DcganTrainer| {
                Ok(vec![("score".to_string(), scores.next().unwrap())])
            }),
            key: "score".into(),
            higher_is_better,
        };
        run_evaluated(&dir, &data, tiny(), 5, false, None, Some(evaluation)).unwrap();
        let ck = Checkpoint::load(dir.join("checkpoints/best.safetensors")).unwrap();
        assert_eq!(ck.meta("run.step"), Some(best_step), "{higher_is_better}");
        assert_eq!(ck.meta("run.best"), Some(best.to_string().as_str()));
        // The latest checkpoint carries the same best forward for a resumed run.
        let latest = Checkpoint::load(dir.join("checkpoints/latest.safetensors")).unwrap();
        assert_eq!(latest.meta("run.best"), Some(best.to_string().as_str()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// How [`Failing`] goes wrong.
#[derive(Clone, Copy)]
enum Fault {
    /// Its reported G loss turns NaN.
    NanLoss,
    /// G's first weight turns NaN after the update; the losses stay finite.
    NanWeight,
}

/// A DCGAN that goes wrong with `fault` at step `at`.
struct Failing {
    inner: DcganTrainer,
    step: u64,
    at: u64,
    fault: Fault,
}

impl GanModel for Failing {
    fn train_step(
        &mut self,
        real: &Tensor,
        labels: Option<&[usize]>,
        rng: &mut Rng,
    ) -> Result<Vec<(&'static str, Tensor)>, BoxError> {
        self.step += 1;
        let mut losses = self.inner.train_step(real, labels, rng)?;
        if self.step == self.at {
            match self.fault {
                Fault::NanLoss => losses[1].1 = losses[1].1.full_like(f64::NAN)?,
                Fault::NanWeight => {
                    let w = &self.inner.g.named_parameters()[0].1;
                    w.assign(&w.full_like(f64::NAN)?)?;
                }
            }
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
        let mut ck = self.inner.checkpoint();
        ck.set_meta("failing.step", self.step);
        ck
    }
    fn restore(&mut self, ck: &Checkpoint) -> Result<(), CheckpointError> {
        self.inner.restore(ck)
    }
}

/// Trains a tiny DCGAN in `dir` with a checkpoint every `checkpoint_every` steps, going wrong
/// with `fault` at step 3; checks that the run stops with an error and keeps the checkpoint of
/// `kept` as its latest, and returns the error.
fn train_until_error(dir: &Path, fault: Fault, checkpoint_every: u64, kept: u64) -> String {
    let mut model = Failing {
        inner: DcganTrainer::new(tiny(), &mut Rng::new(7)).unwrap(),
        step: 0,
        at: 3,
        fault,
    };
    let data = digits16();
    let config = json!({"model": "dcgan-test"});
    let mut loader = Loader::new(&data, 16, 11, Scale::MinusOneToOne).unwrap();
    let mut run_dir = RunDir::create(dir, &config).unwrap();
    let opts = LoopOptions {
        checkpoint_every,
        ..options(6)
    };
    let err = train(
        &mut model,
        &mut loader,
        &mut run_dir,
        &opts,
        &config,
        None,
        false,
        &StopFlag::new(),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    let ck = Checkpoint::load(dir.join("checkpoints/latest.safetensors")).unwrap();
    assert_eq!(
        ck.meta("run.step"),
        Some(kept.to_string().as_str()),
        "{err}"
    );
    err
}

#[test]
fn a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let dir = temp_dir("nan-loss");
    let err = train_until_error(&dir, Fault::NanLoss, 1, 2);
    assert!(err.contains("diverged at step 3: g_loss = NaN"), "{err}");
    assert!(
        err.contains("the last good checkpoint, of step 2, is kept"),
        "{err}"
    );
    assert!(std::fs::read_to_string(dir.join("report.html"))
        .unwrap()
        .contains("diverged"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn non_finite_weights_are_never_checkpointed() {
    // Finite losses do not prove finite weights: poison a weight after step 3's update.
    let dir = temp_dir("nan-weights");
    let err = train_until_error(&dir, Fault::NanWeight, 1, 2);
    assert!(
        err.contains("diverged at step 3: tensor `g.0.weight`"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 14.5: a run that diverged before its first periodic checkpoint left a folder with no
/// checkpoint (it could not be resumed, nor reused as --out) while the message claimed a last
/// good checkpoint was kept. The start is checkpointed: the message names step 0 and the run
/// resumes from it.
#[test]
fn a_divergence_before_the_first_checkpoint_can_be_resumed_from_the_start() {
    let dir = temp_dir("nan-early");
    let err = train_until_error(&dir, Fault::NanLoss, 5, 0);
    assert!(
        err.contains("the last good checkpoint, of step 0, is kept"),
        "{err}"
    );
    assert_eq!(
        run(&dir, &digits16(), tiny(), 4, true, None).unwrap(),
        Outcome::Finished { step: 4 }
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 14.11: a checkpoint with a bad data position failed the resume with 'malformed data
/// position ""' alone, naming neither the file nor the entry.
#[test]
fn a_bad_data_position_names_the_checkpoint_and_the_entry() {
    let dir = temp_dir("bad-position");
    run(&dir, &digits16(), tiny(), 2, false, None).unwrap();
    let path = dir.join("checkpoints/latest.safetensors");
    let mut ck = Checkpoint::load(&path).unwrap();
    ck.set_meta("run.data_position", "garbage");
    ck.save(&path).unwrap();
    let err = run(&dir, &digits16(), tiny(), 4, true, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("latest.safetensors")
            && err.contains("`run.data_position`")
            && err.contains("\"garbage\""),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run killed after creating its folder but before its step-0 checkpoint (the soak script's
/// SIGKILLs found the window) could neither be resumed nor started again in its folder: a
/// resume without a checkpoint starts from step 0, and its log holds the new run only.
#[test]
fn a_run_killed_before_its_first_checkpoint_resumes_from_step_zero() {
    let dir = temp_dir("no-checkpoint");
    let mut created = RunDir::create(&dir, &json!({"model": "dcgan-test"})).unwrap();
    let mut stale = serde_json::Map::new();
    stale.insert("step".into(), 7.into());
    created.log(&stale).unwrap();
    drop(created);
    assert_eq!(
        run(&dir, &digits16(), tiny(), 3, true, None).unwrap(),
        Outcome::Finished { step: 3 }
    );
    let steps: Vec<u64> = saddle_gan::run::read_metrics(&dir.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [1, 2, 3]);
    std::fs::remove_dir_all(&dir).unwrap();
}
