//! BigGAN's standing statistics: batch norm's running statistics re-estimated from a fixed
//! number of batches, with momentum and mode restored afterwards.

use saddle_engine::{DType, Device, Tensor};
use saddle_nn::{standing_stats, Activation, BatchNorm, Linear, Module, Sequential};

fn t(v: Vec<f64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v, shape, Device::Cpu).unwrap()
}

fn batch(k: usize) -> Tensor {
    t(
        (0..20)
            .map(|i| (i as f64 * (k + 1) as f64 * 0.37).sin() * 2.0)
            .collect(),
        &[5, 4],
    )
}

fn close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() < 1e-9, "got {got:?}\nwant {want:?}");
    }
}

fn lin1() -> Linear {
    Linear::from_weights(
        t((0..24).map(|i| (i as f64).sin() * 0.5).collect(), &[6, 4]),
        Some(t((0..6).map(|i| (i as f64).cos() * 0.1).collect(), &[6])),
    )
    .unwrap()
}

/// Linear(4, 6) -> BN -> ReLU -> Linear(6, 3) -> BN, weights from closed forms.
fn small_generator() -> Sequential {
    let bn1 = BatchNorm::new_1d(6, true, DType::F64).unwrap();
    bn1.weight
        .as_ref()
        .unwrap()
        .assign(&t((0..6).map(|i| 1.0 + 0.1 * i as f64).collect(), &[6]))
        .unwrap();
    bn1.bias
        .as_ref()
        .unwrap()
        .assign(&t((0..6).map(|i| 0.05 * i as f64).collect(), &[6]))
        .unwrap();
    let lin2 = Linear::from_weights(
        t(
            (0..18).map(|i| (i as f64 * 0.7).cos() * 0.4).collect(),
            &[3, 6],
        ),
        Some(Tensor::zeros(&[3], DType::F64, Device::Cpu).unwrap()),
    )
    .unwrap();
    Sequential::new()
        .push(lin1())
        .push(bn1)
        .push(Activation::Relu)
        .push(lin2)
        .push(BatchNorm::new_1d(3, true, DType::F64).unwrap())
}

/// Running mean, running variance, momentum and training flag of one batch norm.
type BnState = (Vec<f64>, Vec<f64>, Option<f64>, bool);

fn running(g: &mut Sequential) -> Vec<BnState> {
    let mut out = Vec::new();
    g.visit_batch_norms(&mut |bn| {
        out.push((
            bn.running_mean.to_vec::<f64>().unwrap(),
            bn.running_var.to_vec::<f64>().unwrap(),
            bn.momentum,
            bn.is_training(),
        ))
    });
    out
}

