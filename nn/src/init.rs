//! Weight initialisers (seeded), with PyTorch's fan conventions: for a weight of shape
//! `[out, in, k...]`, fan_in = in·Πk and fan_out = out·Πk.
//!
//! The functions return CPU tensors that do not require gradients (call
//! `with_requires_grad(true)` to make one a parameter); those that need fans are an error for
//! shapes of fewer than 2 dimensions. [`WeightInit`] builds whole layers.

use saddle_engine::{DType, Device, Error, Result, Rng, Tensor};

/// `(fan_in, fan_out)` of a weight shape, as `torch.nn.init._calculate_fan_in_and_fan_out`
/// (an error for fewer than 2 dimensions).
pub fn fans(shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::BadShape {
            op: "init",
            shape: shape.to_vec(),
            reason: "fans need at least 2 dimensions".into(),
        });
    }
    let receptive: usize = shape[2..].iter().product();
    Ok((shape[1] * receptive, shape[0] * receptive))
}

/// Which fan Kaiming initialisation preserves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// Keeps the forward pass's variance (fan_in).
    FanIn,
    /// Keeps the backward pass's variance (fan_out).
    FanOut,
}

/// Samples from N(mean, std²).
pub fn normal(shape: &[usize], mean: f64, std: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
    Tensor::randn(shape, mean, std, dtype, Device::Cpu, rng)
}

/// Samples from U[low, high).
pub fn uniform(
    shape: &[usize],
    low: f64,
    high: f64,
    dtype: DType,
    rng: &mut Rng,
) -> Result<Tensor> {
    Tensor::rand(shape, low, high, dtype, Device::Cpu, rng)
}

/// Glorot/Xavier uniform: U(-a, a) with a = gain·sqrt(6 / (fan_in + fan_out)).
pub fn xavier_uniform(shape: &[usize], gain: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
    let (fi, fo) = fans(shape)?;
    let a = gain * (6.0 / (fi + fo) as f64).sqrt();
    uniform(shape, -a, a, dtype, rng)
}

/// Glorot/Xavier normal: N(0, s²) with s = gain·sqrt(2 / (fan_in + fan_out)).
pub fn xavier_normal(shape: &[usize], gain: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
    let (fi, fo) = fans(shape)?;
    normal(
        shape,
        0.0,
        gain * (2.0 / (fi + fo) as f64).sqrt(),
        dtype,
        rng,
    )
}

fn kaiming_std(shape: &[usize], negative_slope: f64, mode: FanMode) -> Result<f64> {
    let (fi, fo) = fans(shape)?;
    let fan = if mode == FanMode::FanIn { fi } else { fo };
    let gain = (2.0 / (1.0 + negative_slope * negative_slope)).sqrt();
    Ok(gain / (fan as f64).sqrt())
}

/// He/Kaiming uniform for (leaky) ReLU layers: U(-b, b) with b = sqrt(3)·gain/sqrt(fan).
/// PyTorch's default Linear/Conv weight init is this with `negative_slope = sqrt(5)`.
pub fn kaiming_uniform(
    shape: &[usize],
    negative_slope: f64,
    mode: FanMode,
    dtype: DType,
    rng: &mut Rng,
) -> Result<Tensor> {
    let b = 3f64.sqrt() * kaiming_std(shape, negative_slope, mode)?;
    uniform(shape, -b, b, dtype, rng)
}

/// He/Kaiming normal: N(0, (gain/sqrt(fan))²).
pub fn kaiming_normal(
    shape: &[usize],
    negative_slope: f64,
    mode: FanMode,
    dtype: DType,
    rng: &mut Rng,
) -> Result<Tensor> {
    normal(
        shape,
        0.0,
        kaiming_std(shape, negative_slope, mode)?,
        dtype,
        rng,
    )
}

