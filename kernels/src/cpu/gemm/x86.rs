//! AVX2 + FMA and AVX-512 micro-kernels (x86-64), chosen at run time.

use super::kernel::MicroKernel;
use super::{pack, MatRef};
use std::arch::x86_64::*;
use std::sync::OnceLock;

/// Whether this CPU has AVX2 and FMA (detected once).
pub(super) fn has_avx2_fma() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// Whether this CPU has AVX-512F besides AVX2 and FMA (detected once).
pub(super) fn has_avx512f() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| has_avx2_fma() && is_x86_feature_detected!("avx512f"))
}

/// The text of one k step of a 6-row micro-kernel on `$r` registers (`"ymm"` or `"zmm"`): two
/// vectors of B from `[{b} + off]`, six broadcasts of A (rows 0-2 at `{a0} + i·{rs}`, rows 3-5
/// at `{a3} + i·{rs}`, strides in bytes) and twelve FMAs into registers 0..11 (row `i` in
/// registers 2i and 2i+1); then A advances by `{cs}`. Registers 12-15 are scratch.
macro_rules! k_step {
    ($r:literal, $mov:literal, $bc:literal, $ptr:literal, $fma:literal, $o0:literal, $o1:literal) => {
        concat!(
            $mov,
            " ",
            $r,
            "12, [{b} + ",
            $o0,
            "]\n",
            $mov,
            " ",
            $r,
            "13, [{b} + ",
            $o1,
            "]\n",
            $bc,
            " ",
            $r,
            "14, ",
            $ptr,
            " ptr [{a0}]\n",
            $fma,
            " ",
            $r,
            "0, ",
            $r,
            "14, ",
            $r,
            "12\n",
            $fma,
            " ",
            $r,
            "1, ",
            $r,
            "14, ",
            $r,
            "13\n",
            $bc,
            " ",
            $r,
            "15, ",
            $ptr,
            " ptr [{a0} + {rs}]\n",
            $fma,
            " ",
            $r,
            "2, ",
            $r,
            "15, ",
            $r,
            "12\n",
            $fma,
            " ",
            $r,
            "3, ",
            $r,
            "15, ",
            $r,
            "13\n",
            $bc,
            " ",
            $r,
            "14, ",
            $ptr,
            " ptr [{a0} + 2*{rs}]\n",
            $fma,
            " ",
            $r,
            "4, ",
            $r,
            "14, ",
            $r,
            "12\n",
            $fma,
            " ",
            $r,
            "5, ",
            $r,
            "14, ",
            $r,
            "13\n",
            $bc,
            " ",
            $r,
            "15, ",
            $ptr,
            " ptr [{a3}]\n",
            $fma,
            " ",
            $r,
            "6, ",
            $r,
            "15, ",
            $r,
            "12\n",
            $fma,
            " ",
            $r,
            "7, ",
            $r,
            "15, ",
            $r,
            "13\n",
            $bc,
            " ",
            $r,
            "14, ",
            $ptr,
            " ptr [{a3} + {rs}]\n",
            $fma,
            " ",
            $r,
            "8, ",
            $r,
            "14, ",
            $r,
            "12\n",
            $fma,
            " ",
            $r,
            "9, ",
            $r,
            "14, ",
            $r,
            "13\n",
            $bc,
            " ",
            $r,
            "15, ",
            $ptr,
            " ptr [{a3} + 2*{rs}]\n",
            $fma,
            " ",
            $r,
            "10, ",
            $r,
            "15, ",
            $r,
            "12\n",
            $fma,
            " ",
            $r,
            "11, ",
            $r,
            "15, ",
            $r,
            "13\n",
            "add {a0}, {cs}\n",
            "add {a3}, {cs}\n",
        )
    };
}

