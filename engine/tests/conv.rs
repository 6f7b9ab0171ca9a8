//! conv2d and conv_transpose2d: forward values against PyTorch, gradient checks on random
//! geometries, determinism across thread counts, and shape errors.

use proptest::prelude::*;
use saddle_engine::gradcheck::check_gradients;
use saddle_engine::{Conv2dParams, ConvTranspose2dParams, DType, Device, Rng, Tensor};

mod common;
use common::*;

/// `v(shape, k)` of the PyTorch snippet below: `((i·k mod 13) - 6) / 10` in row-major order.
fn v(shape: &[usize], k: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let values = (0..n).map(|i| ((i * k) % 13) as f64 * 0.1 - 0.6).collect();
    Tensor::from_vec(values, shape, Device::Cpu).unwrap()
}

fn assert_close(got: &Tensor, shape: &[usize], want: &[f64]) {
    assert_eq!(got.shape(), shape);
    let got = got.to_vec::<f64>().unwrap();
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() < 1e-9, "element {i}: {a} vs {b}");
    }
}

// The literals below come from PyTorch (float64):
//
// import torch
// import torch.nn.functional as F
// def v(shape, k=1):
//     n = torch.Size(shape).numel()
//     return (((torch.arange(n, dtype=torch.float64) * k) % 13) - 6).mul(0.1).reshape(shape)
// def show(name, t):
//     print(name, list(t.shape))
//     print(", ".join("%.10g" % x for x in t.flatten().tolist()))
// show("A", F.conv2d(v([1, 4, 5, 5]), v([6, 2, 3, 3], 5), v([6], 3), stride=2, padding=1, groups=2))
// show("B", F.conv2d(v([1, 2, 5, 6]), v([3, 2, 2, 3], 7), None, stride=(2, 1), padding=1, dilation=2))
// show("C", F.conv_transpose2d(v([1, 2, 2, 3]), v([2, 1, 3, 3], 5), v([2], 4), stride=2, padding=1,
//                              output_padding=1, groups=2))
// show("D", F.conv_transpose2d(v([1, 2, 3, 3]), v([2, 1, 2, 2], 3), None, stride=1, padding=0,
//                              output_padding=1, dilation=2))

#[test]
fn conv2d_stride2_padding_groups_bias_matches_pytorch() {
    let y = v(&[1, 4, 5, 5], 1)
        .conv2d(
            &v(&[6, 2, 3, 3], 5),
            Some(&v(&[6], 3)),
            Conv2dParams::default()
                .with_stride(2)
                .with_padding(1)
                .with_groups(2),
        )
        .unwrap();
    #[rustfmt::skip]
    let want = [
        -1.22, -0.5, -0.39, -0.35, -1.35, 2.775557562e-17, -0.69, -0.47, -0.88, 0.01, -0.61, -0.44, 0.38, -0.48,
        -0.15, -0.27, -0.3, -0.31, 0.46, 0.19, -0.1, 0.33, -0.39, 0.22, 0.15, -5.551115123e-17, -0.13, 0.06, 1.03,
        -0.07, 0.74, 0.38, 0.56, 0.95, 0.56, 0.45, 0.28, 1.42, 0.43, 0.8, 0.7, 0.78, 0.62, 0.58, 0.79, -0.8, 0.25,
        -0.37, -0.05, -0.8, -0.69, -0.23, -0.18, -0.17,
    ];
    assert_close(&y, &[1, 6, 3, 3], &want);
}

#[test]
fn conv2d_dilation_and_uneven_stride_matches_pytorch() {
    let p = Conv2dParams {
        stride: [2, 1],
        padding: [1, 1],
        dilation: [2, 2],
        groups: 1,
    };
    let y = v(&[1, 2, 5, 6], 1)
        .conv2d(&v(&[3, 2, 2, 3], 7), None, p)
        .unwrap();
    #[rustfmt::skip]
    let want = [
        -0.36, -0.12, 0.12, 0.23, 0.56, -0.19, -0.71, -0.25, -0.06, 0.15, 0.04, -0.42, 0.21, 0.15, -0.55, -0.39,
        -0.36, -0.14, 0.19, -0.3, 0.14, -0.33, -0.34, 0.15, -0.39, -0.23, 0.08, 0.16, 0.41, -0.35, -0.73, -0.09,
        -0.18, -0.03, -0.07, -0.32,
    ];
    assert_close(&y, &[1, 3, 3, 4], &want);
}

