//! `stream`: raw gray frames in, one 0/255 mask (or RGB overlay) out per frame, the same
//! masks as `predict` + `submit`; a short last frame is an error after the whole frames'
//! masks were written.

use crate::testenv::TestEnv;
use crate::tiny::{mask_scores, middle_of, raw_frames, submitted, trained, H, W};

/// `stream` of the tiny checkpoint on the CPU, reading `input` as frames of `size`.
fn stream_of<'a>(input: &'a str, size: &'a str) -> Vec<&'a str> {
    vec![
        "stream",
        "--weights",
        "w/weights.h5",
        "--frame-size",
        size,
        "--input",
        input,
        "--device",
        "cpu",
    ]
}

#[test]
fn stream_masks_equal_predict_and_submit() {
    let env = TestEnv::new();
    // A low threshold, so that an untrained network's masks are not all empty.
    let rule = ["--threshold", "0.3", "--min-size", "50"];
    trained(&env, &[], &rule);
    let n = raw_frames(&env);
    let mut args = stream_of("clip.raw", "420x580");
    args.extend(rule);
    let run = env.run(&args);
    let out = run.output.stdout.clone();
    let err = run.stderr();
    assert!(run.output.status.success(), "{err}");
    assert!(
        err.contains(&format!("stream: {n} frames of 420 x 580 in "))
            && err.contains("99th percentile"),
        "{err}"
    );
    assert_eq!(out.len(), n * H * W);
    let want = submitted(&env);
    let kept = want.iter().filter(|m| m.contains(&255)).count();
    assert!(
        kept > 0,
        "no mask kept: the comparison would be of empty masks"
    );
    for (k, (got, want)) in out.chunks(H * W).zip(&want).enumerate() {
        assert!(
            got == &want[..],
            "frame {k}: the stream's mask differs from submit's"
        );
    }

    // A presence rule goes through the stream as through submit, at a threshold between
    // the frames' presence scores (about the mean of a map's top 1%).
    let middle = middle_of(&mask_scores(&env));
    let gate = [
        "--presence",
        "mask",
        "--presence-threshold",
        middle.as_str(),
    ];
    env.run(&[&["submit", "-q"][..], &rule, &gate].concat())
        .ok();
    let gated = env.run(&[&args[..], &gate].concat()).output.stdout;
    let want = submitted(&env);
    let gated_kept = want.iter().filter(|m| m.contains(&255)).count();
    assert!(
        gated_kept < kept,
        "the gate emptied no mask: {gated_kept} of {kept} kept"
    );
    for (k, (got, want)) in gated.chunks(H * W).zip(&want).enumerate() {
        assert!(
            got == &want[..],
            "frame {k}: the gated mask differs from submit's"
        );
    }

    // The frame size defaults to the one the checkpoint was trained on.
    let plain: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| *a != "--frame-size" && *a != "420x580")
        .collect();
    assert!(env.run(&plain).output.stdout == out, "without --frame-size");

    // --overlay: the frame in gray with the mask's outline in red, 3 bytes a pixel, no
    // caption.
    args.extend(["--overlay", "--output", "over.rgb"]);
    env.run(&args).ok();
    let rgb = std::fs::read(env.path("over.rgb")).unwrap();
    assert_eq!(rgb.len(), n * H * W * 3);
    let frames = std::fs::read(env.path("clip.raw")).unwrap();
    let mut red = 0;
    for (i, (p, &v)) in rgb.chunks(3).zip(&frames).enumerate() {
        let (k, y, x) = (i / (H * W), i / W % H, i % W);
        let on = |yy: usize, xx: usize| out[k * H * W + yy * W + xx] != 0;
        let edge = on(y, x) && (y == 0 || x == 0 || y + 1 == H || x + 1 == W)
            || on(y, x) && (!on(y - 1, x) || !on(y + 1, x) || !on(y, x - 1) || !on(y, x + 1));
        let want = if edge { [240, 30, 30] } else { [v, v, v] };
        assert_eq!(p, want, "frame {k}, pixel ({y}, {x})");
        red += edge as usize;
    }
    assert!(red > 0);
    // An existing --output is kept unless --overwrite.
    env.refuses(&args, &["over.rgb exists: pass --overwrite"]);
    args.push("--overwrite");
    env.run(&args).ok();
    assert_eq!(std::fs::read(env.path("over.rgb")).unwrap(), rgb);
    // The input is never the output.
    let same = [
        "stream",
        "--input",
        "clip.raw",
        "--output",
        "clip.raw",
        "--overwrite",
    ];
    env.refuses(&same, &["clip.raw is both --input and --output"]);
    assert_eq!(std::fs::read(env.path("clip.raw")).unwrap(), frames);
}

