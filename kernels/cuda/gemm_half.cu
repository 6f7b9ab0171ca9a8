// Tensor-core GEMM on 16-bit operands: C = alpha * op(A) · op(B) + beta * C with A, B and C in
// bf16 or f16 (one template, BF16 selects), products accumulated in f32 by
// mma.sync.m16n8k16 (sm_80+), and each element of C rounded once to the 16-bit type at the end
// (as PyTorch's bf16/f16 matmul). Same operand conventions as gemm.cu and gemm_tf32.cu
// (row-major, TA/TB select stored-transposed operands, batch over blockIdx.z).
//
// Tiling: gemm_tf32.cu's. 256 threads = 8 warps compute a 128 × 128 tile of C; warps form a
// 2 × 4 grid, each owning 64 × 32 = 4 × 4 mma tiles of 16 × 8 (64 f32 accumulators per
// thread). K advances by BK = 32 (two mma k-steps) per shared-memory stage: the same 64 bytes
// per tile row as TF32's BK = 16 floats. Two stages (double buffering) take 40 KB, under the
// 48 KB a block gets without opting in.
//
// Shared layout mirrors the operand's global layout, so every global->shared copy is a 16-byte
// vector store (8 values): A is kept m-major [128][32 + 8] when stored M × K, k-major
// [32][128 + 8] when stored K × M; B likewise. Fragments come out of shared memory by ldmatrix
// (four 8 × 8 matrices of 16-bit values per instruction), transposing (.trans) where the tile is
// stored the other way round from the fragment. The paddings (8 values = 16 bytes) make a row
// 80 or 272 bytes, an odd number of 16-byte units, so the eight rows of each 8 × 8 matrix fall
// in distinct bank groups.

#define BM 128
#define BN 128
#define BK 32
#define THREADS 256
#define PAD 8                     // 16-bit values of padding per shared row
#define K_ROW (BK + PAD)          // a row of a k-contiguous tile: 40 values
#define MN_ROW (BM + PAD)         // a row of an m- or n-contiguous tile: 136 values
#define STAGE (BM * K_ROW)        // the larger of the two layouts (5120 vs 32 * 136 = 4352)

struct GemmArgs {
    int m, n, k;
    int lda, ldb, ldc;
    long long stride_a, stride_b, stride_c;
    float alpha, beta;
};

typedef unsigned short u16;

__device__ __forceinline__ bool aligned(const void* p, unsigned long long bytes) {
    return (reinterpret_cast<unsigned long long>(p) & (bytes - 1)) == 0;
}

// f32 -> bf16 / f16, round to nearest even; and back (exact).
template <bool BF16> __device__ __forceinline__ u16 round_to(float x) {
    u16 r;
    if (BF16) asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(x));
    else asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r) : "f"(x));
    return r;
}
template <bool BF16> __device__ __forceinline__ float widen(u16 h) {
    if (BF16) return __uint_as_float((unsigned)h << 16);
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

// Loads 16 values of a 128 × 32 (or 32 × 128) operand tile: two 8-value groups per thread.
// `rows`/`cols` are the stored matrix's bounds, (r0, c0) the tile origin in stored coordinates;
// values outside the matrix read as zero (so a partial k-tile adds nothing).
template <int TILE_COLS>
__device__ __forceinline__ void load_tile(const u16* __restrict__ p, int ld, bool vec, int rows,
                                          int cols, int r0, int c0, int tid, uint4 v[2]) {
    constexpr int VEC_PER_ROW = TILE_COLS / 8;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int idx = tid + h * THREADS;
        const int r = r0 + idx / VEC_PER_ROW, c = c0 + (idx % VEC_PER_ROW) * 8;
        const u16* q = p + (long long)r * ld + c;
        if (vec && r < rows && c + 7 < cols) {
            v[h] = *reinterpret_cast<const uint4*>(q);
        } else {
            unsigned w[4];
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const unsigned lo = (r < rows && c + 2 * j < cols) ? q[2 * j] : 0u;
                const unsigned hi = (r < rows && c + 2 * j + 1 < cols) ? q[2 * j + 1] : 0u;
                w[j] = lo | (hi << 16);
            }
            v[h] = make_uint4(w[0], w[1], w[2], w[3]);
        }
    }
}

