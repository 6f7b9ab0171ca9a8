//! The one error type of the data layer: every bad input names the file (or dataset) it came
//! from and what is wrong with it, so a user can fix it without a debugger.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem with an input file or dataset: `path` is the file (or, for whole-dataset problems
/// such as too few labels, the dataset's `source`), `problem` says what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataError {
    /// The file, or the dataset's `source`.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: String,
}

impl DataError {
    /// An error about `path`.
    pub fn new(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        DataError {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for DataError {}
