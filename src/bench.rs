//! `saddle bench ...`: the engine's side of the benchmark tables (median of several timed runs,
//! after a warm-up). The PyTorch side is `benches/torch_bench.py`; `benches/compare.sh` prints
//! both side by side.

use crate::flags::between;
use clap::{Args, Subcommand};
use saddle_engine::{Conv2dParams, ConvTranspose2dParams, DType, Device, Rng, Tensor};
use std::time::Instant;

/// The benchmark suites of `saddle bench`.
#[derive(Subcommand, Clone, Debug)]
pub enum Suite {
    /// Square SGEMM (f32) at several sizes.
    Gemm {
        /// Matrix sizes to time.
        #[arg(long, value_delimiter = ',', default_values_t = vec![256, 512, 1024, 2048], value_parser = between::<usize>(1, 16_384))]
        sizes: Vec<usize>,
        /// Runs and output format.
        #[command(flatten)]
        opts: BenchOpts,
    },
    /// Forward + backward (input and weight gradients) of the DCGAN conv and transposed-conv
    /// layers (k4 s2 p1, NCHW f32).
    Conv {
        /// Images per batch.
        #[arg(long, default_value_t = 64, value_parser = between::<usize>(1, 4096))]
        batch: usize,
        /// Runs and output format.
        #[command(flatten)]
        opts: BenchOpts,
    },
    /// Whole training steps (one D step + one G step): DCGAN at 32x32x1 and 64x64x3 (Adam,
    /// `--batch` images), the 2014 MLP GAN on 784-pixel images (SGD + momentum, batch 100
    /// as the paper) and `saddle train biggan`'s default model (32x32x1, 10 classes, ch 16:
    /// 2 D steps on halves of `--batch` real images, one G step, the average's update).
    Train {
        /// Images per batch of the DCGAN steps (real images per step of BigGAN).
        #[arg(long, default_value_t = 64, value_parser = between::<usize>(1, 4096))]
        batch: usize,
        /// Only the cases whose name contains this.
        #[arg(long)]
        only: Option<String>,
        /// Runs and output format.
        #[command(flatten)]
        opts: BenchOpts,
    },
}