/// (Semi-)orthogonal initialisation (Saxe et al.; BigGAN's choice): the weight, flattened to
/// `[shape[0], rest]`, has orthonormal rows or columns (whichever are fewer), times `gain`.
///
/// The short side of a Gaussian matrix is orthonormalised in f64 as the Q of its QR
/// factorisation with a positive diagonal in R, which makes the result uniformly (Haar)
/// distributed. The work is `short² · tall` multiply-adds, done in matrix products by the
/// engine's GEMM: block modified Gram-Schmidt over panels of [`ORTHOGONAL_PANEL`] rows (each
/// panel loses its components along each finished one by two products), and Cholesky QR,
/// twice, within a panel. No row is copied more than a constant number of times (the
/// row-by-row version this replaces cloned a row per inner step: ~1e11 bytes for 1536 x 13824).
///
/// A shape of rank below 2 is an error; a shape with a zero dimension gives zeros.
///
/// ```
/// use saddle_nn::engine::{DType, Rng};
/// use saddle_nn::init::orthogonal;
///
/// // 2 rows of length 3: orthonormal rows.
/// let w = orthogonal(&[2, 3], 1.0, DType::F64, &mut Rng::new(1))?.to_vec::<f64>()?;
/// let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
/// assert!((dot(&w[0..3], &w[0..3]) - 1.0).abs() < 1e-12);
/// assert!(dot(&w[0..3], &w[3..6]).abs() < 1e-12);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub fn orthogonal(shape: &[usize], gain: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
    if shape.len() < 2 {
        return Err(Error::BadShape {
            op: "orthogonal",
            shape: shape.to_vec(),
            reason: "needs at least 2 dimensions".into(),
        });
    }
    let rows = shape[0];
    let cols: usize = shape[1..].iter().product();
    if rows == 0 || cols == 0 {
        return Tensor::zeros(shape, dtype, Device::Cpu);
    }
    // The rows of `short_rows` are the columns of the tall [tall × short] matrix of the QR.
    let (tall, short) = (rows.max(cols), rows.min(cols));
    let gaussian = Tensor::randn(&[short, tall], 0.0, 1.0, DType::F64, Device::Cpu, rng)?;
    let short_rows = orthonormal_rows(&gaussian)?;
    let q = if rows <= cols {
        short_rows
    } else {
        short_rows.t()?.contiguous()?
    };
    q.mul_scalar(gain)?.reshape(shape)?.to_dtype(dtype)
}

/// How a model built from many layers initialises their weights (BigGAN and compare_gan offer
/// these): biases start at zero except under [`WeightInit::PyTorchDefault`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WeightInit {
    /// [`orthogonal`] with gain 1 (BigGAN's choice).
    Orthogonal,
    /// N(0, std²).
    Normal {
        /// The standard deviation.
        std: f64,
    },
    /// Each layer's own PyTorch default (Kaiming uniform weight and bias).
    PyTorchDefault,
}

impl WeightInit {
    /// A weight of `shape` (`[out, ...]`), requiring grad; `None` under
    /// [`WeightInit::PyTorchDefault`], where the layer's constructor decides.
    pub fn weight(&self, shape: &[usize], dtype: DType, rng: &mut Rng) -> Result<Option<Tensor>> {
        let w = match *self {
            WeightInit::Orthogonal => orthogonal(shape, 1.0, dtype, rng)?,
            WeightInit::Normal { std } => normal(shape, 0.0, std, dtype, rng)?,
            WeightInit::PyTorchDefault => return Ok(None),
        };
        Ok(Some(w.with_requires_grad(true)))
    }

    fn zero_bias(len: usize, bias: bool, dtype: DType) -> Result<Option<Tensor>> {
        bias.then(|| Ok(Tensor::zeros(&[len], dtype, Device::Cpu)?.with_requires_grad(true)))
            .transpose()
    }

