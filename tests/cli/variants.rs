//! The model family against real tf-keras (tests/fixtures/keras/make_variant_fixtures.py,
//! make_variant_train_fixtures.py, make_loss_fixtures.py): each variant's file says its
//! network and predicts as tf-keras did; one Adam step with BatchNorm moves the weights
//! and moving statistics as tf-keras did; the losses equal TensorFlow's; every variant
//! round-trips through every layout exactly.

use nerveseg::adam::{AdamConfig, KerasAdam};
use nerveseg::frame::FrameSize;
use nerveseg::keras::{self, Format, Meta};
use nerveseg::loss::{dice_loss, Loss};
use nerveseg::model::{Activation, Norm, Speed, UNetConfig};
use tch::{Device, Kind, Tensor};

use crate::keras_fixtures::{keras_fixture, max_abs_diff, read_f32};
use crate::testenv::TestEnv;

/// An NHWC float32 fixture as an NCHW tensor (one channel: the same bytes).
fn nchw(name: &str) -> Tensor {
    let (shape, data) = read_f32(&keras_fixture(name));
    let [n, h, w, c] = [shape[0], shape[1], shape[2], shape[3]].map(|d| d as i64);
    Tensor::from_slice(&data)
        .view([n, h, w, c])
        .permute([0, 3, 1, 2])
}

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.contiguous().view([-1])).unwrap()
}

fn size(h: usize, w: usize) -> FrameSize {
    FrameSize::new(h, w).unwrap()
}

/// (fixture, the network it holds).
fn variants() -> Vec<(&'static str, UNetConfig)> {
    let w4 = UNetConfig::width(4);
    vec![
        (
            "variant_bn",
            UNetConfig {
                norm: Norm::Batch,
                ..w4
            },
        ),
        (
            "variant_elu",
            UNetConfig {
                activation: Activation::Elu,
                ..w4
            },
        ),
        (
            "variant_bn_elu_drop_head_64x80",
            UNetConfig {
                input: size(64, 80),
                norm: Norm::Batch,
                activation: Activation::Elu,
                dropout: 0.1,
                presence_head: true,
                ..w4
            },
        ),
        (
            "variant_relu_drop_48x64",
            UNetConfig {
                input: size(48, 64),
                dropout: 0.2,
                ..w4
            },
        ),
    ]
}

/// Predictions of a loaded file on the variant's inputs: (mask, presence logits).
fn predict(file: &keras::KerasFile, name: &str, speed: Speed) -> (Tensor, Option<Tensor>) {
    let mut loaded = keras::load(file, Device::Cpu, false).unwrap();
    loaded.net.set_speed(&loaded.vs, speed).unwrap();
    let x = nchw(&format!("{name}_x.npy"));
    let out = tch::no_grad(|| loaded.net.forward(&x).unwrap());
    (out.mask, out.presence)
}

fn assert_close(what: &str, ours: &Tensor, theirs: &Tensor, tol: f32) {
    assert_eq!(ours.size(), theirs.size(), "{what}");
    let d = max_abs_diff(&values(ours), &values(theirs));
    assert!(d <= tol, "{what}: max |diff| {d:e}");
}

#[test]
fn every_variant_of_tf_keras_loads_as_its_network_and_predicts_as_tf_keras() {
    for (name, cfg) in variants() {
        let file = keras::read(&keras_fixture(&format!("{name}.h5"))).unwrap();
        assert_eq!(file.network().unwrap(), cfg, "{name}");
        let want = nchw(&format!("{name}_mask.npy"));
        for speed in [Speed::PLAIN, Speed::default()] {
            let (mask, head) = predict(&file, name, speed);
            assert_close(&format!("{name} {speed:?}"), &mask, &want, 1e-5);
            assert_eq!(head.is_some(), cfg.presence_head, "{name}");
            if let Some(logits) = head {
                let (_, p) = read_f32(&keras_fixture(&format!("{name}_presence.npy")));
                let d = max_abs_diff(&values(&logits.sigmoid()), &p);
                assert!(d <= 1e-5, "{name} presence: {d:e}");
            }
        }
        // The outputs vary: a match is not two constant maps.
        assert!(want.std(true).double_value(&[]) > 1e-3, "{name}");
    }
}

