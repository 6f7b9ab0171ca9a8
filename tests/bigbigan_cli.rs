//! `saddle train bigbigan` end to end on the embedded digits at a tiny width: finite losses,
//! reconstructions beside the sample grids, a resume that ends on the uninterrupted run's
//! checkpoint bytes, `saddle probe` on the encoder against a random one, and `saddle sample
//! --reconstruct`.

mod common;

use common::*;

fn tiny() -> Saddle {
    Saddle::new(
        "train bigbigan --ch 2 --encoder-ch 3 --mlp-width 8 --batch-size 8 --log-every 1 \
         --sample-every 2 --checkpoint-every 1",
    )
}

#[test]
fn bigbigan_trains_resumes_probes_and_reconstructs() {
    let dir = temp_dir("bigbigan");
    let (straight, resumed) = (dir.join("straight"), dir.join("resumed"));
    tiny().words("--steps 3").arg("--out", &straight).ok();
    tiny().words("--steps 2").arg("--out", &resumed).ok();
    // E's width is the run's: a resume may not change it.
    Saddle::new("train bigbigan --steps 3 --encoder-ch 4")
        .arg("--resume", &resumed)
        .fails(&["--encoder-ch 4", "cannot change midway"]);
    Saddle::new("train bigbigan --steps 3")
        .arg("--resume", &resumed)
        .ok();
    for r in records(&straight) {
        for key in ["d_loss", "g_loss", "real_score", "fake_score"] {
            let v = r[key].as_f64().unwrap_or_else(|| panic!("no {key}"));
            assert!(v.is_finite(), "{key} {v}");
        }
    }
    let latest =
        |run: &std::path::Path| std::fs::read(run.join("checkpoints/latest.safetensors")).unwrap();
    assert!(
        latest(&straight) == latest(&resumed),
        "the resumed run's checkpoint differs"
    );
    for step in ["000000", "000002"] {
        let path = straight.join(format!("samples/reconstructions_{step}.png"));
        let image = image::open(&path).unwrap();
        // 16 images in rows of 8: 2 real rows and 2 reconstruction rows of 32x32 at 2x.
        let (w, h) = (image.width(), image.height());
        assert!(
            (4 * 64..5 * 64).contains(&h) && (8 * 64..9 * 64).contains(&w),
            "{w}x{h}"
        );
    }
    assert!(std::fs::read_to_string(straight.join("report.html"))
        .unwrap()
        .contains("reconstructions 000002"));

    let text = Saddle::new("probe --data digits --labels-per-class 5")
        .arg("--run", &straight)
        .ok();
    assert!(
        text.contains("trained_e") && text.contains("random_e"),
        "{text}"
    );
    let probe = read_json(&straight.join("probe.json"));
    for key in ["trained_e_test_accuracy", "random_e_test_accuracy"] {
        let acc = probe[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{key} {acc}");
    }

    let out = dir.join("rec");
    Saddle::new("sample --reconstruct --data digits --count 12")
        .arg("--run", &straight)
        .arg("--out", &out)
        .ok();
    assert!(image::open(out.join("reconstructions.png")).is_ok());
    // A model without an encoder refuses, and the encoder's resolution is checked.
    let dcgan = dir.join("dcgan");
    Saddle::new("train dcgan --steps 1 --batch-size 8")
        .arg("--out", &dcgan)
        .ok();
    Saddle::new("sample --reconstruct --data digits")
        .arg("--run", &dcgan)
        .arg("--out", dir.join("none"))
        .fails(&["no encoder"]);
    tiny()
        .words("--steps 1 --encoder-resolution 64")
        .arg("--out", dir.join("bad"))
        .fails(&["encoder's resolution 64"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
