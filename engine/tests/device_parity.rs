//! The engine's ops on both devices from the same test bodies.
//!
//! [`device_test!`] runs a body on the CPU and, when `Device::best` finds a GPU, again on
//! `cuda:0` with the same fresh random inputs (drawn on the host from a seed printed with each
//! test; `SADDLE_PARITY_SEED=<n>` repeats a run), and compares every tensor the body returns
//! (outputs and gradients): `||cuda - cpu|| / ||cpu|| < tol` (1e-5 for f32 kernels, 1e-3 when
//! TF32 is on, 1e-2 for bf16 and f16 products). On the device every output buffer is poisoned with NaN before its kernel runs
//! ([`saddle_engine::set_poison_outputs`]), so an element a kernel fails to write fails the
//! comparison. Without a GPU each test runs its CPU half (which checks the body runs and gives
//! finite values) and prints one line saying the CUDA half was skipped and why; under
//! `SADDLE_REQUIRE_CUDA=1` that skip is a failure. A test whose CUDA half ran prints a
//! `saddle-gpu-test-ran:` line (see `saddle_kernels::require`).
//!
//! Bodies build their inputs with [`Gen`] and usually return `fwd_bwd(out, inputs)`: the output
//! and the gradient of `sum(out * w)` (random `w`) with respect to each input, so every
//! dispatched op is checked forward and backward.
#![cfg(feature = "cuda")]

use saddle_engine::ops::optim::{AdamStep, SgdStep};
use saddle_engine::{
    Conv2dParams, ConvTranspose2dParams, DType, Device, Error, Result, Rng, Tensor,
};
use saddle_kernels::require::{self, Requirement};
use std::sync::{Mutex, MutexGuard};

const F32_TOL: f64 = 1e-5;
const TF32_TOL: f64 = 1e-3;
/// bf16 / f16 products: each result rounded to 8 (11) significant bits, after f32 sums taken in
/// another order, so an element may land one 16-bit step away.
const HALF_TOL: f64 = 1e-2;
/// Conversions round each value once, the same way on both devices: bit for bit equal.
const EXACT_TOL: f64 = f64::MIN_POSITIVE;
/// f64 kernels: rounding of f64 sums in another order.
const F64_TOL: f64 = 1e-12;

/// Inputs for one run of a body: the same values on every device for one seed.
struct Gen {
    device: Device,
    rng: Rng,
}

impl Gen {
    /// `N(0, 1)` values of `shape` on this run's device, a leaf requiring grad.
    fn randn(&mut self, shape: &[usize]) -> Tensor {
        self.host_randn(shape)
            .to_device(self.device)
            .unwrap()
            .detach()
            .with_requires_grad(true)
    }
    /// As [`Gen::randn`], in f64.
    fn randn_f64(&mut self, shape: &[usize]) -> Tensor {
        self.randn(shape)
            .to_dtype(DType::F64)
            .unwrap()
            .detach()
            .with_requires_grad(true)
    }
    /// As [`Gen::randn`], rounded to `dtype` (bf16 or f16) on this run's device.
    fn randn_as(&mut self, shape: &[usize], dtype: DType) -> Tensor {
        self.randn(shape)
            .to_dtype(dtype)
            .unwrap()
            .detach()
            .with_requires_grad(true)
    }
    /// Uniform values in `[lo, hi)` on this run's device, a leaf requiring grad.
    fn uniform(&mut self, shape: &[usize], lo: f64, hi: f64) -> Tensor {
        Tensor::rand(shape, lo, hi, DType::F32, Device::Cpu, &mut self.rng)
            .unwrap()
            .to_device(self.device)
            .unwrap()
            .detach()
            .with_requires_grad(true)
    }
    /// Small integers (0..5) of `shape` on this run's device, a leaf requiring grad: windows
    /// and lanes full of ties.
    fn ties(&mut self, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|i| ((i * 7 + i / 3) % 5) as f32).collect();
        Tensor::from_vec(values, shape, Device::Cpu)
            .unwrap()
            .to_device(self.device)
            .unwrap()
            .with_requires_grad(true)
    }
    /// A 0/1 mask of `shape` (about `p` ones) on this run's device, without history.
    fn mask(&mut self, shape: &[usize], p: f64) -> Tensor {
        self.uniform(shape, 0.0, 1.0)
            .detach()
            .gt_scalar(1.0 - p)
            .unwrap()
    }
    fn host_randn(&mut self, shape: &[usize]) -> Tensor {
        Tensor::randn(shape, 0.0, 1.0, DType::F32, Device::Cpu, &mut self.rng).unwrap()
    }
    /// The output and the gradients of `sum(out * w)` for a random `w` with respect to
    /// `inputs`. A bf16 / f16 output is widened to f32 first (the product and sum refuse 16-bit
    /// tensors), so its gradient arrives as `w` rounded to the 16-bit type.
    fn fwd_bwd(&mut self, out: Tensor, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let wide = if out.dtype().is_half() {
            out.to_dtype(DType::F32)?
        } else {
            out.clone()
        };
        let w = self
            .host_randn(out.shape())
            .to_dtype(wide.dtype())?
            .to_device(self.device)?;
        let loss = wide.mul(&w)?.sum_all()?;
        let grads = loss.backward()?;
        let mut all = vec![out.detach()];
        for (i, t) in inputs.iter().enumerate() {
            let g = grads
                .get(t)
                .ok_or_else(|| Error::Autograd(format!("no gradient for input {i}")))?;
            all.push(g.clone());
        }
        Ok(all)
    }
}

