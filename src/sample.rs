//! `saddle sample`: images from a trained run, as numbered PNG files (and a .npy array) that any
//! outside tool can score, plus latent-space interpolation grids.

use crate::cli::{create_out_dir, BoxError};
use crate::flags::between;
use crate::train::model_from_config;
use clap::Args;
use npyz::WriterBuilder;
use saddle_engine::{no_grad, Rng, Tensor};
use saddle_gan::data::{Loader, Scale, Split};
use saddle_gan::plot::{save_image_grid, save_image_png};
use saddle_gan::run::{checkpoint_path, read_config, real_over_reconstruction, GanModel};
use saddle_nn::Checkpoint;
use std::path::{Path, PathBuf};

/// `saddle sample`'s options.
#[derive(Args, Clone, Debug)]
pub struct SampleArgs {
    /// The run folder (written by `saddle train ...`).
    #[arg(long)]
    pub run: PathBuf,
    /// Which checkpoint: latest, best, or a path to a .safetensors file.
    #[arg(long, default_value = "latest")]
    pub checkpoint: String,
    /// How many samples.
    #[arg(long, default_value_t = 64, value_parser = between::<usize>(1, MAX_SAMPLES as u64))]
    pub count: usize,
    /// Output folder (000000.png, 000001.png, ...).
    #[arg(long, default_value = "samples")]
    pub out: PathBuf,
    /// Also write all samples as samples.npy (float32 [N, C, H, W], pixels in [0, 1]).
    #[arg(long)]
    pub npy: bool,
    /// Instead of samples, write interpolation.png: each row walks a straight line in latent
    /// space between two random codes (DCGAN's "walking in the latent space").
    #[arg(long)]
    pub interpolate: bool,
    /// Instead of samples, write arithmetic.png: vector arithmetic on latent codes, as DCGAN's
    /// "smiling woman - neutral woman + neutral man". `A/B/C` are three groups of sample
    /// indices (e.g. `3,17,40/5,9,22/1,2,8`): the samples `saddle sample` writes as
    /// 000003.png, ... with the same --seed. The concepts are the mean codes of the groups; the
    /// result Y = mean(A) - mean(B) + mean(C) is shown with codes Y + U(-0.25, 0.25) noise
    /// (the paper's variations). Rows: each group and its mean's image; then the results.
    #[arg(long, value_name = "A/B/C")]
    pub arithmetic: Option<String>,
    /// For a class-conditional model (BigGAN): samples of this class only (by default the
    /// classes are drawn evenly, in random order).
    #[arg(long)]
    pub class: Option<usize>,
    /// Instead of samples, write reconstructions.png: --count images of --data's test split
    /// (in order), each row of 8 above its reconstructions G(E(x)) (a BigBiGAN run).
    #[arg(long, requires = "data")]
    pub reconstruct: bool,
    /// The images --reconstruct reads: `digits` or an MNIST-format folder.
    #[arg(long, value_parser = crate::flags::Utf8)]
    pub data: Option<String>,
    /// Rows of the interpolation grid.
    #[arg(long, default_value_t = 8, value_parser = between::<usize>(1, 256))]
    pub rows: usize,
    /// Seed of the latent codes (the same seed gives the same samples).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The most images `--reconstruct` shows.
const MAX_RECONSTRUCTED: usize = 1024;

/// `--reconstruct`: the first --count test images of --data above their reconstructions.
fn reconstruct(model: &mut dyn GanModel, args: &SampleArgs) -> Result<(), BoxError> {
    let config = read_config(&args.run)?;
    let size = config["spec"]["image_size"].as_u64().unwrap_or(32) as usize;
    let data = args.data.as_deref().unwrap_or("digits");
    let images = crate::train::images_at(data, Split::Test, size)?;
    let count = args.count.min(images.n).min(MAX_RECONSTRUCTED);
    let mut loader = Loader::new(&images, count, 0, Scale::MinusOneToOne)?.with_shuffle(false);
    let real = loader.next_batch()?.images;
    let rebuilt = no_grad(|| model.reconstruct(&real))?;
    let path = args.out.join("reconstructions.png");
    save_image_grid(
        &path,
        &real_over_reconstruction(&real, &rebuilt, 8)?,
        8,
        model.value_range(),
        2,
    )?;
    println!(
        "{count} test images of {data} and their reconstructions: {}",
        path.display()
    );
    Ok(())
}

/// The most samples one `saddle sample` writes.
const MAX_SAMPLES: usize = 1_000_000;

/// The run's model with the chosen checkpoint's weights.
pub fn load_run_model(run: &Path, which: &str) -> Result<Box<dyn GanModel>, BoxError> {
    let config = read_config(run)?;
    let mut model = model_from_config(&config)?;
    let path = match which {
        "latest" | "best" => checkpoint_path(run, which),
        other => PathBuf::from(other),
    };
    model.restore(&Checkpoint::load(&path)?)?;
    Ok(model)
}

/// Maps the model's value range to [0, 1].
fn to_unit(images: &Tensor, (lo, hi): (f32, f32)) -> Result<Vec<f32>, BoxError> {
    let scale = 1.0 / (hi - lo);
    Ok(images
        .to_vec::<f32>()?
        .into_iter()
        .map(|v| ((v - lo) * scale).clamp(0.0, 1.0))
        .collect())
}

/// `saddle sample`: writes a run's samples (or an interpolation, arithmetic or reconstruction
/// grid) to `--out`.
pub fn sample(args: SampleArgs) -> Result<(), BoxError> {
    let mut model = load_run_model(&args.run, &args.checkpoint)?;
    create_out_dir(&args.out)?;
    let mut rng = Rng::new(args.seed);
    if args.interpolate {
        return interpolate(model.as_mut(), &args, &mut rng);
    }
    if args.reconstruct {
        return reconstruct(model.as_mut(), &args);
    }
    if let Some(groups) = &args.arithmetic {
        return arithmetic(model.as_mut(), &parse_groups(groups)?, &args, &mut rng);
    }
    if let Some(class) = args.class {
        match model.num_classes() {
            Some(k) if class < k => {}
            Some(k) => return Err(format!("--class {class}: the model has classes 0..{k}").into()),
            None => {
                return Err(
                    format!("--class {class}: the run's model is not class-conditional").into(),
                )
            }
        }
    }
    let range = model.value_range();
    let npy_path = args.out.join("samples.npy");
    let mut npy = None;
    let bar = crate::cli::count_bar(args.count as u64, "samples");
    let mut written = 0;
    while written < args.count {
        let n = (args.count - written).min(100);
        // Code i is the i-th drawn from the seed whatever the chunking (the generators draw
        // element by element), so --arithmetic can name samples by their file numbers.
        let z = model.sample_latent(n, &mut rng)?;
        let images = match args.class {
            Some(class) => no_grad(|| model.generate_labelled(&z, Some(&vec![class; n])))?,
            None => no_grad(|| model.generate(&z))?,
        };
        let &[_, c, h, w] = images.shape() else {
            return Err(format!("the model made images of shape {:?}", images.shape()).into());
        };
        let unit = to_unit(&images, range)?;
        for (i, pixels) in unit.chunks_exact(c * h * w).enumerate() {
            let path = args.out.join(format!("{:06}.png", written + i));
            save_image_png(&path, pixels, c, h, w)?;
        }
        if args.npy {
            // Streamed chunk by chunk: memory stays one chunk whatever --count is.
            if npy.is_none() {
                npy = Some(NpyStream::create(&npy_path, [args.count, c, h, w])?);
            }
            if let Some(stream) = npy.as_mut() {
                stream.extend(unit)?;
            }
        }
        written += n;
        bar.set_position(written as u64);
    }
    bar.finish_and_clear();
    if let Some(stream) = npy {
        stream.finish()?;
    }
    println!(
        "{} samples in {}{}",
        args.count,
        args.out.display(),
        if args.npy { " (and samples.npy)" } else { "" }
    );
    Ok(())
}

/// A float32 `.npy` file written as the samples are made, through a temporary file renamed into
/// place at the end (an interrupted run leaves no truncated array under the final name).
struct NpyStream {
    path: PathBuf,
    tmp: PathBuf,
    writer: npyz::NpyWriter<f32, std::io::BufWriter<std::fs::File>>,
}

impl NpyStream {
    fn create(path: &Path, dims: [usize; 4]) -> Result<Self, BoxError> {
        let tmp = path.with_extension("npy.tmp");
        let named = |e: std::io::Error| format!("{}: {e}", tmp.display());
        let file = std::fs::File::create(&tmp).map_err(named)?;
        let writer = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&dims.map(|d| d as u64))
            .writer(std::io::BufWriter::new(file))
            .begin_nd()
            .map_err(named)?;
        Ok(NpyStream {
            path: path.to_path_buf(),
            tmp,
            writer,
        })
    }

