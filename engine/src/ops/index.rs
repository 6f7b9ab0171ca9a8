//! Indexing ops: index_select (embedding look-ups), gather (torch.gather), where_cond and
//! masked_select. Indices are plain `usize` slices checked against the axis they index; masks and
//! conditions are float tensors where any non-zero value means true.

use crate::backend::{backend, Indices};
use crate::layout::broadcast_shapes;
use crate::{Error, Result, Tensor};
use saddle_kernels::geometry::Lanes;
use std::sync::Arc;

/// Fails with an error naming `op`, the first out-of-range index and the axis size.
fn check_indices(
    op: &'static str,
    indices: &[usize],
    size: usize,
    shape: &[usize],
    dim: usize,
) -> Result<()> {
    match indices.iter().position(|&i| i >= size) {
        Some(pos) => Err(Error::arg(
            op,
            format!(
                "index {} (at position {pos}) out of range for size {size} of dimension {dim} of shape {shape:?}",
                indices[pos]
            ),
        )),
        None => Ok(()),
    }
}

impl Tensor {
    /// Entries `indices` along `dim`, in that order (indices may repeat): the output has
    /// `indices.len()` in place of `shape[dim]`. With a `[vocab, dim]` table and `dim = 0` this is
    /// an embedding look-up; the backward adds the gradient rows of repeated indices together.
    /// Fails when `dim` is out of range or an index is not below `shape[dim]`.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let table = Tensor::from_vec(vec![0.0f32, 0.5, 1.0, 1.5, 2.0, 2.5], &[3, 2], Device::Cpu)?
    ///     .with_requires_grad(true); // 3 entries of width 2
    /// let rows = table.index_select(0, &[2, 0, 2])?; // [3, 2]
    /// assert_eq!(rows.to_vec::<f32>()?, vec![2.0, 2.5, 0.0, 0.5, 2.0, 2.5]);
    /// let grads = rows.sum_all()?.backward()?; // entry 2 was read twice
    /// assert_eq!(grads.get(&table).unwrap().to_vec::<f32>()?, vec![1.0, 1.0, 0.0, 0.0, 2.0, 2.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn index_select(&self, dim: usize, indices: &[usize]) -> Result<Tensor> {
        const OP: &str = "index_select";
        let n = self.dim(OP, dim)?;
        check_indices(OP, indices, n, self.shape(), dim)?;
        let s = self.shape();
        let (outer, inner): (usize, usize) =
            (s[..dim].iter().product(), s[dim + 1..].iter().product());
        let mut shape = s.to_vec();
        shape[dim] = indices.len();
        let gather = IndexSelect {
            idx: Arc::new(Indices::new(indices, n)),
            lanes: Lanes { outer, n, inner },
            in_shape: s.to_vec(),
            out_shape: shape,
        };
        gather.select(self)
    }

    /// `torch.gather(self, dim, index)`: `index` (row-major values) has shape `index_shape`, of
    /// the same rank as `self` and no larger than `self` in every dimension but `dim`. The output
    /// has shape `index_shape`; at coordinates `c` it holds `self` at `c` with `c[dim]` replaced
    /// by `index[c]`. The backward scatter-adds the gradient to the positions read. Fails when
    /// the shapes do not fit as above, `index` does not have `index_shape`'s element count, or
    /// an index is out of range.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], Device::Cpu)?;
    /// // One entry per row: out[i][0] = x[i][index[i][0]].
    /// let picked = x.gather(1, &[2, 0], &[2, 1])?;
    /// assert_eq!(picked.shape(), &[2, 1]);
    /// assert_eq!(picked.to_vec::<f32>()?, vec![3.0, 4.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn gather(&self, dim: usize, index: &[usize], index_shape: &[usize]) -> Result<Tensor> {
        const OP: &str = "gather";
        let n = self.dim(OP, dim)?;
        let s = self.shape();
        if index_shape.len() != s.len() {
            return Err(Error::shape(
                OP,
                s,
                index_shape,
                "index must have the same rank as the input",
            ));
        }
        if let Some(d) = (0..s.len()).find(|&d| d != dim && index_shape[d] > s[d]) {
            return Err(Error::shape(
                OP,
                s,
                index_shape,
                format!("index is larger than the input in dimension {d}"),
            ));
        }
        let count: usize = index_shape.iter().product();
        if count != index.len() {
            return Err(Error::bad_shape(
                OP,
                index_shape,
                format!("index shape needs {count} values, got {}", index.len()),
            ));
        }
        check_indices(OP, index, n, s, dim)?;
        let gather = Gather {
            idx: Arc::new(Indices::new(index, n)),
            dim,
            in_shape: s.to_vec(),
            index_shape: index_shape.to_vec(),
        };
        gather.gather(self)
    }

    /// `cond ? a : b` elementwise, with `cond`, `a` and `b` broadcast together (`cond` is a 0/1
    /// float mask, any dtype; non-zero selects `a`). The gradient goes to `a` where `cond` holds
    /// and to `b` elsewhere, summed back to each operand's shape; `cond` gets none. The output
    /// has the broadcast shape. Fails when the shapes do not broadcast, `a` and `b` differ in
    /// dtype, or the three are not on one device.
    ///
    /// ```
    /// # use saddle_engine::{DType, Device, Tensor};
    /// let cond = Tensor::from_vec(vec![1.0f32, 0.0, 1.0], &[3], Device::Cpu)?;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3], Device::Cpu)?
    ///     .with_requires_grad(true);
    /// let b = Tensor::zeros(&[1], DType::F32, Device::Cpu)?; // broadcast
    /// let y = Tensor::where_cond(&cond, &a, &b)?;
    /// assert_eq!(y.to_vec::<f32>()?, vec![1.0, 0.0, 3.0]);
    /// let grads = y.sum_all()?.backward()?;
    /// assert_eq!(grads.get(&a).unwrap().to_vec::<f32>()?, vec![1.0, 0.0, 1.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn where_cond(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        const OP: &str = "where_cond";
        a.check_same(OP, b)?;
        if cond.device() != a.device() {
            return Err(Error::DeviceMismatch {
                op: OP,
                lhs: cond.device(),
                rhs: a.device(),
            });
        }
        let ab = broadcast_shapes(OP, a.shape(), b.shape())?;
        let shape = broadcast_shapes(OP, cond.shape(), &ab)?;
        // A dense 0/1 mask of the operands' dtype, selected from by one kernel; the backward
        // selects between the gradient and a zero with the same mask.
        let mask = backend(a.device()).mask_as(OP, cond, &shape, a.dtype())?;
        let select = Select {
            mask: Arc::new(mask),
            shape,
        };
        select.select(a, b)
    }

    /// The values of `self` where `mask` (a 0/1 float tensor; non-zero selects) is set, in
    /// row-major order, as a 1-D tensor. `mask` and `self` broadcast together as in PyTorch. The
    /// backward scatters the gradient back to the selected positions (zeros elsewhere). Fails
    /// when the shapes do not broadcast or the two are on different devices.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2], Device::Cpu)?;
    /// let mask = Tensor::from_vec(vec![0.0f32, 1.0], &[2], Device::Cpu)?; // the second column
    /// assert_eq!(x.masked_select(&mask)?.to_vec::<f32>()?, vec![2.0, 4.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn masked_select(&self, mask: &Tensor) -> Result<Tensor> {
        const OP: &str = "masked_select";
        if mask.device() != self.device() {
            return Err(Error::DeviceMismatch {
                op: OP,
                lhs: self.device(),
                rhs: mask.device(),
            });
        }
        let shape = broadcast_shapes(OP, self.shape(), mask.shape())?;
        // On a device the output's length is read back to the host (it depends on the mask's
        // values); the backward needs no host read.
        let mask = backend(self.device()).mask_as(OP, mask, &shape, self.dtype())?;
        let (out, at) = backend(self.device()).mask_compact(OP, &mask, self)?;
        let compaction = Compaction {
            mask: Arc::new(mask),
            at: Arc::new(at),
            in_shape: self.shape().to_vec(),
        };
        Ok(compaction.record_compact(out, self))
    }
}

