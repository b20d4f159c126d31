use crate::testenv::TestEnv;

#[test]
fn info_reports_libtorch_and_devices() {
    let out = TestEnv::new().run(&["info"]).ok();
    assert!(out.contains("libtorch: 2.11."), "{out}");
    assert!(out.contains("CUDA available: "), "{out}");
    assert!(out.contains("cuDNN available: "), "{out}");
    assert!(out.contains("HDF5: ") && out.contains("(bundled)"), "{out}");
    let cpu = nerveseg::cpu::CpuFeatures::detect();
    assert!(out.contains(&format!("CPU: {cpu}; ")), "{out}");
}

/// bfloat16 on a CPU that only emulates it says so (on a CPU with BF16, nothing).
#[test]
fn bf16_on_a_cpu_without_it_warns() {
    let env = TestEnv::new();
    let x = env.path("x.npy");
    nerveseg::data::npy::write(&x, &[1, 96, 96, 1], &vec![0.5f32; 96 * 96]).unwrap();
    let args = [
        "bench",
        "infer",
        "--images",
        x.to_str().unwrap(),
        "--batch-size",
        "1",
    ];
    let run = env.run(
        &[
            &args[..],
            &[
                "--warmup",
                "0",
                "--batches",
                "1",
                "--device",
                "cpu",
                "--bf16",
            ],
        ]
        .concat(),
    );
    run.ok();
    let warned = run.stderr().contains("has no bfloat16 instructions");
    assert_eq!(
        warned,
        !nerveseg::cpu::CpuFeatures::detect().bf16(),
        "{}",
        run.stderr()
    );
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
