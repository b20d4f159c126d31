//! One synthetic frame: the anatomy of a subject and the rendering of its frames
//! (tissue bands, vessels, the nerve, speckle). See the parent module for the picture.

use std::f32::consts::PI;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::data::tiff::{HEIGHT, PIXELS, WIDTH};

/// Share of frames that show the nerve, over subjects (each subject has its own rate).
const MEAN_PRESENCE: f32 = 0.4;

/// Draws the anatomy of one subject and the frames of its scans.
#[derive(Clone, Debug)]
pub struct Subject {
    /// Band boundaries: (mean row, amplitude, wavelength, phase) and the level below each.
    bands: Vec<(f32, f32, f32, f32, f32)>,
    top_level: f32,
    gain: f32,
    presence: f32,
    nerve: Ellipse,
    /// Fascicle centres in the nerve's unit disk, and their radius.
    fascicles: Vec<(f32, f32, f32)>,
    /// Vessels and other dark structures: shape, darkness, rim strength.
    blobs: Vec<(Ellipse, f32, f32)>,
}

#[derive(Clone, Copy, Debug)]
struct Ellipse {
    cx: f32,
    cy: f32,
    a: f32,
    b: f32,
    angle: f32,
}

impl Ellipse {
    fn moved(self, dx: f32, dy: f32) -> Ellipse {
        Ellipse {
            cx: self.cx + dx,
            cy: self.cy + dy,
            ..self
        }
    }

    /// The frame rectangle that holds the ellipse grown by `grow`, as row and column ranges.
    fn bounds(&self, grow: f32) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let r = self.a.max(self.b) * grow;
        let clip = |lo: f32, hi: f32, n: usize| {
            (lo.floor().max(0.0) as usize).min(n)..(hi.ceil().max(0.0) as usize).min(n)
        };
        (
            clip(self.cy - r, self.cy + r + 1.0, HEIGHT),
            clip(self.cx - r, self.cx + r + 1.0, WIDTH),
        )
    }

    /// Coordinates of pixel (x, y) in the ellipse's frame, scaled so the rim is at radius 1.
    fn local(&self, x: f32, y: f32) -> (f32, f32) {
        let (s, c) = self.angle.sin_cos();
        let (dx, dy) = (x - self.cx, y - self.cy);
        ((dx * c + dy * s) / self.a, (-dx * s + dy * c) / self.b)
    }
}

/// SplitMix64: independent seeds from (seed, stream) pairs.
pub fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn uniform(rng: &mut Pcg64Mcg, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut Pcg64Mcg) -> f32 {
    let u1 = rng.random::<f32>().max(1e-7);
    let u2 = rng.random::<f32>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
}

impl Subject {
    /// The anatomy of subject `index` in stream `kind` (train and test differ).
    pub fn new(seed: u64, kind: u64, index: u64) -> Subject {
        let mut rng = Pcg64Mcg::seed_from_u64(mix(mix(seed, kind), index));
        let n_bands = rng.random_range(3..=5);
        let mut y = uniform(&mut rng, 25.0, 45.0);
        let mut bands = Vec::with_capacity(n_bands);
        for _ in 0..n_bands {
            let level = uniform(&mut rng, 70.0, 150.0);
            bands.push((
                y,
                uniform(&mut rng, 4.0, 18.0),
                uniform(&mut rng, 250.0, 900.0),
                uniform(&mut rng, 0.0, 2.0 * PI),
                level,
            ));
            y += uniform(&mut rng, 50.0, 110.0);
        }
        let nerve = Ellipse {
            cx: uniform(&mut rng, 170.0, 410.0),
            cy: uniform(&mut rng, 150.0, 290.0),
            a: uniform(&mut rng, 38.0, 62.0),
            b: uniform(&mut rng, 22.0, 36.0),
            angle: uniform(&mut rng, -0.5, 0.5),
        };
        let mut fascicles = Vec::new();
        let n_fasc = rng.random_range(7..=13);
        while fascicles.len() < n_fasc {
            let (u, v) = (uniform(&mut rng, -0.8, 0.8), uniform(&mut rng, -0.8, 0.8));
            if u * u + v * v < 0.64 {
                fascicles.push((u, v, uniform(&mut rng, 0.13, 0.24)));
            }
        }
        let mut blobs = Vec::new();
        let n_blobs = rng.random_range(2..=4);
        while blobs.len() < n_blobs {
            let r = uniform(&mut rng, 14.0, 38.0);
            let e = Ellipse {
                cx: uniform(&mut rng, 40.0, WIDTH as f32 - 40.0),
                cy: uniform(&mut rng, 90.0, HEIGHT as f32 - 40.0),
                a: r * uniform(&mut rng, 1.0, 1.6),
                b: r,
                angle: uniform(&mut rng, -0.6, 0.6),
            };
            let gap = ((e.cx - nerve.cx).powi(2) + (e.cy - nerve.cy).powi(2)).sqrt();
            if gap > nerve.a + e.a + 10.0 {
                let rim = if rng.random::<f32>() < 0.5 {
                    uniform(&mut rng, 0.15, 0.35)
                } else {
                    0.0
                };
                blobs.push((e, uniform(&mut rng, 0.25, 0.5), rim));
            }
        }
        Subject {
            bands,
            top_level: uniform(&mut rng, 110.0, 170.0),
            gain: uniform(&mut rng, 0.85, 1.15),
            presence: uniform(&mut rng, MEAN_PRESENCE - 0.15, MEAN_PRESENCE + 0.15),
            nerve,
            fascicles,
            blobs,
        }
    }

