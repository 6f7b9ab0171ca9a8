//! The `saddle` command line end to end: a short DCGAN run on the embedded digits, resumed
//! through `--resume`, sampled with `saddle sample`, and the errors a user sees for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn saddle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_saddle"))
        .args(args)
        .output()
        .expect("the saddle binary runs")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("saddle-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn steps_logged(run: &Path) -> Vec<u64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn train_resume_and_sample_a_dcgan_on_the_embedded_digits() {
    let dir = temp_dir("dcgan");
    let run = dir.join("run");
    let run_s = run.to_str().unwrap();
    let small = [
        "--ngf",
        "8",
        "--ndf",
        "8",
        "--nz",
        "8",
        "--batch-size",
        "16",
        "--log-every",
        "1",
        "--sample-every",
        "2",
        "--checkpoint-every",
        "2",
    ];
    let mut args = vec!["train", "dcgan", "--steps", "3", "--out", run_s];
    args.extend(small);
    let out = saddle(&args);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(steps_logged(&run), vec![1, 2, 3]);

    // The same folder again without --resume is refused (no silent overwrite).
    let again = saddle(&args);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("already holds a run"),
        "{}",
        text(&again)
    );

    // --resume reuses the saved config and continues to the new total.
    let out = saddle(&["train", "dcgan", "--resume", run_s, "--steps", "5"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(steps_logged(&run), vec![1, 2, 3, 4, 5]);
    for f in [
        "config.json",
        "report.html",
        "checkpoints/latest.safetensors",
        "samples/step_000000.png",
        "samples/step_000005.png",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    // Resuming as another model is an error naming both.
    let wrong = saddle(&["train", "dcgan", "--resume", dir.to_str().unwrap()]);
    assert!(!wrong.status.success());

    let samples = dir.join("samples");
    let out = saddle(&[
        "sample",
        "--run",
        run_s,
        "--count",
        "5",
        "--out",
        samples.to_str().unwrap(),
        "--npy",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let img = image::open(samples.join("000004.png")).unwrap();
    assert_eq!((img.width(), img.height()), (16, 16));
    // .npy: the magic, then float32 little-endian, shape (5, 1, 16, 16).
    let npy = std::fs::read(samples.join("samples.npy")).unwrap();
    assert_eq!(&npy[..6], b"\x93NUMPY");
    let header = String::from_utf8_lossy(&npy[10..80]);
    assert!(
        header.contains("'<f4'") && header.contains("(5, 1, 16, 16"),
        "{header}"
    );
    assert_eq!(npy.len() % 64, (5 * 256 * 4) % 64);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_gives_a_clear_error_not_a_panic() {
    let dir = temp_dir("bad");
    std::fs::create_dir_all(&dir).unwrap();
    // An IDX images file with the labels magic number.
    std::fs::write(
        dir.join("train-images-idx3-ubyte"),
        [0u8, 0, 8, 1, 0, 0, 0, 0],
    )
    .unwrap();
    std::fs::write(
        dir.join("train-labels-idx1-ubyte"),
        [0u8, 0, 8, 1, 0, 0, 0, 1, 5],
    )
    .unwrap();
    let out = saddle(&[
        "train",
        "dcgan",
        "--data",
        dir.to_str().unwrap(),
        "--out",
        dir.join("run").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("train-images-idx3-ubyte") && msg.contains("magic"),
        "{msg}"
    );
    assert!(!msg.contains("panicked"), "{msg}");

    let out = saddle(&["train", "dcgan", "--data", "/no/such/folder"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("/no/such/folder"), "{}", text(&out));

    let out = saddle(&["train", "dcgan", "--device", "tpu"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--device tpu"), "{}", text(&out));

    let out = saddle(&["sample", "--run", dir.join("nothing").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("config.json"), "{}", text(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}
