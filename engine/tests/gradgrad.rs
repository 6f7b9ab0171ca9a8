//! Gradients of gradients (`Tensor::grad_with_graph`): second derivatives of every op that
//! supports them against finite differences of the first (f64, random shapes via proptest),
//! the WGAN-GP and R1 penalties of a small conv discriminator against PyTorch, and the errors
//! and edge cases of the entry point.
//!
//! The PyTorch literals in `data/penalties_pytorch.rs` come from this script (PyTorch 2.15):
//!
//! ```text
//! import math, torch
//! import torch.nn.functional as F
//! torch.set_default_dtype(torch.float64)
//! def fill(shape, c, scale):
//!     n = math.prod(shape)
//!     return torch.tensor([math.sin(0.37 * i + c) * scale for i in range(n)]).reshape(shape)
//! p = {
//!     "w1": fill([3, 1, 3, 3], 0.1, 0.5), "b1": fill([3], 0.2, 0.1),
//!     "w2": fill([4, 3, 3, 3], 0.3, 0.3), "b2": fill([4], 0.4, 0.1),
//!     "w3": fill([1, 64], 0.5, 0.2), "b3": fill([1], 0.6, 0.1),
//! }
//! for t in p.values(): t.requires_grad_(True)
//! def D(x):
//!     h = F.leaky_relu(F.conv2d(x, p["w1"], p["b1"], stride=2, padding=1), 0.2)
//!     h = F.softplus(F.conv2d(h, p["w2"], p["b2"], stride=1, padding=1))
//!     return F.linear(h.flatten(1), p["w3"], p["b3"])
//! real = torch.tensor([math.cos(0.11 * i) for i in range(128)]).reshape(2, 1, 8, 8)
//! fake = torch.tensor([math.sin(0.23 * i + 1.0) for i in range(128)]).reshape(2, 1, 8, 8)
//! eps = torch.tensor([0.3, 0.7]).reshape(2, 1, 1, 1)
//! def show(name, t):
//!     v = [] if t is None else t.detach().flatten().tolist()
//!     print(f"const {name.upper().replace(' ', '_')}: [f64; {len(v)}] = {v};")
//! # WGAN-GP
//! x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
//! g, = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
//! gp = ((g.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
//! gp.backward()
//! show("gp", gp)
//! for k, t in p.items(): show("gp " + k, t.grad); t.grad = None
//! # R1
//! x = real.clone().requires_grad_(True)
//! g, = torch.autograd.grad(D(x).sum(), x, create_graph=True)
//! r1 = 0.5 * g.pow(2).flatten(1).sum(1).mean()
//! r1.backward()
//! show("r1", r1)
//! for k, t in p.items(): show("r1 " + k, t.grad)
//! ```

// `&[x.clone()]` keeps every check on one readable line.
#![allow(clippy::cloned_ref_to_slice_refs)]

use proptest::prelude::*;
use saddle_engine::gradcheck::{assert_close, check_second_derivatives};
use saddle_engine::{Conv2dParams, ConvTranspose2dParams, Device, Result, Rng, Tensor};

mod common;
use common::*;

include!("data/penalties_pytorch.rs");

const EPS: f64 = 1e-5;
const ATOL: f64 = 1e-6;
const RTOL: f64 = 1e-4;

