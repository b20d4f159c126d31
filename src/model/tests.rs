//! The U-Net's shapes, initialisation, layouts and precisions.

use super::*;
use tch::Kind;

#[test]
fn parameter_count_and_shapes_match_keras() {
    let vs = nn::VarStore::new(Device::Cpu);
    let _ = unet(&vs.root(), &UNetConfig::default()).unwrap();
    let vars = vs.variables();
    let total: i64 = vars.values().map(|t| t.numel() as i64).sum();
    assert_eq!(total, 7_759_521);
    assert_eq!(vars.len(), 2 * (19 + 4));
    assert_eq!(vars["conv2d_1.weight"].size(), [32, 1, 3, 3]);
    assert_eq!(vars["conv2d_10.weight"].size(), [512, 512, 3, 3]);
    assert_eq!(vars["conv2d_transpose_1.weight"].size(), [512, 256, 2, 2]);
    assert_eq!(vars["conv2d_11.weight"].size(), [256, 512, 3, 3]);
    assert_eq!(vars["conv2d_transpose_4.weight"].size(), [64, 32, 2, 2]);
    assert_eq!(vars["conv2d_19.weight"].size(), [1, 32, 1, 1]);
    assert_eq!(vars["conv2d_19.bias"].size(), [1]);
}

/// A wrong input reaches libtorch and comes back as its error, not a panic.
#[test]
fn a_wrong_input_shape_is_an_error() {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = unet(&vs.root(), &UNetConfig::width(2)).unwrap();
    let x = Tensor::zeros([2, 3, 96, 96], (Kind::Float, Device::Cpu));
    let e = net.forward(&x).unwrap_err().to_string();
    assert!(
        e.contains("expected input[2, 3, 96, 96] to have 1 channels"),
        "{e}"
    );
    assert!(unet(&vs.root(), &UNetConfig::width(0)).is_err());
}

#[test]
fn forward_keeps_the_frame_size_and_gives_probabilities() {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = unet(&vs.root(), &UNetConfig::width(2)).unwrap();
    let x = Tensor::randn([2, 1, 96, 96], (tch::Kind::Float, Device::Cpu));
    let y = net.forward(&x).unwrap().mask;
    assert_eq!(y.size(), [2, 1, 96, 96]);
    let (lo, hi) = (y.min().double_value(&[]), y.max().double_value(&[]));
    assert!(lo > 0.0 && hi < 1.0, "{lo} {hi}");
}

#[test]
fn init_is_glorot_uniform_with_zero_bias() {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let _ = unet(&vs.root(), &UNetConfig::default()).unwrap();
    let vars = vs.variables();
    // conv2d_10: 3x3, 512 -> 512: limit sqrt(6 / (9 * 1024)).
    let w = &vars["conv2d_10.weight"];
    let limit = (6.0f64 / (9.0 * 1024.0)).sqrt();
    let max = w.abs().max().double_value(&[]);
    assert!(max <= limit && max > 0.99 * limit, "{max} vs {limit}");
    // A uniform on [-l, l] has variance l^2 / 3.
    let var = w.var(true).double_value(&[]);
    assert!((var / (limit * limit / 3.0) - 1.0).abs() < 0.01, "{var}");
    // conv2d_transpose_1: 2x2, 512 -> 256.
    let t = &vars["conv2d_transpose_1.weight"];
    let limit_t = (6.0f64 / (4.0 * 768.0)).sqrt();
    let max_t = t.abs().max().double_value(&[]);
    assert!(
        max_t <= limit_t && max_t > 0.99 * limit_t,
        "{max_t} vs {limit_t}"
    );
    for (name, v) in &vars {
        if name.ends_with(".bias") {
            assert_eq!(
                v.abs().sum(tch::Kind::Double).double_value(&[]),
                0.0,
                "{name}"
            );
        }
    }
}

/// A small U-Net with fixed varied weights (tests run in parallel and share the global
/// RNG, so no seeding), scaled so the outputs spread over (0, 1).
fn random_net(speed: Speed) -> (nn::VarStore, UNet) {
    let vs = nn::VarStore::new(Device::Cpu);
    let mut net = unet(&vs.root(), &UNetConfig::width(4)).unwrap();
    for (name, mut v) in vs.variables() {
        let n = v.numel() as i64;
        let fan: i64 = v.size().iter().skip(1).product();
        let scale = if name.ends_with(".bias") {
            0.1
        } else {
            1.5 / (fan as f64).sqrt()
        };
        let pattern = (Tensor::arange(n, (Kind::Float, Device::Cpu)) * 0.7).sin() * scale;
        tch::no_grad(|| v.copy_(&pattern.view(v.size().as_slice())));
    }
    net.set_speed(&vs, speed).unwrap();
    (vs, net)
}

#[test]
fn channels_last_changes_the_layout_not_the_values() {
    let (plain_vs, plain) = random_net(Speed::PLAIN);
    let (fast_vs, fast) = random_net(Speed::default());
    let w = &fast_vs.variables()["conv2d_2.weight"];
    assert_eq!(w.size(), [4, 4, 3, 3]);
    assert_eq!(w.stride(), [36, 1, 12, 4], "NHWC strides");
    assert!(w.equal(&plain_vs.variables()["conv2d_2.weight"]));
    let x = Tensor::randn([3, 1, 96, 96], (Kind::Float, Device::Cpu));
    let (a, b) = tch::no_grad(|| {
        (
            plain.forward(&x).unwrap().mask,
            fast.forward(&x).unwrap().mask,
        )
    });
    assert_eq!(b.size(), [3, 1, 96, 96]);
    assert!(b.is_contiguous());
    let diff = (&a - &b).abs().max().double_value(&[]);
    assert!(diff < 1e-4, "{diff}");
    // Not the same thing by accident: the outputs do vary.
    assert!(a.std(true).double_value(&[]) > 0.05);
}

#[test]
fn bf16_is_close_and_returns_float32() {
    let (_vs, plain) = random_net(Speed::PLAIN);
    let (_vs2, half) = random_net(Speed {
        channels_last: true,
        bf16: true,
    });
    let x = Tensor::randn([2, 1, 96, 96], (Kind::Float, Device::Cpu));
    let (a, b) = tch::no_grad(|| {
        (
            plain.forward(&x).unwrap().mask,
            half.forward(&x).unwrap().mask,
        )
    });
    assert_eq!(b.kind(), Kind::Float);
    // bfloat16 keeps 8 bits of mantissa: close on average, but not float32-exact.
    let diff = (&a - &b).abs().mean(Kind::Float).double_value(&[]);
    let spread = a.std(true).double_value(&[]);
    assert!(
        diff < 0.1 * spread && diff > 1e-6,
        "{diff} vs spread {spread}"
    );
}

#[test]
fn bf16_gradients_reach_the_float32_weights() {
    let (vs, half) = random_net(Speed {
        channels_last: true,
        bf16: true,
    });
    let x = Tensor::randn([2, 1, 96, 96], (Kind::Float, Device::Cpu));
    half.forward(&x).unwrap().mask.sum(Kind::Float).backward();
    for (name, v) in vs.variables() {
        assert_eq!(v.kind(), Kind::Float, "{name}");
        let g = v.grad();
        assert!(g.defined() && g.kind() == Kind::Float, "{name}");
        assert!(g.abs().sum(Kind::Float).double_value(&[]) > 0.0, "{name}");
    }
}
