//! A real libtorch failure through the binary: memory runs out (an address-space limit
//! set with the shell's `ulimit -v`) while a wide U-Net is built. The user gets one line
//! saying so and what to try, not a panic with libtorch's C++ backtrace.

use crate::testenv::TestEnv;

/// Runs `nerveseg ARGS` under `ulimit -v KIB`.
fn limited(env: &TestEnv, kib: u64, args: &str) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {kib} && exec {} {args}",
            env!("CARGO_BIN_EXE_nerveseg")
        ))
        .current_dir(env.path(""))
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn out_of_memory_in_libtorch_is_one_line() {
    let env = crate::train::prepared();
    // The smallest limit (in GiB) the binary starts under: libtorch's libraries alone map
    // a few GiB of address space. One more GiB cannot hold a U-Net of width 256 (2 GiB
    // of weights, then as much again for the channels-last layout or for Adam).
    let start = (2..=16u64)
        .find(|g| limited(&env, g << 20, "--version").status.success())
        .expect("nerveseg does not start under 16 GiB of address space");
    let out = limited(
        &env,
        (start + 1) << 20,
        "train -q --base-width 256 --epochs 1 --device cpu",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("nerveseg: error: out of memory on cpu during "),
        "{err}"
    );
    assert!(
        err.contains("for a U-Net of base width 256; try a smaller --base-width"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("frame #"),
        "{err}"
    );
    assert!(!env.path("weights/weights.h5").exists());
    assert!(env.partial_files().is_empty());
}
