//! The domain classifier on a device.

mod common;

use saddle_gan::models::classifier::Classifier;
use saddle_nn::engine::{DType, Device, Rng, Tensor};
use saddle_nn::ModuleExt;

/// The classifier trained a few Adam steps from one seed on the CPU and on cuda:0 gives the same
/// cross-entropy losses within 1e-3 relative (convolutions, max pooling, linear layers, the
/// device cross-entropy), and the same accuracy on host images it moves there slice by slice
/// (32x32 inputs, centre-cropped on the device). Skipped with the reason without a GPU.
#[test]
fn trains_to_the_same_loss_curve_on_both_devices() {
    common::assert_same_curve_on_both_devices("classifier", 1e-3, |device| {
        let model = Classifier::new(10, &mut Rng::new(5)).unwrap();
        model.to_device(device).unwrap();
        assert_eq!(model.device(), device);
        let mut opt = model.optimizer();
        let mut data = Rng::new(6);
        let mut images = |n: usize, side: usize| {
            Tensor::rand(
                &[n, 1, side, side],
                0.0,
                1.0,
                DType::F32,
                Device::Cpu,
                &mut data,
            )
            .unwrap()
        };
        let labels: Vec<usize> = (0..8).map(|i| (i * 3) % 10).collect();
        let mut curve: Vec<_> = (0..3)
            .map(|_| {
                let x = images(8, 28);
                let loss = model.train_step(&mut opt, &x, &labels).unwrap();
                vec![("loss", loss)]
            })
            .collect();
        let test = images(6, 32);
        let accuracy = model.accuracy(&test, &labels[..6], 4).unwrap();
        let features = model.features(&test).unwrap();
        assert_eq!(features.device(), device);
        let mean_feature = features.mean_all().unwrap().to_scalar().unwrap();
        curve.push(vec![("accuracy", accuracy), ("mean feature", mean_feature)]);
        curve
    });
}
