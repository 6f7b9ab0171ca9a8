//! Shared by the command-line tests (tests/cli.rs, tests/cli_commands.rs): a `saddle` command
//! line that runs and checks its outcome, and the files a run leaves.
// Each test binary uses the helpers it needs.
#![allow(dead_code)]

// Re-exported: the arguments of a command line (a path that is not UTF-8 is an `OsString`).
pub use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A `saddle` command line, built from fixed words and options whose values are paths, that
/// runs and checks its outcome.
pub struct Saddle {
    args: Vec<OsString>,
}

impl Saddle {
    /// The command line `words` (split at spaces).
    pub fn new(words: &str) -> Self {
        Saddle { args: Vec::new() }.words(words)
    }

    /// Appends the fixed `words` (split at spaces).
    pub fn words(mut self, words: &str) -> Self {
        self.args
            .extend(words.split_whitespace().map(OsString::from));
        self
    }

    /// Appends `option value` (a path or any value, kept whole).
    pub fn arg(mut self, option: &str, value: impl AsRef<OsStr>) -> Self {
        self.args.push(option.into());
        self.args.push(value.as_ref().to_owned());
        self
    }

    /// Appends a positional argument (a path or any value, kept whole).
    pub fn value(mut self, value: impl AsRef<OsStr>) -> Self {
        self.args.push(value.as_ref().to_owned());
        self
    }

    /// Runs the command; returns its exit code (`None` if a signal ended it) and everything it
    /// printed, stdout then stderr.
    pub fn run(&self) -> (Option<i32>, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_saddle"))
            .args(&self.args)
            .output()
            .expect("the saddle binary runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }

    /// Runs the command, which must succeed; returns what it printed.
    pub fn ok(&self) -> String {
        let (code, text) = self.run();
        assert_eq!(code, Some(0), "{self}:\n{text}");
        text
    }

    /// Runs the command, which must fail the way every reported error does (exit code 1, not a
    /// panic), printing each of `expected`; returns what it printed.
    pub fn fails(&self, expected: &[&str]) -> String {
        let (code, text) = self.run();
        assert_eq!(code, Some(1), "{self}:\n{text}");
        assert!(!text.contains("panicked"), "{self}:\n{text}");
        for part in expected {
            assert!(text.contains(part), "{self}: no `{part}` in:\n{text}");
        }
        text
    }
}

impl Saddle {
    /// Runs the command, which must be refused while its command line is read (clap's usage
    /// error, exit code 2, before any work), printing each of `expected`.
    pub fn refused(&self, expected: &[&str]) {
        let (code, text) = self.run();
        assert_eq!(code, Some(2), "{self}:\n{text}");
        for part in expected {
            assert!(text.contains(part), "{self}: no `{part}` in:\n{text}");
        }
    }
}

impl std::fmt::Display for Saddle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "saddle")?;
        for arg in &self.args {
            write!(f, " {}", arg.to_string_lossy())?;
        }
        Ok(())
    }
}

/// A JSON file a command wrote.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("saddle-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The records of a run's metrics.jsonl.
pub fn records(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The steps of the losses logged (not the records of a resume's changed settings).
pub fn steps_logged(run: &Path) -> Vec<u64> {
    records(run)
        .iter()
        .filter(|r| r.get("resumed").is_none())
        .map(|r| r["step"].as_u64().unwrap())
        .collect()
}

/// Writes a tiny MNIST-format folder: `n` random 28x28 images per split, labels `i % 10`.
pub fn tiny_mnist(dir: &Path, train: usize, test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut state = 12345u32;
    let mut next = move || {
        state = state.wrapping_mul(1664525).wrapping_add(1013904223);
        (state >> 24) as u8
    };
    for (prefix, n) in [("train", train), ("t10k", test)] {
        let mut images = vec![0, 0, 8, 3];
        for v in [n as u32, 28, 28] {
            images.extend(v.to_be_bytes());
        }
        images.extend((0..n * 784).map(|_| next()));
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
        let mut labels = vec![0, 0, 8, 1];
        labels.extend((n as u32).to_be_bytes());
        labels.extend((0..n).map(|i| (i % 10) as u8));
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
    }
}

/// A tiny MNIST-format folder `<dir>/mnist` ([`tiny_mnist`]: 64 training images, `test` test
/// images) and a classifier trained on it for one epoch, `<dir>/classifier.safetensors`;
/// returns both paths.
pub fn tiny_mnist_and_classifier(dir: &Path, test: usize) -> (PathBuf, PathBuf) {
    let (data, cls) = (dir.join("mnist"), dir.join("classifier.safetensors"));
    tiny_mnist(&data, 64, test);
    Saddle::new("train classifier --epochs 1 --batch-size 32")
        .arg("--data", &data)
        .arg("--out", &cls)
        .ok();
    (data, cls)
}
