// Data movement by index: index_select and gather with their scatter-add backwards,
// masked_select (count, compact) with its backward (expand), and rot90.
//
// All buffers are contiguous and row-major; indices are unsigned 32-bit, checked against their
// axis by the host (the engine reports out-of-range indices before anything is launched). Index
// arithmetic is 32-bit: the host refuses tensors of 2^31 elements or more.
//
// The scatter-adds (backwards of index_select and gather) accumulate with atomicAdd into a
// zeroed output, one thread per gradient element: several gradient elements may land on the
// same input element (repeated indices), and a gather formulation would have to search all
// indices for each input element. atomicAdd on double needs sm_60, the modules' minimum. The
// order of the additions is not fixed, so repeated indices give sums that may differ from the
// CPU's (fixed index order) by rounding.

#define MAX_RANK 8
// Threads per block of the mask kernels: a multiple of the warp size; the per-warp counts of
// one tile live in shared memory (MASK_THREADS / 32 of them).
#define MASK_THREADS 256
#define MASK_WARPS (MASK_THREADS / 32)

#define GRID_STRIDE(i, n)                                                                       \
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += gridDim.x * blockDim.x)

// ------------------------------------------------------------------------------ index_select
// x viewed as [outer, n, inner], idx of length m (each < n), y as [outer, m, inner]:
// y[o, i, r] = x[o, idx[i], r].

template <typename T>
__device__ __forceinline__ void index_select_body(unsigned outer, unsigned n, unsigned m,
                                                  unsigned inner, const unsigned* __restrict__ idx,
                                                  const T* __restrict__ x, T* __restrict__ y) {
    const unsigned total = outer * m * inner;
    GRID_STRIDE(p, total) {
        const unsigned r = p % inner, q = p / inner;
        const unsigned i = q % m, o = q / m;
        y[p] = x[(o * n + idx[i]) * inner + r];
    }
}

// The backward: dx (zeroed by the host, [outer, n, inner]) += g ([outer, m, inner]) scattered
// to the rows idx selected.
template <typename T>
__device__ __forceinline__ void index_add_body(unsigned outer, unsigned n, unsigned m,
                                               unsigned inner, const unsigned* __restrict__ idx,
                                               const T* __restrict__ g, T* __restrict__ dx) {
    const unsigned total = outer * m * inner;
    GRID_STRIDE(p, total) {
        const unsigned r = p % inner, q = p / inner;
        const unsigned i = q % m, o = q / m;
        atomicAdd(dx + (o * n + idx[i]) * inner + r, g[p]);
    }
}

// ------------------------------------------------------------------------------------ gather
// torch.gather: `shape` is the index's (and the output's) shape, `stride` the row-major strides
// of the contiguous source. Output p at coordinates c reads the source at c with c[dim] replaced
// by idx[p].
struct GatherArgs {
    unsigned rank;
    unsigned dim;
    unsigned shape[MAX_RANK];
    unsigned stride[MAX_RANK];
};

// Offset in the source of the element index position `p` points at.
__device__ __forceinline__ unsigned gather_offset(const GatherArgs& a, unsigned p,
                                                  unsigned index) {
    unsigned off = 0;
#pragma unroll
    for (int d = MAX_RANK - 1; d >= 0; --d) {
        if (d < (int)a.rank) {
            const unsigned n = a.shape[d];
            const unsigned c = p % n;
            p /= n;
            off += ((unsigned)d == a.dim ? index : c) * a.stride[d];
        }
    }
    return off;
}

template <typename T>
__device__ __forceinline__ void gather_body(unsigned total, GatherArgs a,
                                            const unsigned* __restrict__ idx,
                                            const T* __restrict__ x, T* __restrict__ y) {
    GRID_STRIDE(p, total) y[p] = x[gather_offset(a, p, idx[p])];
}

// The backward: dx (zeroed by the host, the source's shape) += g at the positions read.
template <typename T>
__device__ __forceinline__ void scatter_add_body(unsigned total, GatherArgs a,
                                                 const unsigned* __restrict__ idx,
                                                 const T* __restrict__ g, T* __restrict__ dx) {
    GRID_STRIDE(p, total) atomicAdd(dx + gather_offset(a, p, idx[p]), g[p]);
}

// ----------------------------------------------------------------------------- masked_select
// The mask is split into chunks of `chunk` elements, one block each. Pass 1 (mask_count) writes
// each chunk's number of non-zero mask elements; the host reads them back (the one host
// synchronisation of masked_select: the output's length must be known to allocate it), turns
// them into exclusive prefix sums and uploads those as `offsets`. Pass 2 walks each chunk again
// in tiles of MASK_THREADS elements, in order, ranking the set elements of a tile by a warp
// ballot plus the counts of the warps before it: selected element j of the whole mask goes to
// (or, for the backward, comes from) position j, the row-major order the CPU uses.
//
// Every loop below runs the same number of iterations in all threads of a block (its bounds
// depend only on the block), so the barriers inside are reached uniformly.

__device__ __forceinline__ bool is_set(float v) { return v != 0.f; }   // NaN counts as set
__device__ __forceinline__ bool is_set(double v) { return v != 0.0; }

template <typename T>
__device__ __forceinline__ void mask_count_body(unsigned n, unsigned chunk,
                                                const T* __restrict__ mask,
                                                unsigned* __restrict__ counts) {
    const unsigned start = blockIdx.x * chunk;
    const unsigned end = min(start + chunk, n);
    unsigned count = 0;
    for (unsigned base = start; base < end; base += MASK_THREADS) {
        const unsigned i = base + threadIdx.x;
        count += __syncthreads_count(i < end && is_set(mask[i]));
    }
    if (threadIdx.x == 0) counts[blockIdx.x] = count;
}

