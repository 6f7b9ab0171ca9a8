//! Every CUDA launcher against the CPU kernels (or an f64 reference) on fresh random inputs, with
//! outputs poisoned (NaN) before each launch so unwritten elements fail:
//! ||gpu − ref|| / ||ref|| < 1e-5 for f32 kernels, < 1e-3 for TF32, < 1e-2 for bf16 / f16
//! products. Without a GPU every test prints "<test>: skipped (no CUDA device: reason)" and
//! passes, unless `SADDLE_REQUIRE_CUDA=1` (then it fails); a test that ran on the GPU prints a
//! `saddle-gpu-test-ran:` line (see `saddle_kernels::require`).
//!
//! The inputs' seed is printed; `SADDLE_PARITY_SEED=<n>` repeats a run.
#![cfg(feature = "cuda")]

use saddle_kernels::cpu;
use saddle_kernels::cpu::gemm::MatRef;
use saddle_kernels::cpu::optim::{AdamStep, SgdStep};
use saddle_kernels::cuda::ops::elementwise::{self, BinaryOp, UnaryOp, View};
use saddle_kernels::cuda::ops::gemm::{GemmPrecision, GemmShape};
use saddle_kernels::cuda::ops::index::{self, DeviceIndices};
use saddle_kernels::cuda::ops::reduce::ReduceOp;
use saddle_kernels::cuda::ops::{
    conv, gemm, loss, norm, optim, pool, random, reduce, softmax, spectral,
};
use saddle_kernels::cuda::{Bf16, CudaDevice, CudaFloat, CudaHalf, DeviceBuffer, F16};
use saddle_kernels::geometry::Channels;
use saddle_kernels::geometry::Conv2dGeometry;
use saddle_kernels::geometry::Lanes;
use saddle_kernels::geometry::Pool2d;
use saddle_kernels::require::{self, Requirement};
use std::sync::{Arc, Mutex, MutexGuard};

const F32_TOL: f64 = 1e-5;
const TF32_TOL: f64 = 1e-3;
/// bf16 / f16 outputs: each element rounded to 8 (11) significant bits.
const HALF_TOL: f64 = 1e-2;

/// The device, held by one test at a time: they share its allocator, whose counters one test
/// asserts on, and the device's one stream serialises their kernels anyway. Without one the
/// test is skipped ([`require::skip`]: a failure under `SADDLE_REQUIRE_CUDA=1`).
fn device() -> Option<(Arc<CudaDevice>, GpuTest)> {
    static SERIAL: Mutex<()> = Mutex::new(());
    let test = require::current_test("cuda_parity");
    match CudaDevice::get(0) {
        Ok(d) => Some((
            d.clone(),
            GpuTest {
                test,
                device: format!("{d:?}"),
                counted: true,
                _serial: SERIAL.lock().unwrap_or_else(|e| e.into_inner()),
            },
        )),
        Err(e) => {
            require::skip(&test, Requirement::Cuda, &format!("no CUDA device: {e}"));
            None
        }
    }
}

/// Held by a test while it uses the device; when the test ends without panicking, prints the
/// line that counts it as run on the GPU ([`require::ran_on_gpu`]).
struct GpuTest {
    test: String,
    device: String,
    counted: bool,
    _serial: MutexGuard<'static, ()>,
}

impl GpuTest {
    /// The test cannot run on this device after all: skipped (or failed where required), and
    /// not counted.
    fn skip(mut self, why: &str) {
        self.counted = false;
        require::skip(&self.test, Requirement::Cuda, &why);
    }
}

impl Drop for GpuTest {
    fn drop(&mut self) {
        if self.counted && !std::thread::panicking() {
            require::ran_on_gpu(&self.test, &self.device);
        }
    }
}

/// xorshift64* inputs, seeded from the clock unless SADDLE_PARITY_SEED is set.
struct Inputs(u64);

impl Inputs {
    fn new(test: &str) -> Inputs {
        let seed = std::env::var("SADDLE_PARITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        println!("{test}: SADDLE_PARITY_SEED={seed}");
        Inputs(seed | 1)
    }
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn uniform(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n)
            .map(|_| (lo + (hi - lo) * self.next()) as f32)
            .collect()
    }
}

fn poisoned<T: CudaFloat>(dev: &CudaDevice, n: usize) -> DeviceBuffer<T> {
    dev.upload(&vec![T::from_f64(f64::NAN); n]).unwrap()
}

fn download<T: CudaFloat>(dev: &CudaDevice, b: &DeviceBuffer<T>, n: usize) -> Vec<f64> {
    let v = dev.download(b).unwrap();
    v[..n].iter().map(|x| x.to_f64()).collect()
}

/// ||got − want|| / ||want|| (infinite when any element is NaN, e.g. left unwritten).
fn rel_l2(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    if got.iter().any(|g| g.is_nan()) {
        return f64::INFINITY;
    }
    let diff: f64 = got.iter().zip(want).map(|(g, w)| (g - w) * (g - w)).sum();
    let norm: f64 = want.iter().map(|w| w * w).sum();
    (diff / norm.max(f64::MIN_POSITIVE)).sqrt()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    let e = rel_l2(got, want);
    println!("{what}: rel L2 {e:.2e}");
    assert!(e < tol, "{what}: rel L2 error {e:.3e} >= {tol:e}");
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// f64 reference of each unary op: (forward, derivative given x and y).
fn unary_ref(op: UnaryOp, x: f64) -> (f64, f64) {
    use UnaryOp::*;
    match op {
        Neg => (-x, -1.0),
        Exp => (x.exp(), x.exp()),
        Log => (x.ln(), 1.0 / x),
        Sqrt => (x.sqrt(), 0.5 / x.sqrt()),
        Square => (x * x, 2.0 * x),
        Abs => (x.abs(), x.signum()),
        Relu => (x.max(0.0), if x > 0.0 { 1.0 } else { 0.0 }),
        LeakyRelu(s) => (
            if x > 0.0 { x } else { s * x },
            if x > 0.0 { 1.0 } else { s },
        ),
        Sigmoid => (sigmoid(x), sigmoid(x) * (1.0 - sigmoid(x))),
        Tanh => (x.tanh(), 1.0 - x.tanh() * x.tanh()),
        Softplus => (x.max(0.0) + (-x.abs()).exp().ln_1p(), sigmoid(x)),
        Elu(a) => {
            if x > 0.0 {
                (x, 1.0)
            } else {
                (a * (x.exp() - 1.0), a * x.exp())
            }
        }
        Powf(e) => (x.powf(e), e * x.powf(e - 1.0)),
        Clamp(lo, hi) => (x.clamp(lo, hi), if x >= lo && x <= hi { 1.0 } else { 0.0 }),
        Affine(k, b) => (x * k + b, k),
        Recip => (1.0 / x, -1.0 / (x * x)),
        GtScalar(c) => (if x > c { 1.0 } else { 0.0 }, 0.0),
        Copy => (x, 1.0),
    }
}

#[test]
fn unary_forward_on_a_transposed_view_and_backward() {
    let Some((dev, _serial)) = device() else {
        return;
    };
    let mut rng = Inputs::new("unary");
    let (rows, cols) = (37, 53);
    let n = rows * cols;
    // Positive inputs keep log/sqrt/powf/recip defined.
    let x = rng.uniform(n, 0.1, 3.0);
    let g = rng.uniform(n, -1.0, 1.0);
    let ops = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Square,
        UnaryOp::Abs,
        UnaryOp::Relu,
        UnaryOp::LeakyRelu(0.2),
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Softplus,
        UnaryOp::Elu(1.0),
        UnaryOp::Powf(1.7),
        UnaryOp::Clamp(0.5, 2.0),
        UnaryOp::Affine(-1.5, 0.25),
        UnaryOp::Recip,
        UnaryOp::Copy,
    ];
    let dx_dev = dev.upload(&x).unwrap();
    let dg = dev.upload(&g).unwrap();
    for op in ops {
        // Forward over the transpose: output (j, i) = op(x[i, j]).
        let mut y = poisoned::<f32>(&dev, n);
        let view = View {
            shape: &[cols, rows],
            strides: &[1, cols],
            offset: 0,
        };
        elementwise::unary(&dev, op, &dx_dev, view, &mut y).unwrap();
        let want: Vec<f64> = (0..n)
            .map(|o| {
                let (j, i) = (o / rows, o % rows);
                unary_ref(op, f64::from(x[i * cols + j])).0
            })
            .collect();
        assert_close(
            &format!("{op:?} forward"),
            &download(&dev, &y, n),
            &want,
            F32_TOL,
        );
        // Backward on contiguous x, y = op(x), g.
        let y_host: Vec<f32> = x
            .iter()
            .map(|&v| unary_ref(op, f64::from(v)).0 as f32)
            .collect();
        let dy = dev.upload(&y_host).unwrap();
        let mut dx = poisoned::<f32>(&dev, n);
        elementwise::unary_backward(&dev, op, &dx_dev, &dy, &dg, &mut dx, n).unwrap();
        let want: Vec<f64> = x
            .iter()
            .zip(&g)
            .map(|(&v, &gv)| unary_ref(op, f64::from(v)).1 * f64::from(gv))
            .collect();
        assert_close(
            &format!("{op:?} backward"),
            &download(&dev, &dx, n),
            &want,
            F32_TOL,
        );
    }
}

