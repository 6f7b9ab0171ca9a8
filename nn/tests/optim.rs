//! Optimiser trajectories against PyTorch 2.15 (f64), five steps on
//! loss(p) = sum(c * p * p) + p[0] * p[1] + sum(p), p0 = [1, -2, 3, 0.5], c = [1, 2, 0.5, -1].
//!
//! Literals from:
//! ```python
//! import torch
//! torch.set_default_dtype(torch.float64)
//! def run(make, steps=5):
//!     p = torch.tensor([1.0, -2.0, 3.0, 0.5], requires_grad=True)
//!     c = torch.tensor([1.0, 2.0, 0.5, -1.0])
//!     opt = make([p])
//!     for _ in range(steps):
//!         opt.zero_grad()
//!         loss = (c * p * p).sum() + (p[0] * p[1]) + p.sum()
//!         loss.backward()
//!         opt.step()
//!     return p.tolist()
//! run(lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.5, 0.999)))
//! run(lambda ps: torch.optim.AdamW(ps, lr=0.1, weight_decay=0.1, amsgrad=True))
//! run(lambda ps: torch.optim.Adam(ps, lr=0.05, weight_decay=0.2))
//! run(lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01))
//! run(lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.3))
//! ```

use saddle_engine::{Device, Tensor};
use saddle_nn::optim::{Adam, AdamConfig, Optimizer, ParamGroup, Sgd, SgdConfig};

fn run(mut make: impl FnMut(Vec<(String, Tensor)>) -> Box<dyn Optimizer>) -> Vec<f64> {
    let p = Tensor::from_vec(vec![1.0f64, -2.0, 3.0, 0.5], &[4], Device::Cpu)
        .unwrap()
        .with_requires_grad(true);
    let c = Tensor::from_vec(vec![1.0f64, 2.0, 0.5, -1.0], &[4], Device::Cpu).unwrap();
    let mut opt = make(vec![("p".into(), p.clone())]);
    for _ in 0..5 {
        let quad = c.mul(&p).unwrap().mul(&p).unwrap().sum_all().unwrap();
        let cross = p
            .narrow(0, 0, 1)
            .unwrap()
            .mul(&p.narrow(0, 1, 1).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
        let loss = quad
            .add(&cross)
            .unwrap()
            .add(&p.sum_all().unwrap())
            .unwrap();
        let grads = loss.backward().unwrap();
        opt.step(&grads).unwrap();
    }
    p.to_vec::<f64>().unwrap()
}

fn assert_close(got: &[f64], want: &[f64]) {
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-9, "got {got:?}, want {want:?}");
    }
}

#[test]
fn adam_matches_pytorch() {
    let got = run(|ps| {
        Box::new(Adam::with_lr(
            ps,
            0.1,
            AdamConfig {
                beta1: 0.5,
                ..AdamConfig::default()
            },
        ))
    });
    assert_close(&got, &[0.53074884018, -1.514131219246, 2.50664744824, 0.5]);
}

#[test]
fn adamw_amsgrad_matches_pytorch() {
    let cfg = AdamConfig {
        weight_decay: 0.1,
        amsgrad: true,
        ..AdamConfig::adamw()
    };
    let got = run(|ps| Box::new(Adam::with_lr(ps, 0.1, cfg)));
    assert_close(
        &got,
        &[
            0.468619301459,
            -1.415711759394,
            2.364561104916,
            0.178077681135,
        ],
    );
}

#[test]
fn adam_l2_weight_decay_matches_pytorch() {
    let got = run(|ps| {
        Box::new(Adam::with_lr(
            ps,
            0.05,
            AdamConfig {
                weight_decay: 0.2,
                ..AdamConfig::default()
            },
        ))
    });
    assert_close(
        &got,
        &[
            0.751475615766,
            -1.750634091171,
            2.750306865405,
            0.256301276386,
        ],
    );
}

#[test]
fn sgd_nesterov_matches_pytorch() {
    let cfg = SgdConfig {
        momentum: 0.9,
        nesterov: true,
        weight_decay: 0.01,
        ..SgdConfig::default()
    };
    let got = run(|ps| {
        Box::new(Sgd::new(vec![saddle_nn::optim::ParamGroup::new(ps, 0.05)], cfg).unwrap())
    });
    assert_close(
        &got,
        &[
            -0.165686442714,
            0.283290143177,
            0.249048813914,
            0.493780580078,
        ],
    );
}

#[test]
fn sgd_dampened_momentum_matches_pytorch() {
    let cfg = SgdConfig {
        momentum: 0.8,
        dampening: 0.3,
        ..SgdConfig::default()
    };
    let got = run(|ps| {
        Box::new(Sgd::new(vec![saddle_nn::optim::ParamGroup::new(ps, 0.05)], cfg).unwrap())
    });
    assert_close(
        &got,
        &[0.418296119094, -0.101132277562, 1.340739042375, 0.5],
    );
}

