//! The run folder: everything a training run leaves behind, laid out so that a person can browse
//! it and a resumed run can continue it.
//!
//! ```text
//! <run>/config.json            the full configuration (written once; read back by --resume)
//! <run>/metrics.jsonl          one JSON object per logged step ({"step": .., "d_loss": .., ...})
//! <run>/samples/step_000500.png  sample grids from a fixed noise batch
//! <run>/checkpoints/latest.safetensors, best.safetensors
//! <run>/report.html            self-contained report (loss curves, grids, final metrics)
//! <run>/.lock                  held while a process trains in the folder
//! ```
//!
//! One process at a time: an open [`RunDir`] holds an exclusive lock on `<run>/.lock` (an
//! advisory file lock, released by the system when the process exits however it exits, so a
//! lock file left by a killed run is stale and simply taken over). A second `--resume` of the
//! same run is refused while the first runs.

use serde_json::{Map, Value};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Errors of the run folder name the file involved.
#[derive(Debug)]
pub struct RunError {
    /// The file or folder involved.
    pub path: PathBuf,
    /// What went wrong.
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
    /// Holds the folder's lock while the run is open.
    _lock: File,
}

/// What a run folder holds once a run has written to it: `create` refuses a folder with any.
const RUN_FILES: [&str; 5] = [
    "config.json",
    "metrics.jsonl",
    "report.html",
    "checkpoints",
    "samples",
];

/// The first file of a run that `root` holds (a config, a log, checkpoints, samples, a
/// report), if any: a folder without one is free for a new run.
pub fn run_file_in(root: &Path) -> Option<&'static str> {
    RUN_FILES.iter().copied().find(|f| root.join(f).exists())
}

/// Takes the run folder's lock, or says which process holds it.
fn lock(root: &Path) -> Result<File, RunError> {
    let path = root.join(".lock");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            return Err(RunError {
                path: root.to_path_buf(),
                problem: format!(
                    "in use by another saddle process{} (lock file {}); wait for it to end or \
                     stop it",
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {holder})")
                    },
                    path.display()
                ),
            });
        }
        Err(fs::TryLockError::Error(e)) => return Err(io_err(&path, e)),
    }
    // The holder's pid, for the message above (the lock itself is what counts).
    let _ = file
        .set_len(0)
        .and_then(|_| file.write_all(std::process::id().to_string().as_bytes()));
    Ok(file)
}

/// Removes the temporary files of writes that a killed process left half done (checkpoints'
/// `.<name>.tmp-<pid>`, `<name>.tmp` of the atomic writes). Only called with the folder's lock
/// held, so no live writer owns them.
fn remove_stale_temporaries(root: &Path) -> Result<(), RunError> {
    for dir in [root.to_path_buf(), root.join("checkpoints")] {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let temporary =
                name.ends_with(".tmp") || (name.starts_with('.') && name.contains(".tmp-"));
            if temporary && entry.file_type().is_ok_and(|t| t.is_file()) {
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
            }
        }
    }
    Ok(())
}

impl RunDir {
    /// Starts a new run in `root`, writing `config`. Refuses a folder that holds any file of a
    /// run (a config, a log, checkpoints, samples, a report), so no run's work is overwritten by
    /// accident, and a folder another process is training in.
    pub fn create(root: impl AsRef<Path>, config: &Value) -> Result<Self, RunError> {
        let root = root.as_ref().to_path_buf();
        if root.exists() && !root.is_dir() {
            return Err(RunError {
                path: root,
                problem: "exists and is not a folder; choose another --out".into(),
            });
        }
        let check_empty = |root: &Path| match run_file_in(root) {
            Some(found) => Err(RunError {
                path: root.to_path_buf(),
                problem: format!(
                    "already holds a run ({found}); use --resume to continue it or choose \
                     another --out"
                ),
            }),
            None => Ok(()),
        };
        check_empty(&root)?;
        fs::create_dir_all(&root).map_err(|e| io_err(&root, e))?;
        let lock = lock(&root)?;
        // Again under the lock: another process may have started a run here meanwhile.
        check_empty(&root)?;
        for sub in ["samples", "checkpoints"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        }
        let config_path = root.join("config.json");
        let text = serde_json::to_string_pretty(config).expect("JSON values always serialise");
        write_atomically(&config_path, text.as_bytes())?;
        let metrics_path = root.join("metrics.jsonl");
        let metrics = File::create(&metrics_path).map_err(|e| io_err(&metrics_path, e))?;
        Ok(RunDir {
            root,
            metrics,
            _lock: lock,
        })
    }