/// ```python
/// t = torch.float64
/// lin1 = torch.nn.Linear(4, 6).double(); bn1 = torch.nn.BatchNorm1d(6).double()
/// lin2 = torch.nn.Linear(6, 3).double(); bn2 = torch.nn.BatchNorm1d(3).double()
/// with torch.no_grad():
///     lin1.weight.copy_(torch.sin(torch.arange(24., dtype=t)).reshape(6, 4) * 0.5)
///     lin1.bias.copy_(torch.cos(torch.arange(6., dtype=t)) * 0.1)
///     bn1.weight.copy_(1 + 0.1 * torch.arange(6., dtype=t)); bn1.bias.copy_(0.05 * torch.arange(6., dtype=t))
///     lin2.weight.copy_(torch.cos(torch.arange(18., dtype=t) * 0.7).reshape(3, 6) * 0.4)
///     lin2.bias.zero_()
/// g = torch.nn.Sequential(lin1, bn1, torch.nn.ReLU(), lin2, bn2)
/// batch = lambda k: torch.sin(torch.arange(20., dtype=t) * (k + 1) * 0.37).reshape(5, 4) * 2
/// g.train(); g(batch(7))          # leaves momentum-0.1 statistics behind
/// g.eval()
/// for bn in (bn1, bn2):
///     bn.reset_running_stats(); bn.momentum = None
/// g.train()
/// with torch.no_grad():
///     for k in range(3): g(batch(k))
/// g.eval()
/// print(bn1.running_mean, bn1.running_var, bn2.running_mean, bn2.running_var)
/// print(g(batch(5)))
/// ```
#[test]
fn standing_stats_average_the_batches_and_restore_momentum_and_mode() {
    let mut g = small_generator();
    g.forward(&batch(7)).unwrap();
    g.set_training(false);
    let mut seen = Vec::new();
    standing_stats(&mut g, 3, |g, k| {
        seen.push(k);
        g.forward(&batch(k)).map(drop)
    })
    .unwrap();
    assert_eq!(seen, vec![0, 1, 2]);
    let stats = running(&mut g);
    close(
        &stats[0].0,
        &[
            0.3322363942,
            0.0751834436,
            -0.3015044033,
            0.2195980521,
            -0.2219728303,
            -0.0854988308,
        ],
    );
    close(
        &stats[0].1,
        &[
            1.6749953533,
            1.3931819075,
            2.6441901097,
            2.5619600841,
            1.3348808249,
            1.7741909979,
        ],
    );
    close(&stats[1].0, &[-0.3397784621, 0.6796914003, -0.3266736663]);
    close(&stats[1].1, &[0.3103244399, 0.0997598484, 0.1341644179]);
    for s in &stats {
        assert_eq!(
            (s.2, s.3),
            (Some(0.1), false),
            "momentum and eval mode restored"
        );
    }
    // Eval mode is back: the output uses the standing statistics, and no more updates happen.
    let y = g.forward(&batch(5)).unwrap().to_vec::<f64>().unwrap();
    close(
        &y,
        &[
            -0.1145422404,
            -0.9745407364,
            0.9981891272,
            0.3478081483,
            -1.2988692160,
            0.5692586788,
            0.1449787159,
            -1.5168374915,
            1.0620231066,
            0.1291713346,
            -0.6530080721,
            0.3556815686,
            0.3616144624,
            -1.6525012560,
            0.8472632996,
        ],
    );
    assert_eq!(running(&mut g)[0].0, stats[0].0);
}

/// The first batch norm sees `lin1(batch k)`: its standing statistics must be the mean over
/// the K batches of each batch's mean and unbiased variance, computed here directly.
#[test]
fn standing_stats_equal_the_mean_of_per_batch_statistics() {
    let mut g = small_generator();
    let k = 4;
    standing_stats(&mut g, k, |g, i| g.forward(&batch(i + 10)).map(drop)).unwrap();
    let lin = lin1();
    let (mut mean, mut var) = (vec![0.0; 6], vec![0.0; 6]);
    for i in 0..k {
        let h = lin
            .forward(&batch(i + 10))
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        for c in 0..6 {
            let col: Vec<f64> = (0..5).map(|r| h[r * 6 + c]).collect();
            let m = col.iter().sum::<f64>() / 5.0;
            mean[c] += m / k as f64;
            var[c] += col.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 4.0 / k as f64;
        }
    }
    let stats = running(&mut g);
    close(&stats[0].0, &mean);
    close(&stats[0].1, &var);
    // The module was in training mode before and stays so.
    assert!(stats.iter().all(|s| s.3 && s.2 == Some(0.1)));
}

#[test]
fn a_failing_pass_still_restores_momentum_and_zero_batches_is_an_error() {
    let mut g = small_generator();
    g.set_training(false);
    let err = standing_stats(&mut g, 3, |g, i| {
        let x = if i == 1 {
            Tensor::ones(&[5, 7], DType::F64, Device::Cpu)?
        } else {
            batch(i)
        };
        g.forward(&x).map(drop)
    })
    .unwrap_err();
    assert!(err.to_string().contains("Linear"), "{err}");
    assert!(running(&mut g).iter().all(|s| s.2 == Some(0.1) && !s.3));
    let err = standing_stats(&mut g, 0, |_, _| Ok(())).unwrap_err();
    assert!(err.to_string().contains("standing_stats"), "{err}");
}

#[test]
fn conditional_batch_norm_exposes_its_inner_batch_norm() {
    let mut rng = saddle_engine::Rng::new(0);
    let mut cbn = saddle_nn::ConditionalBatchNorm::new_2d(4, 3, DType::F32, &mut rng).unwrap();
    let mut seen = Vec::new();
    cbn.visit_batch_norms(&mut |bn| seen.push(bn.num_features));
    assert_eq!(seen, vec![4]);
    let mut act = Activation::Relu;
    act.visit_batch_norms(&mut |_| panic!("an activation holds no batch norm"));
}
