//! What a resumed run does with its command line. A run's settings are saved in its
//! config.json; on `--resume`, a flag given on the command line either changes the saved value
//! (the settings a run may change midway: learning rates, the step total, the logging, sample,
//! checkpoint and evaluation intervals, where the data lives) and the change is written to the
//! run's log and config, or, when it would change what was trained (a width, the seed, the
//! batch size), it is refused with a message. No flag is silently ignored.

use crate::cli::BoxError;
use clap::parser::ValueSource;
use clap::ArgMatches;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

static GIVEN: OnceLock<BTreeSet<String>> = OnceLock::new();

/// Records which flags the command line gave explicitly (not by default), from the matches of
/// the innermost sub-command. Called once by `main`; without it no flag counts as given.
pub fn record_given_flags(matches: &ArgMatches) {
    let mut leaf = matches;
    while let Some((_, sub)) = leaf.subcommand() {
        leaf = sub;
    }
    let given = leaf
        .ids()
        .filter(|id| leaf.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.as_str().to_string())
        .collect();
    let _ = GIVEN.set(given);
}

/// Whether the flag with this id (the field's name, `lr`, `log_every`) was on the command line.
pub fn given(id: &str) -> bool {
    GIVEN.get().is_some_and(|g| g.contains(id))
}

/// The flag as a user types it.
fn flag(id: &str) -> String {
    format!("--{}", id.replace('_', "-"))
}

/// Settings changed on resume: name -> `{"from": old, "to": new}`.
pub type Changes = Map<String, Value>;

/// Applies the command line's settings `cli` to the settings `saved` in the resumed run at
/// `run` (both JSON objects of the same options, keyed by flag id). For each flag given on the
/// command line with a value other than the saved one: if its id is in `may_change`, the new
/// value replaces the saved one and is added to `changes`; otherwise it is an error naming the
/// flag, both values and the way out.
pub fn apply_given(
    saved: &mut Value,
    cli: &Value,
    may_change: &[&str],
    run: &Path,
    changes: &mut Changes,
) -> Result<(), BoxError> {
    apply_given_with(saved, cli, may_change, run, changes, given)
}

fn apply_given_with(
    saved: &mut Value,
    cli: &Value,
    may_change: &[&str],
    run: &Path,
    changes: &mut Changes,
    given: impl Fn(&str) -> bool,
) -> Result<(), BoxError> {
    let (Some(saved), Some(cli)) = (saved.as_object_mut(), cli.as_object()) else {
        return Err(format!(
            "{}/config.json: settings are not a JSON object",
            run.display()
        )
        .into());
    };
    for (id, new) in cli {
        if !given(id) || new.is_null() {
            continue;
        }
        let old = saved.get(id).cloned().unwrap_or(Value::Null);
        if same(&old, new) {
            continue;
        }
        if !may_change.contains(&id.as_str()) {
            return Err(format!(
                "{} {}: --resume {} continues a run trained with {} {}; that setting cannot \
                 change midway (settings that can: {}). Start a new run with --out to change it",
                flag(id),
                show(new),
                run.display(),
                flag(id),
                show(&old),
                may_change
                    .iter()
                    .map(|id| flag(id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
            .into());
        }
        let mut change = Map::new();
        change.insert("from".into(), old);
        change.insert("to".into(), new.clone());
        changes.insert(id.clone(), change.into());
        saved.insert(id.clone(), new.clone());
    }
    Ok(())
}

/// Equal values, numbers compared by value (a saved 64 and a given 64.0 are one setting).
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "(unset)".into(),
        other => other.to_string(),
    }
}

/// One line saying what a resume changed, for the terminal.
pub fn describe(changes: &Changes) -> String {
    changes
        .iter()
        .map(|(id, c)| format!("{} {} -> {}", flag(id), show(&c["from"]), show(&c["to"])))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn given_flags_change_what_may_change_and_refuse_the_rest() {
        let run = Path::new("runs/x");
        let cli = json!({"lr": 1e-4, "nz": 64, "batch_size": 64, "data": "digits"});
        // Nothing given: the saved settings stand.
        let mut saved = json!({"lr": 2e-4, "nz": 32, "batch_size": 64, "data": "digits"});
        let mut changes = Changes::new();
        apply_given_with(&mut saved, &cli, &["lr"], run, &mut changes, |_| false).unwrap();
        assert_eq!(saved["lr"], json!(2e-4));
        assert!(changes.is_empty());
        // --lr given: applied and recorded.
        apply_given_with(&mut saved, &cli, &["lr"], run, &mut changes, |id| {
            id == "lr"
        })
        .unwrap();
        assert_eq!(saved["lr"], json!(1e-4));
        assert_eq!(changes["lr"], json!({"from": 2e-4, "to": 1e-4}));
        assert_eq!(describe(&changes), "--lr 0.0002 -> 0.0001");
        // --batch-size given with the saved value: nothing to refuse.
        let given = |id: &str| id == "batch_size";
        apply_given_with(&mut saved, &cli, &["lr"], run, &mut changes, given).unwrap();
        // --nz given with another value: refused, naming both values and the way out.
        let err = apply_given_with(&mut saved, &cli, &["lr"], run, &mut changes, |id| {
            id == "nz"
        })
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("--nz 64: --resume runs/x continues a run trained with --nz 32"));
        assert!(err.contains("(settings that can: --lr)"), "{err}");
        assert_eq!(saved["nz"], json!(32));
    }
}
