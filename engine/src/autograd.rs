//! Reverse-mode autodiff. Every op that involves a tensor requiring gradients attaches a [`Node`]
//! to its output: the inputs and a closure mapping the output's gradient to the inputs'.
//! [`Tensor::backward`] visits the nodes in reverse topological order, consuming each closure (so
//! saved tensors are freed as soon as they have been used).
//!
//! Gradients of gradients: [`Tensor::grad_with_graph`] walks the same nodes with recording on,
//! without freeing them, so the gradients it returns carry their own history (a gradient penalty
//! can then be backpropagated). Every backward is written for both walks: with the fastest
//! formula (fused kernels) when [`GradCtx::create_graph`] is off, with ops that record when it
//! is on; an op that cannot yet do the second says so in an error naming it.

use crate::{Error, Result, Tensor, TensorId};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

type GraphBackwardFn = Arc<dyn Fn(&GradCtx) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

/// What a differentiable backward sees.
pub(crate) struct GradCtx<'a> {
    /// The gradient of the op's output.
    pub(crate) g: &'a Tensor,
    /// The op's inputs, with their history (in the order the op recorded them).
    pub(crate) inputs: &'a [Tensor],
    /// The op's output, with its history (formulas in `y` read it instead of keeping a copy, which
    /// would be a reference cycle).
    pub(crate) output: &'a Tensor,
    /// Which inputs need a gradient.
    pub(crate) needs: &'a [bool],
    /// True inside [`Tensor::grad_with_graph`]: the gradients must be built from ops that record
    /// (a fused backward kernel would cut the graph). False in [`Tensor::backward`], where the
    /// fastest formula is used.
    pub(crate) create_graph: bool,
}

/// How an op maps its output's gradient to its inputs': built from ops that record when
/// [`GradCtx::create_graph`] is set, so the gradients it returns can be differentiated again.
pub(crate) type Backward = GraphBackwardFn;

pub(crate) struct Node {
    pub(crate) op: &'static str,
    /// Inputs and the backward; taken (and so freed) when [`Tensor::backward`] runs through the
    /// node, kept by [`Tensor::grad_with_graph`].
    state: Mutex<Option<(Vec<Tensor>, Backward)>>,
}

impl Node {
    pub(crate) fn new(op: &'static str, inputs: Vec<Tensor>, backward: Backward) -> Self {
        Node {
            op,
            state: Mutex::new(Some((inputs, backward))),
        }
    }

    /// The inputs and a handle to the backward, leaving both in place.
    fn peek(&self) -> Option<(Vec<Tensor>, Backward)> {
        let state = self.state.lock().ok()?;
        let (inputs, backward) = state.as_ref()?;
        Some((inputs.clone(), backward.clone()))
    }

    fn inputs(&self) -> Option<Vec<Tensor>> {
        self.state
            .lock()
            .ok()?
            .as_ref()
            .map(|(inputs, _)| inputs.clone())
    }

    fn take(&self) -> Option<(Vec<Tensor>, Backward)> {
        self.state.lock().ok()?.take()
    }
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread record autodiff history.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// While alive, ops on this thread record no history. Restores the previous mode on drop.
pub struct NoGradGuard {
    previous: bool,
}

impl NoGradGuard {
    /// Turns recording off on this thread until the guard drops.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let previous = GRAD_ENABLED.with(|g| g.replace(false));
        NoGradGuard { previous }
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// While alive, ops on this thread record history even inside [`no_grad`] (the walk of
/// [`Tensor::grad_with_graph`]). Restores the previous mode on drop.
struct GradGuard {
    previous: bool,
}

impl GradGuard {
    fn new() -> Self {
        let previous = GRAD_ENABLED.with(|g| g.replace(true));
        GradGuard { previous }
    }
}

impl Drop for GradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Runs `f` with history recording off (evaluation, sampling, parameter updates).
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = NoGradGuard::new();
    f()
}

/// Gradients of the leaves that required them, keyed by tensor id.
#[derive(Default, Debug)]
pub struct Grads {
    map: HashMap<TensorId, Tensor>,
}

impl Grads {
    /// The gradient of `t` (None when `t` did not take part or does not require grad).
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.map.get(&t.id())
    }
    /// The gradient of the tensor with id `id` (as [`Grads::get`], for callers that keep ids).
    pub fn get_id(&self, id: TensorId) -> Option<&Tensor> {
        self.map.get(&id)
    }
    /// Takes the gradient of `t` out of the set, if it has one.
    pub fn remove(&mut self, t: &Tensor) -> Option<Tensor> {
        self.map.remove(&t.id())
    }
    /// Sets (replaces) the gradient of `t`, e.g. after clipping.
    pub fn insert(&mut self, t: &Tensor, g: Tensor) {
        self.map.insert(t.id(), g);
    }
    /// Adds the gradients of `other` into these (two losses backpropagated separately).
    pub fn merge(&mut self, other: Grads) -> Result<()> {
        for (id, g) in other.map {
            self.accumulate(id, g)?;
        }
        Ok(())
    }
    /// Number of tensors with a gradient.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// True when no tensor has a gradient.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Adds `g` to the gradient accumulated for `id`.
    fn accumulate(&mut self, id: TensorId, g: Tensor) -> Result<()> {
        let total = match self.map.remove(&id) {
            Some(prev) => prev.add(&g)?,
            None => g,
        };
        self.map.insert(id, total);
        Ok(())
    }
}