#[test]
fn binary_ops_broadcast() {
    let Some((dev, _serial)) = device() else {
        return;
    };
    let mut rng = Inputs::new("binary");
    let (a_shape, b_shape, out) = ([4usize, 1, 33], [7usize, 33], [4usize, 7, 33]);
    let a = rng.uniform(4 * 33, 0.5, 2.0);
    let b = rng.uniform(7 * 33, 0.5, 2.0);
    let (da, db) = (dev.upload(&a).unwrap(), dev.upload(&b).unwrap());
    let n = 4 * 7 * 33;
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::Gt,
        BinaryOp::Ge,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Eq,
    ] {
        let mut y = poisoned::<f32>(&dev, n);
        let av = View {
            shape: &a_shape,
            strides: &[33, 33, 1],
            offset: 0,
        };
        let bv = View {
            shape: &b_shape,
            strides: &[33, 1],
            offset: 0,
        };
        elementwise::binary(&dev, op, &da, av, &db, bv, &out, &mut y).unwrap();
        let want: Vec<f64> = (0..n)
            .map(|o| {
                let (i, j, k) = (o / (7 * 33), (o / 33) % 7, o % 33);
                let (p, q) = (f64::from(a[i * 33 + k]), f64::from(b[j * 33 + k]));
                match op {
                    BinaryOp::Add => p + q,
                    BinaryOp::Sub => p - q,
                    BinaryOp::Mul => p * q,
                    BinaryOp::Div => p / q,
                    BinaryOp::Pow => p.powf(q),
                    BinaryOp::Maximum => p.max(q),
                    BinaryOp::Minimum => p.min(q),
                    BinaryOp::Gt => f64::from(u8::from(p > q)),
                    BinaryOp::Ge => f64::from(u8::from(p >= q)),
                    BinaryOp::Lt => f64::from(u8::from(p < q)),
                    BinaryOp::Le => f64::from(u8::from(p <= q)),
                    BinaryOp::Eq => f64::from(u8::from(p == q)),
                }
            })
            .collect();
        assert_close(&format!("{op:?}"), &download(&dev, &y, n), &want, F32_TOL);
    }
}

#[test]
fn reductions_over_rows_columns_and_one_long_row() {
    let Some((dev, _serial)) = device() else {
        return;
    };
    let mut rng = Inputs::new("reduce");
    for lanes in [
        Lanes {
            outer: 300,
            n: 257,
            inner: 1,
        },
        Lanes {
            outer: 5,
            n: 31,
            inner: 97,
        },
        Lanes {
            outer: 1,
            n: 1_000_003,
            inner: 1,
        },
        Lanes {
            outer: 3,
            n: 20_000,
            inner: 1,
        },
    ] {
        let x = rng.uniform(lanes.numel(), -2.0, 2.0);
        let dx = dev.upload(&x).unwrap();
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
            let mut y = poisoned::<f32>(&dev, lanes.count());
            reduce::reduce(&dev, op, &dx, lanes, &mut y).unwrap();
            let want: Vec<f64> = (0..lanes.count())
                .map(|l| {
                    let (o, i) = (l / lanes.inner, l % lanes.inner);
                    let vals =
                        (0..lanes.n).map(|k| f64::from(x[(o * lanes.n + k) * lanes.inner + i]));
                    match op {
                        ReduceOp::Sum => vals.sum(),
                        ReduceOp::Mean => vals.sum::<f64>() / lanes.n as f64,
                        ReduceOp::Max => vals.fold(f64::NEG_INFINITY, f64::max),
                        ReduceOp::Min => vals.fold(f64::INFINITY, f64::min),
                    }
                })
                .collect();
            let got = download(&dev, &y, lanes.count());
            assert_close(&format!("{op:?} {lanes:?}"), &got, &want, F32_TOL);
        }
    }
}

/// f64 reference product through the CPU gemm.
fn gemm_ref(s: &GemmShape, a: &[f32], b: &[f32], c0: &[f32], alpha: f64, beta: f64) -> Vec<f64> {
    let (a, b) = (to64(a), to64(b));
    let mut out = to64(c0);
    for z in 0..s.batch {
        let ma = MatRef {
            data: &a[z * s.stride_a..],
            rows: s.m,
            cols: s.k,
            rs: if s.trans_a { 1 } else { s.lda },
            cs: if s.trans_a { s.lda } else { 1 },
        };
        let mb = MatRef {
            data: &b[z * s.stride_b..],
            rows: s.k,
            cols: s.n,
            rs: if s.trans_b { 1 } else { s.ldb },
            cs: if s.trans_b { s.ldb } else { 1 },
        };
        let mut prod = vec![0.0; s.m * s.n];
        cpu::gemm::gemm(ma, mb, 0.0, &mut prod, s.n);
        for i in 0..s.m {
            for j in 0..s.n {
                let c = &mut out[z * s.stride_c + i * s.ldc + j];
                *c = alpha * prod[i * s.n + j] + beta * *c;
            }
        }
    }
    out
}

/// Two products of `m × k` by `k × n` (A, B stored transposed per `ta`, `tb`), every leading
/// dimension padded by `pad` and each product stored right after the other.
fn padded_pair(m: usize, n: usize, k: usize, ta: bool, tb: bool, pad: usize) -> GemmShape {
    let mut s = GemmShape::contiguous(m, n, k, ta, tb);
    s.lda += pad;
    s.ldb += pad;
    s.ldc += pad;
    s.batch = 2;
    let (ar, br) = (if ta { k } else { m }, if tb { n } else { k });
    s.stride_a = ar * s.lda;
    s.stride_b = br * s.ldb;
    s.stride_c = m * s.ldc;
    s
}