// Stores the 16 values of load_tile into a shared tile with rows of TILE_COLS + PAD values.
template <int TILE_COLS>
__device__ __forceinline__ void store_tile(u16* s, int tid, const uint4 v[2]) {
    constexpr int VEC_PER_ROW = TILE_COLS / 8;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int idx = tid + h * THREADS;
        const int r = idx / VEC_PER_ROW, c = (idx % VEC_PER_ROW) * 8;
        *reinterpret_cast<uint4*>(&s[r * (TILE_COLS + PAD) + c]) = v[h];
    }
}

// Four 8 × 8 matrices of 16-bit values from shared memory: lane l gives the address of row
// l % 8 of matrix l / 8 and receives, of matrix i, row l / 4, columns 2 (l % 4) and + 1 in r[i]
// (lower half first), or with TRANS the same of the transposed matrix.
template <bool TRANS> __device__ __forceinline__ void ldmatrix_x4(unsigned r[4], const u16* p) {
    const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(p));
    if (TRANS)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(addr)
                     : "memory");
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(addr)
                     : "memory");
}

template <bool BF16>
__device__ __forceinline__ void mma_16816(float d[4], const unsigned a[4], const unsigned b[2]) {
    if (BF16)
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
            "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
            "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <bool BF16, bool TA, bool TB>
__device__ __forceinline__ void half_gemm_body(GemmArgs g, const u16* __restrict__ a,
                                               const u16* __restrict__ b, u16* __restrict__ c) {
    __shared__ __align__(16) u16 as[2][STAGE];
    __shared__ __align__(16) u16 bs[2][STAGE];

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    a += blockIdx.z * g.stride_a;
    b += blockIdx.z * g.stride_b;
    c += blockIdx.z * g.stride_c;
    const bool vec_a = aligned(a, 16) && (g.lda & 7) == 0;
    const bool vec_b = aligned(b, 16) && (g.ldb & 7) == 0;

    // Stored bounds and tile origins: A is M × K (or K × M when TA), B is K × N (or N × K).
    const int a_rows = TA ? g.k : g.m, a_cols = TA ? g.m : g.k;
    const int b_rows = TB ? g.n : g.k, b_cols = TB ? g.k : g.n;

    const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;
    const int grp = lane >> 2, tig = lane & 3;  // mma "groupID" and "threadID_in_group"
    // The ldmatrix row this lane addresses: row r8 of matrix mat.
    const int r8 = lane & 7, mat = lane >> 3;

    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.f;

    uint4 va[2], vb[2];
    auto load = [&](int k0) {
        if (TA) load_tile<BM>(a, g.lda, vec_a, a_rows, a_cols, k0, m0, tid, va);
        else load_tile<BK>(a, g.lda, vec_a, a_rows, a_cols, m0, k0, tid, va);
        if (TB) load_tile<BK>(b, g.ldb, vec_b, b_rows, b_cols, n0, k0, tid, vb);
        else load_tile<BN>(b, g.ldb, vec_b, b_rows, b_cols, k0, n0, tid, vb);
    };
    auto store = [&](int stage) {
        if (TA) store_tile<BM>(as[stage], tid, va);
        else store_tile<BK>(as[stage], tid, va);
        if (TB) store_tile<BK>(bs[stage], tid, vb);
        else store_tile<BN>(bs[stage], tid, vb);
    };

    const int tiles = (g.k + BK - 1) / BK;
    load(0);
    store(0);
    __syncthreads();

    for (int t = 0; t < tiles; ++t) {
        const int cur = t & 1;
        const bool more = t + 1 < tiles;
        if (more) load((t + 1) * BK);
        const u16* sa = as[cur];
        const u16* sb = bs[cur];
#pragma unroll
        for (int ks = 0; ks < BK; ks += 16) {
            // A fragment of tile mt (rows wm + 16 mt .. + 15, k ks .. ks + 15): matrix i holds
            // rows + 8 (i & 1), k + 8 (i >> 1), so r[i] is the mma's a-register i.
            unsigned fa[4][4], fb[4][2];
            const int a_k = ks + (mat >> 1) * 8;
#pragma unroll
            for (int mt = 0; mt < 4; ++mt) {
                const int a_m = wm + mt * 16 + (mat & 1) * 8;
                if (TA) ldmatrix_x4<true>(fa[mt], &sa[(a_k + r8) * MN_ROW + a_m]);
                else ldmatrix_x4<false>(fa[mt], &sa[(a_m + r8) * K_ROW + a_k]);
            }
            // B fragments of two n-tiles at once: matrix i holds k + 8 (i & 1) of n-tile
            // 2 np + (i >> 1), so r[0], r[1] are the b-registers of the first tile and r[2],
            // r[3] those of the second.
            const int b_k = ks + (mat & 1) * 8;
#pragma unroll
            for (int np = 0; np < 2; ++np) {
                const int b_n = wn + np * 16 + (mat >> 1) * 8;
                unsigned r[4];
                if (TB) ldmatrix_x4<false>(r, &sb[(b_n + r8) * K_ROW + b_k]);
                else ldmatrix_x4<true>(r, &sb[(b_k + r8) * MN_ROW + b_n]);
                fb[2 * np][0] = r[0];
                fb[2 * np][1] = r[1];
                fb[2 * np + 1][0] = r[2];
                fb[2 * np + 1][1] = r[3];
            }
#pragma unroll
            for (int mt = 0; mt < 4; ++mt)
#pragma unroll
                for (int nt = 0; nt < 4; ++nt) mma_16816<BF16>(acc[mt][nt], fa[mt], fb[nt]);
        }
        // The other stage was last read before the previous iteration's barrier: free to fill.
        if (more) store(cur ^ 1);
        __syncthreads();
    }

    // Accumulator q of tile (mt, nt): row grp (+8 for q >= 2), column 2 * tig + (q & 1). Pairs
    // of columns go out as one 32-bit store when aligned.
    const bool pair_ok = aligned(c, 4) && (g.ldc & 1) == 0;
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int row = m0 + wm + mt * 16 + grp + half * 8;
            if (row >= g.m) continue;
            u16* crow = c + (long long)row * g.ldc;
#pragma unroll
            for (int nt = 0; nt < 4; ++nt) {
                const int col = n0 + wn + nt * 8 + tig * 2;
                float v0 = g.alpha * acc[mt][nt][half * 2];
                float v1 = g.alpha * acc[mt][nt][half * 2 + 1];
                if (pair_ok && col + 1 < g.n) {
                    unsigned* p = reinterpret_cast<unsigned*>(crow + col);
                    if (g.beta != 0.f) {
                        const unsigned old = *p;
                        v0 = fmaf(g.beta, widen<BF16>((u16)(old & 0xffffu)), v0);
                        v1 = fmaf(g.beta, widen<BF16>((u16)(old >> 16)), v1);
                    }
                    *p = (unsigned)round_to<BF16>(v0) | ((unsigned)round_to<BF16>(v1) << 16);
                } else {
                    if (col < g.n)
                        crow[col] = round_to<BF16>(
                            g.beta != 0.f ? fmaf(g.beta, widen<BF16>(crow[col]), v0) : v0);
                    if (col + 1 < g.n)
                        crow[col + 1] = round_to<BF16>(
                            g.beta != 0.f ? fmaf(g.beta, widen<BF16>(crow[col + 1]), v1) : v1);
                }
            }
        }
}

#define HALF_KERNEL(name, BF16, TA, TB)                                                         \
    extern "C" __global__ void __launch_bounds__(THREADS)                                       \
        name(GemmArgs g, const u16* a, const u16* b, u16* c) {                                  \
        half_gemm_body<BF16, TA, TB>(g, a, b, c);                                               \
    }
HALF_KERNEL(bf16_gemm_nn, true, false, false)
HALF_KERNEL(bf16_gemm_nt, true, false, true)
HALF_KERNEL(bf16_gemm_tn, true, true, false)
HALF_KERNEL(bf16_gemm_tt, true, true, true)
HALF_KERNEL(f16_gemm_nn, false, false, false)
HALF_KERNEL(f16_gemm_nt, false, false, true)
HALF_KERNEL(f16_gemm_tn, false, true, false)
HALF_KERNEL(f16_gemm_tt, false, true, true)