/// One device test at a time: they share the device's allocator, and the poison switch is
/// process-wide.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn seed(test: &str) -> u64 {
    let seed = std::env::var("SADDLE_PARITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("{test}: SADDLE_PARITY_SEED={seed}");
    seed
}

fn rel_l2(got: &[f64], want: &[f64]) -> f64 {
    if got.iter().any(|g| !g.is_finite()) {
        return f64::INFINITY;
    }
    let num: f64 = got.iter().zip(want).map(|(a, b)| (a - b) * (a - b)).sum();
    let den: f64 = want.iter().map(|b| b * b).sum();
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}

/// The GPU of this machine; without one, test `name`'s CUDA half is skipped ([`require::skip`]:
/// a failure under `SADDLE_REQUIRE_CUDA=1`).
fn gpu(name: &str) -> Option<Device> {
    match Device::best_with_reason() {
        (d @ Device::Cuda(_), _) => Some(d),
        (Device::Cpu, why) => {
            require::skip(&format!("{name}: CUDA half"), Requirement::Cuda, &why);
            None
        }
    }
}

/// A process-wide engine switch (TF32, output poisoning) turned on for as long as it lives, and
/// off again when dropped: also when the body returns an error or panics, so that a failure
/// cannot leave it on for the tests after it.
struct Switch(fn(bool));

impl Switch {
    fn on(set: fn(bool)) -> Switch {
        set(true);
        Switch(set)
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        (self.0)(false);
    }
}

/// Runs `body` on the CPU, then (when there is a GPU) on cuda:0 with outputs poisoned, and
/// compares.
fn run_on_devices(name: &str, tol: f64, body: impl Fn(&mut Gen) -> Result<Vec<Tensor>>) {
    let _guard = serial();
    let seed = seed(name);
    let cpu = body(&mut Gen {
        device: Device::Cpu,
        rng: Rng::new(seed),
    })
    .unwrap_or_else(|e| panic!("{name} on the CPU: {e}"));
    assert!(
        !cpu.is_empty(),
        "{name}: the body returned nothing to compare"
    );
    let cpu: Vec<(Vec<usize>, Vec<f64>)> = cpu
        .iter()
        .map(|t| (t.shape().to_vec(), t.to_vec_f64().unwrap()))
        .collect();
    for (i, (_, v)) in cpu.iter().enumerate() {
        assert!(
            v.iter().all(|x| x.is_finite()),
            "{name}: CPU result {i} is not finite"
        );
    }
    let Some(device) = gpu(name) else {
        return;
    };
    let gpu = {
        let _poison = Switch::on(saddle_engine::set_poison_outputs);
        body(&mut Gen {
            device,
            rng: Rng::new(seed),
        })
    }
    .unwrap_or_else(|e| panic!("{name} on {device}: {e}"));
    assert_eq!(gpu.len(), cpu.len(), "{name}: result counts differ");
    for (i, (t, (shape, want))) in gpu.iter().zip(&cpu).enumerate() {
        assert_eq!(t.device(), device, "{name}: result {i} left the device");
        assert_eq!(t.shape(), &shape[..], "{name}: result {i} shape");
        let got = t.to_vec_f64().unwrap();
        let err = rel_l2(&got, want);
        assert!(
            err < tol,
            "{name}: result {i} (shape {shape:?}) differs on {device}: rel. L2 error {err:e} >= {tol:e}"
        );
    }
    println!("{name}: {} results match on {device}", gpu.len());
    require::ran_on_gpu(name, &device);
}

/// A test named `$name` running `$body` (with `$g: &mut Gen`) on both devices, compared within
/// `$tol`.
macro_rules! device_test {
    ($name:ident, $tol:expr, |$g:ident| $body:block) => {
        #[test]
        fn $name() {
            run_on_devices(
                stringify!($name),
                $tol,
                |$g: &mut Gen| -> Result<Vec<Tensor>> { $body },
            );
        }
    };
}

// ----------------------------------------------------------------------------- elementwise

