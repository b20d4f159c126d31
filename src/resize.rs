//! scikit-image's `resize(img, shape, preserve_range=True)` with today's defaults (order 1,
//! mode 'reflect', anti-aliasing), as the tutorial's `preprocess` uses it, computed the
//! way scikit-image and SciPy compute it so the uint8 results agree pixel for pixel:
//!
//! 1. the frame becomes float64;
//! 2. when shrinking, a Gaussian blur per axis (`scipy.ndimage.gaussian_filter`, axis 0
//!    then axis 1) with sigma = max(0, (scale - 1) / 2), scale = input / output size,
//!    radius int(4 sigma + 0.5), SciPy mode 'mirror' (d c b | a b c d | c b a);
//! 3. bilinear sampling (`scipy.ndimage.zoom(order=1, grid_mode=True)`): output pixel i
//!    reads input coordinate (i + 0.5) * scale - 0.5, mirrored at the borders;
//! 4. the result is clipped to the input's range, then stored into uint8 (truncation).
//!
//! Only the rows and columns the sampling reads are blurred: the same arithmetic at the
//! same places as SciPy, in a fraction of the work. Sums run in SciPy's order, since a
//! sum of 255s that rounds to 254.99999 truncates to 254.
//! Reference: skimage/transform/_warps.py (`resize`) and scipy/ndimage/src/ni_filters.c.

/// One axis of a resize: the Gaussian taps and, per output pixel, the two input
/// positions and their weights.
#[derive(Clone, Debug)]
pub(crate) struct Axis {
    pub(crate) len: usize,
    /// Normalised Gaussian weights w[0..=radius] (symmetric); empty when no blur.
    pub(crate) taps: Vec<f64>,
    /// Per output pixel: (first input index, second input index, weight of first, of second).
    pub(crate) samples: Vec<(usize, usize, f64, f64)>,
}

/// SciPy's 'mirror' extension of index `i` into `0..n`: d c b | a b c d | c b a.
fn mirror(i: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let mut j = i.rem_euclid(period);
    if j >= n {
        j = period - j;
    }
    j as usize
}

/// NumPy's pairwise sum for short arrays (eight accumulators, then the rest in order),
/// which `scipy.ndimage._gaussian_kernel1d` uses to normalise the kernel.
fn numpy_sum(a: &[f64]) -> f64 {
    if a.len() < 8 {
        return a.iter().fold(0.0, |s, &x| s + x);
    }
    let mut r = [0f64; 8];
    r.copy_from_slice(&a[..8]);
    let full = a.len() - a.len() % 8;
    for chunk in a[8..full].chunks_exact(8) {
        for (acc, &x) in r.iter_mut().zip(chunk) {
            *acc += x;
        }
    }
    let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for &x in &a[full..] {
        res += x;
    }
    res
}

impl Axis {
    fn new(input: usize, output: usize) -> Axis {
        let scale = input as f64 / output as f64;
        let sigma = ((scale - 1.0) / 2.0).max(0.0);
        let taps = if sigma > 0.0 {
            let radius = (4.0 * sigma + 0.5) as i64;
            let phi: Vec<f64> = (-radius..=radius)
                .map(|x| (-0.5 / (sigma * sigma) * (x * x) as f64).exp())
                .collect();
            let total = numpy_sum(&phi);
            phi[radius as usize..].iter().map(|p| p / total).collect()
        } else {
            Vec::new()
        };
        let samples = (0..output)
            .map(|i| {
                let c = (i as f64 + 0.5) * scale - 0.5;
                let f = c.floor();
                // SciPy's order-1 spline weights: w0 = 1 - t, then w1 = 1 - w0 (not t).
                let w0 = 1.0 - (c - f);
                let f = f as isize;
                (mirror(f, input), mirror(f + 1, input), w0, 1.0 - w0)
            })
            .collect();
        Axis {
            len: input,
            taps,
            samples,
        }
    }
}

/// A resize from one frame size to another, set up once and used for every frame.
#[derive(Clone, Debug)]
pub struct Resizer {
    pub(crate) rows: Axis,
    pub(crate) cols: Axis,
    /// The distinct input rows and columns that sampling reads, sorted.
    pub(crate) need_rows: Vec<usize>,
    pub(crate) need_cols: Vec<usize>,
    /// Per needed row / column: the (mirrored) index pairs its blur adds, outermost first.
    pub(crate) row_pairs: Vec<Vec<(usize, usize)>>,
    pub(crate) col_pairs: Vec<Vec<(usize, usize)>>,
    /// Per output row / column: positions of its two source rows / columns among the
    /// needed ones.
    pub(crate) row_at: Vec<(usize, usize)>,
    pub(crate) col_at: Vec<(usize, usize)>,
}

