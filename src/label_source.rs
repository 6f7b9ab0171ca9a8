//! Where `saddle train biggan` (alias `s3gan`) gets the labels of its real images, by the
//! fewer-labels paper's `--method`, and the run folder's record of labels that took a
//! pre-trained network to make (`labels.json`: a resumed run reads them back rather than
//! training the network again, and `--labels-from` lets another run reuse them).

use crate::cli::BoxError;
use clap::ValueEnum;
use saddle_gan::data::ImageDataset;
use saddle_gan::models::labeller::{
    clustering_labels, hidden_rest_labels, s2l_labels, LabellerConfig, LabellerLosses,
};
use saddle_gan::run::{run_file_in, write_atomically};
use saddle_nn::engine::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// The fewer-labels paper's label sources (its table 1 and section 3).
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelMethod {
    /// BIGGAN: the data's labels, all of them.
    #[default]
    Biggan,
    /// BIGGAN-k%: only the labelled --labels percent of the data is trained on.
    BigganK,
    /// SINGLE LABEL: every image class 0.
    SingleLabel,
    /// RANDOM LABEL: each image a fixed class drawn uniformly.
    RandomLabel,
    /// CLUSTERING: k-means on a rotation-trained network's features labels every image.
    Clustering,
    /// S2GAN-CO: a linear predictor on D's features, trained with D on the labelled
    /// --labels percent, labels the rest during training.
    S2ganCo,
    /// S2GAN: a classifier pre-trained on the labelled --labels percent (with rotation
    /// self-supervision on all images) labels the rest.
    S2gan,
    /// S3GAN: S2GAN's labels plus rotation self-supervision in D.
    S3gan,
    /// S3GAN-CO: S2GAN-CO plus rotation self-supervision in D.
    S3ganCo,
}

impl LabelMethod {
    /// Whether D gets S3GAN's rotation self-supervision.
    pub fn rotates(self) -> bool {
        matches!(self, LabelMethod::S3gan | LabelMethod::S3ganCo)
    }

    /// Whether D co-trains a class predictor.
    pub fn co_trains(self) -> bool {
        matches!(self, LabelMethod::S2ganCo | LabelMethod::S3ganCo)
    }

    /// Whether the method reads the `--labels` share.
    pub fn uses_share(self) -> bool {
        !matches!(
            self,
            LabelMethod::Biggan
                | LabelMethod::SingleLabel
                | LabelMethod::RandomLabel
                | LabelMethod::Clustering
        )
    }

    /// The pre-trained network the method's labels come from, if any: `s2l` (classifier on
    /// the labelled share, with rotation) or `clustering` (rotation only, then k-means).
    fn pretrained(self) -> Option<&'static str> {
        match self {
            LabelMethod::S2gan | LabelMethod::S3gan => Some("s2l"),
            LabelMethod::Clustering => Some("clustering"),
            _ => None,
        }
    }

    /// The flag value, for messages.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// What labels the run uses, besides the data.
pub struct LabelRequest<'a> {
    /// Where the labels come from.
    pub method: LabelMethod,
    /// The labelled share in percent (methods that use one).
    pub percent: f64,
    /// Seed of the labelled split, of random labels and of the pre-trained network.
    pub seed: u64,
    /// The pre-trained network's settings (methods that need one).
    pub labeller: LabellerConfig,
    /// A `labels.json` of another run to reuse.
    pub labels_from: Option<&'a Path>,
    /// The run folder, and whether the run is being resumed.
    pub root: &'a Path,
    /// See `root`.
    pub resumed: bool,
}

/// The record of pre-trained labels (`labels.json`).
#[derive(Serialize, Deserialize)]
struct LabelRecord {
    /// `s2l` or `clustering`.
    source: String,
    /// The labelled share the classifier trained on (`s2l`).
    labels_percent: Option<f64>,
    /// The run seed: it chose the labelled share and seeded the network.
    seed: u64,
    images: usize,
    labeller_steps: u64,
    labeller_batch: usize,
    labeller_lr: f64,
    /// `s2l`: the classifier's accuracy on the images whose labels it did not see;
    /// `clustering`: the clusters' purity against the data's labels (not used to train).
    quality: Option<f64>,
    seconds: f64,
    labels: Vec<u8>,
}

/// The file a run records its pre-trained labels in.
pub const LABELS_FILE: &str = "labels.json";

/// Gives `data` (at the GAN's image size, with the data's labels) the labels `req.method`
/// calls for. Methods with a pre-trained network train it here (printing progress), unless
/// `req.labels_from` or, on resume, the run folder holds its labels for the same settings.
pub fn apply(data: ImageDataset, req: &LabelRequest) -> Result<ImageDataset, BoxError> {
    let method = req.method;
    if method == LabelMethod::Biggan {
        return Ok(data);
    }
    if data.labels.is_none() {
        return Err(format!(
            "--method {}: {} has no class labels (the baselines relabel labelled data)",
            method.name(),
            data.source
        )
        .into());
    }
    let mut data = data;
    match method {
        LabelMethod::Biggan => {}
        LabelMethod::BigganK => data = data.percent_split(req.percent, req.seed)?.0,
        LabelMethod::SingleLabel => {
            data.labels = Some(vec![0; data.n]);
            data.num_classes = 1;
        }
        LabelMethod::RandomLabel => {
            let mut rng = Rng::new(req.seed ^ 0x7a2d_0b1e);
            let k = data.num_classes as u64;
            data.labels = Some((0..data.n).map(|_| rng.below(k) as u8).collect());
        }
        LabelMethod::S2ganCo | LabelMethod::S3ganCo => {
            data.labels = Some(hidden_rest_labels(&data, req.percent, req.seed)?);
        }
        LabelMethod::Clustering | LabelMethod::S2gan | LabelMethod::S3gan => {
            data.labels = Some(pretrained_labels(&data, req)?);
        }
    }
    Ok(data)
}

