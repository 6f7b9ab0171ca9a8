// SGEMM on CUDA cores: C = alpha * op(A) · op(B) + beta * C, row-major, batched over blockIdx.z
// (and, at the end of the file, a simple DGEMM for f64). The host puts gemm_tile.cuh in front of
// this file for the argument block, the 128 × 128 block tile and `aligned`.
//
//   op(A)[i][k] = TA ? A[k * lda + i] : A[i * lda + k]      (M × K)
//   op(B)[k][j] = TB ? B[j * ldb + k] : B[k * ldb + j]      (K × N)
//   C[i][j] at C[i * ldc + j]; batch b adds b * stride_{a,b,c} to each pointer.
//
// Tiling. A block of 256 threads computes a 128 × 128 tile of C, walking K in steps of BK = 8.
// Each step stages an A tile (128 × 8) and a B tile (8 × 128) in shared memory, both k-major, so
// the inner loop reads a column of A and a row of B as float4s. Every thread owns an 8 × 8
// sub-tile of C in registers (64 accumulators): per k it loads 8 A values and 8 B values from
// shared memory and issues 64 FMAs, an 8:1 ratio of math to shared loads. The 8 rows of a thread
// are two groups of 4 rows 64 apart (likewise its columns), so that the float4 reads of a warp
// cover contiguous shared-memory words: conflict-free, and two A addresses per warp (broadcast).
// 128 × 128 × 8 is the classic balance for 256 threads: the tile is large enough that each
// element loaded from global memory is used 128 times, small enough (2 × 8 KB double-buffered
// shared memory, ~128 registers per thread) for two blocks per SM.
//
// Pipelining: while the block computes on one shared buffer, each thread already holds the next
// tile's values in registers (loaded before the compute), and stores them into the other buffer
// afterwards: one __syncthreads per K step.
//
// Global loads are float4 when the row of the operand is 16-byte aligned and the 4 elements are
// in bounds; otherwise scalar with zero fill, so any M, N, K and any leading dimension work.
// beta == 0 never reads C (so NaN in an uninitialised C does not leak), like the CPU gemm.

#define BK 8

// Loads the 4 operand values this thread stages for one K step into `r`.
// A tile: element (i, k) of op(A) for i in [m0, m0 + 128), k in [k0, k0 + 8).
template <bool TA>
__device__ __forceinline__ void load_a(const GemmArgs& g, const float* __restrict__ a, bool vec,
                                       int m0, int k0, int tid, float r[4]) {
    if (!TA) {
        // Row-major M × K: 2 threads per row, 4 consecutive k each.
        const int i = m0 + (tid >> 1), k = k0 + (tid & 1) * 4;
        const float* p = a + (long long)i * g.lda + k;
        if (vec && i < g.m && k + 3 < g.k) {
            float4 v = *reinterpret_cast<const float4*>(p);
            r[0] = v.x; r[1] = v.y; r[2] = v.z; r[3] = v.w;
        } else {
#pragma unroll
            for (int j = 0; j < 4; ++j) r[j] = (i < g.m && k + j < g.k) ? p[j] : 0.f;
        }
    } else {
        // Stored K × M: 32 threads per k row, 4 consecutive i each.
        const int k = k0 + (tid >> 5), i = m0 + (tid & 31) * 4;
        const float* p = a + (long long)k * g.lda + i;
        if (vec && k < g.k && i + 3 < g.m) {
            float4 v = *reinterpret_cast<const float4*>(p);
            r[0] = v.x; r[1] = v.y; r[2] = v.z; r[3] = v.w;
        } else {
#pragma unroll
            for (int j = 0; j < 4; ++j) r[j] = (k < g.k && i + j < g.m) ? p[j] : 0.f;
        }
    }
}

template <bool TA>
__device__ __forceinline__ void store_a(float (*as)[BM], int tid, const float r[4]) {
    if (!TA) {
        const int i = tid >> 1, k = (tid & 1) * 4;
#pragma unroll
        for (int j = 0; j < 4; ++j) as[k + j][i] = r[j];
    } else {
        const int k = tid >> 5, i = (tid & 31) * 4;
        *reinterpret_cast<float4*>(&as[k][i]) = make_float4(r[0], r[1], r[2], r[3]);
    }
}

// B tile: element (k, j) of op(B) for k in [k0, k0 + 8), j in [n0, n0 + 128).
template <bool TB>
__device__ __forceinline__ void load_b(const GemmArgs& g, const float* __restrict__ b, bool vec,
                                       int n0, int k0, int tid, float r[4]) {
    if (!TB) {
        const int k = k0 + (tid >> 5), j = n0 + (tid & 31) * 4;
        const float* p = b + (long long)k * g.ldb + j;
        if (vec && k < g.k && j + 3 < g.n) {
            float4 v = *reinterpret_cast<const float4*>(p);
            r[0] = v.x; r[1] = v.y; r[2] = v.z; r[3] = v.w;
        } else {
#pragma unroll
            for (int q = 0; q < 4; ++q) r[q] = (k < g.k && j + q < g.n) ? p[q] : 0.f;
        }
    } else {
        const int j = n0 + (tid >> 1), k = k0 + (tid & 1) * 4;
        const float* p = b + (long long)j * g.ldb + k;
        if (vec && j < g.n && k + 3 < g.k) {
            float4 v = *reinterpret_cast<const float4*>(p);
            r[0] = v.x; r[1] = v.y; r[2] = v.z; r[3] = v.w;
        } else {
#pragma unroll
            for (int q = 0; q < 4; ++q) r[q] = (j < g.n && k + q < g.k) ? p[q] : 0.f;
        }
    }
}

