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
    compare_with_finite_differences(inputs, &grads, eps, atol, rtol, "", |xs| {
        no_grad(|| weighted(xs))
    })
}

/// Checks `analytic` (the gradients of the scalar `value` at `inputs`) against central finite
/// differences of `value`, element by element; `value` receives the inputs with one element
/// moved (as fresh leaves). `what` prefixes the message of the first mismatch.
fn compare_with_finite_differences(
    inputs: &[Tensor],
    analytic: &crate::Grads,
    eps: f64,
    atol: f64,
    rtol: f64,
    what: &str,
    value: impl Fn(&[Tensor]) -> Result<f64>,
) -> std::result::Result<(), String> {
    let err = |e: crate::Error| e.to_string();
    for (i, x) in inputs.iter().enumerate() {
        let analytic = match analytic.get(x) {
            Some(g) => g.to_vec::<f64>().map_err(err)?,
            None => vec![0.0; x.numel()],
        };
        let base = x.to_vec::<f64>().map_err(err)?;
        for j in 0..base.len() {
            let eval = |delta: f64| -> std::result::Result<f64, String> {
                let mut v = base.clone();
                v[j] += delta;
                let mut xs: Vec<Tensor> = inputs
                    .iter()
                    .map(|t| t.detach().with_requires_grad(true))
                    .collect();
                xs[i] = Tensor::from_vec(v, x.shape(), Device::Cpu)
                    .map_err(err)?
                    .with_requires_grad(true);
                value(&xs).map_err(err)
            };
            let numeric = (eval(eps)? - eval(-eps)?) / (2.0 * eps);
            let a = analytic[j];
            if (a - numeric).abs() > atol + rtol * numeric.abs() {
                return Err(format!(
                    "{what}input {i} (shape {:?}) element {j}: analytic {a:.8e} vs numeric {numeric:.8e}",
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

/// Compares the second derivatives of `f` with central finite differences of its first
/// derivatives, in f64 (PyTorch's `gradgradcheck`).
///
/// With fixed random `w` (of the output's shape) and `v_i` (of each input's shape), the scalar
/// checked is `h(x) = Σ_i sum(∂/∂x_i [sum(f(x) · w)] · v_i)`, whose inner gradients come from
/// [`Tensor::grad_with_graph`]: `h`'s gradient by backward must match finite differences of
/// `h`. Also checks that those inner gradients equal what [`Tensor::backward`] gives. Every
/// input must be f64 and require grad. Returns a description of the first mismatch.
pub fn check_second_derivatives(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    eps: f64,
    atol: f64,
    rtol: f64,
) -> std::result::Result<(), String> {
    let err = |e: crate::Error| e.to_string();
    let out = f(inputs).map_err(err)?;
    let mut rng = Rng::new(0x5eed);
    let mut randn =
        |shape: &[usize]| Tensor::randn(shape, 0.0, 1.0, DType::F64, Device::Cpu, &mut rng);
    let w = randn(out.shape()).map_err(err)?;
    let vs: Vec<Tensor> = inputs
        .iter()
        .map(|x| randn(x.shape()))
        .collect::<Result<_>>()
        .map_err(err)?;
    let first = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        let wrt: Vec<&Tensor> = xs.iter().collect();
        f(xs)?.mul(&w)?.sum_all()?.grad_with_graph(&wrt)
    };
    let h = |xs: &[Tensor]| -> Result<Tensor> {
        let mut total = Tensor::scalar(0.0f64);
        for (g, v) in first(xs)?.iter().zip(&vs) {
            total = total.add(&g.mul(v)?.sum_all()?)?;
        }
        Ok(total)
    };

    // The recorded first derivatives against backward's.
    let graph_grads = first(inputs).map_err(err)?;
    let plain = f(inputs)
        .map_err(err)?
        .mul(&w)
        .map_err(err)?
        .sum_all()
        .map_err(err)?;
    let plain = plain.backward().map_err(err)?;
    for (i, (x, g)) in inputs.iter().zip(&graph_grads).enumerate() {
        let want = match plain.get(x) {
            Some(p) => p.to_vec::<f64>().map_err(err)?,
            None => vec![0.0; x.numel()],
        };
        let got = g.to_vec::<f64>().map_err(err)?;
        for (j, (a, b)) in got.iter().zip(&want).enumerate() {
            if (a - b).abs() > 1e-12 * (1.0 + b.abs()) {
                return Err(format!(
                    "input {i} element {j}: grad_with_graph {a:.12e} vs backward {b:.12e}"
                ));
            }
        }
    }

    let value = h(inputs).map_err(err)?;
    let analytic = if value.requires_grad() {
        value.backward().map_err(err)?
    } else {
        crate::Grads::default()
    };
    compare_with_finite_differences(
        inputs,
        &analytic,
        eps,
        atol,
        rtol,
        "second derivative, ",
        |xs| h(xs)?.to_scalar(),
    )
}