/// The options every suite takes.
#[derive(Args, Clone, Debug)]
pub struct BenchOpts {
    /// Timed runs per case (the median is reported).
    #[arg(long, default_value_t = 7, value_parser = between::<usize>(1, 10_000))]
    pub runs: usize,
    /// Print JSON lines (name, median_ms, gflops) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One measured case.
pub struct Measurement {
    /// The case, e.g. `sgemm_1024`.
    pub name: String,
    /// Median wall time of one run, in milliseconds.
    pub median_ms: f64,
    /// Floating-point operations per second at the median time, in billions (0 where not
    /// counted).
    pub gflops: f64,
    /// Trained parameters of the timed model(s), where the row is a model (train cases).
    pub params: Option<usize>,
}

/// Median wall time of `f` over `runs` runs after one warm-up run, in milliseconds.
pub fn median_ms(
    runs: usize,
    mut f: impl FnMut() -> saddle_engine::Result<()>,
) -> saddle_engine::Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// One training step of the model `saddle train biggan` trains by default (digits: 1 channel,
/// 10 classes): `d_steps` D updates, each on its part of `batch` real images, then a G update
/// and the average's update. Its JSON row carries G's and D's trained parameters together
/// (`params`); benches/compare.sh checks PyTorch's model has as many.
fn biggan_step(batch: usize, runs: usize) -> Result<Measurement, Box<dyn std::error::Error>> {
    use saddle_gan::models::biggan_trainer::BigGanTrainer;
    use saddle_nn::ModuleExt;
    let cfg = crate::train::BigganSpec::cli_defaults()
        .model_config(1, 10)
        .map_err(|e| e.to_string())?;
    let mut trainer = BigGanTrainer::new(cfg, 0)?;
    let mut rng = Rng::new(2);
    let real = Tensor::rand(
        &[batch, 1, 32, 32],
        -1.0,
        1.0,
        DType::F32,
        Device::Cpu,
        &mut rng,
    )?;
    let labels: Vec<usize> = (0..batch).map(|_| rng.below(10) as usize).collect();
    let ms = median_ms(runs, || trainer.step(&real, Some(&labels)).map(drop))?;
    Ok(Measurement {
        name: format!("train_biggan32_b{batch}"),
        median_ms: ms,
        gflops: 0.0,
        params: Some(trainer.g.num_parameters() + trainer.d.num_parameters()),
    })
}

fn report(rows: &[Measurement], json: bool) {
    if json {
        for r in rows {
            println!("{}", {
                let mut row = serde_json::json!({ "name": r.name, "median_ms": r.median_ms, "gflops": r.gflops });
                if let Some(p) = r.params {
                    row["params"] = p.into();
                }
                row
            });
        }
        return;
    }
    let isa = saddle_kernels::cpu::gemm::isa();
    println!(
        "CPU GEMM kernels: {} (SADDLE_CPU_ISA=avx2 or portable narrows them)",
        isa.name()
    );
    println!("{:<40} {:>12} {:>10}", "case", "median ms", "GFLOP/s");
    for r in rows {
        println!("{:<40} {:>12.3} {:>10.1}", r.name, r.median_ms, r.gflops);
    }
}

/// `saddle bench <suite>`: times the suite's cases and prints a table (or JSON lines).
pub fn run(suite: Suite) -> Result<(), Box<dyn std::error::Error>> {
    match suite {
        Suite::Gemm { sizes, opts } => {
            let mut rows = Vec::new();
            let mut rng = Rng::new(0);
            for n in sizes {
                let a = Tensor::randn(&[n, n], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)?;
                let b = Tensor::randn(&[n, n], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)?;
                let ms = median_ms(opts.runs, || a.matmul(&b).map(drop))?;
                let flops = 2.0 * (n as f64).powi(3);
                rows.push(Measurement {
                    name: format!("sgemm_{n}"),
                    median_ms: ms,
                    gflops: flops / ms / 1e6,
                    params: None,
                });
            }
            // The yardstick: the FMA peak of the GEMM's instruction set, on every thread at
            // once (the GEMM's threads), measured in the same run.
            let peaks = rayon::broadcast(|_| saddle_kernels::cpu::gemm::fma_peak_gflops(300));
            if peaks.iter().all(Option::is_some) {
                rows.push(Measurement {
                    name: format!("fma_peak_{}threads", peaks.len()),
                    median_ms: 0.0,
                    gflops: peaks.into_iter().flatten().sum(),
                    params: None,
                });
            }
            report(&rows, opts.json);
        }
        Suite::Train { batch, only, opts } => {
            use saddle_gan::models::dcgan::{DcganConfig, DcganLoss, DcganTrainer};
            use saddle_gan::models::gan2014::{Gan2014Config, Gan2014Trainer};
            let wanted = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
            let mut rows = Vec::new();
            // WGAN-GP with one critic update per G update: the double-backward step
            // (benches/torch_bench.py's wgan_gp_case).
            let wgan_gp = DcganConfig {
                loss: DcganLoss::WganGp { gp_weight: 10.0 },
                lr: 1e-4,
                beta1: 0.0,
                beta2: 0.9,
                ..DcganConfig::mnist32()
            };
            for (name, cfg) in [
                ("train_dcgan32", DcganConfig::mnist32()),
                ("train_dcgan64", DcganConfig::rgb64()),
                ("train_wgangp32", wgan_gp),
            ] {
                if !wanted(name) {
                    continue;
                }
                let mut rng = Rng::new(0);
                let mut trainer = DcganTrainer::new(cfg, &mut rng)?;
                let shape = [batch, cfg.channels, cfg.image_size, cfg.image_size];
                let real = Tensor::rand(&shape, -1.0, 1.0, DType::F32, Device::Cpu, &mut rng)?;
                let ms = median_ms(opts.runs, || trainer.step(&real, &mut rng).map(drop))?;
                // Images per second in the GFLOP/s column's place would mislead; report 0.
                rows.push(Measurement {
                    name: format!("{name}_b{batch}"),
                    median_ms: ms,
                    gflops: 0.0,
                    params: None,
                });
            }
            // The paper's MNIST model: k = 1 D step on 100 real and 100 generated images, then
            // a G step on 100 fresh ones (benches/torch_bench.py does the same work).
            if wanted("train_gan2014_b100") {
                let mut trainer = Gan2014Trainer::new(Gan2014Config::default(), 0)?;
                let mut rng = Rng::new(1);
                let real = Tensor::rand(&[100, 784], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)?;
                let ms = median_ms(opts.runs, || trainer.step(&real).map(drop))?;
                rows.push(Measurement {
                    name: "train_gan2014_b100".into(),
                    median_ms: ms,
                    gflops: 0.0,
                    params: None,
                });
            }
            if wanted(&format!("train_biggan32_b{batch}")) {
                rows.push(biggan_step(batch, opts.runs)?);
            }
            report(&rows, opts.json);
        }
        Suite::Conv { batch, opts } => {
            let mut rows = Vec::new();
            let mut rng = Rng::new(0);
            for layer in DCGAN_LAYERS {
                let step = layer.setup(batch, &mut rng)?;
                let ms = median_ms(opts.runs, || step.run())?;
                rows.push(Measurement {
                    name: layer.name(),
                    median_ms: ms,
                    gflops: layer.flops(batch) / ms / 1e6,
                    params: None,
                });
            }
            report(&rows, opts.json);
        }
    }
    Ok(())
}

/// One layer of the conv suite: a 4×4 kernel, stride 2, padding 1 (the DCGAN layers), either a
/// convolution halving the spatial size or a transposed convolution doubling it.
#[derive(Clone, Copy, Debug)]
pub struct ConvLayer {
    /// A transposed convolution (doubling H and W) rather than a convolution (halving them).
    pub transposed: bool,
    /// Input channels.
    pub c_in: usize,
    /// Input height and width.
    pub hw: usize,
    /// Output channels.
    pub c_out: usize,
}

/// The discriminator's convolutions and the generator's transposed convolutions of DCGAN at
/// 32×32 (the same cases as `benches/torch_bench.py conv`).
pub const DCGAN_LAYERS: [ConvLayer; 6] = [
    ConvLayer {
        transposed: false,
        c_in: 3,
        hw: 32,
        c_out: 64,
    },
    ConvLayer {
        transposed: false,
        c_in: 64,
        hw: 16,
        c_out: 128,
    },
    ConvLayer {
        transposed: false,
        c_in: 128,
        hw: 8,
        c_out: 256,
    },
    ConvLayer {
        transposed: true,
        c_in: 256,
        hw: 4,
        c_out: 128,
    },
    ConvLayer {
        transposed: true,
        c_in: 128,
        hw: 8,
        c_out: 64,
    },
    ConvLayer {
        transposed: true,
        c_in: 64,
        hw: 16,
        c_out: 3,
    },
];

impl ConvLayer {
    /// `conv2d_3x32x32_to_64`, `convT_256x4x4_to_128`, ...
    pub fn name(&self) -> String {
        let kind = if self.transposed { "convT" } else { "conv2d" };
        format!(
            "{kind}_{}x{}x{}_to_{}",
            self.c_in, self.hw, self.hw, self.c_out
        )
    }

