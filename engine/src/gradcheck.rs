//! Finite-difference gradient checking, used by the op tests here and by downstream crates.

use crate::{no_grad, DType, Device, Result, Rng, Tensor};

/// Compares the analytic gradient of `f` with central finite differences in f64.
///
/// The scalar checked is `sum(f(inputs) * w)` for a fixed random `w`, so every output element
/// contributes with its own weight. Every input must be f64 and require grad. Returns a
/// description of the first mismatch: `|analytic - numeric| > atol + rtol * |numeric|`.
pub fn check_gradients(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    eps: f64,
    atol: f64,
    rtol: f64,
) -> std::result::Result<(), String> {
    let err = |e: crate::Error| e.to_string();
    let out = f(inputs).map_err(err)?;
    let mut rng = Rng::new(0x5eed);
    let w = Tensor::randn(out.shape(), 0.0, 1.0, DType::F64, Device::Cpu, &mut rng).map_err(err)?;
    let weighted = |xs: &[Tensor]| -> Result<f64> { f(xs)?.mul(&w)?.sum_all()?.to_scalar() };
    let loss = out.mul(&w).map_err(err)?.sum_all().map_err(err)?;
    let grads = loss.backward().map_err(err)?;
    for (i, x) in inputs.iter().enumerate() {
        let analytic = match grads.get(x) {
            Some(g) => g.to_vec::<f64>().map_err(err)?,
            None => vec![0.0; x.numel()],
        };
        let base = x.to_vec::<f64>().map_err(err)?;
        for j in 0..base.len() {
            let eval = |delta: f64| -> std::result::Result<f64, String> {
                let mut v = base.clone();
                v[j] += delta;
                let moved = Tensor::from_vec(v, x.shape(), Device::Cpu).map_err(err)?;
                let mut xs = inputs.to_vec();
                xs[i] = moved;
                no_grad(|| weighted(&xs)).map_err(err)
            };
            let numeric = (eval(eps)? - eval(-eps)?) / (2.0 * eps);
            let a = analytic[j];
            let within = (a - numeric).abs() <= atol + rtol * numeric.abs();
            if !within {
                return Err(format!(
                    "input {i} (shape {:?}) element {j}: analytic {a:.8e} vs numeric {numeric:.8e}",
                    x.shape()
                ));
            }
        }
    }
    Ok(())
}

/// Panics unless `got` holds `want` (row-major), each element within `tol · (1 + |want|)`,
/// naming the first element that is off (for tests against literal values).
pub fn assert_close(got: &Tensor, want: &[f64], tol: f64) {
    let got = got.to_vec_f64().expect("assert_close: readable values");
    assert_eq!(got.len(), want.len(), "length: got {got:?}, want {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "element {i}: got {g}, want {w} (all: {got:?})"
        );
    }
}
