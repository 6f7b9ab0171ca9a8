//! BigGAN: the paper's parameter counts at 128x128, counts that match the built models, shapes
//! at 32x32, the projection head against hand-computed values, and errors naming what is wrong.

use saddle_gan::models::biggan::{BigGanConfig, BigGanDiscriminator, BigGanGenerator};
use saddle_nn::engine::{DType, Device, Rng, Tensor};
use saddle_nn::init::WeightInit;
use saddle_nn::{Module, ModuleExt};
use std::time::Instant;

/// A narrow conditional model at `resolution` (attention at 16x16, where both G and D have a
/// block at every supported resolution).
fn small(resolution: usize, channels: usize) -> BigGanConfig {
    BigGanConfig {
        resolution,
        channels,
        ch: 8,
        num_classes: Some(5),
        z_dim: 4 * 7,
        shared_dim: 6,
        attention_resolution: Some(16),
        spectral_norm_conditioning: true,
        init: WeightInit::Orthogonal,
    }
}

#[test]
fn the_imagenet_128_configuration_has_the_papers_parameter_counts() {
    // Trained parameters only (batch-norm running statistics and spectral-norm u, v are
    // buffers), counted from the sizes the constructors build; the next test ties the two.
    let cfg = BigGanConfig::imagenet128();
    assert_eq!(cfg.discriminator_parameters().unwrap(), 87_982_370);
    assert_eq!(cfg.generator_parameters().unwrap(), 70_433_988);
}

#[test]
fn built_models_have_the_counted_parameters_at_every_resolution_and_variant() {
    let mut rng = Rng::new(1);
    let mut configs = Vec::new();
    for (resolution, z_dim) in [(32, 4 * 7), (64, 5 * 7), (128, 6 * 7)] {
        let cfg = BigGanConfig {
            z_dim,
            ..small(resolution, 3)
        };
        configs.push(cfg);
        configs.push(BigGanConfig {
            num_classes: None,
            attention_resolution: None,
            spectral_norm_conditioning: false,
            ..cfg
        });
    }
    for cfg in configs {
        let g = BigGanGenerator::new(cfg, DType::F32, &mut rng).unwrap();
        let d = BigGanDiscriminator::new(cfg, DType::F32, &mut rng).unwrap();
        assert_eq!(
            g.num_parameters(),
            cfg.generator_parameters().unwrap(),
            "G {cfg:?}"
        );
        assert_eq!(
            d.num_parameters(),
            cfg.discriminator_parameters().unwrap(),
            "D {cfg:?}"
        );
    }
}

#[test]
#[ignore = "allocates the 128x128 models (~160M parameters, 1.4 GB peak) and orthogonalises every weight: ~2e11 multiply-adds, about 30 s on 2 busy cores"]
fn building_the_imagenet_128_models_allocates_the_papers_parameter_counts() {
    let mut rng = Rng::new(2);
    let cfg = BigGanConfig::imagenet128();
    let start = Instant::now();
    let g = BigGanGenerator::new(cfg, DType::F32, &mut rng).unwrap();
    let built_g = start.elapsed();
    let d = BigGanDiscriminator::new(cfg, DType::F32, &mut rng).unwrap();
    eprintln!(
        "built G in {:.1?}, D in {:.1?}",
        built_g,
        start.elapsed() - built_g
    );
    assert_eq!(g.num_parameters(), 70_433_988);
    assert_eq!(d.num_parameters(), 87_982_370);
}

#[test]
fn generator_and_discriminator_shapes_at_32x32_with_labels() {
    let mut rng = Rng::new(3);
    for channels in [1, 3] {
        let cfg = small(32, channels);
        let g = BigGanGenerator::new(cfg, DType::F32, &mut rng).unwrap();
        let d = BigGanDiscriminator::new(cfg, DType::F32, &mut rng).unwrap();
        let z = Tensor::randn(&[3, 28], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
        let labels = [0, 4, 2];
        let images = g.forward(&z, Some(&labels)).unwrap();
        assert_eq!(images.shape(), &[3, channels, 32, 32]);
        let values = images.to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| v.abs() <= 1.0), "tanh keeps [-1, 1]");
        let logits = d.forward(&images, Some(&labels)).unwrap();
        assert_eq!(logits.shape(), &[3]);
        assert!(logits
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .all(|v| v.is_finite()));
        assert_eq!(d.features(&images).unwrap().shape(), &[3, 16]);
    }
}

