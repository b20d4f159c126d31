//! `train --augment`: the modest augmentation of the strong Kaggle entries, per batch and
//! on the device. Each sample gets a random horizontal flip, rotation, shift and zoom
//! (one affine map, sampled bilinearly: images with their border repeated, masks with
//! zeros beyond, so they stay soft in [0, 1] and aligned with their images), and its
//! image a brightness and contrast jitter. The parameters come from a generator seeded
//! by (seed, epoch, batch), so a run and its resume see the same batches.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use tch::{Device, Kind, TchError, Tensor};

use crate::frame::FrameSize;

/// The ranges; defaults are those that helped in the competition.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AugmentConfig {
    /// Flip left-right with probability 1/2.
    pub flip: bool,
    /// Rotation, uniform in +-degrees.
    pub rotate: f64,
    /// Shift, uniform in +-pixels of the full frame (each axis).
    pub shift: f64,
    /// Zoom, uniform in 1 +- this.
    pub zoom: f64,
    /// Brightness, uniform in +- this many standard deviations.
    pub brightness: f64,
    /// Contrast, a factor uniform in 1 +- this.
    pub contrast: f64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            flip: true,
            rotate: 5.0,
            shift: 10.0,
            zoom: 0.1,
            brightness: 0.1,
            contrast: 0.1,
        }
    }
}

impl AugmentConfig {
    /// The settings as flags, for the run record.
    pub fn describe(&self) -> String {
        format!(
            "--augment{} --aug-rotate {} --aug-shift {} --aug-zoom {} --aug-brightness {} \
             --aug-contrast {}",
            if self.flip { "" } else { " --aug-no-flip" },
            self.rotate,
            self.shift,
            self.zoom,
            self.brightness,
            self.contrast
        )
    }
}

/// One batch's random draws: the affine maps ([B, 2, 3], output -> input coordinates in
/// [-1, 1]) and the per-sample contrast and brightness.
fn draws(
    cfg: &AugmentConfig,
    b: usize,
    frame: FrameSize,
    seed: u64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut uniform = |r: f64| {
        if r > 0.0 {
            rng.random_range(-r..=r)
        } else {
            0.0
        }
    };
    let (mut theta, mut gain, mut bias) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..b {
        let angle = uniform(cfg.rotate).to_radians();
        let zoom = 1.0 + uniform(cfg.zoom);
        // A shift of p pixels is 2p / side in grid coordinates.
        let tx = 2.0 * uniform(cfg.shift) / frame.width as f64;
        let ty = 2.0 * uniform(cfg.shift) / frame.height as f64;
        let flip = if cfg.flip && uniform(1.0) < 0.0 {
            -1.0
        } else {
            1.0
        };
        let (c, s) = (angle.cos() / zoom, angle.sin() / zoom);
        theta.extend([c * flip, -s, tx, s * flip, c, ty].map(|v| v as f32));
        gain.push((1.0 + uniform(cfg.contrast)) as f32);
        bias.push(uniform(cfg.brightness) as f32);
    }
    (theta, gain, bias)
}

/// Augments a batch of standardised images and their masks ([B, 1, H, W] on `device`)
/// with the draws of `seed`.
pub fn augment(
    images: &Tensor,
    masks: &Tensor,
    cfg: &AugmentConfig,
    frame: FrameSize,
    seed: u64,
) -> Result<(Tensor, Tensor), TchError> {
    let size = images.size();
    let b = size[0] as usize;
    let device: Device = images.device();
    let (theta, gain, bias) = draws(cfg, b, frame, seed);
    let on = |v: &[f32], shape: &[i64]| Tensor::f_from_slice(v)?.f_view(shape)?.f_to_device(device);
    let theta = on(&theta, &[b as i64, 2, 3])?;
    let grid = Tensor::f_affine_grid_generator(&theta, size.as_slice(), false)?;
    // Bilinear (0); images repeat their border (1), masks are empty beyond (0).
    let x = images.f_grid_sampler(&grid, 0, 1, false)?;
    let y = masks
        .f_grid_sampler(&grid, 0, 0, false)?
        .f_clamp(0.0, 1.0)?;
    let x = x
        .f_mul(&on(&gain, &[b as i64, 1, 1, 1])?)?
        .f_add(&on(&bias, &[b as i64, 1, 1, 1])?)?;
    Ok((x.f_to_kind(Kind::Float)?, y))
}

