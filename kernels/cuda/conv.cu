// 2-D convolution (NCHW, groups, stride, padding, dilation) as implicit GEMM: the im2col matrix
// is never materialised; each tile of it is gathered straight from the input into shared memory.
// Per group (blockIdx.z, or group * splits + split for the weight gradient):
//
//   forward        y[oc, (n,oh,ow)]   = sum_(c,kh,kw)   w[oc, (c,kh,kw)] · x[n, c, ih, iw]
//   backward-data  gx[c, (n,ih,iw)]   = sum_(oc,kh,kw)  w[oc, (c,kh,kw)] · gy[n, oc, oh, ow]
//                  where ih = oh·sh − ph + kh·dh (taps whose oh is fractional or out of range
//                  contribute nothing). This gathers, so every gx element is written once: no
//                  atomics, deterministic. conv_transpose2d's forward is this kernel (with its
//                  bias; the gradient path passes no bias).
//   backward-weight gw[oc, (c,kh,kw)] = sum_(n,oh,ow)   gy[n, oc, oh, ow] · x[n, c, ih, iw]
//                  K = batch·OH·OW is long and M·N short, so K is split into `splits` chunks
//                  (blocks along z), each writing its own partial buffer; the host then sums the
//                  partials in a fixed order (reduce_cols), which keeps the result deterministic.
//
// Tiling: 64 × 64 tile of the GEMM per block of 256 threads, BK = 16, each thread owning a 4 × 4
// sub-tile (rows 4·ty.., read as a float4 of the k-major A tile; columns tx + 16·j, so a half-warp
// stores 16 consecutive output pixels). 64 × 64 rather than SGEMM's 128 × 128 because the M side
// here is a channel count, often 3..128, and the gather's index arithmetic, not FMAs, bounds the
// loads. Each thread stages 4 A and 4 B values per K step in registers while the block computes on
// the other shared buffer (double buffering, one barrier per step). Every division by a runtime
// size in the gathers is a multiply-high by a host-computed magic number (FastDiv), since integer
// division costs ~20 instructions and the gathers would otherwise dominate.

#define BM 64
#define BN 64
#define BK 16
#define THREADS 256
#define A_PAD 4  // 2-way rather than 8-way bank conflicts for the A tile's transposed stores

// n / d for n < 2^31: q = (umulhi(n, mul) + n) >> shift, with shift = ceil(log2 d) and
// mul = floor(2^32 (2^shift − d) / d) + 1 (computed on the host, see cuda/ops/conv.rs).
struct FastDiv {
    unsigned d, mul, shift;
};
__device__ __forceinline__ unsigned fdiv(unsigned n, FastDiv f) {
    return (__umulhi(n, f.mul) + n) >> f.shift;
}

struct ConvArgs {
    int batch, c, h, w;       // input x[batch, c, h, w]
    int oc, oh, ow;           // output y[batch, oc, oh, ow]
    int kh, kw, sh, sw, ph, pw, dh, dw;
    int groups, splits, k_chunk;  // k_chunk: the K range one split covers (multiple of BK)
    FastDiv div_khw;   // by kh·kw
    FastDiv div_kw;    // by kw
    FastDiv div_ohw;   // by oh·ow
    FastDiv div_ow;    // by ow
    FastDiv div_hw;    // by h·w
    FastDiv div_w;     // by w
    FastDiv div_sh;    // by the vertical stride
    FastDiv div_sw;    // by the horizontal stride
};

enum Mode { FWD = 0, BWD_DATA = 1, BWD_WEIGHT = 2 };

template <int MODE> struct Dims {
    // GEMM sizes per group.
    __device__ static int m(const ConvArgs& a) {
        return MODE == BWD_DATA ? a.c / a.groups : a.oc / a.groups;
    }
    __device__ static int n(const ConvArgs& a) {
        return MODE == FWD ? a.batch * a.oh * a.ow
             : MODE == BWD_DATA ? a.batch * a.h * a.w
             : (a.c / a.groups) * a.kh * a.kw;
    }
    __device__ static int k(const ConvArgs& a) {
        return MODE == FWD ? (a.c / a.groups) * a.kh * a.kw
             : MODE == BWD_DATA ? (a.oc / a.groups) * a.kh * a.kw
             : a.batch * a.oh * a.ow;
    }
};

// Per-thread state of the B gather: the thread's fixed GEMM column, decomposed once.
struct BCol {
    bool valid;
    int i0, j0;        // FWD: top-left input tap; BWD_DATA: ih + ph, iw + pw; BWD_WEIGHT: kh·dh − ph, kw·dw − pw
    const float* base; // FWD: x of (image, group); BWD_DATA: gy of (image, group); BWD_WEIGHT: x of (group, c)
};

