//! The run folder, its metrics log, the HTML report and the divergence guard.

use saddle_gan::run::{
    check_finite, read_metrics, write_atomically, write_report, RunDir, StopFlag,
};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("saddle-run-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn record(step: u64, loss: f64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("step".into(), step.into());
    m.insert("d_loss".into(), loss.into());
    m
}

#[test]
fn create_refuses_an_existing_run_and_resume_drops_later_lines() {
    let dir = temp_dir("resume");
    let config = json!({"model": "dcgan", "lr": 0.0002});
    let mut run = RunDir::create(&dir, &config).unwrap();
    for step in 1..=5 {
        run.log(&record(step, step as f64)).unwrap();
    }
    drop(run);
    let err = RunDir::create(&dir, &config).err().expect("must refuse");
    assert!(err.to_string().contains("already holds a run"), "{err}");

    let (mut run, saved) = RunDir::resume(&dir).unwrap();
    assert_eq!(saved, config);
    run.drop_metrics_after(3).unwrap();
    run.log(&record(4, 40.0)).unwrap();
    let steps: Vec<(u64, f64)> = read_metrics(&dir.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .map(|r| (r["step"].as_u64().unwrap(), r["d_loss"].as_f64().unwrap()))
        .collect();
    assert_eq!(steps, vec![(1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0)]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_torn_last_line_is_skipped_but_a_bad_middle_line_is_an_error() {
    let dir = temp_dir("torn");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("metrics.jsonl");
    std::fs::write(&path, "{\"step\":1}\n{\"step\":2}\n{\"step\":3,\"d_lo").unwrap();
    assert_eq!(read_metrics(&path).unwrap().len(), 2);
    std::fs::write(&path, "{\"step\":1}\nnot json\n{\"step\":3}\n").unwrap();
    let err = read_metrics(&path).unwrap_err().to_string();
    assert!(
        err.contains("metrics.jsonl") && err.contains("line 2"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn report_holds_a_curve_per_metric_and_escapes_text() {
    let dir = temp_dir("report");
    let mut run = RunDir::create(&dir, &json!({"model": "<toy>"})).unwrap();
    for step in 1..=10 {
        let mut r = record(step, 1.0 / step as f64);
        r.insert("g_loss".into(), (step as f64).into());
        r.insert("time_s".into(), 0.5.into());
        run.log(&r).unwrap();
    }
    let path = write_report(
        &run,
        "toy & co",
        &json!({"model": "<toy>"}),
        &[("fid".into(), "12.5".into())],
    )
    .unwrap();
    let html = std::fs::read_to_string(path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(
        html.matches("<svg").count(),
        2,
        "d_loss and g_loss, not time_s"
    );
    assert!(html.contains(">d_loss<") && html.contains(">g_loss<"));
    assert!(html.contains("toy &amp; co") && html.contains("&lt;toy&gt;"));
    assert!(html.contains("<th>fid</th><td>12.5</td>"));
    // Ten points on the d_loss curve.
    let d = html.split(">d_loss<").nth(1).unwrap();
    let points = d
        .split("points=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(points.split_whitespace().count(), 10);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn non_finite_losses_are_caught_with_their_name_and_step() {
    assert!(check_finite(3, &[("d_loss", 0.5), ("g_loss", 2.0)]).is_ok());
    let err = check_finite(7, &[("d_loss", 0.5), ("g_loss", f64::NAN)]).unwrap_err();
    assert_eq!((err.step, err.name.as_str()), (7, "g_loss"));
    assert!(err.to_string().contains("diverged at step 7"));
    assert!(check_finite(1, &[("d_loss", f64::INFINITY)]).is_err());
}

#[test]
fn stop_flag_is_shared_between_clones() {
    let flag = StopFlag::new();
    let other = flag.clone();
    assert!(!flag.should_stop());
    other.request_stop();
    assert!(flag.should_stop());
}

/// Issue 14.7: the guard looked for config.json only, so a folder holding checkpoints (a run
/// whose config was deleted or never written) was silently overwritten by a new run.
#[test]
fn create_refuses_a_folder_with_any_file_of_a_run() {
    for leftover in [
        "checkpoints/latest.safetensors",
        "metrics.jsonl",
        "report.html",
    ] {
        let dir = temp_dir("leftover");
        let path = dir.join(leftover);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"precious").unwrap();
        let err = RunDir::create(&dir, &json!({"model": "dcgan"}))
            .err()
            .expect("must refuse");
        let first = leftover.split('/').next().unwrap();
        assert!(
            err.to_string()
                .contains(&format!("already holds a run ({first})")),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    // An empty folder is fine.
    let dir = temp_dir("empty-out");
    std::fs::create_dir_all(&dir).unwrap();
    drop(RunDir::create(&dir, &json!({"model": "dcgan"})).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 14.7: two `--resume` of one run at once both went ahead, interleaving their
/// checkpoints and logs. The second is refused while the first holds the folder; a lock file
/// left behind by a process that ended (killed) does not block the next one.
#[test]
fn a_run_folder_is_used_by_one_process_at_a_time() {
    let dir = temp_dir("lock");
    let first = RunDir::create(&dir, &json!({"model": "dcgan"})).unwrap();
    let err = RunDir::resume(&dir).err().expect("second user refused");
    let text = err.to_string();
    assert!(
        text.contains("in use by another saddle process")
            && text.contains(&format!("pid {}", std::process::id())),
        "{text}"
    );
    drop(first);
    // The lock file stays, but its lock went with its holder.
    assert!(dir.join(".lock").exists());
    let (second, _) = RunDir::resume(&dir).unwrap();
    drop(second);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 14.9: every kill during a checkpoint write left a `.latest.safetensors.tmp-PID` (ten
/// kills, 13 MB) and a failed atomic write left its `.tmp` file. A resume removes the stale
/// ones; a failed write removes its own.
#[test]
fn temporary_files_of_interrupted_writes_are_cleaned_up() {
    let dir = temp_dir("stale");
    drop(RunDir::create(&dir, &json!({"model": "dcgan"})).unwrap());
    let stale = [
        dir.join("checkpoints/.latest.safetensors.tmp-4242"),
        dir.join("metrics.tmp"),
    ];
    for path in &stale {
        std::fs::write(path, b"half a file").unwrap();
    }
    let kept = dir.join("checkpoints/latest.safetensors");
    std::fs::write(&kept, b"a checkpoint").unwrap();
    let (run, _) = RunDir::resume(&dir).unwrap();
    for path in &stale {
        assert!(!path.exists(), "{} not removed", path.display());
    }
    assert!(kept.exists());
    drop(run);

    // A write that fails after its temporary file was made (here the rename, onto a folder)
    // leaves nothing behind.
    let target = dir.join("blocked");
    std::fs::create_dir_all(target.join("inside")).unwrap();
    let err = write_atomically(&target, b"data").unwrap_err();
    assert!(err.to_string().contains("blocked"), "{err}");
    assert!(!dir.join("blocked.tmp").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 14.10: on resume the kept log lines were parsed and written again, which changed
/// values in their last digit (41 of 200 losses) and any number's spelling; they are copied
/// as written.
#[test]
fn resume_keeps_the_logged_lines_byte_for_byte() {
    let dir = temp_dir("verbatim");
    drop(RunDir::create(&dir, &json!({"model": "dcgan"})).unwrap());
    let lines = [
        r#"{"step":1,"d_loss":1.0e0,"g_loss":0.30000000000000004}"#,
        r#"{"step":2,"d_loss":6.103515625e-5,"g_loss":1.7976931348623157e308}"#,
        r#"{"step":3,"d_loss":2.5}"#,
    ];
    std::fs::write(dir.join("metrics.jsonl"), lines.join("\n") + "\n").unwrap();
    let (mut run, _) = RunDir::resume(&dir).unwrap();
    run.drop_metrics_after(2).unwrap();
    drop(run);
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(text, format!("{}\n{}\n", lines[0], lines[1]));
    std::fs::remove_dir_all(&dir).unwrap();
}
