//! 2-D Gaussian mixtures, the standard toy for mode collapse (Metz et al. 2017; Srivastava et
//! al. 2017): 8 modes on a ring and 25 on a grid.

use saddle_nn::engine::{DType, Device, Result, Rng, Tensor};

/// Equal-weight isotropic Gaussians in the plane.
#[derive(Clone, Debug, PartialEq)]
pub struct Mixture2d {
    /// The modes' means.
    pub centers: Vec<[f64; 2]>,
    /// Every mode's standard deviation, on each axis.
    pub std: f64,
}

impl Mixture2d {
    /// `modes` Gaussians evenly spaced on a circle of `radius` (8 on radius 2, std 0.02 is the
    /// usual setting).
    pub fn ring(modes: usize, radius: f64, std: f64) -> Self {
        let centers = (0..modes)
            .map(|k| {
                let a = std::f64::consts::TAU * k as f64 / modes as f64;
                [radius * a.cos(), radius * a.sin()]
            })
            .collect();
        Mixture2d { centers, std }
    }

    /// A `side × side` grid with `spacing` between modes, centred on the origin (5×5, spacing 2,
    /// std 0.05 is the usual setting).
    pub fn grid(side: usize, spacing: f64, std: f64) -> Self {
        let offset = (side as f64 - 1.0) / 2.0;
        let centers = (0..side * side)
            .map(|k| {
                [
                    ((k / side) as f64 - offset) * spacing,
                    ((k % side) as f64 - offset) * spacing,
                ]
            })
            .collect();
        Mixture2d { centers, std }
    }

    /// `n` samples as an `[n, 2]` tensor.
    pub fn sample(&self, n: usize, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
        let mut values = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let c = self.centers[rng.below(self.centers.len() as u64) as usize];
            values.push(c[0] + self.std * rng.normal_f64());
            values.push(c[1] + self.std * rng.normal_f64());
        }
        Tensor::from_vec(values, &[n, 2], Device::Cpu)?.to_dtype(dtype)
    }
}
