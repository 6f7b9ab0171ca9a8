//! Shared by the trainers' one-step tests: a trainer steps once, a twin built from the same seed
//! rebuilds both players' losses by hand from the same batch, noise and dropout masks, and these
//! helpers check that the stepped players moved by exactly the hand gradients.

#![allow(dead_code)] // each trainer's test uses the helpers it needs
use saddle_nn::engine::{Grads, Tensor};
use saddle_nn::{Module, ModuleExt};

/// Copies every parameter of `from` into the same-named parameter of `to` (same architecture),
/// e.g. D after the stepped trainer's D update into the twin that builds G's loss by hand.
pub fn copy_parameters(from: &dyn Module, to: &dyn Module) {
    for ((name, src), (other, dst)) in from.named_parameters().iter().zip(to.named_parameters()) {
        assert_eq!(name, &other);
        dst.assign(src).unwrap();
    }
}

/// `grads` of each parameter of `net` (the network the hand loss was built on), with its name
/// and values; every parameter must have one.
fn hand_gradients(
    what: &str,
    net: &dyn Module,
    grads: &Grads,
) -> Vec<(String, Vec<f32>, Vec<f32>)> {
    net.named_parameters()
        .into_iter()
        .map(|(name, p)| {
            let g = grads
                .get(&p)
                .unwrap_or_else(|| panic!("{what}: no hand gradient for {name}"));
            (name, p.to_vec::<f32>().unwrap(), g.to_vec::<f32>().unwrap())
        })
        .collect()
}

/// Whether `got` (a gradient, or a weight's move) equals `want` within f32 rounding: relative to
/// `want`, to `scale` (the largest of its tensor) and to the weight `w` moved (0 for a gradient).
fn close(got: f32, want: f32, scale: f32, w: f32) -> bool {
    (got - want).abs() <= 1e-5 * want.abs() + 1e-6 * scale + 4e-7 * w.abs()
}

/// Plain SGD (no momentum, no decay) from `before` (the twin, never stepped) to `after` (the
/// stepped network): every weight moved by `-lr · g` for the hand gradient `g`, to within the
/// rounding of the weights themselves to f32.
pub fn assert_sgd_step(
    what: &str,
    before: &dyn Module,
    after: &dyn Module,
    grads: &Grads,
    lr: f64,
) {
    let after = after.named_parameters();
    for ((name, p0, g), (_, p1)) in hand_gradients(what, before, grads).iter().zip(&after) {
        let p1 = p1.to_vec::<f32>().unwrap();
        let scale = g.iter().fold(0.0f32, |m, v| m.max(v.abs())) * lr as f32;
        for (i, ((a, b), g)) in p0.iter().zip(&p1).zip(g).enumerate() {
            let step = b - a;
            let want = -(lr as f32) * g;
            assert!(
                close(step, want, scale, a.abs().max(b.abs())),
                "{what} {name}[{i}]: moved by {step}, the hand gradient gives {want}"
            );
        }
    }
}

/// Adam's first step from `before` (the twin) to `after` (the stepped network), whose
/// optimiser's state is `state` (`<param>.exp_avg`, ...): one step taken, the first moment is
/// `(1 - β1) · g` for the hand gradient `g` element by element (the gradient's values, which
/// Adam's first update alone would hide: it moves every weight by about `lr · sign(g)`), and
/// the weights moved by that update, `-lr · g / (|g| + eps)`.
pub fn assert_adam_first_step(
    what: &str,
    before: &dyn Module,
    after: &dyn Module,
    state: &[(String, Tensor)],
    grads: &Grads,
    (lr, beta1): (f64, f64),
) {
    let find = |key: String| -> Vec<f64> {
        state
            .iter()
            .find(|(n, _)| *n == key)
            .unwrap_or_else(|| panic!("{what}: no optimiser state `{key}`"))
            .1
            .to_vec_f64()
            .unwrap()
    };
    let after = after.named_parameters();
    for ((name, p0, g), (_, p1)) in hand_gradients(what, before, grads).iter().zip(&after) {
        assert_eq!(find(format!("{name}.step")), [1.0], "{what} {name}");
        let m = find(format!("{name}.exp_avg"));
        let p1 = p1.to_vec::<f32>().unwrap();
        let scale = g.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (i, (((a, b), g), m)) in p0.iter().zip(&p1).zip(g).zip(&m).enumerate() {
            let got = (*m / (1.0 - beta1)) as f32;
            assert!(
                close(got, *g, scale, 0.0),
                "{what} {name}[{i}]: gradient {got}, by hand {g}"
            );
            // Far above eps the update is lr·sign(g) whatever rounding did to g; closer to 0 it
            // is at most lr. The weights themselves round to f32.
            let lr = lr as f32;
            let rounding = 4e-7 * a.abs().max(b.abs());
            let (want, tol) = if g.abs() > 1e-6 {
                (-lr * g / (g.abs() + 1e-8), 1e-3 * lr + rounding)
            } else {
                (0.0, lr + rounding)
            };
            assert!(
                (b - a - want).abs() <= tol,
                "{what} {name}[{i}]: moved by {}, Adam's first step is {want}",
                b - a
            );
        }
    }
}