/// Tensors reachable from `root` through nodes, each after every tensor computed from it.
fn reverse_topological(root: &Tensor) -> Result<Vec<Tensor>> {
    let mut order = Vec::new();
    let mut visited = HashSet::new();
    // Iterative DFS (deep graphs would overflow the stack): (tensor, children pushed yet?).
    let mut stack = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !visited.insert(t.id()) {
            continue;
        }
        let inputs = match t.grad_fn() {
            Some(node) => node.inputs().ok_or_else(|| {
                Error::Autograd(format!(
                    "backward through the graph a second time (op `{}`): its saved values were freed by the first backward",
                    node.op
                ))
            })?,
            None => Vec::new(),
        };
        stack.push((t, true));
        for input in inputs {
            if input.requires_grad() && !visited.contains(&input.id()) {
                stack.push((input, false));
            }
        }
    }
    order.reverse();
    Ok(order)
}

impl Tensor {
    /// Computes the gradient of this one-element tensor with respect to every leaf that requires
    /// gradients and took part in computing it. The graph is freed as it is walked.
    pub fn backward(&self) -> Result<Grads> {
        if self.numel() != 1 {
            return Err(Error::Autograd(format!(
                "backward needs a one-element tensor, got shape {:?}",
                self.shape()
            )));
        }
        if !self.requires_grad() {
            return Err(Error::Autograd(
                "backward on a tensor that does not require grad".into(),
            ));
        }
        let seed = self.ones_like()?;
        self.backward_with(seed)
    }

    /// Backward from this tensor with an explicit output gradient of the same shape.
    pub fn backward_with(&self, grad: Tensor) -> Result<Grads> {
        if grad.shape() != self.shape() {
            return Err(Error::shape(
                "backward",
                self.shape(),
                grad.shape(),
                "gradient shape must match",
            ));
        }
        let order = reverse_topological(self)?;
        let _guard = NoGradGuard::new();
        let mut pending = Grads::default();
        pending.accumulate(self.id(), grad)?;
        let mut leaves = Grads::default();
        for t in order {
            let Some(node) = t.grad_fn() else {
                if let Some(g) = pending.map.remove(&t.id()) {
                    leaves.map.insert(t.id(), g);
                }
                continue;
            };
            let (inputs, backward) = node.take().ok_or_else(|| {
                Error::Autograd(format!(
                    "backward through op `{}` whose graph was already freed",
                    node.op
                ))
            })?;
            let Some(g) = pending.map.remove(&t.id()) else {
                continue;
            };
            let needs: Vec<bool> = inputs.iter().map(|i| i.requires_grad()).collect();
            let input_grads = backward(&GradCtx {
                g: &g,
                inputs: &inputs,
                output: &t,
                needs: &needs,
                create_graph: false,
            })?;
            drop(g);
            pending.accumulate_inputs(node.op, &inputs, &needs, input_grads)?;
        }
        Ok(leaves)
    }

