//! Stopping a run cleanly: an interrupt flag the training loop polls between steps (the binary
//! sets it from Ctrl-C / SIGTERM), and a check that turns a NaN or infinite loss into an error
//! before a poisoned state can be checkpointed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Shared "please stop" flag. Cloning shares it.
#[derive(Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A flag not yet raised.
    pub fn new() -> Self {
        Self::default()
    }
    /// Raises the flag (for every clone); the loop stops before its next step.
    pub fn request_stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether the flag has been raised.
    pub fn should_stop(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A loss that is NaN or infinite: the run stops with this and keeps its last good checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct DivergedError {
    /// The step whose loss was not finite.
    pub step: u64,
    /// What was not finite: a loss's name, or a tensor of the state about to be saved.
    pub name: String,
    /// The value found (NaN or ±inf).
    pub value: f64,
    /// The step of the last good checkpoint, which is kept (None: none was written).
    pub kept_checkpoint: Option<u64>,
}

impl std::fmt::Display for DivergedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "training diverged at step {}: {} = {}; stopped without saving this state",
            self.step, self.name, self.value
        )?;
        match self.kept_checkpoint {
            Some(step) => write!(
                f,
                " (the last good checkpoint, of step {step}, is kept: continue from it with \
                 --resume and a lower learning rate, e.g. --lr at half its value)"
            ),
            None => write!(f, " (no checkpoint had been written yet)"),
        }
    }
}

impl std::error::Error for DivergedError {}

/// Fails on the first non-finite value among `losses`.
pub fn check_finite(step: u64, losses: &[(&str, f64)]) -> Result<(), DivergedError> {
    match losses.iter().find(|(_, v)| !v.is_finite()) {
        Some((name, value)) => Err(DivergedError {
            step,
            name: name.to_string(),
            value: *value,
            kept_checkpoint: None,
        }),
        None => Ok(()),
    }
}
