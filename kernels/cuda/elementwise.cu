// Elementwise kernels: unary maps (forward and backward), broadcasting binary ops, select by
// mask, fill, and copies / conversions between strided views of f32, f64, bf16 and f16.
//
// Inputs are read through strides so views (transposes, broadcasts, slices) need no copy; the
// output is always contiguous. The host coalesces adjacent dimensions that are contiguous for
// every operand before launching, so the common case arrives here as rank 1 (one division-free
// index per element). Index arithmetic is 32-bit: the host refuses tensors of 2^31 elements or
// more, which keeps the per-element divisions cheap.
//
// Every kernel is a grid-stride loop: the host caps the grid at a few waves of blocks, and each
// thread then handles several elements with consecutive threads on consecutive elements
// (coalesced stores).

#define MAX_RANK 8

// Shape of the output and, per input, its strides (0 along broadcast dimensions) and offset.
struct StridedArgs {
    unsigned rank;
    unsigned shape[MAX_RANK];
    unsigned stride_a[MAX_RANK];
    unsigned stride_b[MAX_RANK];
    unsigned offset_a;
    unsigned offset_b;
};

// Offsets of output element `i` in the two inputs.
__device__ __forceinline__ void strided_offsets(const StridedArgs& s, unsigned i, unsigned& oa,
                                                unsigned& ob) {
    oa = s.offset_a;
    ob = s.offset_b;
#pragma unroll
    for (int d = MAX_RANK - 1; d >= 0; --d) {
        if (d < (int)s.rank) {
            unsigned n = s.shape[d];
            unsigned c = i % n;
            i /= n;
            oa += c * s.stride_a[d];
            ob += c * s.stride_b[d];
        }
    }
}

template <typename T> __device__ __forceinline__ T nan_value();
template <> __device__ __forceinline__ float nan_value<float>() { return __int_as_float(0x7fffffff); }
template <> __device__ __forceinline__ double nan_value<double>() {
    return __longlong_as_double(0x7fffffffffffffffLL);
}

// Thin overloads so each formula is written once for float and double.
__device__ __forceinline__ float m_exp(float x) { return expf(x); }
__device__ __forceinline__ double m_exp(double x) { return exp(x); }
__device__ __forceinline__ float m_log(float x) { return logf(x); }
__device__ __forceinline__ double m_log(double x) { return log(x); }
__device__ __forceinline__ float m_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double m_log1p(double x) { return log1p(x); }
__device__ __forceinline__ float m_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double m_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float m_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double m_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float m_pow(float x, float e) { return powf(x, e); }
__device__ __forceinline__ double m_pow(double x, double e) { return pow(x, e); }
__device__ __forceinline__ float m_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double m_abs(double x) { return fabs(x); }
// max/min that ignore a NaN operand, like Rust's f32::max / f64::max on the CPU side.
__device__ __forceinline__ float m_max(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double m_max(double a, double b) { return fmax(a, b); }
__device__ __forceinline__ float m_min(float a, float b) { return fminf(a, b); }
__device__ __forceinline__ double m_min(double a, double b) { return fmin(a, b); }

// The CPU's overflow-free sigmoid: both branches only exponentiate a non-positive number.
template <typename T> __device__ __forceinline__ T sigmoid_of(T x) {
    if (x >= T(0)) return T(1) / (T(1) + m_exp(-x));
    T e = m_exp(x);
    return e / (T(1) + e);
}

// ------------------------------------------------------------------------------------ unary
// Each op: fwd(x, p0, p1) and bwd(x, y, g, p0, p1) = g * dy/dx, matching engine/src/ops/unary.rs.

#define UNARY_OPS(X)                                                                            \
    X(neg, -x, -g)                                                                              \
    X(exp, m_exp(x), g * y)                                                                     \
    X(log, m_log(x), g / x)                                                                     \
    X(sqrt, m_sqrt(x), g / (T(2) * y))                                                          \
    X(square, x * x, T(2) * x * g)                                                              \
    X(abs, m_abs(x), (x > T(0) ? g : (x < T(0) ? -g : T(0))))                                   \
    X(relu, (x > T(0) ? x : T(0)), (x > T(0) ? g : T(0)))                                       \
    X(leaky_relu, (x > T(0) ? x : x * p0), (x > T(0) ? g : g * p0))                             \
    X(sigmoid, sigmoid_of(x), g * y * (T(1) - y))                                               \
    X(tanh, m_tanh(x), g * (T(1) - y * y))                                                      \
    X(softplus, m_max(x, T(0)) + m_log1p(m_exp(-m_abs(x))), g * sigmoid_of(x))                  \
    X(elu, (x > T(0) ? x : p0 * (m_exp(x) - T(1))), (x > T(0) ? g : g * (y + p0)))              \
    X(powf, m_pow(x, p0), g * p0 * m_pow(x, p0 - T(1)))                                         \
    X(clamp, m_min(m_max(x, p0), p1), ((x >= p0 && x <= p1) ? g : T(0)))                        \
    X(affine, x * p0 + p1, g * p0)                                                              \
    X(recip, T(1) / x, -g * y * y)                                                              \
    X(gt_scalar, (x > p0 ? T(1) : T(0)), T(0))                                                  \
    X(copy, x, g)

#define DEFINE_UNARY(name, fwd, bwd)                                                            \
    template <typename T> struct Op_##name {                                                    \
        __device__ __forceinline__ static T forward(T x, T p0, T p1) {                          \
            (void)p0; (void)p1;                                                                 \
            return fwd;                                                                         \
        }                                                                                       \
        __device__ __forceinline__ static T backward(T x, T y, T g, T p0, T p1) {               \
            (void)x; (void)y; (void)p0; (void)p1;                                               \
            return bwd;                                                                         \
        }                                                                                       \
    };