/// Zeroes the padding columns of C (`n..ldc` of every row) in both results: a product with
/// `beta = 0` does not write them (they hold poison), so only the m × n blocks are compared.
fn blank_padding(s: &GemmShape, got: &mut [f64], want: &mut [f64]) {
    for z in 0..s.batch {
        for i in 0..s.m {
            for j in s.n..s.ldc {
                got[z * s.stride_c + i * s.ldc + j] = 0.0;
                want[z * s.stride_c + i * s.ldc + j] = 0.0;
            }
        }
    }
}

#[test]
fn gemm_f32_and_tf32_all_transposes_odd_sizes_batched() {
    let Some((dev, _serial)) = device() else {
        return;
    };
    let mut rng = Inputs::new("gemm");
    for &(m, n, k) in &[(133usize, 77usize, 65usize), (256, 256, 256), (5, 300, 9)] {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            // Leading dimensions padded by 3 (misaligned rows: the scalar load path).
            for pad in [0usize, 3] {
                let s = padded_pair(m, n, k, ta, tb, pad);
                let a = rng.uniform(s.batch * s.stride_a, -1.0, 1.0);
                let b = rng.uniform(s.batch * s.stride_b, -1.0, 1.0);
                let c0 = rng.uniform(s.batch * s.stride_c, -1.0, 1.0);
                let (da, db) = (dev.upload(&a).unwrap(), dev.upload(&b).unwrap());
                for (precision, tol) in [
                    (GemmPrecision::F32, F32_TOL),
                    (GemmPrecision::Tf32, TF32_TOL),
                ] {
                    for (alpha, beta) in [(1.0f32, 0.0f32), (0.5, -2.0)] {
                        let mut c = if beta == 0.0 {
                            poisoned::<f32>(&dev, c0.len())
                        } else {
                            dev.upload(&c0).unwrap()
                        };
                        gemm::gemm(&dev, precision, s, alpha, &da, &db, beta, &mut c).unwrap();
                        let mut want = gemm_ref(&s, &a, &b, &c0, f64::from(alpha), f64::from(beta));
                        let mut got = download(&dev, &c, c0.len());
                        if beta == 0.0 {
                            blank_padding(&s, &mut got, &mut want);
                        }
                        let what = format!("{precision:?} {m}x{n}x{k} ta={ta} tb={tb} pad={pad} alpha={alpha} beta={beta}");
                        assert_close(&what, &got, &want, tol);
                    }
                }
            }
        }
    }
}

/// Values rounded to a 16-bit type: the device bits, and the value they hold (for the reference).
type Round<T> = fn(f32) -> (T, f32);
/// The value a 16-bit element holds.
type Widen<T> = fn(T) -> f64;

#[test]
fn gemm_bf16_and_f16_all_transposes_odd_sizes_batched() {
    let Some((dev, serial)) = device() else {
        return;
    };
    if dev.arch() < (8, 0) {
        serial.skip(&format!(
            "the bf16/f16 GEMM needs sm_80, the device is {dev:?}"
        ));
        return;
    }
    let mut rng = Inputs::new("gemm_half");
    half_gemm_cases::<Bf16>(
        &dev,
        &mut rng,
        |x| {
            let h = half::bf16::from_f32(x);
            (Bf16(h.to_bits()), h.to_f32())
        },
        |b| half::bf16::from_bits(b.0).to_f64(),
    );
    half_gemm_cases::<F16>(
        &dev,
        &mut rng,
        |x| {
            let h = half::f16::from_f32(x);
            (F16(h.to_bits()), h.to_f32())
        },
        |b| half::f16::from_bits(b.0).to_f64(),
    );
}

/// The 16-bit GEMM against the f64 product of its (rounded) inputs, as the f32 test: every
/// transpose, leading dimensions padded by 3 (the scalar load and store paths) or not (16-byte
/// loads, paired stores), two products, `beta` 0 (poisoned C) and not.
fn half_gemm_cases<T: CudaHalf>(
    dev: &CudaDevice,
    rng: &mut Inputs,
    round: Round<T>,
    widen: Widen<T>,
) {
    for &(m, n, k) in &[
        (133usize, 77usize, 65usize),
        (256, 256, 256),
        (5, 300, 9),
        (130, 136, 40),
    ] {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            for pad in [0usize, 3] {
                let s = padded_pair(m, n, k, ta, tb, pad);
                let mut rounded = |len: usize| -> (Vec<T>, Vec<f32>) {
                    rng.uniform(len, -1.0, 1.0).into_iter().map(round).unzip()
                };
                let (a, a_ref) = rounded(s.batch * s.stride_a);
                let (b, b_ref) = rounded(s.batch * s.stride_b);
                let (c0, c0_ref) = rounded(s.batch * s.stride_c);
                let (da, db) = (dev.upload(&a).unwrap(), dev.upload(&b).unwrap());
                for (alpha, beta) in [(1.0f32, 0.0f32), (0.5, -2.0)] {
                    let mut c = if beta == 0.0 {
                        dev.upload(&vec![T::NAN; c0.len()]).unwrap()
                    } else {
                        dev.upload(&c0).unwrap()
                    };
                    gemm::gemm_half(dev, s, alpha, &da, &db, beta, &mut c).unwrap();
                    let mut want = gemm_ref(
                        &s,
                        &a_ref,
                        &b_ref,
                        &c0_ref,
                        f64::from(alpha),
                        f64::from(beta),
                    );
                    let mut got: Vec<f64> = dev.download(&c).unwrap()[..c0.len()]
                        .iter()
                        .map(|&v| widen(v))
                        .collect();
                    if beta == 0.0 {
                        blank_padding(&s, &mut got, &mut want);
                    }
                    let what = format!(
                        "{} {m}x{n}x{k} ta={ta} tb={tb} pad={pad} alpha={alpha} beta={beta}",
                        T::SUFFIX
                    );
                    assert_close(&what, &got, &want, HALF_TOL);
                }
            }
        }
    }
}

#[test]
fn dgemm_all_transposes_odd_sizes_batched() {
    let Some((dev, _serial)) = device() else {
        return;
    };
    let mut rng = Inputs::new("dgemm");
    for &(m, n, k) in &[
        (133usize, 77usize, 65usize),
        (64, 64, 64),
        (5, 300, 9),
        (1, 1, 40),
    ] {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            // Leading dimensions padded by 3, two products with their own strides.
            let s = padded_pair(m, n, k, ta, tb, 3);
            let a = rng.uniform(s.batch * s.stride_a, -1.0, 1.0);
            let b = rng.uniform(s.batch * s.stride_b, -1.0, 1.0);
            let c0 = rng.uniform(s.batch * s.stride_c, -1.0, 1.0);
            let (da, db) = (upload_as::<f64>(&dev, &a), upload_as::<f64>(&dev, &b));
            for (alpha, beta) in [(1.0f64, 0.0f64), (0.5, -2.0)] {
                let mut c = if beta == 0.0 {
                    poisoned::<f64>(&dev, c0.len())
                } else {
                    upload_as::<f64>(&dev, &c0)
                };
                gemm::dgemm(&dev, s, alpha, &da, &db, beta, &mut c).unwrap();
                let mut want = gemm_ref(&s, &a, &b, &c0, alpha, beta);
                let mut got = download(&dev, &c, c0.len());
                if beta == 0.0 {
                    blank_padding(&s, &mut got, &mut want);
                }
                let what = format!("dgemm {m}x{n}x{k} ta={ta} tb={tb} alpha={alpha} beta={beta}");
                assert_close(&what, &got, &want, 1e-12);
            }
        }
    }
}

