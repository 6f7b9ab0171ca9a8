// Tensor-core GEMM on 16-bit operands: C = alpha * op(A) · op(B) + beta * C with A, B and C in
// bf16 or f16 (one template, BF16 selects), products accumulated in f32 by
// mma.sync.m16n8k16 (sm_80+), and each element of C rounded once to the 16-bit type at the end
// (as PyTorch's bf16/f16 matmul), on the block tiling of gemm_tile.cuh (which the host puts in
// front of this file), as gemm_tf32.cu.
//
// K advances by BK = 32 (two mma k-steps) per stage: the same 64 bytes per tile row as TF32's
// BK = 16 floats. Two stages take 40 KB, under the 48 KB a block gets without opting in.
// Fragments come out of shared memory by ldmatrix (four 8 × 8 matrices of 16-bit values per
// instruction), transposing (.trans) where the tile is stored the other way round from the
// fragment. The paddings (8 values = 16 bytes) make a row 80 or 272 bytes, an odd number of
// 16-byte units, so the eight rows of each 8 × 8 matrix fall in distinct bank groups.

#define BK 32
#define PAD 8                     // 16-bit values of padding per shared row
#define K_ROW (BK + PAD)          // a row of a k-contiguous tile: 40 values
#define MN_ROW (BM + PAD)         // a row of an m- or n-contiguous tile: 136 values
#define STAGE (BM * K_ROW)        // the larger of the two layouts (5120 vs 32 * 136 = 4352)

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
    to_batch(g, a, b, c);
    const WarpTile w = warp_tile();
    // The ldmatrix row this lane addresses: row r8 of matrix mat.
    const int lane = threadIdx.x & 31, r8 = lane & 7, mat = lane >> 3;

    float acc[4][4][4] = {};
    auto as_is = [](unsigned v) { return v; };
    auto compute = [&](const u16* sa, const u16* sb) {
#pragma unroll
        for (int ks = 0; ks < BK; ks += 16) {
            // A fragment of tile mt (rows wm + 16 mt .. + 15, k ks .. ks + 15): matrix i holds
            // rows + 8 (i & 1), k + 8 (i >> 1), so r[i] is the mma's a-register i.
            unsigned fa[4][4], fb[4][2];
            const int a_k = ks + (mat >> 1) * 8;
#pragma unroll
            for (int mt = 0; mt < 4; ++mt) {
                const int a_m = w.wm + mt * 16 + (mat & 1) * 8;
                if (TA) ldmatrix_x4<true>(fa[mt], &sa[(a_k + r8) * MN_ROW + a_m]);
                else ldmatrix_x4<false>(fa[mt], &sa[(a_m + r8) * K_ROW + a_k]);
            }
            // B fragments of two n-tiles at once: matrix i holds k + 8 (i & 1) of n-tile
            // 2 np + (i >> 1), so r[0], r[1] are the b-registers of the first tile and r[2],
            // r[3] those of the second.
            const int b_k = ks + (mat & 1) * 8;
#pragma unroll
            for (int np = 0; np < 2; ++np) {
                const int b_n = w.wn + np * 16 + (mat >> 1) * 8;
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
    };
    k_loop<u16, u16, BK, PAD, PAD, TA, TB>(g, a, b, &as[0][0], &bs[0][0], STAGE, as_is, compute);

    // A pair of columns goes out as one 32-bit store when aligned.
    const bool pair_ok = aligned(c, 4) && (g.ldc & 1) == 0;
    auto with_beta = [&](float v, u16 old) {
        return g.beta != 0.f ? fmaf(g.beta, widen<BF16>(old), v) : v;
    };
    write_c(g, acc, [&](int row, int col, float v0, float v1) {
        u16* p = c + (long long)row * g.ldc + col;
        if (pair_ok && col + 1 < g.n) {
            unsigned* p2 = reinterpret_cast<unsigned*>(p);
            const unsigned old = g.beta != 0.f ? *p2 : 0u;
            *p2 = (unsigned)round_to<BF16>(with_beta(v0, (u16)(old & 0xffffu))) |
                  ((unsigned)round_to<BF16>(with_beta(v1, (u16)(old >> 16))) << 16);
        } else {
            p[0] = round_to<BF16>(with_beta(v0, g.beta != 0.f ? p[0] : (u16)0));
            if (col + 1 < g.n) p[1] = round_to<BF16>(with_beta(v1, g.beta != 0.f ? p[1] : (u16)0));
        }
    });
}

#define HALF_KERNEL(name, BF16, TA, TB)                                                         \
    extern "C" __global__ void __launch_bounds__(THREADS, 2)                                       \
        name(GemmArgs g, const u16* a, const u16* b, u16* c) {                                  \
        half_gemm_body<BF16, TA, TB>(g, a, b, c);                                               \
    }
#define HALF_KERNELS(type, BF16)                                                                \
    HALF_KERNEL(type##_gemm_nn, BF16, false, false)                                             \
    HALF_KERNEL(type##_gemm_nt, BF16, false, true)                                              \
    HALF_KERNEL(type##_gemm_tn, BF16, true, false)                                              \
    HALF_KERNEL(type##_gemm_tt, BF16, true, true)
HALF_KERNELS(bf16, true)
HALF_KERNELS(f16, false)
