// Softmax and log-softmax along the middle axis of a contiguous [outer, n, inner] buffer,
// forward and backward, each in one kernel (the lane is read from global memory once per pass
// and stays in L1/L2 between passes).
//
// inner == 1 (the usual last-axis case): one block of 256 threads per row; the maximum and the
// sum are block reductions with a fixed tree, so a row's result does not depend on anything but
// its length. inner > 1: one thread per lane, walking the lane with stride `inner`, so the
// threads of a warp read neighbouring lanes' elements together (coalesced).
// Stable like the CPU kernel: exp(x − max); a lane of −inf gives NaN, as in PyTorch.

#define SM_THREADS 256

__device__ __forceinline__ float s_exp(float x) { return expf(x); }
__device__ __forceinline__ double s_exp(double x) { return exp(x); }
__device__ __forceinline__ float s_log(float x) { return logf(x); }
__device__ __forceinline__ double s_log(double x) { return log(x); }

template <typename T, bool IS_MAX>
__device__ __forceinline__ T block_reduce(T v, T* scratch) {
    scratch[threadIdx.x] = v;
    __syncthreads();
#pragma unroll
    for (unsigned half = SM_THREADS / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half) {
            const T a = scratch[threadIdx.x], b = scratch[threadIdx.x + half];
            scratch[threadIdx.x] = IS_MAX ? ((b > a || b != b) ? b : a) : a + b;
        }
        __syncthreads();
    }
    const T r = scratch[0];
    __syncthreads();
    return r;
}

// Forward, one block per row.
template <typename T, bool LOG>
__device__ __forceinline__ void softmax_rows_body(unsigned n, const T* __restrict__ x,
                                                  T* __restrict__ y) {
    __shared__ T scratch[SM_THREADS];
    const T* xr = x + (size_t)blockIdx.x * n;
    T* yr = y + (size_t)blockIdx.x * n;
    T m = -T(1) / T(0);
    for (unsigned i = threadIdx.x; i < n; i += SM_THREADS) {
        const T v = xr[i];
        m = (v > m || v != v) ? v : m;
    }
    m = block_reduce<T, true>(m, scratch);
    T s = T(0);
    for (unsigned i = threadIdx.x; i < n; i += SM_THREADS) s += s_exp(xr[i] - m);
    s = block_reduce<T, false>(s, scratch);
    if (LOG) {
        const T ls = s_log(s);
        for (unsigned i = threadIdx.x; i < n; i += SM_THREADS) yr[i] = (xr[i] - m) - ls;
    } else {
        const T inv = T(1) / s;
        for (unsigned i = threadIdx.x; i < n; i += SM_THREADS) yr[i] = s_exp(xr[i] - m) * inv;
    }
}

// Backward from the output y and its gradient g, one block per row:
//   softmax:     dx = y · (g − Σ g·y)        log-softmax: dx = g − exp(y) · Σ g
template <typename T, bool LOG>
__device__ __forceinline__ void softmax_bwd_rows_body(unsigned n, const T* __restrict__ y,
                                                      const T* __restrict__ g,
                                                      T* __restrict__ dx) {
    __shared__ T scratch[SM_THREADS];
    const size_t row = (size_t)blockIdx.x * n;
    T s = T(0);
    for (unsigned i = threadIdx.x; i < n; i += SM_THREADS)
        s += LOG ? g[row + i] : g[row + i] * y[row + i];
    s = block_reduce<T, false>(s, scratch);
    for (unsigned i = threadIdx.x; i < n; i += SM_THREADS) {
        const T yv = y[row + i], gv = g[row + i];
        dx[row + i] = LOG ? gv - s_exp(yv) * s : yv * (gv - s);
    }
}

// Forward, one thread per lane (inner > 1).
template <typename T, bool LOG>
__device__ __forceinline__ void softmax_cols_body(unsigned outer, unsigned n, unsigned inner,
                                                  const T* __restrict__ x, T* __restrict__ y) {
    const unsigned lanes = outer * inner;
    for (unsigned l = blockIdx.x * blockDim.x + threadIdx.x; l < lanes;
         l += gridDim.x * blockDim.x) {
        const unsigned o = l / inner, i = l - o * inner;
        const size_t base = (size_t)o * n * inner + i;
        T m = -T(1) / T(0);
        for (unsigned k = 0; k < n; ++k) {
            const T v = x[base + (size_t)k * inner];
            m = (v > m || v != v) ? v : m;
        }
        T s = T(0);
        for (unsigned k = 0; k < n; ++k) s += s_exp(x[base + (size_t)k * inner] - m);
        const T ls = s_log(s), inv = T(1) / s;
        for (unsigned k = 0; k < n; ++k) {
            const size_t at = base + (size_t)k * inner;
            y[at] = LOG ? (x[at] - m) - ls : s_exp(x[at] - m) * inv;
        }
    }
}

template <typename T, bool LOG>
__device__ __forceinline__ void softmax_bwd_cols_body(unsigned outer, unsigned n, unsigned inner,
                                                      const T* __restrict__ y,
                                                      const T* __restrict__ g,
                                                      T* __restrict__ dx) {
    const unsigned lanes = outer * inner;
    for (unsigned l = blockIdx.x * blockDim.x + threadIdx.x; l < lanes;
         l += gridDim.x * blockDim.x) {
        const unsigned o = l / inner, i = l - o * inner;
        const size_t base = (size_t)o * n * inner + i;
        T s = T(0);
        for (unsigned k = 0; k < n; ++k) {
            const size_t at = base + (size_t)k * inner;
            s += LOG ? g[at] : g[at] * y[at];
        }
        for (unsigned k = 0; k < n; ++k) {
            const size_t at = base + (size_t)k * inner;
            dx[at] = LOG ? g[at] - s_exp(y[at]) * s : y[at] * (g[at] - s);
        }
    }
}

#define SOFTMAX_KERNELS(name, LOG, T, sfx)                                                      \
    extern "C" __global__ void __launch_bounds__(SM_THREADS)                                    \
        name##_rows_##sfx(unsigned n, const T* x, T* y) {                                       \
        softmax_rows_body<T, LOG>(n, x, y);                                                     \
    }                                                                                           \
    extern "C" __global__ void __launch_bounds__(SM_THREADS)                                    \
        name##_bwd_rows_##sfx(unsigned n, const T* y, const T* g, T* dx) {                      \
        softmax_bwd_rows_body<T, LOG>(n, y, g, dx);                                             \
    }                                                                                           \
    extern "C" __global__ void name##_cols_##sfx(unsigned outer, unsigned n, unsigned inner,    \
                                                 const T* x, T* y) {                            \
        softmax_cols_body<T, LOG>(outer, n, inner, x, y);                                       \
    }                                                                                           \
    extern "C" __global__ void name##_bwd_cols_##sfx(unsigned outer, unsigned n, unsigned inner,\
                                                     const T* y, const T* g, T* dx) {           \
        softmax_bwd_cols_body<T, LOG>(outer, n, inner, y, g, dx);                               \
    }
SOFTMAX_KERNELS(softmax, false, float, f32)
SOFTMAX_KERNELS(softmax, false, double, f64)
SOFTMAX_KERNELS(log_softmax, true, float, f32)
SOFTMAX_KERNELS(log_softmax, true, double, f64)
