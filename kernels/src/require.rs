//! What a test run demands of the machine, so that a GPU test cannot pass without running.
//!
//! Tests that need a CUDA device or NVRTC run their GPU half only where one is present and
//! otherwise call [`skip`], which prints why and lets the test pass, unless the environment says
//! the missing piece is required:
//!
//! * `SADDLE_REQUIRE_CUDA=1`: a CUDA device and a way to get its kernels (NVRTC or the PTX cache)
//!   must be present; every GPU test that would skip fails instead. Set by the GPU machine's
//!   check script (`scripts/gpu-check.sh`).
//! * `SADDLE_REQUIRE_NVRTC=1`: NVRTC must be loadable; the CUDA compile tests fail instead of
//!   skipping. Set by CI (`.ci/run`), so a failed NVRTC install turns CI red.
//!
//! `0` or an unset or empty variable means not required; any other value is refused with a
//! message (a typo must not silently turn the check off).
//!
//! A GPU test that did run prints one line starting with [`GPU_RAN_MARKER`] ([`ran_on_gpu`]);
//! the GPU check script counts them, so a report says how many tests actually ran on the device.

use std::fmt::Display;

/// The start of the line a test prints when its GPU half ran and passed.
pub const GPU_RAN_MARKER: &str = "saddle-gpu-test-ran:";

/// A piece of the machine a test may need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// A CUDA driver, a device, and NVRTC or cached PTX for its kernels.
    Cuda,
    /// The NVRTC library (no device needed).
    Nvrtc,
}

impl Requirement {
    /// The environment variable that makes this requirement binding.
    pub fn var(self) -> &'static str {
        match self {
            Requirement::Cuda => "SADDLE_REQUIRE_CUDA",
            Requirement::Nvrtc => "SADDLE_REQUIRE_NVRTC",
        }
    }

    /// Whether the environment makes this requirement binding. Panics on a value other than
    /// `0`, `1` or empty.
    pub fn is_required(self) -> bool {
        env_flag(self.var()).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// The 0/1 switch in environment variable `var` (see [`parse_flag`]).
pub(crate) fn env_flag(var: &str) -> Result<bool, String> {
    parse_flag(var, std::env::var(var).ok().as_deref())
}

/// `0`, empty or unset: false; `1`: true; anything else: an error naming the variable.
fn parse_flag(var: &str, value: Option<&str>) -> Result<bool, String> {
    match value.map(str::trim) {
        None | Some("") | Some("0") => Ok(false),
        Some("1") => Ok(true),
        Some(other) => Err(format!("{var} must be 0 or 1, not {other:?}")),
    }
}

/// The test `test` cannot run because `need` is missing (`why`): prints that it was skipped and
/// why, or panics when the environment requires `need`.
pub fn skip(test: &str, need: Requirement, why: &dyn Display) {
    if let Err(message) = skip_or_fail(test, need, why, need.is_required()) {
        panic!("{message}");
    }
}

fn skip_or_fail(
    test: &str,
    need: Requirement,
    why: &dyn Display,
    required: bool,
) -> Result<(), String> {
    if required {
        return Err(format!(
            "{test}: cannot run ({why}), and {}=1 requires it to",
            need.var()
        ));
    }
    println!("{test}: skipped ({why})");
    Ok(())
}

/// The running test's name: libtest runs each test on a thread named after it (`fallback`
/// elsewhere).
pub fn current_test(fallback: &str) -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or(fallback)
        .to_string()
}

/// Prints the line the GPU check script counts: test `test` ran on `device` and passed its
/// checks. Call it once, after the last check of the GPU half.
pub fn ran_on_gpu(test: &str, device: &dyn Display) {
    println!("{GPU_RAN_MARKER} {test} on {device}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_0_or_1_and_anything_else_is_refused() {
        assert_eq!(parse_flag("V", None), Ok(false));
        assert_eq!(parse_flag("V", Some("")), Ok(false));
        assert_eq!(parse_flag("V", Some("0")), Ok(false));
        assert_eq!(parse_flag("V", Some("1")), Ok(true));
        assert_eq!(parse_flag("V", Some(" 1\n")), Ok(true));
        // A typo must not read as "not required".
        let err = parse_flag("SADDLE_REQUIRE_CUDA", Some("yes")).unwrap_err();
        assert_eq!(err, "SADDLE_REQUIRE_CUDA must be 0 or 1, not \"yes\"");
    }

    #[test]
    fn a_skip_fails_only_when_required() {
        let why = "no CUDA driver library";
        assert_eq!(skip_or_fail("t", Requirement::Cuda, &why, false), Ok(()));
        assert_eq!(
            skip_or_fail("t", Requirement::Cuda, &why, true),
            Err(
                "t: cannot run (no CUDA driver library), and SADDLE_REQUIRE_CUDA=1 requires it to"
                    .into()
            )
        );
        let err = skip_or_fail("c", Requirement::Nvrtc, &"no NVRTC", true).unwrap_err();
        assert!(err.contains("SADDLE_REQUIRE_NVRTC=1"), "{err}");
    }
}
