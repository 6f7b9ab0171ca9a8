use super::*;
use proptest::prelude::*;
use rayon::prelude::*;

/// How an operand is laid out in memory.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// Row-major with `pad` extra elements per row.
    Rows(usize),
    /// Column-major (a transposed view) with `pad` extra elements per column.
    Cols(usize),
    /// Neither stride is 1: row stride `2·cols + 1`, column stride 2.
    Strided,
}

/// Deterministic pseudo-random values in [-1, 1).
fn values(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

/// A `rows × cols` matrix in the given layout: (storage, row stride, column stride).
fn make<T: Float>(rows: usize, cols: usize, layout: Layout, seed: u64) -> (Vec<T>, usize, usize) {
    let (rs, cs, len) = match layout {
        Layout::Rows(pad) => (cols + pad, 1, rows * (cols + pad)),
        Layout::Cols(pad) => (1, rows + pad, cols * (rows + pad)),
        Layout::Strided => (2 * cols + 1, 2, rows * (2 * cols + 1)),
    };
    let data = values(len.max(1), seed)
        .into_iter()
        .map(T::from_f64)
        .collect();
    (data, rs, cs)
}

/// `A·B + beta·C` in f64 with a plain triple loop, plus the magnitude `Σ|a·b| + |beta·c|` of
/// each element (the scale for the rounding-error bound).
fn naive<T: Float>(
    a: MatRef<T>,
    b: MatRef<T>,
    beta: f64,
    c: &[T],
    ldc: usize,
) -> (Vec<f64>, Vec<f64>) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut out = vec![0.0; m * n];
    let mut mag = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let (mut s, mut g) = (0.0, 0.0);
            for p in 0..k {
                let v = a.at(i, p).to_f64() * b.at(p, j).to_f64();
                s += v;
                g += v.abs();
            }
            if beta != 0.0 {
                let cv = beta * c[i * ldc + j].to_f64();
                s += cv;
                g += cv.abs();
            }
            out[i * n + j] = s;
            mag[i * n + j] = g;
        }
    }
    (out, mag)
}

/// Runs one product and checks it against `naive`, including that C's padding is untouched.
#[allow(clippy::too_many_arguments)]
fn check<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    la: Layout,
    lb: Layout,
    ldc_pad: usize,
    beta: f64,
    path: Path,
) {
    let (ad, ars, acs) = make::<T>(m, k, la, 1 + (m * 31 + k) as u64);
    let (bd, brs, bcs) = make::<T>(k, n, lb, 2 + (k * 17 + n) as u64);
    let a = MatRef {
        data: &ad,
        rows: m,
        cols: k,
        rs: ars,
        cs: acs,
    };
    let b = MatRef {
        data: &bd,
        rows: k,
        cols: n,
        rs: brs,
        cs: bcs,
    };
    let ldc = n + ldc_pad;
    let mut c: Vec<T> = values(m * ldc, 3).into_iter().map(T::from_f64).collect();
    if beta == 0.0 {
        // beta = 0 must ignore C entirely, NaN included.
        for (i, v) in c.iter_mut().enumerate() {
            if i % ldc < n {
                *v = T::from_f64(f64::NAN);
            }
        }
    }
    let before = c.clone();
    let (want, mag) = naive(a, b, beta, &c, ldc);
    gemm_impl(a, b, T::from_f64(beta), &mut c, ldc, path);
    let eps = if T::NAME == "f32" { 1e-5 } else { 1e-13 };
    let tol = eps * (k.max(1) as f64).sqrt();
    for i in 0..m {
        for j in 0..ldc {
            let got = c[i * ldc + j].to_f64();
            if j >= n {
                assert_eq!(
                    got.to_bits(),
                    before[i * ldc + j].to_f64().to_bits(),
                    "padding of C changed"
                );
                continue;
            }
            let (w, g) = (want[i * n + j], mag[i * n + j]);
            assert!(
                (got - w).abs() <= tol * g.max(1e-30),
                "{} {m}×{n}×{k} {la:?} {lb:?} ldc={ldc} beta={beta} {path:?}: C[{i},{j}] = {got}, want {w}",
                T::NAME
            );
        }
    }
}

