//! Commands no other test runs end to end, each on a tiny case with its outputs checked:
//! `train ebgan` (with and without the pulling-away term), `train ring`, `bench`, `sample
//! --checkpoint best` and `grid ebgan-pt`.

mod common;

use common::*;
use saddle_nn::Checkpoint;
use std::path::Path;

/// The records of `run`'s metrics.jsonl that hold losses.
fn loss_records(run: &Path) -> Vec<serde_json::Value> {
    records(run)
        .into_iter()
        .filter(|r| r.get("d_loss").is_some())
        .collect()
}

/// Tensor `name`'s shape in a checkpoint file.
fn shape(ck: &Checkpoint, name: &str) -> Vec<usize> {
    ck.tensor(name)
        .unwrap_or_else(|| panic!("no tensor `{name}`"))
        .shape()
        .to_vec()
}

/// `train ebgan` on the embedded digits (8x8, 64 values per image), with `--pt` and without,
/// from one seed: the losses, energies and (with `--pt` only) the pulling-away term are logged
/// every step; the first step's G losses differ by exactly 0.1 times the term (same weights,
/// batch and noise; D's step is the same); the checkpoint holds networks of the sizes asked
/// for; grids are written at the sample interval; `sample` draws from the run. Fails (each shown
/// by a deliberate change) on `--pt` not reaching the model, on the term weighted 0.2, and on
/// `--layers-g` ignored.
#[test]
fn train_ebgan_with_and_without_the_pulling_away_term() {
    let dir = temp_dir("ebgan");
    let train = |pt: bool, run: &Path| {
        let mut cmd = Saddle::new(
            "train ebgan --steps 4 --batch-size 16 --layers-g 2 --size-g 32 --layers-d 3 \
             --size-d 16 --log-every 1 --sample-every 2 --checkpoint-every 2",
        )
        .arg("--out", run);
        if pt {
            cmd = cmd.words("--pt");
        }
        cmd.ok();
        loss_records(run)
    };
    let (with_pt, plain) = (dir.join("pt"), dir.join("plain"));
    let logged_pt = train(true, &with_pt);
    let logged = train(false, &plain);
    for (run, records) in [(&with_pt, &logged_pt), (&plain, &logged)] {
        let steps: Vec<u64> = records
            .iter()
            .map(|r| r["step"].as_u64().unwrap())
            .collect();
        assert_eq!(steps, [1, 2, 3, 4], "{}", run.display());
        for r in records.iter() {
            for key in ["d_loss", "g_loss", "real_score", "fake_score"] {
                let v = r[key].as_f64().unwrap();
                assert!(v.is_finite() && v > 0.0, "{key} = {v}: {r}");
            }
        }
        let config = read_json(&run.join("config.json"));
        assert_eq!(config["model"], "ebgan");
        assert_eq!(config["image_dim"], 64);
        assert_eq!(config["spec"]["pt"], run == &with_pt, "{config}");
        for s in [0, 2, 4] {
            let grid = image::open(run.join(format!("samples/step_{s:06}.png"))).unwrap();
            // 64 samples of 8x8 shown at 4x in 8 columns with 1-pixel gutters.
            assert_eq!((grid.width(), grid.height()), (8 * 33 + 1, 8 * 33 + 1));
        }
        let ck = Checkpoint::load(run.join("checkpoints/latest.safetensors")).unwrap();
        assert_eq!(ck.meta("run.step"), Some("4"));
        // G: 100 -> 32 (+ batch norm) -> 64; D: encoder 64 -> 16 -> 16, decoder 16 -> 64.
        assert_eq!(shape(&ck, "g.0.weight"), [32, 100]);
        assert_eq!(shape(&ck, "g.3.weight"), [64, 32]);
        assert_eq!(shape(&ck, "d.enc.1.weight"), [16, 16]);
        assert_eq!(shape(&ck, "d.dec.0.weight"), [64, 16]);
    }
    for r in &logged {
        assert!(r.get("pulling_away").is_none(), "{r}");
    }
    for r in &logged_pt {
        let pt = r["pulling_away"].as_f64().unwrap();
        assert!(pt > 0.0 && pt <= 1.0, "{r}");
    }
    let (first_pt, first) = (&logged_pt[0], &logged[0]);
    assert_eq!(first_pt["d_loss"], first["d_loss"]);
    let extra = first_pt["g_loss"].as_f64().unwrap() - first["g_loss"].as_f64().unwrap();
    let pt = first_pt["pulling_away"].as_f64().unwrap();
    assert!(
        (extra - 0.1 * pt).abs() < 1e-6,
        "G loss {first_pt} vs {first}: {extra} is not 0.1 x {pt}"
    );

    let samples = dir.join("samples");
    Saddle::new("sample --count 3 --npy")
        .arg("--run", &with_pt)
        .arg("--out", &samples)
        .ok();
    let img = image::open(samples.join("000002.png")).unwrap();
    assert_eq!((img.width(), img.height()), (8, 8));
    let npy = std::fs::read(samples.join("samples.npy")).unwrap();
    let header = String::from_utf8_lossy(&npy[10..80]);
    assert!(header.contains("(3, 1, 8, 8"), "{header}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `train ring` for 20 steps: progress every 2 steps to 20/20, a mode-coverage line whose
/// figures agree with each other (covered modes are those with at least 1/32 of the 2,000
/// samples within 3 std; the high-quality share is their total), and a 512x512 scatter plot
/// with the 8 ring centres marked in red and the samples in grey. Fails on a mode counted as
/// covered by a single sample (shown by a deliberate change to `mode_coverage`).
#[test]
fn train_ring_reports_mode_coverage_and_plots_its_samples() {
    let dir = temp_dir("ring");
    let out = Saddle::new("train ring --steps 20 --batch-size 64 --std 0.1")
        .arg("--out", &dir)
        .ok();
    assert!(out.contains("(std 0.1) for 20 steps, batch 64"), "{out}");
    let progress: Vec<&str> = out.lines().filter(|l| l.contains("  step ")).collect();
    assert_eq!(progress.len(), 10, "{out}");
    assert!(progress[9].contains("20/20"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("modes covered:"))
        .unwrap();
    let number = |after: &str, until: char| -> f64 {
        let rest = &line[line.find(after).unwrap() + after.len()..];
        rest[..rest.find(until).unwrap()].trim().parse().unwrap()
    };
    let covered = number("modes covered:", '/');
    let high_quality = number("high-quality samples:", '%');
    let counts: Vec<f64> = line[line.find('[').unwrap() + 1..line.find(']').unwrap()]
        .split(',')
        .map(|c| c.trim().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 8, "{line}");
    let total: f64 = counts.iter().sum();
    assert!(
        (high_quality - 100.0 * total / 2000.0).abs() <= 0.05,
        "{line}"
    );
    let need = 2000.0 / 32.0;
    assert_eq!(
        covered as usize,
        counts.iter().filter(|&&c| c >= need).count(),
        "{line}"
    );

    let img = image::open(dir.join("samples.png")).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (512, 512));
    for k in 0..8 {
        let a = k as f64 * std::f64::consts::TAU / 8.0;
        let px = |v: f64| ((v + 3.0) / 6.0 * 512.0) as u32;
        let (x, y) = (px(2.0 * a.cos()), px(-2.0 * a.sin()));
        assert_eq!(
            img.get_pixel(x, y).0,
            [220, 30, 30],
            "centre {k} at ({x}, {y})"
        );
    }
    assert!(
        img.pixels().any(|p| p.0 == [60, 60, 60]),
        "no samples drawn"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The JSON lines of a command's output.
fn json_rows(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `bench` on tiny cases: `gemm` as JSON lines (one per size, its rate `2n³ / time`), `conv` as
/// a table of the 6 DCGAN layers, `train --only` one case (and BigGAN's with its parameters). Fails on the GEMM rate from `2n²`
/// operations (shown by a deliberate change).
#[test]
fn bench_reports_every_case_of_a_tiny_run() {
    let out = Saddle::new("bench gemm --sizes 8,24 --runs 3 --json").ok();
    let mut rows = json_rows(&out);
    // After the products, where the CPU has AVX2: the FMA peak of all threads, as a rate.
    if rows.len() == 3 {
        let peak = rows.pop().unwrap();
        assert!(
            peak["name"].as_str().unwrap().starts_with("fma_peak_"),
            "{out}"
        );
        assert!(peak["gflops"].as_f64().unwrap() > 0.0, "{out}");
    }
    assert_eq!(rows.len(), 2, "{out}");
    for (row, n) in rows.iter().zip([8.0f64, 24.0]) {
        assert_eq!(row["name"], format!("sgemm_{n}"));
        let ms = row["median_ms"].as_f64().unwrap();
        assert!(ms > 0.0, "{row}");
        let rate = 2.0 * n.powi(3) / ms / 1e6;
        assert!(
            (row["gflops"].as_f64().unwrap() - rate).abs() <= 1e-9 * rate,
            "{row}"
        );
    }
    let out = Saddle::new("bench conv --batch 1 --runs 1").ok();
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    assert!(
        lines.next().unwrap().starts_with("CPU GEMM kernels: "),
        "{out}"
    );
    assert!(lines.next().unwrap().contains("median ms"), "{out}");
    let table: Vec<&str> = lines.collect();
    assert_eq!(table.len(), 6, "{out}");
    for row in table {
        let ms: f64 = row.split_whitespace().nth_back(1).unwrap().parse().unwrap();
        assert!(ms > 0.0, "{row}");
    }
    let out = Saddle::new("bench train --only dcgan32 --batch 2 --runs 1 --json").ok();
    let names: Vec<&str> = out.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(names.len(), 1, "{out}");
    assert!(names[0].contains("\"train_dcgan32_b2\""), "{out}");
    // WGAN-GP's step: one critic update through the gradient penalty, one G update.
    let out = Saddle::new("bench train --only wgangp --batch 2 --runs 1 --json").ok();
    let rows = json_rows(&out);
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["name"], "train_wgangp32_b2", "{out}");
    assert!(rows[0]["median_ms"].as_f64().unwrap() > 0.0, "{out}");
    // BigGAN's row carries the trained parameters of `saddle train biggan`'s default G and D
    // (the count benches/compare.sh checks against PyTorch's model).
    let out = Saddle::new("bench train --only biggan --batch 4 --runs 1 --json").ok();
    let rows = json_rows(&out);
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["name"], "train_biggan32_b4", "{out}");
    assert_eq!(rows[0]["params"], 321_409 + 65_473, "{out}");
}

/// `sample --checkpoint best` samples the best checkpoint, not the latest: a DCGAN trained 2
/// steps with a classifier (its one evaluation makes step 2 the best) and resumed to 4 without
/// one. Its samples equal those of the best checkpoint's file named by path and differ from
/// the latest's; a run without a best checkpoint is refused, naming the file. Fails on `best`
/// read as `latest` (shown by a deliberate change to `load_run_model`).
#[test]
fn sample_draws_from_the_best_checkpoint() {
    let dir = temp_dir("best");
    let (data, cls) = tiny_mnist_and_classifier(&dir, 40);
    let run = dir.join("run");
    Saddle::new("train dcgan --steps 2 --ngf 4 --ndf 4 --nz 8 --batch-size 16 --eval-count 24")
        .arg("--data", &data)
        .arg("--out", &run)
        .arg("--classifier", &cls)
        .ok();
    Saddle::new("train dcgan --steps 4")
        .arg("--resume", &run)
        .ok();
    let best = run.join("checkpoints/best.safetensors");
    let step = |path: &Path| {
        Checkpoint::load(path)
            .unwrap()
            .meta("run.step")
            .map(String::from)
    };
    assert_eq!(step(&best).as_deref(), Some("2"));
    assert_eq!(
        step(&run.join("checkpoints/latest.safetensors")).as_deref(),
        Some("4")
    );
    let sample = |which: &Path| -> Vec<u8> {
        let out = dir.join("samples");
        let _ = std::fs::remove_dir_all(&out);
        Saddle::new("sample --count 4 --npy")
            .arg("--run", &run)
            .arg("--checkpoint", which)
            .arg("--out", &out)
            .ok();
        std::fs::read(out.join("samples.npy")).unwrap()
    };
    let from_best = sample(Path::new("best"));
    assert_eq!(from_best, sample(&best));
    assert_ne!(from_best, sample(Path::new("latest")));

    let plain = dir.join("plain");
    Saddle::new("train dcgan --steps 1 --ngf 4 --ndf 4 --nz 8 --batch-size 16")
        .arg("--data", &data)
        .arg("--out", &plain)
        .ok();
    Saddle::new("sample --checkpoint best")
        .arg("--run", &plain)
        .arg("--out", dir.join("none"))
        .fails(&["best.safetensors"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `grid ebgan-pt` and `grid ebgan` on the same seed draw the same configuration (the smallest
/// of seed 0's: G 2x400, D 3x128 with dropout) and train it one step from the same weights,
/// batch, noise and masks: D's losses agree and G's differ by 0.1 times a pulling-away term,
/// so by more than 0 and at most 0.1. Each family's results, the summary of both and the
/// histogram are written. Fails (each shown by a deliberate change) on the ebgan-pt family
/// training plain EBGAN, and on the term weighted 0.2.
#[test]
fn grid_ebgan_pt_adds_the_pulling_away_term_to_the_ebgan_grid() {
    let dir = temp_dir("grid-pt");
    let (data, cls) = tiny_mnist_and_classifier(&dir, 20);
    let grid = dir.join("grid");
    let result = |family: &str| -> serde_json::Value {
        Saddle::new("grid")
            .words(family)
            .words("--configs 1 --steps 1 --batch-size 8 --samples 20 --seed 0")
            .arg("--classifier", &cls)
            .arg("--data", &data)
            .arg("--out", &grid)
            .ok();
        let lines = std::fs::read_to_string(grid.join(format!("{family}.jsonl"))).unwrap();
        let results: Vec<serde_json::Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(results.len(), 1, "{lines}");
        results.into_iter().next().unwrap()
    };
    let (pt, plain) = (result("ebgan-pt"), result("ebgan"));
    for (r, family) in [(&pt, "ebgan-pt"), (&plain, "ebgan")] {
        assert_eq!(r["config"]["family"], family, "{r}");
        assert_eq!(
            (r["steps"].as_u64(), r["samples"].as_u64()),
            (Some(1), Some(20))
        );
        assert!(r["i_prime"].as_f64().unwrap() >= 0.0, "{r}");
        assert_eq!(r["diverged"], false);
    }
    assert_eq!(pt["config"]["size_g"], 400);
    assert_eq!(pt["d_loss"], plain["d_loss"]);
    let extra = pt["g_loss"].as_f64().unwrap() - plain["g_loss"].as_f64().unwrap();
    assert!(extra > 0.0 && extra <= 0.1 + 1e-6, "{pt}\n{plain}");
    let summary = read_json(&grid.join("summary.json"));
    assert_eq!(summary["ebgan-pt"]["runs"], 1, "{summary}");
    assert_eq!(summary["ebgan"]["runs"], 1, "{summary}");
    let png = image::open(grid.join("histogram.png")).unwrap();
    assert_eq!((png.width(), png.height()), (640, 400));
    std::fs::remove_dir_all(&dir).unwrap();
}
