//! Weight initialisers (seeded), with PyTorch's fan conventions: for a weight of shape
//! `[out, in, k...]`, fan_in = in·Πk and fan_out = out·Πk.

use saddle_engine::{DType, Device, Error, Result, Rng, Tensor};

/// `(fan_in, fan_out)` of a weight shape, as `torch.nn.init._calculate_fan_in_and_fan_out`.
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
    FanIn,
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
/// Built by modified Gram-Schmidt on a Gaussian matrix in f64, with the sign fix that makes the
/// result uniformly distributed.
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
    // Orthonormalise the columns of a tall [tall × short] matrix.
    let (tall, short) = (rows.max(cols), rows.min(cols));
    let mut q: Vec<Vec<f64>> = (0..short)
        .map(|_| (0..tall).map(|_| rng.normal_f64()).collect())
        .collect();
    for j in 0..short {
        for i in 0..j {
            let dot: f64 = (0..tall).map(|r| q[i][r] * q[j][r]).sum();
            let (qi, qj) = (q[i].clone(), &mut q[j]);
            for r in 0..tall {
                qj[r] -= dot * qi[r];
            }
        }
        let norm = q[j].iter().map(|v| v * v).sum::<f64>().sqrt();
        // The diagonal of R is `norm` > 0 here; the sign fix of QR-based samplers is implicit.
        q[j].iter_mut().for_each(|v| *v /= norm);
    }
    let mut values = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            // Columns of q are the short side: q[j][i] is element (i, j) of the tall matrix.
            values[r * cols + c] = gain * if rows >= cols { q[c][r] } else { q[r][c] };
        }
    }
    Tensor::from_vec(values, shape, Device::Cpu)?.to_dtype(dtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonal_rows_or_columns_are_orthonormal() {
        let mut rng = Rng::new(3);
        for shape in [[4usize, 6], [6, 4], [5, 5]] {
            let w = orthogonal(&shape, 1.0, DType::F64, &mut rng)
                .unwrap()
                .to_vec::<f64>()
                .unwrap();
            let (r, c) = (shape[0], shape[1]);
            let short = r.min(c);
            for a in 0..short {
                for b in 0..short {
                    let dot: f64 = if r <= c {
                        (0..c).map(|k| w[a * c + k] * w[b * c + k]).sum()
                    } else {
                        (0..r).map(|k| w[k * c + a] * w[k * c + b]).sum()
                    };
                    let want = if a == b { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-10, "{shape:?} ({a},{b}): {dot}");
                }
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