#[test]
fn conv2d_forward_and_both_gradients_and_transposed() {
    let Some((dev, _serial)) = device() else {
        return;
    };
    let mut rng = Inputs::new("conv");
    let geos = [
        // DCGAN discriminator layer: 4x4, stride 2, pad 1.
        Conv2dGeometry::conv2d(4, 3, [32, 32], 16, [4, 4], [2, 2], [1, 1], [1, 1], 1).unwrap(),
        // Grouped, dilated, asymmetric.
        Conv2dGeometry::conv2d(2, 6, [11, 9], 4, [3, 2], [1, 2], [2, 0], [2, 1], 2).unwrap(),
        // Pointwise with many images (split-K weight gradient).
        Conv2dGeometry::conv2d(64, 8, [8, 8], 8, [1, 1], [1, 1], [0, 0], [1, 1], 1).unwrap(),
        // The adjoint of a transposed conv with output_padding (fewer output rows).
        Conv2dGeometry::transposed(3, 5, [7, 7], 4, [4, 4], [2, 2], [1, 1], [1, 1], [1, 1], 1)
            .unwrap(),
    ];
    for g in geos {
        let (nx, nw, ny) = (
            g.batch * g.in_image(),
            g.weight_len(),
            g.batch * g.out_image(),
        );
        let x = rng.uniform(nx, -1.0, 1.0);
        let w = rng.uniform(nw, -0.5, 0.5);
        let gy = rng.uniform(ny, -1.0, 1.0);
        let bias = rng.uniform(g.out_channels, -1.0, 1.0);
        let in_bias = rng.uniform(g.in_channels, -1.0, 1.0);
        let (dxx, dw, dgy) = (
            dev.upload(&x).unwrap(),
            dev.upload(&w).unwrap(),
            dev.upload(&gy).unwrap(),
        );
        let (dbias, din_bias) = (dev.upload(&bias).unwrap(), dev.upload(&in_bias).unwrap());
        let (x64, w64, gy64) = (to64(&x), to64(&w), to64(&gy));

        let mut y = poisoned::<f32>(&dev, ny);
        conv::conv2d_forward(&dev, &g, &dxx, &dw, Some(&dbias), &mut y).unwrap();
        let mut want = vec![0.0; ny];
        cpu::conv::conv2d_forward(&g, &x64, &w64, Some(&to64(&bias)), &mut want);
        assert_close(
            &format!("conv2d forward {g:?}"),
            &download(&dev, &y, ny),
            &want,
            F32_TOL,
        );

        let mut gx = poisoned::<f32>(&dev, nx);
        conv::conv2d_backward_data(&dev, &g, &dgy, &dw, &mut gx).unwrap();
        let mut want = vec![0.0; nx];
        cpu::conv::conv2d_backward_data(&g, &gy64, &w64, &mut want);
        assert_close(
            "conv2d backward-data",
            &download(&dev, &gx, nx),
            &want,
            F32_TOL,
        );

        let mut gw = poisoned::<f32>(&dev, nw);
        conv::conv2d_backward_weight(&dev, &g, &dxx, &dgy, &mut gw).unwrap();
        let mut want = vec![0.0; nw];
        cpu::conv::conv2d_backward_weight(&g, &x64, &gy64, &mut want);
        assert_close(
            "conv2d backward-weight",
            &download(&dev, &gw, nw),
            &want,
            F32_TOL,
        );

        // Transposed convolution: input gy-shaped, output x-shaped, bias per x channel.
        let mut yt = poisoned::<f32>(&dev, nx);
        conv::conv_transpose2d_forward(&dev, &g, &dgy, &dw, Some(&din_bias), &mut yt).unwrap();
        let mut want = vec![0.0; nx];
        cpu::conv::conv_transpose2d_forward(&g, &gy64, &w64, Some(&to64(&in_bias)), &mut want);
        assert_close(
            "conv_transpose2d forward",
            &download(&dev, &yt, nx),
            &want,
            F32_TOL,
        );

        // Its backward, with x (the conv's output shape) as input and a fresh upstream gradient
        // of the conv's input shape.
        let gyt = rng.uniform(nx, -1.0, 1.0);
        let dgyt = dev.upload(&gyt).unwrap();
        let (mut gxt, mut gwt) = (poisoned::<f32>(&dev, ny), poisoned::<f32>(&dev, nw));
        conv::conv_transpose2d_backward(&dev, &g, &dgy, &dw, &dgyt, Some(&mut gxt), Some(&mut gwt))
            .unwrap();
        let (mut want_gx, mut want_gw) = (vec![0.0; ny], vec![0.0; nw]);
        cpu::conv::conv_transpose2d_backward(
            &g,
            &gy64,
            &w64,
            &to64(&gyt),
            Some(&mut want_gx),
            Some(&mut want_gw),
        );
        assert_close(
            "conv_transpose2d backward x",
            &download(&dev, &gxt, ny),
            &want_gx,
            F32_TOL,
        );
        assert_close(
            "conv_transpose2d backward w",
            &download(&dev, &gwt, nw),
            &want_gw,
            F32_TOL,
        );
    }
    // An empty batch: both weight gradients are zero, as on the CPU (the f32 launcher divided
    // by zero splitting an empty K before it returned early). f64 takes the direct kernel.
    let g = Conv2dGeometry::conv2d(0, 3, [8, 8], 4, [3, 3], [1, 1], [1, 1], [1, 1], 1).unwrap();
    let nw = g.weight_len();
    let empty = dev.upload(&[0.0f32]).unwrap();
    let (mut gw, mut gwt) = (poisoned::<f32>(&dev, nw), poisoned::<f32>(&dev, nw));
    conv::conv2d_backward_weight(&dev, &g, &empty, &empty, &mut gw).unwrap();
    conv::conv_transpose2d_backward(&dev, &g, &empty, &empty, &empty, None, Some(&mut gwt))
        .unwrap();
    let empty64 = dev.upload(&[0.0f64]).unwrap();
    let mut gw64 = poisoned::<f64>(&dev, nw);
    conv::conv2d_backward_weight(&dev, &g, &empty64, &empty64, &mut gw64).unwrap();
    for (what, got) in [
        ("conv2d", download(&dev, &gw, nw)),
        ("conv_transpose2d", download(&dev, &gwt, nw)),
        ("conv2d f64", download(&dev, &gw64, nw)),
    ] {
        assert!(
            got.iter().all(|&v| v == 0.0),
            "{what} weight gradient of an empty batch: {got:?}"
        );
    }
}

