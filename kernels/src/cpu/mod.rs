//! CPU kernels. Parallel with rayon; deterministic for any thread count.

pub mod attention;
pub mod conv;
pub mod elementwise;
pub mod gemm;
pub mod image;
pub mod index;
pub mod lanes;
pub mod loss;
pub mod maxout;
pub mod norm;
pub mod optim;
pub mod pool;
pub mod reduce;
pub mod softmax;
pub mod strided;

/// Below this many output elements a kernel runs on the calling thread: rayon's fork/join costs
/// more than it saves on tiny tensors.
pub const PAR_THRESHOLD: usize = 1 << 15;
