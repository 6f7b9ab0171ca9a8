//! AVX2 + FMA micro-kernels (x86-64), chosen at run time.

use super::kernel::MicroKernel;
use super::{pack, MatRef};
use std::arch::x86_64::*;
use std::sync::OnceLock;

/// Whether this CPU has AVX2 and FMA (detected once).
pub(super) fn has_avx2_fma() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// The text of one k step of a 6-row micro-kernel: two vectors of B from `[{b} + off]`, six
/// broadcasts of A (rows 0-2 at `{a0} + i·{rs}`, rows 3-5 at `{a3} + i·{rs}`, strides in bytes)
/// and twelve FMAs into ymm0..ymm11 (row `i` in ymm(2i), ymm(2i+1)); then A advances by `{cs}`.
macro_rules! k_step {
    ($mov:literal, $bc:literal, $ptr:literal, $fma:literal, $o0:literal, $o1:literal) => {
        concat!(
            $mov,
            " ymm12, [{b} + ",
            $o0,
            "]\n",
            $mov,
            " ymm13, [{b} + ",
            $o1,
            "]\n",
            $bc,
            " ymm14, ",
            $ptr,
            " ptr [{a0}]\n",
            $fma,
            " ymm0, ymm14, ymm12\n",
            $fma,
            " ymm1, ymm14, ymm13\n",
            $bc,
            " ymm15, ",
            $ptr,
            " ptr [{a0} + {rs}]\n",
            $fma,
            " ymm2, ymm15, ymm12\n",
            $fma,
            " ymm3, ymm15, ymm13\n",
            $bc,
            " ymm14, ",
            $ptr,
            " ptr [{a0} + 2*{rs}]\n",
            $fma,
            " ymm4, ymm14, ymm12\n",
            $fma,
            " ymm5, ymm14, ymm13\n",
            $bc,
            " ymm15, ",
            $ptr,
            " ptr [{a3}]\n",
            $fma,
            " ymm6, ymm15, ymm12\n",
            $fma,
            " ymm7, ymm15, ymm13\n",
            $bc,
            " ymm14, ",
            $ptr,
            " ptr [{a3} + {rs}]\n",
            $fma,
            " ymm8, ymm14, ymm12\n",
            $fma,
            " ymm9, ymm14, ymm13\n",
            $bc,
            " ymm15, ",
            $ptr,
            " ptr [{a3} + 2*{rs}]\n",
            $fma,
            " ymm10, ymm15, ymm12\n",
            $fma,
            " ymm11, ymm15, ymm13\n",
            "add {a0}, {cs}\n",
            "add {a3}, {cs}\n",
        )
    };
}

/// Defines an AVX2+FMA 6-row micro-kernel `$name(kc, a, rsa, csa, b, c, rsc, beta)` with two
/// vectors (64 bytes) of B per k step and twelve accumulators. The k loop is written in inline
/// assembly (unrolled four times) so that strided A (`rsa`, `csa` in elements) costs only an
/// indexed addressing mode, and the register allocation is fixed.
macro_rules! avx2_kernel {
    ($name:ident, $t:ty, $lanes:expr, $mov:literal, $bc:literal, $ptr:literal, $fma:literal,
     $zero:ident, $load:ident, $store:ident, $vfma:ident, $add:ident, $set1:ident) => {
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name(kc: usize, a: *const $t, rsa: usize, csa: usize, b: *const $t, c: *mut $t, rsc: usize, beta: $t) {
            for i in 0..6 {
                _mm_prefetch::<_MM_HINT_T0>(c.add(i * rsc).cast());
                _mm_prefetch::<_MM_HINT_T0>(c.add(i * rsc + 2 * $lanes - 1).cast());
            }
            let sz = std::mem::size_of::<$t>();
            let mut acc = [$zero(); 12];
            let [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11] = &mut acc;
            std::arch::asm!(
                "test {k4}, {k4}",
                "jz 3f",
                "2:",
                k_step!($mov, $bc, $ptr, $fma, "0", "32"),
                k_step!($mov, $bc, $ptr, $fma, "64", "96"),
                k_step!($mov, $bc, $ptr, $fma, "128", "160"),
                k_step!($mov, $bc, $ptr, $fma, "192", "224"),
                "add {b}, 256",
                "dec {k4}",
                "jnz 2b",
                "3:",
                "test {kr}, {kr}",
                "jz 5f",
                "4:",
                k_step!($mov, $bc, $ptr, $fma, "0", "32"),
                "add {b}, 64",
                "dec {kr}",
                "jnz 4b",
                "5:",
                k4 = inout(reg) kc / 4 => _,
                kr = inout(reg) kc % 4 => _,
                a0 = inout(reg) a => _,
                a3 = inout(reg) a.add(3 * rsa) => _,
                b = inout(reg) b => _,
                rs = in(reg) rsa * sz,
                cs = in(reg) csa * sz,
                inout("ymm0") *c0,
                inout("ymm1") *c1,
                inout("ymm2") *c2,
                inout("ymm3") *c3,
                inout("ymm4") *c4,
                inout("ymm5") *c5,
                inout("ymm6") *c6,
                inout("ymm7") *c7,
                inout("ymm8") *c8,
                inout("ymm9") *c9,
                inout("ymm10") *c10,
                inout("ymm11") *c11,
                out("ymm12") _,
                out("ymm13") _,
                out("ymm14") _,
                out("ymm15") _,
                options(nostack, readonly),
            );
            let vbeta = $set1(beta);
            for (i, row) in acc.chunks_exact(2).enumerate() {
                let cr = c.add(i * rsc);
                for (h, &v) in row.iter().enumerate() {
                    let cp = cr.add($lanes * h);
                    let out = if beta == 0.0 {
                        v
                    } else if beta == 1.0 {
                        $add(v, $load(cp))
                    } else {
                        $vfma($load(cp), vbeta, v)
                    };
                    $store(cp, out);
                }
            }
        }
    };
}