/// Defines a 6-row FMA micro-kernel `$name(kc, a, rsa, csa, b, c, rsc, beta)` with two vectors
/// of B per k step and twelve accumulators, on the registers `$regs` (`$r`0..15) under the target
/// features `$feat`: AVX2 (ymm, 6×16 f32 / 6×8 f64) or AVX-512 (zmm, 6×32 f32). The k loop is
/// written in inline assembly (unrolled four times, B offsets `$off`, `$step` bytes of B per k
/// step) so that strided A (`rsa`, `csa` in elements) costs only an indexed addressing mode, and
/// the register allocation is fixed. Every C element is one chain of FMAs in increasing k, as in
/// every other kernel, so all of them give the same bits.
macro_rules! fma_kernel {
    ($name:ident, $feat:literal, $t:ty, $vt:ty, $lanes:expr, $r:literal, [$($reg:tt),*],
     [$o0:literal, $o1:literal, $o2:literal, $o3:literal, $o4:literal, $o5:literal, $o6:literal, $o7:literal],
     $step:literal, $step4:literal,
     $mov:literal, $bc:literal, $ptr:literal, $fma:literal,
     $zero:ident, $load:ident, $store:ident, $vfma:ident, $add:ident, $set1:ident) => {
        #[target_feature(enable = $feat)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name(kc: usize, a: *const $t, rsa: usize, csa: usize, b: *const $t, c: *mut $t, rsc: usize, beta: $t) {
            for i in 0..6 {
                _mm_prefetch::<_MM_HINT_T0>(c.add(i * rsc).cast());
                _mm_prefetch::<_MM_HINT_T0>(c.add(i * rsc + 2 * $lanes - 1).cast());
            }
            let sz = std::mem::size_of::<$t>();
            let mut acc: [$vt; 12] = [$zero(); 12];
            let [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11] = &mut acc;
            fma_kernel!(@asm $r, [$($reg),*], $o0, $o1, $o2, $o3, $o4, $o5, $o6, $o7, $step, $step4,
                $mov, $bc, $ptr, $fma, kc, a, rsa, csa, b, sz,
                c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11);
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
    (@asm $r:literal, [$g0:tt, $g1:tt, $g2:tt, $g3:tt, $g4:tt, $g5:tt,
      $g6:tt, $g7:tt, $g8:tt, $g9:tt, $g10:tt, $g11:tt,
      $g12:tt, $g13:tt, $g14:tt, $g15:tt],
     $o0:literal, $o1:literal, $o2:literal, $o3:literal, $o4:literal, $o5:literal, $o6:literal,
     $o7:literal, $step:literal, $step4:literal, $mov:literal, $bc:literal, $ptr:literal,
     $fma:literal, $kc:ident, $a:ident, $rsa:ident, $csa:ident, $b:ident, $sz:ident,
     $c0:ident, $c1:ident, $c2:ident, $c3:ident, $c4:ident, $c5:ident, $c6:ident, $c7:ident,
     $c8:ident, $c9:ident, $c10:ident, $c11:ident) => {
        std::arch::asm!(
            "test {k4}, {k4}",
            "jz 3f",
            "2:",
            k_step!($r, $mov, $bc, $ptr, $fma, $o0, $o1),
            k_step!($r, $mov, $bc, $ptr, $fma, $o2, $o3),
            k_step!($r, $mov, $bc, $ptr, $fma, $o4, $o5),
            k_step!($r, $mov, $bc, $ptr, $fma, $o6, $o7),
            concat!("add {b}, ", $step4),
            "dec {k4}",
            "jnz 2b",
            "3:",
            "test {kr}, {kr}",
            "jz 5f",
            "4:",
            k_step!($r, $mov, $bc, $ptr, $fma, $o0, $o1),
            concat!("add {b}, ", $step),
            "dec {kr}",
            "jnz 4b",
            "5:",
            k4 = inout(reg) $kc / 4 => _,
            kr = inout(reg) $kc % 4 => _,
            a0 = inout(reg) $a => _,
            a3 = inout(reg) $a.add(3 * $rsa) => _,
            b = inout(reg) $b => _,
            rs = in(reg) $rsa * $sz,
            cs = in(reg) $csa * $sz,
            inout($g0) *$c0,
            inout($g1) *$c1,
            inout($g2) *$c2,
            inout($g3) *$c3,
            inout($g4) *$c4,
            inout($g5) *$c5,
            inout($g6) *$c6,
            inout($g7) *$c7,
            inout($g8) *$c8,
            inout($g9) *$c9,
            inout($g10) *$c10,
            inout($g11) *$c11,
            out($g12) _,
            out($g13) _,
            out($g14) _,
            out($g15) _,
            options(nostack, readonly),
        )
    };
}

fma_kernel!(
    f32_6x16,
    "avx2,fma",
    f32,
    __m256,
    8,
    "ymm",
    [
        "ymm0", "ymm1", "ymm2", "ymm3", "ymm4", "ymm5", "ymm6", "ymm7", "ymm8", "ymm9", "ymm10",
        "ymm11", "ymm12", "ymm13", "ymm14", "ymm15"
    ],
    ["0", "32", "64", "96", "128", "160", "192", "224"],
    "64",
    "256",
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
fma_kernel!(
    f64_6x8,
    "avx2,fma",
    f64,
    __m256d,
    4,
    "ymm",
    [
        "ymm0", "ymm1", "ymm2", "ymm3", "ymm4", "ymm5", "ymm6", "ymm7", "ymm8", "ymm9", "ymm10",
        "ymm11", "ymm12", "ymm13", "ymm14", "ymm15"
    ],
    ["0", "32", "64", "96", "128", "160", "192", "224"],
    "64",
    "256",
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
fma_kernel!(
    f32_6x32,
    "avx512f",
    f32,
    __m512,
    16,
    "zmm",
    [
        "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10",
        "zmm11", "zmm12", "zmm13", "zmm14", "zmm15"
    ],
    ["0", "64", "128", "192", "256", "320", "384", "448"],
    "128",
    "512",
    "vmovups",
    "vbroadcastss",
    "dword",
    "vfmadd231ps",
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_fmadd_ps,
    _mm512_add_ps,
    _mm512_set1_ps
);

/// Declares an f32 6-row micro-kernel type over the kernel function `$run` (`$nr` columns),
/// selected only when `$has()` holds. Both widths share the packing: A in the same 6-row
/// slivers, B in `$nr`-column slivers through the same 8×8 transposes.
macro_rules! f32_kernel {
    ($(#[$doc:meta])* $name:ident, $run:ident, $nr:literal, $nc:literal, $has:ident) => {
        $(#[$doc])*
        pub(super) struct $name;

        impl MicroKernel<f32> for $name {
            const MR: usize = 6;
            const NR: usize = $nr;
            const MC: usize = 144;
            const KC: usize = 256;
            const NC: usize = $nc;

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
                debug_assert!($has());
                $run(kc, a, rsa, csa, b, c, rsc, beta)
            }

            fn pack_a(a: MatRef<f32>, i0: usize, mc: usize, p0: usize, kc: usize, dst: &mut [f32]) {
                // SAFETY: this kernel is only selected when `$has()` holds, which implies AVX2
                // and FMA.
                unsafe { pack_a_f32(a, i0, mc, p0, kc, dst) }
            }

            fn pack_b(b: MatRef<f32>, p0: usize, kc: usize, j0: usize, nc: usize, dst: &mut [f32]) {
                // SAFETY: as above.
                unsafe { pack_b_f32::<$nr>(b, p0, kc, j0, nc, dst) }
            }
        }
    };
}

f32_kernel!(
    /// f32 6×32 micro-kernel: 12 zmm accumulators, per k step two B loads and six broadcasts
    /// of A for twice the multiply-adds of [`Avx2F32`]'s step.
    Avx512F32, f32_6x32, 32, 4064, has_avx512f
);
f32_kernel!(
    /// f32 6×16 micro-kernel: 12 ymm accumulators, per k step two B loads and six broadcasts
    /// of A.
    Avx2F32, f32_6x16, 16, 4080, has_avx2_fma
);

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

/// Packs B into `NR`-column slivers (16 or 32) for the f32 kernels; column-major B (a
/// transposed view: NR columns to interleave) goes through 8×8 register transposes, everything
/// else through the portable loops compiled with AVX2.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn pack_b_f32<const NR: usize>(
    b: MatRef<f32>,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    dst: &mut [f32],
) {
    let full = nc / NR;
    if b.rs != 1 || b.cs == 1 || full == 0 {
        return pack::pack_b_nr::<f32, NR>(b, p0, kc, j0, nc, dst);
    }
    let cs = b.cs;
    assert!(dst.len() >= full * NR * kc);
    for s in 0..full {
        // SAFETY: columns j0+NR·s..j0+NR·s+NR < n and rows p0..p0+kc ≤ k are inside B (checked
        // by `gemm_impl`); the sliver's NR·kc outputs are inside `dst` (asserted).
        let src = b.data.as_ptr().add((j0 + NR * s) * cs + p0);
        let out = dst.as_mut_ptr().add(NR * kc * s);
        let mut p = 0;
        while p + 8 <= kc {
            for h in 0..NR / 8 {
                let r: [__m256; 8] =
                    std::array::from_fn(|j| _mm256_loadu_ps(src.add((8 * h + j) * cs + p)));
                for (q, row) in transpose8(r).into_iter().enumerate() {
                    _mm256_storeu_ps(out.add(NR * (p + q) + 8 * h), row);
                }
            }
            p += 8;
        }
        for p in p..kc {
            for j in 0..NR {
                *out.add(NR * p + j) = *src.add(j * cs + p);
            }
        }
    }
    if full * NR < nc {
        pack::pack_b_nr::<f32, NR>(
            b,
            p0,
            kc,
            j0 + NR * full,
            nc - NR * full,
            &mut dst[NR * kc * full..],
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

/// Runs `iters` rounds of twelve independent FMA chains on `$r` registers (in inline assembly,
/// so that the compiler cannot shorten the loop): the peak-throughput probe.
macro_rules! fma_probe {
    ($name:ident, $feat:literal, $vt:ty, $zero:ident, $fma:literal,
     [$g0:tt, $g1:tt, $g2:tt, $g3:tt, $g4:tt, $g5:tt, $g6:tt, $g7:tt, $g8:tt, $g9:tt, $g10:tt,
      $g11:tt, $g12:tt, $g13:tt]) => {
        #[target_feature(enable = $feat)]
        unsafe fn $name(iters: usize) {
            let z: $vt = $zero();
            std::arch::asm!(
                "2:",
                concat!($fma, " ", $g0, ", ", $g12, ", ", $g13),
                concat!($fma, " ", $g1, ", ", $g12, ", ", $g13),
                concat!($fma, " ", $g2, ", ", $g12, ", ", $g13),
                concat!($fma, " ", $g3, ", ", $g12, ", ", $g13),
                concat!($fma, " ", $g4, ", ", $g12, ", ", $g13),
                concat!($fma, " ", $g5, ", ", $g12, ", ", $g13),
                concat!($fma, " ", $g6, ", ", $g12, ", ", $g13),
                concat!($fma, " ", $g7, ", ", $g12, ", ", $g13),
                concat!($fma, " ", $g8, ", ", $g12, ", ", $g13),
                concat!($fma, " ", $g9, ", ", $g12, ", ", $g13),
                concat!($fma, " ", $g10, ", ", $g12, ", ", $g13),
                concat!($fma, " ", $g11, ", ", $g12, ", ", $g13),
                "dec {n}",
                "jnz 2b",
                n = inout(reg) iters.max(1) => _,
                inout($g0) z => _, inout($g1) z => _, inout($g2) z => _, inout($g3) z => _,
                inout($g4) z => _, inout($g5) z => _, inout($g6) z => _, inout($g7) z => _,
                inout($g8) z => _, inout($g9) z => _, inout($g10) z => _, inout($g11) z => _,
                in($g12) z, in($g13) z,
                options(nostack, nomem),
            );
        }
    };
}

fma_probe!(
    probe_avx2,
    "avx2,fma",
    __m256,
    _mm256_setzero_ps,
    "vfmadd231ps",
    [
        "ymm0", "ymm1", "ymm2", "ymm3", "ymm4", "ymm5", "ymm6", "ymm7", "ymm8", "ymm9", "ymm10",
        "ymm11", "ymm12", "ymm13"
    ]
);
fma_probe!(
    probe_avx512,
    "avx512f",
    __m512,
    _mm512_setzero_ps,
    "vfmadd231ps",
    [
        "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10",
        "zmm11", "zmm12", "zmm13"
    ]
);

/// `iters` rounds of twelve f32 vector FMAs, 512 bits wide when `avx512` (and the CPU has it),
/// else 256; returns the flops done.
pub(super) fn fma_probe(avx512: bool, iters: usize) -> f64 {
    let iters = iters.max(1);
    if avx512 && has_avx512f() {
        // SAFETY: the CPU has AVX-512F.
        unsafe { probe_avx512(iters) };
        iters as f64 * 12.0 * 16.0 * 2.0
    } else {
        assert!(has_avx2_fma(), "the FMA probe needs AVX2 + FMA");
        // SAFETY: the CPU has AVX2 and FMA.
        unsafe { probe_avx2(iters) };
        iters as f64 * 12.0 * 8.0 * 2.0
    }
}

/// Whether the AVX-512 f32 kernel gives the AVX2 kernel's bits on a few products with edge tiles
/// and transposed operands: checked once before the wider kernel is first used, so that a CPU
/// (or a kernel bug) that disagrees falls back to AVX2 instead of computing wrong values.
pub(super) fn avx512_agrees_with_avx2() -> bool {
    if !has_avx512f() {
        return false;
    }
    let shapes = [(7usize, 37usize, 45usize), (13, 300, 60), (6, 9, 32)];
    // Each below the parallel threshold: this runs inside `isa()`'s one-time initialisation.
    shapes.iter().enumerate().all(|(i, &(m, k, n))| {
        let a: Vec<f32> = (0..m * k)
            .map(|v| ((v * 7 + i) % 13) as f32 - 6.25)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|v| ((v * 5 + i) % 11) as f32 * 0.375 - 1.5)
            .collect();
        let am = MatRef::row_major(&a, m, k);
        let bm = if i == 1 {
            MatRef::row_major(&b, n, k).t()
        } else {
            MatRef::row_major(&b, k, n)
        };
        let mut wide = vec![0.5f32; m * n];
        let mut narrow = wide.clone();
        // SAFETY: the CPU has AVX-512F (checked above), so AVX2 and FMA too; the buffers hold
        // the m × n products.
        unsafe {
            super::driver::<f32, Avx512F32>(am, bm, 1.0, wide.as_mut_ptr(), n);
            super::driver::<f32, Avx2F32>(am, bm, 1.0, narrow.as_mut_ptr(), n);
        }
        wide.iter()
            .zip(&narrow)
            .all(|(x, y)| x.to_bits() == y.to_bits())
    })
}
