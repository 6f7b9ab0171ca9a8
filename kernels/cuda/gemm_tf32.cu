// TF32 tensor-core GEMM: C = alpha * op(A) · op(B) + beta * C with f32 inputs rounded to TF32
// (10-bit mantissa, round to nearest) and f32 accumulation, via mma.sync.m16n8k8 (sm_80+).
// Same operand conventions as gemm.cu (row-major, TA/TB select stored-transposed operands,
// batch over blockIdx.z). Expect a relative error near 1e-3 against f32: use it where that is
// acceptable (the engine's "allow TF32" switch), never for gradient checks.
//
// Tiling. 256 threads = 8 warps compute a 128 × 128 tile of C; warps form a 2 × 4 grid, each
// owning 64 × 32 = 4 × 4 mma tiles of 16 × 8 (64 f32 accumulators per thread). K advances by
// BK = 16 (two mma k-steps) per shared-memory stage; two stages (double buffering) take 38 KB,
// under the 48 KB a block gets without opting in, leaving room for two blocks per SM on sm_80.
//
// Shared layout mirrors the operand's global layout so that every global->shared copy is a
// 16-byte vector store: A is kept m-major [128][16 + 4] when stored M × K, k-major [16][128 + 8]
// when stored K × M; B likewise. The paddings (4 and 8 words) make the fragment reads of
// mma.m16n8k8 (8 rows × 4 columns of a warp, or the transpose) hit 32 distinct banks.
// Values are converted to TF32 (cvt.rna) once, when written to shared memory.

#define BM 128
#define BN 128
#define BK 16
#define THREADS 256
#define PAD_MAJOR 4   // row = 16 k-values + 4
#define PAD_MINOR 8   // row = 128 m/n-values + 8
#define STAGE_WORDS (BM * (BK + PAD_MAJOR))  // the larger of the two layouts (2560 vs 2176)

struct GemmArgs {
    int m, n, k;
    int lda, ldb, ldc;
    long long stride_a, stride_b, stride_c;
    float alpha, beta;
};

__device__ __forceinline__ bool aligned16(const void* p) {
    return (reinterpret_cast<unsigned long long>(p) & 15ull) == 0;
}

__device__ __forceinline__ unsigned to_tf32(float x) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

// Loads 8 values of a 128 × 16 (or 16 × 128) operand tile: two float4 groups per thread.
// `rows`/`cols` are the stored matrix's bounds, (r0, c0) the tile origin in stored coordinates,
// and the tile is `tile_rows` × `tile_cols` stored elements (128 × 16 or 16 × 128).
template <int TILE_COLS>
__device__ __forceinline__ void load_tile(const float* __restrict__ p, int ld, bool vec, int rows,
                                          int cols, int r0, int c0, int tid, float v[8]) {
    constexpr int VEC_PER_ROW = TILE_COLS / 4;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int idx = tid + h * THREADS;
        const int r = r0 + idx / VEC_PER_ROW, c = c0 + (idx % VEC_PER_ROW) * 4;
        const float* q = p + (long long)r * ld + c;
        if (vec && r < rows && c + 3 < cols) {
            const float4 f = *reinterpret_cast<const float4*>(q);
            v[h * 4 + 0] = f.x; v[h * 4 + 1] = f.y; v[h * 4 + 2] = f.z; v[h * 4 + 3] = f.w;
        } else {
#pragma unroll
            for (int j = 0; j < 4; ++j) v[h * 4 + j] = (r < rows && c + j < cols) ? q[j] : 0.f;
        }
    }
}

// Stores the 8 values of load_tile into a shared tile with rows of TILE_COLS + PAD words.
template <int TILE_COLS, int PAD>
__device__ __forceinline__ void store_tile(unsigned* s, int tid, const float v[8]) {
    constexpr int VEC_PER_ROW = TILE_COLS / 4;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int idx = tid + h * THREADS;
        const int r = idx / VEC_PER_ROW, c = (idx % VEC_PER_ROW) * 4;
        *reinterpret_cast<uint4*>(&s[r * (TILE_COLS + PAD) + c]) =
            make_uint4(to_tf32(v[h * 4]), to_tf32(v[h * 4 + 1]), to_tf32(v[h * 4 + 2]),
                       to_tf32(v[h * 4 + 3]));
    }
}

// Element (i, k) of the A tile / (k, j) of the B tile in shared memory, for either layout.
template <bool TA> __device__ __forceinline__ unsigned a_at(const unsigned* s, int i, int k) {
    return TA ? s[k * (BM + PAD_MINOR) + i] : s[i * (BK + PAD_MAJOR) + k];
}
template <bool TB> __device__ __forceinline__ unsigned b_at(const unsigned* s, int k, int j) {
    return TB ? s[j * (BK + PAD_MAJOR) + k] : s[k * (BN + PAD_MINOR) + j];
}

