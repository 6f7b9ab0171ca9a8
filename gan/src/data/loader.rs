//! Mini-batches from an in-memory dataset: a fresh seeded shuffle each epoch, pixels scaled to
//! the range the model expects, and a small state for resuming mid-epoch.

use super::ImageDataset;
use crate::run::{BatchSource, BoxError};
use saddle_engine::{Device, Error, Result, Rng, Tensor};

/// The range the loader maps the dataset's [0, 1] pixels to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// `2x - 1`: for generators ending in tanh.
    MinusOneToOne,
    /// Unchanged: for sigmoid outputs and classifiers.
    ZeroToOne,
}

/// One mini-batch: `images [B, C, H, W]` f32 on the CPU, and the labels when the dataset has them.
#[derive(Clone, Debug)]
pub struct Batch {
    /// `[B, C, H, W]`, scaled as the loader's [`Scale`] says.
    pub images: Tensor,
    /// One class per image, when the dataset is labelled.
    pub labels: Option<Vec<usize>>,
}

/// Where a loader stands: the epoch the next batch comes from and the number of examples of that
/// epoch's order already handed out. With the loader's seed this fixes everything that follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoaderState {
    /// The epoch the next batch comes from (0 first).
    pub epoch: u64,
    /// Examples of that epoch's order already handed out.
    pub position: usize,
}

/// Seeded, epoch-by-epoch batching over a dataset.
///
/// Each epoch visits the examples in a new order, a permutation drawn from a Philox stream keyed
/// by the seed and positioned by the epoch number, so epoch `e`'s order does not depend on how
/// the loader got there: resuming from a [`LoaderState`] reproduces the batches exactly.
///
/// By default the last, incomplete batch of an epoch is dropped (`drop_last`): every batch has
/// exactly `batch_size` images, which batch norm and fixed-size buffers want, and as each epoch
/// reshuffles, the dropped examples differ from epoch to epoch. `with_drop_last(false)` hands out
/// the remainder as a smaller final batch instead; `with_shuffle(false)` keeps the dataset order
/// (for evaluation).
///
/// ```
/// use saddle_gan::data::{ImageDataset, Loader, Scale};
///
/// let digits = ImageDataset::digits()?; // 1,797 labelled 8x8 images, embedded
/// let mut loader = Loader::new(&digits, 64, 0, Scale::MinusOneToOne)?;
/// let batch = loader.next_batch()?;
/// assert_eq!(batch.images.shape(), &[64, 1, 8, 8]);
/// assert_eq!(batch.labels.as_ref().map(Vec::len), Some(64));
/// // Resuming from a saved state gives the same batches.
/// let state = loader.state();
/// let next = loader.next_batch()?.images.to_vec::<f32>()?;
/// let mut resumed = Loader::new(&digits, 64, 0, Scale::MinusOneToOne)?;
/// resumed.restore(state)?;
/// assert_eq!(resumed.next_batch()?.images.to_vec::<f32>()?, next);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Loader<'a> {
    dataset: &'a ImageDataset,
    batch_size: usize,
    seed: u64,
    scale: Scale,
    shuffle: bool,
    drop_last: bool,
    epoch: u64,
    position: usize,
    order: Vec<usize>,
}

impl<'a> Loader<'a> {
    /// An error if `batch_size` is 0 or larger than the dataset.
    pub fn new(
        dataset: &'a ImageDataset,
        batch_size: usize,
        seed: u64,
        scale: Scale,
    ) -> Result<Self> {
        if batch_size == 0 || batch_size > dataset.n {
            return Err(Error::InvalidArgument {
                op: "Loader::new",
                reason: format!(
                    "batch size {batch_size} must be between 1 and the dataset's {} images ({})",
                    dataset.n, dataset.source
                ),
            });
        }
        let mut loader = Loader {
            dataset,
            batch_size,
            seed,
            scale,
            shuffle: true,
            drop_last: true,
            epoch: 0,
            position: 0,
            order: Vec::new(),
        };
        loader.order = loader.order_for(0);
        Ok(loader)
    }