/// The seed of batch `batch` of `epoch` in a run seeded `seed`.
pub(crate) fn batch_seed(seed: u64, epoch: usize, batch: usize) -> u64 {
    let mix = |a: u64, b: u64| (a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15)).rotate_left(23);
    mix(mix(seed ^ 0xA06_0E17, epoch as u64 + 1), batch as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> (Tensor, Tensor) {
        tch::manual_seed(0);
        let x = Tensor::randn([4, 1, 96, 96], (Kind::Float, Device::Cpu));
        // The mask is drawn from the image itself: where it is bright.
        let y = x.gt(0.5).to_kind(Kind::Float);
        (x, y)
    }

    #[test]
    fn masks_move_with_their_images_and_stay_in_range() {
        let (x, y) = batch();
        let geometry = AugmentConfig {
            brightness: 0.0,
            contrast: 0.0,
            rotate: 10.0,
            ..Default::default()
        };
        let (ax, ay) = augment(&x, &y, &geometry, crate::frame::KAGGLE, 42).unwrap();
        assert!(ay.min().double_value(&[]) >= 0.0 && ay.max().double_value(&[]) <= 1.0);
        // A smooth image and the mask of its bright part: after the same draws, the
        // augmented mask is the bright part of the augmented image (up to the edges).
        let r = Tensor::arange(96, (Kind::Float, Device::Cpu));
        let smooth = ((&r / 7.0).sin().view([1, 1, 96, 1]) + (&r / 9.0).cos().view([1, 1, 1, 96]))
            .repeat([4, 1, 1, 1]);
        let bright = smooth.gt(0.3).to_kind(Kind::Float);
        let (si, sm) = augment(&smooth, &bright, &geometry, crate::frame::KAGGLE, 42).unwrap();
        // Beyond the source frame the image repeats its border but the mask is empty:
        // compare where the source reaches (an all-ones mask maps to that region).
        let ones = Tensor::ones_like(&bright);
        let (_, inside) = augment(&smooth, &ones, &geometry, crate::frame::KAGGLE, 42).unwrap();
        let inside = inside.gt(0.99);
        let agree = si.gt(0.3).eq_tensor(&sm.gt(0.5)).logical_and(&inside);
        let share = agree
            .to_kind(Kind::Float)
            .sum(Kind::Float)
            .double_value(&[])
            / inside
                .to_kind(Kind::Float)
                .sum(Kind::Float)
                .double_value(&[]);
        assert!(share > 0.98, "only {share} of the pixels agree");
        // And something moved.
        assert!((&ax - &x).abs().max().double_value(&[]) > 0.1);
        assert!((&ay - &y).abs().sum(Kind::Float).double_value(&[]) > 1.0);
    }

    #[test]
    fn augmentation_is_fixed_by_its_seed() {
        let (x, y) = batch();
        let c = AugmentConfig::default();
        let (a, am) = augment(&x, &y, &c, crate::frame::KAGGLE, 7).unwrap();
        let (b, bm) = augment(&x, &y, &c, crate::frame::KAGGLE, 7).unwrap();
        let (d, _) = augment(&x, &y, &c, crate::frame::KAGGLE, 8).unwrap();
        assert!(a.equal(&b) && am.equal(&bm));
        assert!(!a.equal(&d));
        assert_ne!(batch_seed(1, 0, 0), batch_seed(1, 0, 1));
        assert_ne!(batch_seed(1, 0, 0), batch_seed(1, 1, 0));
    }

    #[test]
    fn no_ranges_change_nothing() {
        let (x, y) = batch();
        let none = AugmentConfig {
            flip: false,
            rotate: 0.0,
            shift: 0.0,
            zoom: 0.0,
            brightness: 0.0,
            contrast: 0.0,
        };
        let (a, am) = augment(&x, &y, &none, crate::frame::KAGGLE, 3).unwrap();
        let d = (&a - &x).abs().max().double_value(&[]);
        assert!(d < 1e-4, "{d}"); // grid coordinates round in float32
        assert!((&am - &y).abs().max().double_value(&[]) < 1e-4);
    }
}
