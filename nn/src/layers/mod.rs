//! Layers, one per file.

mod activation;
mod linear;
mod sequential;

pub use activation::Activation;
pub use linear::Linear;
pub use sequential::Sequential;
