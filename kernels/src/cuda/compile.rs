//! NVRTC compilation of our modules, cached in memory (per process) and on disk (across runs).
//!
//! The cache key is a 128-bit hash of the source, the NVRTC options, the target architecture and
//! the NVRTC version, so editing a kernel, changing an option or upgrading NVRTC recompiles, and
//! nothing else does. The hash is std's `DefaultHasher` (SipHash-1-3 with a fixed zero key) run
//! twice with different prefixes: no dependency, and stable for a given Rust release; a Rust
//! upgrade that changed it would only cost one recompile per module, never a wrong hit (file
//! names carry the whole key).
//!
//! On-disk location: `$SADDLE_PTX_CACHE`, else `$XDG_CACHE_HOME/saddle/ptx`, else
//! `~/.cache/saddle/ptx`. Files are written to a temporary name and renamed, so concurrent
//! processes never read a partial file. A cache that cannot be written is skipped silently
//! (compilation still succeeds).

use super::{probe, CudaError, KernelModule};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Where the CUDA headers are: `$CUDA_HOME`, else `$CUDA_PATH`, else `/usr/local/cuda`.
pub fn cuda_home() -> PathBuf {
    ["CUDA_HOME", "CUDA_PATH"]
        .iter()
        .find_map(|v| std::env::var_os(v).filter(|s| !s.is_empty()))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/local/cuda"))
}

/// NVRTC options for `arch = (major, minor)`. Precise math throughout: no fast-math, no
/// flush-to-zero, IEEE division and square root, so f32 results stay within rounding of the CPU
/// kernels (FMA contraction stays on: it only removes a rounding).
pub fn options(arch: (u32, u32)) -> Vec<String> {
    let mut opts = vec![
        format!("--gpu-architecture=compute_{}{}", arch.0, arch.1),
        "--std=c++17".to_string(),
        "-default-device".to_string(),
        "--ftz=false".to_string(),
        "--prec-div=true".to_string(),
        "--prec-sqrt=true".to_string(),
        "--fmad=true".to_string(),
        "-lineinfo".to_string(),
    ];
    let include = cuda_home().join("include");
    if include.is_dir() {
        opts.push(format!("--include-path={}", include.display()));
    }
    opts
}

/// Counters of how compiled modules were obtained (for tests and diagnostics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub nvrtc_compiles: u64,
    pub disk_hits: u64,
    pub memory_hits: u64,
}

static NVRTC_COMPILES: AtomicU64 = AtomicU64::new(0);
static DISK_HITS: AtomicU64 = AtomicU64::new(0);
static MEMORY_HITS: AtomicU64 = AtomicU64::new(0);

pub fn cache_stats() -> CacheStats {
    CacheStats {
        nvrtc_compiles: NVRTC_COMPILES.load(Ordering::Relaxed),
        disk_hits: DISK_HITS.load(Ordering::Relaxed),
        memory_hits: MEMORY_HITS.load(Ordering::Relaxed),
    }
}

/// The on-disk cache folder (not created here).
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SADDLE_PTX_CACHE").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(dir).join("saddle").join("ptx"));
    }
    std::env::var_os("HOME")
        .filter(|s| !s.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("saddle").join("ptx"))
}

