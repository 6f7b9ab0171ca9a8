//! The training loop every model shares: steps, logging, fixed-noise sample grids, checkpoints
//! (latest + best), periodic evaluation, interruption and divergence handling, and the report.
//!
//! A model plugs in through [`GanModel`], its data through [`BatchSource`]. Everything the loop
//! needs to continue bit-identically is in the latest checkpoint: the model (parameters, buffers,
//! optimiser state), the training RNG, the data position, the step and the fixed noise.

use super::dir::{RunDir, RunError};
use super::guard::{check_finite, DivergedError, StopFlag};
use super::labels::grid_labels;
use super::prefetch::with_prefetch;
use super::report::write_report;
use crate::models::read_scalars;
use crate::plot::save_image_grid;
use saddle_nn::engine::{no_grad, Device, Rng, Tensor};
use saddle_nn::{Checkpoint, CheckpointError};
use serde_json::{Map, Value};
use std::time::Instant;

/// The loop's error type: any error of the engine, the data, the run folder or a model.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A GAN as the loop sees it.
pub trait GanModel {
    /// One training iteration (the model's D and G updates) on a batch of real images in the
    /// model's value range; returns the named losses to log as one-element tensors on the
    /// model's device, not yet read: the loop reads them only when it logs (on a GPU each read
    /// waits for the step's queued work). `rng` is the loop's generator (saved in checkpoints);
    /// a model that keeps its own generators (and saves them in [`GanModel::checkpoint`]) may
    /// ignore it.
    fn train_step(
        &mut self,
        real: &Tensor,
        labels: Option<&[usize]>,
        rng: &mut Rng,
    ) -> Result<Vec<(&'static str, Tensor)>, BoxError>;
    /// Fresh latent codes for `n` samples.
    fn sample_latent(&self, n: usize, rng: &mut Rng) -> Result<Tensor, BoxError>;
    /// Images `[N, C, H, W]` from latent codes, in inference mode (no gradients, eval-mode
    /// layers), leaving the model in training mode afterwards.
    fn generate(&mut self, z: &Tensor) -> Result<Tensor, BoxError>;
    /// The number of classes of a class-conditional model; `None` (the default) for an
    /// unconditional one. The loop draws a conditional model's sample grid one class per row
    /// through [`GanModel::generate_labelled`].
    fn num_classes(&self) -> Option<usize> {
        None
    }
    /// Images from latent codes and, for a conditional model, one class label per code, as
    /// [`GanModel::generate`]. The default, for unconditional models, is `generate(z)` without
    /// labels and an error naming the model when given labels.
    fn generate_labelled(
        &mut self,
        z: &Tensor,
        labels: Option<&[usize]>,
    ) -> Result<Tensor, BoxError> {
        match labels {
            None => self.generate(z),
            Some(labels) => Err(format!(
                "{} is unconditional: it takes no class labels (given {})",
                std::any::type_name::<Self>(),
                labels.len()
            )
            .into()),
        }
    }
    /// The range of generated pixel values, e.g. (-1, 1) for tanh outputs.
    fn value_range(&self) -> (f32, f32);
    /// Everything needed to resume: modules, optimisers, the model's own generators.
    fn checkpoint(&self) -> Checkpoint;
    /// Restores what [`GanModel::checkpoint`] stored.
    fn restore(&mut self, ck: &Checkpoint) -> Result<(), CheckpointError>;
    /// Reconstructions `G(E(x))` of real images `x` (in the model's value range), for a model
    /// with an encoder (BigBiGAN); the default refuses.
    fn reconstruct(&mut self, x: &Tensor) -> Result<Tensor, BoxError> {
        Err(format!(
            "{} has no encoder: it cannot reconstruct images (given {:?})",
            std::any::type_name::<Self>(),
            x.shape()
        )
        .into())
    }
    /// Real images whose reconstructions the loop saves beside each sample grid (a model with
    /// an encoder that was given some); none by default.
    fn reconstruction_source(&self) -> Option<&Tensor> {
        None
    }
    /// Where the model trains: the loop moves each batch there ahead of its step.
    fn device(&self) -> Device {
        Device::Cpu
    }
    /// Moves the model to `device` (before training or restoring). The default is for models
    /// that train on the CPU only: it refuses any other device.
    fn to_device(&mut self, device: Device) -> Result<(), BoxError> {
        if device.is_cpu() {
            Ok(())
        } else {
            Err(format!("this model trains on the CPU only, not on {device}").into())
        }
    }
}

/// Where batches come from; its position is part of a checkpoint.
pub trait BatchSource {
    /// The next batch of real images (and labels when the data has them).
    fn next_batch(&mut self) -> Result<(Tensor, Option<Vec<usize>>), BoxError>;
    /// The position to save, as a string (e.g. "epoch index").
    fn position(&self) -> String;
    /// Restores a position saved by [`BatchSource::position`].
    fn set_position(&mut self, position: &str) -> Result<(), BoxError>;
}

/// An evaluation callback: the named metric values of the model.
pub type EvalFn<'a, M> = Box<dyn FnMut(&mut M) -> Result<Vec<(String, f64)>, BoxError> + 'a>;

/// What to evaluate and how to rank checkpoints: called with the model at `eval_every` steps.
pub struct Evaluation<'a, M: ?Sized> {
    /// Steps between evaluations (the last step is always evaluated).
    pub every: u64,
    /// Returns the named metric values; the one named `key` ranks checkpoints.
    pub run: EvalFn<'a, M>,
    /// The metric that decides which checkpoint is `best`.
    pub key: String,
    /// Whether a larger `key` is better (a score) rather than a smaller one (a distance).
    pub higher_is_better: bool,
}

