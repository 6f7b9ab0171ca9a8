// What the GEMMs share (the host puts this file in front of gemm.cu, gemm_tf32.cu and
// gemm_half.cu: KernelModule::source): the argument block and 128 × 128 block tile of all three,
// and the tiling of the two tensor-core ones. C = alpha * op(A) · op(B) + beta * C, row-major,
// TA/TB selecting stored-transposed operands, batch over blockIdx.z.
//
// 256 threads = 8 warps compute a 128 × 128 tile of C; warps form a 2 × 4 grid, each owning
// 64 × 32 = 4 × 4 mma tiles of 16 × 8 with 4 f32 accumulators per thread each (the accumulator
// layout of every mma.sync shape used here). K advances by BK (a kernel's choice) per
// shared-memory stage, double buffered: while the warps multiply out of one stage, each thread
// holds the next k tile's two 16-byte groups of A and of B in registers, and stores them to the
// other stage afterwards. Shared tiles mirror the operand's global layout, so every
// global -> shared copy is one 16-byte vector store: A is kept m-major [128][BK + PAD_MAJOR] when
// stored M × K, k-major [BK][128 + PAD_MINOR] when stored K × M; B likewise.
//
// The kernels ask for two blocks per SM (__launch_bounds__(THREADS, 2): at most 128 registers a
// thread), which they fit without spilling (kernels/tests/cuda_compile.rs checks); left to
// itself ptxas takes ~155 for some transposes, which leaves room for one block only.

#define BM 128
#define BN 128
#define THREADS 256

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

// Moves the operand pointers to this block's product of the batch.
template <typename In, typename Out>
__device__ __forceinline__ void to_batch(const GemmArgs& g, In& a, In& b, Out& c) {
    a += blockIdx.z * g.stride_a;
    b += blockIdx.z * g.stride_b;
    c += blockIdx.z * g.stride_c;
}

// Word j of a 16-byte group starting at column c of a row at q (`ok`: the row exists); elements
// past `cols` read as zero.
__device__ __forceinline__ unsigned word_at(const float* q, int j, bool ok, int c, int cols) {
    return (ok && c + j < cols) ? __float_as_uint(q[j]) : 0u;
}
__device__ __forceinline__ unsigned word_at(const u16* q, int j, bool ok, int c, int cols) {
    const unsigned lo = (ok && c + 2 * j < cols) ? q[2 * j] : 0u;
    const unsigned hi = (ok && c + 2 * j + 1 < cols) ? q[2 * j + 1] : 0u;
    return lo | (hi << 16);
}

// Loads a thread's two 16-byte groups (8 words) of a stored operand's tile of TILE_COLS elements
// per row.
// `rows`/`cols` are the stored matrix's bounds, (r0, c0) the tile origin in stored coordinates;
// elements outside the matrix read as zero (so a partial k tile adds nothing). `vec`: rows start
// 16-byte aligned, so a group wholly inside is read at once.
template <typename T, int TILE_COLS>
__device__ __forceinline__ void load_tile(const T* __restrict__ p, int ld, bool vec, int rows,
                                          int cols, int r0, int c0, int tid, unsigned v[8]) {
    constexpr int VEC = 16 / sizeof(T), PER_ROW = TILE_COLS / VEC;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int idx = tid + h * THREADS;
        const int r = r0 + idx / PER_ROW, c = c0 + (idx % PER_ROW) * VEC;
        const T* q = p + (long long)r * ld + c;
        if (vec && r < rows && c + VEC - 1 < cols) {
            const uint4 u = *reinterpret_cast<const uint4*>(q);
            v[h * 4] = u.x;
            v[h * 4 + 1] = u.y;
            v[h * 4 + 2] = u.z;
            v[h * 4 + 3] = u.w;
        } else {
#pragma unroll
            for (int j = 0; j < 4; ++j) v[h * 4 + j] = word_at(q, j, r < rows, c, cols);
        }
    }
}

// Stores the words of load_tile, each mapped by `cvt`, into a shared tile of elements S with rows
// of TILE_COLS + PAD.
template <typename S, int TILE_COLS, int PAD, typename Cvt>
__device__ __forceinline__ void store_tile(S* s, int tid, const unsigned v[8], Cvt cvt) {
    constexpr int VEC = 16 / sizeof(S), PER_ROW = TILE_COLS / VEC;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int idx = tid + h * THREADS;
        const int r = idx / PER_ROW, c = (idx % PER_ROW) * VEC;
        *reinterpret_cast<uint4*>(&s[r * (TILE_COLS + PAD) + c]) =
            make_uint4(cvt(v[h * 4]), cvt(v[h * 4 + 1]), cvt(v[h * 4 + 2]), cvt(v[h * 4 + 3]));
    }
}

