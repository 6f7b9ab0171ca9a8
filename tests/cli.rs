//! The `saddle` command line end to end: a short DCGAN run on the embedded digits, resumed
//! through `--resume`, sampled with `saddle sample`, and the errors a user sees for bad input.

mod common;

use common::*;

#[test]
fn train_resume_and_sample_a_dcgan_on_the_embedded_digits() {
    let dir = temp_dir("dcgan");
    let run = dir.join("run");
    let small = "--ngf 8 --ndf 8 --nz 8 --batch-size 16 --log-every 1 --sample-every 2 \
                 --checkpoint-every 2";
    let train = Saddle::new("train dcgan --steps 3")
        .arg("--out", &run)
        .words(small);
    train.ok();
    assert_eq!(steps_logged(&run), vec![1, 2, 3]);

    // The same folder again without --resume is refused (no silent overwrite).
    train.fails(&["already holds a run"]);

    // --resume reuses the saved config and continues to the new total.
    Saddle::new("train dcgan")
        .arg("--resume", &run)
        .words("--steps 5")
        .ok();
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
    // Resuming as another model is an error naming both; a folder without a run is refused.
    Saddle::new("train gan2014")
        .arg("--resume", &run)
        .fails(&["that run trained `dcgan`, not `gan2014`"]);
    Saddle::new("train dcgan")
        .arg("--resume", &dir)
        .fails(&["config.json"]);

    let samples = dir.join("samples");
    let sample = || Saddle::new("sample").arg("--run", &run);
    sample()
        .words("--count 5")
        .arg("--out", &samples)
        .words("--npy")
        .ok();
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
    sample()
        .words("--interpolate --rows 2")
        .arg("--out", &samples)
        .ok();
    let img = image::open(samples.join("interpolation.png")).unwrap();
    assert_eq!((img.width(), img.height()), (10 * 33 + 1, 2 * 33 + 1));
    // Arithmetic with A = B: the result code is C's mean code, so the first result cell (row
    // 4) shows the same image as C's mean (row 3, last column). 3 columns, 5 rows.
    sample()
        .words("--arithmetic 0,1/0,1/2,3")
        .arg("--out", &samples)
        .ok();
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
    sample()
        .words("--arithmetic 0,1/2/3,4")
        .arg("--out", &samples)
        .fails(&["same size"]);
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
    Saddle::new("train dcgan")
        .arg("--data", &dir)
        .arg("--out", dir.join("run"))
        .fails(&["train-images-idx3-ubyte", "magic"]);
    Saddle::new("train dcgan --data /no/such/folder").fails(&["/no/such/folder"]);
    Saddle::new("train dcgan --device tpu").fails(&["--device tpu"]);

    // Every trainer takes --device cuda: without a GPU the device is refused with the reason,
    // with one the missing data folder is the error; never a CPU-only refusal.
    for model in ["gan2014", "ebgan", "classifier"] {
        let msg = Saddle::new(&format!(
            "train {model} --device cuda --data /no/such/folder"
        ))
        .fails(&[]);
        assert!(
            msg.contains("--device cuda:") || msg.contains("/no/such/folder"),
            "{model}: {msg}"
        );
        assert!(!msg.contains("CPU only"), "{model}: {msg}");
    }

    Saddle::new("sample")
        .arg("--run", dir.join("nothing"))
        .fails(&["config.json"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn classifier_eval_and_probe_commands_run_end_to_end() {
    let dir = temp_dir("eval");
    let data = dir.join("mnist");
    tiny_mnist(&data, 64, 40);
    let (cls, run) = (dir.join("classifier.safetensors"), dir.join("run"));
    let out = Saddle::new("train classifier")
        .arg("--data", &data)
        .words("--epochs 1 --batch-size 16")
        .arg("--out", &cls)
        .ok();
    assert!(out.contains("test accuracy"));

    Saddle::new("train dcgan")
        .arg("--data", &data)
        .words("--steps 2 --ngf 4 --ndf 4 --nz 8 --batch-size 16")
        .arg("--out", &run)
        .arg("--classifier", &cls)
        .words("--eval-count 24")
        .ok();
    // The end-of-run evaluation is logged and ranks the best checkpoint.
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(log.contains("eval_fid"), "{log}");
    assert!(run.join("checkpoints/best.safetensors").exists());

    Saddle::new("eval")
        .arg("--run", &run)
        .arg("--classifier", &cls)
        .arg("--data", &data)
        .words("--count 30")
        .ok();
    let report = read_json(&run.join("eval-latest.json"));
    for key in ["fid", "kid", "inception_score", "i_prime"] {
        assert!(report[key].as_f64().unwrap().is_finite(), "{key}: {report}");
    }
    let is = report["inception_score"].as_f64().unwrap();
    assert!((1.0..=10.0).contains(&is), "IS {is} outside [1, classes]");

    Saddle::new("probe")
        .arg("--run", &run)
        .arg("--data", &data)
        .words("--labels-per-class 3")
        .ok();
    let probe = read_json(&run.join("probe.json"));
    assert_eq!(probe["labels"], 30);
    for key in ["trained_d_test_accuracy", "random_d_test_accuracy"] {
        let acc = probe[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{key} = {acc}");
    }

    // GAN 2014 is scored by the Parzen protocol without a classifier.
    let g14 = dir.join("g14");
    Saddle::new("train gan2014")
        .arg("--data", &data)
        .words("--steps 2 --batch-size 16")
        .arg("--out", &g14)
        .ok();
    Saddle::new("eval")
        .arg("--run", &g14)
        .arg("--data", &data)
        .words("--count 30")
        .ok();
    let report = read_json(&g14.join("eval-latest.json"));
    let ll = report["parzen_mean"].as_f64().unwrap();
    // Noise images against uniform-noise samples: a finite (very negative-to-moderate) value.
    assert!(
        ll.is_finite() && report["parzen_sigma"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    // ... next to the same protocol on real training images.
    assert!(report["real_train_parzen_mean"]
        .as_f64()
        .unwrap()
        .is_finite());
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
    Saddle::new("train dcgan")
        .arg("--data", &images)
        .words("--steps 2 --ngf 4 --ndf 4 --nz 8 --batch-size 4")
        .arg("--out", &run)
        .ok();
    let config = read_json(&run.join("config.json"));
    assert_eq!(config["channels"], 3);
    assert_eq!(config["spec"]["image_size"], 64);
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
    Saddle::new("train classifier")
        .arg("--data", &data)
        .words("--epochs 1 --batch-size 32")
        .arg("--out", &cls)
        .ok();
    let grid = dir.join("grid");
    let search = |family: &str| {
        Saddle::new("grid")
            .words(family)
            .words("--configs 2 --steps 2 --batch-size 8 --samples 20 --seed 3")
            .arg("--classifier", &cls)
            .arg("--data", &data)
            .arg("--out", &grid)
    };
    for family in ["ebgan", "gan"] {
        search(family).ok();
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
    let summary = read_json(&grid.join("summary.json"));
    assert_eq!(summary["ebgan"]["runs"], 2);
    assert!(summary["gan"]["median"].as_f64().unwrap().is_finite());
    // A second run finds both configurations done and trains nothing.
    let out = search("ebgan").ok();
    assert_eq!(out.matches("from an earlier run").count(), 2, "{out}");
    let lines = std::fs::read_to_string(grid.join("ebgan.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2);
    search("wgan").fails(&["expected ebgan"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ladder_and_ebgan_ln_report_a_test_error() {
    let dir = temp_dir("ladder");
    let data = dir.join("mnist");
    tiny_mnist(&data, 64, 20);
    for model in ["ladder", "ebgan-ln"] {
        let out_dir = dir.join(model);
        let mut train = Saddle::new("train")
            .words(model)
            .arg("--data", &data)
            .words("--labels-per-class 2 --steps 3 --batch-size 16")
            .arg("--out", &out_dir);
        if model == "ebgan-ln" {
            train = train.words("--layers-g 2 --size-g 16");
        }
        train.ok();
        let result = read_json(&out_dir.join("result.json"));
        assert_eq!(result["labels"], 20);
        assert_eq!(result["steps"], 3);
        let err = result["test_error"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&err), "{result}");
        assert_eq!(out_dir.join("samples.png").exists(), model == "ebgan-ln");
        // One grid per evaluation (here the last step's), and the report with the test error.
        let grid = out_dir.join("samples").join("step_000003.png");
        assert_eq!(grid.exists(), model == "ebgan-ln");
        let report = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
        assert!(
            report.contains("test error") && report.contains("<svg"),
            "{report}"
        );
        assert_eq!(steps_logged(&out_dir), vec![3]);
        // The folder now holds a run: a fresh run is refused, --resume continues to a new total.
        train.fails(&["already holds a run"]);
        let resumed = Saddle::new("train")
            .words(model)
            .arg("--resume", &out_dir)
            .words("--steps 5")
            .ok();
        assert!(resumed.contains("resumed at step 3"), "{resumed}");
        assert_eq!(read_json(&out_dir.join("result.json"))["steps"], 5);
        assert_eq!(steps_logged(&out_dir), vec![3, 5]);
    }
    Saddle::new("train ladder")
        .arg("--resume", dir.join("ebgan-ln"))
        .fails(&["that run trained `ebgan-ln`, not `ladder`"]);
    Saddle::new("train ladder")
        .arg("--data", &data)
        .words("--labels-per-class 2 --denoise-weights 1,2")
        .arg("--out", dir.join("bad"))
        .fails(&["needs 7 values"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 14.1 and 14.3: settings that make no sense were accepted (`--lr=-1` trained by gradient
/// ascent and exited 0, `--ngf 0` made one constant image), `sample --count 0 --npy` panicked,
/// `--rows 100000` ran for minutes, `--image-size 7` gave an error without the flag. Each is
/// refused while the command line is read, naming the flag and the range.
#[test]
fn flags_out_of_range_are_refused_naming_the_flag_and_range() {
    let cases: [(&str, &[&str]); 16] = [
        ("train dcgan --lr=-1", &["'--lr <LR>'", "> 0"]),
        ("train dcgan --lr 0", &["'--lr <LR>'", "> 0"]),
        ("train dcgan --lr nan", &["'--lr <LR>'", "finite"]),
        ("train dcgan --beta1 1.5", &["'--beta1 <BETA1>'", "[0, 1)"]),
        ("train dcgan --nz 0", &["'--nz <NZ>'", "1..=4096"]),
        ("train dcgan --ngf 0", &["'--ngf <NGF>'", "1..="]),
        (
            "train dcgan --image-size 7",
            &["'--image-size <IMAGE_SIZE>'", "power of two"],
        ),
        (
            "train dcgan --checkpoint-every 0",
            &["'--checkpoint-every <CHECKPOINT_EVERY>'"],
        ),
        ("train dcgan --steps 0", &["'--steps <STEPS>'"]),
        ("train gan2014 --k 0", &["'--k <K>'"]),
        ("train ebgan --margin=-1", &["'--margin <MARGIN>'", "> 0"]),
        (
            "train ebgan --layers-d 1",
            &["'--layers-d <LAYERS_D>'", "2..="],
        ),
        ("train ring --std 0", &["'--std <STD>'"]),
        (
            "sample --run r --count 0 --npy",
            &["'--count <COUNT>'", "1..="],
        ),
        (
            "sample --run r --interpolate --rows 100000",
            &["'--rows <ROWS>'", "1..=256"],
        ),
        (
            "eval --run r --data d --count 1",
            &["'--count <COUNT>'", "2..="],
        ),
    ];
    for (line, expected) in cases {
        Saddle::new(line).refused(expected);
    }
    // A --data that is not UTF-8 (it is saved in config.json) is refused by name.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        Saddle::new("train dcgan")
            .arg("--data", OsString::from_vec(b"caf\xe9".to_vec()))
            .refused(&["--data", "UTF-8"]);
    }
}

/// Issue 14.4: `--resume X --lr 1e-4` kept the saved learning rate without a word, so the
/// divergence message's advice could not be followed. Settings that may change midway are
/// applied, logged and saved; the others are refused.
#[test]
fn resume_applies_the_flags_that_may_change_and_refuses_the_others() {
    let dir = temp_dir("resume-flags");
    let run = dir.join("run");
    Saddle::new("train dcgan --steps 2 --ngf 8 --ndf 8 --nz 8 --batch-size 16 --log-every 1")
        .arg("--out", &run)
        .ok();
    let resume = || Saddle::new("train dcgan").arg("--resume", &run);
    // What was trained cannot change: refused, naming both values, and nothing happens.
    resume().words("--steps 3 --nz 16").fails(&[
        "--nz 16: --resume",
        "trained with --nz 8",
        "--out",
    ]);
    resume()
        .words("--steps 3 --seed 9")
        .fails(&["--seed 9", "--seed 0"]);
    resume()
        .words("--steps 3 --batch-size 32")
        .fails(&["--batch-size 32", "--batch-size 16"]);
    assert_eq!(steps_logged(&run), vec![1, 2]);
    // The same value as saved is no change.
    resume().words("--steps 3 --nz 8").ok();
    // The learning rate and the intervals change, and the change is recorded.
    let text = resume().words("--steps 4 --lr 1e-4 --sample-every 1").ok();
    assert!(text.contains("--lr 0.0002 -> 0.0001"), "{text}");
    let config = read_json(&run.join("config.json"));
    assert_eq!(config["spec"]["lr"], 1e-4);
    assert_eq!(config["intervals"]["sample_every"], 1);
    assert_eq!(config["steps"], 4);
    let resumed: Vec<&serde_json::Value> = records(&run)
        .iter()
        .filter_map(|r| r.get("resumed").map(|_| r))
        .cloned()
        .collect::<Vec<_>>()
        .leak()
        .iter()
        .collect();
    assert_eq!(resumed.len(), 2, "{resumed:?}");
    assert_eq!(resumed[1]["step"], 3);
    assert_eq!(resumed[1]["resumed"]["lr"]["to"], 1e-4);
    assert_eq!(resumed[1]["resumed"]["steps"]["from"], 3);
    assert_eq!(steps_logged(&run), vec![1, 2, 3, 4]);
    assert!(run.join("samples/step_000004.png").exists());
    // Issue 14.12: the report's configuration has one row per setting, not a debug string.
    let report = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        report.contains("<th>spec.lr</th><td>0.0001</td>"),
        "{report}"
    );
    assert!(!report.contains("DcganConfig"), "{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 14.11: `sample --out` onto a file said only "File exists (os error 17)".
#[test]
fn sample_names_a_bad_out_folder() {
    let dir = temp_dir("sample-out");
    let run = dir.join("run");
    Saddle::new("train dcgan --steps 1 --ngf 4 --ndf 4 --nz 4 --batch-size 8")
        .arg("--out", &run)
        .ok();
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    Saddle::new("sample --count 2")
        .arg("--run", &run)
        .arg("--out", &file)
        .fails(&["--out", "a-file", "not a folder"]);
    Saddle::new("sample --class 1")
        .arg("--run", &run)
        .fails(&["--class 1", "not class-conditional"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 14.2: a 1 x 200,000 PNG in an image folder made `train dcgan` use 2.6 GB. It is refused
/// before decoding, naming the file and the flag that raises the limit; the flag works.
#[test]
fn an_image_beyond_the_data_limits_is_refused_and_the_limit_can_be_raised() {
    let dir = temp_dir("limits");
    let data = dir.join("images");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..2 {
        image::GrayImage::from_pixel(8, 8, image::Luma([40 * i as u8]))
            .save(data.join(format!("ok{i}.png")))
            .unwrap();
    }
    image::GrayImage::new(1, 20_000)
        .save(data.join("thin.png"))
        .unwrap();
    let train = || {
        Saddle::new("train dcgan --steps 1 --image-size 16 --ngf 4 --ndf 4 --nz 4 --batch-size 2")
            .arg("--data", &data)
    };
    train()
        .arg("--out", dir.join("refused"))
        .fails(&["thin.png", "--max-image-side"]);
    train()
        .arg("--out", dir.join("raised"))
        .words("--max-image-aspect 20000 --max-image-side 20000")
        .ok();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `saddle train biggan`: a class-conditional run writes its folder with a grid of one row per
/// class, resumes with a changed learning rate, refuses a changed width, and samples.
#[test]
fn biggan_trains_resumes_and_samples_on_the_embedded_digits() {
    let dir = temp_dir("biggan");
    let run = dir.join("run");
    Saddle::new("train biggan --steps 2 --ch 2 --batch-size 2 --shared-dim 4 --log-every 1")
        .arg("--out", &run)
        .ok();
    let config = read_json(&run.join("config.json"));
    assert_eq!(
        (config["num_classes"].as_u64(), config["channels"].as_u64()),
        (Some(10), Some(1))
    );
    // 8 samples in each of the 10 class rows, 32x32 drawn at 2x with 1-pixel gutters.
    let grid = image::open(run.join("samples/step_000002.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), (8 * 65 + 1, 10 * 65 + 1));
    Saddle::new("train biggan --steps 3 --lr-d 1e-4")
        .arg("--resume", &run)
        .ok();
    assert_eq!(steps_logged(&run), vec![1, 2, 3]);
    Saddle::new("train biggan --steps 4 --ch 4")
        .arg("--resume", &run)
        .fails(&["--ch 4", "--ch 2"]);
    let samples = dir.join("samples");
    Saddle::new("sample --count 3")
        .arg("--run", &run)
        .arg("--out", &samples)
        .ok();
    let img = image::open(samples.join("000002.png")).unwrap();
    assert_eq!((img.width(), img.height()), (32, 32));
    // One class on request: the same codes with another class give other images.
    let class = |k: &str, out: &str| {
        Saddle::new(&format!("sample --count 2 --class {k}"))
            .arg("--run", &run)
            .arg("--out", dir.join(out))
            .ok();
        std::fs::read(dir.join(out).join("000001.png")).unwrap()
    };
    assert_ne!(class("3", "three"), class("7", "seven"));
    Saddle::new("sample --class 10")
        .arg("--run", &run)
        .fails(&["--class 10", "0..10"]);
    Saddle::new("train biggan --image-size 48")
        .refused(&["'--image-size <IMAGE_SIZE>'", "32, 64 or 128"]);
    // S3GAN's rotation self-supervision: trains and logs; a batch it cannot quarter is refused.
    let rotated = dir.join("rotated");
    Saddle::new("train biggan --steps 1 --ch 2 --batch-size 16 --shared-dim 4 --rotation")
        .arg("--out", &rotated)
        .ok();
    assert_eq!(steps_logged(&rotated), vec![1]);
    Saddle::new("train biggan --steps 1 --batch-size 8 --rotation")
        .arg("--out", dir.join("refused"))
        .fails(&["--rotation", "--batch-size 8", "multiple of 16"]);
    // The label baselines: one class (a grid of one row), random fixed labels, the 10% subset.
    let tiny = "train biggan --steps 1 --ch 2 --batch-size 2 --shared-dim 4";
    let single = dir.join("single");
    Saddle::new(tiny)
        .words("--method single-label")
        .arg("--out", &single)
        .ok();
    assert_eq!(read_json(&single.join("config.json"))["num_classes"], 1);
    let grid = image::open(single.join("samples/step_000001.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), (8 * 65 + 1, 65 + 1));
    Saddle::new(tiny)
        .words("--method random-label")
        .arg("--out", dir.join("random"))
        .ok();
    let text = Saddle::new(tiny)
        .words("--method biggan-k --labels 10%")
        .arg("--out", dir.join("ten"))
        .ok();
    assert!(text.contains("(180 images of 1x32x32)"), "{text}");
    Saddle::new("train biggan --labels 101").refused(&["'--labels <LABELS>'", "0 to 100"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--loss wgan-gp` and `--r1`: the run reads n-critic x batch-size images per step, logs the
/// penalties, saves the resolved optimiser settings, and keeps its loss on resume.
#[test]
fn dcgan_with_wgan_gp_and_r1_trains_logs_and_resumes() {
    let dir = temp_dir("dcgan-wgan");
    let run = dir.join("run");
    Saddle::new("train dcgan --steps 2 --loss wgan-gp --n-critic 2 --r1 1")
        .arg("--out", &run)
        .words("--ngf 8 --ndf 8 --nz 8 --batch-size 8 --log-every 1 --sample-every 2")
        .ok();
    let logged = records(&run);
    assert_eq!(logged.len(), 2);
    for r in &logged {
        for key in ["d_loss", "g_loss", "gradient_penalty", "r1"] {
            assert!(r[key].as_f64().is_some_and(f64::is_finite), "{key} in {r}");
        }
    }
    let spec = &read_json(&run.join("config.json"))["spec"];
    assert_eq!(spec["loss"], "wgan-gp");
    assert_eq!(spec["n_critic"], 2);
    assert_eq!(spec["lr"], 1e-4);
    assert_eq!(spec["beta1"], 0.0);
    assert_eq!(spec["beta2"], 0.9);
    // The loss cannot change midway; the run continues with its own.
    Saddle::new("train dcgan --loss standard")
        .arg("--resume", &run)
        .fails(&["--loss standard", "wgan-gp"]);
    Saddle::new("train dcgan --steps 3")
        .arg("--resume", &run)
        .ok();
    assert_eq!(steps_logged(&run), vec![1, 2, 3]);
    let last = records(&run).pop().unwrap();
    assert!(last["gradient_penalty"].as_f64().is_some(), "{last}");
    Saddle::new("train dcgan --loss wgan").refused(&["--loss", "wgan-gp"]);
    Saddle::new("train dcgan --r1=-1").refused(&["--r1"]);
    Saddle::new("train dcgan --n-critic 0").refused(&["--n-critic"]);
}
