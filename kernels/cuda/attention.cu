// Fused scaled dot-product attention, O = softmax(scale · Q Kᵀ) V, f32, on contiguous
// row-major q [B, Nq, d], k [B, Nk, d], v [B, Nk, dv] (o [B, Nq, dv], lse [B, Nq]).
//
// Forward: one pass over the keys. A block of 4 warps owns 16 query rows (4 per warp) and walks
// the keys in tiles of 32 staged in shared memory: lane j scores key j of the tile against the
// warp's rows (S never reaches global memory), the running row maximum and sum are updated with
// the online-softmax rescaling, and the tile's probabilities are broadcast lane to lane
// (__shfl_sync) into the output accumulators, which stay in registers (lane l owns columns
// l, l+32, ..., so C = ceil(dv/32) chunks of them). The row's log-sum-exp m + log(l) is written
// beside O for the backward.
//
// Backward (FlashAttention-2's split, deterministic: no atomics): with D_i = dO_i · O_i
// (attn_bwd_delta) and P recomputed as exp(scale · q_i·k_j − lse_i),
//   dS_ij = P_ij (dO_i · v_j − D_i),   dQ = scale · dS K,   dK = scale · dSᵀ Q,   dV = Pᵀ dO.
// attn_bwd_dq is the forward's loop with dQ in the accumulators; attn_bwd_dkdv swaps the roles:
// a block owns 16 keys and walks the queries in tiles of 32 (lane = query), accumulating dK
// and dV rows in registers. Every output element is summed by one thread in a fixed order.
//
// Shared memory is dynamic and sized by the launcher (attention.rs), which also refuses widths
// above 32·8 = 256 (the engine then runs the composite ops). Rows staged for lane-parallel dot
// products use an odd leading dimension (d | 1) so the 32 lanes hit 32 different banks.

#define ATT_WARPS 4
#define ATT_ROWS 4
#define ATT_BLOCK_ROWS (ATT_WARPS * ATT_ROWS)
#define ATT_TILE 32
#define ATT_THREADS (ATT_WARPS * 32)
#define FULL_MASK 0xffffffffu
#define ATT_INF __int_as_float(0x7f800000)
#define ATT_NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ float att_warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

__device__ __forceinline__ float att_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

// rows × width values from src (row stride `width`, rows from `row0`, at most `nrows` valid)
// into dst with leading dimension ld; rows past the end and columns in [width, ld) are zero.
__device__ __forceinline__ void att_stage(float* dst, unsigned ld, const float* __restrict__ src,
                                          unsigned row0, unsigned nrows, unsigned width,
                                          unsigned rows) {
    for (unsigned t = threadIdx.x; t < rows * ld; t += blockDim.x) {
        const unsigned r = t / ld, c = t - r * ld;
        dst[t] = (row0 + r < nrows && c < width) ? src[(size_t)(row0 + r) * width + c] : 0.f;
    }
}

// s[r] = Σ_c rows[r·width + c] · mine[c] for r < ATT_ROWS: the warp's rows (the same address on
// every lane: a broadcast) against the lane's own staged row (odd stride: no bank conflicts).
__device__ __forceinline__ void att_dots(float (&s)[ATT_ROWS], const float* rows,
                                         const float* mine, unsigned width) {
#pragma unroll
    for (int r = 0; r < ATT_ROWS; ++r) s[r] = 0.f;
    for (unsigned c = 0; c < width; ++c) {
        const float x = mine[c];
#pragma unroll
        for (int r = 0; r < ATT_ROWS; ++r) s[r] = fmaf(rows[r * width + c], x, s[r]);
    }
}

// acc[r][c] += w_r(lane jj) · x[c]: the weight of tile row jj for each of the warp's rows,
// broadcast from lane jj, times that tile row's columns lane, lane + 32, ... (x, from
// att_columns).
template <int C>
__device__ __forceinline__ void att_accumulate(float (&acc)[ATT_ROWS][C],
                                               const float (&w)[ATT_ROWS], unsigned jj,
                                               const float (&x)[C]) {
#pragma unroll
    for (int r = 0; r < ATT_ROWS; ++r) {
        const float wj = __shfl_sync(FULL_MASK, w[r], jj);
#pragma unroll
        for (int c = 0; c < C; ++c) acc[r][c] = fmaf(wj, x[c], acc[r][c]);
    }
}

// x[c] = row[lane + 32c], 0 past `width`.
template <int C>
__device__ __forceinline__ void att_columns(float (&x)[C], const float* row, unsigned width,
                                            unsigned lane) {
#pragma unroll
    for (int c = 0; c < C; ++c) {
        const unsigned col = lane + 32 * c;
        x[c] = col < width ? row[col] : 0.f;
    }
}