template <int MODE>
__device__ __forceinline__ BCol b_column(const ConvArgs& a, const float* src, int g, int n) {
    BCol col;
    col.valid = n < Dims<MODE>::n(a);
    const int nn = col.valid ? n : 0;
    const int cg = a.c / a.groups, ocg = a.oc / a.groups;
    if (MODE == FWD) {
        const int img = fdiv(nn, a.div_ohw), p = nn - img * a.oh * a.ow;
        const int oh = fdiv(p, a.div_ow), ow = p - oh * a.ow;
        col.i0 = oh * a.sh - a.ph;
        col.j0 = ow * a.sw - a.pw;
        col.base = src + ((long long)img * a.c + g * cg) * a.h * a.w;
    } else if (MODE == BWD_DATA) {
        const int img = fdiv(nn, a.div_hw), p = nn - img * a.h * a.w;
        const int ih = fdiv(p, a.div_w), iw = p - ih * a.w;
        col.i0 = ih + a.ph;
        col.j0 = iw + a.pw;
        col.base = src + ((long long)img * a.oc + g * ocg) * a.oh * a.ow;
    } else {
        const int c = fdiv(nn, a.div_khw), r = nn - c * a.kh * a.kw;
        const int kh = fdiv(r, a.div_kw), kw = r - kh * a.kw;
        col.i0 = kh * a.dh - a.ph;
        col.j0 = kw * a.dw - a.pw;
        col.base = src + ((long long)g * cg + c) * a.h * a.w;
    }
    return col;
}

// Element (k, this thread's column) of the B operand, 0 outside the image or the K range.
template <int MODE>
__device__ __forceinline__ float b_at(const ConvArgs& a, const BCol& col, int k, int k_end) {
    if (!col.valid || k >= k_end) return 0.f;
    if (MODE == FWD) {
        const int c = fdiv(k, a.div_khw), r = k - c * a.kh * a.kw;
        const int kh = fdiv(r, a.div_kw), kw = r - kh * a.kw;
        const int ih = col.i0 + kh * a.dh, iw = col.j0 + kw * a.dw;
        if ((unsigned)ih >= (unsigned)a.h || (unsigned)iw >= (unsigned)a.w) return 0.f;
        return col.base[((long long)c * a.h + ih) * a.w + iw];
    } else if (MODE == BWD_DATA) {
        const int oc = fdiv(k, a.div_khw), r = k - oc * a.kh * a.kw;
        const int kh = fdiv(r, a.div_kw), kw = r - kh * a.kw;
        const int th = col.i0 - kh * a.dh, tw = col.j0 - kw * a.dw;
        if (th < 0 || tw < 0) return 0.f;
        const int oh = fdiv(th, a.div_sh), ow = fdiv(tw, a.div_sw);
        if (oh * a.sh != th || ow * a.sw != tw || oh >= a.oh || ow >= a.ow) return 0.f;
        return col.base[((long long)oc * a.oh + oh) * a.ow + ow];
    } else {
        const int img = fdiv(k, a.div_ohw), p = k - img * a.oh * a.ow;
        const int oh = fdiv(p, a.div_ow), ow = p - oh * a.ow;
        const int ih = oh * a.sh + col.i0, iw = ow * a.sw + col.j0;
        if ((unsigned)ih >= (unsigned)a.h || (unsigned)iw >= (unsigned)a.w) return 0.f;
        return col.base[(long long)img * a.c * a.h * a.w + ih * a.w + iw];
    }
}
// Element (this thread's row m, k) of the A operand, 0 outside.
template <int MODE>
__device__ __forceinline__ float a_at(const ConvArgs& a, const float* src, int g, int m, int k,
                                      int k_end) {
    if (m >= Dims<MODE>::m(a) || k >= k_end) return 0.f;
    const int cg = a.c / a.groups, ocg = a.oc / a.groups, khw = a.kh * a.kw;
    if (MODE == FWD) {
        // w[g·ocg + m, k] with rows of cg·kh·kw.
        return src[((long long)(g * ocg + m)) * cg * khw + k];
    } else if (MODE == BWD_DATA) {
        const int oc = fdiv(k, a.div_khw), r = k - oc * khw;
        return src[((long long)(g * ocg + oc) * cg + m) * khw + r];
    } else {
        const int img = fdiv(k, a.div_ohw), p = k - img * a.oh * a.ow;
        return src[((long long)img * a.oc + g * ocg + m) * a.oh * a.ow + p];
    }
}

