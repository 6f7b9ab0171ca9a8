//! Layers, one per file.

mod activation;
mod layer_norm;
mod linear;
mod sequential;

pub use activation::Activation;
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use sequential::Sequential;
