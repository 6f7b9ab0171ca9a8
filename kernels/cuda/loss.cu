// Binary cross-entropy with logits, the GAN discriminator's loss: per-element terms summed in a
// fixed order, and the gradient map.
//
// The sum is two launches: bce_logits_partial reduces chunks of LOSS_CHUNK elements (one block
// each, fixed tree), then the host sums the partials with reduce_rows (scale 1/n for the mean).
// The gradient takes the upstream gradient as a device pointer so that a training step never
// copies a scalar back to the host.

#define LOSS_THREADS 256
#define LOSS_CHUNK 4096

__device__ __forceinline__ float l_exp(float x) { return expf(x); }
__device__ __forceinline__ double l_exp(double x) { return exp(x); }
__device__ __forceinline__ float l_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double l_log1p(double x) { return log1p(x); }

// max(x, 0) − x·t + ln(1 + e^−|x|): never overflows.
template <typename T> __device__ __forceinline__ T bce_term(T x, T t) {
    return (x > T(0) ? x : T(0)) - x * t + l_log1p(l_exp(-(x < T(0) ? -x : x)));
}

template <typename T> __device__ __forceinline__ T sigmoid_of(T x) {
    if (x >= T(0)) return T(1) / (T(1) + l_exp(-x));
    const T e = l_exp(x);
    return e / (T(1) + e);
}

template <typename T>
__device__ __forceinline__ void bce_partial_body(unsigned n, const T* __restrict__ x,
                                                 const T* __restrict__ t,
                                                 T* __restrict__ partial) {
    __shared__ T scratch[LOSS_THREADS];
    const unsigned start = blockIdx.x * LOSS_CHUNK;
    const unsigned end = min(n, start + LOSS_CHUNK);
    T s = T(0);
    for (unsigned i = start + threadIdx.x; i < end; i += LOSS_THREADS) s += bce_term(x[i], t[i]);
    scratch[threadIdx.x] = s;
    __syncthreads();
#pragma unroll
    for (unsigned half = LOSS_THREADS / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half) scratch[threadIdx.x] += scratch[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = scratch[0];
}

// dx = (sigmoid(x) − t) · g[0] · scale   (scale = 1/n for a mean).
template <typename T>
__device__ __forceinline__ void bce_grad_body(unsigned n, const T* __restrict__ x,
                                              const T* __restrict__ t, const T* __restrict__ g,
                                              T scale, T* __restrict__ dx) {
    const T k = g[0] * scale;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        dx[i] = (sigmoid_of(x[i]) - t[i]) * k;
}

#define LOSS_KERNELS(T, sfx)                                                                    \
    extern "C" __global__ void __launch_bounds__(LOSS_THREADS)                                  \
        bce_logits_partial_##sfx(unsigned n, const T* x, const T* t, T* partial) {              \
        bce_partial_body<T>(n, x, t, partial);                                                  \
    }                                                                                           \
    extern "C" __global__ void bce_logits_grad_##sfx(unsigned n, const T* x, const T* t,        \
                                                     const T* g, T scale, T* dx) {              \
        bce_grad_body<T>(n, x, t, g, scale, dx);                                                \
    }
LOSS_KERNELS(float, f32)
LOSS_KERNELS(double, f64)
