//! Reverse-mode autodiff. Every op that involves a tensor requiring gradients attaches a [`Node`]
//! to its output: the inputs and a closure mapping the output's gradient to the inputs'.
//! [`Tensor::backward`] visits the nodes in reverse topological order, consuming each closure (so
//! saved tensors are freed as soon as they have been used).

use crate::{Error, Result, Tensor, TensorId};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

type BackwardFn = Box<dyn FnOnce(&Tensor, &[bool]) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

pub(crate) struct Node {
    pub(crate) op: &'static str,
    /// Inputs and the backward closure; taken (and so freed) when backward runs through the node.
    state: Mutex<Option<(Vec<Tensor>, BackwardFn)>>,
}

impl Node {
    pub(crate) fn new(op: &'static str, inputs: Vec<Tensor>, backward: BackwardFn) -> Self {
        Node {
            op,
            state: Mutex::new(Some((inputs, backward))),
        }
    }

    fn inputs(&self) -> Option<Vec<Tensor>> {
        self.state
            .lock()
            .ok()?
            .as_ref()
            .map(|(inputs, _)| inputs.clone())
    }

    fn take(&self) -> Option<(Vec<Tensor>, BackwardFn)> {
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
            let input_grads = backward(&g, &needs)?;
            drop(g);
            for ((input, need), ig) in inputs.iter().zip(&needs).zip(input_grads) {
                let (true, Some(ig)) = (*need, ig) else {
                    continue;
                };
                if ig.shape() != input.shape() {
                    return Err(Error::Autograd(format!(
                        "op `{}` produced a gradient of shape {:?} for an input of shape {:?}",
                        node.op,
                        ig.shape(),
                        input.shape()
                    )));
                }
                pending.accumulate(input.id(), ig)?;
            }
        }
        Ok(leaves)
    }
}
