// On-device random numbers from Philox 4x32-10 (Salmon et al. 2011), the generator of
// engine/src/rng.rs: block j of a stream with key (seed) and start counter c0 is
// philox([c0 + j (low, high), 0, 0], seed), four 32-bit words. Each kernel maps elements to
// words exactly as the CPU Rng consumes them, so a GPU tensor drawn from a stream position that
// starts a block equals the CPU tensor drawn from the same position:
//   normal:  4 words per element (two u64 -> two 53-bit uniforms -> Box-Muller cosine branch)
//   uniform: 2 words per element (one u64 -> 53-bit uniform)
//   dropout: 1 word per element (kept when the word >= threshold)
// Values are computed in double and rounded once to the output type, as the CPU does.

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

__device__ __forceinline__ uint4 philox4x32_10(uint4 c, uint2 k) {
#pragma unroll
    for (int r = 0; r < 10; ++r) {
        const unsigned hi0 = __umulhi(PHILOX_M0, c.x), lo0 = PHILOX_M0 * c.x;
        const unsigned hi1 = __umulhi(PHILOX_M1, c.z), lo1 = PHILOX_M1 * c.z;
        c = make_uint4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
        k.x += PHILOX_W0;
        k.y += PHILOX_W1;
    }
    return c;
}

__device__ __forceinline__ uint4 philox_block(unsigned long long seed, unsigned long long ctr) {
    return philox4x32_10(make_uint4((unsigned)ctr, (unsigned)(ctr >> 32), 0u, 0u),
                         make_uint2((unsigned)seed, (unsigned)(seed >> 32)));
}

// (hi << 32 | lo) >> 11 scaled to [0, 1): the CPU's uniform_f64.
__device__ __forceinline__ double unit_f64(unsigned hi, unsigned lo) {
    const unsigned long long v = ((unsigned long long)hi << 32) | lo;
    return (double)(v >> 11) * (1.0 / 9007199254740992.0);
}

template <typename T>
__device__ __forceinline__ void normal_body(unsigned n, unsigned long long seed,
                                            unsigned long long ctr, double mean, double std,
                                            T* __restrict__ out) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const uint4 w = philox_block(seed, ctr + i);
        const double u1 = 1.0 - unit_f64(w.x, w.y);  // (0, 1]: the log is finite
        const double u2 = unit_f64(w.z, w.w);
        const double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        out[i] = T(mean + std * z);
    }
}

template <typename T>
__device__ __forceinline__ void uniform_body(unsigned n, unsigned long long seed,
                                             unsigned long long ctr, double low, double high,
                                             T* __restrict__ out) {
    const unsigned pairs = (n + 1) / 2;
    for (unsigned j = blockIdx.x * blockDim.x + threadIdx.x; j < pairs;
         j += gridDim.x * blockDim.x) {
        const uint4 w = philox_block(seed, ctr + j);
        out[2 * j] = T(low + (high - low) * unit_f64(w.x, w.y));
        if (2 * j + 1 < n) out[2 * j + 1] = T(low + (high - low) * unit_f64(w.z, w.w));
    }
}

// out[i] = keep when word i >= threshold, else 0 (threshold = ceil(p · 2^32), up to 2^32).
template <typename T>
__device__ __forceinline__ void dropout_mask_body(unsigned n, unsigned long long seed,
                                                  unsigned long long ctr,
                                                  unsigned long long threshold, T keep,
                                                  T* __restrict__ out) {
    const unsigned quads = (n + 3) / 4;
    for (unsigned j = blockIdx.x * blockDim.x + threadIdx.x; j < quads;
         j += gridDim.x * blockDim.x) {
        const uint4 w = philox_block(seed, ctr + j);
        const unsigned words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const unsigned i = 4 * j + q;
            if (i < n) out[i] = (unsigned long long)words[q] >= threshold ? keep : T(0);
        }
    }
}

#define RANDOM_KERNELS(T, sfx)                                                                  \
    extern "C" __global__ void philox_normal_##sfx(unsigned n, unsigned long long seed,         \
                                                   unsigned long long ctr, double mean,         \
                                                   double std, T* out) {                        \
        normal_body<T>(n, seed, ctr, mean, std, out);                                           \
    }                                                                                           \
    extern "C" __global__ void philox_uniform_##sfx(unsigned n, unsigned long long seed,        \
                                                    unsigned long long ctr, double low,         \
                                                    double high, T* out) {                      \
        uniform_body<T>(n, seed, ctr, low, high, out);                                          \
    }                                                                                           \
    extern "C" __global__ void philox_dropout_mask_##sfx(                                       \
        unsigned n, unsigned long long seed, unsigned long long ctr,                            \
        unsigned long long threshold, T keep, T* out) {                                         \
        dropout_mask_body<T>(n, seed, ctr, threshold, keep, out);                               \
    }
RANDOM_KERNELS(float, f32)
RANDOM_KERNELS(double, f64)