#[test]
fn conv_transpose2d_output_padding_groups_bias_matches_pytorch() {
    let p = ConvTranspose2dParams::default()
        .with_stride(2)
        .with_padding(1)
        .with_output_padding(1)
        .with_groups(2);
    let y = v(&[1, 2, 2, 3], 1)
        .conv_transpose2d(&v(&[2, 1, 3, 3], 5), Some(&v(&[2], 4)), p)
        .unwrap();
    #[rustfmt::skip]
    let want = [
        -0.66, -0.76, -0.65, -0.74, -0.64, -0.84, -0.75, -0.2, -0.73, -0.29, -0.71, -0.44, -0.63, -0.7, -0.62,
        -0.68, -0.61, -0.66, -0.69, -0.41, -0.66, -0.48, -0.63, -0.55, -0.2, -0.18, -0.26, -0.17, -0.32, -0.22,
        -0.05, -0.25, -0.04, -0.23, -0.03, -0.33, -0.38, -0.15, -0.44, -0.14, -0.5, -0.25, -0.32, -0.01, -0.36,
        0.04, -0.4, -0.15,
    ];
    assert_close(&y, &[1, 2, 4, 6], &want);
}

#[test]
fn conv_transpose2d_dilation_with_output_padding_matches_pytorch() {
    // output_padding 1 >= stride 1 but < dilation 2: the last row and column get no input.
    let p = ConvTranspose2dParams::default()
        .with_output_padding(1)
        .with_dilation(2);
    let y = v(&[1, 2, 3, 3], 1)
        .conv_transpose2d(&v(&[2, 1, 2, 2], 3), None, p)
        .unwrap();
    #[rustfmt::skip]
    let want = [
        0.54, 0.54, 0.6, -0.01, -0.08, 0.0, 0.54, -0.24, -0.39, 0.3, 0.23, 0.0, -0.27, -0.28, -0.25, 0.02,
        -1.387778781e-17, 0.0, -0.06, 0.06, 0.08, -0.18, -0.13, 0.0, 0.04, 0.03, -0.06, -0.03, 0.02, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
    ];
    assert_close(&y, &[1, 1, 6, 6], &want);
}

#[test]
fn f32_matches_f64() {
    let (x, w) = (v(&[2, 4, 6, 6], 1), v(&[4, 2, 3, 3], 5));
    let p = Conv2dParams::default()
        .with_stride(2)
        .with_padding(1)
        .with_groups(2);
    let y64 = x.conv2d(&w, None, p).unwrap().to_vec::<f64>().unwrap();
    let (x32, w32) = (
        x.to_dtype(DType::F32).unwrap(),
        w.to_dtype(DType::F32).unwrap(),
    );
    let y32 = x32.conv2d(&w32, None, p).unwrap().to_vec_f64().unwrap();
    for (a, b) in y32.iter().zip(&y64) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn conv2d_gradients((n, groups, cg, ocg, hw, k, s, p, d, with_bias) in conv_geometry(), seed in 0u64..1000) {
        // The dilated kernel must fit the padded input.
        prop_assume!((0..2).all(|a| hw[a] + 2 * p > d * (k[a] - 1)));
        let mut inputs = vec![leaf(&[n, groups * cg, hw[0], hw[1]], seed), leaf(&[groups * ocg, cg, k[0], k[1]], seed + 1)];
        if with_bias {
            inputs.push(leaf(&[groups * ocg], seed + 2));
        }
        let params = Conv2dParams::default().with_stride(s).with_padding(p).with_dilation(d).with_groups(groups);
        let r = check_gradients(|xs| xs[0].conv2d(&xs[1], xs.get(2), params), &inputs, 1e-6, 1e-7, 1e-5);
        prop_assert!(r.is_ok(), "{params:?}: {r:?}");
    }

    #[test]
    fn conv_transpose2d_gradients(
        (n, groups, cg, ocg, hw, k, s, p, d, with_bias) in conv_geometry(),
        op in 0..=1usize,
        seed in 0u64..1000,
    ) {
        let out_pad = op.min(s.max(d) - 1);
        let hw = [hw[0] - 2, hw[1] - 2]; // the output grows: keep the input at 1..5
        prop_assume!((0..2).all(|a| (hw[a] - 1) * s + d * (k[a] - 1) + out_pad + 1 > 2 * p));
        let mut inputs = vec![leaf(&[n, groups * cg, hw[0], hw[1]], seed), leaf(&[groups * cg, ocg, k[0], k[1]], seed + 1)];
        if with_bias {
            inputs.push(leaf(&[groups * ocg], seed + 2));
        }
        let params = ConvTranspose2dParams::default()
            .with_stride(s)
            .with_padding(p)
            .with_output_padding(out_pad)
            .with_dilation(d)
            .with_groups(groups);
        let r = check_gradients(|xs| xs[0].conv_transpose2d(&xs[1], xs.get(2), params), &inputs, 1e-6, 1e-7, 1e-5);
        prop_assert!(r.is_ok(), "{params:?}: {r:?}");
    }
}