// out[row][col] = acc[r][c] · factor for the warp's rows row = first + r < n (row-major,
// `width` columns; the lane writes columns lane, lane + 32, ...).
template <int C>
__device__ __forceinline__ void att_store(float* out, const float (&acc)[ATT_ROWS][C],
                                          float factor, unsigned first,
                                          unsigned n, unsigned width, unsigned lane) {
#pragma unroll
    for (int r = 0; r < ATT_ROWS; ++r) {
        if (first + r >= n) continue;
#pragma unroll
        for (int c = 0; c < C; ++c) {
            const unsigned col = lane + 32 * c;
            if (col < width) out[(size_t)(first + r) * width + col] = acc[r][c] * factor;
        }
    }
}

template <int C>
__device__ __forceinline__ void attn_fwd_body(unsigned nq, unsigned nk, unsigned d, unsigned dv,
                                              float scale, const float* __restrict__ q,
                                              const float* __restrict__ k,
                                              const float* __restrict__ v, float* __restrict__ o,
                                              float* __restrict__ lse) {
    extern __shared__ float att_sh[];
    const unsigned ldk = d | 1u, ldv = 32 * C;
    float* qs = att_sh;                          // [16][d]
    float* ks = qs + ATT_BLOCK_ROWS * d;         // [32][ldk]
    float* vs = ks + ATT_TILE * ldk;             // [32][ldv], zero past dv
    const unsigned b = blockIdx.y, row0 = blockIdx.x * ATT_BLOCK_ROWS;
    const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    q += (size_t)b * nq * d;
    k += (size_t)b * nk * d;
    v += (size_t)b * nk * dv;
    att_stage(qs, d, q, row0, nq, d, ATT_BLOCK_ROWS);
    const float* qw = qs + warp * ATT_ROWS * d;

    float m[ATT_ROWS], l[ATT_ROWS], acc[ATT_ROWS][C];
#pragma unroll
    for (int r = 0; r < ATT_ROWS; ++r) {
        m[r] = ATT_NEG_INF;
        l[r] = 0.f;
#pragma unroll
        for (int c = 0; c < C; ++c) acc[r][c] = 0.f;
    }
    for (unsigned j0 = 0; j0 < nk; j0 += ATT_TILE) {
        __syncthreads();  // the previous tile has been read by every warp
        att_stage(ks, ldk, k, j0, nk, d, ATT_TILE);
        att_stage(vs, ldv, v, j0, nk, dv, ATT_TILE);
        __syncthreads();
        float s[ATT_ROWS];
        att_dots(s, qw, ks + lane * ldk, d);
        const bool valid = j0 + lane < nk;
        float p[ATT_ROWS];
#pragma unroll
        for (int r = 0; r < ATT_ROWS; ++r) {
            const float x = valid ? s[r] * scale : ATT_NEG_INF;
            const float mn = fmaxf(m[r], att_warp_max(x));
            p[r] = expf(x - mn);
            const float corr = expf(m[r] - mn);
            l[r] = l[r] * corr + att_warp_sum(p[r]);
            m[r] = mn;
#pragma unroll
            for (int c = 0; c < C; ++c) acc[r][c] *= corr;
        }
        const unsigned tile = min(nk - j0, (unsigned)ATT_TILE);
        for (unsigned jj = 0; jj < tile; ++jj) {
            float vc[C];
            att_columns(vc, vs + jj * ldv, dv, lane);
            att_accumulate(acc, p, jj, vc);
        }
    }
    const unsigned first = row0 + warp * ATT_ROWS;
#pragma unroll
    for (int r = 0; r < ATT_ROWS; ++r) {
        // l is 0 only without keys: the output is then 0, as on the CPU.
        const float inv = l[r] > 0.f ? 1.f / l[r] : 0.f;
#pragma unroll
        for (int c = 0; c < C; ++c) acc[r][c] *= inv;
        if (lane == 0 && first + r < nq) lse[(size_t)b * nq + first + r] = m[r] + logf(l[r]);
    }
    att_store(o + (size_t)b * nq * dv, acc, 1.f, first, nq, dv, lane);
}

// D_i = dO_i · O_i, one warp per row.
__device__ __forceinline__ void attn_bwd_delta_body(unsigned rows, unsigned dv,
                                                    const float* __restrict__ dout,
                                                    const float* __restrict__ o,
                                                    float* __restrict__ delta) {
    const unsigned row = blockIdx.x * ATT_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    float s = 0.f;
    for (unsigned c = lane; c < dv; c += 32)
        s = fmaf(dout[(size_t)row * dv + c], o[(size_t)row * dv + c], s);
    s = att_warp_sum(s);
    if (lane == 0) delta[row] = s;
}