/// `index_select` along the middle axis of `lanes` and its adjoint, the index-add: each
/// recorded with the other as its backward, so both differentiate any number of times.
#[derive(Clone)]
struct IndexSelect {
    idx: Arc<Indices>,
    lanes: Lanes,
    in_shape: Vec<usize>,
    out_shape: Vec<usize>,
}

impl IndexSelect {
    const OP: &'static str = "index_select";

    fn select(&self, x: &Tensor) -> Result<Tensor> {
        let out = backend(x.device()).index_select(
            Self::OP,
            x,
            self.lanes,
            &self.idx,
            &self.out_shape,
        )?;
        let this = self.clone();
        Ok(out.record(Self::OP, &[x], move |ctx| Ok(vec![Some(this.add(ctx.g)?)])))
    }

    fn add(&self, g: &Tensor) -> Result<Tensor> {
        let out =
            backend(g.device()).index_add(Self::OP, g, self.lanes, &self.idx, &self.in_shape)?;
        let this = self.clone();
        Ok(out.record("index_select_backward", &[g], move |ctx| {
            Ok(vec![Some(this.select(ctx.g)?)])
        }))
    }
}

/// `gather` and its adjoint, the scatter-add, each the other's backward.
#[derive(Clone)]
struct Gather {
    idx: Arc<Indices>,
    dim: usize,
    in_shape: Vec<usize>,
    index_shape: Vec<usize>,
}