avx2_kernel!(
    f32_6x16,
    f32,
    8,
    "vmovups",
    "vbroadcastss",
    "dword",
    "vfmadd231ps",
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps,
    _mm256_set1_ps
);
avx2_kernel!(
    f64_6x8,
    f64,
    4,
    "vmovupd",
    "vbroadcastsd",
    "qword",
    "vfmadd231pd",
    _mm256_setzero_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_fmadd_pd,
    _mm256_add_pd,
    _mm256_set1_pd
);

/// f32 6×16 micro-kernel: 12 ymm accumulators, per k step two B loads and six broadcasts of A.
pub(super) struct Avx2F32;

impl MicroKernel<f32> for Avx2F32 {
    const MR: usize = 6;
    const NR: usize = 16;
    const MC: usize = 144;
    const KC: usize = 256;
    const NC: usize = 4080;

    #[inline]
    unsafe fn run(
        kc: usize,
        a: *const f32,
        rsa: usize,
        csa: usize,
        b: *const f32,
        c: *mut f32,
        rsc: usize,
        beta: f32,
    ) {
        debug_assert!(has_avx2_fma());
        f32_6x16(kc, a, rsa, csa, b, c, rsc, beta)
    }

    fn pack_a(a: MatRef<f32>, i0: usize, mc: usize, p0: usize, kc: usize, dst: &mut [f32]) {
        // SAFETY: this kernel is only selected when the CPU has AVX2 and FMA.
        unsafe { pack_a_f32(a, i0, mc, p0, kc, dst) }
    }

    fn pack_b(b: MatRef<f32>, p0: usize, kc: usize, j0: usize, nc: usize, dst: &mut [f32]) {
        // SAFETY: as above.
        unsafe { pack_b_f32(b, p0, kc, j0, nc, dst) }
    }
}

/// `out[q][j] = r[j][q]`: transposes an 8×8 block of f32 held as eight rows.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(s0, s4),
        _mm256_permute2f128_ps::<0x20>(s1, s5),
        _mm256_permute2f128_ps::<0x20>(s2, s6),
        _mm256_permute2f128_ps::<0x20>(s3, s7),
        _mm256_permute2f128_ps::<0x31>(s0, s4),
        _mm256_permute2f128_ps::<0x31>(s1, s5),
        _mm256_permute2f128_ps::<0x31>(s2, s6),
        _mm256_permute2f128_ps::<0x31>(s3, s7),
    ]
}

