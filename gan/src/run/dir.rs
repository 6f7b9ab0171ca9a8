//! The run folder: everything a training run leaves behind, laid out so that a person can browse
//! it and a resumed run can continue it.
//!
//! ```text
//! <run>/config.json            the full configuration (written once; read back by --resume)
//! <run>/metrics.jsonl          one JSON object per logged step ({"step": .., "d_loss": .., ...})
//! <run>/samples/step_000500.png  sample grids from a fixed noise batch
//! <run>/checkpoints/latest.safetensors, best.safetensors
//! <run>/report.html            self-contained report (loss curves, grids, final metrics)
//! ```

use serde_json::{Map, Value};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Errors of the run folder name the file involved.
#[derive(Debug)]
pub struct RunError {
    pub path: PathBuf,
    pub problem: String,
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for RunError {}

fn io_err(path: &Path, e: io::Error) -> RunError {
    RunError {
        path: path.to_path_buf(),
        problem: e.to_string(),
    }
}

/// An open run folder with its metrics log.
pub struct RunDir {
    root: PathBuf,
    metrics: File,
}

impl RunDir {
    /// Starts a new run in `root`, writing `config`. Refuses a folder that already holds a run
    /// (a `config.json`), so a finished run is never overwritten by accident.
    pub fn create(root: impl AsRef<Path>, config: &Value) -> Result<Self, RunError> {
        let root = root.as_ref().to_path_buf();
        let config_path = root.join("config.json");
        if config_path.exists() {
            return Err(RunError {
                path: root,
                problem: "already holds a run (config.json); use --resume to continue it or \
                          choose another --out"
                    .into(),
            });
        }
        for sub in ["", "samples", "checkpoints"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        }
        let text = serde_json::to_string_pretty(config).expect("JSON values always serialise");
        write_atomically(&config_path, text.as_bytes())?;
        let metrics_path = root.join("metrics.jsonl");
        let metrics = File::create(&metrics_path).map_err(|e| io_err(&metrics_path, e))?;
        Ok(RunDir { root, metrics })
    }

    /// Reopens a run to continue it; returns the run and its saved configuration.
    pub fn resume(root: impl AsRef<Path>) -> Result<(Self, Value), RunError> {
        let root = root.as_ref().to_path_buf();
        let config = read_config(&root)?;
        let metrics_path = root.join("metrics.jsonl");
        let metrics = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&metrics_path)
            .map_err(|e| io_err(&metrics_path, e))?;
        Ok((RunDir { root, metrics }, config))
    }

    /// Drops metric lines logged after `step`: when a run resumes from a checkpoint taken at
    /// `step`, the interrupted process's later work is lost, and so are its log lines (no
    /// duplicated steps in the log).
    pub fn drop_metrics_after(&mut self, step: u64) -> Result<(), RunError> {
        let metrics_path = self.root.join("metrics.jsonl");
        let mut text = String::new();
        for r in read_metrics(&metrics_path)? {
            if r.get("step").and_then(Value::as_u64).unwrap_or(0) <= step {
                text.push_str(&r.to_string());
                text.push('\n');
            }
        }
        write_atomically(&metrics_path, text.as_bytes())?;
        self.metrics = OpenOptions::new()
            .append(true)
            .open(&metrics_path)
            .map_err(|e| io_err(&metrics_path, e))?;
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Appends one record to metrics.jsonl and flushes it, so a crash loses at most the line
    /// being written.
    pub fn log(&mut self, record: &Map<String, Value>) -> Result<(), RunError> {
        let path = self.root.join("metrics.jsonl");
        let mut line = Value::Object(record.clone()).to_string();
        line.push('\n');
        self.metrics
            .write_all(line.as_bytes())
            .and_then(|_| self.metrics.flush())
            .map_err(|e| io_err(&path, e))
    }

    /// Where the sample grid of `step` goes.
    pub fn samples_path(&self, step: u64) -> PathBuf {
        self.root
            .join("samples")
            .join(format!("step_{step:06}.png"))
    }

    pub fn latest_checkpoint(&self) -> PathBuf {
        checkpoint_path(&self.root, "latest")
    }

    pub fn best_checkpoint(&self) -> PathBuf {
        checkpoint_path(&self.root, "best")
    }

    pub fn report_path(&self) -> PathBuf {
        self.root.join("report.html")
    }

    /// The sample grids written so far, oldest first.
    pub fn sample_grids(&self) -> Vec<PathBuf> {
        let mut grids: Vec<PathBuf> = fs::read_dir(self.root.join("samples"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "png"))
                    .collect()
            })
            .unwrap_or_default();
        grids.sort();
        grids
    }
}

/// `<run>/checkpoints/<which>.safetensors`.
pub fn checkpoint_path(root: &Path, which: &str) -> PathBuf {
    root.join("checkpoints")
        .join(format!("{which}.safetensors"))
}

/// Reads `<run>/config.json`.
pub fn read_config(root: &Path) -> Result<Value, RunError> {
    let path = root.join("config.json");
    let text = fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
    serde_json::from_str(&text).map_err(|e| RunError {
        path,
        problem: format!("not valid JSON: {e}"),
    })
}

/// Reads every record of a metrics.jsonl file. A torn last line (the process died while writing
/// it) is skipped; a malformed line elsewhere is an error naming its line number.
pub fn read_metrics(path: &Path) -> Result<Vec<Value>, RunError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(path, e)),
    };
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<io::Result<_>>()
        .map_err(|e| io_err(path, e))?;
    let mut records = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(v) => records.push(v),
            Err(_) if i + 1 == lines.len() => break,
            Err(e) => {
                return Err(RunError {
                    path: path.to_path_buf(),
                    problem: format!("line {}: not valid JSON: {e}", i + 1),
                })
            }
        }
    }
    Ok(records)
}

/// Writes through a temporary file and a rename, so readers never see a half-written file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes)
        .and_then(|_| fs::rename(&tmp, path))
        .map_err(|e| io_err(path, e))
}
