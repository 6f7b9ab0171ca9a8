//! The micro-kernel interface and the portable (plain Rust) micro-kernel.

use super::{pack, MatRef};
use crate::Float;

/// Largest `MR·NR` of any micro-kernel (the size of the scratch tile for edge tiles).
pub(super) const MAX_TILE: usize = 6 * 32;

/// A register-blocked micro-kernel with its cache-blocking parameters.
pub(super) trait MicroKernel<T> {
    /// Rows of the C tile (A sliver height).
    const MR: usize;
    /// Columns of the C tile (B sliver width).
    const NR: usize;
    /// Rows of A packed per block (multiple of MR; the block should fit in L2).
    const MC: usize;
    /// Depth of a k-block (a B sliver `KC·NR` should fit in L1).
    const KC: usize;
    /// Columns of B packed per panel (multiple of NR; the panel lives in L3).
    const NC: usize;

    /// `C[MR×NR] = Σ_p A[:, p]·B[p, :] + beta·C`, the sum taken in increasing `p`, where A is
    /// MR×kc with element `(i, p)` at `a[i·rsa + p·csa]` (a packed sliver has `rsa = 1`,
    /// `csa = MR`), `b` an NR-column packed sliver and C has row stride `rsc`.
    /// `beta == 0` ignores C's contents; `beta == 1` adds without multiplying.
    ///
    /// # Safety
    /// A's MR×kc elements and `b`'s `kc·NR` must be readable, and `c` writable (and readable
    /// unless `beta == 0`) for the MR×NR tile.
    #[allow(clippy::too_many_arguments)]
    unsafe fn run(
        kc: usize,
        a: *const T,
        rsa: usize,
        csa: usize,
        b: *const T,
        c: *mut T,
        rsc: usize,
        beta: T,
    );

    /// Packs `A[i0..i0+mc, p0..p0+kc]` into MR-row slivers (see [`pack::pack_a`]).
    fn pack_a(a: MatRef<T>, i0: usize, mc: usize, p0: usize, kc: usize, dst: &mut [T])
    where
        T: Float,
    {
        pack::pack_a(Self::MR, a, i0, mc, p0, kc, dst)
    }

    /// Packs `B[p0..p0+kc, j0..j0+nc]` into NR-column slivers (see [`pack::pack_b`]).
    fn pack_b(b: MatRef<T>, p0: usize, kc: usize, j0: usize, nc: usize, dst: &mut [T])
    where
        T: Float,
    {
        pack::pack_b(Self::NR, b, p0, kc, j0, nc, dst)
    }
}

/// Portable MR×NR micro-kernel: fixed-size loops that the compiler unrolls and vectorises for
/// whatever SIMD the target has (SSE2 on baseline x86-64, NEON on aarch64).
pub(super) struct Portable<const MR: usize, const NR: usize>;

impl<T: Float, const MR: usize, const NR: usize> MicroKernel<T> for Portable<MR, NR> {
    const MR: usize = MR;
    const NR: usize = NR;
    const MC: usize = MR * 24;
    const KC: usize = 256;
    const NC: usize = NR * 256;

    #[inline(never)]
    unsafe fn run(
        kc: usize,
        a: *const T,
        rsa: usize,
        csa: usize,
        b: *const T,
        c: *mut T,
        rsc: usize,
        beta: T,
    ) {
        let b = std::slice::from_raw_parts(b, kc * NR);
        let mut acc = [[T::ZERO; NR]; MR];
        for (p, bp) in b.chunks_exact(NR).enumerate() {
            let bv: [T; NR] = std::array::from_fn(|j| bp[j]);
            let ap = a.add(p * csa);
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = *ap.add(i * rsa);
                for (v, &bj) in row.iter_mut().zip(&bv) {
                    *v = ai.mul_add(bj, *v);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            let cr = std::slice::from_raw_parts_mut(c.add(i * rsc), NR);
            if beta == T::ZERO {
                cr.copy_from_slice(row);
            } else if beta == T::ONE {
                for (cv, &r) in cr.iter_mut().zip(row) {
                    *cv = r + *cv;
                }
            } else {
                for (cv, &r) in cr.iter_mut().zip(row) {
                    *cv = cv.mul_add(beta, r);
                }
            }
        }
    }
}