device_test!(unary_ops_forward_and_backward, F32_TOL, |g| {
    let x = g.randn(&[7, 33]);
    let pos = g.uniform(&[7, 33], 0.5, 2.0);
    let mut out = Vec::new();
    type F = fn(&Tensor) -> Result<Tensor>;
    let on_any: [F; 15] = [
        |x| x.neg(),
        |x| x.exp(),
        |x| x.square(),
        |x| x.abs(),
        |x| x.relu(),
        |x| x.leaky_relu(0.2),
        |x| x.sigmoid(),
        |x| x.tanh(),
        |x| x.softplus(),
        |x| x.elu(1.0),
        |x| x.clamp(-0.5, 0.7),
        |x| x.add_scalar(1.5),
        |x| x.mul_scalar(-3.0),
        |x| x.sub_scalar(0.25),
        |x| x.rsub_scalar(2.0),
    ];
    for f in on_any {
        // Through a transposed view too, so the strided read path is covered.
        let y = f(&x)?.add(&f(&x.t()?)?.t()?)?;
        out.extend(g.fwd_bwd(y, &[&x])?);
    }
    let on_positive: [F; 5] = [
        |x| x.log(),
        |x| x.sqrt(),
        |x| x.powf(1.7),
        |x| x.div_scalar(3.0),
        |x| x.recip(),
    ];
    for f in on_positive {
        out.extend(g.fwd_bwd(f(&pos)?, &[&pos])?);
    }
    out.push(x.gt_scalar(0.1)?);
    Ok(out)
});

device_test!(binary_ops_broadcast_forward_and_backward, F32_TOL, |g| {
    let a = g.uniform(&[4, 1, 6], 0.5, 2.0);
    let b = g.uniform(&[5, 1], 0.5, 2.0);
    let mut out = Vec::new();
    type F = fn(&Tensor, &Tensor) -> Result<Tensor>;
    let ops: [F; 7] = [
        |a, b| a.add(b),
        |a, b| a.sub(b),
        |a, b| a.mul(b),
        |a, b| a.div(b),
        |a, b| a.pow(b),
        |a, b| a.maximum(b),
        |a, b| a.minimum(b),
    ];
    for f in ops {
        out.extend(g.fwd_bwd(f(&a, &b)?, &[&a, &b])?);
    }
    let cmp: [F; 5] = [
        |a, b| a.gt(b),
        |a, b| a.ge(b),
        |a, b| a.lt(b),
        |a, b| a.le(b),
        |a, b| a.eq(b),
    ];
    for f in cmp {
        out.push(f(&a, &b)?);
    }
    // A scalar broadcast against a narrowed, permuted view.
    let s = g.randn(&[]);
    let v = g.randn(&[3, 8, 5]);
    let y = v.narrow(1, 2, 4)?.permute(&[2, 0, 1])?.mul(&s)?;
    out.extend(g.fwd_bwd(y, &[&s, &v])?);
    Ok(out)
});

// ------------------------------------------------------------------------------ reductions

device_test!(reductions_over_any_axes, F32_TOL, |g| {
    let x = g.randn(&[3, 4, 5, 6]);
    let mut out = Vec::new();
    for dims in [
        &[0usize][..],
        &[3],
        &[1, 2],
        &[0, 2],
        &[1, 3],
        &[0, 1, 2, 3],
    ] {
        out.extend(g.fwd_bwd(x.sum(dims, false)?, &[&x])?);
        out.extend(g.fwd_bwd(x.mean(dims, true)?, &[&x])?);
        out.extend(g.fwd_bwd(x.max(dims, false)?, &[&x])?);
        out.extend(g.fwd_bwd(x.min(dims, true)?, &[&x])?);
        out.extend(g.fwd_bwd(x.var(dims, false, 1)?, &[&x])?);
    }
    // A long row (the two-pass path) and a transposed input.
    let long = g.randn(&[2, 20_000]);
    out.extend(g.fwd_bwd(long.sum(&[1], false)?, &[&long])?);
    out.extend(g.fwd_bwd(x.transpose(1, 3)?.sum(&[2], false)?, &[&x])?);
    let idx: Vec<f64> = x.argmax(2)?.into_iter().map(|i| i as f64).collect();
    let n = idx.len();
    out.push(Tensor::from_vec(idx, &[n], Device::Cpu)?);
    Ok(out)
});

// -------------------------------------------------------------------------------- products

device_test!(matmul_batched_broadcast_and_transposed, F32_TOL, |g| {
    let a = g.randn(&[2, 3, 37, 29]);
    let b = g.randn(&[3, 29, 41]);
    let mut out = g.fwd_bwd(a.matmul(&b)?, &[&a, &b])?;
    let c = g.randn(&[50, 70]);
    let d = g.randn(&[90, 70]);
    out.extend(g.fwd_bwd(c.matmul(&d.t()?)?, &[&c, &d])?);
    out.extend(g.fwd_bwd(c.t()?.matmul(&c)?, &[&c])?);
    let x = g.randn(&[4, 6, 70]);
    let bias = g.randn(&[90]);
    out.extend(g.fwd_bwd(x.linear(&d, Some(&bias))?, &[&x, &d, &bias])?);
    Ok(out)
});