UNARY_OPS(DEFINE_UNARY)

// y[i] = op(x at the strided position of i); only stride_a/offset_a of `s` are used.
template <typename T, typename Op>
__device__ __forceinline__ void unary_body(unsigned n, StridedArgs s, const T* __restrict__ x,
                                           T* __restrict__ y, T p0, T p1) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        unsigned oa, ob;
        strided_offsets(s, i, oa, ob);
        y[i] = Op::forward(x[oa], p0, p1);
    }
}

// dx[i] = op'(x[i], y[i]) * g[i], all contiguous (the forward's saved input and output).
template <typename T, typename Op>
__device__ __forceinline__ void unary_bwd_body(unsigned n, const T* __restrict__ x,
                                               const T* __restrict__ y, const T* __restrict__ g,
                                               T* __restrict__ dx, T p0, T p1) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        dx[i] = Op::backward(x[i], y[i], g[i], p0, p1);
}

#define UNARY_KERNELS(name, fwd, bwd)                                                           \
    extern "C" __global__ void unary_##name##_f32(unsigned n, StridedArgs s, const float* x,    \
                                                  float* y, float p0, float p1) {               \
        unary_body<float, Op_##name<float>>(n, s, x, y, p0, p1);                                \
    }                                                                                           \
    extern "C" __global__ void unary_##name##_f64(unsigned n, StridedArgs s, const double* x,   \
                                                  double* y, double p0, double p1) {            \
        unary_body<double, Op_##name<double>>(n, s, x, y, p0, p1);                              \
    }                                                                                           \
    extern "C" __global__ void unary_bwd_##name##_f32(unsigned n, const float* x,               \
                                                      const float* y, const float* g,           \
                                                      float* dx, float p0, float p1) {          \
        unary_bwd_body<float, Op_##name<float>>(n, x, y, g, dx, p0, p1);                        \
    }                                                                                           \
    extern "C" __global__ void unary_bwd_##name##_f64(unsigned n, const double* x,              \
                                                      const double* y, const double* g,         \
                                                      double* dx, double p0, double p1) {       \
        unary_bwd_body<double, Op_##name<double>>(n, x, y, g, dx, p0, p1);                      \
    }
