use crate::testenv::TestEnv;

#[test]
fn plot_draws_the_history() {
    let env = TestEnv::new();
    std::fs::write(
        env.path("history.csv"),
        "epoch,dice_coef,loss,val_dice_coef,val_loss,seconds\n0,0.1,-0.1,0.05,-0.05,1.0\n1,0.4,-0.4,0.3,-0.3,1.0\n2,0.6,-0.6,0.5,-0.5,1.0\n",
    )
    .unwrap();
    let out = env
        .run(&["plot", "history.csv", "--out", "curves.png"])
        .ok();
    assert!(out.contains("wrote curves.png"));
    let img = image::open(env.path("curves.png")).unwrap().to_rgb8();
    // The tutorial's loss is -dice_coef: one panel, of the Dice.
    assert_eq!(img.dimensions(), (560, 420));
    // The epoch of weights.h5 (the lowest val_loss) is marked in green.
    let green = img
        .pixels()
        .filter(|p| p[1] > 120 && p[0] < 40 && p[2] < 40)
        .count();
    assert!(green > 100, "green {green}");
    // Not blank: the train (blue) and validation (red) lines are drawn.
    let blue = img
        .pixels()
        .filter(|p| p[2] > 200 && p[0] < 60 && p[1] < 60)
        .count();
    let red = img
        .pixels()
        .filter(|p| p[0] > 200 && p[1] < 60 && p[2] < 60)
        .count();
    assert!(blue > 100 && red > 100, "blue {blue} red {red}");
}

/// A loss that is not -dice_coef (here binary cross-entropy + Dice) gets its own panel.
#[test]
fn another_loss_gets_a_panel() {
    let env = TestEnv::new();
    std::fs::write(
        env.path("h.csv"),
        "epoch,dice_coef,loss,val_dice_coef,val_loss,seconds\n0,0.1,0.9,0.05,0.95,1.0\n1,0.4,0.6,0.3,0.7,1.0\n",
    )
    .unwrap();
    env.run(&["plot", "h.csv", "--out", "c.png"]).ok();
    let img = image::open(env.path("c.png")).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1000, 420));
}

#[test]
fn plot_explains_bad_histories() {
    let env = TestEnv::new();
    env.run(&["plot", "nope.csv"])
        .fails_with(&["opening nope.csv"]);
    std::fs::write(env.path("x.csv"), "a,b\n1,2\n").unwrap();
    env.run(&["plot", "x.csv"])
        .fails_with(&["x.csv: not a training history"]);
    std::fs::write(env.path("e.csv"), "epoch,dice_coef,loss\n").unwrap();
    env.run(&["plot", "e.csv"])
        .fails_with(&["e.csv: no epochs to plot"]);
}