/// A reader that goes away (`| head -c`) ends the stream quietly, as a pipe's writer.
#[test]
fn a_reader_that_goes_away_ends_the_stream() {
    use std::io::Read;
    let env = TestEnv::new();
    trained(&env, &[], &[]);
    let n = raw_frames(&env);
    let mut child = env
        .command(&[
            "stream",
            "--weights",
            "w/weights.h5",
            "--input",
            "clip.raw",
            "--device",
            "cpu",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = vec![0u8; H * W];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then closed
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("stream: ") && !err.contains("error"), "{err}");
    assert!(n > 1);
}

#[test]
fn a_short_last_frame_is_an_error_after_the_whole_frames() {
    let env = TestEnv::new();
    trained(&env, &[], &[]);
    let n = raw_frames(&env);
    let mut bytes = std::fs::read(env.path("clip.raw")).unwrap();
    bytes.truncate((n - 1) * H * W + 1000);
    std::fs::write(env.path("cut.raw"), &bytes).unwrap();
    let run = env.run(&stream_of("cut.raw", "420x580"));
    let err = run.fails_with(&[&format!(
        "cut.raw: the stream ends inside frame {n}: 1000 of its 243600 bytes (420 x 580 frames); \
         the {} whole frames before it were segmented and written",
        n - 1
    )]);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(run.output.stdout.len(), (n - 1) * H * W);

    // A frame size that does not divide the stream: the same error, at its frame.
    let run = env.run(&stream_of("clip.raw", "400x580"));
    let whole = n * H * W / (400 * W);
    run.fails_with(&[&format!(
        "clip.raw: the stream ends inside frame {}: ",
        whole + 1
    )]);
    assert_eq!(run.output.stdout.len(), whole * 400 * W);
}

/// examples/segment_in_memory.rs (built by `cargo test`) on PNG frames: the same masks as
/// submit's.
#[test]
fn the_in_memory_example_gives_submits_masks() {
    let env = TestEnv::new();
    // The example uses the library's defaults: the original rule.
    trained(&env, &[], &[]);
    let n = raw_frames(&env);
    let frames = std::fs::read(env.path("clip.raw")).unwrap();
    let mut args = vec!["w/weights.h5".to_owned()];
    for k in 0..n {
        let name = format!("f{k}.png");
        image::GrayImage::from_raw(
            W as u32,
            H as u32,
            frames[k * H * W..(k + 1) * H * W].to_vec(),
        )
        .unwrap()
        .save(env.path(&name))
        .unwrap();
        args.push(name);
    }
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_nerveseg"))
        .with_file_name("examples")
        .join("segment_in_memory");
    let out = std::process::Command::new(&bin)
        .args(&args)
        .current_dir(env.path(""))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.matches("nerve pixels, peak probability").count(),
        n,
        "{text}"
    );
    let want = submitted(&env);
    assert!(want.iter().any(|m| m.contains(&255)), "every mask is empty");
    for (k, want) in want.iter().enumerate() {
        let got = image::open(env.path(&format!("f{k}_mask.png")))
            .unwrap()
            .to_luma8();
        assert!(
            got.as_raw() == want,
            "frame {k}: the example's mask differs from submit's"
        );
    }
}