template <bool TB>
__device__ __forceinline__ void store_b(float (*bs)[BN], int tid, const float r[4]) {
    if (!TB) {
        const int k = tid >> 5, j = (tid & 31) * 4;
        *reinterpret_cast<float4*>(&bs[k][j]) = make_float4(r[0], r[1], r[2], r[3]);
    } else {
        const int j = tid >> 1, k = (tid & 1) * 4;
#pragma unroll
        for (int q = 0; q < 4; ++q) bs[k + q][j] = r[q];
    }
}

template <bool TA, bool TB>
__device__ __forceinline__ void sgemm_body(GemmArgs g, const float* __restrict__ a,
                                           const float* __restrict__ b, float* __restrict__ c) {
    __shared__ __align__(16) float as[2][BK][BM];
    __shared__ __align__(16) float bs[2][BK][BN];

    const int tid = threadIdx.x;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    to_batch(g, a, b, c);
    // float4 loads need every row start 16-byte aligned: aligned base and ld a multiple of 4.
    const bool vec_a = aligned(a, 16) && (g.lda & 3) == 0;
    const bool vec_b = aligned(b, 16) && (g.ldb & 3) == 0;

    const int ty = tid >> 4, tx = tid & 15;
    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;

    float ra[4], rb[4];
    const int tiles = (g.k + BK - 1) / BK;
    load_a<TA>(g, a, vec_a, m0, 0, tid, ra);
    load_b<TB>(g, b, vec_b, n0, 0, tid, rb);
    store_a<TA>(as[0], tid, ra);
    store_b<TB>(bs[0], tid, rb);
    __syncthreads();

    for (int t = 0; t < tiles; ++t) {
        const int cur = t & 1;
        const bool more = t + 1 < tiles;
        if (more) {
            load_a<TA>(g, a, vec_a, m0, (t + 1) * BK, tid, ra);
            load_b<TB>(g, b, vec_b, n0, (t + 1) * BK, tid, rb);
        }
#pragma unroll
        for (int k = 0; k < BK; ++k) {
            float fa[8], fb[8];
            const float4 a0 = *reinterpret_cast<const float4*>(&as[cur][k][ty * 4]);
            const float4 a1 = *reinterpret_cast<const float4*>(&as[cur][k][64 + ty * 4]);
            const float4 b0 = *reinterpret_cast<const float4*>(&bs[cur][k][tx * 4]);
            const float4 b1 = *reinterpret_cast<const float4*>(&bs[cur][k][64 + tx * 4]);
            fa[0] = a0.x; fa[1] = a0.y; fa[2] = a0.z; fa[3] = a0.w;
            fa[4] = a1.x; fa[5] = a1.y; fa[6] = a1.z; fa[7] = a1.w;
            fb[0] = b0.x; fb[1] = b0.y; fb[2] = b0.z; fb[3] = b0.w;
            fb[4] = b1.x; fb[5] = b1.y; fb[6] = b1.z; fb[7] = b1.w;
#pragma unroll
            for (int i = 0; i < 8; ++i)
#pragma unroll
                for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(fa[i], fb[j], acc[i][j]);
        }
        if (more) {
            store_a<TA>(as[cur ^ 1], tid, ra);
            store_b<TB>(bs[cur ^ 1], tid, rb);
        }
        __syncthreads();
    }

    const bool vec_c = aligned(c, 16) && (g.ldc & 3) == 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const int row = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4));
        if (row >= g.m) continue;
        float* crow = c + (long long)row * g.ldc;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int col = n0 + h * 64 + tx * 4;
            float v[4];
#pragma unroll
            for (int j = 0; j < 4; ++j) v[j] = g.alpha * acc[i][h * 4 + j];
            if (vec_c && col + 3 < g.n) {
                float4* p = reinterpret_cast<float4*>(crow + col);
                if (g.beta != 0.f) {
                    const float4 old = *p;
                    v[0] = fmaf(g.beta, old.x, v[0]);
                    v[1] = fmaf(g.beta, old.y, v[1]);
                    v[2] = fmaf(g.beta, old.z, v[2]);
                    v[3] = fmaf(g.beta, old.w, v[3]);
                }
                *p = make_float4(v[0], v[1], v[2], v[3]);
            } else {
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    if (col + j < g.n) {
                        float out = v[j];
                        if (g.beta != 0.f) out = fmaf(g.beta, crow[col + j], out);
                        crow[col + j] = out;
                    }
                }
            }
        }
    }
}