    /// Reopens a run to continue it (taking its lock, clearing the temporary files a killed
    /// process left); returns the run and its saved configuration.
    pub fn resume(root: impl AsRef<Path>) -> Result<(Self, Value), RunError> {
        let root = root.as_ref().to_path_buf();
        let config = read_config(&root)?;
        let lock = lock(&root)?;
        remove_stale_temporaries(&root)?;
        let metrics_path = root.join("metrics.jsonl");
        let metrics = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&metrics_path)
            .map_err(|e| io_err(&metrics_path, e))?;
        Ok((
            RunDir {
                root,
                metrics,
                _lock: lock,
            },
            config,
        ))
    }

    /// Replaces the saved configuration (a resumed run whose command line changed a setting
    /// that may change, such as the learning rate: the next resume starts from the new one).
    pub fn update_config(&self, config: &Value) -> Result<(), RunError> {
        let text = serde_json::to_string_pretty(config).expect("JSON values always serialise");
        write_atomically(&self.root.join("config.json"), text.as_bytes())
    }

    /// Drops metric lines logged after `step`: when a run resumes from a checkpoint taken at
    /// `step`, the interrupted process's later work is lost, and so are its log lines (no
    /// duplicated steps in the log). The lines kept are copied as they were written, not parsed
    /// and written again, so every logged value stays exactly as it was.
    pub fn drop_metrics_after(&mut self, step: u64) -> Result<(), RunError> {
        let metrics_path = self.root.join("metrics.jsonl");
        let mut text = String::new();
        for (line, r) in read_metric_lines(&metrics_path)? {
            if r.get("step").and_then(Value::as_u64).unwrap_or(0) <= step {
                text.push_str(&line);
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

    /// The run folder.
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

    /// `checkpoints/latest.safetensors`: the state to resume from.
    pub fn latest_checkpoint(&self) -> PathBuf {
        checkpoint_path(&self.root, "latest")
    }

    /// `checkpoints/best.safetensors`: the state with the best evaluation so far.
    pub fn best_checkpoint(&self) -> PathBuf {
        checkpoint_path(&self.root, "best")
    }

    /// `report.html`.
    pub fn report_path(&self) -> PathBuf {
        self.root.join("report.html")
    }

    /// The sample grids written so far, oldest first.
    pub fn sample_grids(&self) -> Vec<PathBuf> {
        self.grids("step_")
    }

    /// The PNG files in `samples/` whose names start with `prefix` (`reconstructions_` for a
    /// model with an encoder), sorted.
    pub fn grids(&self, prefix: &str) -> Vec<PathBuf> {
        let mut grids: Vec<PathBuf> = fs::read_dir(self.root.join("samples"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "png"))
                    .filter(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
                    })
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
    Ok(read_metric_lines(path)?
        .into_iter()
        .map(|(_, record)| record)
        .collect())
}

/// [`read_metrics`] with each record's line as written.
fn read_metric_lines(path: &Path) -> Result<Vec<(String, Value)>, RunError> {
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
            Ok(v) => records.push((line.clone(), v)),
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

/// Writes through a temporary file and a rename, so readers never see a half-written file; a
/// failed write (a full disk) removes its temporary file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes)
        .and_then(|_| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err(path, e)
        })
}