fn check(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
) -> std::result::Result<(), TestCaseError> {
    check_second_derivatives(f, inputs, EPS, ATOL, RTOL).map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn unary_ops(shape in shape_strategy(), seed in 0u64..1000) {
        let x = off_kink_leaf(&shape, seed);
        let p = positive_leaf(&shape, seed + 1);
        check(|x| x[0].neg()?.mul(&x[0]), &[x.clone()])?;
        check(|x| x[0].exp(), &[x.clone()])?;
        check(|x| x[0].log(), &[p.clone()])?;
        check(|x| x[0].sqrt(), &[p.clone()])?;
        check(|x| x[0].square(), &[x.clone()])?;
        check(|x| x[0].recip(), &[p.clone()])?;
        check(|x| x[0].powf(2.5), &[p.clone()])?;
        check(|x| x[0].sigmoid(), &[x.clone()])?;
        check(|x| x[0].tanh(), &[x.clone()])?;
        check(|x| x[0].softplus(), &[x.clone()])?;
        check(|x| x[0].elu(0.7), &[x.clone()])?;
        // Piecewise linear: second derivatives through a smooth op after them.
        check(|x| x[0].relu()?.square(), &[x.clone()])?;
        check(|x| x[0].leaky_relu(0.2)?.square(), &[x.clone()])?;
        check(|x| x[0].abs()?.mul(&x[0]), &[x.clone()])?;
        check(|x| x[0].clamp(-1.0, 1.0)?.square(), &[x.clone()])?;
        check(|x| x[0].add_scalar(0.5)?.mul_scalar(3.0)?.sub_scalar(1.0)?.rsub_scalar(2.0)?.div_scalar(4.0)?.square(), &[x.clone()])?;
    }

    #[test]
    fn binary_ops_with_broadcasting((sa, sb) in broadcast_pair(), swap in any::<bool>(), seed in 0u64..1000) {
        let (sa, sb) = if swap { (sb, sa) } else { (sa, sb) };
        let a = off_kink_leaf(&sa, seed);
        let b = positive_leaf(&sb, seed + 1);
        let pa = positive_leaf(&sa, seed + 2);
        check(|x| x[0].add(&x[1])?.square(), &[a.clone(), b.clone()])?;
        check(|x| x[0].sub(&x[1])?.square(), &[a.clone(), b.clone()])?;
        check(|x| x[0].mul(&x[1]), &[a.clone(), b.clone()])?;
        check(|x| x[0].div(&x[1]), &[a.clone(), b.clone()])?;
        check(|x| x[0].pow(&x[1]), &[pa.clone(), b.clone()])?;
        check(|x| x[0].maximum(&x[1])?.square(), &[a.clone(), b.clone()])?;
        check(|x| x[0].minimum(&x[1])?.square(), &[a.clone(), b.clone()])?;
    }

    #[test]
    fn views_joins_and_reductions(shape in prop::collection::vec(2usize..4, 3), seed in 0u64..1000) {
        let x = leaf(&shape, seed);
        let y = leaf(&shape, seed + 1);
        let n: usize = shape.iter().product();
        check(|x| x[0].reshape(&[n])?.square(), &[x.clone()])?;
        check(|x| x[0].permute(&[2, 0, 1])?.contiguous()?.square(), &[x.clone()])?;
        check(|x| x[0].narrow(1, 1, shape[1] - 1)?.square(), &[x.clone()])?;
        check(|x| x[0].narrow(2, 0, 1)?.broadcast_as(&[2, shape[0], shape[1], 3])?.tanh(), &[x.clone()])?;
        check(|x| Tensor::concat(&[&x[0], &x[1]], 1)?.square(), &[x.clone(), y.clone()])?;
        check(|x| Tensor::stack(&[&x[0], &x[1]], 0)?.tanh(), &[x.clone(), y.clone()])?;
        check(|x| x[0].sum(&[0, 2], true)?.square(), &[x.clone()])?;
        check(|x| x[0].mean(&[1], false)?.square(), &[x.clone()])?;
        check(|x| x[0].sum_all()?.mul(&x[0].mean_all()?), &[x.clone()])?;
    }

    #[test]
    fn matmul_and_linear(m in 1usize..4, k in 1usize..4, n in 1usize..4, batch in 0usize..3, with_bias in any::<bool>(), seed in 0u64..1000) {
        let a_shape: Vec<usize> = if batch > 0 { vec![batch, m, k] } else { vec![m, k] };
        let a = leaf(&a_shape, seed);
        let b = leaf(&[k, n], seed + 1);
        check(|x| x[0].matmul(&x[1]), &[a.clone(), b.clone()])?;
        check(|x| x[0].matmul(&x[1])?.tanh(), &[a.clone(), b.clone()])?;
        let w = leaf(&[n, k], seed + 2);
        let mut inputs = vec![a.clone(), w];
        if with_bias {
            inputs.push(leaf(&[n], seed + 3));
        }
        check(|x| x[0].linear(&x[1], x.get(2))?.tanh(), &inputs)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn conv2d_second_derivatives((n, groups, cg, ocg, hw, k, s, p, d, with_bias) in conv_geometry(), seed in 0u64..1000) {
        prop_assume!((0..2).all(|a| hw[a] + 2 * p > d * (k[a] - 1)));
        let mut inputs = vec![leaf(&[n, groups * cg, hw[0], hw[1]], seed), leaf(&[groups * ocg, cg, k[0], k[1]], seed + 1)];
        if with_bias {
            inputs.push(leaf(&[groups * ocg], seed + 2));
        }
        let params = Conv2dParams::default().with_stride(s).with_padding(p).with_dilation(d).with_groups(groups);
        // Bilinear in (x, w); the tanh after it makes the output's gradient depend on both.
        check(|xs| xs[0].conv2d(&xs[1], xs.get(2), params)?.tanh(), &inputs)?;
    }

    #[test]
    fn conv_transpose2d_second_derivatives(
        (n, groups, cg, ocg, hw, k, s, p, d, with_bias) in conv_geometry(),
        op in 0..=1usize,
        seed in 0u64..1000,
    ) {
        let out_pad = op.min(s.max(d) - 1);
        let hw = [hw[0] - 2, hw[1] - 2];
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
        check(|xs| xs[0].conv_transpose2d(&xs[1], xs.get(2), params)?.tanh(), &inputs)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn normalisation_softmax_and_extrema(rows in 1usize..4, cols in 2usize..5, seed in 0u64..1000) {
        let x = leaf(&[rows, cols], seed);
        check(|x| x[0].l2_normalize(1, 1e-12), &[x.clone()])?;
        check(|x| x[0].l2_normalize(0, 1e-12), &[x.clone()])?;
        check(|x| x[0].softmax(1), &[x.clone()])?;
        check(|x| x[0].log_softmax(-1), &[x.clone()])?;
        check(|x| x[0].var(&[1], true, 1)?.square(), &[x.clone()])?;
        // Ties are measure-zero for normal draws; the square makes the second derivative live.
        check(|x| x[0].max(&[1], false)?.square(), &[x.clone()])?;
        check(|x| x[0].min(&[0], true)?.square(), &[x.clone()])?;
        check(|x| x[0].reshape(&[rows * cols, 1])?.maxout(1, 1)?.square(), &[x.clone()])?;
    }

    #[test]
    fn maxout_and_pooling(n in 1usize..3, c in 1usize..3, hw in 2usize..6, k in 1usize..3, seed in 0u64..1000) {
        let x = leaf(&[n, c * 2, hw, hw], seed);
        check(|x| x[0].maxout(2, 1)?.square(), &[x.clone()])?;
        let k = k.min(hw);
        check(|x| x[0].avg_pool2d(k, 1, 0)?.tanh(), &[x.clone()])?;
        check(|x| x[0].avg_pool2d(2.min(hw), 2.min(hw), 0)?.square(), &[x.clone()])?;
        check(|x| x[0].sum_pool2d(k, k)?.square(), &[x.clone()])?;
        check(|x| x[0].global_avg_pool2d()?.square(), &[x.clone()])?;
        check(|x| x[0].global_sum_pool2d()?.tanh(), &[x.clone()])?;
    }

    #[test]
    fn losses(rows in 1usize..4, cols in 1usize..4, seed in 0u64..1000) {
        let x = off_kink_leaf(&[rows, cols], seed);
        let t = leaf(&[rows, cols], seed + 1);
        let p = positive_leaf(&[rows, cols], seed + 2);
        check(|x| x[0].binary_cross_entropy_with_logits(&x[1]), &[x.clone(), p.clone()])?;
        check(|x| x[0].mse_loss(&x[1]), &[x.clone(), t.clone()])?;
        check(|x| x[0].square()?.l1_loss(&x[1]), &[x.clone(), t.clone()])?;
        let labels: Vec<usize> = (0..rows).map(|r| (r + seed as usize) % cols).collect();
        check(|x| x[0].cross_entropy(&labels), &[x.clone()])?;
        check(|x| x[0].hinge_loss_real()?.add(&x[0].square()?.hinge_loss_fake()?), &[x.clone()])?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn batch_norm_train_and_eval(n in 2usize..4, c in 1usize..3, hw in 1usize..3, affine in any::<bool>(), seed in 0u64..1000) {
        let x = leaf(&[n, c, hw, hw], seed);
        let mut inputs = vec![x.clone()];
        if affine {
            inputs.push(positive_leaf(&[c], seed + 1));
            inputs.push(leaf(&[c], seed + 2));
        }
        check(|x| x[0].batch_norm(x.get(1), x.get(2), 1e-3)?.output.tanh(), &inputs)?;
        check(|x| x[0].flatten(2, 3)?.batch_norm(x.get(1), x.get(2), 1e-3)?.var.square(), &inputs)?;
        let mean = leaf(&[c], seed + 3).detach();
        let var = positive_leaf(&[c], seed + 4).detach();
        check(|x| x[0].batch_norm_eval(&mean, &var, x.get(1), x.get(2), 1e-3)?.tanh(), &inputs)?;
    }

    #[test]
    fn image_ops_dropout_and_attention(n in 1usize..3, c in 1usize..3, hw in 2usize..5, seed in 0u64..1000) {
        let x = leaf(&[n, c, hw, hw], seed);
        check(|x| x[0].upsample_nearest2d(2)?.tanh(), &[x.clone()])?;
        check(|x| x[0].rot90(1)?.square(), &[x.clone()])?;
        check(|x| x[0].max_pool2d(2, 1, 0)?.square(), &[x.clone()])?;
        check(|x| x[0].max_pool2d(3.min(hw), 2, 1.min(hw / 2))?.tanh(), &[x.clone()])?;
        check(|x| x[0].global_max_pool2d()?.square(), &[x.clone()])?;
        // The same mask at every evaluation: a fresh generator with one seed each time.
        check(|x| x[0].dropout(0.4, &mut Rng::new(seed), true)?.square(), &[x.clone()])?;
        let q = leaf(&[n, hw, c + 1], seed + 1);
        let k = leaf(&[n, hw + 1, c + 1], seed + 2);
        let v = leaf(&[n, hw + 1, c], seed + 3);
        check(|x| x[0].attention(&x[1], &x[2], 0.7), &[q, k, v])?;
    }

    #[test]
    fn index_ops(rows in 1usize..4, cols in 1usize..4, picks in prop::collection::vec(0usize..16, 1..6), seed in 0u64..1000) {
        let x = leaf(&[rows, cols], seed);
        // Repeated indices: the backward's index-add accumulates them, and its own backward
        // selects again.
        let rows_picked: Vec<usize> = picks.iter().map(|&i| i % rows).collect();
        check(|x| x[0].index_select(0, &rows_picked)?.square(), &[x.clone()])?;
        let cols_picked: Vec<usize> = picks.iter().map(|&i| i % cols).collect();
        check(|x| x[0].index_select(1, &cols_picked)?.tanh(), &[x.clone()])?;
        let index: Vec<usize> = (0..rows).map(|r| picks[r % picks.len()] % cols).collect();
        check(|x| x[0].gather(1, &index, &[rows, 1])?.square(), &[x.clone()])?;
        // Alternating, with the first element always set: masked_select keeps at least one.
        let cond_values: Vec<f64> =
            (0..rows * cols).map(|i| if i == 0 { 1.0 } else { ((i + picks[0]) % 2) as f64 }).collect();
        let cond = Tensor::from_vec(cond_values, &[rows, cols], Device::Cpu)?;
        let b = leaf(&[1, cols], seed + 1);
        check(|x| Tensor::where_cond(&cond, &x[0], &x[1])?.square(), &[x.clone(), b.clone()])?;
        check(|x| x[0].masked_select(&cond)?.tanh(), &[x.clone()])?;
    }
}

/// The discriminator of the PyTorch script, with its parameters in the script's order.
struct SmallCritic {
    params: Vec<Tensor>,
}

impl SmallCritic {
    fn new() -> Self {
        let fill = |shape: &[usize], c: f64, scale: f64| {
            let n: usize = shape.iter().product();
            let v = (0..n)
                .map(|i| (0.37 * i as f64 + c).sin() * scale)
                .collect();
            Tensor::from_vec(v, shape, Device::Cpu)
                .unwrap()
                .with_requires_grad(true)
        };
        SmallCritic {
            params: vec![
                fill(&[3, 1, 3, 3], 0.1, 0.5),
                fill(&[3], 0.2, 0.1),
                fill(&[4, 3, 3, 3], 0.3, 0.3),
                fill(&[4], 0.4, 0.1),
                fill(&[1, 64], 0.5, 0.2),
                fill(&[1], 0.6, 0.1),
            ],
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let p = &self.params;
        let down = Conv2dParams::default().with_stride(2).with_padding(1);
        let same = Conv2dParams::default().with_padding(1);
        let h = x.conv2d(&p[0], Some(&p[1]), down)?.leaky_relu(0.2)?;
        let h = h.conv2d(&p[2], Some(&p[3]), same)?.softplus()?;
        h.flatten(1, 3)?.linear(&p[4], Some(&p[5]))
    }

    /// Asserts each parameter's gradient against PyTorch's (an empty literal: no gradient).
    fn assert_grads(&self, grads: &saddle_engine::Grads, want: [&[f64]; 6]) {
        for (i, (p, want)) in self.params.iter().zip(want).enumerate() {
            match grads.get(p) {
                Some(g) if !want.is_empty() => assert_close(g, want, 1e-10),
                Some(g) => assert_close(g, &vec![0.0; g.numel()], 1e-12),
                None => assert!(want.is_empty(), "parameter {i} has no gradient"),
            }
        }
    }
}

fn images(f: impl Fn(f64) -> f64) -> Tensor {
    let v = (0..128).map(|i| f(i as f64)).collect();
    Tensor::from_vec(v, &[2, 1, 8, 8], Device::Cpu).unwrap()
}

#[test]
fn wgan_gp_penalty_and_its_gradients_match_pytorch() -> Result<()> {
    let d = SmallCritic::new();
    let real = images(|i| (0.11 * i).cos());
    let fake = images(|i| (0.23 * i + 1.0).sin());
    let eps = Tensor::from_vec(vec![0.3f64, 0.7], &[2, 1, 1, 1], Device::Cpu)?;
    let x_hat = eps
        .mul(&real)?
        .add(&eps.rsub_scalar(1.0)?.mul(&fake)?)?
        .with_requires_grad(true);
    let g = d
        .forward(&x_hat)?
        .sum_all()?
        .grad_with_graph(&[&x_hat])?
        .remove(0);
    let norms = g.flatten(1, 3)?.square()?.sum(&[1], false)?.sqrt()?;
    let gp = norms.sub_scalar(1.0)?.square()?.mean_all()?;
    assert_close(&gp, &GP, 1e-12);
    let grads = gp.backward()?;
    d.assert_grads(&grads, [&GP_W1, &GP_B1, &GP_W2, &GP_B2, &GP_W3, &GP_B3]);
    Ok(())
}

#[test]
fn r1_penalty_and_its_gradients_match_pytorch() -> Result<()> {
    let d = SmallCritic::new();
    let x = images(|i| (0.11 * i).cos()).with_requires_grad(true);
    let g = d.forward(&x)?.sum_all()?.grad_with_graph(&[&x])?.remove(0);
    let r1 = g
        .square()?
        .flatten(1, 3)?
        .sum(&[1], false)?
        .mean_all()?
        .mul_scalar(0.5)?;
    assert_close(&r1, &R1, 1e-12);
    let grads = r1.backward()?;
    d.assert_grads(&grads, [&R1_W1, &R1_B1, &R1_W2, &R1_B2, &R1_W3, &R1_B3]);
    Ok(())
}

#[test]
fn the_penalty_and_the_loss_backpropagate_together() -> Result<()> {
    // WGAN-GP's critic loss: D(fake) - D(real) + λ·GP in one backward; the graph of D(x̂) that
    // grad_with_graph walked is still there for it.
    let d = SmallCritic::new();
    let real = images(|i| (0.11 * i).cos());
    let x = real.clone().with_requires_grad(true);
    let g = d.forward(&x)?.sum_all()?.grad_with_graph(&[&x])?.remove(0);
    let penalty = g.square()?.sum_all()?;
    let loss = d
        .forward(&real)?
        .mean_all()?
        .neg()?
        .add(&penalty.mul_scalar(10.0)?)?;
    let both = loss.backward()?;
    let only_penalty = penalty.backward();
    // The penalty's graph was freed by the combined backward.
    assert!(only_penalty.is_err());
    let d2 = SmallCritic::new();
    let x2 = real.clone().with_requires_grad(true);
    let g2 = d2
        .forward(&x2)?
        .sum_all()?
        .grad_with_graph(&[&x2])?
        .remove(0);
    let mut sum = g2.square()?.sum_all()?.mul_scalar(10.0)?.backward()?;
    sum.merge(d2.forward(&real)?.mean_all()?.neg()?.backward()?)?;
    for (p, p2) in d.params.iter().zip(&d2.params) {
        let (a, b) = (both.get(p), sum.get(p2));
        assert_eq!(a.is_some(), b.is_some());
        if let (Some(a), Some(b)) = (a, b) {
            assert_close(a, &b.to_vec_f64()?, 1e-12);
        }
    }
    Ok(())
}

#[test]
fn gradients_with_respect_to_unused_and_computed_tensors() -> Result<()> {
    let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2], Device::Cpu)?.with_requires_grad(true);
    let unused = Tensor::from_vec(vec![5.0f64; 3], &[3], Device::Cpu)?.with_requires_grad(true);
    let y = x.square()?; // computed
    let f = y.mul(&y)?.sum_all()?; // x⁴
    let g = f.grad_with_graph(&[&y, &x, &unused])?;
    assert_close(&g[0], &[2.0, 8.0], 1e-12); // 2y
    assert_close(&g[1], &[4.0, 32.0], 1e-12); // 4x³
    assert_close(&g[2], &[0.0; 3], 0.0);
    let second = g[1].sum_all()?.backward()?;
    assert_close(second.get(&x).unwrap(), &[12.0, 48.0], 1e-12); // 12x²
                                                                 // A constant output: zero gradients, no history.
    let c = Tensor::scalar(3.0f64);
    let g = c.grad_with_graph(&[&x])?;
    assert_close(&g[0], &[0.0, 0.0], 0.0);
    assert!(!g[0].requires_grad());
    Ok(())
}

#[test]
fn works_inside_no_grad() -> Result<()> {
    // Recording is switched on for the walk, whatever the caller's mode.
    let x = Tensor::from_vec(vec![3.0f64], &[1], Device::Cpu)?.with_requires_grad(true);
    let f = x.mul(&x)?.mul(&x)?.sum_all()?;
    let g = saddle_engine::no_grad(|| f.grad_with_graph(&[&x]))?.remove(0);
    assert_close(&g, &[27.0], 1e-12);
    assert!(g.requires_grad());
    Ok(())
}

#[test]
fn ops_off_the_path_and_bad_outputs() -> Result<()> {
    let x = Tensor::from_vec(vec![3.0f64, 4.0, 1.0, 2.0], &[1, 1, 2, 2], Device::Cpu)?
        .with_requires_grad(true);
    // An op off the path to `wrt` does not matter.
    let y = Tensor::from_vec(vec![1.0f64], &[1, 1, 1, 1], Device::Cpu)?.with_requires_grad(true);
    let f = x
        .max_pool2d(2, 2, 0)?
        .add(&y.square()?.mul_scalar(2.0)?)?
        .sum_all()?;
    let g = f.grad_with_graph(&[&y])?.remove(0);
    assert_close(&g, &[4.0], 1e-12);
    // Errors, not panics, for a bad output.
    let e = x.grad_with_graph(&[&x]).unwrap_err().to_string();
    assert!(e.contains("one-element"), "{e}");
    Ok(())
}

#[test]
fn after_backward_freed_the_graph_the_error_says_so() -> Result<()> {
    let x = Tensor::from_vec(vec![3.0f64], &[1], Device::Cpu)?.with_requires_grad(true);
    let f = x.exp()?.sum_all()?;
    f.backward()?;
    let e = f.grad_with_graph(&[&x]).unwrap_err().to_string();
    assert!(e.contains("freed"), "{e}");
    Ok(())
}
