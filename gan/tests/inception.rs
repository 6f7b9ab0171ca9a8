//! The FID Inception-v3 against PyTorch (issue 19). `scripts/inception_fixture.py --full`
//! builds pytorch-fid's network in PyTorch (checked there to give exactly what torchvision's
//! Inception3 with pytorch-fid's own block classes gives), fills it with weights from a formula
//! this test computes too (so no weights are committed), and writes the float64 pool3 features
//! and logits of a fixed batch at width divisors 1 (the real network) and 8, and the divisor-1
//! state_dict's names and shapes. Measured when the fixtures were made (torch 2.15, CPU):
//! saddle's float32 pass is within 5.4e-7 (divisor 1) and 1.8e-5 (divisor 8) of the float64
//! reference, relative to the largest value; PyTorch's own float32 pass within 5.4e-7 and
//! 1.1e-4.

use saddle_gan::metrics::inception::{InceptionV3, NUM_LOGITS};
use saddle_nn::engine::{Device, Tensor};
use saddle_nn::{Checkpoint, Module};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The network's tensors by name (PyTorch's names), with their shapes.
fn named_shapes(net: &InceptionV3) -> BTreeMap<String, Vec<usize>> {
    let mut out = BTreeMap::new();
    net.visit("", &mut |name, t, _| {
        out.insert(name, t.shape().to_vec());
    });
    out
}

/// The script's formula weights for `net` (see `formula_state` there), as a checkpoint.
// 0.7071 is the script's step, not an approximation of 1/sqrt(2).
#[allow(clippy::approx_constant)]
fn formula_weights(net: &InceptionV3) -> Checkpoint {
    let mut ck = Checkpoint::new();
    for (k, (name, shape)) in named_shapes(net).into_iter().enumerate() {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|i| {
                let u = (0.7071 * i as f64 + 1.618 * k as f64 + 0.25).sin();
                let v = if name.ends_with("conv.weight") {
                    u * 2.0 * (1.0 / (n / shape[0]) as f64).sqrt()
                } else if name == "fc.weight" {
                    u * (1.0 / shape[1] as f64).sqrt()
                } else if name.ends_with("bn.weight") {
                    1.0 + 0.2 * u
                } else if name.ends_with("running_var") {
                    1.0 + 0.25 * (u + 1.0)
                } else {
                    0.1 * u
                };
                v as f32
            })
            .collect();
        ck.add_tensor(
            name,
            &Tensor::from_vec(values, &shape, Device::Cpu).unwrap(),
        );
    }
    ck
}

fn formula_input() -> Tensor {
    let n = 2 * 3 * 28 * 28;
    let v: Vec<f32> = (0..n)
        .map(|i| (0.5 + 0.5 * (0.37 * i as f64 + 0.1).sin()) as f32)
        .collect();
    Tensor::from_vec(v, &[2, 3, 28, 28], Device::Cpu).unwrap()
}

/// Max |got - want| over max |want|.
fn relative_error(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (g, w)| m.max((g - w).abs()));
    err / scale
}

fn check_against(file: &str, divisor: usize) {
    let text = std::fs::read_to_string(fixture(file)).unwrap();
    let want: serde_json::Value = serde_json::from_str(&text).unwrap();
    let floats = |key: &str| -> Vec<f64> {
        want[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let net = InceptionV3::new(divisor).unwrap();
    net.load_weights(&formula_weights(&net)).unwrap();
    let out = net.forward_features(&formula_input()).unwrap();
    assert_eq!(out.pool3.shape(), [2, 2048 / divisor]);
    assert_eq!(out.logits.shape(), [2, NUM_LOGITS]);
    let pool3 = relative_error(&out.pool3.to_vec_f64().unwrap(), &floats("pool3"));
    let logits = relative_error(&out.logits.to_vec_f64().unwrap(), &floats("logits"));
    println!("divisor {divisor}: pool3 relative error {pool3:.2e}, logits {logits:.2e}");
    assert!(pool3 <= 1e-4, "pool3 relative error {pool3}");
    assert!(logits <= 1e-4, "logits relative error {logits}");
}

#[test]
fn pool3_features_and_logits_match_pytorch_at_width_divisor_8() {
    check_against("inception_fid_d8.json", 8);
}

/// The real network's width (23.8M values, two images in about a second).
#[test]
fn pool3_features_and_logits_match_pytorch_at_full_width() {
    check_against("inception_fid_d1.json", 1);
}

/// Every tensor of pytorch-fid's state_dict (names and shapes, num_batches_tracked aside) is
/// one of the network's and the other way round, so its published weights load by name.
#[test]
fn the_full_networks_tensors_are_pytorch_fids_state_dict() {
    let text = std::fs::read_to_string(fixture("inception_fid_keys.txt")).unwrap();
    let mut want = BTreeMap::new();
    for line in text.lines() {
        let (name, shape) = line.split_once(' ').unwrap();
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        let shape: Vec<usize> = serde_json::from_str(shape).unwrap();
        want.insert(name.to_string(), shape);
    }
    let net = InceptionV3::new(1).unwrap();
    assert_eq!(named_shapes(&net), want);
    let params: usize = want.values().map(|s| s.iter().product::<usize>()).sum();
    // torchvision's Inception-v3 without the auxiliary head, 1008 logits: 23.8M values
    // (parameters and batch-norm statistics).
    assert!((23_000_000..25_000_000).contains(&params), "{params}");
}

#[test]
fn bad_weight_files_are_errors_naming_the_tensor_or_the_file() {
    let dir = std::env::temp_dir().join(format!("saddle-inception-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let net = InceptionV3::new(8).unwrap();
    let good = formula_weights(&net);
    let path = dir.join("good.safetensors");
    good.save(&path).unwrap();
    assert!(InceptionV3::load(&path, 8).is_ok());
    // Another width: a shape mismatch naming the tensor.
    let err = InceptionV3::load(&path, 4).err().unwrap().to_string();
    assert!(
        err.contains("Conv2d_1a_3x3.conv.weight") && err.contains("shape"),
        "{err}"
    );
    // A missing tensor.
    let mut partial = Checkpoint::new();
    net.visit("", &mut |name, t, _| {
        if name != "Mixed_7c.branch_pool.bn.running_var" {
            partial.add_tensor(name, t);
        }
    });
    let missing = dir.join("missing.safetensors");
    partial.save(&missing).unwrap();
    let err = InceptionV3::load(&missing, 8).err().unwrap().to_string();
    assert!(err.contains("Mixed_7c.branch_pool.bn.running_var"), "{err}");
    // A truncated file names the file.
    let bytes = std::fs::read(&path).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = InceptionV3::load(&truncated, 8).err().unwrap().to_string();
    assert!(err.contains("truncated.safetensors"), "{err}");
    assert!(InceptionV3::new(3).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
