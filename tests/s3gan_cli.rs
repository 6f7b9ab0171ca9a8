//! `saddle train s3gan --method M` (the fewer-labels paper's methods) end to end on the
//! embedded digits at a tiny width: every method trains with finite losses and, interrupted
//! and resumed, ends on the same checkpoint bytes as an uninterrupted run; the pre-trained
//! labels are recorded, reused on resume and by `--labels-from`.

mod common;

use common::*;
use std::path::Path;

const METHODS: [&str; 9] = [
    "biggan",
    "biggan-k",
    "single-label",
    "random-label",
    "clustering",
    "s2gan-co",
    "s2gan",
    "s3gan",
    "s3gan-co",
];

/// A tiny run of `method`: ch 2, one D step of 16 images, a 2-update labeller.
fn tiny(method: &str) -> Saddle {
    Saddle::new(&format!(
        "train s3gan --method {method} --ch 2 --shared-dim 4 --batch-size 16 \
         --d-steps 1 --labeller-steps 2 --log-every 1 --sample-every 100 --checkpoint-every 1"
    ))
}

fn latest(run: &Path) -> Vec<u8> {
    std::fs::read(run.join("checkpoints/latest.safetensors")).unwrap()
}

#[test]
fn every_method_trains_finite_and_resumes_to_the_same_checkpoint() {
    let dir = temp_dir("s3gan-methods");
    for method in METHODS {
        let (straight, resumed) = (dir.join(method), dir.join(format!("{method}-resumed")));
        tiny(method)
            .words("--labels 20 --steps 3")
            .arg("--out", &straight)
            .ok();
        tiny(method)
            .words("--labels 20 --steps 2")
            .arg("--out", &resumed)
            .ok();
        let text = Saddle::new("train s3gan --steps 3")
            .arg("--resume", &resumed)
            .ok();
        for r in records(&straight) {
            for key in ["d_loss", "g_loss"] {
                let v = r[key]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{method}: no {key}"));
                assert!(v.is_finite(), "{method}: {key} {v}");
            }
        }
        assert_eq!(steps_logged(&straight), [1, 2, 3], "{method}");
        assert_eq!(steps_logged(&resumed), [1, 2, 3], "{method}");
        assert!(
            latest(&straight) == latest(&resumed),
            "{method}: the resumed run's checkpoint differs"
        );
        // The pre-trained methods record their labels, and a resume reads them back instead
        // of training the labeller again.
        let pretrained = matches!(method, "clustering" | "s2gan" | "s3gan");
        assert_eq!(
            straight.join("labels.json").exists(),
            pretrained,
            "{method}"
        );
        assert!(!text.contains("labeller"), "{method} resumed:\n{text}");
        // Co-training and rotation add D's heads.
        let ck =
            saddle_nn::Checkpoint::load(straight.join("checkpoints/latest.safetensors")).unwrap();
        let has = |prefix: &str| ck.names().any(|n| n.starts_with(prefix));
        assert_eq!(has("d_predictor."), method.ends_with("-co"), "{method}");
        assert_eq!(has("d_rotation."), method.starts_with("s3gan"), "{method}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The labels each method trains on: read from the labels record and the data the run saw.
#[test]
fn pretrained_labels_are_recorded_and_reused_with_their_settings_checked() {
    let dir = temp_dir("s3gan-labels");
    let s2gan = dir.join("s2gan");
    let text = tiny("s2gan")
        .words("--labels 20 --steps 1")
        .arg("--out", &s2gan)
        .ok();
    assert!(text.contains("accuracy on the unlabelled images"), "{text}");
    let record = read_json(&s2gan.join("labels.json"));
    assert_eq!(record["source"], "s2l");
    assert_eq!(record["labels_percent"], 20.0);
    assert_eq!(record["images"], 1797);
    let labels = record["labels"].as_array().unwrap();
    assert_eq!(labels.len(), 1797);
    assert!(labels.iter().all(|l| l.as_u64().unwrap() < 10));
    let quality = record["quality"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&quality), "{quality}");

    // S3GAN at the same share and seed reuses them without training a labeller.
    let s3gan = dir.join("s3gan");
    let text = tiny("s3gan")
        .words("--labels 20 --steps 1")
        .arg("--labels-from", s2gan.join("labels.json"))
        .arg("--out", &s3gan)
        .ok();
    assert!(!text.contains("labeller:"), "{text}");
    assert_eq!(
        read_json(&s3gan.join("labels.json"))["labels"],
        record["labels"]
    );
    // ... but not at another share, seed, or source.
    for (flags, named) in [
        ("--labels 10", "10% labelled"),
        ("--labels 20 --seed 4", "seed 4"),
    ] {
        tiny("s3gan")
            .words(&format!("--steps 1 {flags}"))
            .arg("--labels-from", s2gan.join("labels.json"))
            .arg("--out", dir.join("refused"))
            .fails(&["--labels-from", named]);
    }
    tiny("clustering")
        .words("--labels 20 --steps 1")
        .arg("--labels-from", s2gan.join("labels.json"))
        .arg("--out", dir.join("refused"))
        .fails(&["`clustering` labels"]);
    // A folder that holds a run is refused before the labeller trains.
    let text = tiny("s2gan")
        .words("--labels 20 --steps 1")
        .arg("--out", &s2gan)
        .fails(&["already holds a run"]);
    assert!(!text.contains("labeller:"), "{text}");
    // Methods that need a share refuse 0%; rotation needs batches of 16.
    tiny("s2gan")
        .words("--steps 1 --labels 0")
        .arg("--out", dir.join("none"))
        .fails(&["labels none"]);
    Saddle::new("train s3gan --method s3gan --batch-size 8 --steps 1")
        .arg("--out", dir.join("odd"))
        .fails(&["--method s3gan", "multiple of 16"]);
    Saddle::new("train s3gan --method s2gan --unconditional --steps 1")
        .arg("--out", dir.join("uncond"))
        .fails(&["drop --unconditional"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
