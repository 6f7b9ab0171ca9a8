//! The semantics every device agrees on, pinned on the CPU (engine/tests/device_parity.rs runs
//! the same cases on a GPU): tied maxima share their gradient (maxout, the max reduction,
//! global max pooling; windowed max pooling gives it to the first in its window, on both);
//! l2_normalize's gradient is finite at a zero norm; batch norm in evaluation refuses
//! `var + eps <= 0`.

use saddle_engine::gradcheck::assert_close;
use saddle_engine::{Device, Result, Tensor};

fn leaf(values: Vec<f64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(values, shape, Device::Cpu)
        .unwrap()
        .with_requires_grad(true)
}

fn grad_of_sum(x: &Tensor, y: Result<Tensor>) -> Vec<f64> {
    let grads = y.unwrap().sum_all().unwrap().backward().unwrap();
    grads.get(x).unwrap().to_vec_f64().unwrap()
}

#[test]
fn tied_maxima_share_the_gradient() {
    // maxout: groups (2, 2) and (1, 0).
    let x = leaf(vec![2.0, 2.0, 1.0, 0.0], &[1, 4]);
    assert_eq!(grad_of_sum(&x, x.maxout(2, 1)), [0.5, 0.5, 1.0, 0.0]);
    // The same through grad_with_graph's formula.
    let f = x.maxout(2, 1).unwrap().sum_all().unwrap();
    assert_close(
        &f.grad_with_graph(&[&x]).unwrap()[0],
        &[0.5, 0.5, 1.0, 0.0],
        0.0,
    );
    // Global max pooling: three tied maxima.
    let x = leaf(vec![3.0, 3.0, 1.0, 3.0], &[1, 1, 2, 2]);
    let third = 1.0 / 3.0;
    assert_close(
        &Tensor::from_vec(grad_of_sum(&x, x.global_max_pool2d()), &[4], Device::Cpu).unwrap(),
        &[third, third, 0.0, third],
        1e-15,
    );
    // The max reduction.
    let x = leaf(vec![5.0, 1.0, 5.0], &[3]);
    assert_eq!(grad_of_sum(&x, x.max_all()), [0.5, 0.0, 0.5]);
    // Windowed max pooling: the first maximum of the window in row-major order.
    let x = leaf(vec![1.0; 4], &[1, 1, 2, 2]);
    assert_eq!(grad_of_sum(&x, x.max_pool2d(2, 2, 0)), [1.0, 0.0, 0.0, 0.0]);
}

#[test]
fn l2_normalize_is_finite_at_a_zero_norm() {
    let x = leaf(vec![0.0, 0.0, 0.0, 3.0, 4.0, 0.0], &[2, 3]);
    let eps = 1e-3;
    let y = x.l2_normalize(1, eps).unwrap();
    assert_close(&y, &[0.0, 0.0, 0.0, 0.6, 0.8, 0.0], 1e-15);
    let w = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 1.0, 1.0, 1.0], &[2, 3], Device::Cpu).unwrap();
    // Zero row: w / eps. Row (3, 4, 0) of norm 5: (w - y (y·w)) / 5 with y·w = 1.4.
    let want = [
        1e3,
        2e3,
        3e3,
        (1.0 - 0.6 * 1.4) / 5.0,
        (1.0 - 0.8 * 1.4) / 5.0,
        1.0 / 5.0,
    ];
    let grads = y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    assert_close(grads.get(&x).unwrap(), &want, 1e-12);
    let f = x
        .l2_normalize(1, eps)
        .unwrap()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap();
    assert_close(&f.grad_with_graph(&[&x]).unwrap()[0], &want, 1e-12);
}

#[test]
fn batch_norm_eval_refuses_a_variance_below_minus_eps() {
    let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2, 1], Device::Cpu).unwrap();
    let mean = Tensor::from_vec(vec![0.0f64], &[1], Device::Cpu).unwrap();
    for (var, eps) in [(-1.0, 0.5), (0.0, 0.0)] {
        let var = Tensor::from_vec(vec![var], &[1], Device::Cpu).unwrap();
        let e = x
            .batch_norm_eval(&mean, &var, None, None, eps)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("batch_norm_eval") && e.contains("var + eps"),
            "{e}"
        );
    }
}
