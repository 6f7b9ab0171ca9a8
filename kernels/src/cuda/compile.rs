//! NVRTC compilation of our modules, cached in memory (per process) and on disk (across runs and
//! machines).
//!
//! The cache key is a 128-bit hash of the source, the NVRTC options and the target
//! architecture; the file name adds the NVRTC version that compiled it. So editing a kernel,
//! changing an option or upgrading NVRTC recompiles, and nothing else does. Nothing
//! machine-specific enters the key (no module includes a header, so NVRTC gets no include
//! path): PTX compiled on one machine is found on another, which is how a GPU machine without
//! NVRTC runs (`scripts/gpu-check.sh` fills a cache for sm_90 and ships it). The hash is std's
//! `DefaultHasher` (SipHash-1-3 with a fixed zero key) run twice with different prefixes: no
//! dependency, and stable for a given Rust release; a Rust upgrade that changed it would only
//! cost one recompile per module, never a wrong hit (file names carry the whole key).
//!
//! Without NVRTC (none installed, or `SADDLE_NO_NVRTC=1`), a module is loaded from the disk
//! cache if any NVRTC version compiled it from the same source, options and architecture (the
//! newest such version), and is an error naming the folder otherwise.
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

/// NVRTC options for `arch = (major, minor)`. Precise math throughout: no fast-math, no
/// flush-to-zero, IEEE division and square root, so f32 results stay within rounding of the CPU
/// kernels (FMA contraction stays on: it only removes a rounding). The same on every machine
/// (they are part of the cache key).
pub fn options(arch: (u32, u32)) -> Vec<String> {
    vec![
        format!("--gpu-architecture=compute_{}{}", arch.0, arch.1),
        "--std=c++17".to_string(),
        "-default-device".to_string(),
        "--ftz=false".to_string(),
        "--prec-div=true".to_string(),
        "--prec-sqrt=true".to_string(),
        "--fmad=true".to_string(),
        "-lineinfo".to_string(),
    ]
}

/// Counters of how compiled modules were obtained (for tests and diagnostics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Modules compiled by NVRTC.
    pub nvrtc_compiles: u64,
    /// Modules read from the on-disk PTX cache.
    pub disk_hits: u64,
    /// Modules found already compiled in this process.
    pub memory_hits: u64,
}

static NVRTC_COMPILES: AtomicU64 = AtomicU64::new(0);
static DISK_HITS: AtomicU64 = AtomicU64::new(0);
static MEMORY_HITS: AtomicU64 = AtomicU64::new(0);

/// The counters since the process started (all devices, all modules).
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

