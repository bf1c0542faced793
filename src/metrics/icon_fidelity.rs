//! Do the icons keep their look? A blob count cannot tell a two-colour icon from a smear of
//! the same size. For each blob found in a frame, the patch around its centre is compared
//! with the target icon composited on white, turned in 10° steps (and shifted a pixel or
//! two, since an ink centre is only near the icon's), by normalised correlation over the
//! icon's footprint widened by a white rim (so a neighbour close by does not count, and a
//! smear past the icon's edge does); the best match per blob, averaged over the blobs, is
//! the frame's fidelity (1 = the icon itself).

use super::blobs::{self, Blob};
use crate::data::tiler::{Placement, Tiling, stamp};

/// Rotations tried: every 10°.
const TURNS: usize = 36;
/// Pixels of shift tried either way around the blob's centre.
const SHIFT: i64 = 2;
/// Width of the white rim around the icon's footprint that the correlation also sees.
const RIM: usize = 2;

/// One rotation of the target: where in the `[3, side, side]` patch it is compared (the
/// footprint and its rim, every channel) and its values there, zero-mean and unit-norm.
#[derive(Debug, Clone)]
struct Template {
    at: Vec<usize>,
    values: Vec<f32>,
}

/// The target at every rotation, each centred on its own ink centre the way blobs are
/// found.
#[derive(Debug, Clone)]
pub struct IconTemplates {
    side: usize,
    templates: Vec<Template>,
}

impl IconTemplates {
    /// From the tiler's premultiplied icon; `threshold` is the blob finder's ink threshold.
    pub fn new(tiling: &Tiling, threshold: f32) -> Self {
        let s = tiling.size;
        let side = (s as f32 * std::f32::consts::SQRT_2).ceil() as usize + 2;
        let mid = side as f32 / 2.0;
        let templates = (0..TURNS)
            .map(|k| {
                let angle = k as f32 * std::f32::consts::TAU / TURNS as f32;
                let at = |cx, cy| render(&tiling.icon, s, Placement { cx, cy, angle }, side);
                let first = at(mid, mid);
                let (ix, iy) = ink_centre(&first, side, threshold).unwrap_or((mid, mid));
                let (cx, cy) = (2.0 * mid - ix, 2.0 * mid - iy);
                let rgb = at(cx, cy);
                let cover = footprint(&tiling.icon, s, Placement { cx, cy, angle }, side);
                let plane = side * side;
                let at: Vec<usize> = (0..3)
                    .flat_map(|c| cover.iter().map(move |&i| c * plane + i))
                    .collect();
                let mut values: Vec<f32> = at.iter().map(|&i| rgb[i]).collect();
                normalise(&mut values);
                Template { at, values }
            })
            .collect();
        Self { side, templates }
    }

    /// The best correlation of the patch of `rgb` (`[3, h, w]`, white = 1) centred at
    /// (x, y), over rotations and small shifts.
    pub fn match_at(&self, rgb: &[f32], h: usize, w: usize, x: f32, y: f32) -> f64 {
        let mut best = f32::NEG_INFINITY;
        for dy in -SHIFT..=SHIFT {
            for dx in -SHIFT..=SHIFT {
                let p = patch(rgb, h, w, self.side, x + dx as f32, y + dy as f32);
                for t in &self.templates {
                    let mut q: Vec<f32> = t.at.iter().map(|&i| p[i]).collect();
                    if normalise(&mut q) {
                        best = best.max(t.values.iter().zip(&q).map(|(a, b)| a * b).sum());
                    }
                }
            }
        }
        if best.is_finite() { best as f64 } else { 0.0 }
    }

    /// Mean best match over `found` blobs of the frame; None without blobs.
    pub fn fidelity(&self, rgb: &[f32], h: usize, w: usize, found: &[Blob]) -> Option<f64> {
        if found.is_empty() {
            return None;
        }
        let total: f64 = found
            .iter()
            .map(|b| self.match_at(rgb, h, w, b.x, b.y))
            .sum();
        Some(total / found.len() as f64)
    }
}