/// 128-bit key of one compilation.
pub fn cache_key(source: &str, options: &[String], arch: (u32, u32), nvrtc: (i32, i32)) -> u128 {
    let half = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        source.hash(&mut h);
        options.hash(&mut h);
        arch.hash(&mut h);
        nvrtc.hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

fn memory_cache() -> &'static Mutex<HashMap<u128, Arc<str>>> {
    static CACHE: OnceLock<Mutex<HashMap<u128, Arc<str>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn disk_path(dir: &Path, module: KernelModule, arch: (u32, u32), key: u128) -> PathBuf {
    let stem = module.file_name().trim_end_matches(".cu");
    dir.join(format!("{stem}-sm{}{}-{key:032x}.ptx", arch.0, arch.1))
}

/// PTX of `module` for `arch`, from the memory cache, the disk cache ([`cache_dir`]) or NVRTC,
/// in that order.
pub fn ptx_for(module: KernelModule, arch: (u32, u32)) -> Result<Arc<str>, CudaError> {
    ptx_cached_in(module, arch, cache_dir().as_deref())
}

/// [`ptx_for`] with an explicit on-disk cache folder (`None`: memory cache only).
pub fn ptx_cached_in(
    module: KernelModule,
    arch: (u32, u32),
    dir: Option<&Path>,
) -> Result<Arc<str>, CudaError> {
    if arch < module.min_arch() {
        return Err(CudaError::Unavailable(format!(
            "{} needs compute capability {}.{} or newer, the device has {}.{}",
            module.file_name(),
            module.min_arch().0,
            module.min_arch().1,
            arch.0,
            arch.1
        )));
    }
    let nvrtc = probe::nvrtc_version()?;
    let opts = options(arch);
    let key = cache_key(module.source(), &opts, arch, nvrtc);
    if let Some(ptx) = lock(memory_cache()).get(&key) {
        MEMORY_HITS.fetch_add(1, Ordering::Relaxed);
        return Ok(ptx.clone());
    }
    let file = dir.map(|d| disk_path(d, module, arch, key));
    let from_disk = file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .filter(|ptx| ptx.contains(&format!(".target sm_{}{}", arch.0, arch.1)));
    let ptx: Arc<str> = match from_disk {
        Some(ptx) => {
            DISK_HITS.fetch_add(1, Ordering::Relaxed);
            ptx.into()
        }
        None => {
            let ptx = compile_with(module, opts)?;
            if let Some(f) = &file {
                write_atomically(f, &ptx);
            }
            ptx.into()
        }
    };
    lock(memory_cache()).insert(key, ptx.clone());
    Ok(ptx)
}

/// Compiles `module` for `arch` with NVRTC, bypassing both caches.
pub fn compile_uncached(module: KernelModule, arch: (u32, u32)) -> Result<String, CudaError> {
    probe::nvrtc_version()?;
    compile_with(module, options(arch))
}

fn compile_with(module: KernelModule, options: Vec<String>) -> Result<String, CudaError> {
    let opts = cudarc::nvrtc::CompileOptions {
        options,
        name: Some(module.file_name().to_string()),
        ..Default::default()
    };
    NVRTC_COMPILES.fetch_add(1, Ordering::Relaxed);
    match cudarc::nvrtc::compile_ptx_with_opts(module.source(), opts) {
        Ok(ptx) => Ok(ptx.to_src()),
        Err(cudarc::nvrtc::CompileError::CompileError { log, .. }) => Err(CudaError::Compile {
            module: module.file_name(),
            log: log.to_string_lossy().into_owned(),
        }),
        Err(other) => Err(CudaError::Compile {
            module: module.file_name(),
            log: format!("{other:?}"),
        }),
    }
}

fn write_atomically(path: &Path, text: &str) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the caches hold only
/// complete entries, so the data is always consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_every_input() {
        let opts = options((9, 0));
        let base = cache_key("src", &opts, (9, 0), (13, 0));
        assert_eq!(base, cache_key("src", &opts, (9, 0), (13, 0)));
        assert_ne!(base, cache_key("src2", &opts, (9, 0), (13, 0)));
        assert_ne!(base, cache_key("src", &options((8, 0)), (9, 0), (13, 0)));
        assert_ne!(base, cache_key("src", &opts, (8, 0), (13, 0)));
        assert_ne!(base, cache_key("src", &opts, (9, 0), (13, 1)));
        let path = disk_path(Path::new("/c"), KernelModule::Gemm, (9, 0), base);
        assert!(path.to_string_lossy().starts_with("/c/gemm-sm90-"));
        assert!(opts.iter().all(|o| !o.contains("fast_math")));
    }
}
