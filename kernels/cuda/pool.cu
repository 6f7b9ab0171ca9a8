// Windowed 2-D pooling of NCHW tensors (planes = N·C planes of h × w, contiguous): sum/average and
// max, forward and backward, with the CPU kernels' window geometry (kernel kh × kw, stride
// sh × sw, zero padding ph × pw at most half the kernel; output oh × ow in floor mode).
//
// The window of output (oy, ox) covers input rows [oy·sh − ph, oy·sh − ph + kh) and columns
// likewise, clipped to the plane. Forwards run one thread per output and visit the window in
// row-major order, as the CPU does, so sums add in the same order and max pooling picks the same
// arg-max (the first maximum; the first NaN wins over numbers). Backwards run one thread per
// input element and gather from the outputs whose windows cover it, in row-major output order
// (the order the CPU scatters in): every gradient element is written once, no atomics,
// deterministic. Input row y lies in the window of output row oy iff
// oy·sh ≤ y + ph < oy·sh + kh, i.e. ceil((y + ph − kh + 1) / sh) ≤ oy ≤ floor((y + ph) / sh).
//
// Index arithmetic is 32-bit: the host refuses tensors of 2^31 elements or more.

#define NO_ARG 0xffffffffu

struct PoolArgs {
    unsigned planes, h, w, oh, ow;
    unsigned kh, kw, sh, sw, ph, pw;
};

#define GRID_STRIDE(i, n)                                                                       \
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += gridDim.x * blockDim.x)

// First and last output index (inclusive) along one axis whose windows cover input index `y`;
// lo > hi when none does.
__device__ __forceinline__ void covering(unsigned y, unsigned pad, unsigned k, unsigned s,
                                         unsigned outs, unsigned& lo, unsigned& hi) {
    const unsigned t = y + pad;
    lo = t >= k ? (t - k) / s + 1 : 0;
    hi = min(t / s, outs - 1);
}

// The clipped window of output (oy, ox): rows [y0, y1), columns [x0, x1).
__device__ __forceinline__ void window(const PoolArgs& a, unsigned oy, unsigned ox, unsigned& y0,
                                       unsigned& y1, unsigned& x0, unsigned& x1) {
    const int ys = (int)(oy * a.sh) - (int)a.ph, xs = (int)(ox * a.sw) - (int)a.pw;
    y0 = (unsigned)max(ys, 0);
    y1 = (unsigned)min(ys + (int)a.kh, (int)a.h);
    x0 = (unsigned)max(xs, 0);
    x1 = (unsigned)min(xs + (int)a.kw, (int)a.w);
}

// y = (sum of each window) / divisor.
template <typename T>
__device__ __forceinline__ void sum_pool_body(PoolArgs a, const T* __restrict__ x,
                                              T* __restrict__ y, T divisor) {
    const unsigned total = a.planes * a.oh * a.ow;
    GRID_STRIDE(p, total) {
        const unsigned ox = p % a.ow, q = p / a.ow;
        const unsigned oy = q % a.oh, plane = q / a.oh;
        unsigned y0, y1, x0, x1;
        window(a, oy, ox, y0, y1, x0, x1);
        const T* src = x + plane * a.h * a.w;
        T s = T(0);
        for (unsigned r = y0; r < y1; ++r)
            for (unsigned c = x0; c < x1; ++c) s += src[r * a.w + c];
        y[p] = s / divisor;
    }
}

// dx[i] = sum over the windows covering i of g / divisor.
template <typename T>
__device__ __forceinline__ void sum_pool_bwd_body(PoolArgs a, const T* __restrict__ g,
                                                  T* __restrict__ dx, T divisor) {
    const unsigned total = a.planes * a.h * a.w;
    GRID_STRIDE(p, total) {
        const unsigned xx = p % a.w, q = p / a.w;
        const unsigned yy = q % a.h, plane = q / a.h;
        unsigned oy0, oy1, ox0, ox1;
        covering(yy, a.ph, a.kh, a.sh, a.oh, oy0, oy1);
        covering(xx, a.pw, a.kw, a.sw, a.ow, ox0, ox1);
        const T* gp = g + plane * a.oh * a.ow;
        T s = T(0);
        for (unsigned oy = oy0; oy <= oy1; ++oy)
            for (unsigned ox = ox0; ox <= ox1; ++ox) s += gp[oy * a.ow + ox] / divisor;
        dx[p] = s;
    }
}