#[test]
fn gradients_through_non_contiguous_inputs() {
    // A transposed (non-contiguous) input and weight exercise the gathering path.
    let x = leaf(&[1, 2, 5, 4], 3);
    let w = leaf(&[3, 2, 2, 3], 4);
    let p = Conv2dParams::default().with_padding(1);
    check_gradients(
        |xs| {
            xs[0]
                .transpose(2, 3)?
                .conv2d(&xs[1].transpose(2, 3)?, None, p)
        },
        &[x, w],
        1e-6,
        1e-7,
        1e-5,
    )
    .unwrap();
}

/// Forward and both gradients of a conv and a transposed conv, in f32, on a pool of `threads`;
/// then the weight gradient of a 3-channel conv with a long reduction (64×64 images), which the
/// kernel splits into partial products.
fn run_with_threads(threads: usize) -> Vec<Vec<f32>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut rng = Rng::new(11);
        let mut f32_leaf = |shape: &[usize]| {
            Tensor::randn(shape, 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)
                .unwrap()
                .with_requires_grad(true)
        };
        let (x, w, b, wt) = (
            f32_leaf(&[4, 8, 16, 16]),
            f32_leaf(&[16, 8, 4, 4]),
            f32_leaf(&[16]),
            f32_leaf(&[16, 8, 4, 4]),
        );
        let (img, w_img) = (f32_leaf(&[4, 3, 64, 64]), f32_leaf(&[8, 3, 4, 4]));
        let s2p1 = Conv2dParams::default().with_stride(2).with_padding(1);
        let y = x.conv2d(&w, Some(&b), s2p1).unwrap();
        let z = y
            .conv_transpose2d(
                &wt,
                None,
                ConvTranspose2dParams::default()
                    .with_stride(2)
                    .with_padding(1),
            )
            .unwrap();
        let d = img.conv2d(&w_img, None, s2p1).unwrap();
        let loss = z
            .square()
            .unwrap()
            .sum_all()
            .unwrap()
            .add(&d.square().unwrap().sum_all().unwrap())
            .unwrap();
        let grads = loss.backward().unwrap();
        let mut out = vec![z.to_vec::<f32>().unwrap(), d.to_vec::<f32>().unwrap()];
        for t in [&x, &w, &b, &wt, &img, &w_img] {
            out.push(grads.get(t).unwrap().to_vec::<f32>().unwrap());
        }
        out
    })
}