    /// Floating-point operations of forward + backward-data + backward-weight: three products
    /// of `batch · (smaller spatial size) · c_in · c_out · 16` multiply-adds each.
    pub fn flops(&self, batch: usize) -> f64 {
        let small = if self.transposed {
            self.hw
        } else {
            self.hw / 2
        };
        let macs = batch * small * small * self.c_in * self.c_out * 16;
        3.0 * 2.0 * macs as f64
    }

    /// Random input, weight and output gradient for one timed step.
    pub fn setup(&self, batch: usize, rng: &mut Rng) -> saddle_engine::Result<ConvStep> {
        let (x_shape, w_shape, y_hw) = if self.transposed {
            (
                [batch, self.c_in, self.hw, self.hw],
                [self.c_in, self.c_out, 4, 4],
                self.hw * 2,
            )
        } else {
            (
                [batch, self.c_in, self.hw, self.hw],
                [self.c_out, self.c_in, 4, 4],
                self.hw / 2,
            )
        };
        let mut randn =
            |shape: &[usize]| Tensor::randn(shape, 0.0, 1.0, DType::F32, Device::Cpu, rng);
        Ok(ConvStep {
            layer: *self,
            x: randn(&x_shape)?.with_requires_grad(true),
            w: randn(&w_shape)?.with_requires_grad(true),
            gy: randn(&[batch, self.c_out, y_hw, y_hw])?,
        })
    }
}

/// The tensors of one conv-suite step.
pub struct ConvStep {
    /// The layer timed.
    pub layer: ConvLayer,
    /// The input `[batch, c_in, hw, hw]`, requiring grad.
    pub x: Tensor,
    /// The weight (OIHW, or `[c_in, c_out, 4, 4]` when transposed), requiring grad.
    pub w: Tensor,
    /// The fixed output gradient: backward computes the gradients of `sum(y · gy)`.
    pub gy: Tensor,
}

impl ConvStep {
    /// Forward, then backward from `gy`, producing the input and weight gradients.
    pub fn run(&self) -> saddle_engine::Result<()> {
        let y = if self.layer.transposed {
            let p = ConvTranspose2dParams::default()
                .with_stride(2)
                .with_padding(1);
            self.x.conv_transpose2d(&self.w, None, p)?
        } else {
            self.x.conv2d(
                &self.w,
                None,
                Conv2dParams::default().with_stride(2).with_padding(1),
            )?
        };
        let grads = y.backward_with(self.gy.clone())?;
        debug_assert!(grads.get(&self.x).is_some() && grads.get(&self.w).is_some());
        Ok(())
    }
}