/// Keras 3's `.weights.h5` has no model_config: its BatchNormalization layers say the
/// normalisation, the rest is the tutorial's (ReLU, 96 x 96).
#[test]
fn a_keras3_batchnorm_file_loads_by_its_shapes() {
    let file = keras::read(&keras_fixture("variant_bn.weights.h5")).unwrap();
    assert_eq!(file.format, Format::Keras3Weights);
    assert_eq!(file.network().unwrap(), variants()[0].1);
    let (mask, _) = predict(&file, "variant_bn", Speed::PLAIN);
    assert_close("keras 3", &mask, &nchw("variant_bn_mask.npy"), 1e-5);
}

#[test]
fn every_variant_round_trips_through_every_layout_exactly() {
    let env = TestEnv::new();
    for (name, cfg) in variants() {
        let src = keras::read(&keras_fixture(&format!("{name}.h5"))).unwrap();
        let (want, want_head) = predict(&src, name, Speed::PLAIN);
        let loaded = keras::load(&src, Device::Cpu, false).unwrap();
        for (format, out) in [
            (Format::Keras2Model, "a.h5"),
            (Format::Keras2Weights, "b.h5"),
            (Format::Keras3Weights, "c.weights.h5"),
        ] {
            let path = env.path(&format!("{name}_{out}"));
            keras::write(&path, &loaded.vs, &cfg, &Meta::default(), format).unwrap();
            let back = keras::read(&path).unwrap();
            assert_eq!(back.network().unwrap(), cfg, "{name} {format:?}");
            let (mask, head) = predict(&back, name, Speed::PLAIN);
            assert!(mask.equal(&want), "{name} {format:?}");
            assert_eq!(head.is_some(), want_head.is_some());
            if let (Some(a), Some(b)) = (head, &want_head) {
                assert!(a.equal(b), "{name} {format:?} head");
            }
        }
    }
}

/// The variables of a tf-keras file of network `cfg`, by VarStore name.
fn keras_vars(cfg: &UNetConfig, keras_file: &str) -> Vec<(String, Tensor)> {
    let f = keras::read(&keras_fixture(keras_file)).unwrap();
    let loaded = keras::load(&f, Device::Cpu, false).unwrap();
    assert_eq!(&loaded.cfg, cfg);
    let vs = loaded.vs;
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// `conv2d_N.bias` of a convolution feeding a BatchNorm (all but the 1x1 output).
fn feeds_batchnorm(name: &str) -> bool {
    name.strip_prefix("conv2d_")
        .and_then(|n| n.strip_suffix(".bias"))
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n < 19)
}

