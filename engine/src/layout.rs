use crate::{Error, Result};

/// Shape, strides (in elements) and offset of a tensor view into its storage. Broadcast
/// dimensions have stride 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    shape: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
}

/// Row-major strides of a contiguous tensor of `shape`.
pub(crate) fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
}

/// The shape two operands broadcast to, numpy-style (align trailing dimensions; 1 stretches).
pub(crate) fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::shape(
                    op,
                    a,
                    b,
                    format!("dimension {i} of the broadcast: {da} vs {db}"),
                ))
            }
        };
    }
    Ok(out)
}

impl Layout {
    /// The row-major layout of `shape` at offset 0.
    pub fn contiguous(shape: &[usize]) -> Self {
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }
    /// A layout with the given strides and offset (one stride per dimension; not otherwise
    /// checked, so it must stay inside the storage it will view).
    pub fn new(shape: Vec<usize>, strides: Vec<usize>, offset: usize) -> Self {
        debug_assert_eq!(shape.len(), strides.len());
        Layout {
            shape,
            strides,
            offset,
        }
    }
    /// Size of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Step in storage elements per unit of each dimension.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }
    /// Position in storage of the first element.
    pub fn offset(&self) -> usize {
        self.offset
    }
    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    /// Number of elements (1 for rank 0).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the view is dense and row-major (dimensions of size 1 may have any stride).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for d in (0..self.shape.len()).rev() {
            if self.shape[d] != 1 && self.strides[d] != expected {
                return false;
            }
            expected *= self.shape[d];
        }
        true
    }

    /// This view broadcast to `shape` (stride 0 on stretched or new leading dimensions).
    pub fn broadcast_to(&self, op: &'static str, shape: &[usize]) -> Result<Layout> {
        if shape.len() < self.rank() {
            return Err(Error::shape(
                op,
                &self.shape,
                shape,
                "cannot broadcast to fewer dimensions",
            ));
        }
        let lead = shape.len() - self.rank();
        let mut strides = vec![0; shape.len()];
        for (i, &n) in shape.iter().enumerate() {
            if i < lead {
                continue;
            }
            let own = self.shape[i - lead];
            if own == n {
                strides[i] = self.strides[i - lead];
            } else if own != 1 {
                return Err(Error::shape(
                    op,
                    &self.shape,
                    shape,
                    format!("dimension {i}: {own} cannot stretch to {n}"),
                ));
            }
        }
        Ok(Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }

    /// Reorders dimensions: output dimension `i` is input dimension `dims[i]`.
    pub fn permute(&self, op: &'static str, dims: &[usize]) -> Result<Layout> {
        let mut seen = vec![false; self.rank()];
        if dims.len() != self.rank()
            || dims
                .iter()
                .any(|&d| d >= self.rank() || std::mem::replace(&mut seen[d], true))
        {
            return Err(Error::bad_shape(
                op,
                &self.shape,
                format!("{dims:?} is not a permutation of the dimensions"),
            ));
        }
        Ok(Layout {
            shape: dims.iter().map(|&d| self.shape[d]).collect(),
            strides: dims.iter().map(|&d| self.strides[d]).collect(),
            offset: self.offset,
        })
    }

    /// The sub-view `start..start+len` along `dim`.
    pub fn narrow(&self, op: &'static str, dim: usize, start: usize, len: usize) -> Result<Layout> {
        if dim >= self.rank() || start + len > self.shape[dim] {
            return Err(Error::bad_shape(
                op,
                &self.shape,
                format!("cannot take {start}..{} of dimension {dim}", start + len),
            ));
        }
        let mut out = self.clone();
        out.shape[dim] = len;
        out.offset += start * self.strides[dim];
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_rules() {
        assert_eq!(
            broadcast_shapes("t", &[2, 1, 4], &[3, 1]).unwrap(),
            vec![2, 3, 4]
        );
        assert!(broadcast_shapes("t", &[2, 3], &[4, 3]).is_err());
        let l = Layout::contiguous(&[3, 1])
            .broadcast_to("t", &[2, 3, 4])
            .unwrap();
        assert_eq!(l.strides(), &[0, 1, 0]);
    }

    #[test]
    fn contiguity() {
        assert!(Layout::contiguous(&[2, 3]).is_contiguous());
        assert!(!Layout::contiguous(&[2, 3])
            .permute("t", &[1, 0])
            .unwrap()
            .is_contiguous());
        assert!(Layout::contiguous(&[1, 3])
            .permute("t", &[1, 0])
            .unwrap()
            .is_contiguous());
    }
}