    fn extend(&mut self, values: Vec<f32>) -> Result<(), BoxError> {
        self.writer
            .extend(values)
            .map_err(|e| format!("{}: {e}", self.tmp.display()).into())
    }

    fn finish(self) -> Result<(), BoxError> {
        let named = |e: std::io::Error| format!("{}: {e}", self.path.display());
        self.writer.finish().map_err(named)?;
        std::fs::rename(&self.tmp, &self.path).map_err(named)?;
        Ok(())
    }
}

fn interpolate(model: &mut dyn GanModel, args: &SampleArgs, rng: &mut Rng) -> Result<(), BoxError> {
    const STEPS: usize = 10;
    let ends = model.sample_latent(2 * args.rows, rng)?;
    let latent_shape = ends.shape()[1..].to_vec();
    let mut codes = Vec::with_capacity(args.rows * STEPS);
    for r in 0..args.rows {
        let a = ends.narrow(0, 2 * r, 1)?;
        let b = ends.narrow(0, 2 * r + 1, 1)?;
        for s in 0..STEPS {
            let t = s as f64 / (STEPS - 1) as f64;
            codes.push(a.mul_scalar(1.0 - t)?.add(&b.mul_scalar(t)?)?);
        }
    }
    let z = Tensor::concat(&codes.iter().collect::<Vec<_>>(), 0)?;
    debug_assert_eq!(&z.shape()[1..], &latent_shape[..]);
    let images = no_grad(|| model.generate(&z))?;
    let path = args.out.join("interpolation.png");
    save_image_grid(&path, &images, STEPS, model.value_range(), 2)?;
    println!("{} rows of {STEPS} in {}", args.rows, path.display());
    Ok(())
}

