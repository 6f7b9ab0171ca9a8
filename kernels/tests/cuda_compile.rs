//! Every CUDA module compiles with NVRTC for sm_80 and sm_90 (no GPU needed), and ptxas reports
//! no register spills for the GEMM, convolution, index, pooling and attention kernels. Prints the
//! register / shared-memory table per kernel:
//!
//! ```text
//! eval "$(../shared/tools/nvrtc-setup.sh)"
//! cargo test -p saddle-kernels --test cuda_compile -- --nocapture
//! ```
//!
//! Without NVRTC the tests say why they were skipped and pass, unless `SADDLE_REQUIRE_NVRTC=1`
//! (set by CI) makes that a failure; without ptxas the first still checks the NVRTC side.
#![cfg(feature = "cuda")]

use saddle_kernels::cuda::compile;
use saddle_kernels::cuda::ops::elementwise::{BinaryOp, UnaryOp};
use saddle_kernels::cuda::{probe, KernelModule};
use saddle_kernels::require::{self, Requirement};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

const ARCHS: [(u32, u32); 2] = [(8, 0), (9, 0)];

/// Kernels ptxas described: (name, registers, shared bytes, stack bytes, spill stores, spill loads).
#[derive(Debug, Default, Clone)]
struct KernelInfo {
    name: String,
    registers: u32,
    smem: u32,
    stack: u32,
    spill_stores: u32,
    spill_loads: u32,
}

fn number_before(line: &str, unit: &str) -> Option<u32> {
    let at = line.find(unit)?;
    line[..at].split_whitespace().last()?.parse().ok()
}

fn parse_ptxas(log: &str) -> Vec<KernelInfo> {
    let mut out: Vec<KernelInfo> = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let name = rest.split('\'').next().unwrap_or_default().to_string();
            out.push(KernelInfo {
                name,
                ..Default::default()
            });
        } else if let Some(k) = out.last_mut() {
            if line.contains("bytes stack frame") {
                k.stack = number_before(line, "bytes stack frame").unwrap_or(0);
                k.spill_stores = number_before(line, "bytes spill stores").unwrap_or(0);
                k.spill_loads = number_before(line, "bytes spill loads").unwrap_or(0);
            } else if line.contains("Used") && line.contains("registers") {
                k.registers = number_before(line, "registers").unwrap_or(0);
                k.smem = number_before(line, "bytes smem").unwrap_or(0);
            }
        }
    }
    out
}

