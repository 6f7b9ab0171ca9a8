//! Bounds on what the data readers accept. Every reader checks the sizes a file *declares* (an
//! IDX header's dimensions) against these before anything of that size is allocated, so a
//! small corrupt or hostile file cannot cost gigabytes.

/// The largest inputs the data readers accept; [`DataLimits::default`] suits every dataset this
/// project uses with a wide margin. A user with bigger data raises a field and passes the limits
/// to [`ImageDataset::mnist_with`](super::ImageDataset::mnist_with) or the `*_with` readers of
/// [`idx`](super::idx):
///
/// ```
/// use saddle_gan::data::DataLimits;
/// let limits = DataLimits { idx_max_bytes: 1 << 30, ..DataLimits::default() };
/// ```
///
/// Errors from a limit name the file, what it declares, the limit and the field that sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataLimits {
    /// Most bytes of data (after the header) one IDX file may declare. Default 256 MiB: five
    /// times MNIST's 47 MB of training images, enough for MNIST, Fashion-MNIST, KMNIST and the
    /// EMNIST balanced, letters and digits splits (EMNIST byclass / bymerge, 547 MB, need more).
    /// The dataset holds the pixels as f32, so a file at the limit costs 1.25 GiB in all.
    pub idx_max_bytes: u64,
}

impl Default for DataLimits {
    fn default() -> Self {
        DataLimits {
            idx_max_bytes: 256 << 20,
        }
    }
}