#[test]
fn batch_norm_forward_and_backward() {
    let Some((dev, _serial)) = device() else {
        return;
    };
    let mut rng = Inputs::new("batch_norm");
    for geo in [
        Channels {
            outer: 16,
            channels: 24,
            inner: 49,
        },
        Channels {
            outer: 128,
            channels: 10,
            inner: 1,
        },
    ] {
        let n = geo.numel();
        let c = geo.channels;
        // An offset mean tests the two-pass variance.
        let x = rng.uniform(n, 3.0, 5.0);
        let dy = rng.uniform(n, -1.0, 1.0);
        let gamma = rng.uniform(c, 0.5, 1.5);
        let (dxx, ddy, dgamma) = (
            dev.upload(&x).unwrap(),
            dev.upload(&dy).unwrap(),
            dev.upload(&gamma).unwrap(),
        );
        let (x64, dy64) = (to64(&x), to64(&dy));

        let (mut mean, mut var) = (poisoned::<f32>(&dev, c), poisoned::<f32>(&dev, c));
        norm::batch_norm_stats(&dev, &dxx, geo, &mut mean, &mut var).unwrap();
        let (m_ref, v_ref) = cpu::norm::channel_mean_var(&x64, geo);
        assert_close("bn mean", &download(&dev, &mean, c), &m_ref, F32_TOL);
        assert_close("bn var", &download(&dev, &var, c), &v_ref, F32_TOL);

        // Feed the reference statistics to the later stages so each is checked on its own.
        let invstd: Vec<f64> = v_ref.iter().map(|v| 1.0 / (v + 1e-5).sqrt()).collect();
        let scale: Vec<f64> = invstd
            .iter()
            .zip(&gamma)
            .map(|(i, &g)| i * f64::from(g))
            .collect();
        let shift: Vec<f64> = (0..c).map(|i| 0.1 * i as f64).collect();
        let f32s = |v: &[f64]| -> Vec<f32> { v.iter().map(|&x| x as f32).collect() };
        let (dm, dis) = (
            dev.upload(&f32s(&m_ref)).unwrap(),
            dev.upload(&f32s(&invstd)).unwrap(),
        );
        let (dscale, dshift) = (
            dev.upload(&f32s(&scale)).unwrap(),
            dev.upload(&f32s(&shift)).unwrap(),
        );
        let mut y = poisoned::<f32>(&dev, n);
        norm::batch_norm_apply(&dev, &dxx, geo, &dm, &dscale, &dshift, &mut y).unwrap();
        let want = cpu::norm::channel_affine(&x64, geo, &m_ref, &scale, &shift);
        assert_close("bn apply", &download(&dev, &y, n), &want, F32_TOL);

        let (mut sdy, mut sdyx) = (poisoned::<f32>(&dev, c), poisoned::<f32>(&dev, c));
        norm::batch_norm_grad_sums(&dev, &dxx, &ddy, geo, &dm, &dis, &mut sdy, &mut sdyx).unwrap();
        let (sdy_ref, sdyx_ref) = cpu::norm::channel_grad_sums(&x64, &dy64, geo, &m_ref, &invstd);
        assert_close("bn sum dy", &download(&dev, &sdy, c), &sdy_ref, F32_TOL);
        assert_close(
            "bn sum dy xhat",
            &download(&dev, &sdyx, c),
            &sdyx_ref,
            F32_TOL,
        );

        let (dsdy, dsdyx) = (
            dev.upload(&f32s(&sdy_ref)).unwrap(),
            dev.upload(&f32s(&sdyx_ref)).unwrap(),
        );
        let mut dx = poisoned::<f32>(&dev, n);
        norm::batch_norm_input_grad(
            &dev,
            &dxx,
            &ddy,
            geo,
            &dm,
            &dis,
            Some(&dgamma),
            &dsdy,
            &dsdyx,
            &mut dx,
        )
        .unwrap();
        let want = cpu::norm::batch_norm_input_grad(
            &x64,
            &dy64,
            geo,
            &m_ref,
            &invstd,
            Some(&to64(&gamma)),
            &sdy_ref,
            &sdyx_ref,
        );
        assert_close("bn input grad", &download(&dev, &dx, n), &want, F32_TOL);
    }
}

#[test]
fn softmax_and_log_softmax_rows_and_columns() {
    let Some((dev, _serial)) = device() else {
        return;
    };
    let mut rng = Inputs::new("softmax");
    for lanes in [
        Lanes {
            outer: 70,
            n: 1000,
            inner: 1,
        },
        Lanes {
            outer: 3,
            n: 17,
            inner: 40,
        },
    ] {
        let n = lanes.numel();
        let x = rng.uniform(n, -8.0, 8.0);
        let g = rng.uniform(n, -1.0, 1.0);
        let (dxx, dg) = (dev.upload(&x).unwrap(), dev.upload(&g).unwrap());
        for log in [false, true] {
            let mut y = poisoned::<f32>(&dev, n);
            softmax::softmax(&dev, &dxx, lanes, log, &mut y).unwrap();
            let x64 = to64(&x);
            let want = if log {
                cpu::softmax::log_softmax(&x64, lanes)
            } else {
                cpu::softmax::softmax(&x64, lanes)
            };
            assert_close(
                &format!("softmax log={log} {lanes:?}"),
                &download(&dev, &y, n),
                &want,
                F32_TOL,
            );
            let y32: Vec<f32> = want.iter().map(|&v| v as f32).collect();
            let dy = dev.upload(&y32).unwrap();
            let mut dx = poisoned::<f32>(&dev, n);
            softmax::softmax_backward(&dev, &dy, &dg, lanes, log, &mut dx).unwrap();
            let want = if log {
                cpu::softmax::log_softmax_backward(&to64(&y32), &to64(&g), lanes)
            } else {
                cpu::softmax::softmax_backward(&to64(&y32), &to64(&g), lanes)
            };
            assert_close("softmax backward", &download(&dev, &dx, n), &want, F32_TOL);
        }
    }
}

/// `v` as `T` on the device.
fn upload_as<T: CudaFloat>(dev: &CudaDevice, v: &[f32]) -> DeviceBuffer<T> {
    let host: Vec<T> = v.iter().map(|&x| T::from_f64(f64::from(x))).collect();
    dev.upload(&host).unwrap()
}

