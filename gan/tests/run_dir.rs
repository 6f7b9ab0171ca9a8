//! The run folder, its metrics log, the HTML report and the divergence guard.

use saddle_gan::run::{check_finite, read_metrics, write_report, RunDir, StopFlag};
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
