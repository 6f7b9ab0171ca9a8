//! `saddle eval fid` end to end with a narrow Inception-v3 (width / 8, random weights): a set
//! against itself scores FID 0, against another set more; bad sets are errors naming the file.

mod common;

use common::*;
use npyz::WriterBuilder;
use saddle_gan::metrics::inception::InceptionV3;
use saddle_nn::engine::{DType, Device, Rng, Tensor};
use saddle_nn::{Checkpoint, Module};
use std::path::Path;

fn write_npy(path: &Path, shape: [u64; 4], values: &[f32]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&shape)
        .writer(std::io::BufWriter::new(file))
        .begin_nd()
        .unwrap();
    w.extend(values.iter().copied()).unwrap();
    w.finish().unwrap();
}

/// `n` 1x16x16 images in [0, 1] from `seed`.
fn images(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n * 256).map(|_| rng.uniform_f32()).collect()
}

#[test]
fn eval_fid_scores_two_sets_and_refuses_bad_ones() {
    let dir = temp_dir("eval-fid");
    std::fs::create_dir_all(&dir).unwrap();
    // Random weights of the width/8 network: He-scaled convolutions, identity batch norms.
    let net = InceptionV3::new(8).unwrap();
    let mut ck = Checkpoint::new();
    let mut rng = Rng::new(4);
    net.visit("", &mut |name, t, _| {
        let shape = t.shape();
        let fan_in = shape[1..].iter().product::<usize>().max(1) as f64;
        let v = if name.ends_with("weight") && shape.len() > 1 {
            Tensor::randn(
                shape,
                0.0,
                (2.0 / fan_in).sqrt(),
                DType::F32,
                Device::Cpu,
                &mut rng,
            )
        } else if name.ends_with("bn.weight") || name.ends_with("running_var") {
            Tensor::ones(shape, DType::F32, Device::Cpu)
        } else {
            Tensor::zeros(shape, DType::F32, Device::Cpu)
        };
        ck.add_tensor(name, &v.unwrap());
    });
    let weights = dir.join("inception-d8.safetensors");
    ck.save(&weights).unwrap();
    let (a, b) = (dir.join("a.npy"), dir.join("b.npy"));
    write_npy(&a, [12, 1, 16, 16], &images(12, 1));
    let darker: Vec<f32> = images(12, 2).iter().map(|v| v * 0.3).collect();
    write_npy(&b, [12, 1, 16, 16], &darker);
    let fid = |x: &Path, y: &Path| -> f64 {
        let text = Saddle::new("eval fid --inception-width-divisor 8")
            .arg("--inception", &weights)
            .value(x)
            .value(y)
            .ok();
        let at = text.find("FID ").unwrap_or_else(|| panic!("{text}")) + 4;
        text[at..]
            .split(',')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let same = fid(&a, &a);
    assert!(same.abs() < 1e-6, "a set against itself: {same}");
    let other = fid(&a, &b);
    assert!(other > 1e-3, "a set against a darker one: {other}");

    let bad = dir.join("bad.npy");
    write_npy(&bad, [2, 1, 4, 4], &[2.0; 32]);
    Saddle::new("eval fid --inception-width-divisor 8")
        .arg("--inception", &weights)
        .value(&bad)
        .value(&a)
        .fails(&["bad.npy", "outside [0, 1]"]);
    let flat = dir.join("flat.npy");
    write_npy(&flat, [1, 1, 2, 32], &[0.5; 64]);
    Saddle::new("eval fid --inception-width-divisor 8")
        .arg("--inception", &weights)
        .value(&flat)
        .value(&a)
        .fails(&["flat.npy", "at least 2"]);
    Saddle::new("eval fid --inception-width-divisor 4")
        .arg("--inception", &weights)
        .value(&a)
        .value(&b)
        .fails(&["inception-d8.safetensors", "shape"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
