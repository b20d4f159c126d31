//! The whole chain at tiny size through `nerveseg demo`.

use crate::testenv::TestEnv;

#[test]
fn demo_runs_the_pipeline_end_to_end() {
    let env = TestEnv::new();
    let out = env
        .run(&[
            "demo",
            "--out",
            "d",
            "--device",
            "cpu",
            "--subjects",
            "1",
            "--epochs",
            "1",
        ])
        .ok();
    for step in [
        "expected run time: about ",
        "[1/7] synth",
        "[3/7] train",
        "[6/7] submit",
        "test submission kaggle_dice",
    ] {
        assert!(out.contains(step), "{step}:\n{out}");
    }
    for f in [
        "d/weights/weights.h5",
        "d/weights/history.csv",
        "d/training.png",
        "d/imgs_mask_test.npy",
        "d/preds/200_pred.png",
        "d/overlays/1_overlay.png",
        "d/submission.csv",
    ] {
        assert!(env.path(f).exists(), "{f} missing");
    }
    let csv = std::fs::read_to_string(env.path("d/submission.csv")).unwrap();
    assert_eq!(csv.lines().count(), 201);
    assert_eq!(env.names("d/overlays").len(), 24);
}
