//! Link-time set-up for libtorch, so that `cargo build/test/run` and the release binary
//! work without LD_LIBRARY_PATH and see the GPU when libtorch has CUDA.
//!
//! torch-sys finds libtorch (LIBTORCH, set by .cargo/config.toml to the venv that
//! `make` creates) and passes its lib folder to us as DEP_TCH_LIBTORCH_LIB, because we
//! depend on torch-sys directly. We add:
//! - an rpath to that folder, so binaries find libtorch at run time;
//! - libtorch_cuda linked with `--no-as-needed`: no symbol of ours refers to it, so the
//!   default `--as-needed` drops it and CUDA then looks absent at run time;
//! - the libtorch version as NERVESEG_LIBTORCH_VERSION for `nerveseg info`, checked
//!   against the 2.11 that tch 0.24 binds (torch-sys only checks libtorch zips, not a
//!   PyTorch wheel's folder).
//!
//! It also compiles `proto/onnx.proto3` (ONNX's own schema, MIT, as tract-onnx ships it)
//! into the prost types that `export --onnx` writes, with protox, so no protoc is needed.

use std::path::{Path, PathBuf};

const EXPECTED_TORCH: &str = "2.11.";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    onnx_types();
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Some(lib_dir) = std::env::var_os("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from) else {
        println!("cargo:warning=torch-sys did not report its libtorch folder; no rpath set");
        println!("cargo:rustc-env=NERVESEG_LIBTORCH_VERSION=unknown");
        return;
    };
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "macos" {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    }
    if os == "linux" && lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={}", lib_dir.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    let version = libtorch_version(lib_dir.parent().unwrap_or(&lib_dir));
    if let Some(v) = &version {
        if !v.starts_with(EXPECTED_TORCH) {
            panic!(
                "libtorch {v} found in {}, but nerveseg (tch 0.24) needs PyTorch 2.11.x; \
                 run `make build` to create .venv with torch==2.11.0, or point LIBTORCH at a \
                 libtorch 2.11",
                lib_dir.display()
            );
        }
    }
    println!(
        "cargo:rustc-env=NERVESEG_LIBTORCH_VERSION={}",
        version.as_deref().unwrap_or("unknown")
    );
}

/// `onnx.rs` in OUT_DIR: the types of `proto/onnx.proto3`.
fn onnx_types() {
    println!("cargo:rerun-if-changed=proto/onnx.proto3");
    let fds = protox::compile(["onnx.proto3"], ["proto"])
        .unwrap_or_else(|e| panic!("proto/onnx.proto3: {e}"));
    prost_build::Config::new()
        .compile_fds(fds)
        .unwrap_or_else(|e| panic!("generating the ONNX types: {e}"));
}

/// The version of a libtorch folder: `build-version` in a libtorch zip, or
/// `version.py` (`__version__ = '2.11.0+cu130'`) in a PyTorch wheel's `torch/` folder.
fn libtorch_version(root: &Path) -> Option<String> {
    if let Ok(v) = std::fs::read_to_string(root.join("build-version")) {
        return Some(v.trim().to_owned());
    }
    let text = std::fs::read_to_string(root.join("version.py")).ok()?;
    let line = text.lines().find(|l| l.starts_with("__version__"))?;
    let value = line.split_once('=')?.1.trim();
    Some(value.trim_matches(|c| c == '\'' || c == '"').to_owned())
}