device_test!(matmul_f64_batched_broadcast_and_transposed, F64_TOL, |g| {
    let a = g.randn_f64(&[2, 3, 37, 29]);
    let b = g.randn_f64(&[3, 29, 41]);
    let mut out = g.fwd_bwd(a.matmul(&b)?, &[&a, &b])?;
    let c = g.randn_f64(&[50, 70]);
    let d = g.randn_f64(&[90, 70]);
    out.extend(g.fwd_bwd(c.matmul(&d.t()?)?, &[&c, &d])?);
    out.extend(g.fwd_bwd(c.t()?.matmul(&c)?, &[&c])?);
    let x = g.randn_f64(&[4, 6, 70]);
    let bias = g.randn_f64(&[90]);
    out.extend(g.fwd_bwd(x.linear(&d, Some(&bias))?, &[&x, &d, &bias])?);
    Ok(out)
});

#[test]
fn matmul_with_tf32() {
    run_on_devices("matmul_with_tf32", TF32_TOL, |g| {
        // On the device only; off again however the body ends.
        let _tf32 = (g.device != Device::Cpu).then(|| Switch::on(saddle_engine::set_cuda_tf32));
        let a = g.randn(&[130, 200]);
        let b = g.randn(&[200, 150]);
        g.fwd_bwd(a.matmul(&b)?, &[&a, &b])
    });
}

/// The guard that turns TF32 and poisoning off again does so however the body ends: a body
/// returning an error (as `?` in `matmul_with_tf32` did before TF32 was switched off, leaving it
/// on for every later test and failing their 1e-5 tolerance) or panicking.
#[test]
fn switches_are_off_after_an_error_or_a_panic() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static ON: AtomicBool = AtomicBool::new(false);
    fn set(on: bool) {
        ON.store(on, Ordering::SeqCst);
    }
    let failing = || -> Result<()> {
        let _on = Switch::on(set);
        assert!(ON.load(Ordering::SeqCst));
        Err(Error::Autograd("a failing body".into()))
    };
    assert!(failing().is_err());
    assert!(!ON.load(Ordering::SeqCst), "left on after an error");
    let panicked = std::panic::catch_unwind(|| {
        let _on = Switch::on(set);
        panic!("a panicking body");
    });
    assert!(panicked.is_err());
    assert!(!ON.load(Ordering::SeqCst), "left on after a panic");
}

/// bf16 / f16 products (the tensor-core kernel on the device, the f32 GEMM of the widened
/// operands on the CPU), forward and both gradients: a broadcast batch, every pair of
/// transposes, sizes off the 128 × 128 tiles and the 32-deep k stages.
fn half_matmuls(g: &mut Gen, dtype: DType) -> Result<Vec<Tensor>> {
    let a = g.randn_as(&[2, 3, 37, 29], dtype);
    let b = g.randn_as(&[3, 29, 41], dtype);
    let mut out = g.fwd_bwd(a.matmul(&b)?, &[&a, &b])?;
    let c = g.randn_as(&[130, 300], dtype);
    let d = g.randn_as(&[300, 150], dtype);
    out.extend(g.fwd_bwd(c.matmul(&d)?, &[&c, &d])?);
    let e = g.randn_as(&[77, 300], dtype);
    out.extend(g.fwd_bwd(c.matmul(&e.t()?)?, &[&c, &e])?);
    let f = g.randn_as(&[130, 45], dtype);
    out.extend(g.fwd_bwd(c.t()?.matmul(&f)?, &[&c, &f])?);
    let h = g.randn_as(&[9, 130], dtype);
    out.extend(g.fwd_bwd(f.t()?.matmul(&h.t()?)?, &[&f, &h])?);
    Ok(out)
}

device_test!(
    matmul_bf16_batched_broadcast_and_transposed,
    HALF_TOL,
    |g| { half_matmuls(g, DType::BF16) }
);

device_test!(matmul_f16_batched_broadcast_and_transposed, HALF_TOL, |g| {
    half_matmuls(g, DType::F16)
});

device_test!(conversions_between_f32_f64_bf16_f16, EXACT_TOL, |g| {
    let p = |e: i32| 2f64.powi(e);
    // Ties, values just past a tie by less than f32 resolves, subnormal and underflowing values.
    let special = vec![
        1.0 + p(-8),
        1.0 + 3.0 * p(-8),
        1.0 + p(-8) + p(-40),
        -(1.0 + p(-11) + p(-45)),
        65519.0,
        p(-25) + p(-60),
        1e-300,
        0.1,
        -2.5e-5,
    ];
    let n = special.len();
    let special = Tensor::from_vec(special, &[n], Device::Cpu)?.to_device(g.device)?;
    let x = g.randn(&[33, 17]);
    let mut out = Vec::new();
    for (dtype, other) in [(DType::BF16, DType::F16), (DType::F16, DType::BF16)] {
        // From a transposed view (the strided read), with the gradient converted back.
        out.extend(g.fwd_bwd(x.t()?.to_dtype(dtype)?, &[&x])?);
        let h = x.to_dtype(dtype)?;
        for to in [DType::F32, DType::F64, other] {
            out.push(h.to_dtype(to)?);
        }
        out.push(h.t()?.contiguous()?);
        out.push(special.to_dtype(dtype)?);
        out.push(special.to_dtype(DType::F32)?.to_dtype(dtype)?);
        out.push(Tensor::full(
            1.0 + p(-8) + p(-40),
            &[3, 5],
            dtype,
            g.device,
        )?);
    }
    Ok(out)
});

