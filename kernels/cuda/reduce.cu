// Reductions (sum, max, min) along one axis of a contiguous buffer viewed as [outer, n, inner].
//
// Any set of adjacent axes reduces as one middle axis; the host gives other sets one axis run at a
// time. Two kernels, chosen by the host:
//  * reduce_rows (inner == 1): one block per row. Thread t accumulates elements t, t + 256, ... in
//    order, then the block combines its 256 partials by a fixed tree in shared memory. The order
//    depends only on the row length, so results are reproducible run to run. A long single row
//    (a sum over a whole tensor) is reduced in two launches: rows of ROW_CHUNK elements, then the
//    row of partials.
//  * reduce_cols (inner > 1): one thread per output, looping over n in order; neighbouring
//    threads read neighbouring addresses (coalesced), no shared memory.
// Max and min propagate NaN like the CPU kernels (a NaN operand wins).

#define RED_THREADS 256

struct SumOp {
    template <typename T> __device__ __forceinline__ static T identity() { return T(0); }
    template <typename T> __device__ __forceinline__ static T combine(T a, T b) { return a + b; }
    template <typename T> __device__ __forceinline__ static T finish(T a, T scale) { return a * scale; }
};
struct MaxOp {
    template <typename T> __device__ __forceinline__ static T identity() { return -T(1) / T(0); }
    template <typename T> __device__ __forceinline__ static T combine(T a, T b) {
        return (b > a || b != b) ? b : a;
    }
    template <typename T> __device__ __forceinline__ static T finish(T a, T) { return a; }
};
struct MinOp {
    template <typename T> __device__ __forceinline__ static T identity() { return T(1) / T(0); }
    template <typename T> __device__ __forceinline__ static T combine(T a, T b) {
        return (b < a || b != b) ? b : a;
    }
    template <typename T> __device__ __forceinline__ static T finish(T a, T) { return a; }
};

// Row r covers x[r * len .. min((r + 1) * len, total)); y[r] = scale * reduction (scale only
// applies to sums: 1/n makes a mean).
template <typename T, typename Op>
__device__ __forceinline__ void reduce_rows_body(unsigned len, unsigned long long total,
                                                 const T* __restrict__ x, T* __restrict__ y,
                                                 T scale) {
    __shared__ T part[RED_THREADS];
    const unsigned long long start = (unsigned long long)blockIdx.x * len;
    const unsigned long long left = total - start;
    const unsigned count = left < len ? (unsigned)left : len;
    const T* row = x + start;
    T acc = Op::template identity<T>();
    for (unsigned i = threadIdx.x; i < count; i += RED_THREADS) acc = Op::combine(acc, row[i]);
    part[threadIdx.x] = acc;
    __syncthreads();
#pragma unroll
    for (unsigned half = RED_THREADS / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half)
            part[threadIdx.x] = Op::combine(part[threadIdx.x], part[threadIdx.x + half]);
        __syncthreads();
    }
    if (threadIdx.x == 0) y[blockIdx.x] = Op::finish(part[0], scale);
}

template <typename T, typename Op>
__device__ __forceinline__ void reduce_cols_body(unsigned outer, unsigned n, unsigned inner,
                                                 const T* __restrict__ x, T* __restrict__ y,
                                                 T scale) {
    const unsigned outputs = outer * inner;
    for (unsigned j = blockIdx.x * blockDim.x + threadIdx.x; j < outputs;
         j += gridDim.x * blockDim.x) {
        const unsigned o = j / inner, i = j - o * inner;
        const T* col = x + (size_t)o * n * inner + i;
        T acc = Op::template identity<T>();
        for (unsigned k = 0; k < n; ++k) acc = Op::combine(acc, col[(size_t)k * inner]);
        y[j] = Op::finish(acc, scale);
    }
}

#define REDUCE_KERNELS(name, Op, T, suffix)                                                     \
    extern "C" __global__ void __launch_bounds__(RED_THREADS)                                   \
        reduce_rows_##name##_##suffix(unsigned len, unsigned long long total, const T* x, T* y, \
                                      T scale) {                                                \
        reduce_rows_body<T, Op>(len, total, x, y, scale);                                       \
    }                                                                                           \
    extern "C" __global__ void reduce_cols_##name##_##suffix(unsigned outer, unsigned n,        \
                                                             unsigned inner, const T* x, T* y,  \
                                                             T scale) {                         \
        reduce_cols_body<T, Op>(outer, n, inner, x, y, scale);                                  \
    }

REDUCE_KERNELS(sum, SumOp, float, f32)
REDUCE_KERNELS(sum, SumOp, double, f64)
REDUCE_KERNELS(max, MaxOp, float, f32)
REDUCE_KERNELS(max, MaxOp, double, f64)
REDUCE_KERNELS(min, MinOp, float, f32)
REDUCE_KERNELS(min, MinOp, double, f64)