UNARY_OPS(UNARY_KERNELS)

// ----------------------------------------------------------------------------------- binary

#define BINARY_OPS(X)                                                                           \
    X(add, a + b)                                                                               \
    X(sub, a - b)                                                                               \
    X(mul, a * b)                                                                               \
    X(div, a / b)                                                                               \
    X(pow, m_pow(a, b))                                                                         \
    X(maximum, m_max(a, b))                                                                     \
    X(minimum, m_min(a, b))                                                                     \
    X(gt, (a > b ? decltype(a)(1) : decltype(a)(0)))                                            \
    X(ge, (a >= b ? decltype(a)(1) : decltype(a)(0)))                                           \
    X(lt, (a < b ? decltype(a)(1) : decltype(a)(0)))                                            \
    X(le, (a <= b ? decltype(a)(1) : decltype(a)(0)))                                           \
    X(eq, (a == b ? decltype(a)(1) : decltype(a)(0)))

template <typename T, typename F>
__device__ __forceinline__ void binary_body(unsigned n, StridedArgs s, const T* __restrict__ a,
                                            const T* __restrict__ b, T* __restrict__ y, F f) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        unsigned oa, ob;
        strided_offsets(s, i, oa, ob);
        y[i] = f(a[oa], b[ob]);
    }
}

#define BINARY_KERNELS(name, expr)                                                              \
    extern "C" __global__ void binary_##name##_f32(unsigned n, StridedArgs s, const float* a,   \
                                                   const float* b, float* y) {                  \
        binary_body(n, s, a, b, y, [](float a, float b) { return expr; });           \
    }                                                                                           \
    extern "C" __global__ void binary_##name##_f64(unsigned n, StridedArgs s, const double* a,  \
                                                   const double* b, double* y) {                \
        binary_body(n, s, a, b, y, [](double a, double b) { return expr; });         \
    }
BINARY_OPS(BINARY_KERNELS)

// ------------------------------------------------------------------------------------ select
// y[i] = mask[i] != 0 ? a : b, with a and b read through their strided views (broadcast) and the
// mask dense in the output's shape (the host materialises the mask's broadcast). A NaN mask
// value selects a, like the CPU's `v != 0`. where_cond's forward, and its backward with g as one
// operand and a broadcast zero as the other.

template <typename T>
__device__ __forceinline__ void select_body(unsigned n, StridedArgs s, const T* __restrict__ mask,
                                            const T* __restrict__ a, const T* __restrict__ b,
                                            T* __restrict__ y) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        unsigned oa, ob;
        strided_offsets(s, i, oa, ob);
        y[i] = mask[i] != T(0) ? a[oa] : b[ob];
    }
}

extern "C" __global__ void select_f32(unsigned n, StridedArgs s, const float* mask,
                                      const float* a, const float* b, float* y) {
    select_body(n, s, mask, a, b, y);
}
extern "C" __global__ void select_f64(unsigned n, StridedArgs s, const double* mask,
                                      const double* a, const double* b, double* y) {
    select_body(n, s, mask, a, b, y);
}

// --------------------------------------------------------------------- 16-bit storage types
// bf16 and f16 tensors are stored as their bits and only converted here (arithmetic on them
// happens in f32, in the tensor-core GEMM of gemm_half.cu). Every conversion to them rounds once,
// to nearest even, as the host's (engine/src/dtype.rs): f32 -> bf16 in integer arithmetic (no
// sm_80 instruction, so this module still loads on older GPUs), f32 <-> f16 by cvt, and f64 via
// f32 rounded to odd (truncate, then set the last bit when anything was cut), which keeps enough
// information for the second rounding to give the correctly rounded result.

__device__ __forceinline__ float f64_to_f32_odd(double x) {
    float f = __double2float_rz(x);
    if ((double)f != x && x == x) f = __uint_as_float(__float_as_uint(f) | 1u);
    return f;
}

