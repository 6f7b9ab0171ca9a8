// TF32 tensor-core GEMM: C = alpha * op(A) · op(B) + beta * C with f32 inputs rounded to TF32
// (10-bit mantissa, round to nearest) and f32 accumulation, via mma.sync.m16n8k8 (sm_80+), on
// the block tiling of gemm_tile.cuh (which the host puts in front of this file). Expect a
// relative error near 1e-3 against f32: use it where that is acceptable (the engine's "allow
// TF32" switch), never for gradient checks.
//
// K advances by BK = 16 (two mma k-steps) per stage; two stages take 38 KB, under the 48 KB a
// block gets without opting in, leaving room for two blocks per SM on sm_80. Shared paddings of
// 4 and 8 words make the fragment reads of mma.m16n8k8 (8 rows × 4 columns of a warp, or the
// transpose) hit 32 distinct banks. Values are converted to TF32 (cvt.rna) once, when written to
// shared memory.

#define BK 16
#define PAD_MAJOR 4   // row = 16 k-values + 4
#define PAD_MINOR 8   // row = 128 m/n-values + 8
#define STAGE_WORDS (BM * (BK + PAD_MAJOR))  // the larger of the two layouts (2560 vs 2176)

__device__ __forceinline__ unsigned to_tf32(unsigned f32_bits) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(__uint_as_float(f32_bits)));
    return r;
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
    to_batch(g, a, b, c);
    const WarpTile w = warp_tile();

    float acc[4][4][4] = {};
    auto tf32 = [](unsigned v) { return to_tf32(v); };
    auto compute = [&](const unsigned* sa, const unsigned* sb) {
#pragma unroll
        for (int ks = 0; ks < BK; ks += 8) {
            unsigned fa[4][4], fb[4][2];
#pragma unroll
            for (int mt = 0; mt < 4; ++mt) {
                const int r = w.wm + mt * 16 + w.grp;
                fa[mt][0] = a_at<TA>(sa, r, ks + w.tig);
                fa[mt][1] = a_at<TA>(sa, r + 8, ks + w.tig);
                fa[mt][2] = a_at<TA>(sa, r, ks + w.tig + 4);
                fa[mt][3] = a_at<TA>(sa, r + 8, ks + w.tig + 4);
            }
#pragma unroll
            for (int nt = 0; nt < 4; ++nt) {
                const int col = w.wn + nt * 8 + w.grp;
                fb[nt][0] = b_at<TB>(sb, ks + w.tig, col);
                fb[nt][1] = b_at<TB>(sb, ks + w.tig + 4, col);
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
    };
    k_loop<float, unsigned, BK, PAD_MAJOR, PAD_MINOR, TA, TB>(g, a, b, &as[0][0], &bs[0][0],
                                                              STAGE_WORDS, tf32, compute);

    const bool pair_ok = aligned(c, 8) && (g.ldc & 1) == 0;
    write_c(g, acc, [&](int row, int col, float v0, float v1) {
        float* p = c + (long long)row * g.ldc + col;
        if (pair_ok && col + 1 < g.n) {
            float2* p2 = reinterpret_cast<float2*>(p);
            if (g.beta != 0.f) {
                const float2 old = *p2;
                v0 = fmaf(g.beta, old.x, v0);
                v1 = fmaf(g.beta, old.y, v1);
            }
            *p2 = make_float2(v0, v1);
        } else {
            p[0] = g.beta != 0.f ? fmaf(g.beta, p[0], v0) : v0;
            if (col + 1 < g.n) p[1] = g.beta != 0.f ? fmaf(g.beta, p[1], v1) : v1;
        }
    });
}

#define TF32_KERNEL(name, TA, TB)                                                               \
    extern "C" __global__ void __launch_bounds__(THREADS, 2)                                       \
        name(GemmArgs g, const float* a, const float* b, float* c) {                            \
        tf32_gemm_body<TA, TB>(g, a, b, c);                                                     \
    }
TF32_KERNEL(tf32_gemm_nn, false, false)
TF32_KERNEL(tf32_gemm_nt, false, true)
TF32_KERNEL(tf32_gemm_tn, true, false)
TF32_KERNEL(tf32_gemm_tt, true, true)