// EXPAND == false (compact): y[offsets[b] + rank] = x[i] for each set mask[i].
// EXPAND == true  (expand):  y[i] = set ? x[offsets[b] + rank] : 0 for every i (the gradient
// of compact: the selected values go back to their places, zeros elsewhere).
// `limit` is the packed buffer's length (the total count).
template <typename T, bool EXPAND>
__device__ __forceinline__ void mask_move_body(unsigned n, unsigned chunk, unsigned limit,
                                               const T* __restrict__ mask,
                                               const unsigned* __restrict__ offsets,
                                               const T* __restrict__ x, T* __restrict__ y) {
    __shared__ unsigned warp_counts[MASK_WARPS];
    const unsigned start = blockIdx.x * chunk;
    const unsigned end = min(start + chunk, n);
    const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    unsigned next = offsets[blockIdx.x];  // output position of the tile's first set element
    for (unsigned base = start; base < end; base += MASK_THREADS) {
        const unsigned i = base + threadIdx.x;
        const bool set = i < end && is_set(mask[i]);
        const unsigned ballot = __ballot_sync(0xffffffffu, set);
        if (lane == 0) warp_counts[warp] = __popc(ballot);
        __syncthreads();
        unsigned before = 0, tile = 0;
#pragma unroll
        for (unsigned w = 0; w < MASK_WARPS; ++w) {
            const unsigned c = warp_counts[w];
            before += w < warp ? c : 0;
            tile += c;
        }
        const unsigned at = next + before + __popc(ballot & ((1u << lane) - 1u));
        // `at < limit` (the host's total count) always holds for the mask that was counted; the
        // test only keeps a mismatched mask from reaching past the packed buffer.
        const bool move = set && at < limit;
        if (EXPAND) {
            if (i < end) y[i] = move ? x[at] : T(0);
        } else if (move) {
            y[at] = x[i];
        }
        next += tile;
        // Every thread has read warp_counts before the next tile overwrites it.
        __syncthreads();
    }
}

// -------------------------------------------------------------------------------------- rot90
// `planes` planes of h × w rotated counter-clockwise by k (0..3) quarter turns: the output plane
// is oh × ow (w × h for odd k). Output (i, j) reads the input at the position below (the CPU
// kernel's table).
template <typename T>
__device__ __forceinline__ void rot90_body(unsigned planes, unsigned h, unsigned w, unsigned k,
                                           const T* __restrict__ x, T* __restrict__ y) {
    const unsigned oh = (k & 1) ? w : h, ow = (k & 1) ? h : w;
    const unsigned total = planes * h * w;
    GRID_STRIDE(p, total) {
        const unsigned j = p % ow, q = p / ow;
        const unsigned i = q % oh, plane = q / oh;
        unsigned r, c;
        switch (k) {
            case 0: r = i; c = j; break;
            case 1: r = j; c = w - 1 - i; break;
            case 2: r = h - 1 - i; c = w - 1 - j; break;
            default: r = h - 1 - j; c = i; break;
        }
        y[p] = x[(plane * h + r) * w + c];
    }
}

// ----------------------------------------------------------------------------------- kernels

#define INDEX_KERNELS(T, suffix)                                                                \
    extern "C" __global__ void index_select_##suffix(unsigned outer, unsigned n, unsigned m,    \
                                                     unsigned inner, const unsigned* idx,       \
                                                     const T* x, T* y) {                        \
        index_select_body<T>(outer, n, m, inner, idx, x, y);                                    \
    }                                                                                           \
    extern "C" __global__ void index_add_##suffix(unsigned outer, unsigned n, unsigned m,       \
                                                  unsigned inner, const unsigned* idx,          \
                                                  const T* g, T* dx) {                          \
        index_add_body<T>(outer, n, m, inner, idx, g, dx);                                      \
    }                                                                                           \
    extern "C" __global__ void gather_##suffix(unsigned total, GatherArgs a,                    \
                                               const unsigned* idx, const T* x, T* y) {         \
        gather_body<T>(total, a, idx, x, y);                                                    \
    }                                                                                           \
    extern "C" __global__ void scatter_add_##suffix(unsigned total, GatherArgs a,               \
                                                    const unsigned* idx, const T* g, T* dx) {   \
        scatter_add_body<T>(total, a, idx, g, dx);                                              \
    }                                                                                           \
    extern "C" __global__ void __launch_bounds__(MASK_THREADS)                                  \
        mask_count_##suffix(unsigned n, unsigned chunk, const T* mask, unsigned* counts) {      \
        mask_count_body<T>(n, chunk, mask, counts);                                             \
    }                                                                                           \
    extern "C" __global__ void __launch_bounds__(MASK_THREADS)                                  \
        mask_compact_##suffix(unsigned n, unsigned chunk, unsigned limit, const T* mask,        \
                              const unsigned* offsets, const T* x, T* y) {                      \
        mask_move_body<T, false>(n, chunk, limit, mask, offsets, x, y);                         \
    }                                                                                           \
    extern "C" __global__ void __launch_bounds__(MASK_THREADS)                                  \
        mask_expand_##suffix(unsigned n, unsigned chunk, unsigned limit, const T* mask,         \
                             const unsigned* offsets, const T* g, T* dx) {                      \
        mask_move_body<T, true>(n, chunk, limit, mask, offsets, g, dx);                         \
    }                                                                                           \
    extern "C" __global__ void rot90_##suffix(unsigned planes, unsigned h, unsigned w,          \
                                              unsigned k, const T* x, T* y) {                   \
        rot90_body<T>(planes, h, w, k, x, y);                                                   \
    }

INDEX_KERNELS(float, f32)
INDEX_KERNELS(double, f64)