/// Kernel names the launchers in `cuda::ops` ask for, per module (kept in step by this test).
fn launcher_kernels(module: KernelModule) -> Vec<String> {
    let both = |stems: &[&str]| -> Vec<String> {
        stems
            .iter()
            .flat_map(|s| [format!("{s}_f32"), format!("{s}_f64")])
            .collect()
    };
    match module {
        KernelModule::Elementwise => {
            let unary = [
                UnaryOp::Neg,
                UnaryOp::Exp,
                UnaryOp::Log,
                UnaryOp::Sqrt,
                UnaryOp::Square,
                UnaryOp::Abs,
                UnaryOp::Relu,
                UnaryOp::LeakyRelu(0.2),
                UnaryOp::Sigmoid,
                UnaryOp::Tanh,
                UnaryOp::Softplus,
                UnaryOp::Elu(1.0),
                UnaryOp::Powf(2.0),
                UnaryOp::Clamp(0.0, 1.0),
                UnaryOp::Affine(1.0, 0.0),
                UnaryOp::Recip,
                UnaryOp::GtScalar(0.0),
                UnaryOp::Copy,
            ];
            let binary = [
                BinaryOp::Add,
                BinaryOp::Sub,
                BinaryOp::Mul,
                BinaryOp::Div,
                BinaryOp::Pow,
                BinaryOp::Maximum,
                BinaryOp::Minimum,
                BinaryOp::Gt,
                BinaryOp::Ge,
                BinaryOp::Lt,
                BinaryOp::Le,
                BinaryOp::Eq,
            ];
            let mut stems: Vec<String> = vec!["fill".into()];
            for u in unary {
                let stem = u.name_and_params().0;
                stems.push(format!("unary_{stem}"));
                stems.push(format!("unary_bwd_{stem}"));
            }
            stems.extend(binary.iter().map(|b| format!("binary_{}", b.name())));
            stems.push("select".into());
            let mut names = both(&stems.iter().map(String::as_str).collect::<Vec<_>>());
            // Copies and casts between every pair of stored types, and the 16-bit fills.
            let stored = ["f32", "f64", "bf16", "f16"];
            for s in stored {
                for d in stored {
                    names.push(if s == d {
                        format!("strided_copy_{s}")
                    } else {
                        format!("strided_cast_{s}_{d}")
                    });
                }
            }
            names.extend(["fill_bf16".into(), "fill_f16".into()]);
            names
        }
        KernelModule::Reduce => both(&[
            "reduce_rows_sum",
            "reduce_rows_max",
            "reduce_rows_min",
            "reduce_cols_sum",
            "reduce_cols_max",
            "reduce_cols_min",
        ]),
        KernelModule::Gemm => ["nn", "nt", "tn", "tt"]
            .iter()
            .flat_map(|v| [format!("sgemm_{v}"), format!("dgemm_{v}")])
            .collect(),
        KernelModule::GemmTf32 => ["nn", "nt", "tn", "tt"]
            .iter()
            .map(|v| format!("tf32_gemm_{v}"))
            .collect(),
        KernelModule::GemmHalf => ["nn", "nt", "tn", "tt"]
            .iter()
            .flat_map(|v| [format!("bf16_gemm_{v}"), format!("f16_gemm_{v}")])
            .collect(),
        KernelModule::Conv => both(&["conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_weight"]),
        KernelModule::Norm => both(&["bn_stats", "bn_apply", "bn_grad_sums", "bn_input_grad"]),
        KernelModule::Softmax => both(&[
            "softmax_rows",
            "softmax_bwd_rows",
            "softmax_cols",
            "softmax_bwd_cols",
            "log_softmax_rows",
            "log_softmax_bwd_rows",
            "log_softmax_cols",
            "log_softmax_bwd_cols",
        ]),
        KernelModule::Loss => both(&["bce_logits_partial", "bce_logits_grad"]),
        KernelModule::Optim => both(&["adam", "sgd"]),
        KernelModule::Random => both(&["philox_normal", "philox_uniform", "philox_dropout_mask"]),
        KernelModule::Spectral => both(&["sn_gemv_t", "sn_gemv", "sn_normalize"]),
        KernelModule::Index => both(&[
            "index_select",
            "index_add",
            "gather",
            "scatter_add",
            "mask_count",
            "mask_compact",
            "mask_expand",
            "rot90",
        ]),
        KernelModule::Pool => both(&[
            "sum_pool2d",
            "sum_pool2d_bwd",
            "max_pool2d",
            "max_pool2d_bwd",
            "max_pool2d_gather",
        ]),
        KernelModule::Attention => {
            let mut names = vec!["attn_bwd_delta_f32".to_string()];
            for c in [1, 2, 4, 8] {
                for stem in ["attn_fwd", "attn_bwd_dq", "attn_bwd_dkdv"] {
                    names.push(format!("{stem}_c{c}_f32"));
                }
            }
            names
        }
    }
}

/// Modules whose kernels must not spill and are all printed in the table: the GEMM and
/// convolution kernels, and the index and pooling kernels (whose loops over windows and ranks
/// should stay in registers).
fn strict(module: KernelModule) -> bool {
    matches!(
        module,
        KernelModule::Gemm
            | KernelModule::GemmTf32
            | KernelModule::GemmHalf
            | KernelModule::Conv
            | KernelModule::Index
            | KernelModule::Pool
            | KernelModule::Attention
    )
}