/// The labels of a pre-trained method: reused from `--labels-from` or the resumed run's
/// record when they match, else made and recorded in the run folder.
fn pretrained_labels(data: &ImageDataset, req: &LabelRequest) -> Result<Vec<u8>, BoxError> {
    let source = req.method.pretrained().expect("a pre-trained method");
    let percent = (source == "s2l").then_some(req.percent);
    let matches = |r: &LabelRecord| {
        r.source == source
            && r.labels_percent == percent
            && r.seed == req.seed
            && r.images == data.n
            && r.labels.len() == data.n
            && r.labels.iter().all(|&l| usize::from(l) < data.num_classes)
    };
    let file = req.root.join(LABELS_FILE);
    if req.resumed && file.exists() {
        let record = read_record(&file)?;
        if matches(&record) {
            return Ok(record.labels);
        }
        println!(
            "{}: made for other settings; making them again",
            file.display()
        );
    }
    if !req.resumed {
        if let Some(found) = run_file_in(req.root) {
            return Err(format!(
                "{}: already holds a run ({found}); use --resume to continue it or choose \
                 another --out",
                req.root.display()
            )
            .into());
        }
    }
    if let Some(from) = req.labels_from {
        let record = read_record(from)?;
        if !matches(&record) {
            return Err(format!(
                "--labels-from {}: those are `{}` labels of {} images ({}, seed {}); this run \
                 needs `{source}` labels of {} images ({}, seed {})",
                from.display(),
                record.source,
                record.images,
                share(record.labels_percent),
                record.seed,
                data.n,
                share(percent),
                req.seed
            )
            .into());
        }
        println!(
            "labels from {} ({source}, quality {})",
            from.display(),
            quality(record.quality)
        );
        write_record(req.root, &record)?;
        return Ok(record.labels);
    }
    let cfg = &req.labeller;
    println!(
        "{source} labeller: {} updates of {} images{}",
        cfg.steps,
        cfg.batch_size,
        if source == "s2l" {
            format!(", trained on {}% of the labels", req.percent)
        } else {
            String::new()
        }
    );
    let started = Instant::now();
    let every = (cfg.steps / 10).max(1);
    let progress = |step: u64, l: &LabellerLosses| {
        if step.is_multiple_of(every) || step == cfg.steps {
            let class = l
                .class
                .map(|c| format!(", class {c:.3}"))
                .unwrap_or_default();
            println!(
                "  labeller {step}/{}: rotation {:.3}{class} ({:.0} s)",
                cfg.steps,
                l.rotation,
                started.elapsed().as_secs_f64()
            );
        }
    };
    let (labels, quality_value) = if source == "s2l" {
        let (labels, acc) = s2l_labels(cfg, data, req.percent, req.seed, progress)?;
        (labels, Some(acc))
    } else {
        clustering_labels(cfg, data, req.seed, progress)?
    };
    let record = LabelRecord {
        source: source.into(),
        labels_percent: percent,
        seed: req.seed,
        images: data.n,
        labeller_steps: cfg.steps,
        labeller_batch: cfg.batch_size,
        labeller_lr: cfg.lr,
        quality: quality_value,
        seconds: started.elapsed().as_secs_f64(),
        labels,
    };
    println!(
        "{source} labels made in {:.0} s: {} {}",
        record.seconds,
        if source == "s2l" {
            "accuracy on the unlabelled images"
        } else {
            "cluster purity"
        },
        quality(record.quality)
    );
    write_record(req.root, &record)?;
    Ok(record.labels)
}

fn share(percent: Option<f64>) -> String {
    percent.map_or("no labelled share".into(), |p| format!("{p}% labelled"))
}

fn quality(q: Option<f64>) -> String {
    q.map_or("unknown".into(), |q| format!("{:.2}%", 100.0 * q))
}

/// The largest labels record read: about 20 million labels.
const MAX_RECORD_BYTES: u64 = 64 << 20;

fn read_record(path: &Path) -> Result<LabelRecord, BoxError> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > MAX_RECORD_BYTES {
        return Err(format!(
            "{}: {size} bytes is larger than a labels record can be ({MAX_RECORD_BYTES})",
            path.display()
        )
        .into());
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a labels record: {e}", path.display()).into())
}

/// Writes `record` as the run folder `root`'s labels file (creating the folder).
fn write_record(root: &Path, record: &LabelRecord) -> Result<(), BoxError> {
    std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let text = serde_json::to_string(record).expect("a label record serialises");
    Ok(write_atomically(&root.join(LABELS_FILE), text.as_bytes())?)
}
