//! Compiles every CUDA module into a PTX cache folder, so that a GPU machine without NVRTC (or
//! without the time to run it) loads compiled kernels: point `SADDLE_PTX_CACHE` at the folder
//! there. Needs NVRTC here, no GPU.
//!
//! ```text
//! eval "$(scripts/setup-nvrtc.sh)"
//! cargo run --release -p saddle-kernels --example ptx_cache -- DIR [ARCH ...]
//! ```
//!
//! ARCH is a compute capability such as `9.0` (the default: H100 and H200).

use saddle_kernels::cuda::compile;
use std::path::PathBuf;
use std::process::ExitCode;

fn parse_arch(s: &str) -> Option<(u32, u32)> {
    let (major, minor) = s.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: ptx_cache DIR [ARCH ...]   (ARCH like 9.0; default 9.0)");
        return ExitCode::FAILURE;
    };
    let mut archs = Vec::new();
    for a in args {
        match parse_arch(&a) {
            Some(arch) => archs.push(arch),
            None => {
                eprintln!("ptx_cache: {a:?} is not a compute capability like 9.0");
                return ExitCode::FAILURE;
            }
        }
    }
    if archs.is_empty() {
        archs.push((9, 0));
    }
    for arch in archs {
        match compile::fill_cache(&dir, arch) {
            Ok(files) => println!(
                "ptx_cache: {} modules for sm_{}{} in {}",
                files.len(),
                arch.0,
                arch.1,
                dir.display()
            ),
            Err(e) => {
                eprintln!("ptx_cache: sm_{}{}: {e}", arch.0, arch.1);
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