/// The icon stamped on a white `side`² patch, RGB planes in [-1, 1].
fn render(icon: &[f32], size: usize, p: Placement, side: usize) -> Vec<f32> {
    let plane = side * side;
    let mut rgb = vec![1.0f32; 3 * plane];
    for (x, y, px) in stamp(icon, size, p, side) {
        for c in 0..3 {
            // Premultiplied over white, then to [-1, 1].
            let v = px[c] + (1.0 - px[3]);
            rgb[c * plane + y * side + x] = 2.0 * v - 1.0;
        }
    }
    rgb
}

/// Pixels of a `side`² patch (row-major) that the stamped icon covers, widened by `RIM`.
fn footprint(icon: &[f32], size: usize, p: Placement, side: usize) -> Vec<usize> {
    let mut covered = vec![false; side * side];
    for (x, y, px) in stamp(icon, size, p, side) {
        if px[3] > 0.05 {
            covered[y * side + x] = true;
        }
    }
    let r = RIM as i64;
    let mut out = Vec::new();
    for y in 0..side as i64 {
        for x in 0..side as i64 {
            let near = (-r..=r).any(|dy| {
                (-r..=r).any(|dx| {
                    let (yy, xx) = (y + dy, x + dx);
                    dx * dx + dy * dy <= r * r
                        && (0..side as i64).contains(&yy)
                        && (0..side as i64).contains(&xx)
                        && covered[(yy * side as i64 + xx) as usize]
                })
            });
            if near {
                out.push((y * side as i64 + x) as usize);
            }
        }
    }
    out
}

/// Ink-weighted centre of the pixels above `threshold` (no wrap: the icon fits the patch).
fn ink_centre(rgb: &[f32], side: usize, threshold: f32) -> Option<(f32, f32)> {
    let ink = blobs::ink(rgb, side, side);
    let (mut sx, mut sy, mut sw) = (0.0f32, 0.0f32, 0.0f32);
    for (i, &v) in ink.iter().enumerate() {
        if v > threshold {
            sx += v * ((i % side) as f32 + 0.5);
            sy += v * ((i / side) as f32 + 0.5);
            sw += v;
        }
    }
    (sw > 0.0).then(|| (sx / sw, sy / sw))
}

/// The `side`² patch of `rgb` whose centre is at (x, y), wrapping around the torus.
fn patch(rgb: &[f32], h: usize, w: usize, side: usize, x: f32, y: f32) -> Vec<f32> {
    let plane = h * w;
    let half = side as f32 / 2.0;
    let (x0, y0) = ((x - half).round() as i64, (y - half).round() as i64);
    let mut out = Vec::with_capacity(3 * side * side);
    for c in 0..3 {
        for py in 0..side as i64 {
            let yy = (y0 + py).rem_euclid(h as i64) as usize;
            for px in 0..side as i64 {
                let xx = (x0 + px).rem_euclid(w as i64) as usize;
                out.push(rgb[c * plane + yy * w + xx]);
            }
        }
    }
    out
}

/// Zero mean, unit norm; false for a flat patch (nothing to correlate).
fn normalise(v: &mut [f32]) -> bool {
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    v.iter_mut().for_each(|x| *x -= mean);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm < 1e-6 {
        return false;
    }
    v.iter_mut().for_each(|x| *x /= norm);
    true
}