template <int C>
__device__ __forceinline__ void attn_bwd_dq_body(unsigned nq, unsigned nk, unsigned d,
                                                 unsigned dv, float scale,
                                                 const float* __restrict__ q,
                                                 const float* __restrict__ k,
                                                 const float* __restrict__ v,
                                                 const float* __restrict__ dout,
                                                 const float* __restrict__ lse,
                                                 const float* __restrict__ delta,
                                                 float* __restrict__ dq) {
    extern __shared__ float att_sh[];
    const unsigned ldk = d | 1u, ldv = dv | 1u;
    float* qs = att_sh;                          // [16][d]
    float* gs = qs + ATT_BLOCK_ROWS * d;         // [16][dv]   dO rows
    float* ks = gs + ATT_BLOCK_ROWS * dv;        // [32][ldk]
    float* vs = ks + ATT_TILE * ldk;             // [32][ldv]
    const unsigned b = blockIdx.y, row0 = blockIdx.x * ATT_BLOCK_ROWS;
    const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    q += (size_t)b * nq * d;
    k += (size_t)b * nk * d;
    v += (size_t)b * nk * dv;
    dout += (size_t)b * nq * dv;
    att_stage(qs, d, q, row0, nq, d, ATT_BLOCK_ROWS);
    att_stage(gs, dv, dout, row0, nq, dv, ATT_BLOCK_ROWS);
    const float* qw = qs + warp * ATT_ROWS * d;
    const float* gw = gs + warp * ATT_ROWS * dv;
    float lr[ATT_ROWS], dr[ATT_ROWS], acc[ATT_ROWS][C];
#pragma unroll
    for (int r = 0; r < ATT_ROWS; ++r) {
        const unsigned row = row0 + warp * ATT_ROWS + r;
        lr[r] = row < nq ? lse[(size_t)b * nq + row] : 0.f;
        dr[r] = row < nq ? delta[(size_t)b * nq + row] : 0.f;
#pragma unroll
        for (int c = 0; c < C; ++c) acc[r][c] = 0.f;
    }
    for (unsigned j0 = 0; j0 < nk; j0 += ATT_TILE) {
        __syncthreads();
        att_stage(ks, ldk, k, j0, nk, d, ATT_TILE);
        att_stage(vs, ldv, v, j0, nk, dv, ATT_TILE);
        __syncthreads();
        float s[ATT_ROWS], dp[ATT_ROWS];
        att_dots(s, qw, ks + lane * ldk, d);
        att_dots(dp, gw, vs + lane * ldv, dv);
        const bool valid = j0 + lane < nk;
        float ds[ATT_ROWS];
#pragma unroll
        for (int r = 0; r < ATT_ROWS; ++r) {
            const float p = valid ? expf(s[r] * scale - lr[r]) : 0.f;
            ds[r] = p * (dp[r] - dr[r]);
        }
        const unsigned tile = min(nk - j0, (unsigned)ATT_TILE);
        for (unsigned jj = 0; jj < tile; ++jj) {
            float kc[C];
            att_columns(kc, ks + jj * ldk, d, lane);
            att_accumulate(acc, ds, jj, kc);
        }
    }
    att_store(dq + (size_t)b * nq * d, acc, scale, row0 + warp * ATT_ROWS, nq, d, lane);
}