/// index_select / index_add and gather / scatter_add in `T` against the CPU kernels; repeated
/// indices make the scatter-adds accumulate (by atomics on the device).
fn index_ops_in<T: CudaFloat>(dev: &CudaDevice, rng: &mut Inputs, tol: f64) {
    let t = T::SUFFIX;
    let lanes = Lanes {
        outer: 6,
        n: 50,
        inner: 33,
    };
    let x = rng.uniform(lanes.numel(), -1.0, 1.0);
    let dxx = upload_as::<T>(dev, &x);
    let idx: Vec<usize> = (0..77).map(|i| (i * 13 + i / 5) % 7 + 20).collect();
    let didx = DeviceIndices::upload(dev, &idx, lanes.n).unwrap();
    let ny = lanes.outer * idx.len() * lanes.inner;
    let mut y = poisoned::<T>(dev, ny);
    index::index_select(dev, &dxx, lanes, &didx, &mut y).unwrap();
    let want = cpu::index::index_select(&to64(&x), lanes.outer, lanes.n, lanes.inner, &idx);
    assert_close(
        &format!("index_select {t}"),
        &download(dev, &y, ny),
        &want,
        tol,
    );
    let g = rng.uniform(ny, -1.0, 1.0);
    let mut dx = poisoned::<T>(dev, lanes.numel());
    index::index_add(dev, &upload_as::<T>(dev, &g), lanes, &didx, &mut dx).unwrap();
    let want = cpu::index::index_add(&to64(&g), lanes.outer, lanes.n, lanes.inner, &idx);
    assert_close(
        &format!("index_add {t}"),
        &download(dev, &dx, lanes.numel()),
        &want,
        tol,
    );
    // Indices checked against a larger axis are refused.
    assert!(index::index_select(dev, &dxx, Lanes { n: 10, ..lanes }, &didx, &mut y).is_err());

    let src = [5usize, 40, 9];
    let x = rng.uniform(src.iter().product(), -1.0, 1.0);
    let dxx = upload_as::<T>(dev, &x);
    for (dim, shape) in [(0usize, [7usize, 40, 9]), (1, [5, 64, 8]), (2, [3, 11, 20])] {
        let n: usize = shape.iter().product();
        let index: Vec<usize> = (0..n).map(|i| (i * 31 + i / 7) % src[dim]).collect();
        let didx = DeviceIndices::upload(dev, &index, src[dim]).unwrap();
        let mut y = poisoned::<T>(dev, n);
        index::gather(dev, &dxx, &src, dim, &didx, &shape, &mut y).unwrap();
        let want = cpu::index::gather(&to64(&x), &src, dim, &index, &shape);
        assert_close(
            &format!("gather {t} dim {dim}"),
            &download(dev, &y, n),
            &want,
            tol,
        );
        let g = rng.uniform(n, -1.0, 1.0);
        let mut dx = poisoned::<T>(dev, x.len());
        index::scatter_add(
            dev,
            &upload_as::<T>(dev, &g),
            &src,
            dim,
            &didx,
            &shape,
            &mut dx,
        )
        .unwrap();
        let want = cpu::index::scatter_add(&to64(&g), &src, dim, &index, &shape);
        assert_close(
            &format!("scatter_add {t} dim {dim}"),
            &download(dev, &dx, x.len()),
            &want,
            tol,
        );
    }
}

#[test]
fn index_select_gather_and_their_scatter_adds() {
    let Some((dev, _serial)) = device() else {
        return;
    };
    let mut rng = Inputs::new("index");
    index_ops_in::<f32>(&dev, &mut rng, F32_TOL);
    index_ops_in::<f64>(&dev, &mut rng, 1e-12);
}

#[test]
fn select_masked_select_and_rot90() {
    let Some((dev, _serial)) = device() else {
        return;
    };
    let mut rng = Inputs::new("mask");
    // select: a [rows, 1] column and a [cols] row broadcast against a dense mask with NaNs
    // (which select a, as on the CPU).
    let (rows, cols) = (37, 61);
    let n = rows * cols;
    let mask: Vec<f32> = rng
        .uniform(n, 0.0, 1.0)
        .iter()
        .enumerate()
        .map(|(i, &u)| {
            if i % 17 == 0 {
                f32::NAN
            } else {
                (u > 0.5) as u8 as f32
            }
        })
        .collect();
    let a = rng.uniform(rows, -1.0, 1.0);
    let b = rng.uniform(cols, -1.0, 1.0);
    let (dm, da, db) = (
        dev.upload(&mask).unwrap(),
        dev.upload(&a).unwrap(),
        dev.upload(&b).unwrap(),
    );
    let mut y = poisoned::<f32>(&dev, n);
    let a_view = View {
        shape: &[rows, 1],
        strides: &[1, 1],
        offset: 0,
    };
    let b_view = View {
        shape: &[cols],
        strides: &[1],
        offset: 0,
    };
    elementwise::select(&dev, &dm, &da, a_view, &db, b_view, &[rows, cols], &mut y).unwrap();
    let want: Vec<f64> = (0..n)
        .map(|i| {
            let v = if mask[i] != 0.0 {
                a[i / cols]
            } else {
                b[i % cols]
            };
            f64::from(v)
        })
        .collect();
    assert_close("select", &download(&dev, &y, n), &want, F32_TOL);

    // masked_select over many chunks (and a partial last one), then its backward.
    for (len, p) in [(3 * 4096 + 1234, 0.3), (1000, 0.0), (9000, 1.0)] {
        let x = rng.uniform(len, -1.0, 1.0);
        let m: Vec<f32> = rng
            .uniform(len, 0.0, 1.0)
            .iter()
            .map(|&u| if f64::from(u) < p { 2.5 } else { 0.0 })
            .collect();
        let (dm, dxx) = (dev.upload(&m).unwrap(), dev.upload(&x).unwrap());
        let at = index::mask_offsets(&dev, &dm, len).unwrap();
        let want: Vec<f64> = x
            .iter()
            .zip(&m)
            .filter(|(_, &k)| k != 0.0)
            .map(|(&v, _)| f64::from(v))
            .collect();
        assert_eq!(at.count(), want.len(), "masked count of {len}");
        let mut y = poisoned::<f32>(&dev, want.len().max(1));
        index::mask_compact(&dev, &at, &dm, &dxx, &mut y).unwrap();
        if !want.is_empty() {
            assert_close(
                &format!("mask compact {len}"),
                &download(&dev, &y, want.len()),
                &want,
                F32_TOL,
            );
        }
        let g = rng.uniform(want.len(), -1.0, 1.0);
        let dg = dev
            .upload(&g.iter().copied().chain([0.0]).collect::<Vec<_>>())
            .unwrap();
        let mut dx = poisoned::<f32>(&dev, len);
        index::mask_expand(&dev, &at, &dm, &dg, &mut dx).unwrap();
        let mut next = g.iter();
        let want: Vec<f64> = m
            .iter()
            .map(|&k| {
                if k != 0.0 {
                    f64::from(*next.next().unwrap())
                } else {
                    0.0
                }
            })
            .collect();
        let got = download(&dev, &dx, len);
        assert!(
            got.iter().zip(&want).all(|(a, b)| a == b),
            "mask expand {len}"
        );
    }

    let (planes, h, w) = (3, 5, 8);
    let x = rng.uniform(planes * h * w, -1.0, 1.0);
    let dxx = dev.upload(&x).unwrap();
    for k in -2..=4 {
        let mut y = poisoned::<f32>(&dev, x.len());
        index::rot90(&dev, &dxx, planes, h, w, k, &mut y).unwrap();
        let want = cpu::image::rot90(&to64(&x), planes, h, w, k);
        assert_eq!(download(&dev, &y, x.len()), want, "rot90 k={k}");
    }
}

