//! One synthetic frame: the anatomy of a subject and the rendering of its frames
//! (tissue bands, vessels, the nerve, speckle). See the parent module for the picture.

use std::f32::consts::PI;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::data::tiff::{HEIGHT, PIXELS, WIDTH};

/// Share of frames that show the nerve, over subjects (each subject has its own rate).
const MEAN_PRESENCE: f32 = 0.4;

/// The contrast of the barely visible nerve of a label-noise frame that gains a mask.
const FAINT: f32 = 0.2;

/// How a label-noise frame repeats another (see `noise.rs`): its own seed (noise and,
/// where one is added, the nerve's pose) and a motion of a pixel or so.
#[derive(Clone, Copy, Debug)]
pub struct Repeat {
    pub seed: u64,
    pub dx: f32,
    pub dy: f32,
}

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
pub(crate) fn mix(seed: u64, stream: u64) -> u64 {
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
        self.render(frame_seed, img, mask, None)
    }

    /// Renders a frame, or with `repeat` a near copy of it with the wrong mask (label
    /// noise): moved a little, with noise of its own, and the nerve's mask removed, or,
    /// where the frame had no nerve, a barely visible nerve with its mask added. Returns
    /// whether the mask holds a nerve.
    pub(crate) fn render(
        &self,
        frame_seed: u64,
        img: &mut [u8],
        mask: &mut [u8],
        repeat: Option<&Repeat>,
    ) -> bool {
        let mut rng = Pcg64Mcg::seed_from_u64(frame_seed);
        let mut v = vec![0f32; PIXELS];
        let (mut dx, mut dy) = (6.0 * normal(&mut rng), 6.0 * normal(&mut rng));
        if let Some(r) = repeat {
            (dx, dy) = (dx + r.dx, dy + r.dy);
        }
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
        let mut own = repeat.map(|r| Pcg64Mcg::seed_from_u64(r.seed));
        if present {
            let pose = self.nerve_pose(&mut rng, dx, dy);
            self.paint_nerve(&mut v, mask, pose, 1.0);
            if own.is_some() {
                mask.fill(0);
            }
        } else if let Some(own) = own.as_mut() {
            let pose = self.nerve_pose(own, dx, dy);
            self.paint_nerve(&mut v, mask, pose, FAINT);
        }
        speckle(&mut v, &mut rng);
        if let Some(own) = own.as_mut() {
            for x in v.iter_mut() {
                *x += 3.0 * normal(own);
            }
        }
        for (o, x) in img.iter_mut().zip(&v) {
            *o = (x * self.gain).clamp(0.0, 255.0) as u8;
        }
        present != own.is_some()
    }

    /// Where the nerve is in a frame moved by (dx, dy), with its frame-to-frame jitter.
    fn nerve_pose(&self, rng: &mut Pcg64Mcg, dx: f32, dy: f32) -> Ellipse {
        let s = 1.0 + 0.08 * normal(rng);
        Ellipse {
            cx: self.nerve.cx + dx + 4.0 * normal(rng),
            cy: self.nerve.cy + dy + 4.0 * normal(rng),
            a: self.nerve.a * s,
            b: self.nerve.b * s * (1.0 + 0.05 * normal(rng)),
            angle: self.nerve.angle + 0.08 * normal(rng),
        }
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

    /// The nerve: a bright matrix around dark fascicles, a bright rim, and its mask;
    /// `strength` below 1 makes its contrast that much fainter.
    fn paint_nerve(&self, v: &mut [f32], mask: &mut [u8], e: Ellipse, strength: f32) {
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
                if strength != 1.0 {
                    f = 1.0 + strength * (f - 1.0);
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
mod tests;
