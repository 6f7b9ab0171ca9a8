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

    // Latent walks: 2 rows of 10 codes, 16x16 images drawn at 2x with 1-pixel gutters.
    let out = saddle(&[
        "sample",
        "--run",
        run_s,
        "--interpolate",
        "--rows",
        "2",
        "--out",
        samples.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let img = image::open(samples.join("interpolation.png")).unwrap();
    assert_eq!((img.width(), img.height()), (10 * 33 + 1, 2 * 33 + 1));
    // Arithmetic with A = B: the result code is C's mean code, so the first result cell (row
    // 4) shows the same image as C's mean (row 3, last column). 3 columns, 5 rows.
    let out = saddle(&[
        "sample",
        "--run",
        run_s,
        "--arithmetic",
        "0,1/0,1/2,3",
        "--out",
        samples.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let grid = image::open(samples.join("arithmetic.png"))
        .unwrap()
        .to_luma8();
    assert_eq!(grid.dimensions(), (3 * 33 + 1, 5 * 33 + 1));
    let cell = |row: u32, col: u32| -> Vec<u8> {
        let (x0, y0) = (col * 33 + 1, row * 33 + 1);
        (0..32)
            .flat_map(|y| (0..32).map(move |x| (x0 + x, y0 + y)))
            .map(|(x, y)| grid.get_pixel(x, y)[0])
            .collect()
    };
    assert_eq!(cell(3, 0), cell(2, 2));
    assert_ne!(cell(3, 0), cell(2, 0));
    let bad = saddle(&[
        "sample",
        "--run",
        run_s,
        "--arithmetic",
        "0,1/2/3,4",
        "--out",
        samples.to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("same size"), "{}", text(&bad));
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

    // Every trainer takes --device cuda: without a GPU the device is refused with the reason,
    // with one the missing data folder is the error; never a CPU-only refusal.
    for model in ["gan2014", "ebgan", "classifier"] {
        let out = saddle(&[
            "train",
            model,
            "--device",
            "cuda",
            "--data",
            "/no/such/folder",
        ]);
        assert_eq!(out.status.code(), Some(1), "{model}");
        let msg = text(&out);
        assert!(
            msg.contains("--device cuda:") || msg.contains("/no/such/folder"),
            "{model}: {msg}"
        );
        assert!(!msg.contains("CPU only"), "{model}: {msg}");
    }

    let out = saddle(&["sample", "--run", dir.join("nothing").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("config.json"), "{}", text(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Writes a tiny MNIST-format folder: `n` random 28x28 images per split, labels `i % 10`.
fn tiny_mnist(dir: &Path, train: usize, test: usize) {
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

#[test]
fn classifier_eval_and_probe_commands_run_end_to_end() {
    let dir = temp_dir("eval");
    let data = dir.join("mnist");
    tiny_mnist(&data, 64, 40);
    let (data_s, cls, run) = (
        data.to_str().unwrap(),
        dir.join("classifier.safetensors"),
        dir.join("run"),
    );
    let out = saddle(&[
        "train",
        "classifier",
        "--data",
        data_s,
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--out",
        cls.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("test accuracy"));

    let out = saddle(&[
        "train",
        "dcgan",
        "--data",
        data_s,
        "--steps",
        "2",
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--nz",
        "8",
        "--batch-size",
        "16",
        "--out",
        run.to_str().unwrap(),
        "--classifier",
        cls.to_str().unwrap(),
        "--eval-count",
        "24",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // The end-of-run evaluation is logged and ranks the best checkpoint.
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(log.contains("eval_fid"), "{log}");
    assert!(run.join("checkpoints/best.safetensors").exists());

    let out = saddle(&[
        "eval",
        "--run",
        run.to_str().unwrap(),
        "--classifier",
        cls.to_str().unwrap(),
        "--data",
        data_s,
        "--count",
        "30",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval-latest.json")).unwrap())
            .unwrap();
    for key in ["fid", "kid", "inception_score", "i_prime"] {
        assert!(report[key].as_f64().unwrap().is_finite(), "{key}: {report}");
    }
    let is = report["inception_score"].as_f64().unwrap();
    assert!((1.0..=10.0).contains(&is), "IS {is} outside [1, classes]");

    let out = saddle(&[
        "probe",
        "--run",
        run.to_str().unwrap(),
        "--data",
        data_s,
        "--labels-per-class",
        "3",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let probe: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("probe.json")).unwrap()).unwrap();
    assert_eq!(probe["labels"], 30);
    for key in ["trained_d_test_accuracy", "random_d_test_accuracy"] {
        let acc = probe[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{key} = {acc}");
    }

    // GAN 2014 is scored by the Parzen protocol without a classifier.
    let g14 = dir.join("g14");
    let out = saddle(&[
        "train",
        "gan2014",
        "--data",
        data_s,
        "--steps",
        "2",
        "--batch-size",
        "16",
        "--out",
        g14.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = saddle(&[
        "eval",
        "--run",
        g14.to_str().unwrap(),
        "--data",
        data_s,
        "--count",
        "30",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(g14.join("eval-latest.json")).unwrap())
            .unwrap();
    let ll = report["parzen_mean"].as_f64().unwrap();
    // Noise images against uniform-noise samples: a finite (very negative-to-moderate) value.
    assert!(
        ll.is_finite() && report["parzen_sigma"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dcgan_64x64_rgb_trains_on_an_image_folder() {
    let dir = temp_dir("folder");
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    // Different sizes and aspect ratios: the loader resizes and centre-crops to 64x64.
    for (i, (w, h)) in [(40, 30), (64, 64), (90, 70), (30, 50)].iter().enumerate() {
        let img = image::RgbImage::from_fn(*w, *h, |x, y| {
            image::Rgb([(x * 3) as u8, (y * 5) as u8, (i * 60) as u8])
        });
        img.save(images.join(format!("{i}.png"))).unwrap();
    }
    let run = dir.join("run");
    let out = saddle(&[
        "train",
        "dcgan",
        "--data",
        images.to_str().unwrap(),
        "--steps",
        "2",
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--nz",
        "8",
        "--batch-size",
        "4",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["channels"], 3);
    assert_eq!(config["spec"][0]["image_size"], 64);
    // The grid is RGB with 64x64 cells shown at 2x: 8 columns of 128 + 9 separator pixels.
    let grid = image::open(run.join("samples/step_000002.png")).unwrap();
    assert_eq!(grid.color(), image::ColorType::Rgb8);
    assert_eq!(grid.width(), 8 * 128 + 9);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn grid_search_writes_resumable_results_and_a_histogram() {
    let dir = temp_dir("grid");
    let data = dir.join("mnist");
    tiny_mnist(&data, 64, 20);
    let cls = dir.join("classifier.safetensors");
    let out = saddle(&[
        "train",
        "classifier",
        "--data",
        data.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--out",
        cls.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let grid = dir.join("grid");
    let run = |family: &str| {
        saddle(&[
            "grid",
            family,
            "--configs",
            "2",
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--samples",
            "20",
            "--seed",
            "3",
            "--classifier",
            cls.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--out",
            grid.to_str().unwrap(),
        ])
    };
    for family in ["ebgan", "gan"] {
        let out = run(family);
        assert!(out.status.success(), "{}", text(&out));
        let lines = std::fs::read_to_string(grid.join(format!("{family}.jsonl"))).unwrap();
        let results: Vec<serde_json::Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(results.len(), 2, "{lines}");
        for r in &results {
            assert!(r["i_prime"].as_f64().unwrap().is_finite(), "{r}");
            assert!(r["wall_s"].as_f64().unwrap() > 0.0);
            assert_eq!(r["config"]["family"], family);
        }
    }
    let png = image::open(grid.join("histogram.png")).unwrap();
    assert_eq!((png.width(), png.height()), (640, 400));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(grid.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["ebgan"]["runs"], 2);
    assert!(summary["gan"]["median"].as_f64().unwrap().is_finite());
    // A second run finds both configurations done and trains nothing.
    let out = run("ebgan");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        text(&out).matches("from an earlier run").count(),
        2,
        "{}",
        text(&out)
    );
    let lines = std::fs::read_to_string(grid.join("ebgan.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2);
    let out = run("wgan");
    assert!(!out.status.success() && text(&out).contains("expected ebgan"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ladder_and_ebgan_ln_report_a_test_error() {
    let dir = temp_dir("ladder");
    let data = dir.join("mnist");
    tiny_mnist(&data, 64, 20);
    for model in ["ladder", "ebgan-ln"] {
        let out_dir = dir.join(model);
        let mut args = vec![
            "train",
            model,
            "--data",
            data.to_str().unwrap(),
            "--labels-per-class",
            "2",
            "--steps",
            "3",
            "--batch-size",
            "16",
            "--out",
            out_dir.to_str().unwrap(),
        ];
        if model == "ebgan-ln" {
            args.extend(["--layers-g", "2", "--size-g", "16"]);
        }
        let out = saddle(&args);
        assert!(out.status.success(), "{}", text(&out));
        let result: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out_dir.join("result.json")).unwrap())
                .unwrap();
        assert_eq!(result["labels"], 20);
        assert_eq!(result["steps"], 3);
        let err = result["test_error"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&err), "{result}");
        assert_eq!(out_dir.join("samples.png").exists(), model == "ebgan-ln");
    }
    let out = saddle(&[
        "train",
        "ladder",
        "--data",
        data.to_str().unwrap(),
        "--labels-per-class",
        "2",
        "--denoise-weights",
        "1,2",
        "--out",
        dir.join("bad").to_str().unwrap(),
    ]);
    assert!(
        !out.status.success() && text(&out).contains("needs 7 values"),
        "{}",
        text(&out)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
