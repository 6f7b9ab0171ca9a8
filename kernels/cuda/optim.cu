// Fused optimiser updates: one pass over a parameter, its gradient and its state, with the same
// formulas and operation order as the CPU kernels (kernels/src/cpu/optim.rs, after PyTorch's
// non-fused Adam/AdamW/SGD). Scalars that depend only on the step (bias corrections, step size)
// are computed once on the host in f64 and passed in.

struct AdamArgs {
    double beta1, beta2, one_minus_beta1, one_minus_beta2;
    double step_size;   // lr / (1 − beta1^step)
    double bc2_sqrt;    // sqrt(1 − beta2^step)
    double eps, weight_decay;
    double decay;       // 1 − lr · weight_decay (AdamW)
    int has_weight_decay, decoupled, amsgrad;
};

struct SgdArgs {
    double lr, momentum, one_minus_dampening, weight_decay;
    int has_weight_decay, has_momentum, nesterov, first;
};

__device__ __forceinline__ float o_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double o_sqrt(double x) { return sqrt(x); }

template <typename T>
__device__ __forceinline__ void adam_body(unsigned n, T* __restrict__ p, const T* __restrict__ g,
                                          T* __restrict__ m, T* __restrict__ v,
                                          T* __restrict__ vmax, AdamArgs h) {
    const T b1 = T(h.beta1), b2 = T(h.beta2), ob1 = T(h.one_minus_beta1),
            ob2 = T(h.one_minus_beta2), step = T(h.step_size), bc2 = T(h.bc2_sqrt),
            eps = T(h.eps), wd = T(h.weight_decay), decay = T(h.decay);
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        T grad = g[i], pi = p[i];
        if (h.has_weight_decay) {
            if (h.decoupled) pi *= decay;
            else grad += wd * pi;
        }
        const T mi = b1 * m[i] + ob1 * grad;
        const T vi = b2 * v[i] + ob2 * grad * grad;
        m[i] = mi;
        v[i] = vi;
        T second = vi;
        if (h.amsgrad) {
            const T vm = vmax[i] > vi ? vmax[i] : vi;
            vmax[i] = vm;
            second = vm;
        }
        const T denom = o_sqrt(second) / bc2 + eps;
        p[i] = pi - step * mi / denom;
    }
}

template <typename T>
__device__ __forceinline__ void sgd_body(unsigned n, T* __restrict__ p, const T* __restrict__ g,
                                         T* __restrict__ buf, SgdArgs h) {
    const T lr = T(h.lr), mom = T(h.momentum), damp = T(h.one_minus_dampening),
            wd = T(h.weight_decay);
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        T d = g[i];
        if (h.has_weight_decay) d += wd * p[i];
        if (h.has_momentum) {
            const T b = h.first ? d : mom * buf[i] + damp * d;
            buf[i] = b;
            d = h.nesterov ? d + mom * b : b;
        }
        p[i] -= lr * d;
    }
}

extern "C" __global__ void adam_f32(unsigned n, float* p, const float* g, float* m, float* v,
                                    float* vmax, AdamArgs h) {
    adam_body<float>(n, p, g, m, v, vmax, h);
}
extern "C" __global__ void adam_f64(unsigned n, double* p, const double* g, double* m, double* v,
                                    double* vmax, AdamArgs h) {
    adam_body<double>(n, p, g, m, v, vmax, h);
}
extern "C" __global__ void sgd_f32(unsigned n, float* p, const float* g, float* buf, SgdArgs h) {
    sgd_body<float>(n, p, g, buf, h);
}
extern "C" __global__ void sgd_f64(unsigned n, double* p, const double* g, double* buf,
                                   SgdArgs h) {
    sgd_body<double>(n, p, g, buf, h);
}