/// `.entry name(` declarations in a PTX module.
fn ptx_entries(ptx: &str) -> BTreeSet<String> {
    ptx.lines()
        .filter_map(|l| l.split(".entry ").nth(1))
        .map(|rest| {
            rest.split('(')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect()
}

fn ptxas_available() -> bool {
    Command::new("ptxas")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What one (module, architecture) job found.
struct JobResult {
    module: KernelModule,
    arch: (u32, u32),
    failures: Vec<String>,
    kernels: Vec<KernelInfo>,
}

/// NVRTC, then (when available) ptxas, for one module and architecture.
fn check_module(
    module: KernelModule,
    arch: (u32, u32),
    dir: &std::path::Path,
    with_ptxas: bool,
) -> JobResult {
    let mut r = JobResult {
        module,
        arch,
        failures: Vec::new(),
        kernels: Vec::new(),
    };
    let ptx = match compile::compile_uncached(module, arch) {
        Ok(p) => p,
        Err(e) => {
            r.failures.push(format!(
                "{} sm_{}{}: {e}",
                module.file_name(),
                arch.0,
                arch.1
            ));
            return r;
        }
    };
    let entries = ptx_entries(&ptx);
    for name in launcher_kernels(module) {
        if !entries.contains(&name) {
            r.failures.push(format!(
                "{}: no kernel {name} for the launchers",
                module.file_name()
            ));
        }
    }
    if !with_ptxas {
        return r;
    }
    let stem = format!("{}-sm{}{}", module.file_name(), arch.0, arch.1);
    let path: PathBuf = dir.join(format!("{stem}.ptx"));
    std::fs::write(&path, &ptx).unwrap();
    let out = Command::new("ptxas")
        .arg(format!("-arch=sm_{}{}", arch.0, arch.1))
        .arg("-v")
        .arg(&path)
        .arg("-o")
        .arg(dir.join(format!("{stem}.cubin")))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        r.failures.push(format!("ptxas rejected {stem}: {log}"));
        return r;
    }
    r.kernels = parse_ptxas(&log);
    r.kernels.sort_by(|a, b| a.name.cmp(&b.name));
    if r.kernels.len() != entries.len() {
        r.failures.push(format!(
            "ptxas described {} kernels of {stem}, the PTX has {}",
            r.kernels.len(),
            entries.len()
        ));
    }
    let strict = strict(module);
    for k in &r.kernels {
        if strict && (k.spill_stores > 0 || k.spill_loads > 0) {
            r.failures.push(format!(
                "{} spills on sm_{}{}: {k:?}",
                k.name, arch.0, arch.1
            ));
        }
        if k.registers == 0 {
            r.failures
                .push(format!("no register count parsed for {}", k.name));
        }
    }
    r
}

#[test]
fn every_module_compiles_for_sm80_and_sm90_without_spills_in_gemm_conv_and_attention() {
    let nvrtc = match probe::nvrtc_version() {
        Ok(v) => v,
        Err(e) => {
            let test = require::current_test("cuda_compile");
            require::skip(&test, Requirement::Nvrtc, &e);
            return;
        }
    };
    let with_ptxas = ptxas_available();
    if !with_ptxas {
        println!("ptxas not on PATH: checking NVRTC output only (no register/spill table)");
    }
    let dir = std::env::temp_dir().join(format!("saddle-cuda-compile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // NVRTC and ptxas take ~60 s of CPU for all 30 jobs: run them on every core.
    let jobs: Vec<(KernelModule, (u32, u32))> = KernelModule::ALL
        .iter()
        .flat_map(|&m| ARCHS.map(|a| (m, a)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(jobs.len());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(module, arch)) = jobs.get(i) else {
                    break;
                };
                let r = check_module(module, arch, &dir, with_ptxas);
                results.lock().unwrap().push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "NVRTC {}.{}; options for sm_90: {:?}",
        nvrtc.0,
        nvrtc.1,
        compile::options((9, 0))
    );
    println!(
        "{:<10} {:<28} {:>5} {:>5} {:>7} {:>6} {:>6} {:>6}",
        "module", "kernel", "arch", "regs", "smem", "stack", "spillS", "spillL"
    );
    let mut failures = Vec::new();
    for (_, r) in &results {
        let strict = strict(r.module);
        for k in &r.kernels {
            // All GEMM/conv/index/pool/attention kernels; of the others, only the heaviest or any that
            // spill.
            if strict || k.registers >= 40 || k.spill_stores + k.spill_loads > 0 {
                println!(
                    "{:<10} {:<28} {:>5} {:>5} {:>7} {:>6} {:>6} {:>6}",
                    r.module.file_name().trim_end_matches(".cu"),
                    k.name,
                    format!("sm{}{}", r.arch.0, r.arch.1),
                    k.registers,
                    k.smem,
                    k.stack,
                    k.spill_stores,
                    k.spill_loads
                );
            }
        }
        failures.extend(r.failures.iter().cloned());
    }
    let total: usize = results.iter().map(|(_, r)| r.kernels.len()).sum();
    println!("{total} kernels assembled");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn compiled_modules_are_cached_in_memory_and_on_disk() {
    if let Err(e) = probe::nvrtc_version() {
        let test = require::current_test("cuda_compile");
        require::skip(&test, Requirement::Nvrtc, &e);
        return;
    }
    let dir = std::env::temp_dir().join(format!("saddle-ptx-cache-{}", std::process::id()));
    // sm_86: an architecture the other test never compiles, so its counters do not interfere.
    let arch = (8, 6);
    let first = compile::ptx_cached_in(KernelModule::Optim, arch, Some(&dir)).unwrap();
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "one PTX file written");
    assert_eq!(std::fs::read_to_string(files[0].path()).unwrap(), *first);
    assert!(first.contains(".target sm_86"));
    let mid = compile::cache_stats();
    let second = compile::ptx_cached_in(KernelModule::Optim, arch, Some(&dir)).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first, &second),
        "served from memory"
    );
    assert!(compile::cache_stats().memory_hits > mid.memory_hits);
    // A module the architecture cannot run is refused before NVRTC is asked.
    assert!(compile::ptx_cached_in(KernelModule::GemmTf32, (7, 5), Some(&dir)).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