/// Shapes around the blocking parameters of every kernel (MR 4/6, NR 4/8/16, MC 72..144,
/// KC 256, NC 1024..4080), primes, degenerate and tiny sizes.
const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (0, 5, 3),
    (5, 0, 3),
    (4, 5, 0),
    (0, 0, 0),
    (1, 7, 1),
    (7, 1, 5),
    (2, 3, 4),
    (17, 33, 29),
    (6, 16, 8),
    (5, 15, 7),
    (7, 17, 9),
    (12, 32, 1),
    (4, 8, 3),
    (3, 9, 2),
    (13, 31, 257),
    (11, 47, 255),
    (9, 10, 513),
    (145, 18, 6),
    (143, 9, 4),
    (97, 7, 3),
    (73, 12, 5),
    (13, 530, 20),
    (7, 600, 17),
    (7, 20, 1024),
    (3, 1025, 2),
    (2, 2041, 3),
    (2, 4081, 2),
    (2, 4079, 3),
];

fn check_all<T: Float>(path: Path) {
    let layouts = [
        Layout::Rows(0),
        Layout::Cols(0),
        Layout::Rows(3),
        Layout::Cols(2),
        Layout::Strided,
    ];
    for &(m, n, k) in SHAPES {
        for (idx, &la) in layouts.iter().enumerate() {
            let lb = layouts[(idx * 2 + m + n) % layouts.len()];
            let beta = [0.0, 1.0, -0.75][(idx + k) % 3];
            check::<T>(m, n, k, la, lb, idx % 2 * 3, beta, path);
        }
    }
}

#[test]
fn f32_matches_naive() {
    check_all::<f32>(Path::Auto);
}

#[test]
fn f64_matches_naive() {
    check_all::<f64>(Path::Auto);
}

#[test]
fn f32_avx2_kernel_matches_naive() {
    // On an AVX-512 machine `Path::Auto` runs the 6×32 kernel: this covers the 6×16 one too.
    if Isa::detected() < Isa::Avx2 {
        println!("skipped: this CPU has no AVX2 + FMA");
        return;
    }
    check_all::<f32>(Path::Avx2);
    check_all::<f64>(Path::Avx2);
}

/// The widest kernel and the AVX2 one sum each element in the same order (one FMA chain in
/// increasing k, the same k-blocking), so they must agree bit for bit, on every layout, edge
/// tile and beta.
#[test]
fn the_kernels_of_every_width_give_identical_bits() {
    if Isa::detected() < Isa::Avx2 {
        println!("skipped: this CPU has no AVX2 + FMA");
        return;
    }
    if isa() < Isa::Avx512 {
        println!(
            "only AVX2 compared with itself: this CPU (or SADDLE_CPU_ISA) gives {}",
            isa().name()
        );
    }
    let layouts = [
        Layout::Rows(0),
        Layout::Cols(3),
        Layout::Strided,
        Layout::Rows(5),
    ];
    for &(m, n, k) in &[
        (1, 1, 1),
        (7, 33, 5),
        (13, 65, 300),
        (64, 1000, 576),
        (37, 31, 513),
    ] {
        for (idx, &la) in layouts.iter().enumerate() {
            let lb = layouts[(idx + 1) % layouts.len()];
            let (ad, ars, acs) = make::<f32>(m, k, la, 7 + idx as u64);
            let (bd, brs, bcs) = make::<f32>(k, n, lb, 8 + idx as u64);
            let a = MatRef {
                data: &ad,
                rows: m,
                cols: k,
                rs: ars,
                cs: acs,
            };
            let b = MatRef {
                data: &bd,
                rows: k,
                cols: n,
                rs: brs,
                cs: bcs,
            };
            for beta in [0.0f32, 1.0, -0.75] {
                let start: Vec<f32> = values(m * n, 9).into_iter().map(|v| v as f32).collect();
                let (mut wide, mut avx2) = (start.clone(), start);
                gemm_impl(a, b, beta, &mut wide, n, Path::Auto);
                gemm_impl(a, b, beta, &mut avx2, n, Path::Avx2);
                let same = wide
                    .iter()
                    .zip(&avx2)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(
                    same,
                    "{m}x{k}x{n} {la:?} {lb:?} beta {beta}: {} vs avx2",
                    isa().name()
                );
            }
        }
    }
}

