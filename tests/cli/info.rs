use crate::testenv::TestEnv;

#[test]
fn info_reports_libtorch_and_devices() {
    let out = TestEnv::new().run(&["info"]).ok();
    assert!(out.contains("libtorch: 2.11."), "{out}");
    assert!(out.contains("CUDA available: "), "{out}");
    assert!(out.contains("cuDNN available: "), "{out}");
    assert!(out.contains("HDF5: ") && out.contains("(bundled)"), "{out}");
}

#[test]
fn version_names_libtorch() {
    let out = TestEnv::new().run(&["--version"]).ok();
    assert!(out.starts_with("nerveseg 0."), "{out}");
    assert!(out.contains("libtorch 2.11."), "{out}");
}

#[test]
fn unknown_subcommand_fails_without_panic() {
    let run = TestEnv::new().run(&["frobnicate"]);
    assert!(!run.output.status.success());
    assert!(run.stderr().contains("frobnicate"));
}