/// Convolution (groups 2, stride 2, padding 1, `dilation`) and transposed convolution (stride 2,
/// padding 1), each with a bias, forward and every gradient, on `dtype` leaves.
fn convolutions(g: &mut Gen, dtype: DType, dilation: usize) -> Result<Vec<Tensor>> {
    let mut leaf = |shape: &[usize]| match dtype {
        DType::F64 => g.randn_f64(shape),
        _ => g.randn(shape),
    };
    let (x, w, b) = (leaf(&[2, 4, 9, 11]), leaf(&[6, 2, 3, 3]), leaf(&[6]));
    let (wt, bt) = (leaf(&[4, 3, 4, 4]), leaf(&[3]));
    let p = Conv2dParams::default()
        .with_stride(2)
        .with_padding(1)
        .with_dilation(dilation)
        .with_groups(2);
    let mut out = g.fwd_bwd(x.conv2d(&w, Some(&b), p)?, &[&x, &w, &b])?;
    let pt = ConvTranspose2dParams::default()
        .with_stride(2)
        .with_padding(1);
    out.extend(g.fwd_bwd(x.conv_transpose2d(&wt, Some(&bt), pt)?, &[&x, &wt, &bt])?);
    Ok(out)
}

device_test!(conv2d_and_conv_transpose2d, F32_TOL, |g| {
    convolutions(g, DType::F32, 1)
});

// The f64 path (direct kernels), dilated too.
device_test!(conv2d_and_conv_transpose2d_f64, F64_TOL, |g| {
    convolutions(g, DType::F64, 2)
});

// ------------------------------------------------------------------- norms, softmax, losses

device_test!(batch_norm_training_and_eval, F32_TOL, |g| {
    let x = g.randn(&[6, 5, 4, 3]);
    let gamma = g.uniform(&[5], 0.5, 1.5);
    let beta = g.randn(&[5]);
    let bn = x.batch_norm(Some(&gamma), Some(&beta), 1e-5)?;
    let mut out = g.fwd_bwd(bn.output, &[&x, &gamma, &beta])?;
    out.extend([bn.mean, bn.var, bn.var_unbiased]);
    let mean = g.randn(&[5]).detach();
    let var = g.uniform(&[5], 0.5, 2.0).detach();
    let y = x.batch_norm_eval(&mean, &var, Some(&gamma), Some(&beta), 1e-5)?;
    out.extend(g.fwd_bwd(y, &[&x, &gamma, &beta])?);
    let plain = x.batch_norm(None, None, 1e-3)?.output;
    out.extend(g.fwd_bwd(plain, &[&x])?);
    Ok(out)
});

device_test!(softmax_l2_normalize_and_losses, F32_TOL, |g| {
    let x = g.randn(&[6, 10, 3]);
    let mut out = g.fwd_bwd(x.softmax(1)?, &[&x])?;
    out.extend(g.fwd_bwd(x.log_softmax(-1)?, &[&x])?);
    out.extend(g.fwd_bwd(x.l2_normalize(1, 1e-12)?, &[&x])?);
    let logits = g.randn(&[64, 3]);
    let target = g.uniform(&[64, 3], 0.0, 1.0);
    for loss in [
        logits.binary_cross_entropy_with_logits(&target)?,
        logits.mse_loss(&target)?,
        logits.l1_loss(&target)?,
    ] {
        out.extend(g.fwd_bwd(loss, &[&logits, &target])?);
    }
    out.extend(g.fwd_bwd(logits.cross_entropy(&[2, 0, 1, 1].repeat(16))?, &[&logits])?);
    out.extend(g.fwd_bwd(logits.hinge_loss_real()?, &[&logits])?);
    out.extend(g.fwd_bwd(logits.hinge_loss_fake()?, &[&logits])?);
    Ok(out)
});

device_test!(fused_attention, F32_TOL, |g| {
    // SAGAN's block at 8x8 with 64 channels (d = 8, dv = 32, 16 pooled keys), with ragged sizes
    // that leave partial query and key tiles, a scale, and views (the layer's transposes).
    let q = g.randn(&[3, 64, 8]);
    let k = g.randn(&[3, 16, 8]);
    let v = g.randn(&[3, 16, 32]);
    let mut out = g.fwd_bwd(q.attention(&k, &v, 1.0)?, &[&q, &k, &v])?;
    let qc = g.randn(&[2, 5, 37]);
    let kc = g.randn(&[2, 5, 45]);
    let vr = g.randn(&[2, 45, 70]);
    let y = qc
        .transpose(1, 2)?
        .attention(&kc.transpose(1, 2)?, &vr, 0.4)?;
    out.extend(g.fwd_bwd(y, &[&qc, &kc, &vr])?);
    Ok(out)
});