    /// The gradients of this one-element tensor with respect to `wrt`, built from ops that record
    /// their own history, so a function of them (a gradient penalty) can be differentiated again:
    /// PyTorch's `torch.autograd.grad(out, wrt, create_graph=True)`. One gradient per `wrt`
    /// tensor, in order; zeros for one that `self` does not depend on. `wrt` may hold computed
    /// tensors (an interpolate of real and generated images), not only leaves.
    ///
    /// The graph is kept (a later [`Tensor::backward`] through the same ops works). Every op's
    /// backward is differentiable: elementwise arithmetic and every unary op (the activations),
    /// views, concat and stack, reductions (sum, mean, var, max, min), matmul, linear, conv2d and
    /// conv_transpose2d, batch norm (training and evaluation), maxout, dropout, average / sum /
    /// max / global pooling, nearest upsampling, rot90, l2_normalize (so spectral norm), softmax
    /// and log-softmax, attention, the losses, and the index ops (index_select, gather,
    /// where_cond, masked_select), on every device.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// # use saddle_engine::gradcheck::assert_close;
    /// // f(x) = x³: f'(x) = 3x² (with history), f''(x) = 6x.
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2], Device::Cpu)?.with_requires_grad(true);
    /// let f = x.mul(&x)?.mul(&x)?.sum_all()?;
    /// let dfdx = f.grad_with_graph(&[&x])?.remove(0);
    /// assert_close(&dfdx, &[3.0, 12.0], 1e-12);
    /// let grads = dfdx.sum_all()?.backward()?;
    /// assert_close(grads.get(&x).unwrap(), &[6.0, 12.0], 1e-12);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn grad_with_graph(&self, wrt: &[&Tensor]) -> Result<Vec<Tensor>> {
        if self.numel() != 1 {
            return Err(Error::Autograd(format!(
                "grad_with_graph needs a one-element tensor, got shape {:?}",
                self.shape()
            )));
        }
        let _recording = GradGuard::new();
        let mut found: HashMap<TensorId, Tensor> = HashMap::new();
        if self.requires_grad() {
            let order = reverse_topological(self)?;
            let targets: HashSet<TensorId> = wrt.iter().map(|t| t.id()).collect();
            let relevant = leading_to(&order, &targets)?;
            let mut pending = Grads::default();
            pending.accumulate(self.id(), self.ones_like()?)?;
            for t in order {
                if !relevant.contains(&t.id()) {
                    continue;
                }
                let Some(g) = pending.map.remove(&t.id()) else {
                    continue;
                };
                if targets.contains(&t.id()) {
                    found.insert(t.id(), g.clone());
                }
                let Some(node) = t.grad_fn() else {
                    continue;
                };
                let (inputs, backward) = node.peek().ok_or_else(|| {
                    Error::Autograd(format!(
                        "grad_with_graph through op `{}` whose graph was already freed by backward",
                        node.op
                    ))
                })?;
                // Only inputs on a path to `wrt` need a gradient here.
                let needs: Vec<bool> = inputs.iter().map(|i| relevant.contains(&i.id())).collect();
                if !needs.iter().any(|&n| n) {
                    continue;
                }
                let input_grads = backward(&GradCtx {
                    g: &g,
                    inputs: &inputs,
                    output: &t,
                    needs: &needs,
                    create_graph: true,
                })?;
                pending.accumulate_inputs(node.op, &inputs, &needs, input_grads)?;
            }
        }
        wrt.iter()
            .map(|t| match found.remove(&t.id()) {
                Some(g) => Ok(g),
                None => t.zeros_like(),
            })
            .collect()
    }
}

/// The ids among `order` (reverse topological) from which some target can be reached, targets
/// included: the part of the graph a gradient with respect to the targets flows through.
fn leading_to(order: &[Tensor], targets: &HashSet<TensorId>) -> Result<HashSet<TensorId>> {
    let mut relevant: HashSet<TensorId> = HashSet::new();
    // Inputs come after their consumers in `order`, so walk it backwards.
    for t in order.iter().rev() {
        let reaches = targets.contains(&t.id())
            || match t.grad_fn() {
                Some(node) => node
                    .inputs()
                    .unwrap_or_default()
                    .iter()
                    .any(|i| relevant.contains(&i.id())),
                None => false,
            };
        if reaches {
            relevant.insert(t.id());
        }
    }
    Ok(relevant)
}

impl Grads {
    /// Adds an op's input gradients (one per input, None where not needed) to the pending ones,
    /// checking each has its input's shape.
    fn accumulate_inputs(
        &mut self,
        op: &'static str,
        inputs: &[Tensor],
        needs: &[bool],
        input_grads: Vec<Option<Tensor>>,
    ) -> Result<()> {
        for ((input, need), ig) in inputs.iter().zip(needs).zip(input_grads) {
            let (true, Some(ig)) = (*need, ig) else {
                continue;
            };
            if ig.shape() != input.shape() {
                return Err(Error::Autograd(format!(
                    "op `{op}` produced a gradient of shape {:?} for an input of shape {:?}",
                    ig.shape(),
                    input.shape()
                )));
            }
            self.accumulate(input.id(), ig)?;
        }
        Ok(())
    }
}
