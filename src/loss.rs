//! The losses. The tutorial's: the Dice coefficient over the whole batch and its
//! negative.
//!
//! dice_coef(t, p) = (2 * sum(t * p) + smooth) / (sum(t) + sum(p) + smooth), the sums over
//! every pixel of every image in the batch (one number per batch, not a mean of per-image
//! scores), smooth = 1. This is not the competition metric, which is a mean per image;
//! `--loss image-dice` trains on that mean, and `--loss bce-dice` adds binary
//! cross-entropy (the upstream repository's issue #64 asks about exactly this).

use tch::{Kind, TchError, Tensor};

/// The tutorial's smoothing constant.
pub const SMOOTH: f64 = 1.0;

/// The loss a run trains on (`train --loss`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Loss {
    /// -dice_coef over the whole batch: the tutorial's.
    #[default]
    Dice,
    /// -(the mean over the batch's images of each image's soft Dice), smooth 1: the
    /// competition's score, made differentiable. An image with an empty mask scores
    /// 1 / (1 + sum(p)): 1 when the prediction is empty too, as the competition counts
    /// an empty prediction of an empty frame.
    ImageDice,
    /// The mean binary cross-entropy of every pixel (from the logits, as tf-keras
    /// computes it from a sigmoid output) plus 1 - dice_coef over the batch.
    BceDice,
}

impl Loss {
    /// Its name as `--loss` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Dice => "dice",
            Loss::ImageDice => "image-dice",
            Loss::BceDice => "bce-dice",
        }
    }

    /// The loss `--loss` names.
    pub fn named(name: &str) -> Option<Loss> {
        [Loss::Dice, Loss::ImageDice, Loss::BceDice]
            .into_iter()
            .find(|l| l.name() == name)
    }

    /// The loss of a batch from the targets, the network's probabilities and their
    /// logits (all [N, 1, h, w]): a scalar tensor.
    pub fn of(self, truth: &Tensor, pred: &Tensor, logits: &Tensor) -> Result<Tensor, TchError> {
        match self {
            Loss::Dice => dice_loss(truth, pred),
            Loss::ImageDice => image_dice_coef(truth, pred)?.f_neg(),
            Loss::BceDice => {
                let bce = logits.f_binary_cross_entropy_with_logits(
                    truth,
                    None::<&Tensor>,
                    None::<&Tensor>,
                    tch::Reduction::Mean,
                )?;
                bce.f_add_scalar(1.0)?.f_sub(&dice_coef(truth, pred)?)
            }
        }
    }
}

/// The mean over a batch [N, ...] of each image's soft Dice coefficient (smooth 1).
pub(crate) fn image_dice_coef(truth: &Tensor, pred: &Tensor) -> Result<Tensor, TchError> {
    let t = truth.f_flatten(1, -1)?;
    let p = pred.f_flatten(1, -1)?;
    let dims = [1i64].as_slice();
    let intersection = t.f_mul(&p)?.f_sum_dim_intlist(dims, false, Kind::Float)?;
    let sums = t
        .f_sum_dim_intlist(dims, false, Kind::Float)?
        .f_add(&p.f_sum_dim_intlist(dims, false, Kind::Float)?)?;
    intersection
        .f_mul_scalar(2.0)?
        .f_add_scalar(SMOOTH)?
        .f_div(&sums.f_add_scalar(SMOOTH)?)?
        .f_mean(Kind::Float)
}

/// Dice coefficient of a batch: a scalar tensor.
pub fn dice_coef(truth: &Tensor, pred: &Tensor) -> Result<Tensor, TchError> {
    let t = truth.f_flatten(0, -1)?;
    let p = pred.f_flatten(0, -1)?;
    let intersection = t.f_mul(&p)?.f_sum(Kind::Float)?;
    let sums = t.f_sum(Kind::Float)?.f_add(&p.f_sum(Kind::Float)?)?;
    intersection
        .f_mul_scalar(2.0)?
        .f_add_scalar(SMOOTH)?
        .f_div(&sums.f_add_scalar(SMOOTH)?)
}

/// The training loss, -dice_coef.
pub fn dice_loss(truth: &Tensor, pred: &Tensor) -> Result<Tensor, TchError> {
    dice_coef(truth, pred)?.f_neg()
}

/// Whether each target of a batch [N, 1, H, W] holds any nerve: [N, 1] of 0/1, the
/// presence head's target.
pub fn presence_target(truth: &Tensor) -> Result<Tensor, TchError> {
    truth
        .f_sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float)?
        .f_gt(0.0)?
        .f_to_kind(Kind::Float)?
        .f_view([-1, 1])
}