/// A 3×3 box blur on the torus, `times` over, per channel of `[c, h, w]` (the smear a
/// fidelity must tell from an icon).
#[cfg(test)]
pub(crate) fn box_blur(rgb: &[f32], c: usize, h: usize, w: usize, times: usize) -> Vec<f32> {
    let mut a = rgb.to_vec();
    for _ in 0..times {
        let b = a.clone();
        for ch in 0..c {
            let plane = &b[ch * h * w..(ch + 1) * h * w];
            for y in 0..h {
                for x in 0..w {
                    let mut s = 0.0;
                    for dy in [h - 1, 0, 1] {
                        for dx in [w - 1, 0, 1] {
                            s += plane[((y + dy) % h) * w + (x + dx) % w];
                        }
                    }
                    a[ch * h * w + y * w + x] = s / 9.0;
                }
            }
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::icon::Icon;
    use crate::metrics::blob_motion::Finder;

    fn tiling(name: &str) -> Tiling {
        Tiling::new(&Icon::builtin(name, 20).unwrap(), 20, 64, 4)
    }

    fn frame_fidelity(t: &Tiling, rgb: &[f32]) -> f64 {
        let finder = Finder::for_icon(t.size, 0.3);
        let found = finder.blobs(rgb, t.canvas, t.canvas);
        assert!(!found.is_empty());
        IconTemplates::new(t, 0.3)
            .fidelity(rgb, t.canvas, t.canvas, &found)
            .unwrap()
    }

    /// A blob is an icon, not a part of one: one stamped icon of any built-in target is one
    /// blob (the taiji's small dots are below a tenth of its ink), whatever its angle.
    #[test]
    fn the_finder_counts_icons_not_their_parts() {
        for name in ["taiji", "dots", "firefly", "dot"] {
            for size in [20, 40] {
                let t = Tiling::new(&Icon::builtin(name, size).unwrap(), size, 2 * size, 1);
                let finder = Finder::for_tiling(&t, 0.3);
                assert!(finder.min_area > Finder::for_icon(size, 0.3).min_area / 2);
                for seed in 0..12 {
                    let (rgb, _) = t.tile(seed).unwrap();
                    let found = finder.blobs(&rgb, t.canvas, t.canvas);
                    assert_eq!(found.len(), 1, "{name} {size} px, seed {seed}: {found:?}");
                }
            }
        }
    }

    #[test]
    fn a_clean_tiling_matches_and_a_blurred_one_less() {
        for name in ["firefly", "dot"] {
            let t = tiling(name);
            let (rgb, _) = t.tile(7).unwrap();
            let clean = frame_fidelity(&t, &rgb);
            assert!(clean > 0.9, "{name}: clean tiling {clean}");
            let blur = frame_fidelity(&t, &box_blur(&rgb, 3, t.canvas, t.canvas, 6));
            assert!(
                blur < clean - 0.03,
                "{name}: blurred {blur} vs clean {clean}"
            );
        }
    }

    /// Turning the icon does not lower the match: every stamp of a clean tiling, whatever
    /// its angle, matches as well as an upright one.
    #[test]
    fn the_match_does_not_depend_on_the_icons_rotation() {
        let t = tiling("firefly");
        let templates = IconTemplates::new(&t, 0.3);
        let finder = Finder::for_icon(t.size, 0.3);
        let mut scores = Vec::new();
        for deg in [0.0f32, 37.0, 90.0, 143.0, 250.0] {
            let p = Placement {
                cx: 32.3,
                cy: 30.8,
                angle: deg.to_radians(),
            };
            let rgb = render(&t.icon, t.size, p, t.canvas);
            let found = finder.blobs(&rgb, t.canvas, t.canvas);
            assert_eq!(found.len(), 1, "one icon, one blob at {deg}°");
            scores.push(
                templates
                    .fidelity(&rgb, t.canvas, t.canvas, &found)
                    .unwrap(),
            );
        }
        let (lo, hi) = scores
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &s| (a.min(s), b.max(s)));
        assert!(lo > 0.9 && hi - lo < 0.06, "{scores:?}");
    }

    #[test]
    fn another_shape_matches_worse() {
        let dot = tiling("dot");
        let taiji = tiling("taiji");
        let (rgb, _) = taiji.tile(3).unwrap();
        let own = frame_fidelity(&taiji, &rgb);
        let other = frame_fidelity(&dot, &rgb);
        assert!(
            other < own - 0.1,
            "taiji against the dot {other} vs itself {own}"
        );
    }
}
