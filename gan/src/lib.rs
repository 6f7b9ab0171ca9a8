//! saddle's GAN models, data loaders, metrics and training loops (arriving with the GAN issues).

pub use saddle_nn as nn;