/// 128-bit key of one compilation (the NVRTC version is added by the file name).
pub fn cache_key(source: &str, options: &[String], arch: (u32, u32)) -> u128 {
    let half = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        source.hash(&mut h);
        options.hash(&mut h);
        arch.hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

fn memory_cache() -> &'static Mutex<HashMap<u128, Arc<str>>> {
    static CACHE: OnceLock<Mutex<HashMap<u128, Arc<str>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The cache file's name up to the NVRTC version: `{module}-sm{arch}-{key}-nvrtc`.
fn file_prefix(module: KernelModule, arch: (u32, u32), key: u128) -> String {
    let stem = module.file_name().trim_end_matches(".cu");
    format!("{stem}-sm{}{}-{key:032x}-nvrtc", arch.0, arch.1)
}

fn disk_path(
    dir: &Path,
    module: KernelModule,
    arch: (u32, u32),
    key: u128,
    nvrtc: (i32, i32),
) -> PathBuf {
    let prefix = file_prefix(module, arch, key);
    dir.join(format!("{prefix}{}.{}.ptx", nvrtc.0, nvrtc.1))
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
    let key = cache_key(module.source(), &options(arch), arch);
    if let Some(ptx) = lock(memory_cache()).get(&key) {
        MEMORY_HITS.fetch_add(1, Ordering::Relaxed);
        return Ok(ptx.clone());
    }
    let ptx: Arc<str> = from_disk_or_nvrtc(module, arch, key, dir, probe::nvrtc_version(), || {
        compile_with(module, options(arch))
    })?
    .into();
    lock(memory_cache()).insert(key, ptx.clone());
    Ok(ptx)
}

/// The disk cache's PTX for (`module`, `arch`, `key`), or `compile`'s (stored in the cache).
/// With NVRTC (`nvrtc` is its version) only that version's file is a hit; without it, the file
/// of the newest version there is.
fn from_disk_or_nvrtc(
    module: KernelModule,
    arch: (u32, u32),
    key: u128,
    dir: Option<&Path>,
    nvrtc: Result<(i32, i32), CudaError>,
    compile: impl FnOnce() -> Result<String, CudaError>,
) -> Result<String, CudaError> {
    let found = match (&nvrtc, dir) {
        (Ok(version), Some(dir)) => read_ptx(&disk_path(dir, module, arch, key, *version), arch),
        (Err(_), Some(dir)) => newest_cached(dir, module, arch, key),
        (_, None) => None,
    };
    if let Some(ptx) = found {
        DISK_HITS.fetch_add(1, Ordering::Relaxed);
        return Ok(ptx);
    }
    let version = match nvrtc {
        Ok(v) => v,
        Err(e) => {
            let why = match e {
                CudaError::Unavailable(why) => why,
                other => other.to_string(),
            };
            let place = dir.map_or("no PTX cache folder".to_string(), |d| {
                format!("none in the PTX cache {}", d.display())
            });
            return Err(CudaError::Unavailable(format!(
                "{} for sm_{}{} needs NVRTC or cached PTX, and there is neither: {why}; {place} \
                 (fill one with `cargo run --release -p saddle-kernels --example ptx_cache -- DIR` \
                 and point SADDLE_PTX_CACHE at it)",
                module.file_name(),
                arch.0,
                arch.1
            )));
        }
    };
    let ptx = compile()?;
    if let Some(dir) = dir {
        write_atomically(&disk_path(dir, module, arch, key, version), &ptx);
    }
    Ok(ptx)
}

/// The file's text when it is PTX for `arch`.
fn read_ptx(file: &Path, arch: (u32, u32)) -> Option<String> {
    std::fs::read_to_string(file)
        .ok()
        .filter(|ptx| ptx.contains(&format!(".target sm_{}{}", arch.0, arch.1)))
}

/// The cached PTX of the newest NVRTC version for (`module`, `arch`, `key`) in `dir`.
fn newest_cached(dir: &Path, module: KernelModule, arch: (u32, u32), key: u128) -> Option<String> {
    let prefix = file_prefix(module, arch, key);
    let version_of = |name: &str| -> Option<(i32, i32)> {
        let (major, minor) = name
            .strip_prefix(&prefix)?
            .strip_suffix(".ptx")?
            .split_once('.')?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    };
    let mut candidates: Vec<((i32, i32), PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| Some((version_of(e.file_name().to_str()?)?, e.path())))
        .collect();
    candidates.sort();
    candidates
        .iter()
        .rev()
        .find_map(|(_, path)| read_ptx(path, arch))
}

/// Whether `dir` holds any cached PTX (so that a machine without NVRTC may still run kernels).
pub fn holds_ptx(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "ptx"))
    })
}