#[test]
fn the_unconditional_variant_takes_no_labels() {
    let mut rng = Rng::new(4);
    let cfg = BigGanConfig {
        num_classes: None,
        z_dim: 10,
        ..small(32, 1)
    };
    let g = BigGanGenerator::new(cfg, DType::F32, &mut rng).unwrap();
    let d = BigGanDiscriminator::new(cfg, DType::F32, &mut rng).unwrap();
    assert!(g.shared.is_none() && d.embed.is_none());
    let z = Tensor::randn(&[2, 10], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
    let images = Module::forward(&g, &z).unwrap();
    assert_eq!(Module::forward(&d, &images).unwrap().shape(), &[2]);
    let e = d.forward(&images, Some(&[0, 1])).unwrap_err().to_string();
    assert!(e.contains("unconditional"), "{e}");
}

#[test]
fn the_projection_head_is_linear_plus_the_labels_embedding_dotted_with_the_features() {
    // A tiny D (32x32, ch 1: C = 2 features, 2 classes) with rank-one weights, whose spectral
    // norm one power iteration finds exactly: linear w = [3, 4], bias 0.5 (σ = 5); embedding
    // a bᵀ with a = [1, 2], b = [3, 4] (σ = |a| |b| = 5 √5). For h = [1, -2]:
    // f(h) = (3 - 8) / 5 + 0.5 = -0.5; embed(y) . h = a_y (3 - 8) / (5 √5) = -a_y / √5.
    let mut rng = Rng::new(5);
    let cfg = BigGanConfig {
        ch: 1,
        num_classes: Some(2),
        attention_resolution: None,
        ..small(32, 1)
    };
    let d = BigGanDiscriminator::new(cfg, DType::F64, &mut rng).unwrap();
    let set = |t: &Tensor, values: Vec<f64>| {
        let shape = t.shape().to_vec();
        t.assign(&Tensor::from_vec(values, &shape, Device::Cpu).unwrap())
            .unwrap();
    };
    set(&d.linear.inner.weight, vec![3.0, 4.0]);
    set(d.linear.inner.bias.as_ref().unwrap(), vec![0.5]);
    let embed = d.embed.as_ref().unwrap();
    set(&embed.inner.weight, vec![3.0, 4.0, 6.0, 8.0]);
    let h = Tensor::from_vec(vec![1.0, -2.0, 1.0, -2.0], &[2, 2], Device::Cpu).unwrap();
    let got = d.head(&h, Some(&[1, 0])).unwrap().to_vec::<f64>().unwrap();
    let root5 = 5f64.sqrt();
    let want = [-0.5 - 2.0 / root5, -0.5 - 1.0 / root5];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "got {got:?}, want {want:?}");
    }
}

#[test]
fn bad_inputs_and_configurations_are_errors_that_say_what_is_wrong() {
    let mut rng = Rng::new(6);
    let cfg = small(32, 3);
    let g = BigGanGenerator::new(cfg, DType::F32, &mut rng).unwrap();
    let d = BigGanDiscriminator::new(cfg, DType::F32, &mut rng).unwrap();
    let z = Tensor::zeros(&[2, 28], DType::F32, Device::Cpu).unwrap();
    let message = |r: saddle_nn::engine::Result<Tensor>| r.unwrap_err().to_string();
    let e = message(g.forward(&z, Some(&[0, 5])));
    assert!(e.contains("label 5") && e.contains("5"), "{e}");
    let e = message(g.forward(&z, None));
    assert!(e.contains("needs 2 labels"), "{e}");
    let e = message(g.forward(
        &Tensor::zeros(&[2, 27], DType::F32, Device::Cpu).unwrap(),
        None,
    ));
    assert!(e.contains("[2, 27]") && e.contains("[N, 28]"), "{e}");
    let x = Tensor::zeros(&[2, 1, 32, 32], DType::F32, Device::Cpu).unwrap();
    let e = message(d.forward(&x, Some(&[0, 1])));
    assert!(
        e.contains("[2, 1, 32, 32]") && e.contains("[N, 3, 32, 32]"),
        "{e}"
    );
    let odd_z = BigGanConfig { z_dim: 30, ..cfg };
    let e = BigGanGenerator::new(odd_z, DType::F32, &mut rng)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("z_dim 30") && e.contains("4 equal chunks"),
        "{e}"
    );
    let far = BigGanConfig {
        attention_resolution: Some(32),
        ..cfg
    };
    let e = far.discriminator_parameters().unwrap_err().to_string();
    assert!(
        e.contains("attention at 32x32") && e.contains("no D block"),
        "{e}"
    );
    let e = BigGanConfig {
        resolution: 48,
        ..cfg
    }
    .generator_parameters()
    .unwrap_err()
    .to_string();
    assert!(e.contains("resolution 48"), "{e}");
}