// ----------------------------------------------------------------- shapes, joins, images

device_test!(views_joins_and_image_ops, F32_TOL, |g| {
    let a = g.randn(&[2, 3, 4, 5]);
    let b = g.randn(&[2, 1, 4, 5]);
    let mut out = g.fwd_bwd(Tensor::concat(&[&a, &b], 1)?, &[&a, &b])?;
    let at = a.transpose(2, 3)?;
    out.extend(g.fwd_bwd(Tensor::stack(&[&at, &at], 4)?, &[&a])?);
    out.extend(g.fwd_bwd(a.narrow(3, 1, 3)?, &[&a])?);
    let pieces = a.split(2, 2)?;
    out.extend(g.fwd_bwd(pieces[1].mul(&pieces[0])?, &[&a])?);
    out.extend(g.fwd_bwd(a.permute(&[3, 1, 0, 2])?.contiguous()?, &[&a])?);
    out.extend(g.fwd_bwd(a.t()?.reshape(&[6, 20])?, &[&a])?);
    out.extend(g.fwd_bwd(a.upsample_nearest2d(3)?, &[&a])?);
    out.extend(g.fwd_bwd(a.maxout(2, 2)?, &[&a])?);
    out.extend(g.fwd_bwd(a.global_avg_pool2d()?, &[&a])?);
    out.extend(g.fwd_bwd(a.global_sum_pool2d()?, &[&a])?);
    out.extend(g.fwd_bwd(a.global_max_pool2d()?, &[&a])?);
    let d = a.to_dtype(DType::F64)?;
    out.extend(g.fwd_bwd(d.mul(&d)?.to_dtype(DType::F32)?, &[&a])?);
    Ok(out)
});

// ---------------------------------------------------------------- indexing and pooling

device_test!(
    index_select_and_gather_forward_and_scatter_add,
    F32_TOL,
    |g| {
        // Repeated indices: the backward adds their gradient rows together.
        let table = g.randn(&[7, 5]);
        let mut out = g.fwd_bwd(table.index_select(0, &[3, 0, 3, 6, 3])?, &[&table])?;
        let x = g.randn(&[3, 6, 4]);
        out.extend(g.fwd_bwd(x.index_select(1, &[5, 1, 1, 0])?, &[&x])?);
        out.extend(g.fwd_bwd(x.index_select(2, &[3])?, &[&x])?);
        // A transposed view as input, and f64 (atomicAdd on doubles in the backward).
        out.extend(g.fwd_bwd(x.transpose(0, 2)?.index_select(2, &[2, 2, 0])?, &[&x])?);
        // (A fresh cast per backward: each backward frees the graph it ran through.)
        let x64 = |x: &Tensor| x.to_dtype(DType::F64);
        let y = x64(&x)?.index_select(0, &[2, 2, 1])?.to_dtype(DType::F32)?;
        out.extend(g.fwd_bwd(y, &[&x])?);
        // gather along each axis, with an index smaller than the input off the gathered axis and
        // positions that read the same element.
        for (dim, shape) in [(0usize, [2usize, 6, 3]), (1, [3, 9, 4]), (2, [2, 5, 7])] {
            let n: usize = shape.iter().product();
            let index: Vec<usize> = (0..n).map(|i| (i * 5 + i / 4) % x.shape()[dim]).collect();
            out.extend(g.fwd_bwd(x.gather(dim, &index, &shape)?, &[&x])?);
            let y = x64(&x)?.gather(dim, &index, &shape)?.to_dtype(DType::F32)?;
            out.extend(g.fwd_bwd(y, &[&x])?);
        }
        Ok(out)
    }
);

device_test!(where_cond_and_masked_select, F32_TOL, |g| {
    // All three operands broadcast; a mask of the other dtype (and one holding NaN, which
    // selects like any non-zero value).
    let a = g.randn(&[4, 1, 6]);
    let b = g.randn(&[5, 1]);
    let cond = g.mask(&[5, 6], 0.5);
    let mut out = g.fwd_bwd(Tensor::where_cond(&cond, &a, &b)?, &[&a, &b])?;
    let cond64 = cond.to_dtype(DType::F64)?;
    out.extend(g.fwd_bwd(Tensor::where_cond(&cond64, &a, &b)?, &[&a, &b])?);
    let nan_cond = cond.sub_scalar(1.0)?.sqrt()?; // 0 where cond is 1, sqrt(-1) = NaN where 0
    out.extend(g.fwd_bwd(Tensor::where_cond(&nan_cond, &b, &a)?, &[&a, &b])?);
    // masked_select over several chunks of the count pass (4096 elements each) with a mask
    // broadcast over the rows, and a small one broadcast the other way.
    let big = g.randn(&[3, 5000]);
    let m = g.mask(&[5000], 0.3);
    out.extend(g.fwd_bwd(big.masked_select(&m)?, &[&big])?);
    let small = g.randn(&[4, 1]);
    let m2 = g.mask(&[4, 6], 0.5).to_dtype(DType::F64)?;
    out.extend(g.fwd_bwd(small.masked_select(&m2)?, &[&small])?);
    Ok(out)
});