template <int C>
__device__ __forceinline__ void attn_bwd_dkdv_body(unsigned nq, unsigned nk, unsigned d,
                                                   unsigned dv, float scale,
                                                   const float* __restrict__ q,
                                                   const float* __restrict__ k,
                                                   const float* __restrict__ v,
                                                   const float* __restrict__ dout,
                                                   const float* __restrict__ lse,
                                                   const float* __restrict__ delta,
                                                   float* __restrict__ dk,
                                                   float* __restrict__ dvo) {
    extern __shared__ float att_sh[];
    const unsigned ldq = d | 1u, ldg = dv | 1u;
    float* kk = att_sh;                          // [16][d]   this block's keys
    float* vv = kk + ATT_BLOCK_ROWS * d;         // [16][dv]  and their values
    float* qs = vv + ATT_BLOCK_ROWS * dv;        // [32][ldq] query tile
    float* gs = qs + ATT_TILE * ldq;             // [32][ldg] dO tile
    float* ls = gs + ATT_TILE * ldg;             // [32] lse (+inf past the end: P = 0)
    float* dls = ls + ATT_TILE;                  // [32] D
    const unsigned b = blockIdx.y, key0 = blockIdx.x * ATT_BLOCK_ROWS;
    const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    q += (size_t)b * nq * d;
    k += (size_t)b * nk * d;
    v += (size_t)b * nk * dv;
    dout += (size_t)b * nq * dv;
    lse += (size_t)b * nq;
    delta += (size_t)b * nq;
    att_stage(kk, d, k, key0, nk, d, ATT_BLOCK_ROWS);
    att_stage(vv, dv, v, key0, nk, dv, ATT_BLOCK_ROWS);
    const float* kw = kk + warp * ATT_ROWS * d;
    const float* vw = vv + warp * ATT_ROWS * dv;
    float dka[ATT_ROWS][C], dva[ATT_ROWS][C];
#pragma unroll
    for (int r = 0; r < ATT_ROWS; ++r)
#pragma unroll
        for (int c = 0; c < C; ++c) dka[r][c] = dva[r][c] = 0.f;
    for (unsigned i0 = 0; i0 < nq; i0 += ATT_TILE) {
        __syncthreads();
        att_stage(qs, ldq, q, i0, nq, d, ATT_TILE);
        att_stage(gs, ldg, dout, i0, nq, dv, ATT_TILE);
        if (threadIdx.x < ATT_TILE) {
            const unsigned i = i0 + threadIdx.x;
            ls[threadIdx.x] = i < nq ? lse[i] : ATT_INF;
            dls[threadIdx.x] = i < nq ? delta[i] : 0.f;
        }
        __syncthreads();
        float s[ATT_ROWS], dp[ATT_ROWS];
        att_dots(s, kw, qs + lane * ldq, d);
        att_dots(dp, vw, gs + lane * ldg, dv);
        float p[ATT_ROWS], ds[ATT_ROWS];
#pragma unroll
        for (int r = 0; r < ATT_ROWS; ++r) {
            p[r] = expf(s[r] * scale - ls[lane]);
            ds[r] = p[r] * (dp[r] - dls[lane]);
        }
        const unsigned tile = min(nq - i0, (unsigned)ATT_TILE);
        for (unsigned ii = 0; ii < tile; ++ii) {
            float qc[C], gc[C];
            att_columns(qc, qs + ii * ldq, d, lane);
            att_columns(gc, gs + ii * ldg, dv, lane);
            att_accumulate(dva, p, ii, gc);
            att_accumulate(dka, ds, ii, qc);
        }
    }
    const unsigned first = key0 + warp * ATT_ROWS;
    att_store(dk + (size_t)b * nk * d, dka, scale, first, nk, d, lane);
    att_store(dvo + (size_t)b * nk * dv, dva, 1.f, first, nk, dv, lane);
}

#define ATTENTION_KERNELS(C)                                                                     \
    extern "C" __global__ void __launch_bounds__(ATT_THREADS)                                    \
        attn_fwd_c##C##_f32(unsigned nq, unsigned nk, unsigned d, unsigned dv, float scale,      \
                            const float* q, const float* k, const float* v, float* o,            \
                            float* lse) {                                                        \
        attn_fwd_body<C>(nq, nk, d, dv, scale, q, k, v, o, lse);                                 \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(ATT_THREADS)                                    \
        attn_bwd_dq_c##C##_f32(unsigned nq, unsigned nk, unsigned d, unsigned dv, float scale,   \
                               const float* q, const float* k, const float* v,                   \
                               const float* dout, const float* lse, const float* delta,          \
                               float* dq) {                                                      \
        attn_bwd_dq_body<C>(nq, nk, d, dv, scale, q, k, v, dout, lse, delta, dq);                \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(ATT_THREADS)                                    \
        attn_bwd_dkdv_c##C##_f32(unsigned nq, unsigned nk, unsigned d, unsigned dv,              \
                                 float scale, const float* q, const float* k, const float* v,    \
                                 const float* dout, const float* lse, const float* delta,        \
                                 float* dk, float* dv_out) {                                     \
        attn_bwd_dkdv_body<C>(nq, nk, d, dv, scale, q, k, v, dout, lse, delta, dk, dv_out);      \
    }
ATTENTION_KERNELS(1)
ATTENTION_KERNELS(2)
ATTENTION_KERNELS(4)
ATTENTION_KERNELS(8)

extern "C" __global__ void __launch_bounds__(ATT_THREADS)
    attn_bwd_delta_f32(unsigned rows, unsigned dv, const float* dout, const float* o,
                       float* delta) {
    attn_bwd_delta_body(rows, dv, dout, o, delta);
}