template <int MODE>
__device__ __forceinline__ void conv_gemm(ConvArgs a, const float* __restrict__ a_src,
                                          const float* __restrict__ b_src,
                                          const float* __restrict__ bias, float* __restrict__ out) {
    __shared__ __align__(16) float as[2][BK][BM + A_PAD];
    __shared__ __align__(16) float bs[2][BK][BN];

    const int tid = threadIdx.x;
    const int g = MODE == BWD_WEIGHT ? blockIdx.z / a.splits : blockIdx.z;
    const int split = MODE == BWD_WEIGHT ? blockIdx.z % a.splits : 0;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const int M = Dims<MODE>::m(a), N = Dims<MODE>::n(a), K = Dims<MODE>::k(a);
    const int k_begin = split * a.k_chunk;
    const int k_end = min(K, k_begin + a.k_chunk);

    // Staging roles: A row m0 + tid/4 with 4 consecutive k; B column n0 + tid%64 with k spaced 4.
    const int a_row = m0 + (tid >> 2), a_k = (tid & 3) * 4;
    const int b_n = tid & (BN - 1), b_k = tid >> 6;
    const BCol col = b_column<MODE>(a, b_src, g, n0 + b_n);

    const int ty = tid >> 4, tx = tid & 15;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;

    float ra[4], rb[4];
    auto load = [&](int k0) {
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            ra[q] = a_at<MODE>(a, a_src, g, a_row, k0 + a_k + q, k_end);
            rb[q] = b_at<MODE>(a, col, k0 + b_k + 4 * q, k_end);
        }
    };
    auto store = [&](int s) {
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            as[s][a_k + q][tid >> 2] = ra[q];
            bs[s][b_k + 4 * q][b_n] = rb[q];
        }
    };

    const int tiles = (k_end - k_begin + BK - 1) / BK;
    load(k_begin);
    store(0);
    __syncthreads();
    for (int t = 0; t < tiles; ++t) {
        const int cur = t & 1;
        const bool more = t + 1 < tiles;
        if (more) load(k_begin + (t + 1) * BK);
#pragma unroll
        for (int k = 0; k < BK; ++k) {
            const float4 fa = *reinterpret_cast<const float4*>(&as[cur][k][ty * 4]);
            float fb[4];
#pragma unroll
            for (int j = 0; j < 4; ++j) fb[j] = bs[cur][k][tx + 16 * j];
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                acc[0][j] = fmaf(fa.x, fb[j], acc[0][j]);
                acc[1][j] = fmaf(fa.y, fb[j], acc[1][j]);
                acc[2][j] = fmaf(fa.z, fb[j], acc[2][j]);
                acc[3][j] = fmaf(fa.w, fb[j], acc[3][j]);
            }
        }
        if (more) store(cur ^ 1);
        __syncthreads();
    }

#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int n = n0 + tx + 16 * j;
        if (n >= N) continue;
        long long base, step;  // address of (row 0 of this group, column n) and the row step
        if (MODE == FWD) {
            const int img = fdiv(n, a.div_ohw), p = n - img * a.oh * a.ow;
            const int ocg = a.oc / a.groups;
            step = (long long)a.oh * a.ow;
            base = ((long long)img * a.oc + g * ocg) * step + p;
        } else if (MODE == BWD_DATA) {
            const int img = fdiv(n, a.div_hw), p = n - img * a.h * a.w;
            const int cg = a.c / a.groups;
            step = (long long)a.h * a.w;
            base = ((long long)img * a.c + g * cg) * step + p;
        } else {
            // Partial (or final, with one split) gradient: [splits][oc][cg·kh·kw].
            const int ocg = a.oc / a.groups;
            step = N;
            base = ((long long)split * a.oc + g * ocg) * N + n;
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int m = m0 + ty * 4 + i;
            if (m >= M) continue;
            float v = acc[i][j];
            if (MODE != BWD_WEIGHT && bias != nullptr) v += bias[g * M + m];
            out[base + m * step] = v;
        }
    }
}

extern "C" __global__ void __launch_bounds__(THREADS)
    conv2d_fwd_f32(ConvArgs a, const float* x, const float* w, const float* bias, float* y) {
    conv_gemm<FWD>(a, w, x, bias, y);
}
extern "C" __global__ void __launch_bounds__(THREADS)
    conv2d_bwd_data_f32(ConvArgs a, const float* gy, const float* w, const float* bias,
                        float* gx) {
    conv_gemm<BWD_DATA>(a, w, gy, bias, gx);
}
extern "C" __global__ void __launch_bounds__(THREADS)
    conv2d_bwd_weight_f32(ConvArgs a, const float* x, const float* gy, float* gw_partial) {
    conv_gemm<BWD_WEIGHT>(a, gy, x, nullptr, gw_partial);
}

// ------------------------------------------------------------------------------------- f64
// Double precision: direct convolution, one thread per output element in grid-stride loops,
// each gathering its whole sum (correctness first: f64 is for gradient checks and reference
// runs, not speed). Same ConvArgs and layouts as above (the FastDiv fields are unused); each
// element is written once, so the results are deterministic without atomics.