struct bf16_t {
    unsigned short bits;
    __device__ __forceinline__ explicit bf16_t(float x) {
        const unsigned u = __float_as_uint(x);
        // NaN stays a (quiet) NaN of the same sign; everything else rounds to nearest even.
        bits = (u & 0x7fffffffu) > 0x7f800000u
                   ? (unsigned short)((u >> 16) | 0x40u)
                   : (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
    __device__ __forceinline__ explicit bf16_t(double x) : bf16_t(f64_to_f32_odd(x)) {}
    __device__ __forceinline__ operator float() const {
        return __uint_as_float((unsigned)bits << 16);
    }
};

struct f16_t {
    unsigned short bits;
    __device__ __forceinline__ explicit f16_t(float x) {
        asm("cvt.rn.f16.f32 %0, %1;" : "=h"(bits) : "f"(x));
    }
    __device__ __forceinline__ explicit f16_t(double x) : f16_t(f64_to_f32_odd(x)) {}
    __device__ __forceinline__ operator float() const {
        float f;
        asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(bits));
        return f;
    }
};

// --------------------------------------------------------------------------------------- fill

template <typename T> __device__ __forceinline__ void fill_body(unsigned n, T* __restrict__ y, T v) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        y[i] = v;
}

extern "C" __global__ void fill_f32(unsigned n, float* y, float v) { fill_body(n, y, v); }
extern "C" __global__ void fill_f64(unsigned n, double* y, double v) { fill_body(n, y, v); }
// The 16-bit fills take the value's bits.
extern "C" __global__ void fill_bf16(unsigned n, unsigned short* y, unsigned short v) {
    fill_body(n, y, v);
}
extern "C" __global__ void fill_f16(unsigned n, unsigned short* y, unsigned short v) {
    fill_body(n, y, v);
}

// ------------------------------------------------------------------------------ strided copy
// y at the strided position of i in view b = x at the strided position of i in view a: a copy
// between two arbitrary views of one shape (the engine's contiguous copies, writes into a window
// of a larger tensor for narrow's backward and concat, in-place assignment). With a cast it also
// converts between any two of f32, f64, bf16 and f16.

template <typename S, typename D>
__device__ __forceinline__ void strided_copy_body(unsigned n, StridedArgs s,
                                                  const S* __restrict__ x, D* __restrict__ y) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        unsigned oa, ob;
        strided_offsets(s, i, oa, ob);
        y[ob] = D(x[oa]);
    }
}

#define STRIDED_COPY(name, S, D)                                                                \
    extern "C" __global__ void name(unsigned n, StridedArgs s, const S* x, D* y) {              \
        strided_copy_body(n, s, x, y);                                                          \
    }
STRIDED_COPY(strided_copy_f32, float, float)
STRIDED_COPY(strided_copy_f64, double, double)
STRIDED_COPY(strided_copy_bf16, bf16_t, bf16_t)
STRIDED_COPY(strided_copy_f16, f16_t, f16_t)
STRIDED_COPY(strided_cast_f32_f64, float, double)
STRIDED_COPY(strided_cast_f64_f32, double, float)
STRIDED_COPY(strided_cast_f32_bf16, float, bf16_t)
STRIDED_COPY(strided_cast_f64_bf16, double, bf16_t)
STRIDED_COPY(strided_cast_f16_bf16, f16_t, bf16_t)
STRIDED_COPY(strided_cast_f32_f16, float, f16_t)
STRIDED_COPY(strided_cast_f64_f16, double, f16_t)
STRIDED_COPY(strided_cast_bf16_f16, bf16_t, f16_t)
STRIDED_COPY(strided_cast_bf16_f32, bf16_t, float)
STRIDED_COPY(strided_cast_bf16_f64, bf16_t, double)
STRIDED_COPY(strided_cast_f16_f32, f16_t, float)
STRIDED_COPY(strided_cast_f16_f64, f16_t, double)