#[test]
fn f32_portable_kernel_matches_naive() {
    check_all::<f32>(Path::Portable);
}

#[test]
fn f64_portable_kernel_matches_naive() {
    check_all::<f64>(Path::Portable);
}

#[test]
fn all_transpose_combinations_and_betas() {
    for la in [Layout::Rows(0), Layout::Cols(0)] {
        for lb in [Layout::Rows(0), Layout::Cols(0)] {
            for beta in [0.0, 1.0, 2.5] {
                check::<f32>(37, 41, 300, la, lb, 5, beta, Path::Auto);
                check::<f64>(37, 41, 300, la, lb, 5, beta, Path::Auto);
            }
        }
    }
}

#[test]
fn parallel_paths_match_naive() {
    // Large enough to split over threads: A in place (row-major, narrow C) with columns split,
    // with rows and columns split (3 slivers of 16), and packed A with a shared B panel.
    for (m, n, k, la, lb) in [
        (150, 130, 300, Layout::Rows(0), Layout::Rows(1)),
        (200, 40, 300, Layout::Rows(2), Layout::Cols(0)),
        (150, 130, 300, Layout::Cols(0), Layout::Cols(0)),
        (70, 600, 60, Layout::Rows(0), Layout::Rows(0)),
    ] {
        for beta in [0.0, 1.0] {
            check::<f32>(m, n, k, la, lb, 0, beta, Path::Auto);
        }
        check::<f64>(m, n, k, la, lb, 1, 0.5, Path::Auto);
    }
}

#[test]
fn k_zero_scales_c() {
    let a: Vec<f32> = vec![];
    let mut c = vec![f32::NAN, 2.0, 7.0, 3.0, -4.0, 9.0];
    // ldc = 3, n = 2: column 2 is padding.
    gemm(
        MatRef::row_major(&a, 2, 0),
        MatRef::row_major(&a, 0, 2),
        0.0,
        &mut c,
        3,
    );
    assert_eq!(c, [0.0, 0.0, 7.0, 0.0, 0.0, 9.0]);
    let mut c = vec![1.0f64, 2.0, 7.0, 3.0, -4.0, 9.0];
    gemm(
        MatRef::row_major(&[], 2, 0),
        MatRef::row_major(&[], 0, 2),
        0.5,
        &mut c,
        3,
    );
    assert_eq!(c, [0.5, 1.0, 7.0, 1.5, -2.0, 9.0]);
}

#[test]
fn broadcast_operand_with_zero_stride() {
    // B's rows are all the same vector (row stride 0), as for a broadcast view.
    let a: Vec<f32> = (0..12).map(|v| v as f32).collect();
    let row = [1.0f32, -2.0, 0.5];
    let b = MatRef {
        data: &row,
        rows: 4,
        cols: 3,
        rs: 0,
        cs: 1,
    };
    let mut c = vec![0.0f32; 9];
    gemm(MatRef::row_major(&a, 3, 4), b, 0.0, &mut c, 3);
    for i in 0..3 {
        let s: f32 = (0..4).map(|p| (i * 4 + p) as f32).sum();
        assert_eq!(&c[i * 3..i * 3 + 3], &[s, -2.0 * s, 0.5 * s]);
    }
}

#[test]
fn exact_small_integers() {
    // [[1,2],[3,4]]·[[5,6],[7,8]] = [[19,22],[43,50]], exact in floating point.
    let a = [1.0f32, 2.0, 3.0, 4.0];
    let b = [5.0f32, 6.0, 7.0, 8.0];
    let mut c = [f32::NAN; 4];
    gemm(
        MatRef::row_major(&a, 2, 2),
        MatRef::row_major(&b, 2, 2),
        0.0,
        &mut c,
        2,
    );
    assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
    gemm(
        MatRef::row_major(&a, 2, 2),
        MatRef::row_major(&b, 2, 2).t(),
        1.0,
        &mut c,
        2,
    );
    assert_eq!(c, [19.0 + 17.0, 22.0 + 23.0, 43.0 + 39.0, 50.0 + 53.0]);
}