#[test]
fn windowed_pooling_forward_and_backward() {
    let Some((dev, _serial)) = device() else {
        return;
    };
    let mut rng = Inputs::new("pool");
    let (planes, h, w) = (10, 13, 11);
    let x = rng.uniform(planes * h * w, -1.0, 1.0);
    // A second input full of ties: the arg-max must be the first maximum, as on the CPU.
    let ties: Vec<f32> = (0..x.len()).map(|i| ((i * 7 + i / 3) % 4) as f32).collect();
    for (kh, kw, sh, sw, ph, pw) in [
        (2, 2, 2, 2, 0, 0),
        (3, 3, 2, 2, 1, 1),
        (3, 2, 1, 2, 1, 1),
        (5, 4, 3, 1, 2, 0),
    ] {
        let p = Pool2d {
            kh,
            kw,
            sh,
            sw,
            ph,
            pw,
        };
        let (oh, ow) = p.out_size(h, w).unwrap();
        let ny = planes * oh * ow;
        let g = rng.uniform(ny, -1.0, 1.0);
        let dg = dev.upload(&g).unwrap();
        for (what, input) in [("random", &x), ("ties", &ties)] {
            let dxx = dev.upload(input).unwrap();
            let x64 = to64(input);
            let divisor = (kh * kw) as f32;
            let mut y = poisoned::<f32>(&dev, ny);
            pool::sum_pool2d(&dev, &dxx, planes, h, w, &p, divisor, &mut y).unwrap();
            let want = cpu::pool::sum_pool2d(&x64, planes, h, w, &p, f64::from(divisor));
            assert_close(
                &format!("avg pool {what} {p:?}"),
                &download(&dev, &y, ny),
                &want,
                F32_TOL,
            );
            let mut dx = poisoned::<f32>(&dev, x.len());
            pool::sum_pool2d_backward(&dev, &dg, planes, h, w, &p, divisor, &mut dx).unwrap();
            let want =
                cpu::pool::sum_pool2d_backward(&to64(&g), planes, h, w, &p, f64::from(divisor));
            assert_close(
                "avg pool backward",
                &download(&dev, &dx, x.len()),
                &want,
                F32_TOL,
            );

            let mut y = poisoned::<f32>(&dev, ny);
            let mut arg = dev.upload(&vec![0xdead_beef_u32; ny]).unwrap();
            pool::max_pool2d(&dev, &dxx, planes, h, w, &p, &mut y, &mut arg).unwrap();
            let (want, want_arg) = cpu::pool::max_pool2d(&x64, planes, h, w, &p);
            assert_close(
                &format!("max pool {what} {p:?}"),
                &download(&dev, &y, ny),
                &want,
                F32_TOL,
            );
            let got_arg: Vec<usize> = dev.download(&arg).unwrap()[..ny]
                .iter()
                .map(|&a| a as usize)
                .collect();
            assert_eq!(got_arg, want_arg, "max pool arg-max {what} {p:?}");
            let mut dx = poisoned::<f32>(&dev, x.len());
            pool::max_pool2d_backward(&dev, &dg, &arg, planes, h, w, &p, &mut dx).unwrap();
            let want = cpu::pool::max_pool2d_backward(&to64(&g), &want_arg, planes, h, w);
            assert_close(
                "max pool backward",
                &download(&dev, &dx, x.len()),
                &want,
                F32_TOL,
            );
        }
    }
}

#[test]
fn bce_with_logits_mean_and_gradient() {
    let Some((dev, _serial)) = device() else {
        return;
    };
    let mut rng = Inputs::new("bce");
    let n = 10_007;
    let x = rng.uniform(n, -30.0, 30.0);
    let t: Vec<f32> = rng
        .uniform(n, 0.0, 1.0)
        .iter()
        .map(|&v| v.round())
        .collect();
    let (dxx, dt) = (dev.upload(&x).unwrap(), dev.upload(&t).unwrap());
    let mut out = poisoned::<f32>(&dev, 1);
    loss::bce_with_logits_mean(&dev, &dxx, &dt, n, &mut out).unwrap();
    let want = cpu::loss::sum_zip(&to64(&x), &to64(&t), cpu::loss::bce_with_logits) / n as f64;
    assert_close("bce mean", &download(&dev, &out, 1), &[want], F32_TOL);
    let g = dev.upload(&[0.75f32]).unwrap();
    let mut dx = poisoned::<f32>(&dev, n);
    loss::bce_with_logits_grad(&dev, &dxx, &dt, &g, 1.0 / n as f32, n, &mut dx).unwrap();
    let want: Vec<f64> = x
        .iter()
        .zip(&t)
        .map(|(&a, &b)| cpu::loss::bce_with_logits_dx(f64::from(a), f64::from(b)) * 0.75 / n as f64)
        .collect();
    assert_close("bce grad", &download(&dev, &dx, n), &want, F32_TOL);
}

#[test]
fn adam_and_sgd_steps() {
    let Some((dev, _serial)) = device() else {
        return;
    };
    let mut rng = Inputs::new("optim");
    let n = 5000;
    for (decoupled, amsgrad) in [(false, false), (true, true)] {
        let p = rng.uniform(n, -1.0, 1.0);
        let g = rng.uniform(n, -1.0, 1.0);
        let m = rng.uniform(n, -0.1, 0.1);
        let v = rng.uniform(n, 0.0, 0.01);
        let h = AdamStep {
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            decoupled,
            step: 7,
        };
        let (mut dp, dg) = (dev.upload(&p).unwrap(), dev.upload(&g).unwrap());
        let (mut dm, mut dv) = (dev.upload(&m).unwrap(), dev.upload(&v).unwrap());
        let mut dvm = dev.upload(&v).unwrap();
        optim::adam_update(
            &dev,
            &mut dp,
            &dg,
            &mut dm,
            &mut dv,
            amsgrad.then_some(&mut *dvm),
            h,
            n,
        )
        .unwrap();
        let (mut p64, mut m64, mut v64, mut vm64) = (to64(&p), to64(&m), to64(&v), to64(&v));
        cpu::optim::adam_update(
            &mut p64,
            &to64(&g),
            &mut m64,
            &mut v64,
            amsgrad.then_some(&mut vm64[..]),
            h,
        );
        // Compare the update (p − p0), which is ~1e-4 of p: a stricter test than p itself.
        let delta = |after: &[f64]| -> Vec<f64> {
            after
                .iter()
                .zip(&p)
                .map(|(a, &b)| a - f64::from(b))
                .collect()
        };
        assert_close(
            "adam update",
            &delta(&download(&dev, &dp, n)),
            &delta(&p64),
            1e-3,
        );
        assert_close("adam m", &download(&dev, &dm, n), &m64, F32_TOL);
        assert_close("adam v", &download(&dev, &dv, n), &v64, F32_TOL);
    }
    let p = rng.uniform(n, -1.0, 1.0);
    let g = rng.uniform(n, -1.0, 1.0);
    let buf = rng.uniform(n, -1.0, 1.0);
    let h = SgdStep {
        lr: 0.1,
        momentum: 0.9,
        dampening: 0.1,
        weight_decay: 1e-3,
        nesterov: true,
        first: false,
    };
    let (mut dp, dg, mut db) = (
        dev.upload(&p).unwrap(),
        dev.upload(&g).unwrap(),
        dev.upload(&buf).unwrap(),
    );
    optim::sgd_update(&dev, &mut dp, &dg, &mut db, h, n).unwrap();
    let (mut p64, mut b64) = (to64(&p), to64(&buf));
    cpu::optim::sgd_update(&mut p64, &to64(&g), &mut b64, h);
    assert_close("sgd p", &download(&dev, &dp, n), &p64, F32_TOL);
    assert_close("sgd buf", &download(&dev, &db, n), &b64, F32_TOL);
}

