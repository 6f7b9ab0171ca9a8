use crate::{child_name, Module, Slot, WeightedLayer};
use saddle_engine::{DType, Error, Result, Rng, Tensor};

/// A table of `num` vectors of size `dim` looked up by integer id (class embeddings for
/// conditional batch norm and projection discriminators). `weight` is `[num, dim]`, N(0, 1) at
/// start, as PyTorch.
///
/// [`Module::forward`] takes a tensor of ids of any shape (integer values stored as floats, as
/// the data loaders give labels) and returns `x.shape() + [dim]`; a negative or fractional id
/// is an error, as is one of `num` or more.
///
/// ```
/// use saddle_nn::engine::{DType, Device, Rng, Tensor};
/// use saddle_nn::{Embedding, Module};
///
/// let mut rng = Rng::new(0);
/// let table = Embedding::new(10, 4, DType::F32, &mut rng)?;
/// let labels = Tensor::from_vec(vec![3.0f32, 3.0, 7.0], &[3], Device::Cpu)?;
/// let e = table.forward(&labels)?;
/// assert_eq!(e.shape(), &[3, 4]);
/// // The same id gives the same row, and `lookup` takes the ids directly.
/// let rows = e.to_vec::<f32>()?;
/// assert_eq!(rows[0..4], rows[4..8]);
/// assert_eq!(table.lookup(&[7])?.to_vec::<f32>()?, rows[8..12]);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub struct Embedding {
    /// `[num, dim]`: row `i` is id `i`'s vector.
    pub weight: Tensor,
}

impl Embedding {
    /// A table of `num` vectors of size `dim`, drawn from N(0, 1) with `rng`.
    pub fn new(num: usize, dim: usize, dtype: DType, rng: &mut Rng) -> Result<Self> {
        Ok(Embedding {
            weight: crate::init::normal(&[num, dim], 0.0, 1.0, dtype, rng)?
                .with_requires_grad(true),
        })
    }

    /// The rows for `ids`: `[ids.len(), dim]`.
    pub fn lookup(&self, ids: &[usize]) -> Result<Tensor> {
        self.weight.index_select(0, ids)
    }
}

/// Reads a tensor of integer-valued ids (as produced by data loaders) into indices.
fn ids_of(x: &Tensor) -> Result<Vec<usize>> {
    x.to_vec_f64()?
        .into_iter()
        .map(|v| {
            if v >= 0.0 && v.fract() == 0.0 {
                Ok(v as usize)
            } else {
                Err(Error::InvalidArgument {
                    op: "Embedding",
                    reason: format!("id {v} is not a non-negative integer"),
                })
            }
        })
        .collect()
}

impl Module for Embedding {
    /// `x` holds ids (any shape); the output has shape `x.shape() + [dim]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with_weight(x, &self.weight)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        f(child_name(prefix, "weight"), &self.weight, Slot::Parameter);
    }
}

impl WeightedLayer for Embedding {
    fn weight(&self) -> &Tensor {
        &self.weight
    }
    fn forward_with_weight(&self, x: &Tensor, weight: &Tensor) -> Result<Tensor> {
        let rows = weight.index_select(0, &ids_of(x)?)?;
        let mut shape = x.shape().to_vec();
        shape.push(weight.shape()[1]);
        rows.reshape(&shape)
    }
    fn visit_without_weight(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Tensor, Slot)) {}
}