    /// Renders frame `index` into `img` and `mask` (row-major, 420 x 580; mask 0/255).
    /// Returns whether the nerve is in the frame.
    pub fn frame(&self, frame_seed: u64, img: &mut [u8], mask: &mut [u8]) -> bool {
        let mut rng = Pcg64Mcg::seed_from_u64(frame_seed);
        let mut v = vec![0f32; PIXELS];
        let (dx, dy) = (6.0 * normal(&mut rng), 6.0 * normal(&mut rng));
        self.tissue(&mut v, dx, dy);
        for &(e, dark, rim) in &self.blobs {
            paint_blob(&mut v, e.moved(dx, dy), dark, rim);
        }
        for _ in 0..rng.random_range(4..10) {
            let r = uniform(&mut rng, 3.0, 8.0);
            let e = Ellipse {
                cx: uniform(&mut rng, 0.0, WIDTH as f32),
                cy: uniform(&mut rng, 60.0, HEIGHT as f32),
                a: r * uniform(&mut rng, 1.0, 2.0),
                b: r,
                angle: uniform(&mut rng, -1.0, 1.0),
            };
            paint_blob(&mut v, e, uniform(&mut rng, 0.4, 0.7), 0.0);
        }
        mask.fill(0);
        let present = rng.random::<f32>() < self.presence;
        if present {
            let s = 1.0 + 0.08 * normal(&mut rng);
            let n = Ellipse {
                cx: self.nerve.cx + dx + 4.0 * normal(&mut rng),
                cy: self.nerve.cy + dy + 4.0 * normal(&mut rng),
                a: self.nerve.a * s,
                b: self.nerve.b * s * (1.0 + 0.05 * normal(&mut rng)),
                angle: self.nerve.angle + 0.08 * normal(&mut rng),
            };
            self.paint_nerve(&mut v, mask, n);
        }
        speckle(&mut v, &mut rng);
        for (o, x) in img.iter_mut().zip(&v) {
            *o = (x * self.gain).clamp(0.0, 255.0) as u8;
        }
        present
    }

    /// Banded tissue with soft, wavy boundaries, a bright skin line and depth attenuation.
    fn tissue(&self, v: &mut [f32], dx: f32, dy: f32) {
        // Each boundary's row per column, for this frame's probe offset.
        let rows: Vec<Vec<f32>> = self
            .bands
            .iter()
            .map(|&(y0, amp, wave, phase, _)| {
                (0..WIDTH)
                    .map(|x| y0 + dy + amp * (2.0 * PI * (x as f32 - dx) / wave + phase).sin())
                    .collect()
            })
            .collect();
        let mut steps = Vec::with_capacity(self.bands.len());
        let mut prev = self.top_level;
        for b in &self.bands {
            steps.push(b.4 - prev);
            prev = b.4;
        }
        const INV_WIDTH: f32 = 1.0 / 8.0;
        for y in 0..HEIGHT {
            let yf = y as f32;
            let atten = (-yf / 900.0).exp();
            let skin = 1.0 + 0.9 * (-((yf - 12.0 - dy) / 6.0).powi(2)).exp();
            let row = &mut v[y * WIDTH..(y + 1) * WIDTH];
            row.fill(self.top_level);
            for (boundary, step) in rows.iter().zip(&steps) {
                for (o, b) in row.iter_mut().zip(boundary) {
                    *o += step * ((yf - b) * INV_WIDTH + 0.5).clamp(0.0, 1.0);
                }
            }
            for o in row.iter_mut() {
                *o *= atten * skin;
            }
        }
    }