    /// Whether each epoch visits the examples in a new random order (the default) or in the
    /// dataset's order.
    pub fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self.order = self.order_for(self.epoch);
        self
    }

    /// Whether an epoch's last, incomplete batch is dropped (the default) or handed out
    /// smaller.
    pub fn with_drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// The epoch the next batch comes from (0 first).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Images per batch (the last of an epoch may have fewer without `drop_last`).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Batches handed out per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        if self.drop_last {
            self.dataset.n / self.batch_size
        } else {
            self.dataset.n.div_ceil(self.batch_size)
        }
    }

    /// Where the loader stands, for [`Loader::restore`].
    pub fn state(&self) -> LoaderState {
        LoaderState {
            epoch: self.epoch,
            position: self.position,
        }
    }

    /// Continues from a state saved by [`Loader::state`] on a loader with the same dataset, seed
    /// and batch size.
    pub fn restore(&mut self, state: LoaderState) -> Result<()> {
        if state.position > self.dataset.n {
            return Err(Error::InvalidArgument {
                op: "Loader::restore",
                reason: format!(
                    "position {} is past the end of the {} images of {}",
                    state.position, self.dataset.n, self.dataset.source
                ),
            });
        }
        self.epoch = state.epoch;
        self.position = state.position;
        self.order = self.order_for(state.epoch);
        Ok(())
    }

    /// The next batch, moving to a freshly shuffled epoch when the current one is used up.
    pub fn next_batch(&mut self) -> Result<Batch> {
        // A restored state may sit at an epoch's end; normally the rollover below has happened.
        self.roll_over_if_done();
        let take = self.batch_size.min(self.dataset.n - self.position);
        let start = self.position;
        self.position += take;
        let batch = self.assemble(start, take);
        // Eagerly, so that `epoch()` and `state()` between batches name the next batch's epoch.
        self.roll_over_if_done();
        batch
    }

    fn roll_over_if_done(&mut self) {
        let remaining = self.dataset.n - self.position;
        if remaining == 0 || (self.drop_last && remaining < self.batch_size) {
            self.epoch += 1;
            self.position = 0;
            self.order = self.order_for(self.epoch);
        }
    }

    fn assemble(&self, start: usize, take: usize) -> Result<Batch> {
        let indices = &self.order[start..start + take];
        let d = self.dataset;
        let mut values = Vec::with_capacity(take * d.image_len());
        for &i in indices {
            let image = d.image(i);
            match self.scale {
                Scale::ZeroToOne => values.extend_from_slice(image),
                Scale::MinusOneToOne => values.extend(image.iter().map(|v| 2.0 * v - 1.0)),
            }
        }
        let images = Tensor::from_vec(values, &[take, d.channels, d.height, d.width], Device::Cpu)?;
        let labels = d
            .labels
            .as_ref()
            .map(|l| indices.iter().map(|&i| l[i] as usize).collect());
        Ok(Batch { images, labels })
    }

    /// The visiting order of `epoch`: each epoch reads its own slice of the Philox stream (2^32
    /// blocks apart, far more than a shuffle of any in-memory dataset consumes).
    fn order_for(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.n).collect();
        if self.shuffle {
            Rng::from_state(self.seed, epoch << 32, 4).shuffle(&mut order);
        }
        order
    }
}

/// The training loop reads batches through this; the position is "epoch index".
impl BatchSource for Loader<'_> {
    fn next_batch(&mut self) -> std::result::Result<(Tensor, Option<Vec<usize>>), BoxError> {
        let batch = Loader::next_batch(self)?;
        Ok((batch.images, batch.labels))
    }

    fn position(&self) -> String {
        let s = self.state();
        format!("{} {}", s.epoch, s.position)
    }

    fn set_position(&mut self, position: &str) -> std::result::Result<(), BoxError> {
        let parts: Vec<&str> = position.split_whitespace().collect();
        let parsed = match parts.as_slice() {
            [epoch, index] => epoch.parse().ok().zip(index.parse().ok()),
            _ => None,
        };
        let (epoch, position) = parsed.ok_or_else(|| {
            format!("malformed data position {position:?}; expected \"epoch index\"")
        })?;
        Ok(self.restore(LoaderState { epoch, position })?)
    }
}