/// Keras's binary_crossentropy of the presence head, from its logits as tf-keras takes
/// it from a sigmoid Dense layer: the batch mean of max(x, 0) - x z + log(1 + e^-|x|).
pub fn presence_bce(logits: &Tensor, target: &Tensor) -> Result<Tensor, TchError> {
    logits.f_binary_cross_entropy_with_logits(
        target,
        None::<&Tensor>,
        None::<&Tensor>,
        tch::Reduction::Mean,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    #[test]
    fn hand_worked_cases() {
        // sum(t*p) = 0.5, sum(t) = 2, sum(p) = 1.5: (1 + 1) / (3.5 + 1) = 0.444..
        let d = dice_coef(&t(&[1.0, 1.0, 0.0, 0.0]), &t(&[0.5, 0.0, 1.0, 0.0]))
            .unwrap()
            .double_value(&[]);
        assert!((d - 2.0 / 4.5).abs() < 1e-7, "{d}");
        // Both empty: (0 + 1) / (0 + 0 + 1) = 1.
        assert_eq!(
            dice_coef(&t(&[0.0; 4]), &t(&[0.0; 4]))
                .unwrap()
                .double_value(&[]),
            1.0
        );
        // Perfect: (2*3 + 1) / (3 + 3 + 1) = 1.
        let ones = t(&[1.0, 1.0, 1.0]);
        assert!((dice_coef(&ones, &ones).unwrap().double_value(&[]) - 1.0).abs() < 1e-7);
        assert!((dice_loss(&ones, &ones).unwrap().double_value(&[]) + 1.0).abs() < 1e-7);
    }

    #[test]
    fn image_dice_is_the_mean_of_each_images() {
        // Image 1: t = [1, 1], p = [1, 0]: (2 + 1) / (3 + 1) = 0.75. Image 2: empty
        // truth, p = [0.5, 0]: 1 / 1.5. The batch Dice would be (2 + 1) / (3.5 + 1).
        let truth = t(&[1.0, 1.0, 0.0, 0.0]).view([2, 1, 1, 2]);
        let pred = t(&[1.0, 0.0, 0.5, 0.0]).view([2, 1, 1, 2]);
        let d = image_dice_coef(&truth, &pred).unwrap().double_value(&[]);
        assert!((d - (0.75 + 1.0 / 1.5) / 2.0).abs() < 1e-7, "{d}");
        // An empty prediction of an empty frame counts 1.
        let empty = t(&[0.0; 4]).view([2, 1, 1, 2]);
        let one = image_dice_coef(&empty, &empty).unwrap().double_value(&[]);
        assert_eq!(one, 1.0);
        let logits = t(&[0.0; 4]).view([2, 1, 1, 2]);
        let l = Loss::ImageDice.of(&truth, &pred, &logits).unwrap();
        assert!((l.double_value(&[]) + d).abs() < 1e-7);
    }

    #[test]
    fn bce_dice_adds_the_cross_entropy_to_one_minus_dice() {
        // Logits 0: p = 0.5, BCE = ln 2 whatever the target.
        let truth = t(&[1.0, 0.0]).view([1, 1, 1, 2]);
        let logits = t(&[0.0, 0.0]).view([1, 1, 1, 2]);
        let pred = logits.sigmoid();
        let d = dice_coef(&truth, &pred).unwrap().double_value(&[]);
        let l = Loss::BceDice.of(&truth, &pred, &logits).unwrap();
        let want = 2f64.ln() + 1.0 - d;
        assert!((l.double_value(&[]) - want).abs() < 1e-6, "{l:?} vs {want}");
    }

    #[test]
    fn mismatched_shapes_are_an_error() {
        assert!(dice_coef(&t(&[1.0, 0.0]), &t(&[1.0, 0.0, 1.0])).is_err());
    }

    #[test]
    fn one_number_for_the_whole_batch() {
        // Two images: the batch score is not the mean of per-image scores.
        let truth = t(&[1.0, 1.0, 0.0, 0.0]).view([2, 1, 1, 2]);
        let pred = t(&[1.0, 1.0, 1.0, 1.0]).view([2, 1, 1, 2]);
        let batch = dice_coef(&truth, &pred).unwrap().double_value(&[]);
        assert!((batch - 5.0 / 7.0).abs() < 1e-7, "{batch}");
    }
}
