//! Running a training job: the run folder, the shared training loop, interruption and divergence
//! handling, and the HTML report.

mod dir;
mod guard;
mod labels;
mod prefetch;
mod report;
mod train_loop;

pub use dir::{
    checkpoint_path, read_config, read_metrics, run_file_in, write_atomically, RunDir, RunError,
};
pub use guard::{check_finite, DivergedError, StopFlag};
pub use labels::{grid_labels, uniform_shuffled_labels};
pub use prefetch::{with_prefetch, Prefetch};
pub use report::write_report;
pub use train_loop::{
    real_over_reconstruction, train, BatchSource, BoxError, Evaluation, GanModel, LoopOptions,
    Outcome, Progress,
};