device_test!(windowed_pooling_and_rot90, F32_TOL, |g| {
    let x = g.randn(&[2, 3, 9, 7]);
    let mut out = Vec::new();
    for (k, s, p) in [(2, 2, 0), (3, 2, 1), (3, 1, 1), (4, 3, 2)] {
        out.extend(g.fwd_bwd(x.avg_pool2d(k, s, p)?, &[&x])?);
        out.extend(g.fwd_bwd(x.max_pool2d(k, s, p)?, &[&x])?);
    }
    out.extend(g.fwd_bwd(x.sum_pool2d(3, 2)?, &[&x])?);
    let y = x.to_dtype(DType::F64)?.max_pool2d(3, 2, 1)?;
    out.extend(g.fwd_bwd(y.to_dtype(DType::F32)?, &[&x])?);
    let y = x.to_dtype(DType::F64)?.avg_pool2d(2, 1, 1)?;
    out.extend(g.fwd_bwd(y.to_dtype(DType::F32)?, &[&x])?);
    // Ties everywhere: the gradient must go to the same (first) maximum as on the CPU.
    let t = g.ties(&[2, 2, 8, 8]);
    out.extend(g.fwd_bwd(t.max_pool2d(3, 1, 1)?, &[&t])?);
    out.extend(g.fwd_bwd(t.transpose(2, 3)?.max_pool2d(2, 2, 0)?, &[&t])?);
    for k in [-1, 0, 1, 2, 3, 6] {
        out.extend(g.fwd_bwd(x.rot90(k)?, &[&x])?);
    }
    let m = g.randn(&[5, 8]);
    out.extend(g.fwd_bwd(m.t()?.rot90(1)?, &[&m])?);
    Ok(out)
});

// ------------------------------------------------------------ random, dropout, optimisers

device_test!(
    random_draws_and_dropout_follow_the_cpu_stream,
    F32_TOL,
    |g| {
        // A fresh generator starts on a Philox block boundary, where device draws equal the CPU's.
        let mut rng = Rng::new(17);
        let n = Tensor::randn(&[1000], 0.5, 2.0, DType::F32, g.device, &mut rng)?;
        let u = Tensor::rand(&[333], -1.0, 3.0, DType::F32, g.device, &mut rng)?;
        let x = g.randn(&[40, 25]);
        let mut mask_rng = Rng::new(99);
        let y = x.dropout(0.3, &mut mask_rng, true)?;
        let mut out = vec![n, u];
        out.extend(g.fwd_bwd(y, &[&x])?);
        Ok(out)
    }
);

device_test!(adam_sgd_and_assign_update_in_place, F32_TOL, |g| {
    let p = g.randn(&[300]).detach();
    let grad = g.randn(&[300]).detach();
    let m = Tensor::zeros(&[300], DType::F32, g.device)?;
    let v = Tensor::zeros(&[300], DType::F32, g.device)?;
    let h = AdamStep {
        lr: 1e-2,
        beta1: 0.5,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
        decoupled: true,
        step: 1,
    };
    for step in 1..=3 {
        p.adam_step_(&grad, &m, &v, None, AdamStep { step, ..h })?;
    }
    let q = g.randn(&[300]).detach();
    let buf = Tensor::zeros(&[300], DType::F32, g.device)?;
    let s = SgdStep {
        lr: 0.1,
        momentum: 0.9,
        dampening: 0.0,
        weight_decay: 0.0,
        nesterov: true,
        first: true,
    };
    q.sgd_step_(&grad, &buf, s)?;
    q.sgd_step_(&grad, &buf, SgdStep { first: false, ..s })?;
    let r = Tensor::zeros(&[20, 15], DType::F32, g.device)?;
    r.assign(&g.randn(&[15, 20]).detach().t()?)?;
    Ok(vec![p, m, v, q, buf, r])
});

// ------------------------------------------------------------------------------- errors