#[test]
fn spectral_norm_power_iteration() {
    let Some((dev, _serial)) = device() else {
        return;
    };
    let mut rng = Inputs::new("spectral");
    for (rows, cols) in [(64usize, 48usize), (300, 1024), (3, 5000)] {
        let w = rng.uniform(rows * cols, -1.0, 1.0);
        let u0 = rng.uniform(rows, -1.0, 1.0);
        let (dw, mut du) = (dev.upload(&w).unwrap(), dev.upload(&u0).unwrap());
        let mut dv = poisoned::<f32>(&dev, cols);
        spectral::power_iteration(&dev, &dw, rows, cols, &mut du, &mut dv, 1e-12).unwrap();
        // f64 reference of the same step.
        let normalize = |x: Vec<f64>| -> Vec<f64> {
            let n = x.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-12);
            x.into_iter().map(|a| a / n).collect()
        };
        let v = normalize(
            (0..cols)
                .map(|j| {
                    (0..rows)
                        .map(|i| f64::from(w[i * cols + j]) * f64::from(u0[i]))
                        .sum()
                })
                .collect(),
        );
        let u = normalize(
            (0..rows)
                .map(|i| (0..cols).map(|j| f64::from(w[i * cols + j]) * v[j]).sum())
                .collect(),
        );
        let what = format!("power iteration {rows}x{cols}");
        assert_close(
            &format!("{what} v"),
            &download(&dev, &dv, cols),
            &v,
            F32_TOL,
        );
        assert_close(
            &format!("{what} u"),
            &download(&dev, &du, rows),
            &u,
            F32_TOL,
        );
    }
}

/// Philox 4x32-10 as in engine/src/rng.rs (the engine is not a dependency of this crate).
fn philox(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (ctr, key);
    for _ in 0..10 {
        let p0 = 0xD251_1F53u64 * u64::from(c[0]);
        let p1 = 0xCD9E_8D57u64 * u64::from(c[2]);
        c = [
            ((p1 >> 32) as u32) ^ c[1] ^ k[0],
            p1 as u32,
            ((p0 >> 32) as u32) ^ c[3] ^ k[1],
            p0 as u32,
        ];
        k = [
            k[0].wrapping_add(0x9E37_79B9),
            k[1].wrapping_add(0xBB67_AE85),
        ];
    }
    c
}

fn words(seed: u64, counter: u64, n_words: usize) -> Vec<u32> {
    (0..n_words.div_ceil(4) as u64)
        .flat_map(|j| {
            let c = counter + j;
            philox(
                [c as u32, (c >> 32) as u32, 0, 0],
                [seed as u32, (seed >> 32) as u32],
            )
        })
        .take(n_words)
        .collect()
}

#[test]
fn philox_draws_match_the_cpu_stream() {
    // Random123's known answer, as in engine/src/rng.rs: the reference below is faithful.
    assert_eq!(
        philox([0; 4], [0; 2]),
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
    );
    let Some((dev, _serial)) = device() else {
        return;
    };
    let mut rng = Inputs::new("philox");
    let (seed, counter) = ((rng.next() * 1e15) as u64, (rng.next() * 1e9) as u64);
    let n = 10_001;
    let unit = |hi: u32, lo: u32| {
        ((u64::from(hi) << 32 | u64::from(lo)) >> 11) as f64 / (1u64 << 53) as f64
    };

    let mut out = poisoned::<f64>(&dev, n);
    let used = random::normal(&dev, seed, counter, 0.5, 2.0, &mut out, n).unwrap();
    assert_eq!(used, n as u64);
    let w = words(seed, counter, 4 * n);
    let want: Vec<f64> = (0..n)
        .map(|i| {
            let u1 = 1.0 - unit(w[4 * i], w[4 * i + 1]);
            let u2 = unit(w[4 * i + 2], w[4 * i + 3]);
            0.5 + 2.0 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect();
    assert_close("philox normal f64", &download(&dev, &out, n), &want, 1e-12);

    let mut out = poisoned::<f32>(&dev, n);
    let used = random::uniform(&dev, seed, counter, -1.0, 3.0, &mut out, n).unwrap();
    assert_eq!(used, n.div_ceil(2) as u64);
    let w = words(seed, counter, 2 * n);
    let want: Vec<f64> = (0..n)
        .map(|i| f64::from((-1.0 + 4.0 * unit(w[2 * i], w[2 * i + 1])) as f32))
        .collect();
    assert_eq!(
        download(&dev, &out, n),
        want,
        "uniform draws equal the CPU's"
    );

    let p = 0.3;
    let mut out = poisoned::<f32>(&dev, n);
    random::dropout_mask(&dev, seed, counter, p, &mut out, n).unwrap();
    let w = words(seed, counter, n);
    let threshold = (p * 4_294_967_296.0).ceil() as u64;
    let keep = f64::from((1.0 / (1.0 - p)) as f32);
    let want: Vec<f64> = w
        .iter()
        .map(|&x| if u64::from(x) >= threshold { keep } else { 0.0 })
        .collect();
    assert_eq!(
        download(&dev, &out, n),
        want,
        "dropout mask equals the CPU's"
    );
}

#[test]
fn allocator_reaches_a_steady_state_on_the_device() {
    let Some((dev, _serial)) = device() else {
        return;
    };
    let sizes = [1usize, 1000, 65_536, 3 << 20, 777_777];
    let step = || {
        let bufs: Vec<_> = sizes
            .iter()
            .map(|&s| dev.alloc::<f32>(s).unwrap())
            .collect();
        drop(bufs);
    };
    step();
    let warm = dev.alloc_stats();
    for _ in 0..5 {
        step();
    }
    let s = dev.alloc_stats();
    assert_eq!(
        s.raw_allocs, warm.raw_allocs,
        "no cuMemAlloc after warm-up: {s:?}"
    );
    assert!(s.cache_hits >= warm.cache_hits + 5 * sizes.len() as u64);
    dev.synchronize().unwrap();
}

/// Uploads staged through the page-locked ring (more uploads than slots, slots growing, one
/// empty, one over the staging limit copied from pageable memory) arrive intact, each queued
/// before the previous ones have been read back, and a kernel reading one sees its values.
#[test]
fn staged_uploads_arrive_intact_through_the_ring() {
    let Some((dev, _serial)) = device() else {
        return;
    };
    let mut inputs = Inputs::new("staged_uploads_arrive_intact_through_the_ring");
    // Byte sizes from tiny to past the 16 MiB staging limit; 20 uploads wrap the 8-slot ring.
    let lens = [
        1usize,
        3,
        1000,
        0,
        4096,
        65_536,
        7,
        300_000,
        1 << 20,
        5,
        123_457,
        2,
        (5 << 20) + 1,
        64,
        4_194_305,
        9,
        10,
        11,
        12,
        13,
    ];
    let hosts: Vec<Vec<f32>> = lens
        .iter()
        .map(|&n| (0..n).map(|_| inputs.next() as f32).collect())
        .collect();
    let bufs: Vec<DeviceBuffer<f32>> = hosts.iter().map(|h| dev.upload(h).unwrap()).collect();
    for (i, (h, b)) in hosts.iter().zip(&bufs).enumerate() {
        let back = dev.download(b).unwrap();
        assert_eq!(&back[..h.len()], &h[..], "upload {i} of {} values", h.len());
    }
    // A kernel queued after a staged upload reads the uploaded values.
    let x = &hosts[7];
    let mut y = poisoned::<f32>(&dev, x.len());
    let (shape, mut strides) = ([x.len()], Vec::new());
    let view = View::contiguous(&shape, &mut strides);
    elementwise::unary(&dev, UnaryOp::Neg, &bufs[7], view, &mut y).unwrap();
    let want: Vec<f64> = x.iter().map(|&v| -(v as f64)).collect();
    assert_close(
        "neg of a staged upload",
        &download(&dev, &y, x.len()),
        &want,
        F32_TOL,
    );
}
