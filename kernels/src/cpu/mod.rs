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

/// A vector of `len` elements left uninitialised, for an output a kernel overwrites completely
/// ([`gemm::gemm_uninit`]): allocating it costs no pass over the memory, where `vec![0.0; len]`
/// writes every element first. [`assume_init`] turns it into a `Vec<T>` once written.
pub fn uninit_vec<T>(len: usize) -> Vec<std::mem::MaybeUninit<T>> {
    let mut v = Vec::with_capacity(len);
    // SAFETY: `MaybeUninit` elements need no initialisation, and the capacity is `len`.
    unsafe { v.set_len(len) };
    v
}

/// The vector of values after every element of `v` has been written.
///
/// # Safety
/// Every element of `v` must be initialised.
pub unsafe fn assume_init<T>(v: Vec<std::mem::MaybeUninit<T>>) -> Vec<T> {
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: same allocation, length and capacity; `MaybeUninit<T>` has `T`'s layout, and the
    // caller guarantees the elements are initialised.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<T>(), v.len(), v.capacity()) }
}
