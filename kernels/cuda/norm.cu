// Batch normalisation over a contiguous [outer, channels, inner] buffer ([N, C] has inner = 1,
// [N, C, H, W] has inner = H·W): per-channel statistics, the normalise-and-affine pass, and the
// fused backward (one reduction pass for both sums, one elementwise pass for dx).
//
// Statistics use one block per channel: thread t visits the channel's elements t, t + 256, ...
// in order and the block combines the 256 partials by a fixed tree, so results are reproducible
// run to run. The variance is a second pass around the mean (the channel is re-read from L2),
// as the CPU kernel does: the one-pass E[x²] − E[x]² loses digits when |mean| ≫ std.

#define NORM_THREADS 256

template <typename T> __device__ __forceinline__ T block_sum(T v, T* scratch) {
    scratch[threadIdx.x] = v;
    __syncthreads();
#pragma unroll
    for (unsigned half = NORM_THREADS / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half) scratch[threadIdx.x] += scratch[threadIdx.x + half];
        __syncthreads();
    }
    const T total = scratch[0];
    __syncthreads();  // scratch is reused by the next call
    return total;
}

// Index of element j (0 <= j < outer·inner) of channel c.
__device__ __forceinline__ size_t channel_index(unsigned j, unsigned c, unsigned channels,
                                                unsigned inner) {
    const unsigned n = j / inner, i = j - n * inner;
    return ((size_t)n * channels + c) * inner + i;
}

// mean[c] and biased variance var[c].
template <typename T>
__device__ __forceinline__ void bn_stats_body(unsigned outer, unsigned channels, unsigned inner,
                                              const T* __restrict__ x, T* __restrict__ mean,
                                              T* __restrict__ var) {
    __shared__ T scratch[NORM_THREADS];
    const unsigned c = blockIdx.x, count = outer * inner;
    T s = T(0);
    for (unsigned j = threadIdx.x; j < count; j += NORM_THREADS)
        s += x[channel_index(j, c, channels, inner)];
    const T mu = block_sum(s, scratch) / T(count);
    T q = T(0);
    for (unsigned j = threadIdx.x; j < count; j += NORM_THREADS) {
        const T d = x[channel_index(j, c, channels, inner)] - mu;
        q += d * d;
    }
    const T v = block_sum(q, scratch) / T(count);
    if (threadIdx.x == 0) {
        mean[c] = mu;
        var[c] = v;
    }
}

// y = (x − mean[c]) · scale[c] + shift[c]; the host folds gamma, beta, eps into scale/shift.
template <typename T>
__device__ __forceinline__ void bn_apply_body(unsigned total, unsigned channels, unsigned inner,
                                              const T* __restrict__ x, const T* __restrict__ mean,
                                              const T* __restrict__ scale,
                                              const T* __restrict__ shift, T* __restrict__ y) {
    for (unsigned j = blockIdx.x * blockDim.x + threadIdx.x; j < total;
         j += gridDim.x * blockDim.x) {
        const unsigned c = (j / inner) % channels;
        y[j] = (x[j] - mean[c]) * scale[c] + shift[c];
    }
}

// sum_dy[c] = Σ dy and sum_dy_xhat[c] = Σ dy · (x − mean) · invstd, in one pass.
template <typename T>
__device__ __forceinline__ void bn_grad_sums_body(unsigned outer, unsigned channels,
                                                  unsigned inner, const T* __restrict__ x,
                                                  const T* __restrict__ dy,
                                                  const T* __restrict__ mean,
                                                  const T* __restrict__ invstd,
                                                  T* __restrict__ sum_dy,
                                                  T* __restrict__ sum_dy_xhat) {
    __shared__ T scratch[NORM_THREADS];
    const unsigned c = blockIdx.x, count = outer * inner;
    const T mu = mean[c];
    T s = T(0), sx = T(0);
    for (unsigned j = threadIdx.x; j < count; j += NORM_THREADS) {
        const size_t at = channel_index(j, c, channels, inner);
        const T g = dy[at];
        s += g;
        sx += g * (x[at] - mu);
    }
    const T total = block_sum(s, scratch);
    const T total_x = block_sum(sx, scratch);
    if (threadIdx.x == 0) {
        sum_dy[c] = total;
        sum_dy_xhat[c] = total_x * invstd[c];
    }
}

// dx = gamma · invstd / M · (M · dy − sum_dy − xhat · sum_dy_xhat)   (gamma may be null: 1).
template <typename T>
__device__ __forceinline__ void bn_input_grad_body(
    unsigned total, unsigned channels, unsigned inner, unsigned per_channel,
    const T* __restrict__ x, const T* __restrict__ dy, const T* __restrict__ mean,
    const T* __restrict__ invstd, const T* __restrict__ gamma, const T* __restrict__ sum_dy,
    const T* __restrict__ sum_dy_xhat, T* __restrict__ dx) {
    const T m = T(per_channel);
    for (unsigned j = blockIdx.x * blockDim.x + threadIdx.x; j < total;
         j += gridDim.x * blockDim.x) {
        const unsigned c = (j / inner) % channels;
        const T is = invstd[c];
        const T k = (gamma ? gamma[c] : T(1)) * is / m;
        const T xhat = (x[j] - mean[c]) * is;
        dx[j] = k * (m * dy[j] - sum_dy[c] - xhat * sum_dy_xhat[c]);
    }
}

#define NORM_KERNELS(T, sfx)                                                                    \
    extern "C" __global__ void __launch_bounds__(NORM_THREADS)                                  \
        bn_stats_##sfx(unsigned outer, unsigned channels, unsigned inner, const T* x, T* mean,  \
                       T* var) {                                                                \
        bn_stats_body<T>(outer, channels, inner, x, mean, var);                                 \
    }                                                                                           \
    extern "C" __global__ void bn_apply_##sfx(unsigned total, unsigned channels, unsigned inner,\
                                              const T* x, const T* mean, const T* scale,        \
                                              const T* shift, T* y) {                           \
        bn_apply_body<T>(total, channels, inner, x, mean, scale, shift, y);                     \
    }                                                                                           \
    extern "C" __global__ void __launch_bounds__(NORM_THREADS)                                  \
        bn_grad_sums_##sfx(unsigned outer, unsigned channels, unsigned inner, const T* x,       \
                           const T* dy, const T* mean, const T* invstd, T* sum_dy,              \
                           T* sum_dy_xhat) {                                                    \
        bn_grad_sums_body<T>(outer, channels, inner, x, dy, mean, invstd, sum_dy, sum_dy_xhat); \
    }                                                                                           \
    extern "C" __global__ void bn_input_grad_##sfx(                                             \
        unsigned total, unsigned channels, unsigned inner, unsigned per_channel, const T* x,    \
        const T* dy, const T* mean, const T* invstd, const T* gamma, const T* sum_dy,           \
        const T* sum_dy_xhat, T* dx) {                                                          \
        bn_input_grad_body<T>(total, channels, inner, per_channel, x, dy, mean, invstd, gamma,  \
                              sum_dy, sum_dy_xhat, dx);                                         \
    }
NORM_KERNELS(float, f32)
NORM_KERNELS(double, f64)