    /// A `k x k` convolution `in_ch -> out_ch` with "same" padding (`k / 2`), stride 1.
    pub fn conv2d(
        &self,
        in_ch: usize,
        out_ch: usize,
        k: usize,
        bias: bool,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<crate::Conv2d> {
        let params = saddle_engine::Conv2dParams::default().with_padding(k / 2);
        match self.weight(&[out_ch, in_ch, k, k], dtype, rng)? {
            None => crate::Conv2d::new(in_ch, out_ch, k, params, bias, dtype, rng),
            Some(weight) => Ok(crate::Conv2d {
                weight,
                bias: Self::zero_bias(out_ch, bias, dtype)?,
                params,
            }),
        }
    }

    /// A linear map `in_features -> out_features`.
    pub fn linear(
        &self,
        in_features: usize,
        out_features: usize,
        bias: bool,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<crate::Linear> {
        match self.weight(&[out_features, in_features], dtype, rng)? {
            None => crate::Linear::new(in_features, out_features, bias, dtype, rng),
            Some(weight) => {
                crate::Linear::from_weights(weight, Self::zero_bias(out_features, bias, dtype)?)
            }
        }
    }

    /// An embedding table of `num` rows of size `dim` (N(0, 1) under the PyTorch default).
    pub fn embedding(
        &self,
        num: usize,
        dim: usize,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<crate::Embedding> {
        match self.weight(&[num, dim], dtype, rng)? {
            None => crate::Embedding::new(num, dim, dtype, rng),
            Some(weight) => Ok(crate::Embedding { weight }),
        }
    }
}

/// Rows per panel of [`orthogonal`]'s block Gram-Schmidt: wide enough that the products run at
/// GEMM speed, narrow enough that the in-panel Cholesky work (`panel · short · tall`) stays small.
pub const ORTHOGONAL_PANEL: usize = 64;

/// The Q (`[r, c]`, r <= c, orthonormal rows) of the LQ factorisation of the f64 matrix `a`
/// with a positive diagonal in L: what Gram-Schmidt on the rows in order gives.
fn orthonormal_rows(a: &Tensor) -> Result<Tensor> {
    let r = a.shape()[0];
    let mut panels: Vec<Tensor> = Vec::with_capacity(r.div_ceil(ORTHOGONAL_PANEL));
    for start in (0..r).step_by(ORTHOGONAL_PANEL) {
        let b = ORTHOGONAL_PANEL.min(r - start);
        let mut p = a.narrow(0, start, b)?.contiguous()?;
        // One pass of block modified Gram-Schmidt: its loss of orthogonality grows with the
        // condition number of the matrix, at most about `short` for a square Gaussian one; a
        // 1536 x 1536 weight comes out orthonormal to 8e-13 (1e-14 with a second pass, which
        // would double the time for nothing an f32 weight can hold).
        for q in &panels {
            let coefficients = p.matmul(&q.t()?)?;
            p = p.sub(&coefficients.matmul(q)?)?;
        }
        for _ in 0..2 {
            p = cholesky_qr_rows(&p)?;
        }
        panels.push(p);
    }
    let refs: Vec<&Tensor> = panels.iter().collect();
    Tensor::concat(&refs, 0)
}

/// One Cholesky QR step on the rows of `p` (`[b, c]`, f64): with `p pᵀ = L Lᵀ`, returns
/// `L⁻¹ p`, whose rows are orthonormal up to rounding amplified by the square of `p`'s
/// condition number (so callers apply it twice).
fn cholesky_qr_rows(p: &Tensor) -> Result<Tensor> {
    let b = p.shape()[0];
    let gram = p.matmul(&p.t()?)?.to_vec::<f64>()?;
    // Cholesky, row-major lower triangle.
    let mut l = vec![0.0f64; b * b];
    for i in 0..b {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[i * b + k] * l[j * b + k]).sum();
            let v = gram[i * b + j] - dot;
            if i == j {
                if v <= 0.0 || !v.is_finite() {
                    return Err(Error::InvalidArgument {
                        op: "orthogonal",
                        reason: format!(
                            "rows of a {:?} panel are linearly dependent (pivot {v})",
                            p.shape()
                        ),
                    });
                }
                l[i * b + i] = v.sqrt();
            } else {
                l[i * b + j] = v / l[j * b + j];
            }
        }
    }
    // L⁻¹ by forward substitution, column by column.
    let mut inv = vec![0.0f64; b * b];
    for col in 0..b {
        for i in col..b {
            let rhs = if i == col { 1.0 } else { 0.0 };
            let dot: f64 = (col..i).map(|k| l[i * b + k] * inv[k * b + col]).sum();
            inv[i * b + col] = (rhs - dot) / l[i * b + i];
        }
    }
    Tensor::from_vec(inv, &[b, b], Device::Cpu)?.matmul(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dot product of rows `a` and `b` of a row-major `[_, c]` matrix (or of columns, when
    /// `columns`), in f64.
    fn dot(w: &[f64], c: usize, a: usize, b: usize, columns: bool) -> f64 {
        if columns {
            let r = w.len() / c;
            (0..r).map(|k| w[k * c + a] * w[k * c + b]).sum()
        } else {
            (0..c).map(|k| w[a * c + k] * w[b * c + k]).sum()
        }
    }

    /// The largest deviation from the identity of the Gram matrix of an orthogonal `[r, c]`
    /// weight's short side.
    fn worst_deviation(shape: [usize; 2], seed: u64) -> f64 {
        let mut rng = Rng::new(seed);
        let w = orthogonal(&shape, 1.0, DType::F64, &mut rng)
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        let (r, c) = (shape[0], shape[1]);
        let short = r.min(c);
        let mut worst = 0.0f64;
        for a in 0..short {
            for b in 0..short {
                let want = if a == b { 1.0 } else { 0.0 };
                worst = worst.max((dot(&w, c, a, b, r > c) - want).abs());
            }
        }
        worst
    }

    #[test]
    fn orthogonal_rows_or_columns_are_orthonormal() {
        for shape in [[4usize, 6], [6, 4], [5, 5]] {
            let worst = worst_deviation(shape, 3);
            assert!(worst < 1e-10, "{shape:?}: off by {worst}");
        }
    }

    #[test]
    fn orthogonal_over_several_panels_is_orthonormal_for_square_and_tall_shapes() {
        // 150 rows span three panels; a square Gaussian is the worst-conditioned case.
        for shape in [
            [150, 150],
            [150, 130],
            [130, 150],
            [2 * ORTHOGONAL_PANEL, 7],
        ] {
            let worst = worst_deviation(shape, 5);
            assert!(worst < 1e-12, "{shape:?}: off by {worst}");
        }
    }

    #[test]
    fn orthogonal_gain_scales_and_conv_shapes_flatten_past_dimension_zero() {
        let mut rng = Rng::new(6);
        let w = orthogonal(&[4, 3, 3, 3], 2.0, DType::F64, &mut rng).unwrap();
        assert_eq!(w.shape(), &[4, 3, 3, 3]);
        let w = w.to_vec::<f64>().unwrap();
        for a in 0..4 {
            for b in 0..4 {
                let want = if a == b { 4.0 } else { 0.0 };
                assert!((dot(&w, 27, a, b, false) - want).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn orthogonal_of_a_biggan_sized_conv_weight_is_orthonormal_on_a_sample() {
        // BigGAN's widest 3x3 convolution at 128x128 (1536 -> 1536 channels) flattens to
        // 1536 x 13824: 24 panels, about 3.5e10 multiply-adds in GEMMs, seconds on 2 cores; the
        // row-cloning Gram-Schmidt it replaces copied about 1e11 bytes.
        let mut rng = Rng::new(7);
        let (r, c) = (1536usize, 13824usize);
        let w = orthogonal(&[r, 1536, 3, 3], 1.0, DType::F32, &mut rng)
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect::<Vec<_>>();
        assert_eq!(w.len(), r * c);
        // Rows from the first, middle and last panels, each against itself and the others.
        let sample = [0usize, 1, 63, 64, 700, 767, 1471, 1472, 1535];
        for &a in &sample {
            for &b in &sample {
                let want = if a == b { 1.0 } else { 0.0 };
                let got = dot(&w, c, a, b, false);
                // f32 storage rounds each entry by ~6e-8 relative: dots are off by ~1e-6.
                assert!((got - want).abs() < 1e-5, "rows {a}, {b}: {got}");
            }
        }
    }

    #[test]
    fn fans_and_spreads() {
        assert_eq!(fans(&[64, 3, 4, 4]).unwrap(), (48, 1024));
        let mut rng = Rng::new(1);
        let w = xavier_uniform(&[200, 300], 1.0, DType::F64, &mut rng)
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        let bound = (6.0f64 / 500.0).sqrt();
        assert!(w.iter().all(|v| v.abs() <= bound));
        let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
        assert!(
            (var - bound * bound / 3.0).abs() < 0.05 * bound * bound / 3.0,
            "{var}"
        );
        let k = kaiming_normal(&[300, 200], 0.0, FanMode::FanIn, DType::F64, &mut rng)
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        let var = k.iter().map(|v| v * v).sum::<f64>() / k.len() as f64;
        assert!((var - 2.0 / 200.0).abs() < 0.05 * 2.0 / 200.0, "{var}");
    }
}
