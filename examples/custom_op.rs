//! A new differentiable op from existing ones: GELU in its tanh form (PyTorch's
//! `gelu(approximate="tanh")`), `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
//!
//! An op built from recorded ops needs no backward of its own: autodiff chains the pieces'
//! gradients. A finite-difference check in f64 proves the result, the same check every built-in
//! op passes in the engine's tests.
//!
//! Run: `cargo run --example custom_op`

use saddle_engine::gradcheck::check_gradients;
use saddle_engine::{DType, Device, Result, Rng, Tensor};
use std::error::Error;
use std::f64::consts::PI;

/// The op as a method, so that it reads like a built-in one: `x.gelu_tanh()`.
trait GeluTanh {
    fn gelu_tanh(&self) -> Result<Tensor>;
}

impl GeluTanh for Tensor {
    fn gelu_tanh(&self) -> Result<Tensor> {
        let cube = self.mul(self)?.mul(self)?;
        let inner = self
            .add(&cube.mul_scalar(0.044715)?)?
            .mul_scalar((2.0 / PI).sqrt())?;
        self.mul(&inner.tanh()?.add_scalar(1.0)?)?.mul_scalar(0.5)
    }
}

/// The same formula on one number, for comparison.
fn gelu_tanh(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
}

fn main() -> std::result::Result<(), Box<dyn Error>> {
    // Forward values against the scalar formula.
    let xs = [-3.0, -1.0, -0.1, 0.0, 0.5, 2.0];
    let x = Tensor::from_vec(xs.to_vec(), &[xs.len()], Device::Cpu)?.with_requires_grad(true);
    let y = x.gelu_tanh()?;
    for (&xi, yi) in xs.iter().zip(y.to_vec::<f64>()?) {
        println!("gelu_tanh({xi:5.2}) = {yi:+.6}");
        if (yi - gelu_tanh(xi)).abs() > 1e-12 {
            return Err(format!("gelu_tanh({xi}) is {yi}, want {}", gelu_tanh(xi)).into());
        }
    }

    // The gradient autodiff derives, next to a central difference of the scalar formula.
    let grads = y.sum_all()?.backward()?;
    let dx = grads.get(&x).ok_or("x has no gradient")?.to_vec::<f64>()?;
    for (&xi, di) in xs.iter().zip(dx) {
        let h = 1e-6;
        let numeric = (gelu_tanh(xi + h) - gelu_tanh(xi - h)) / (2.0 * h);
        println!("d/dx at {xi:5.2}: autodiff {di:+.6}, finite difference {numeric:+.6}");
    }

    // The engine's gradient check on a random [3, 4] input: every element, weighted sums.
    let mut rng = Rng::new(7);
    let input = Tensor::randn(&[3, 4], 0.0, 1.5, DType::F64, Device::Cpu, &mut rng)?
        .with_requires_grad(true);
    check_gradients(|t| t[0].gelu_tanh(), &[input], 1e-6, 1e-8, 1e-6)?;
    println!("gradient check passed");
    Ok(())
}