/// Intervals and sizes of a run. Each interval also fires at the last step.
#[derive(Clone, Debug)]
pub struct LoopOptions {
    /// The step to train to (a resumed run continues up to it).
    pub steps: u64,
    /// Steps between lines of `metrics.jsonl`.
    pub log_every: u64,
    /// Steps between sample grids.
    pub sample_every: u64,
    /// Steps between writes of the latest checkpoint.
    pub checkpoint_every: u64,
    /// Number of images in the fixed-noise grid.
    pub grid_count: usize,
    /// Images per grid row (the grid's `nrow`). A conditional model's grid shows one class per
    /// row: as many rows as classes, up to the rows `grid_count` fills.
    pub grid_rows: usize,
    /// Pixel upscaling of the grid (small images are hard to see).
    pub grid_upscale: usize,
    /// Seeds the loop's generator and the fixed grid noise.
    pub seed: u64,
    /// The report's title.
    pub title: String,
    /// On a resumed run, the settings its command line changed (name -> `{"from", "to"}`),
    /// logged to metrics.jsonl at the step it resumes from as `{"step", "resumed": {...}}`.
    pub resume_changes: Map<String, Value>,
}

/// Progress reported to the caller (which draws the progress bar).
#[derive(Clone, Debug)]
pub struct Progress {
    /// The step just finished.
    pub step: u64,
    /// The step the run trains to.
    pub total: u64,
    /// The losses as last read: every step on the CPU, on a GPU only at the steps that log,
    /// checkpoint or evaluate.
    pub losses: Vec<(&'static str, f64)>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Reached [`LoopOptions::steps`].
    Finished {
        /// The last step trained.
        step: u64,
    },
    /// Stopped by the [`StopFlag`](super::StopFlag), after writing the latest checkpoint.
    Interrupted {
        /// The last step trained (the one the checkpoint holds).
        step: u64,
    },
}

const META_STEP: &str = "run.step";
const META_DATA: &str = "run.data_position";
const META_BEST: &str = "run.best";
const RNG_KEY: &str = "train";
const FIXED_NOISE: &str = "run.fixed_noise";

/// State carried between steps and into checkpoints.
struct LoopState {
    step: u64,
    rng: Rng,
    fixed_noise: Tensor,
    best: Option<f64>,
    last_eval: Vec<(String, f64)>,
    /// The step of the latest checkpoint written or resumed from.
    checkpointed: Option<u64>,
}

/// Trains `model` on `data` in `run` until `opts.steps`, or until `stop` is raised (then the
/// latest checkpoint is written and the run can be resumed). With `resume`, continues from the
/// run's latest checkpoint. Batches are drawn one ahead on a background thread and moved to the
/// model's device there (see [`with_prefetch`](super::with_prefetch)); the sequence of batches
/// is unchanged.
#[allow(clippy::too_many_arguments)]
pub fn train<M: GanModel + ?Sized>(
    model: &mut M,
    data: &mut (dyn BatchSource + Send),
    run: &mut RunDir,
    opts: &LoopOptions,
    config: &Value,
    evaluation: Option<Evaluation<'_, M>>,
    resume: bool,
    stop: &StopFlag,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Outcome, BoxError> {
    let device = model.device();
    with_prefetch(data, device, |data| {
        train_on(
            model, data, run, opts, config, evaluation, resume, stop, progress,
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn train_on<M: GanModel + ?Sized>(
    model: &mut M,
    data: &mut dyn BatchSource,
    run: &mut RunDir,
    opts: &LoopOptions,
    config: &Value,
    mut evaluation: Option<Evaluation<'_, M>>,
    resume: bool,
    stop: &StopFlag,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Outcome, BoxError> {
    // A run killed between creating its folder and writing its step-0 checkpoint has nothing
    // to resume from: it starts again from step 0, its partial log dropped.
    let resume = resume && run.latest_checkpoint().exists();
    if !resume {
        run.drop_metrics_after(0)?;
    }
    let mut state = if resume {
        let ck = Checkpoint::load(run.latest_checkpoint())?;
        model.restore(&ck)?;
        let step_text = ck.meta(META_STEP).unwrap_or("0");
        let step = step_text.parse().map_err(|_| RunError {
            path: run.latest_checkpoint(),
            problem: format!("malformed step counter {step_text:?}"),
        })?;
        // The error names the checkpoint and the entry (the loader's alone names neither).
        let position = ck.meta(META_DATA).ok_or_else(|| RunError {
            path: run.latest_checkpoint(),
            problem: format!("no `{META_DATA}` entry (the data position)"),
        })?;
        data.set_position(position).map_err(|e| RunError {
            path: run.latest_checkpoint(),
            problem: format!("`{META_DATA}`: {e}"),
        })?;
        run.drop_metrics_after(step)?;
        let fixed_noise = ck.tensor(FIXED_NOISE).cloned().ok_or_else(|| RunError {
            path: run.latest_checkpoint(),
            problem: format!("no `{FIXED_NOISE}` tensor"),
        })?;
        LoopState {
            step,
            rng: ck.rng(RNG_KEY)?,
            fixed_noise,
            best: ck.meta(META_BEST).and_then(|b| b.parse().ok()),
            last_eval: Vec::new(),
            checkpointed: Some(step),
        }
    } else {
        // The grid noise has its own stream so it is the same whatever the training consumes.
        let mut noise_rng = Rng::new(opts.seed ^ 0x05ee_d91d);
        LoopState {
            step: 0,
            rng: Rng::new(opts.seed),
            fixed_noise: model.sample_latent(opts.grid_count, &mut noise_rng)?,
            best: None,
            last_eval: Vec::new(),
            checkpointed: None,
        }
    };
    if resume {
        if !opts.resume_changes.is_empty() {
            let mut record = Map::new();
            record.insert("step".into(), state.step.into());
            record.insert("resumed".into(), opts.resume_changes.clone().into());
            run.log(&record)?;
        }
    } else {
        write_grid(model, run, opts, &state)?;
        // A run that diverges before its first periodic checkpoint can still be resumed (with
        // a lower learning rate) from its start.
        save_checkpoint(model, data, run, &mut state, false)?;
    }
    let started = Instant::now();
    let first_step = state.step;
    let device = model.device();
    // The losses as last read (see below).
    let mut losses: Vec<(&'static str, f64)> = Vec::new();
    while state.step < opts.steps {
        if stop.should_stop() {
            save_checkpoint(model, data, run, &mut state, false)?;
            finish(run, opts, config, &state, "interrupted")?;
            return Ok(Outcome::Interrupted { step: state.step });
        }
        let (real, labels) = data.next_batch()?;
        let unread = model.train_step(&real, labels.as_deref(), &mut state.rng)?;
        state.step += 1;
        let step = state.step;
        let due = |every: u64| due(step, every, opts.steps);
        let logs = due(opts.log_every);
        let eval_every = evaluation.as_ref().map(|e| e.every);
        if reads_losses(device.is_cpu(), step, opts, eval_every, stop.should_stop()) {
            let values = read_scalars(&unread.iter().map(|(_, t)| t).collect::<Vec<_>>())?;
            losses = unread.iter().map(|(name, _)| *name).zip(values).collect();
            if let Err(mut diverged) = check_finite(step, &losses) {
                diverged.kept_checkpoint = state.checkpointed;
                finish(run, opts, config, &state, &diverged.to_string())?;
                return Err(diverged.into());
            }
        }
        if logs {
            let mut record = Map::new();
            record.insert("step".into(), step.into());
            let elapsed = started.elapsed().as_secs_f64();
            record.insert("time_s".into(), elapsed.into());
            record.insert(
                "images_per_s".into(),
                ((step - first_step) as f64 * real.shape()[0] as f64 / elapsed.max(1e-9)).into(),
            );
            for (name, v) in &losses {
                record.insert((*name).into(), (*v).into());
            }
            run.log(&record)?;
        }
        if due(opts.sample_every) {
            write_grid(model, run, opts, &state)?;
        }
        if let Some(eval) = evaluation.as_mut() {
            if due(eval.every) {
                let values = (eval.run)(model)?;
                let mut record = Map::new();
                record.insert("step".into(), step.into());
                for (name, v) in &values {
                    record.insert(format!("eval_{name}"), (*v).into());
                }
                run.log(&record)?;
                if let Some((_, v)) = values.iter().find(|(k, _)| *k == eval.key) {
                    let better = match state.best {
                        None => true,
                        Some(b) if eval.higher_is_better => *v > b,
                        Some(b) => *v < b,
                    };
                    if better && v.is_finite() {
                        state.best = Some(*v);
                        save_checkpoint(model, data, run, &mut state, true)?;
                    }
                }
                state.last_eval = values;
            }
        }
        if due(opts.checkpoint_every) {
            save_checkpoint(model, data, run, &mut state, false)?;
        }
        progress(&Progress {
            step,
            total: opts.steps,
            losses: losses.clone(),
        });
    }
    finish(run, opts, config, &state, "finished")?;
    Ok(Outcome::Finished { step: state.step })
}

/// Whether `step` is a multiple of `every` or the last step.
fn due(step: u64, every: u64, last: u64) -> bool {
    step.is_multiple_of(every.max(1)) || step == last
}

/// Whether the loop reads the losses of `step`. Reading waits for the device, so on a GPU they
/// are read only when logged, or before a checkpoint, an evaluation or a stop (a diverged state
/// is never saved); on the CPU reading is free and happens every step, so a divergence is
/// caught at the step it happens.
fn reads_losses(
    on_cpu: bool,
    step: u64,
    opts: &LoopOptions,
    eval_every: Option<u64>,
    stopping: bool,
) -> bool {
    let due = |every: u64| due(step, every, opts.steps);
    on_cpu
        || stopping
        || due(opts.log_every)
        || due(opts.checkpoint_every)
        || eval_every.is_some_and(due)
}

fn write_grid<M: GanModel + ?Sized>(
    model: &mut M,
    run: &RunDir,
    opts: &LoopOptions,
    state: &LoopState,
) -> Result<(), BoxError> {
    // A conditional model's grid: one class per row (as many rows as classes, up to the grid's),
    // from the first of the fixed codes; the labels follow from the options alone, so a resumed
    // run draws the same grid without saving them.
    let images = match model.num_classes() {
        Some(classes) => {
            let labels = grid_labels(opts.grid_count, opts.grid_rows, classes);
            let z = state.fixed_noise.narrow(0, 0, labels.len())?;
            no_grad(|| model.generate_labelled(&z, Some(&labels)))?
        }
        None => no_grad(|| model.generate(&state.fixed_noise))?,
    };
    save_image_grid(
        run.samples_path(state.step),
        &images,
        opts.grid_rows,
        model.value_range(),
        opts.grid_upscale,
    )?;
    if let Some(real) = model.reconstruction_source().cloned() {
        let rebuilt = no_grad(|| model.reconstruct(&real))?;
        let path = run
            .root()
            .join("samples")
            .join(format!("reconstructions_{:06}.png", state.step));
        let per_row = opts.grid_rows;
        save_image_grid(
            path,
            &real_over_reconstruction(&real, &rebuilt, per_row)?,
            per_row,
            model.value_range(),
            opts.grid_upscale,
        )?;
    }
    Ok(())
}

/// Rows of `per_row` real images, each above the row of their reconstructions.
pub fn real_over_reconstruction(
    real: &Tensor,
    rebuilt: &Tensor,
    per_row: usize,
) -> Result<Tensor, BoxError> {
    let n = real.shape().first().copied().unwrap_or(0);
    if rebuilt.shape() != real.shape() || per_row == 0 {
        return Err(format!(
            "reconstructions {:?} do not match the real images {:?}",
            rebuilt.shape(),
            real.shape()
        )
        .into());
    }
    let mut rows = Vec::new();
    for start in (0..n).step_by(per_row) {
        let len = per_row.min(n - start);
        rows.push(real.narrow(0, start, len)?);
        rows.push(rebuilt.narrow(0, start, len)?);
    }
    let rows: Vec<&Tensor> = rows.iter().collect();
    Ok(Tensor::concat(&rows, 0)?)
}

fn save_checkpoint<M: GanModel + ?Sized>(
    model: &M,
    data: &dyn BatchSource,
    run: &RunDir,
    state: &mut LoopState,
    best: bool,
) -> Result<(), BoxError> {
    let mut ck = model.checkpoint();
    // A finite loss does not prove finite weights (the update after it may have overflowed):
    // never let a poisoned state replace a good checkpoint.
    for name in ck.names().map(str::to_string).collect::<Vec<_>>() {
        let values = ck.tensor(&name).expect("listed").to_vec_f64()?;
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(DivergedError {
                step: state.step,
                name: format!("tensor `{name}`"),
                value: *bad,
                kept_checkpoint: state.checkpointed,
            }
            .into());
        }
    }
    ck.set_meta(META_STEP, state.step);
    ck.set_meta(META_DATA, data.position());
    if let Some(b) = state.best {
        ck.set_meta(META_BEST, b);
    }
    ck.set_rng(RNG_KEY, &state.rng);
    ck.add_tensor(FIXED_NOISE, &state.fixed_noise);
    let path = if best {
        run.best_checkpoint()
    } else {
        run.latest_checkpoint()
    };
    ck.save(path)?;
    if !best {
        state.checkpointed = Some(state.step);
    }
    Ok(())
}

fn finish(
    run: &RunDir,
    opts: &LoopOptions,
    config: &Value,
    state: &LoopState,
    how: &str,
) -> Result<(), BoxError> {
    let mut final_metrics = vec![
        ("status".to_string(), how.to_string()),
        ("steps".to_string(), state.step.to_string()),
    ];
    if let Some(b) = state.best {
        final_metrics.push(("best evaluation".to_string(), format!("{b:.4}")));
    }
    for (name, v) in &state.last_eval {
        final_metrics.push((name.clone(), format!("{v:.4}")));
    }
    write_report(run, &opts.title, config, &final_metrics)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of real images alternate with the rows of their reconstructions, a short last row
    /// included; shapes that differ are refused.
    #[test]
    fn reconstructions_sit_under_their_real_rows() {
        let images = |base: f32| {
            let v: Vec<f32> = (0..3).map(|i| base + i as f32).collect();
            Tensor::from_vec(v, &[3, 1, 1, 1], Device::Cpu).unwrap()
        };
        let (real, rebuilt) = (images(0.0), images(10.0));
        let grid = real_over_reconstruction(&real, &rebuilt, 2).unwrap();
        assert_eq!(
            grid.to_vec::<f32>().unwrap(),
            [0.0, 1.0, 10.0, 11.0, 2.0, 12.0]
        );
        let other =
            Tensor::zeros(&[2, 1, 1, 1], saddle_nn::engine::DType::F32, Device::Cpu).unwrap();
        assert!(real_over_reconstruction(&real, &other, 2).is_err());
        assert!(real_over_reconstruction(&real, &rebuilt, 0).is_err());
    }

    #[test]
    fn losses_are_read_every_step_on_the_cpu_and_only_when_needed_on_a_device() {
        let opts = LoopOptions {
            steps: 100,
            log_every: 10,
            sample_every: 7,
            checkpoint_every: 25,
            grid_count: 4,
            grid_rows: 2,
            grid_upscale: 1,
            seed: 0,
            title: String::new(),
            resume_changes: Map::new(),
        };
        let reads = |on_cpu, eval, stopping_at| {
            (1..=100)
                .filter(|&s| reads_losses(on_cpu, s, &opts, eval, s == stopping_at))
                .collect::<Vec<u64>>()
        };
        assert_eq!(reads(true, None, 0), (1..=100).collect::<Vec<_>>());
        // Logs at 10, 20, ...; checkpoints at 25, 50, 75, 100; no read for the sample grids.
        let want = [10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 100];
        assert_eq!(reads(false, None, 0), want);
        let mut with_eval = reads(false, Some(33), 0);
        with_eval.retain(|s| !want.contains(s));
        assert_eq!(with_eval, [33, 66, 99]);
        let mut stopping = reads(false, None, 41);
        stopping.retain(|s| !want.contains(s));
        assert_eq!(stopping, [41]);
    }
}
