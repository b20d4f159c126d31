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

/// Every subcommand's help ends with examples, and each example's flags parse (each is
/// run with --help, which clap answers only once the words before it are valid).
#[test]
fn every_help_ends_with_examples_that_parse() {
    let env = TestEnv::new();
    for sub in [
        "synth",
        "prepare",
        "clean",
        "train",
        "cv",
        "predict",
        "submit",
        "evaluate",
        "plot",
        "demo",
        "export",
        "convert",
        "inspect",
        "info",
        "bench",
        "completions",
    ] {
        let help = env.run(&[sub, "--help"]).ok();
        let (_, examples) = help
            .split_once("\nExamples:\n")
            .unwrap_or_else(|| panic!("{sub} --help has no examples:\n{help}"));
        let mut tried = 0;
        for line in examples.lines() {
            let Some(cmd) = line.trim_start().strip_prefix("nerveseg ") else {
                continue;
            };
            // The command ends where its comment (two spaces) or a redirection starts.
            let cmd = cmd.split("  ").next().unwrap().split(" >").next().unwrap();
            let args: Vec<&str> = cmd.split_whitespace().chain(["--help"]).collect();
            let r = env.run(&args);
            assert!(r.output.status.success(), "{sub}: {cmd}: {}", r.stderr());
            tried += 1;
        }
        assert!(tried >= 1, "{sub}: {examples}");
    }
}

/// `completions SHELL` prints a script the shell accepts, knowing the subcommands and
/// their flags.
#[test]
fn completion_scripts_know_the_commands() {
    let env = TestEnv::new();
    let bash = env.run(&["completions", "bash"]).ok();
    assert!(
        bash.contains("--recipe") && bash.contains("predict"),
        "{bash}"
    );
    std::fs::write(env.path("nerveseg.bash"), &bash).unwrap();
    let check = std::process::Command::new("bash")
        .args(["-n", "nerveseg.bash"])
        .current_dir(env.path("."))
        .status()
        .unwrap();
    assert!(check.success());
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = env.run(&["completions", shell]).ok();
        assert!(script.contains("max-side"), "{shell}");
    }
}