impl Gather {
    const OP: &'static str = "gather";

    fn gather(&self, x: &Tensor) -> Result<Tensor> {
        let out =
            backend(x.device()).gather(Self::OP, x, self.dim, &self.idx, &self.index_shape)?;
        let this = self.clone();
        Ok(out.record(Self::OP, &[x], move |ctx| {
            Ok(vec![Some(this.scatter(ctx.g)?)])
        }))
    }

    fn scatter(&self, g: &Tensor) -> Result<Tensor> {
        let out =
            backend(g.device()).scatter_add(Self::OP, g, &self.in_shape, self.dim, &self.idx)?;
        let this = self.clone();
        Ok(out.record("gather_backward", &[g], move |ctx| {
            Ok(vec![Some(this.gather(ctx.g)?)])
        }))
    }
}

/// `mask ? a : b` over a fixed dense mask; its backward is two more selections with a zero, so
/// it differentiates any number of times.
#[derive(Clone)]
struct Select {
    mask: Arc<Tensor>,
    shape: Vec<usize>,
}

impl Select {
    const OP: &'static str = "where_cond";

    fn select(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let out = backend(a.device()).select(Self::OP, &self.mask, a, b, &self.shape)?;
        let this = self.clone();
        let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
        Ok(out.record(Self::OP, &[a, b], move |ctx| {
            let (g, needs) = (ctx.g, ctx.needs);
            let zero = Tensor::zeros(&[], g.dtype(), g.device())?;
            let ga = needs[0]
                .then(|| this.select(g, &zero)?.sum_to_shape(&sa))
                .transpose()?;
            let gb = needs[1]
                .then(|| this.select(&zero, g)?.sum_to_shape(&sb))
                .transpose()?;
            Ok(vec![ga, gb])
        }))
    }
}

/// `masked_select`'s compaction and its adjoint, the expansion back to the mask's shape, each
/// the other's backward.
#[derive(Clone)]
struct Compaction {
    mask: Arc<Tensor>,
    at: Arc<crate::backend::Compaction>,
    /// The shape of `masked_select`'s input (the mask's shape is the broadcast one).
    in_shape: Vec<usize>,
}

impl Compaction {
    const OP: &'static str = "masked_select";

    fn record_compact(&self, out: Tensor, x: &Tensor) -> Tensor {
        let this = self.clone();
        out.record(Self::OP, &[x], move |ctx| {
            Ok(vec![Some(this.expand(ctx.g)?)])
        })
    }

    fn expand(&self, g: &Tensor) -> Result<Tensor> {
        let full = backend(g.device()).mask_expand(Self::OP, &self.at, &self.mask, g)?;
        let this = self.clone();
        let full = full.record("masked_select_backward", &[g], move |ctx| {
            let (out, _) = backend(ctx.g.device()).mask_compact(Self::OP, &this.mask, ctx.g)?;
            Ok(vec![Some(this.record_compact(out, ctx.g))])
        });
        full.sum_to_shape(&self.in_shape)
    }
}
