//! Packing operand blocks into the layouts the micro-kernels stream through.
//!
//! * A block (`mc × kc`) → MR-row slivers: sliver `s` holds rows `s·MR..s·MR+MR`, stored column
//!   by column (`kc` groups of MR values). Rows past `mc` are zero.
//! * B block (`kc × nc`) → NR-column slivers: sliver `s` holds columns `s·NR..s·NR+NR`, stored
//!   row by row (`kc` groups of NR values). Columns past `nc` are zero.
//!
//! Sources are read through arbitrary strides; the common unit-stride layouts get copy loops the
//! compiler vectorises.

use super::MatRef;
use crate::Float;

/// Packs `A[i0..i0+mc, p0..p0+kc]` into `dst` (length `ceil(mc/mr)·mr·kc`).
pub(super) fn pack_a<T: Float>(
    mr: usize,
    a: MatRef<T>,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    dst: &mut [T],
) {
    match mr {
        4 => pack_a_mr::<T, 4>(a, i0, mc, p0, kc, dst),
        6 => pack_a_mr::<T, 6>(a, i0, mc, p0, kc, dst),
        8 => pack_a_mr::<T, 8>(a, i0, mc, p0, kc, dst),
        _ => unreachable!("unsupported MR {mr}"),
    }
}

#[inline(always)]
pub(super) fn pack_a_mr<T: Float, const MR: usize>(
    a: MatRef<T>,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    dst: &mut [T],
) {
    let (rs, cs) = (a.rs, a.cs);
    for (s, out) in dst
        .chunks_exact_mut(MR * kc)
        .take(mc.div_ceil(MR))
        .enumerate()
    {
        let r0 = i0 + s * MR;
        let rows = MR.min(mc - s * MR);
        let base = r0 * rs + p0 * cs;
        if rows == MR && cs == 1 {
            // Row-major A: MR contiguous rows, interleaved column by column.
            let src: [&[T]; MR] =
                std::array::from_fn(|i| &a.data[base + i * rs..base + i * rs + kc]);
            for (p, o) in out.chunks_exact_mut(MR).enumerate() {
                for i in 0..MR {
                    o[i] = src[i][p];
                }
            }
        } else if rows == MR && rs == 1 {
            // Column-major A (a transposed view): each packed column is a contiguous run.
            for (p, o) in out.chunks_exact_mut(MR).enumerate() {
                let off = base + p * cs;
                o.copy_from_slice(&a.data[off..off + MR]);
            }
        } else {
            for (p, o) in out.chunks_exact_mut(MR).enumerate() {
                let off = base + p * cs;
                for (i, v) in o.iter_mut().enumerate() {
                    *v = if i < rows {
                        a.data[off + i * rs]
                    } else {
                        T::ZERO
                    };
                }
            }
        }
    }
}

/// Packs `B[p0..p0+kc, j0..j0+nc]` into `dst` (length `ceil(nc/nr)·nr·kc`).
pub(super) fn pack_b<T: Float>(
    nr: usize,
    b: MatRef<T>,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    dst: &mut [T],
) {
    match nr {
        4 => pack_b_nr::<T, 4>(b, p0, kc, j0, nc, dst),
        8 => pack_b_nr::<T, 8>(b, p0, kc, j0, nc, dst),
        16 => pack_b_nr::<T, 16>(b, p0, kc, j0, nc, dst),
        _ => unreachable!("unsupported NR {nr}"),
    }
}

#[inline(always)]
pub(super) fn pack_b_nr<T: Float, const NR: usize>(
    b: MatRef<T>,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    dst: &mut [T],
) {
    let (rs, cs) = (b.rs, b.cs);
    let full = nc / NR;
    if cs == 1 && full > 0 {
        // Row-major B: read each row once, front to back (prefetch-friendly), and scatter it
        // over the slivers in whole NR-element (one cache line for f32·16, f64·8) pieces.
        for p in 0..kc {
            let off = (p0 + p) * rs + j0;
            let row = &b.data[off..off + full * NR];
            for (s, piece) in row.chunks_exact(NR).enumerate() {
                dst[s * NR * kc + p * NR..][..NR].copy_from_slice(piece);
            }
        }
        if full * NR < nc {
            pack_b_slivers::<T, NR>(
                b,
                p0,
                kc,
                j0 + full * NR,
                nc - full * NR,
                &mut dst[full * NR * kc..],
            );
        }
        return;
    }
    pack_b_slivers::<T, NR>(b, p0, kc, j0, nc, dst);
}

/// Sliver-by-sliver packing of B, for any strides.
#[inline(always)]
fn pack_b_slivers<T: Float, const NR: usize>(
    b: MatRef<T>,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    dst: &mut [T],
) {
    let (rs, cs) = (b.rs, b.cs);
    for (s, out) in dst
        .chunks_exact_mut(NR * kc)
        .take(nc.div_ceil(NR))
        .enumerate()
    {
        let c0 = j0 + s * NR;
        let cols = NR.min(nc - s * NR);
        let base = p0 * rs + c0 * cs;
        if cols == NR && rs == 1 {
            // Column-major B (a transposed view): NR contiguous columns, interleaved.
            let src: [&[T]; NR] =
                std::array::from_fn(|j| &b.data[base + j * cs..base + j * cs + kc]);
            for (p, o) in out.chunks_exact_mut(NR).enumerate() {
                for j in 0..NR {
                    o[j] = src[j][p];
                }
            }
        } else {
            for (p, o) in out.chunks_exact_mut(NR).enumerate() {
                let off = base + p * rs;
                for (j, v) in o.iter_mut().enumerate() {
                    *v = if j < cols {
                        b.data[off + j * cs]
                    } else {
                        T::ZERO
                    };
                }
            }
        }
    }
}
