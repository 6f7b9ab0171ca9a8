//! First end-to-end training: a GAN on 8 Gaussians on a ring must cover every mode, with the
//! standard loss and with WGAN-GP (whose critic trains through gradients of gradients).

use saddle_gan::data::Mixture2d;
use saddle_gan::toy::{train_toy_gan, ToyConfig};

#[test]
fn gan_on_a_ring_of_eight_gaussians_covers_all_modes() {
    let ring = Mixture2d::ring(8, 2.0, 0.05);
    // The defaults: 2,500 steps, batch 256, 128 hidden units, Adam 1e-3 with beta1 0.5.
    let cfg = ToyConfig::default();
    let (_, coverage) = train_toy_gan(&ring, &cfg, 0, &mut |_| {}).unwrap();
    assert_eq!(coverage.covered, 8, "{coverage:?}");
    assert!(coverage.high_quality > 0.6, "{coverage:?}");
}

#[test]
fn wgan_gp_on_the_ring_covers_all_modes() {
    let ring = Mixture2d::ring(8, 2.0, 0.05);
    // The paper's toy settings (penalty weight 0.1, 5 critic updates per G update, Adam β2
    // 0.9) at the defaults' learning rate, 1,500 G updates.
    let cfg = ToyConfig {
        steps: 1500,
        wgan_gp: Some(0.1),
        n_critic: 5,
        ..ToyConfig::default()
    };
    let (_, coverage) = train_toy_gan(&ring, &cfg, 0, &mut |_| {}).unwrap();
    assert_eq!(coverage.covered, 8, "{coverage:?}");
    assert!(coverage.high_quality > 0.5, "{coverage:?}");
}