    /// The nerve: a bright matrix around dark fascicles, a bright rim, and its mask.
    fn paint_nerve(&self, v: &mut [f32], mask: &mut [u8], e: Ellipse) {
        let (ys, xs) = e.bounds(1.25);
        for y in ys {
            for x in xs.clone() {
                let (u, w) = e.local(x as f32, y as f32);
                let r = (u * u + w * w).sqrt();
                if r > 1.2 {
                    continue;
                }
                let mut f = 1.0 + 0.5 * (-((r - 0.97) / 0.07).powi(2)).exp();
                if r < 0.92 {
                    let dark = self
                        .fascicles
                        .iter()
                        .any(|&(fu, fw, fr)| (u - fu).powi(2) + (w - fw).powi(2) < fr * fr);
                    f *= if dark { 0.55 } else { 1.15 };
                }
                v[y * WIDTH + x] *= f;
                if r <= 1.0 {
                    mask[y * WIDTH + x] = 255;
                }
            }
        }
    }
}

/// A dark structure with a soft edge, an optional faint rim, and the brighter band below
/// it that fluid-filled vessels cast (posterior enhancement).
fn paint_blob(v: &mut [f32], e: Ellipse, dark: f32, rim: f32) {
    let (ys, xs) = e.bounds(1.3);
    let ys = ys.start..(ys.end + (2.0 * e.b) as usize).min(HEIGHT);
    for y in ys {
        for x in xs.clone() {
            let (u, w) = e.local(x as f32, y as f32);
            let r = (u * u + w * w).sqrt();
            let mut f = if r < 1.0 {
                dark + (1.0 - dark) * (r * r * r * r)
            } else {
                1.0 + rim * (-((r - 1.0) / 0.08).powi(2)).exp()
            };
            if r >= 1.0 && u.abs() < 0.8 && y as f32 > e.cy {
                f *= 1.0 + 0.15 * (-(y as f32 - e.cy - e.b) / (1.5 * e.b)).exp().min(1.0);
            }
            v[y * WIDTH + x] *= f;
        }
    }
}

/// Multiplicative speckle: a coarse Rayleigh field (cells of 8 columns x 4 rows, bilinear
/// between them, since ultrasound speckle is wider than tall) times fine per-pixel grain.
fn speckle(v: &mut [f32], rng: &mut Pcg64Mcg) {
    const CX: usize = 8;
    const CY: usize = 4;
    let (gw, gh) = (WIDTH / CX + 2, HEIGHT / CY + 2);
    // Rayleigh amplitude, scaled to mean 1.
    let grid: Vec<f32> = (0..gw * gh)
        .map(|_| (-2.0 * rng.random::<f32>().max(1e-6).ln()).sqrt() * 0.797_884_6)
        .collect();
    let cols: Vec<(usize, f32)> = (0..WIDTH)
        .map(|x| (x / CX, (x % CX) as f32 / CX as f32))
        .collect();
    let mut line = vec![0f32; gw];
    let mut grain = [0u8; WIDTH];
    for y in 0..HEIGHT {
        let (gy, ty) = (y / CY, (y % CY) as f32 / CY as f32);
        for (i, l) in line.iter_mut().enumerate() {
            *l = grid[gy * gw + i] * (1.0 - ty) + grid[(gy + 1) * gw + i] * ty;
        }
        rng.fill(&mut grain[..]);
        let row = &mut v[y * WIDTH..(y + 1) * WIDTH];
        for ((o, &(gx, tx)), &g) in row.iter_mut().zip(&cols).zip(&grain) {
            let coarse = line[gx] * (1.0 - tx) + line[gx + 1] * tx;
            *o *= (0.55 + 0.45 * coarse) * (0.7 + g as f32 * (0.6 / 255.0));
        }
    }
}

#[cfg(test)]
mod tests {
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
}