/// Max |a - b|.
fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// One tf-keras Adam step (lr 1e-3) of the BatchNorm U-Net from the same weights on the
/// same batch:
/// - the loss (training mode: batch statistics) within 1e-6;
/// - the gradients as close to the float64 gradients (tf-keras in float64) as
///   tf-keras's own float32 gradients are, or closer: through 18 BatchNorms the first
///   layers' float32 gradients carry relative errors of ~5e-3 in either implementation,
///   so the two cannot agree to 1e-6 (and Adam's first step, lr g / (|g| + 3.2e-6),
///   turns such noise in a near-zero gradient into a whole step);
/// - the step itself, fed tf-keras's gradients, lands on tf-keras's weights within 1e-6,
///   and the moving statistics (from our forward pass) on tf-keras's within 1e-6.
#[test]
fn one_adam_step_with_batchnorm_matches_tf_keras() {
    let cfg = UNetConfig {
        norm: Norm::Batch,
        ..UNetConfig::width(4)
    };
    let grads = keras_vars(&cfg, "bn_train_grads_w4.h5");
    let grads64 = keras_vars(&cfg, "bn_train_grads64_w4.h5");
    let step1 = keras_vars(&cfg, "bn_train_step1_w4.h5");
    let before = keras_vars(&cfg, "bn_train_init_w4.h5");
    for speed in [Speed::PLAIN, Speed::default()] {
        let init = keras::read(&keras_fixture("bn_train_init_w4.h5")).unwrap();
        assert_eq!(init.network().unwrap(), cfg);
        let keras::Loaded { vs, mut net, .. } = keras::load(&init, Device::Cpu, false).unwrap();
        net.set_speed(&vs, speed).unwrap();
        let x = nchw("train_x_w4.npy");
        let y = nchw("train_y_w4.npy");
        let adam = AdamConfig {
            lr: 1e-3,
            ..AdamConfig::default()
        };
        let mut opt = KerasAdam::new(&vs, adam).unwrap();
        opt.zero_grad().unwrap();
        let loss = dice_loss(&y, &net.forward_t(&x, true).unwrap().mask).unwrap();
        loss.backward();
        let r = nerveseg::data::npy::NpyReader::open(&keras_fixture("bn_train_loss_w4.npy"));
        let want = r.unwrap().read_all::<f64>().unwrap()[0];
        let got = loss.double_value(&[]);
        assert!((got - want).abs() < 1e-6, "{speed:?}: loss {got} vs {want}");
        // Relative errors: max |g - g64| / max |g64| of each trained variable.
        let ours = vs.variables();
        let mut errors = Vec::new();
        for ((name, g32), (_, g64)) in grads.iter().zip(&grads64) {
            let t = ours[name].shallow_clone();
            if !t.requires_grad() {
                continue;
            }
            let scale = g64.abs().max().double_value(&[]).max(1e-12);
            let (mine, theirs) = (max_diff(&t.grad(), g64), max_diff(g32, g64));
            errors.push((name.clone(), mine / scale, theirs / scale));
            // From here on the step is fed tf-keras's gradient.
            tch::no_grad(|| t.grad().copy_(g32));
        }
        // The conv biases feeding a BatchNorm have a true gradient of 0: noise only.
        errors.retain(|(name, _, _)| !feeds_batchnorm(name));
        let worst_tf = errors.iter().map(|e| e.2).fold(0.0, f64::max);
        assert!(worst_tf > 1e-4 && worst_tf < 1e-2, "tf-keras: {worst_tf:e}");
        for (name, mine, _) in &errors {
            assert!(
                *mine <= worst_tf,
                "{speed:?} gradient of {name}: relative error {mine:e}, tf-keras's worst \
                 {worst_tf:e}"
            );
        }
        opt.step().unwrap();
        let ours = vs.variables();
        for ((name, theirs), (_, start)) in step1.iter().zip(&before) {
            let t = &ours[name];
            let d = max_diff(t, theirs);
            assert!(d <= 1e-6, "{speed:?} {name}: max |diff| {d:e}");
            // Every kernel, gamma and moving statistic moved.
            if !name.ends_with(".bias") {
                let moved = max_diff(t, start);
                assert!(moved > 1e-5, "{speed:?}: {name} did not move ({moved:e})");
            }
        }
    }
}

/// In prediction the moving statistics normalise: a batch of one predicts as it does
/// inside a batch, and prediction leaves the statistics as they were.
#[test]
fn batchnorm_predicts_with_its_moving_statistics() {
    let file = keras::read(&keras_fixture("variant_bn.h5")).unwrap();
    let loaded = keras::load(&file, Device::Cpu, false).unwrap();
    let x = nchw("variant_bn_x.npy");
    let stats = || loaded.vs.variables()["batch_normalization_1.running_mean"].copy();
    let before = stats();
    let (all, one) = tch::no_grad(|| {
        (
            loaded.net.forward(&x).unwrap().mask,
            loaded.net.forward(&x.narrow(0, 1, 1)).unwrap().mask,
        )
    });
    assert_close("one of three", &one, &all.narrow(0, 1, 1), 1e-6);
    assert!(stats().equal(&before));
}

#[test]
fn the_losses_equal_tensorflows() {
    let t = nchw_cases("dice_true.npy");
    let logits = nchw_cases("dice_logits.npy");
    let p = logits.sigmoid();
    let (_, want) = read_f32(&keras_fixture("loss_expected.npy"));
    for c in 0..4 {
        let (t, p, l) = (t.get(c), p.get(c), logits.get(c));
        for (k, loss) in [Loss::ImageDice, Loss::BceDice, Loss::Dice]
            .into_iter()
            .enumerate()
        {
            let got = loss.of(&t, &p, &l).unwrap().double_value(&[]);
            let w = want[c as usize * 3 + k] as f64;
            assert!((got - w).abs() < 1e-6, "case {c} {loss:?}: {got} vs {w}");
        }
    }
}

/// (cases, N, H, W, 1) fixtures as (cases, N, 1, H, W).
fn nchw_cases(name: &str) -> Tensor {
    let (shape, data) = read_f32(&keras_fixture(name));
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(&data)
        .view(dims.as_slice())
        .permute([0, 1, 4, 2, 3])
        .to_kind(Kind::Float)
}
