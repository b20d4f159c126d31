//! The scene's frames: deterministic, masks matching presence, the nerve's share and
//! texture, and label-noise repeats.

use super::*;

fn frames(n: u64) -> Vec<(Vec<u8>, Vec<u8>, bool)> {
    let s = Subject::new(7, 0, 1);
    (0..n)
        .map(|i| {
            let (mut img, mut mask) = (vec![0u8; PIXELS], vec![0u8; PIXELS]);
            let p = s.frame(mix(99, i), &mut img, &mut mask);
            (img, mask, p)
        })
        .collect()
}

#[test]
fn frames_are_deterministic_and_masks_match_presence() {
    let a = frames(6);
    let b = frames(6);
    assert_eq!(a, b);
    for (img, mask, present) in &a {
        assert!(mask.iter().all(|&m| m == 0 || m == 255));
        let area = mask.iter().filter(|&&m| m == 255).count();
        assert_eq!(area > 0, *present);
        if *present {
            assert!((2_000..15_000).contains(&area), "nerve area {area}");
        }
        // Not blank: the frame spans a good part of the 8-bit range.
        let (lo, hi) = (img.iter().min().unwrap(), img.iter().max().unwrap());
        assert!(*hi as i32 - *lo as i32 > 120);
    }
}

#[test]
fn nerve_is_present_in_about_forty_percent() {
    let mut present = 0;
    let mut total = 0;
    for subject in 1..=30 {
        let s = Subject::new(3, 0, subject);
        let (mut img, mut mask) = (vec![0u8; PIXELS], vec![0u8; PIXELS]);
        for n in 0..10 {
            present += s.frame(mix(subject, n), &mut img, &mut mask) as u32;
            total += 1;
        }
    }
    let share = present as f32 / total as f32;
    assert!((0.3..0.5).contains(&share), "share {share}");
}

/// The best single global threshold (either way round) must segment the nerve poorly:
/// the task needs texture and shape, as on the real data.
#[test]
fn nerve_is_not_separable_by_intensity_threshold() {
    let frames: Vec<_> = (1..=8)
        .flat_map(|subject| {
            let s = Subject::new(11, 0, subject);
            (0..4).map(move |n| {
                let (mut img, mut mask) = (vec![0u8; PIXELS], vec![0u8; PIXELS]);
                s.frame(mix(subject, n), &mut img, &mut mask);
                (img, mask)
            })
        })
        .collect();
    let mut inside = [0u64; 256];
    let mut outside = [0u64; 256];
    for (img, mask) in &frames {
        for (&p, &m) in img.iter().zip(mask) {
            if m == 255 {
                inside[p as usize] += 1
            } else {
                outside[p as usize] += 1
            }
        }
    }
    let total_in: u64 = inside.iter().sum();
    assert!(total_in > 0);
    let mut best = 0f64;
    for t in 0..256 {
        let tp_below: u64 = inside[..t].iter().sum();
        let fp_below: u64 = outside[..t].iter().sum();
        let tp_above = total_in - tp_below;
        let fp_above: u64 = outside[t..].iter().sum();
        for (tp, fp) in [(tp_below, fp_below), (tp_above, fp_above)] {
            let dice = 2.0 * tp as f64 / (total_in + tp + fp) as f64;
            best = best.max(dice);
        }
    }
    assert!(best < 0.2, "a threshold reaches pixel Dice {best:.3}");
}

/// A repeat is a near copy of its frame whose mask says the opposite: the nerve's mask
/// removed, or a faint nerve added where the frame had none.
#[test]
fn a_repeat_is_close_to_its_frame_with_the_opposite_mask() {
    let s = Subject::new(7, 0, 1);
    let (mut seen_removed, mut seen_added) = (false, false);
    for i in 0..12 {
        let (mut img, mut mask) = (vec![0u8; PIXELS], vec![0u8; PIXELS]);
        let (mut rimg, mut rmask) = (vec![0u8; PIXELS], vec![0u8; PIXELS]);
        let present = s.frame(mix(99, i), &mut img, &mut mask);
        let r = Repeat {
            seed: i,
            dx: 0.8,
            dy: -0.6,
        };
        let label = s.render(mix(99, i), &mut rimg, &mut rmask, Some(&r));
        assert_eq!(label, !present);
        assert_eq!(rmask.contains(&255), label);
        if present {
            seen_removed = true;
        } else {
            seen_added = true;
            let area = rmask.iter().filter(|&&m| m == 255).count();
            assert!((2_000..15_000).contains(&area), "added nerve area {area}");
        }
        let mad = img
            .iter()
            .zip(&rimg)
            .map(|(&a, &b)| (a as f64 - b as f64).abs())
            .sum::<f64>()
            / PIXELS as f64;
        assert!(mad < 8.0, "frame {i}: mean |diff| {mad} from its source");
        // Another frame of the subject is much further away.
        let (mut other, mut om) = (vec![0u8; PIXELS], vec![0u8; PIXELS]);
        s.frame(mix(99, i + 100), &mut other, &mut om);
        let far = img
            .iter()
            .zip(&other)
            .map(|(&a, &b)| (a as f64 - b as f64).abs())
            .sum::<f64>()
            / PIXELS as f64;
        assert!(far > mad, "frame {i}: {far} vs {mad}");
    }
    assert!(seen_removed && seen_added);
}