// y = max of each window, arg = its position y·w + x in the plane (NO_ARG for a window with no
// input inside, impossible when padding ≤ kernel / 2).
template <typename T>
__device__ __forceinline__ void max_pool_body(PoolArgs a, const T* __restrict__ x,
                                              T* __restrict__ y, unsigned* __restrict__ arg) {
    const unsigned total = a.planes * a.oh * a.ow;
    GRID_STRIDE(p, total) {
        const unsigned ox = p % a.ow, q = p / a.ow;
        const unsigned oy = q % a.oh, plane = q / a.oh;
        unsigned y0, y1, x0, x1;
        window(a, oy, ox, y0, y1, x0, x1);
        const T* src = x + plane * a.h * a.w;
        T best = -T(1) / T(0);
        unsigned at = NO_ARG;
        for (unsigned r = y0; r < y1; ++r) {
            for (unsigned c = x0; c < x1; ++c) {
                const T v = src[r * a.w + c];
                // The first element; a strictly larger one; the first NaN after numbers.
                if (at == NO_ARG || v > best || (v != v && best == best)) {
                    best = v;
                    at = r * a.w + c;
                }
            }
        }
        y[p] = best;
        arg[p] = at;
    }
}

// dx[i] = sum of g over the windows covering i whose arg-max is i.
template <typename T>
__device__ __forceinline__ void max_pool_bwd_body(PoolArgs a, const T* __restrict__ g,
                                                  const unsigned* __restrict__ arg,
                                                  T* __restrict__ dx) {
    const unsigned total = a.planes * a.h * a.w;
    GRID_STRIDE(p, total) {
        const unsigned xx = p % a.w, q = p / a.w;
        const unsigned yy = q % a.h, plane = q / a.h;
        unsigned oy0, oy1, ox0, ox1;
        covering(yy, a.ph, a.kh, a.sh, a.oh, oy0, oy1);
        covering(xx, a.pw, a.kw, a.sw, a.ow, ox0, ox1);
        const unsigned base = plane * a.oh * a.ow, me = yy * a.w + xx;
        T s = T(0);
        for (unsigned oy = oy0; oy <= oy1; ++oy)
            for (unsigned ox = ox0; ox <= ox1; ++ox) {
                const unsigned o = base + oy * a.ow + ox;
                if (arg[o] == me) s += g[o];
            }
        dx[p] = s;
    }
}

// y[o] = x at window o's arg-max (0 for a window with none): the adjoint of the backward above,
// which max pooling's second derivative needs.
template <typename T>
__device__ __forceinline__ void max_pool_gather_body(PoolArgs a, const T* __restrict__ x,
                                                     const unsigned* __restrict__ arg,
                                                     T* __restrict__ y) {
    const unsigned total = a.planes * a.oh * a.ow;
    GRID_STRIDE(p, total) {
        const unsigned plane = p / (a.oh * a.ow), at = arg[p];
        y[p] = at == NO_ARG ? T(0) : x[plane * a.h * a.w + at];
    }
}

#define POOL_KERNELS(T, suffix)                                                                 \
    extern "C" __global__ void sum_pool2d_##suffix(PoolArgs a, const T* x, T* y, T divisor) {   \
        sum_pool_body<T>(a, x, y, divisor);                                                     \
    }                                                                                           \
    extern "C" __global__ void sum_pool2d_bwd_##suffix(PoolArgs a, const T* g, T* dx,           \
                                                       T divisor) {                             \
        sum_pool_bwd_body<T>(a, g, dx, divisor);                                                \
    }                                                                                           \
    extern "C" __global__ void max_pool2d_##suffix(PoolArgs a, const T* x, T* y,                \
                                                   unsigned* arg) {                             \
        max_pool_body<T>(a, x, y, arg);                                                         \
    }                                                                                           \
    extern "C" __global__ void max_pool2d_bwd_##suffix(PoolArgs a, const T* g,                  \
                                                       const unsigned* arg, T* dx) {            \
        max_pool_bwd_body<T>(a, g, arg, dx);                                                    \
    }                                                                                           \
    extern "C" __global__ void max_pool2d_gather_##suffix(PoolArgs a, const T* x,               \
                                                          const unsigned* arg, T* y) {          \
        max_pool_gather_body<T>(a, x, arg, y);                                                  \
    }

POOL_KERNELS(float, f32)
POOL_KERNELS(double, f64)
