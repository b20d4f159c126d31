//! What a new user meets on the command line: a flag that does not belong to a command
//! gets one line saying why, not a usage line cut short.

use crate::testenv::TestEnv;

/// A network flag given to a command that reads a checkpoint: the checkpoint decides
/// the network (exit 2, as for any usage error).
#[test]
fn network_flags_of_checkpoint_commands_say_the_checkpoint_decides() {
    let env = TestEnv::new();
    for args in [
        &["predict", "--base-width", "32"][..],
        &["evaluate", "--norm=batch"],
        &["export", "--torchscript", "m.pt", "--input-size", "128x128"],
        &["submit", "--loss", "image-dice"],
    ] {
        let r = env.run(args);
        let flag = args
            .iter()
            .find(|a| a.starts_with("--") && !a.starts_with("--torch"))
            .unwrap();
        let flag = flag.split('=').next().unwrap();
        r.fails_with(&[
            &format!("{flag} chooses a fresh network"),
            "checkpoint records",
        ]);
        assert_eq!(r.output.status.code(), Some(2));
    }
    // Any other unknown flag is clap's usual error.
    let r = env.run(&["predict", "--no-such-flag"]);
    assert_eq!(r.output.status.code(), Some(2));
    assert!(r.stderr().contains("unexpected argument '--no-such-flag'"));
}

/// clap reads `{n}` in help text as a line break: no help may be cut so.
#[test]
fn help_texts_are_not_cut_by_clap_markup() {
    let env = TestEnv::new();
    for sub in [
        "synth", "prepare", "clean", "train", "cv", "predict", "submit", "evaluate", "plot",
        "demo", "export", "convert", "inspect", "info", "bench",
    ] {
        let help = env.run(&[sub, "--help"]).ok();
        for line in help.lines() {
            assert!(!line.trim_end().ends_with('_'), "{sub} --help: {line:?}");
        }
    }
    let help = env.run(&["prepare", "--help"]).ok();
    assert!(
        help.contains("train/SUBJECT_I.tif, train/SUBJECT_I_mask.tif, test/ID.tif"),
        "{help}"
    );
}