fn run_in_pool<T: Float>(
    threads: usize,
    m: usize,
    n: usize,
    k: usize,
    la: Layout,
    lb: Layout,
) -> Vec<T> {
    let (ad, ars, acs) = make::<T>(m, k, la, 11);
    let (bd, brs, bcs) = make::<T>(k, n, lb, 12);
    let a = MatRef {
        data: &ad,
        rows: m,
        cols: k,
        rs: ars,
        cs: acs,
    };
    let b = MatRef {
        data: &bd,
        rows: k,
        cols: n,
        rs: brs,
        cs: bcs,
    };
    let mut c: Vec<T> = values(m * n, 13).into_iter().map(T::from_f64).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        gemm(a, b, T::ZERO, &mut c, n);
        // A second product accumulated on top (beta = 1), as in gradient accumulation.
        gemm(a, b, T::from_f64(0.5), &mut c, n);
    });
    c
}

fn check_thread_independent<T: Float>() {
    // Big enough to run in parallel (m·n·k ≫ 64³), with edge tiles and two k-blocks.
    let (m, n, k) = (203, 197, 300);
    for (m, n, k, la, lb) in [
        (m, n, k, Layout::Rows(0), Layout::Rows(0)),
        (m, n, k, Layout::Cols(0), Layout::Cols(1)),
        (m, 40, k, Layout::Rows(0), Layout::Rows(0)),
    ] {
        let one = run_in_pool::<T>(1, m, n, k, la, lb);
        for threads in [2, 3] {
            let many = run_in_pool::<T>(threads, m, n, k, la, lb);
            assert!(
                one.iter()
                    .zip(&many)
                    .all(|(x, y)| x.to_f64().to_bits() == y.to_f64().to_bits()),
                "{} {m}×{n}×{k} result differs between 1 and {threads} threads ({la:?}, {lb:?})",
                T::NAME
            );
        }
    }
    // Few rows, many columns: the parallel split goes over columns instead.
    let one = run_in_pool::<T>(1, 5, 3001, 40, Layout::Rows(0), Layout::Rows(0));
    let two = run_in_pool::<T>(2, 5, 3001, 40, Layout::Rows(0), Layout::Rows(0));
    assert!(one
        .iter()
        .zip(&two)
        .all(|(x, y)| x.to_f64().to_bits() == y.to_f64().to_bits()));
}

#[test]
fn f32_bit_identical_across_thread_counts() {
    check_thread_independent::<f32>();
}

#[test]
fn f64_bit_identical_across_thread_counts() {
    check_thread_independent::<f64>();
}

#[test]
fn parallel_and_nested_use_in_parallel_loops() {
    // Many products at once on rayon workers (as batched matmul does), one of them large enough
    // to go parallel itself: the per-thread buffer pools must cope with nesting.
    let sizes = [
        (3usize, 4usize, 5usize),
        (70, 80, 90),
        (9, 9, 9),
        (66, 65, 64),
        (1, 1, 1),
    ];
    let results: Vec<Vec<f32>> = sizes
        .par_iter()
        .map(|&(m, n, k)| {
            let (ad, _, _) = make::<f32>(m, k, Layout::Rows(0), 5);
            let (bd, _, _) = make::<f32>(k, n, Layout::Rows(0), 6);
            let mut c = vec![0.0; m * n];
            gemm(
                MatRef::row_major(&ad, m, k),
                MatRef::row_major(&bd, k, n),
                0.0,
                &mut c,
                n,
            );
            c
        })
        .collect();
    for (&(m, n, k), got) in sizes.iter().zip(&results) {
        let (ad, _, _) = make::<f32>(m, k, Layout::Rows(0), 5);
        let (bd, _, _) = make::<f32>(k, n, Layout::Rows(0), 6);
        let mut c = vec![0.0; m * n];
        gemm(
            MatRef::row_major(&ad, m, k),
            MatRef::row_major(&bd, k, n),
            0.0,
            &mut c,
            n,
        );
        assert_eq!(&c, got);
    }
}

