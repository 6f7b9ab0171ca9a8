use saddle_gan::data::Mixture2d;
use saddle_nn::engine::{no_grad, DType, Device, Rng, Tensor};
use saddle_nn::optim::{Adam, AdamConfig, Optimizer};
use saddle_nn::{Activation, Linear, Module, ModuleExt, Sequential};
fn main() {
    let mut rng = Rng::new(0);
    let ring = Mixture2d::ring(8, 2.0, 0.02);
    let mk = |a: usize, b: usize, rng: &mut Rng| {
        Sequential::new()
            .push(Linear::new(a, 64, true, DType::F32, rng).unwrap())
            .push(Activation::Relu)
            .push(Linear::new(64, 64, true, DType::F32, rng).unwrap())
            .push(Activation::Relu)
            .push(Linear::new(64, b, true, DType::F32, rng).unwrap())
    };
    let g = mk(8, 2, &mut rng);
    let d = mk(2, 1, &mut rng);
    let cfg = AdamConfig {
        beta1: 0.5,
        ..AdamConfig::default()
    };
    let mut og = Adam::with_lr(g.named_parameters(), 1e-3, cfg);
    let mut od = Adam::with_lr(d.named_parameters(), 1e-3, cfg);
    let ones = Tensor::ones(&[128, 1], DType::F32, Device::Cpu).unwrap();
    let zeros = Tensor::zeros(&[128, 1], DType::F32, Device::Cpu).unwrap();
    for step in 0..2000 {
        let real = ring.sample(128, DType::F32, &mut rng).unwrap();
        let z = Tensor::randn(&[128, 8], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
        let fake = g.forward(&z).unwrap().detach();
        let dr = d.forward(&real).unwrap();
        let df = d.forward(&fake).unwrap();
        let ld = dr
            .binary_cross_entropy_with_logits(&ones)
            .unwrap()
            .add(&df.binary_cross_entropy_with_logits(&zeros).unwrap())
            .unwrap();
        od.step(&ld.backward().unwrap()).unwrap();
        let z = Tensor::randn(&[128, 8], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
        let lg = d
            .forward(&g.forward(&z).unwrap())
            .unwrap()
            .binary_cross_entropy_with_logits(&ones)
            .unwrap();
        og.step(&lg.backward().unwrap()).unwrap();
        if step % 200 == 0 {
            let s = no_grad(|| g.forward(&z)).unwrap();
            let m = s.mean(&[0], false).unwrap().to_vec::<f32>().unwrap();
            let r = s
                .square()
                .unwrap()
                .sum(&[1], false)
                .unwrap()
                .sqrt()
                .unwrap()
                .mean_all()
                .unwrap()
                .to_scalar()
                .unwrap();
            println!(
                "step {step} ld {:.4} lg {:.4} mean {:?} mean radius {r:.3}",
                ld.to_scalar().unwrap(),
                lg.to_scalar().unwrap(),
                m
            );
        }
    }
}