/// The index pairs (i - j, i + j), mirrored, for j from the radius down to 1.
fn pairs(axis: &Axis, i: usize) -> Vec<(usize, usize)> {
    let r = axis.taps.len().saturating_sub(1);
    (1..=r)
        .rev()
        .map(|j| {
            (
                mirror(i as isize - j as isize, axis.len),
                mirror(i as isize + j as isize, axis.len),
            )
        })
        .collect()
}

/// Where each sample's two source indices sit in the sorted `needed` list.
fn positions(axis: &Axis, needed: &[usize]) -> Vec<(usize, usize)> {
    let at = |i: usize| needed.binary_search(&i).unwrap_or(0);
    axis.samples.iter().map(|s| (at(s.0), at(s.1))).collect()
}

fn needed(axis: &Axis) -> Vec<usize> {
    let mut v: Vec<usize> = axis.samples.iter().flat_map(|s| [s.0, s.1]).collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl Resizer {
    /// From `in_h` x `in_w` to `out_h` x `out_w` (rows x columns).
    pub fn new(in_h: usize, in_w: usize, out_h: usize, out_w: usize) -> Resizer {
        let rows = Axis::new(in_h, out_h);
        let cols = Axis::new(in_w, out_w);
        let (need_rows, need_cols) = (needed(&rows), needed(&cols));
        let row_pairs = need_rows.iter().map(|&i| pairs(&rows, i)).collect();
        let col_pairs = need_cols.iter().map(|&i| pairs(&cols, i)).collect();
        let row_at = positions(&rows, &need_rows);
        let col_at = positions(&cols, &need_cols);
        Resizer {
            rows,
            cols,
            need_rows,
            need_cols,
            row_pairs,
            col_pairs,
            row_at,
            col_at,
        }
    }

    pub(crate) fn output_len(&self) -> usize {
        self.rows.samples.len() * self.cols.samples.len()
    }

    /// Resizes `src` (row-major, in_h x in_w) into float64 `out` (out_h x out_w), before
    /// truncation: scikit-image's float result.
    pub fn resize_f64(&self, src: &[u8], out: &mut [f64]) {
        debug_assert_eq!(src.len(), self.rows.len * self.cols.len);
        let (lo, hi) = src
            .iter()
            .fold((u8::MAX, u8::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        if lo == hi {
            // A flat frame (most often an empty mask): every output is clipped to
            // [lo, hi], so it is lo whatever the blur's rounding.
            out.fill(lo as f64);
            return;
        }
        // The frame as f64 once: the vertical pass reads each row about 15 times, and
        // f64 slices vectorise where u8-to-f64 conversions in the loop do not.
        let src: Vec<f64> = src.iter().map(|&v| v as f64).collect();
        self.resize_values(&src, lo as f64, hi as f64, out);
    }

    /// Resizes a float32 map (a probability map from a network of another input size)
    /// as scikit-image resizes floats: the same blur and sampling, clipped to the
    /// map's range.
    pub(crate) fn resize_map(&self, src: &[f32], out: &mut [f32]) {
        debug_assert_eq!(src.len(), self.rows.len * self.cols.len);
        let src: Vec<f64> = src.iter().map(|&v| v as f64).collect();
        let (lo, hi) = src
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let mut f = vec![0f64; self.output_len()];
        if lo == hi {
            f.fill(lo);
        } else {
            self.resize_values(&src, lo, hi, &mut f);
        }
        for (o, v) in out.iter_mut().zip(&f) {
            *o = *v as f32;
        }
    }

    /// The blur and sampling of `src` (row-major, in_h x in_w, as f64) into `out`,
    /// clipped to [lo, hi].
    fn resize_values(&self, src: &[f64], lo: f64, hi: f64, out: &mut [f64]) {
        let w = self.cols.len;
        // Axis 0 (vertical) blur at the needed rows, for every column, a whole row at a
        // time. Per pixel, SciPy's order for a symmetric kernel: the centre times w0,
        // then (x[i - j] + x[i + j]) * w[j] added from the outermost j inwards.
        let taps = &self.rows.taps;
        let mut vert = vec![0f64; self.need_rows.len() * w];
        for (k, (&r, pairs)) in self.need_rows.iter().zip(&self.row_pairs).enumerate() {
            let line = &mut vert[k * w..(k + 1) * w];
            let centre = &src[r * w..(r + 1) * w];
            match taps.first() {
                Some(&w0) => line.iter_mut().zip(centre).for_each(|(o, &v)| *o = v * w0),
                None => line.copy_from_slice(centre),
            }
            for (&(lo, hi), &wj) in pairs.iter().zip(taps.iter().skip(1).rev()) {
                let (a, b) = (&src[lo * w..(lo + 1) * w], &src[hi * w..(hi + 1) * w]);
                for ((o, &x), &y) in line.iter_mut().zip(a).zip(b) {
                    *o += (x + y) * wj;
                }
            }
        }
        // Axis 1 (horizontal) blur at the needed columns of those rows.
        let taps = &self.cols.taps;
        let nc = self.need_cols.len();
        let mut both = vec![0f64; self.need_rows.len() * nc];
        for k in 0..self.need_rows.len() {
            let line = &vert[k * w..(k + 1) * w];
            for (m, (&c, pairs)) in self.need_cols.iter().zip(&self.col_pairs).enumerate() {
                let mut acc = match taps.first() {
                    Some(&w0) => line[c] * w0,
                    None => line[c],
                };
                for (&(lo, hi), &wj) in pairs.iter().zip(taps.iter().skip(1).rev()) {
                    acc += (line[lo] + line[hi]) * wj;
                }
                both[k * nc + m] = acc;
            }
        }
        let out_w = self.cols.samples.len();
        for (i, (&(_, _, wr0, wr1), &(k0, k1))) in
            self.rows.samples.iter().zip(&self.row_at).enumerate()
        {
            for (j, (&(_, _, wc0, wc1), &(m0, m1))) in
                self.cols.samples.iter().zip(&self.col_at).enumerate()
            {
                // SciPy's order: corners (r0,c0), (r0,c1), (r1,c0), (r1,c1), each
                // value * row weight * column weight, added to 0.
                let mut t = 0.0;
                t += both[k0 * nc + m0] * wr0 * wc0;
                t += both[k0 * nc + m1] * wr0 * wc1;
                t += both[k1 * nc + m0] * wr1 * wc0;
                t += both[k1 * nc + m1] * wr1 * wc1;
                out[i * out_w + j] = t.clamp(lo, hi);
            }
        }
    }

    /// Resizes a 0/1 mask and thresholds the result: `out[p] = (value > cut) as u8`, the
    /// value being exactly what [`Self::resize_f64`] computes. Enlarging (no blur), only
    /// output rows whose two source rows hold a 1 are computed; the rest are 0. Shrinking
    /// (a frame smaller than the network's input) goes through the blur.
    pub(crate) fn resize_binary(&self, src: &[u8], cut: f64, out: &mut [u8]) {
        if !(self.rows.taps.is_empty() && self.cols.taps.is_empty()) {
            let mut f = vec![0f64; self.output_len()];
            self.resize_f64(src, &mut f);
            for (o, v) in out.iter_mut().zip(&f) {
                *o = (*v > cut) as u8;
            }
            return;
        }
        let w = self.cols.len;
        let out_w = self.cols.samples.len();
        let (lo, hi) = src
            .iter()
            .fold((u8::MAX, u8::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        out.fill(0);
        if hi == 0 {
            return;
        }
        let row_has: Vec<bool> = src.chunks(w).map(|r| r.iter().any(|&v| v != 0)).collect();
        for (i, &(r0, r1, wr0, wr1)) in self.rows.samples.iter().enumerate() {
            if !row_has[r0] && !row_has[r1] {
                continue;
            }
            let (a, b) = (&src[r0 * w..(r0 + 1) * w], &src[r1 * w..(r1 + 1) * w]);
            let dst = &mut out[i * out_w..(i + 1) * out_w];
            for (o, &(c0, c1, wc0, wc1)) in dst.iter_mut().zip(&self.cols.samples) {
                if a[c0] | a[c1] | b[c0] | b[c1] == 0 {
                    // All four neighbours are 0: the value is 0, never above `cut` >= 0.
                    continue;
                }
                let mut t = 0.0;
                t += a[c0] as f64 * wr0 * wc0;
                t += a[c1] as f64 * wr0 * wc1;
                t += b[c0] as f64 * wr1 * wc0;
                t += b[c1] as f64 * wr1 * wc1;
                *o = (t.clamp(lo as f64, hi as f64) > cut) as u8;
            }
        }
    }

    /// Resizes and stores into uint8 as the tutorial does (`imgs_p[i] = resize(..)`):
    /// truncation toward zero.
    pub fn resize_u8(&self, src: &[u8], out: &mut [u8]) {
        let mut f = vec![0f64; self.output_len()];
        self.resize_f64(src, &mut f);
        for (o, v) in out.iter_mut().zip(&f) {
            *o = *v as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_float_map_resizes_as_its_bytes_do() {
        // The same values as u8 and as f32 give the same float result.
        let r = Resizer::new(12, 20, 8, 8);
        let src: Vec<u8> = (0..240).map(|i| (i * 7 % 251) as u8).collect();
        let mut a = vec![0f64; 64];
        r.resize_f64(&src, &mut a);
        let mut b = vec![0f32; 64];
        r.resize_map(&src.iter().map(|&v| v as f32).collect::<Vec<_>>(), &mut b);
        for (x, y) in a.iter().zip(&b) {
            assert!((*x as f32 - y).abs() < 1e-4, "{x} {y}");
        }
        let mut flat = vec![1f32; 64];
        r.resize_map(&[0.25; 240], &mut flat);
        assert!(flat.iter().all(|&v| v == 0.25));
    }

    #[test]
    fn mirror_reflects_without_repeating_the_edge() {
        let idx: Vec<usize> = (-3..8).map(|i| mirror(i, 5)).collect();
        assert_eq!(idx, [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
    }

    #[test]
    fn kernel_matches_scipy_sizes_and_sums_to_one() {
        let a = Axis::new(420, 96);
        assert_eq!(a.taps.len(), 8); // sigma 1.6875, radius int(7.25) = 7
        let b = Axis::new(580, 96);
        assert_eq!(b.taps.len(), 11); // sigma 2.52, radius int(10.58) = 10
        let total = b.taps[0] + 2.0 * b.taps[1..].iter().sum::<f64>();
        assert!((total - 1.0).abs() < 1e-12);
        // Enlarging has no blur.
        assert!(Axis::new(96, 420).taps.is_empty());
    }

    #[test]
    fn constant_frames_stay_constant() {
        let r = Resizer::new(420, 580, 96, 96);
        for v in [0u8, 1, 128, 255] {
            let mut out = vec![0u8; 96 * 96];
            r.resize_u8(&vec![v; 420 * 580], &mut out);
            assert!(out.iter().all(|&o| o == v), "value {v}");
        }
    }

    #[test]
    fn upsampling_agrees_with_the_float_path() {
        let r = Resizer::new(96, 96, 420, 580);
        let mut src = vec![0u8; 96 * 96];
        for y in 10..30 {
            for x in 0..17 {
                src[y * 96 + x] = 1;
            }
        }
        src[95 * 96 + 95] = 1;
        let mut f = vec![0f64; 420 * 580];
        r.resize_f64(&src, &mut f);
        let mut b = vec![0u8; 420 * 580];
        r.resize_binary(&src, 0.5, &mut b);
        let want: Vec<u8> = f.iter().map(|&v| (v > 0.5) as u8).collect();
        assert_eq!(b, want);
        assert!(b.contains(&1));
    }

    #[test]
    fn shrinking_a_mask_blurs_as_the_float_path_does() {
        // A frame smaller than the network's input: its mask shrinks, with the blur.
        let r = Resizer::new(96, 96, 40, 52);
        let src: Vec<u8> = (0..96 * 96)
            .map(|i| ((i / 96) / 6 % 2 == (i % 96) / 5 % 2) as u8)
            .collect();
        let mut f = vec![0f64; 40 * 52];
        r.resize_f64(&src, &mut f);
        for cut in [0.5, 0.0] {
            let mut b = vec![0u8; 40 * 52];
            r.resize_binary(&src, cut, &mut b);
            let want: Vec<u8> = f.iter().map(|&v| (v > cut) as u8).collect();
            assert_eq!(b, want, "cut {cut}");
        }
        // The blur makes values strictly between 0 and 1, which nearest sampling would not.
        assert!(f
            .iter()
            .any(|&v| v > 0.0 && v < 1.0 && (v - 0.5).abs() > 0.01));
    }

    #[test]
    fn sampling_coordinates_follow_grid_mode() {
        let a = Axis::new(420, 96);
        // Output 0 reads (0 + 0.5) * 4.375 - 0.5 = 1.6875.
        let (i0, i1, w0, w1) = a.samples[0];
        assert_eq!((i0, i1), (1, 2));
        assert!((w0 - 0.3125).abs() < 1e-12 && (w1 - 0.6875).abs() < 1e-12);
    }
}