#define SGEMM_KERNEL(name, TA, TB)                                                              \
    extern "C" __global__ void __launch_bounds__(THREADS, 2)                                    \
        name(GemmArgs g, const float* a, const float* b, float* c) {                            \
        sgemm_body<TA, TB>(g, a, b, c);                                                         \
    }
SGEMM_KERNEL(sgemm_nn, false, false)
SGEMM_KERNEL(sgemm_nt, false, true)
SGEMM_KERNEL(sgemm_tn, true, false)
SGEMM_KERNEL(sgemm_tt, true, true)

// ------------------------------------------------------------------------------------- DGEMM
// f64: C = alpha * op(A) · op(B) + beta * C with the same operand conventions and arguments as
// above (alpha and beta in double). Correctness first, not speed: a plain shared-memory tiling
// of 32 × 32 of C per 256-thread block, K in steps of 16, each thread owning a 2 × 2 sub-tile
// (rows ty and ty + 16, columns tx and tx + 16). Tiles are staged with the index that is
// contiguous in memory varying fastest across threads (coalesced for every transpose), zero
// filled outside the matrices, so any M, N, K and leading dimension work. The products add in
// K order with one FMA each. beta == 0 never reads C.

#define DG_TILE 32
#define DG_BK 16
#define DG_THREADS 256

struct DGemmArgs {
    int m, n, k;
    int lda, ldb, ldc;
    long long stride_a, stride_b, stride_c;
    double alpha, beta;
};

template <bool TA, bool TB>
__device__ __forceinline__ void dgemm_body(const DGemmArgs& g, const double* __restrict__ a,
                                           const double* __restrict__ b,
                                           double* __restrict__ c) {
    // +1 column: the k-major stores of the non-transposed A tile hit distinct banks.
    __shared__ double as[DG_BK][DG_TILE + 1];  // as[kk][i] = op(A)[m0 + i][k0 + kk]
    __shared__ double bs[DG_BK][DG_TILE + 1];  // bs[kk][j] = op(B)[k0 + kk][n0 + j]
    const long long z = blockIdx.z;
    a += z * g.stride_a;
    b += z * g.stride_b;
    c += z * g.stride_c;
    const int m0 = blockIdx.y * DG_TILE, n0 = blockIdx.x * DG_TILE;
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    double acc[2][2] = {{0.0, 0.0}, {0.0, 0.0}};

    for (int k0 = 0; k0 < g.k; k0 += DG_BK) {
        for (int e = tid; e < DG_TILE * DG_BK; e += DG_THREADS) {
            // A: stored K × M (TA) has i contiguous, stored M × K has k contiguous.
            const int ia = TA ? e % DG_TILE : e / DG_BK;
            const int ka = TA ? e / DG_TILE : e % DG_BK;
            const int gi = m0 + ia, gka = k0 + ka;
            double va = 0.0;
            if (gi < g.m && gka < g.k)
                va = TA ? a[(long long)gka * g.lda + gi] : a[(long long)gi * g.lda + gka];
            as[ka][ia] = va;
            // B: stored N × K (TB) has k contiguous, stored K × N has j contiguous.
            const int jb = TB ? e / DG_BK : e % DG_TILE;
            const int kb = TB ? e % DG_BK : e / DG_TILE;
            const int gj = n0 + jb, gkb = k0 + kb;
            double vb = 0.0;
            if (gj < g.n && gkb < g.k)
                vb = TB ? b[(long long)gj * g.ldb + gkb] : b[(long long)gkb * g.ldb + gj];
            bs[kb][jb] = vb;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < DG_BK; ++kk) {
            const double a0 = as[kk][ty], a1 = as[kk][ty + 16];
            const double b0 = bs[kk][tx], b1 = bs[kk][tx + 16];
            acc[0][0] = fma(a0, b0, acc[0][0]);
            acc[0][1] = fma(a0, b1, acc[0][1]);
            acc[1][0] = fma(a1, b0, acc[1][0]);
            acc[1][1] = fma(a1, b1, acc[1][1]);
        }
        // Every thread has read the tiles before the next step overwrites them.
        __syncthreads();
    }

#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int row = m0 + ty + 16 * r;
        if (row >= g.m) continue;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int col = n0 + tx + 16 * h;
            if (col >= g.n) continue;
            double* p = c + (long long)row * g.ldc + col;
            double out = g.alpha * acc[r][h];
            if (g.beta != 0.0) out = fma(g.beta, *p, out);
            *p = out;
        }
    }
}

#define DGEMM_KERNEL(name, TA, TB)                                                              \
    extern "C" __global__ void __launch_bounds__(DG_THREADS)                                    \
        name(DGemmArgs g, const double* a, const double* b, double* c) {                        \
        dgemm_body<TA, TB>(g, a, b, c);                                                         \
    }
DGEMM_KERNEL(dgemm_nn, false, false)
DGEMM_KERNEL(dgemm_nt, false, true)
DGEMM_KERNEL(dgemm_tn, true, false)
DGEMM_KERNEL(dgemm_tt, true, true)