// y[n, o, oh, ow] = bias[o] + sum_(ci, kh, kw) w[o, ci, kh, kw] · x[n, g·cpg + ci, ih, iw]
extern "C" __global__ void conv2d_fwd_f64(ConvArgs a, const double* x, const double* w,
                                          const double* bias, double* y) {
    const int cpg = a.c / a.groups, opg = a.oc / a.groups;
    const long long total = (long long)a.batch * a.oc * a.oh * a.ow;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int ow = (int)(i % a.ow), oh = (int)((i / a.ow) % a.oh);
        const int o = (int)((i / ((long long)a.ow * a.oh)) % a.oc);
        const int n = (int)(i / ((long long)a.ow * a.oh * a.oc));
        const int c0 = (o / opg) * cpg;
        double acc = bias != nullptr ? bias[o] : 0.0;
        for (int ci = 0; ci < cpg; ++ci) {
            const double* xc = x + ((long long)n * a.c + c0 + ci) * a.h * a.w;
            const double* wc = w + ((long long)o * cpg + ci) * a.kh * a.kw;
            for (int kh = 0; kh < a.kh; ++kh) {
                const int ih = oh * a.sh - a.ph + kh * a.dh;
                if (ih < 0 || ih >= a.h) continue;
                for (int kw = 0; kw < a.kw; ++kw) {
                    const int iw = ow * a.sw - a.pw + kw * a.dw;
                    if (iw < 0 || iw >= a.w) continue;
                    acc += wc[kh * a.kw + kw] * xc[ih * a.w + iw];
                }
            }
        }
        y[i] = acc;
    }
}

// gx[n, c, ih, iw] = bias[c] + sum over the taps (o, kh, kw) whose output position
// oh = (ih + ph − kh·dh) / sh is whole and in range of w[o, ci, kh, kw] · gy[n, o, oh, ow]
// (with a bias per input channel this is transposed convolution's forward).
extern "C" __global__ void conv2d_bwd_data_f64(ConvArgs a, const double* gy, const double* w,
                                               const double* bias, double* gx) {
    const int cpg = a.c / a.groups, opg = a.oc / a.groups;
    const long long total = (long long)a.batch * a.c * a.h * a.w;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int iw = (int)(i % a.w), ih = (int)((i / a.w) % a.h);
        const int c = (int)((i / ((long long)a.w * a.h)) % a.c);
        const int n = (int)(i / ((long long)a.w * a.h * a.c));
        const int ci = c % cpg, o0 = (c / cpg) * opg;
        double acc = bias != nullptr ? bias[c] : 0.0;
        for (int o = o0; o < o0 + opg; ++o) {
            const double* gyo = gy + ((long long)n * a.oc + o) * a.oh * a.ow;
            const double* wo = w + ((long long)o * cpg + ci) * a.kh * a.kw;
            for (int kh = 0; kh < a.kh; ++kh) {
                const int th = ih + a.ph - kh * a.dh;
                if (th < 0 || th % a.sh != 0 || th / a.sh >= a.oh) continue;
                const int oh = th / a.sh;
                for (int kw = 0; kw < a.kw; ++kw) {
                    const int tw = iw + a.pw - kw * a.dw;
                    if (tw < 0 || tw % a.sw != 0 || tw / a.sw >= a.ow) continue;
                    acc += wo[kh * a.kw + kw] * gyo[oh * a.ow + tw / a.sw];
                }
            }
        }
        gx[i] = acc;
    }
}

// gw[o, ci, kh, kw] = sum_(n, oh, ow) gy[n, o, oh, ow] · x[n, g·cpg + ci, ih, iw]
extern "C" __global__ void conv2d_bwd_weight_f64(ConvArgs a, const double* x, const double* gy,
                                                 double* gw) {
    const int cpg = a.c / a.groups, opg = a.oc / a.groups;
    const long long total = (long long)a.oc * cpg * a.kh * a.kw;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int kw = (int)(i % a.kw), kh = (int)((i / a.kw) % a.kh);
        const int ci = (int)((i / ((long long)a.kw * a.kh)) % cpg);
        const int o = (int)(i / ((long long)a.kw * a.kh * cpg));
        const int c = (o / opg) * cpg + ci;
        double acc = 0.0;
        for (int n = 0; n < a.batch; ++n) {
            const double* gyo = gy + ((long long)n * a.oc + o) * a.oh * a.ow;
            const double* xc = x + ((long long)n * a.c + c) * a.h * a.w;
            for (int oh = 0; oh < a.oh; ++oh) {
                const int ih = oh * a.sh - a.ph + kh * a.dh;
                if (ih < 0 || ih >= a.h) continue;
                for (int ow = 0; ow < a.ow; ++ow) {
                    const int iw = ow * a.sw - a.pw + kw * a.dw;
                    if (iw < 0 || iw >= a.w) continue;
                    acc += gyo[oh * a.ow + ow] * xc[ih * a.w + iw];
                }
            }
        }
        gw[i] = acc;
    }
}