fn layout_strategy() -> impl Strategy<Value = Layout> {
    prop_oneof![
        (0usize..3).prop_map(Layout::Rows),
        (0usize..3).prop_map(Layout::Cols),
        Just(Layout::Strided)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_shapes_and_strides(
        m in 0usize..40,
        n in 0usize..40,
        k in 0usize..40,
        la in layout_strategy(),
        lb in layout_strategy(),
        ldc_pad in 0usize..3,
        beta_idx in 0usize..3,
        portable in any::<bool>(),
    ) {
        let beta = [0.0, 1.0, 0.3][beta_idx];
        let path = if portable { Path::Portable } else { Path::Auto };
        check::<f32>(m, n, k, la, lb, ldc_pad, beta, path);
        check::<f64>(m, n, k, la, lb, ldc_pad, beta, path);
    }
}

/// `gemm_uninit` writes every element of C without reading it: a buffer of NaN (standing in
/// for whatever memory held) gives exactly `gemm`'s result with `beta = 0`, on edge tiles,
/// both schemes (narrow C with A in place, wide C with packed A), transposed operands and k = 0.
#[test]
fn uninit_output_is_overwritten_not_read() {
    use std::mem::MaybeUninit;
    for &(m, k, n, ta, tb) in &[
        (7, 5, 9, false, false),
        (13, 40, 33, true, false),
        (50, 70, 600, false, true),
        (100, 300, 1200, false, true),
        (3, 0, 4, false, false),
    ] {
        let (a, ar, ac) = make::<f32>(m, k, if ta { Layout::Cols(0) } else { Layout::Rows(0) }, 1);
        let (b, br, bc) = make::<f32>(k, n, if tb { Layout::Cols(0) } else { Layout::Rows(0) }, 2);
        let am = MatRef {
            data: &a,
            rows: m,
            cols: k,
            rs: ar,
            cs: ac,
        };
        let bm = MatRef {
            data: &b,
            rows: k,
            cols: n,
            rs: br,
            cs: bc,
        };
        let mut want = vec![1.0f32; m * n];
        gemm(am, bm, 0.0, &mut want, n);
        let mut got = vec![MaybeUninit::new(f32::NAN); m * n];
        gemm_uninit(am, bm, &mut got, n);
        // SAFETY: every element was initialised (to NaN, then by the product).
        let got = unsafe { crate::cpu::assume_init(got) };
        assert_eq!(got, want, "{m}x{k}x{n} ta {ta} tb {tb}");
        assert!(got.iter().all(|v| v.is_finite()));
    }
}

/// The AVX-512 kernel's 32-column B slivers are packed by AVX2 code (8×8 transposes for a
/// transposed B): checked against the portable packer on every machine with AVX2, whether or not
/// it can run the AVX-512 kernel itself.
#[cfg(target_arch = "x86_64")]
#[test]
fn thirty_two_column_slivers_pack_like_the_portable_packer() {
    if Isa::detected() < Isa::Avx2 {
        println!("skipped: this CPU has no AVX2 + FMA");
        return;
    }
    for &(kc, nc, layout) in &[
        (256, 70, Layout::Cols(0)),
        (13, 64, Layout::Cols(2)),
        (9, 33, Layout::Rows(1)),
        (40, 5, Layout::Strided),
    ] {
        let (data, rs, cs) = make::<f32>(kc + 3, nc + 4, layout, 11);
        let b = MatRef {
            data: &data,
            rows: kc + 3,
            cols: nc + 4,
            rs,
            cs,
        };
        let len = nc.div_ceil(32) * 32 * kc;
        let (mut fast, mut portable) = (vec![f32::NAN; len], vec![f32::NAN; len]);
        // SAFETY: the CPU has AVX2 and FMA; the block is inside B.
        unsafe { super::x86::pack_b_f32::<32>(b, 2, kc, 3, nc, &mut fast) };
        pack::pack_b_nr::<f32, 32>(b, 2, kc, 3, nc, &mut portable);
        let same = fast
            .iter()
            .zip(&portable)
            .all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "kc {kc} nc {nc} {layout:?}");
    }
}
