//! Core behaviour of tensors and autodiff.

use saddle_engine::gradcheck::check_gradients;
use saddle_engine::{no_grad, DType, Device, Error, Rng, Tensor};

fn t(values: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape, Device::Cpu).unwrap()
}

fn leaf(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    Tensor::randn(shape, 0.0, 1.0, DType::F64, Device::Cpu, &mut rng).unwrap().with_requires_grad(true)
}

#[test]
fn views_share_storage_and_index_correctly() {
    let x = t(&[0., 1., 2., 3., 4., 5.], &[2, 3]);
    assert_eq!(x.t().unwrap().to_vec::<f64>().unwrap(), vec![0., 3., 1., 4., 2., 5.]);
    assert_eq!(x.narrow(1, 1, 2).unwrap().to_vec::<f64>().unwrap(), vec![1., 2., 4., 5.]);
    assert_eq!(x.reshape(&[3, 2]).unwrap().shape(), &[3, 2]);
    let b = t(&[7., 8.], &[2, 1]).broadcast_as(&[2, 3]).unwrap();
    assert_eq!(b.to_vec::<f64>().unwrap(), vec![7., 7., 7., 8., 8., 8.]);
    assert_eq!(x.t().unwrap().contiguous().unwrap().to_vec::<f64>().unwrap(), vec![0., 3., 1., 4., 2., 5.]);
}

#[test]
fn gradient_accumulates_when_a_tensor_is_reused() {
    let x = t(&[1., 2., 3.], &[3]).with_requires_grad(true);
    // y = sum(x*x + x) -> dy/dx = 2x + 1
    let y = x.mul(&x).unwrap().add(&x).unwrap().sum_all().unwrap();
    let g = y.backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![3., 5., 7.]);
}

#[test]
fn detach_and_no_grad_cut_history() {
    let x = t(&[1., 2.], &[2]).with_requires_grad(true);
    assert!(!x.detach().requires_grad());
    let y = no_grad(|| x.mul_scalar(2.0).unwrap());
    assert!(!y.requires_grad());
    assert!(x.mul_scalar(2.0).unwrap().requires_grad());
}

#[test]
fn graph_is_freed_after_backward() {
    let x = t(&[1., 2.], &[2]).with_requires_grad(true);
    let y = x.exp().unwrap().sum_all().unwrap();
    y.backward().unwrap();
    match y.backward() {
        Err(Error::Autograd(msg)) => assert!(msg.contains("second time") || msg.contains("freed"), "{msg}"),
        other => panic!("expected an autograd error, got {other:?}"),
    }
}

#[test]
fn shape_errors_name_the_op_and_both_shapes() {
    let a = t(&[0.; 6], &[2, 3]);
    let b = t(&[0.; 8], &[4, 2]);
    let e = a.matmul(&b).unwrap_err().to_string();
    assert!(e.contains("matmul") && e.contains("[2, 3]") && e.contains("[4, 2]"), "{e}");
    let e = a.add(&b).unwrap_err().to_string();
    assert!(e.contains("add") && e.contains("[2, 3]") && e.contains("[4, 2]"), "{e}");
}

#[test]
fn matmul_values_and_batched_broadcast() {
    let a = t(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
    let b = t(&[1., 0., 0., 1., 1., 1.], &[3, 2]);
    assert_eq!(a.matmul(&b).unwrap().to_vec::<f64>().unwrap(), vec![4., 5., 10., 11.]);
    let batch = a.unsqueeze(0).unwrap().broadcast_as(&[4, 2, 3]).unwrap();
    let c = batch.matmul(&b).unwrap();
    assert_eq!(c.shape(), &[4, 2, 2]);
    assert_eq!(&c.to_vec::<f64>().unwrap()[12..], &[4., 5., 10., 11.]);
}

#[test]
fn elementwise_and_reduction_gradients() {
    let a = leaf(&[3, 4], 1);
    let b = leaf(&[4], 2);
    check_gradients(|x| x[0].mul(&x[1])?.tanh()?.sum(&[1], false), &[a.clone(), b.clone()], 1e-6, 1e-7, 1e-5).unwrap();
    check_gradients(|x| x[0].div(&x[1].exp()?)?.var(&[0], true, 1), &[a.clone(), b.clone()], 1e-6, 1e-7, 1e-5).unwrap();
    check_gradients(|x| x[0].matmul(&x[1].unsqueeze(1)?), &[a, b], 1e-6, 1e-7, 1e-5).unwrap();
}