/// Device-only behaviour: mixed devices and ops without a kernel fail with errors that name the
/// op (and both devices); nothing silently moves to the host.
#[test]
fn device_errors_name_the_op_and_devices() {
    let _guard = serial();
    let msg = Error::NoCudaKernel {
        op: "gather",
        device: Device::Cuda(0),
    }
    .to_string();
    assert!(msg.starts_with("op gather has no CUDA kernel yet"), "{msg}");
    let name = "device_errors_name_the_op_and_devices";
    let Some(device) = gpu(name) else {
        return;
    };
    let cpu = Tensor::ones(&[2, 3], DType::F32, Device::Cpu).unwrap();
    let dev = cpu.to_device(device).unwrap();
    let err = cpu.add(&dev).unwrap_err();
    assert_eq!(
        err,
        Error::DeviceMismatch {
            op: "add",
            lhs: Device::Cpu,
            rhs: device
        }
    );
    assert!(err.to_string().contains("cpu and cuda:0"), "{err}");
    let err = dev.matmul(&cpu.t().unwrap()).unwrap_err();
    assert!(
        matches!(err, Error::DeviceMismatch { op: "matmul", .. }),
        "{err}"
    );
    // Bad indices are refused on the host before anything reaches a kernel.
    let err = dev.index_select(0, &[1, 2]).unwrap_err();
    assert!(
        err.to_string()
            .contains("index 2 (at position 1) out of range"),
        "{err}"
    );
    assert!(dev.gather(1, &[0, 3], &[1, 2]).is_err());
    // Moving a parameter in place keeps its id and changes its device.
    let p = Tensor::ones(&[4], DType::F32, Device::Cpu)
        .unwrap()
        .with_requires_grad(true);
    let id = p.id();
    p.to_device_(device).unwrap();
    assert_eq!((p.id(), p.device()), (id, device));
    assert_eq!(p.to_vec::<f32>().unwrap(), vec![1.0; 4]);
    require::ran_on_gpu(name, &device);
}

// ------------------------------------------------------------------ agreed semantics (ties, ...)

device_test!(
    tied_maxima_share_the_gradient_on_every_device,
    F32_TOL,
    |g| {
        // Values with ties in every group, plane and row.
        let host = Tensor::from_vec(
            (0..48).map(|i| ((i % 3) / 2) as f32).collect::<Vec<_>>(),
            &[2, 6, 2, 2],
            Device::Cpu,
        )?;
        let x = host.to_device(g.device)?.detach().with_requires_grad(true);
        let mut out = Vec::new();
        for y in [
            x.maxout(3, 1)?,
            x.global_max_pool2d()?,
            x.max(&[1], false)?,
            x.max_pool2d(2, 2, 0)?,
        ] {
            let grads = y.sum_all()?.backward()?;
            out.push(y);
            out.push(grads.get(&x).expect("a gradient").clone());
        }
        Ok(out)
    }
);

device_test!(
    l2_normalize_is_finite_at_a_zero_norm_on_every_device,
    F32_TOL,
    |g| {
        let host = Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 3.0, 4.0, 0.0], &[2, 3], Device::Cpu)?;
        let x = host.to_device(g.device)?.detach().with_requires_grad(true);
        let w = g.randn(&[2, 3]).detach();
        let y = x.l2_normalize(1, 1e-3)?;
        let grads = y.mul(&w)?.sum_all()?.backward()?;
        Ok(vec![y, grads.get(&x).expect("a gradient").clone()])
    }
);

// ------------------------------------------------------------------ gradients of gradients

device_test!(max_pooling_second_derivatives, F32_TOL, |g| {
    // The gradient of a pooled score, then a penalty on it backpropagated: runs max pooling's
    // backward (the arg-max scatter) and its backward (the gather at the arg-maxes).
    let x = g.randn(&[2, 3, 5, 5]).detach().with_requires_grad(true);
    let w = g.randn(&[2, 3, 4, 4]).detach();
    let score = x.max_pool2d(2, 1, 0)?.tanh()?.mul(&w)?.sum_all()?;
    let grad = score.grad_with_graph(&[&x])?.remove(0);
    let penalty = grad.square()?.mul(&x)?.sum_all()?;
    let grads = penalty.backward()?;
    Ok(vec![
        grad.detach(),
        grads.get(&x).expect("a gradient").clone(),
    ])
});

device_test!(gradient_penalty_through_a_conv_critic, F32_TOL, |g| {
    // WGAN-GP's penalty on a conv + batch-free critic, its value and the parameters' gradients
    // (grad_with_graph's recorded backward, then backward through it).
    let x = g.randn(&[2, 2, 6, 6]);
    let w1 = g.randn(&[3, 2, 3, 3]);
    let b1 = g.randn(&[3]);
    let w2 = g.randn(&[1, 12]);
    let down = saddle_engine::Conv2dParams::default()
        .with_stride(2)
        .with_padding(1);
    let h = x
        .conv2d(&w1, Some(&b1), down)?
        .leaky_relu(0.2)?
        .softplus()?;
    let score = h.avg_pool2d(2, 1, 0)?.flatten(1, 3)?.linear(&w2, None)?;
    let grad = score.sum_all()?.grad_with_graph(&[&x])?.remove(0);
    let gp = grad
        .flatten(1, 3)?
        .square()?
        .sum(&[1], false)?
        .sqrt()?
        .sub_scalar(1.0)?
        .square()?
        .mean_all()?;
    let grads = gp.backward()?;
    let mut out = vec![gp, grad.detach()];
    for p in [&w1, &b1, &w2] {
        out.push(grads.get(p).expect("a gradient").clone());
    }
    Ok(out)
});
