//! Data sources: MNIST-format IDX files, the embedded 8×8 digits, image folders and 2-D
//! Gaussian mixtures, with seeded batching.

mod dataset;
mod error;
pub mod idx;
mod limits;
mod loader;
mod mixture;

pub use dataset::{decode_square_image, Channels, ImageDataset, Split, UNLABELLED};
pub use error::DataError;
pub use limits::DataLimits;
pub use loader::{Batch, Loader, LoaderState, Scale};
pub use mixture::Mixture2d;