// A warp's place in the block tile and a lane's in the mma fragments.
struct WarpTile {
    int wm, wn;    // the warp's 64 × 32 corner
    int grp, tig;  // mma "groupID" and "threadID_in_group"
};
__device__ __forceinline__ WarpTile warp_tile() {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    return {(warp >> 2) * 64, (warp & 3) * 32, lane >> 2, lane & 3};
}

// The k loop of a block: A (B) of element T from global memory into stages of S with k tiles BK
// deep, `compute(a_stage, b_stage)` on each in turn.
template <typename T, typename S, int BK, int PAD_MAJOR, int PAD_MINOR, bool TA, bool TB,
          typename Cvt, typename Compute>
__device__ __forceinline__ void k_loop(const GemmArgs& g, const T* a, const T* b, S* as, S* bs,
                                       int stage_len, Cvt cvt, Compute compute) {
    const int tid = threadIdx.x;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    constexpr int VEC = 16 / sizeof(T);
    const bool vec_a = aligned(a, 16) && g.lda % VEC == 0;
    const bool vec_b = aligned(b, 16) && g.ldb % VEC == 0;
    // Stored bounds and tile origins: A is M × K (or K × M when TA), B is K × N (or N × K).
    const int a_rows = TA ? g.k : g.m, a_cols = TA ? g.m : g.k;
    const int b_rows = TB ? g.n : g.k, b_cols = TB ? g.k : g.n;
    unsigned va[8], vb[8];
    auto load = [&](int k0) {
        if (TA) load_tile<T, BM>(a, g.lda, vec_a, a_rows, a_cols, k0, m0, tid, va);
        else load_tile<T, BK>(a, g.lda, vec_a, a_rows, a_cols, m0, k0, tid, va);
        if (TB) load_tile<T, BK>(b, g.ldb, vec_b, b_rows, b_cols, n0, k0, tid, vb);
        else load_tile<T, BN>(b, g.ldb, vec_b, b_rows, b_cols, k0, n0, tid, vb);
    };
    auto store = [&](int stage) {
        S* sa = as + stage * stage_len;
        S* sb = bs + stage * stage_len;
        if (TA) store_tile<S, BM, PAD_MINOR>(sa, tid, va, cvt);
        else store_tile<S, BK, PAD_MAJOR>(sa, tid, va, cvt);
        if (TB) store_tile<S, BK, PAD_MAJOR>(sb, tid, vb, cvt);
        else store_tile<S, BN, PAD_MINOR>(sb, tid, vb, cvt);
    };

    const int tiles = (g.k + BK - 1) / BK;
    load(0);
    store(0);
    __syncthreads();
    for (int t = 0; t < tiles; ++t) {
        const int cur = t & 1;
        const bool more = t + 1 < tiles;
        if (more) load((t + 1) * BK);
        compute(as + cur * stage_len, bs + cur * stage_len);
        // The other stage was last read before the previous iteration's barrier: free to fill.
        if (more) store(cur ^ 1);
        __syncthreads();
    }
}

// Hands the block's results to `put(row, col, v0, v1)`: alpha times the accumulators of C at
// (row, col) and (row, col + 1), the second to be written only where col + 1 < n. Accumulator q
// of tile (mt, nt) is row grp (+8 for q >= 2), column 2 tig + (q & 1) of the tile.
template <typename Put>
__device__ __forceinline__ void write_c(const GemmArgs& g, const float acc[4][4][4], Put put) {
    const WarpTile w = warp_tile();
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int row = m0 + w.wm + mt * 16 + w.grp + half * 8;
            if (row >= g.m) continue;
#pragma unroll
            for (int nt = 0; nt < 4; ++nt) {
                const int col = n0 + w.wn + nt * 8 + w.tig * 2;
                if (col < g.n)
                    put(row, col, g.alpha * acc[mt][nt][half * 2],
                        g.alpha * acc[mt][nt][half * 2 + 1]);
            }
        }
}
