// Spectral normalisation's power iteration (Miyato et al. 2018) on the weight viewed as a
// matrix W [rows, cols]: one step is
//     v = normalize(Wᵀ u),   u = normalize(W v)     with normalize(x) = x / max(||x||, eps),
// as nn/src/layers/spectral_norm.rs does on the CPU; σ = u · W v is then computed by the layer.
// The two products are matrix-vector products, which GEMM tiles would waste 127/128 of, so they
// have their own kernels; every sum runs in a fixed order (reproducible).
//
//  * gemv_t: out[j] = Σ_i W[i, j] · u[i]. One thread per column j walking the rows: neighbouring
//    threads read neighbouring columns of a row (coalesced).
//  * gemv:   out[i] = Σ_j W[i, j] · v[j]. One warp per row: lanes stride along the row
//    (coalesced), then a fixed butterfly of shuffles combines the 32 partial sums.
//  * normalize: one block; squares summed per thread in order, then a fixed tree.

#define SN_THREADS 256

__device__ __forceinline__ float sn_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double sn_sqrt(double x) { return sqrt(x); }

template <typename T>
__device__ __forceinline__ void gemv_t_body(unsigned rows, unsigned cols, const T* __restrict__ w,
                                            const T* __restrict__ u, T* __restrict__ out) {
    for (unsigned j = blockIdx.x * blockDim.x + threadIdx.x; j < cols;
         j += gridDim.x * blockDim.x) {
        T s = T(0);
        for (unsigned i = 0; i < rows; ++i) s += w[(size_t)i * cols + j] * u[i];
        out[j] = s;
    }
}

template <typename T>
__device__ __forceinline__ void gemv_body(unsigned rows, unsigned cols, const T* __restrict__ w,
                                          const T* __restrict__ v, T* __restrict__ out) {
    const unsigned lane = threadIdx.x & 31;
    const unsigned warps = (gridDim.x * blockDim.x) >> 5;
    for (unsigned i = (blockIdx.x * blockDim.x + threadIdx.x) >> 5; i < rows; i += warps) {
        const T* row = w + (size_t)i * cols;
        T s = T(0);
        for (unsigned j = lane; j < cols; j += 32) s += row[j] * v[j];
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
        if (lane == 0) out[i] = s;
    }
}

// out = x / max(||x||, eps), one block.
template <typename T>
__device__ __forceinline__ void normalize_body(unsigned n, const T* __restrict__ x, T eps,
                                               T* __restrict__ out) {
    __shared__ T part[SN_THREADS];
    T s = T(0);
    for (unsigned i = threadIdx.x; i < n; i += SN_THREADS) s += x[i] * x[i];
    part[threadIdx.x] = s;
    __syncthreads();
#pragma unroll
    for (unsigned half = SN_THREADS / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
        __syncthreads();
    }
    const T norm = sn_sqrt(part[0]);
    const T inv = T(1) / (norm > eps ? norm : eps);
    for (unsigned i = threadIdx.x; i < n; i += SN_THREADS) out[i] = x[i] * inv;
}

#define SPECTRAL_KERNELS(T, sfx)                                                                \
    extern "C" __global__ void sn_gemv_t_##sfx(unsigned rows, unsigned cols, const T* w,        \
                                               const T* u, T* out) {                            \
        gemv_t_body<T>(rows, cols, w, u, out);                                                  \
    }                                                                                           \
    extern "C" __global__ void sn_gemv_##sfx(unsigned rows, unsigned cols, const T* w,          \
                                             const T* v, T* out) {                              \
        gemv_body<T>(rows, cols, w, v, out);                                                    \
    }                                                                                           \
    extern "C" __global__ void __launch_bounds__(SN_THREADS)                                    \
        sn_normalize_##sfx(unsigned n, const T* x, T eps, T* out) {                             \
        normalize_body<T>(n, x, eps, out);                                                      \
    }
SPECTRAL_KERNELS(float, f32)
SPECTRAL_KERNELS(double, f64)