#[test]
fn optimizer_state_round_trips() {
    let p = Tensor::from_vec(vec![1.0f64, 2.0], &[2], Device::Cpu)
        .unwrap()
        .with_requires_grad(true);
    let mut a = Adam::with_lr(vec![("w".into(), p.clone())], 0.1, AdamConfig::default());
    let grads = p.square().unwrap().sum_all().unwrap().backward().unwrap();
    a.step(&grads).unwrap();
    let saved = a.state_tensors();
    let mut b = Adam::with_lr(vec![("w".into(), p.clone())], 0.1, AdamConfig::default());
    b.load_state_tensors(&saved).unwrap();
    let names: Vec<String> = b.state_tensors().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["w.step", "w.exp_avg", "w.exp_avg_sq"]);
    assert_eq!(
        b.state_tensors()[1].1.to_vec::<f64>().unwrap(),
        saved[1].1.to_vec::<f64>().unwrap()
    );
}

/// `clip_grad_norm` by PyTorch's `clip_grad_norm_` formula: the joint L2 norm over all
/// parameters (here 13, from gradients [3, 4] and [0, 12]) is returned, and when it exceeds
/// `max_norm` every gradient is scaled by `max_norm / (norm + 1e-6)` (6.5 / 13.000001, so
/// [1.4999998846153937, 1.9999998461538582] and [0, 5.999999538461575] in f64); below it
/// nothing changes, and a parameter without a gradient is left out. Fails (each shown by a
/// deliberate change) on each parameter clipped by its own norm (5 and 12) instead of the joint
/// one, and on the norm's square root left out.
#[test]
fn clip_grad_norm_scales_all_gradients_by_their_joint_norm() {
    use saddle_nn::optim::clip_grad_norm;
    let leaf = || {
        Tensor::zeros(&[2], saddle_engine::DType::F64, Device::Cpu)
            .unwrap()
            .with_requires_grad(true)
    };
    let (a, b, unused) = (leaf(), leaf(), leaf());
    let weights = |v: [f64; 2]| Tensor::from_vec(v.to_vec(), &[2], Device::Cpu).unwrap();
    let grads = || {
        let loss = a.mul(&weights([3.0, 4.0])).unwrap().sum_all().unwrap();
        let loss = loss
            .add(&b.mul(&weights([0.0, 12.0])).unwrap().sum_all().unwrap())
            .unwrap();
        loss.backward().unwrap()
    };
    let params = vec![
        ("a".to_string(), a.clone()),
        ("b".to_string(), b.clone()),
        ("unused".to_string(), unused.clone()),
    ];
    let read = |g: &saddle_engine::Grads, p: &Tensor| g.get(p).unwrap().to_vec::<f64>().unwrap();

    let mut g = grads();
    assert_eq!(clip_grad_norm(&mut g, &params, 6.5).unwrap(), 13.0);
    let want = [
        [1.4999998846153937, 1.9999998461538582],
        [0.0, 5.999999538461575],
    ];
    for (p, w) in [&a, &b].into_iter().zip(want) {
        for (got, want) in read(&g, p).iter().zip(w) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
    }
    assert!(g.get(&unused).is_none());
    // Below the limit the gradients are untouched.
    let mut g = grads();
    assert_eq!(clip_grad_norm(&mut g, &params, 13.5).unwrap(), 13.0);
    assert_eq!(
        (read(&g, &a), read(&g, &b)),
        (vec![3.0, 4.0], vec![0.0, 12.0])
    );
}

/// State loaded from another optimiser's `state_tensors` (an in-memory checkpoint, as a
/// restore straight from `checkpoint()` does) is a copy: stepping either optimiser leaves the
/// other's moments alone. The loaded moments used to share storage with the source's, which
/// are updated in place, so a trainer restored in memory drifted from its source (found by the
/// BigGAN trainer's resume test).
#[test]
fn loaded_optimizer_state_does_not_alias_its_source() {
    let p = Tensor::from_vec(vec![1.0f64, 2.0], &[2], Device::Cpu)
        .unwrap()
        .with_requires_grad(true);
    let grads = p.square().unwrap().sum_all().unwrap().backward().unwrap();
    let named = || vec![("w".to_string(), p.clone())];
    let mut adam = Adam::with_lr(named(), 0.1, AdamConfig::default());
    let sgd_config = SgdConfig {
        momentum: 0.9,
        ..SgdConfig::default()
    };
    let sgd = || Sgd::new(vec![ParamGroup::new(named(), 0.1)], sgd_config).unwrap();
    let mut sgd_source = sgd();
    let mut sources: [(&mut dyn Optimizer, Box<dyn Optimizer>); 2] = [
        (
            &mut adam,
            Box::new(Adam::with_lr(named(), 0.1, AdamConfig::default())),
        ),
        (&mut sgd_source, Box::new(sgd())),
    ];
    for (source, copy) in sources.iter_mut() {
        source.step(&grads).unwrap();
        copy.load_state_tensors(&source.state_tensors()).unwrap();
        let before: Vec<Vec<f64>> = copy
            .state_tensors()
            .iter()
            .map(|(_, t)| t.to_vec_f64().unwrap())
            .collect();
        source.step(&grads).unwrap();
        let after: Vec<Vec<f64>> = copy
            .state_tensors()
            .iter()
            .map(|(_, t)| t.to_vec_f64().unwrap())
            .collect();
        assert_eq!(before, after);
    }
}
