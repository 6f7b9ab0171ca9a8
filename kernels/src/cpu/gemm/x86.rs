//! AVX2 + FMA micro-kernels (x86-64), chosen at run time.

use super::kernel::MicroKernel;
use std::arch::x86_64::*;
use std::sync::OnceLock;

/// Whether this CPU has AVX2 and FMA (detected once).
pub(super) fn has_avx2_fma() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// f32 6×16 micro-kernel: 12 ymm accumulators, per k step two B loads and six broadcasts of A.
pub(super) struct Avx2F32;

impl MicroKernel<f32> for Avx2F32 {
    const MR: usize = 6;
    const NR: usize = 16;
    const MC: usize = 144;
    const KC: usize = 256;
    const NC: usize = 4080;

    #[inline]
    unsafe fn run(kc: usize, a: *const f32, b: *const f32, c: *mut f32, rsc: usize, beta: f32) {
        debug_assert!(has_avx2_fma());
        kernel_f32_6x16(kc, a, b, c, rsc, beta)
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_f32_6x16(kc: usize, a: *const f32, b: *const f32, c: *mut f32, rsc: usize, beta: f32) {
    for i in 0..6 {
        _mm_prefetch::<_MM_HINT_T0>(c.add(i * rsc).cast());
        _mm_prefetch::<_MM_HINT_T0>(c.add(i * rsc + 15).cast());
    }
    let mut acc = [[_mm256_setzero_ps(); 2]; 6];
    let (mut a, mut b) = (a, b);
    for _ in 0..kc {
        let b0 = _mm256_loadu_ps(b);
        let b1 = _mm256_loadu_ps(b.add(8));
        for (i, row) in acc.iter_mut().enumerate() {
            let ai = _mm256_broadcast_ss(&*a.add(i));
            row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
            row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
        }
        a = a.add(6);
        b = b.add(16);
    }
    let vbeta = _mm256_set1_ps(beta);
    for (i, row) in acc.iter().enumerate() {
        let cr = c.add(i * rsc);
        for (h, &v) in row.iter().enumerate() {
            let cp = cr.add(8 * h);
            let out = if beta == 0.0 {
                v
            } else if beta == 1.0 {
                _mm256_add_ps(v, _mm256_loadu_ps(cp))
            } else {
                _mm256_fmadd_ps(_mm256_loadu_ps(cp), vbeta, v)
            };
            _mm256_storeu_ps(cp, out);
        }
    }
}

/// f64 6×8 micro-kernel: 12 ymm accumulators of 4 doubles.
pub(super) struct Avx2F64;

impl MicroKernel<f64> for Avx2F64 {
    const MR: usize = 6;
    const NR: usize = 8;
    const MC: usize = 72;
    const KC: usize = 256;
    const NC: usize = 2040;

    #[inline]
    unsafe fn run(kc: usize, a: *const f64, b: *const f64, c: *mut f64, rsc: usize, beta: f64) {
        debug_assert!(has_avx2_fma());
        kernel_f64_6x8(kc, a, b, c, rsc, beta)
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_f64_6x8(kc: usize, a: *const f64, b: *const f64, c: *mut f64, rsc: usize, beta: f64) {
    for i in 0..6 {
        _mm_prefetch::<_MM_HINT_T0>(c.add(i * rsc).cast());
        _mm_prefetch::<_MM_HINT_T0>(c.add(i * rsc + 7).cast());
    }
    let mut acc = [[_mm256_setzero_pd(); 2]; 6];
    let (mut a, mut b) = (a, b);
    for _ in 0..kc {
        let b0 = _mm256_loadu_pd(b);
        let b1 = _mm256_loadu_pd(b.add(4));
        for (i, row) in acc.iter_mut().enumerate() {
            let ai = _mm256_broadcast_sd(&*a.add(i));
            row[0] = _mm256_fmadd_pd(ai, b0, row[0]);
            row[1] = _mm256_fmadd_pd(ai, b1, row[1]);
        }
        a = a.add(6);
        b = b.add(8);
    }
    let vbeta = _mm256_set1_pd(beta);
    for (i, row) in acc.iter().enumerate() {
        let cr = c.add(i * rsc);
        for (h, &v) in row.iter().enumerate() {
            let cp = cr.add(4 * h);
            let out = if beta == 0.0 {
                v
            } else if beta == 1.0 {
                _mm256_add_pd(v, _mm256_loadu_pd(cp))
            } else {
                _mm256_fmadd_pd(_mm256_loadu_pd(cp), vbeta, v)
            };
            _mm256_storeu_pd(cp, out);
        }
    }
}