template <bool TA, bool TB>
__device__ __forceinline__ void tf32_gemm_body(GemmArgs g, const float* __restrict__ a,
                                               const float* __restrict__ b,
                                               float* __restrict__ c) {
    __shared__ __align__(16) unsigned as[2][STAGE_WORDS];
    __shared__ __align__(16) unsigned bs[2][STAGE_WORDS];

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    a += blockIdx.z * g.stride_a;
    b += blockIdx.z * g.stride_b;
    c += blockIdx.z * g.stride_c;
    const bool vec_a = aligned16(a) && (g.lda & 3) == 0;
    const bool vec_b = aligned16(b) && (g.ldb & 3) == 0;

    // Stored bounds and tile origins: A is M × K (or K × M when TA), B is K × N (or N × K).
    const int a_rows = TA ? g.k : g.m, a_cols = TA ? g.m : g.k;
    const int b_rows = TB ? g.n : g.k, b_cols = TB ? g.k : g.n;

    const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;
    const int grp = lane >> 2, tig = lane & 3;  // mma "groupID" and "threadID_in_group"

    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.f;

    float va[8], vb[8];
    auto load = [&](int k0) {
        if (TA) load_tile<BM>(a, g.lda, vec_a, a_rows, a_cols, k0, m0, tid, va);
        else load_tile<BK>(a, g.lda, vec_a, a_rows, a_cols, m0, k0, tid, va);
        if (TB) load_tile<BK>(b, g.ldb, vec_b, b_rows, b_cols, n0, k0, tid, vb);
        else load_tile<BN>(b, g.ldb, vec_b, b_rows, b_cols, k0, n0, tid, vb);
    };
    auto store = [&](int stage) {
        if (TA) store_tile<BM, PAD_MINOR>(as[stage], tid, va);
        else store_tile<BK, PAD_MAJOR>(as[stage], tid, va);
        if (TB) store_tile<BK, PAD_MAJOR>(bs[stage], tid, vb);
        else store_tile<BN, PAD_MINOR>(bs[stage], tid, vb);
    };

    const int tiles = (g.k + BK - 1) / BK;
    load(0);
    store(0);
    __syncthreads();

    for (int t = 0; t < tiles; ++t) {
        const int cur = t & 1;
        const bool more = t + 1 < tiles;
        if (more) load((t + 1) * BK);
        const unsigned* sa = as[cur];
        const unsigned* sb = bs[cur];
#pragma unroll
        for (int ks = 0; ks < BK; ks += 8) {
            unsigned fa[4][4], fb[4][2];
#pragma unroll
            for (int mt = 0; mt < 4; ++mt) {
                const int r = wm + mt * 16 + grp;
                fa[mt][0] = a_at<TA>(sa, r, ks + tig);
                fa[mt][1] = a_at<TA>(sa, r + 8, ks + tig);
                fa[mt][2] = a_at<TA>(sa, r, ks + tig + 4);
                fa[mt][3] = a_at<TA>(sa, r + 8, ks + tig + 4);
            }
#pragma unroll
            for (int nt = 0; nt < 4; ++nt) {
                const int col = wn + nt * 8 + grp;
                fb[nt][0] = b_at<TB>(sb, ks + tig, col);
                fb[nt][1] = b_at<TB>(sb, ks + tig + 4, col);
            }
#pragma unroll
            for (int mt = 0; mt < 4; ++mt)
#pragma unroll
                for (int nt = 0; nt < 4; ++nt) {
                    float* d = acc[mt][nt];
                    asm volatile(
                        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
                        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                        : "r"(fa[mt][0]), "r"(fa[mt][1]), "r"(fa[mt][2]), "r"(fa[mt][3]),
                          "r"(fb[nt][0]), "r"(fb[nt][1]));
                }
        }
        if (more) store(cur ^ 1);
        __syncthreads();
    }

    // Accumulator q of tile (mt, nt): row grp (+8 for q >= 2), column 2 * tig + (q & 1).
    const bool pair_ok = aligned16(c) && (g.ldc & 1) == 0;
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int row = m0 + wm + mt * 16 + grp + half * 8;
            if (row >= g.m) continue;
            float* crow = c + (long long)row * g.ldc;
#pragma unroll
            for (int nt = 0; nt < 4; ++nt) {
                const int col = n0 + wn + nt * 8 + tig * 2;
                float v0 = g.alpha * acc[mt][nt][half * 2];
                float v1 = g.alpha * acc[mt][nt][half * 2 + 1];
                if (pair_ok && col + 1 < g.n) {
                    float2* p = reinterpret_cast<float2*>(crow + col);
                    if (g.beta != 0.f) {
                        const float2 old = *p;
                        v0 = fmaf(g.beta, old.x, v0);
                        v1 = fmaf(g.beta, old.y, v1);
                    }
                    *p = make_float2(v0, v1);
                } else {
                    if (col < g.n) crow[col] = g.beta != 0.f ? fmaf(g.beta, crow[col], v0) : v0;
                    if (col + 1 < g.n)
                        crow[col + 1] = g.beta != 0.f ? fmaf(g.beta, crow[col + 1], v1) : v1;
                }
            }
        }
}

#define TF32_KERNEL(name, TA, TB)                                                               \
    extern "C" __global__ void __launch_bounds__(THREADS)                                       \
        name(GemmArgs g, const float* a, const float* b, float* c) {                            \
        tf32_gemm_body<TA, TB>(g, a, b, c);                                                     \
    }
TF32_KERNEL(tf32_gemm_nn, false, false)
TF32_KERNEL(tf32_gemm_nt, false, true)
TF32_KERNEL(tf32_gemm_tn, true, false)
TF32_KERNEL(tf32_gemm_tt, true, true)