#[test]
fn results_are_bit_identical_for_one_and_two_threads() {
    let one = run_with_threads(1);
    let two = run_with_threads(2);
    for (a, b) in one.iter().zip(&two) {
        assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
}

fn err_text(r: saddle_engine::Result<Tensor>) -> String {
    match r {
        Ok(t) => panic!("expected an error, got {t:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn conv2d_errors_name_the_op_and_shapes() {
    let d = Conv2dParams::default();
    let e = err_text(v(&[4, 5, 5], 1).conv2d(&v(&[2, 4, 3, 3], 1), None, d));
    assert!(
        e.contains("conv2d") && e.contains("[4, 5, 5]") && e.contains("[2, 4, 3, 3]"),
        "{e}"
    );
    let e = err_text(v(&[1, 3, 5, 5], 1).conv2d(&v(&[2, 4, 3, 3], 1), None, d));
    assert!(
        e.contains("conv2d") && e.contains("[1, 3, 5, 5]") && e.contains("[2, 4, 3, 3]"),
        "{e}"
    );
    let e = err_text(v(&[1, 4, 5, 5], 1).conv2d(&v(&[6, 2, 3, 3], 1), None, d.with_groups(3)));
    assert!(e.contains("conv2d") && e.contains("groups"), "{e}");
    let e = err_text(v(&[1, 1, 2, 2], 1).conv2d(&v(&[1, 1, 3, 3], 1), None, d));
    assert!(
        e.contains("conv2d") && e.contains("[1, 1, 2, 2]") && e.contains("not positive"),
        "{e}"
    );
    let e = err_text(v(&[1, 2, 5, 5], 1).conv2d(&v(&[3, 2, 3, 3], 1), Some(&v(&[4], 1)), d));
    assert!(
        e.contains("conv2d") && e.contains("[4]") && e.contains("bias"),
        "{e}"
    );
    let e = err_text(v(&[1, 2, 5, 5], 1).conv2d(&v(&[3, 2, 3, 3], 1), None, d.with_stride(0)));
    assert!(e.contains("conv2d") && e.contains("stride"), "{e}");
    let e = err_text(v(&[1, 2, 5, 5], 1).conv2d(&v(&[3, 2, 3, 3], 1), None, d.with_groups(0)));
    assert!(e.contains("conv2d") && e.contains("groups"), "{e}");
    let x32 = v(&[1, 2, 5, 5], 1).to_dtype(DType::F32).unwrap();
    let e = err_text(x32.conv2d(&v(&[3, 2, 3, 3], 1), None, d));
    assert!(e.contains("conv2d") && e.contains("dtype"), "{e}");
}

#[test]
fn conv_transpose2d_errors_name_the_op_and_shapes() {
    let d = ConvTranspose2dParams::default();
    let e = err_text(v(&[1, 3, 4, 4], 1).conv_transpose2d(&v(&[2, 2, 3, 3], 1), None, d));
    assert!(
        e.contains("conv_transpose2d") && e.contains("[1, 3, 4, 4]") && e.contains("[2, 2, 3, 3]"),
        "{e}"
    );
    let e = err_text(v(&[1, 3, 4], 1).conv_transpose2d(&v(&[3, 2, 3, 3], 1), None, d));
    assert!(
        e.contains("conv_transpose2d") && e.contains("[1, 3, 4]"),
        "{e}"
    );
    let e = err_text(v(&[1, 3, 4, 4], 1).conv_transpose2d(
        &v(&[3, 2, 3, 3], 1),
        None,
        d.with_groups(2),
    ));
    assert!(
        e.contains("conv_transpose2d") && e.contains("groups"),
        "{e}"
    );
    let e = err_text(v(&[1, 2, 4, 4], 1).conv_transpose2d(
        &v(&[2, 2, 3, 3], 1),
        None,
        d.with_stride(2).with_output_padding(2),
    ));
    assert!(
        e.contains("conv_transpose2d") && e.contains("output_padding"),
        "{e}"
    );
    let e = err_text(v(&[1, 2, 1, 1], 1).conv_transpose2d(
        &v(&[2, 2, 1, 1], 1),
        None,
        d.with_padding(1),
    ));
    assert!(
        e.contains("conv_transpose2d") && e.contains("not positive"),
        "{e}"
    );
    let e =
        err_text(v(&[1, 2, 4, 4], 1).conv_transpose2d(&v(&[2, 3, 3, 3], 1), Some(&v(&[2], 1)), d));
    assert!(
        e.contains("conv_transpose2d") && e.contains("[2]") && e.contains("bias"),
        "{e}"
    );
}

/// `sum_{ci, kh, kw} x[n, ci, oh·2 - 1 + kh, ow·2 - 1 + kw] · w[co, ci, kh, kw]` (k4 s2 p1),
/// straight from the definition in f64, for one output element.
fn naive_conv_k4s2p1(
    x: &[f32],
    xs: [usize; 4],
    w: &[f32],
    co: usize,
    n: usize,
    oh: usize,
    ow: usize,
) -> f64 {
    let [_, c, h, wd] = xs;
    let mut acc = 0.0;
    for ci in 0..c {
        for kh in 0..4 {
            for kw in 0..4 {
                let (ih, iw) = ((oh * 2 + kh) as isize - 1, (ow * 2 + kw) as isize - 1);
                if ih < 0 || iw < 0 || ih >= h as isize || iw >= wd as isize {
                    continue;
                }
                let xi = ((n * c + ci) * h + ih as usize) * wd + iw as usize;
                acc += x[xi] as f64 * w[((co * c + ci) * 4 + kh) * 4 + kw] as f64;
            }
        }
    }
    acc
}

/// The DCGAN 64x64 RGB layers at their real sizes (batch 64: the parallel, image-splitting and
/// chunked lowering paths the small gradient checks never reach), checked element by element
/// against the definition: conv2d 3 -> 16 from 64x64 and its weight and input gradients, and
/// conv_transpose2d 16 -> 3 to 64x64 (the adjoint: its output is conv2d's input gradient).
#[test]
fn dcgan64_rgb_layers_match_the_definition_at_full_size() {
    let mut rng = Rng::new(7);
    let (n, c, oc, hw) = (64usize, 3usize, 16usize, 64usize);
    let x = Tensor::randn(&[n, c, hw, hw], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
    let w = Tensor::randn(&[oc, c, 4, 4], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)
        .unwrap()
        .with_requires_grad(true);
    let x = x.with_requires_grad(true);
    let p = Conv2dParams::default().with_stride(2).with_padding(1);
    let y = x.conv2d(&w, None, p).unwrap();
    assert_eq!(y.shape(), &[n, oc, hw / 2, hw / 2]);
    let gy = Tensor::randn(y.shape(), 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
    let grads = y.mul(&gy).unwrap().sum_all().unwrap().backward().unwrap();
    let (xv, wv, yv, gyv) = (
        x.to_vec::<f32>().unwrap(),
        w.to_vec::<f32>().unwrap(),
        y.to_vec::<f32>().unwrap(),
        gy.to_vec::<f32>().unwrap(),
    );
    let close = |got: f32, want: f64, what: &str| {
        assert!(
            (got as f64 - want).abs() <= 1e-3 * (1.0 + want.abs()),
            "{what}: {got} vs {want}"
        );
    };
    let oh = hw / 2;
    // Forward: a spread of output elements, every image, channel, corner and edge included.
    for i in (0..yv.len()).step_by(997).chain([0, yv.len() - 1]) {
        let (ni, co, r, col) = (i / (oc * oh * oh), i / (oh * oh) % oc, i / oh % oh, i % oh);
        let want = naive_conv_k4s2p1(&xv, [n, c, hw, hw], &wv, co, ni, r, col);
        close(yv[i], want, &format!("y[{ni}, {co}, {r}, {col}]"));
    }
    // Weight gradient: every element, dW[co, ci, kh, kw] = sum over outputs of gy · x.
    let gw = grads.get(&w).unwrap().to_vec::<f32>().unwrap();
    for (j, &got) in gw.iter().enumerate() {
        let (co, ci, kh, kw) = (j / (c * 16), j / 16 % c, j / 4 % 4, j % 4);
        let mut want = 0.0;
        for ni in 0..n {
            for r in 0..oh {
                for col in 0..oh {
                    let (ih, iw) = ((r * 2 + kh) as isize - 1, (col * 2 + kw) as isize - 1);
                    if ih < 0 || iw < 0 || ih >= hw as isize || iw >= hw as isize {
                        continue;
                    }
                    let xi = ((ni * c + ci) * hw + ih as usize) * hw + iw as usize;
                    want += gyv[((ni * oc + co) * oh + r) * oh + col] as f64 * xv[xi] as f64;
                }
            }
        }
        close(got, want, &format!("dW[{co}, {ci}, {kh}, {kw}]"));
    }
    // Input gradient = conv_transpose2d(gy, w): checked against the definition, and the
    // transposed convolution (G's last layer) must give the same values.
    let gx = grads.get(&x).unwrap().to_vec::<f32>().unwrap();
    let up = ConvTranspose2dParams::default()
        .with_stride(2)
        .with_padding(1);
    let convt = gy.conv_transpose2d(&w.detach(), None, up).unwrap();
    assert_eq!(convt.shape(), x.shape());
    let convt = convt.to_vec::<f32>().unwrap();
    for i in (0..gx.len()).step_by(1009).chain([0, gx.len() - 1]) {
        let (ni, ci, ih, iw) = (i / (c * hw * hw), i / (hw * hw) % c, i / hw % hw, i % hw);
        let mut want = 0.0;
        for co in 0..oc {
            for kh in 0..4 {
                for kw in 0..4 {
                    let (r, col) = (ih + 1, iw + 1);
                    if r < kh || col < kw || (r - kh) % 2 != 0 || (col - kw) % 2 != 0 {
                        continue;
                    }
                    let (r, col) = ((r - kh) / 2, (col - kw) / 2);
                    if r >= oh || col >= oh {
                        continue;
                    }
                    want += gyv[((ni * oc + co) * oh + r) * oh + col] as f64
                        * wv[((co * c + ci) * 4 + kh) * 4 + kw] as f64;
                }
            }
        }
        close(gx[i], want, &format!("dx[{ni}, {ci}, {ih}, {iw}]"));
        close(
            convt[i],
            want,
            &format!("conv_transpose2d[{ni}, {ci}, {ih}, {iw}]"),
        );
    }
}
