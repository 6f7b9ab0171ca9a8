//! Data sources. MNIST/Fashion-MNIST IDX files, the embedded 8×8 digits and image folders
//! arrive with the reproduction issue; the 2-D mixtures are here for the first training tests.

mod mixture;

pub use mixture::Mixture2d;