/// Packs A for the f32 kernel; row-major A (the interleave of six rows) goes through 8×8
/// register transposes, everything else through the portable loops compiled with AVX2.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_a_f32(a: MatRef<f32>, i0: usize, mc: usize, p0: usize, kc: usize, dst: &mut [f32]) {
    let full = mc / 6;
    if a.cs != 1 || a.rs == 1 || full == 0 {
        return pack::pack_a_mr::<f32, 6>(a, i0, mc, p0, kc, dst);
    }
    let rs = a.rs;
    assert!(dst.len() >= full * 6 * kc);
    for s in 0..full {
        // SAFETY: rows i0+6s..i0+6s+6 < m and columns p0..p0+kc ≤ k are inside A (checked by
        // `gemm_impl`); the sliver's 6·kc outputs are inside `dst` (asserted).
        let src = a.data.as_ptr().add((i0 + 6 * s) * rs + p0);
        let out = dst.as_mut_ptr().add(6 * kc * s);
        let zero = _mm256_setzero_ps();
        let mut p = 0;
        // Each transposed column is stored as 8 lanes of which the last 2 spill into the next
        // column's slot (rewritten right after), hence `p + 8 < kc`: the spill stays inside.
        while p + 8 < kc {
            let r = [
                _mm256_loadu_ps(src.add(p)),
                _mm256_loadu_ps(src.add(rs + p)),
                _mm256_loadu_ps(src.add(2 * rs + p)),
                _mm256_loadu_ps(src.add(3 * rs + p)),
                _mm256_loadu_ps(src.add(4 * rs + p)),
                _mm256_loadu_ps(src.add(5 * rs + p)),
                zero,
                zero,
            ];
            for (q, col) in transpose8(r).into_iter().enumerate() {
                _mm256_storeu_ps(out.add(6 * (p + q)), col);
            }
            p += 8;
        }
        for p in p..kc {
            for i in 0..6 {
                *out.add(6 * p + i) = *src.add(i * rs + p);
            }
        }
    }
    if full * 6 < mc {
        pack::pack_a_mr::<f32, 6>(
            a,
            i0 + 6 * full,
            mc - 6 * full,
            p0,
            kc,
            &mut dst[6 * kc * full..],
        );
    }
}

/// Packs B for the f32 kernel; column-major B (a transposed view: sixteen columns to
/// interleave) goes through 8×8 register transposes, everything else through the portable loops
/// compiled with AVX2.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_b_f32(b: MatRef<f32>, p0: usize, kc: usize, j0: usize, nc: usize, dst: &mut [f32]) {
    let full = nc / 16;
    if b.rs != 1 || b.cs == 1 || full == 0 {
        return pack::pack_b_nr::<f32, 16>(b, p0, kc, j0, nc, dst);
    }
    let cs = b.cs;
    assert!(dst.len() >= full * 16 * kc);
    for s in 0..full {
        // SAFETY: columns j0+16s..j0+16s+16 < n and rows p0..p0+kc ≤ k are inside B (checked by
        // `gemm_impl`); the sliver's 16·kc outputs are inside `dst` (asserted).
        let src = b.data.as_ptr().add((j0 + 16 * s) * cs + p0);
        let out = dst.as_mut_ptr().add(16 * kc * s);
        let mut p = 0;
        while p + 8 <= kc {
            for h in 0..2 {
                let r: [__m256; 8] =
                    std::array::from_fn(|j| _mm256_loadu_ps(src.add((8 * h + j) * cs + p)));
                for (q, row) in transpose8(r).into_iter().enumerate() {
                    _mm256_storeu_ps(out.add(16 * (p + q) + 8 * h), row);
                }
            }
            p += 8;
        }
        for p in p..kc {
            for j in 0..16 {
                *out.add(16 * p + j) = *src.add(j * cs + p);
            }
        }
    }
    if full * 16 < nc {
        pack::pack_b_nr::<f32, 16>(
            b,
            p0,
            kc,
            j0 + 16 * full,
            nc - 16 * full,
            &mut dst[16 * kc * full..],
        );
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
    unsafe fn run(
        kc: usize,
        a: *const f64,
        rsa: usize,
        csa: usize,
        b: *const f64,
        c: *mut f64,
        rsc: usize,
        beta: f64,
    ) {
        debug_assert!(has_avx2_fma());
        f64_6x8(kc, a, rsa, csa, b, c, rsc, beta)
    }

    fn pack_a(a: MatRef<f64>, i0: usize, mc: usize, p0: usize, kc: usize, dst: &mut [f64]) {
        // SAFETY: this kernel is only selected when the CPU has AVX2 and FMA.
        unsafe { pack_a_f64(a, i0, mc, p0, kc, dst) }
    }

    fn pack_b(b: MatRef<f64>, p0: usize, kc: usize, j0: usize, nc: usize, dst: &mut [f64]) {
        // SAFETY: as above.
        unsafe { pack_b_f64(b, p0, kc, j0, nc, dst) }
    }
}

/// The portable packing loops, compiled with AVX2 (wider copies and shuffles).
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_a_f64(a: MatRef<f64>, i0: usize, mc: usize, p0: usize, kc: usize, dst: &mut [f64]) {
    pack::pack_a_mr::<f64, 6>(a, i0, mc, p0, kc, dst)
}

#[target_feature(enable = "avx2,fma")]
unsafe fn pack_b_f64(b: MatRef<f64>, p0: usize, kc: usize, j0: usize, nc: usize, dst: &mut [f64]) {
    pack::pack_b_nr::<f64, 8>(b, p0, kc, j0, nc, dst)
}