/// `"1,2,3/4,5,6/7,8,9"` as three equal-sized, non-empty index groups.
fn parse_groups(text: &str) -> Result<[Vec<usize>; 3], BoxError> {
    let bad = |why: String| -> BoxError {
        format!("--arithmetic {text:?}: {why} (expected A/B/C, e.g. 3,17,40/5,9,22/1,2,8)").into()
    };
    let groups = text
        .split('/')
        .map(|g| {
            g.split(',')
                .map(|i| i.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("{g:?} is not a list of sample numbers: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let [a, b, c]: [Vec<usize>; 3] = groups
        .try_into()
        .map_err(|g: Vec<_>| bad(format!("{} groups, not 3", g.len())))?;
    if a.len() != b.len() || b.len() != c.len() {
        return Err(bad("the three groups must have the same size".into()));
    }
    if let Some(big) = [&a, &b, &c]
        .iter()
        .flat_map(|g| g.iter())
        .find(|&&i| i >= MAX_SAMPLES)
    {
        return Err(bad(format!(
            "sample {big} is past the last one `saddle sample` can write ({})",
            MAX_SAMPLES - 1
        )));
    }
    Ok([a, b, c])
}

fn arithmetic(
    model: &mut dyn GanModel,
    groups: &[Vec<usize>; 3],
    args: &SampleArgs,
    rng: &mut Rng,
) -> Result<(), BoxError> {
    // The codes of the named samples, drawn in chunks as `sample` draws them (code i is the
    // i-th drawn from the seed), so memory stays one chunk whatever the numbers.
    let needed = 1 + groups.iter().flatten().max().copied().unwrap_or(0);
    let mut named = std::collections::BTreeMap::new();
    let mut drawn = 0;
    while drawn < needed {
        let n = (needed - drawn).min(100);
        let chunk = model.sample_latent(n, rng)?;
        for &i in groups
            .iter()
            .flatten()
            .filter(|&&i| (drawn..drawn + n).contains(&i))
        {
            named.insert(i, chunk.narrow(0, i - drawn, 1)?);
        }
        drawn += n;
    }
    let width = groups[0].len() + 1;
    let mut codes = Vec::new();
    let mut means = Vec::new();
    for group in groups {
        let picked: Vec<Tensor> = group.iter().map(|i| named[i].clone()).collect();
        let mean = Tensor::concat(&picked.iter().collect::<Vec<_>>(), 0)?.mean(&[0], true)?;
        codes.extend(picked);
        codes.push(mean.clone());
        means.push(mean);
    }
    let result = means[0].sub(&means[1])?.add(&means[2])?;
    codes.push(result.clone());
    let variations = 2 * width - 1;
    for _ in 0..variations {
        let jitter = Tensor::rand(
            result.shape(),
            -0.25,
            0.25,
            result.dtype(),
            result.device(),
            rng,
        )?;
        codes.push(result.add(&jitter)?);
    }
    let z = Tensor::concat(&codes.iter().collect::<Vec<_>>(), 0)?;
    let images = no_grad(|| model.generate(&z))?;
    let path = args.out.join("arithmetic.png");
    save_image_grid(&path, &images, width, model.value_range(), 2)?;
    println!(
        "mean({:?}) - mean({:?}) + mean({:?}) in {} (rows 1-3: the groups and their means; rows 4-5: the result and {variations} variations)",
        groups[0], groups[1], groups[2], path.display()
    );
    Ok(())
}

/// The most values `read_npy_images` reads (4 GiB of float32).
const MAX_NPY_VALUES: u64 = 1 << 30;

/// A float32 `[N, C, H, W]` array in [0, 1] from a .npy file (what `saddle sample --npy`
/// writes), checked against its header and the file's size before anything is allocated.
pub fn read_npy_images(path: &Path) -> Result<Tensor, BoxError> {
    let named = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| named(&e))?;
    let bytes = file.metadata().map_err(|e| named(&e))?.len();
    let npy = npyz::NpyFile::new(std::io::BufReader::new(file)).map_err(|e| named(&e))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let [_, c, h, w] = shape[..] else {
        return Err(named(&format!(
            "expected [N, C, H, W] images, got shape {shape:?}"
        ))
        .into());
    };
    if !matches!(c, 1 | 3) || h == 0 || w == 0 {
        return Err(named(&format!(
            "expected 1 or 3 channels of a non-empty plane, got {shape:?}"
        ))
        .into());
    }
    let values = npy.len();
    if values > MAX_NPY_VALUES || values * 4 > bytes {
        return Err(named(&format!(
            "the header's {values} float32 values do not fit the file's {bytes} bytes (or the \
             {MAX_NPY_VALUES}-value limit)"
        ))
        .into());
    }
    if npy.order() != npyz::Order::C {
        return Err(named(&"Fortran-ordered arrays are not read").into());
    }
    let data: Vec<f32> = npy
        .into_vec()
        .map_err(|e| named(&format!("{e} (float32 expected)")))?;
    if let Some(bad) = data.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(named(&format!("pixel {bad} outside [0, 1]")).into());
    }
    Ok(Tensor::from_vec(data, &shape, saddle_engine::Device::Cpu)?)
}