/// Compiles every module that `arch` can run into the disk cache `dir`, for a machine without
/// NVRTC (files already there are kept); returns the files. Needs NVRTC.
pub fn fill_cache(dir: &Path, arch: (u32, u32)) -> Result<Vec<PathBuf>, CudaError> {
    let version = probe::nvrtc_version()?;
    std::fs::create_dir_all(dir).map_err(|e| {
        CudaError::Unavailable(format!(
            "cannot create the PTX cache {}: {e}",
            dir.display()
        ))
    })?;
    let modules = KernelModule::ALL.iter().filter(|m| arch >= m.min_arch());
    modules
        .map(|&module| {
            let key = cache_key(module.source(), &options(arch), arch);
            from_disk_or_nvrtc(module, arch, key, Some(dir), Ok(version), || {
                compile_with(module, options(arch))
            })?;
            let file = disk_path(dir, module, arch, key, version);
            match read_ptx(&file, arch) {
                Some(_) => Ok(file),
                None => Err(CudaError::Unavailable(format!(
                    "the PTX of {} could not be written to {}",
                    module.file_name(),
                    file.display()
                ))),
            }
        })
        .collect()
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
    fn key_depends_on_every_input_and_nothing_machine_specific() {
        let opts = options((9, 0));
        let base = cache_key("src", &opts, (9, 0));
        assert_eq!(base, cache_key("src", &opts, (9, 0)));
        assert_ne!(base, cache_key("src2", &opts, (9, 0)));
        assert_ne!(base, cache_key("src", &options((8, 0)), (9, 0)));
        assert_ne!(base, cache_key("src", &opts, (8, 0)));
        let path = disk_path(Path::new("/c"), KernelModule::Gemm, (9, 0), base, (13, 0));
        let name = path.to_string_lossy();
        assert!(name.starts_with("/c/gemm-sm90-"), "{name}");
        assert!(name.ends_with("-nvrtc13.0.ptx"), "{name}");
        assert!(opts.iter().all(|o| !o.contains("fast_math")));
        // No path or environment value in the options: a cache filled on one machine serves
        // another. That is sound only while no module includes a header (whose text the key
        // would not cover).
        assert!(opts
            .iter()
            .all(|o| !o.contains('/') && !o.contains("include")));
        for m in KernelModule::ALL {
            assert!(
                !m.source().contains("#include"),
                "{} includes a header",
                m.file_name()
            );
        }
    }

    fn fake_ptx(arch: (u32, u32), text: &str) -> String {
        format!(
            "//\n.version 9.0\n.target sm_{}{}\n// {text}\n",
            arch.0, arch.1
        )
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("saddle-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn no_nvrtc() -> Result<(i32, i32), CudaError> {
        Err(CudaError::Unavailable("no NVRTC library here".into()))
    }

    #[test]
    fn a_cache_filled_elsewhere_is_hit_without_nvrtc() {
        let dir = temp_dir("ptx-no-nvrtc");
        let (module, arch) = (KernelModule::Conv, (9, 0));
        let key = cache_key(module.source(), &options(arch), arch);
        // What `fill_cache` writes on the staging machine, by two NVRTC versions.
        let write = |version, text| {
            let file = disk_path(&dir, module, arch, key, version);
            std::fs::write(file, fake_ptx(arch, text)).unwrap();
        };
        write((12, 9), "old");
        write((13, 0), "new");
        let never = || -> Result<String, CudaError> { panic!("NVRTC called") };
        let hits = cache_stats().disk_hits;
        let ptx = from_disk_or_nvrtc(module, arch, key, Some(&dir), no_nvrtc(), never).unwrap();
        assert!(ptx.contains("// new"), "the newest version's PTX: {ptx}");
        assert!(cache_stats().disk_hits > hits);
        // Another source, options or architecture is a miss, and the error says what to do.
        let other = cache_key(module.source(), &options((8, 0)), (8, 0));
        let err = from_disk_or_nvrtc(module, (8, 0), other, Some(&dir), no_nvrtc(), never)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("conv.cu for sm_80 needs NVRTC or cached PTX"),
            "{err}"
        );
        assert!(err.contains("no NVRTC library here"), "{err}");
        assert!(err.contains(&dir.display().to_string()), "{err}");
        assert!(err.contains("SADDLE_PTX_CACHE"), "{err}");
        // A file whose text is not PTX for the architecture is no hit.
        let wrong = cache_key(module.source(), &options((8, 6)), (8, 6));
        let file = disk_path(&dir, module, (8, 6), wrong, (13, 0));
        std::fs::write(file, fake_ptx((9, 0), "mislabelled")).unwrap();
        assert!(from_disk_or_nvrtc(module, (8, 6), wrong, Some(&dir), no_nvrtc(), never).is_err());
        assert!(holds_ptx(&dir));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn with_nvrtc_only_its_own_version_is_a_hit_and_a_compile_is_stored() {
        let dir = temp_dir("ptx-with-nvrtc");
        let (module, arch) = (KernelModule::Optim, (9, 0));
        let key = cache_key(module.source(), &options(arch), arch);
        let old = disk_path(&dir, module, arch, key, (12, 9));
        std::fs::write(&old, fake_ptx(arch, "old")).unwrap();
        let compiled = || Ok(fake_ptx(arch, "compiled"));
        let ptx = from_disk_or_nvrtc(module, arch, key, Some(&dir), Ok((13, 0)), compiled).unwrap();
        assert!(ptx.contains("// compiled"), "{ptx}");
        let stored = disk_path(&dir, module, arch, key, (13, 0));
        assert_eq!(std::fs::read_to_string(&stored).unwrap(), ptx);
        let never = || -> Result<String, CudaError> { panic!("NVRTC called") };
        let again = from_disk_or_nvrtc(module, arch, key, Some(&dir), Ok((13, 0)), never).unwrap();
        assert_eq!(again, ptx);
        assert!(!holds_ptx(&dir.join("missing")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
