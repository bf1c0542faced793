//! The artificial-life dataset (METHOD §6): a target icon stamped N times at random
//! positions and rotations on a white C×C torus, opaque pixels never overlapping, icons that
//! cross a border wrapping to the other side. Images are RGB in [-1, 1] (white = 1).

use super::icon::{Icon, IconError};
use super::image_set::ImageSet;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;

/// Alpha above which a pixel is "opaque" for the no-overlap rule.
pub const OPAQUE: f32 = 0.5;
/// Positions tried per icon before the whole sample starts over.
const TRIES: usize = 200;
/// Fresh starts per sample before giving up.
const RESTARTS: usize = 20;
/// Samples per `Tiler::step` (progress granularity in the app).
const CHUNK: usize = 64;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TileError {
    #[error(
        "cannot place {count} icons of {size} px on a {canvas}² canvas without overlap; \
         use fewer icons (dataset.icons), a smaller icon (dataset.icon_size) or a larger \
         canvas (dataset.size)"
    )]
    DoesNotFit {
        count: usize,
        size: usize,
        canvas: usize,
    },
}

/// Where one icon went: its centre (pixels, may lie anywhere on the torus) and rotation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub cx: f32,
    pub cy: f32,
    pub angle: f32,
}

/// One rotated icon rasterised onto the torus: `(x, y, premultiplied rgba)` per pixel.
pub fn stamp(
    icon: &[f32],
    size: usize,
    p: Placement,
    canvas: usize,
) -> Vec<(usize, usize, [f32; 4])> {
    let half = size as f32 / 2.0;
    // The rotated square fits in a box of half-side half·√2.
    let reach = (half * std::f32::consts::SQRT_2).ceil() as i64 + 1;
    let (sin, cos) = p.angle.sin_cos();
    let sample = |u: f32, v: f32| -> [f32; 4] {
        // Bilinear on pixel centres, transparent outside.
        let (u, v) = (u - 0.5, v - 0.5);
        let (x0, y0) = (u.floor(), v.floor());
        let (fx, fy) = (u - x0, v - y0);
        let mut out = [0.0f32; 4];
        for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
            for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
                let (x, y) = (x0 as i64 + dx, y0 as i64 + dy);
                if x < 0 || y < 0 || x >= size as i64 || y >= size as i64 {
                    continue;
                }
                let o = (y as usize * size + x as usize) * 4;
                for i in 0..4 {
                    out[i] += icon[o + i] * wx * wy;
                }
            }
        }
        out
    };
    let (bx, by) = (p.cx.floor() as i64, p.cy.floor() as i64);
    let c = canvas as i64;
    let mut out = Vec::new();
    for oy in -reach..=reach {
        for ox in -reach..=reach {
            // Offset of this canvas pixel's centre from the icon's centre, rotated back.
            let dx = (bx + ox) as f32 + 0.5 - p.cx;
            let dy = (by + oy) as f32 + 0.5 - p.cy;
            let u = cos * dx + sin * dy + half;
            let v = -sin * dx + cos * dy + half;
            let px = sample(u, v);
            if px[3] > 1e-3 {
                let x = (bx + ox).rem_euclid(c) as usize;
                let y = (by + oy).rem_euclid(c) as usize;
                out.push((x, y, px));
            }
        }
    }
    out
}

/// Everything the tiler needs: the icon at its stamped size and the canvas.
#[derive(Debug, Clone)]
pub struct Tiling {
    /// Premultiplied RGBA, `size`×`size`.
    pub icon: Vec<f32>,
    pub size: usize,
    pub canvas: usize,
    pub count: usize,
}

impl Tiling {
    pub fn new(icon: &Icon, size: usize, canvas: usize, count: usize) -> Self {
        Self {
            icon: icon.resized(size).premultiplied(),
            size,
            canvas,
            count,
        }
    }

    /// The tiling a preset asks for (its target loaded or drawn at the icon size).
    pub fn from_settings(d: &crate::preset::AlifeData) -> Result<Self, IconError> {
        let icon = Icon::load(&d.target, d.icon_size)?;
        Ok(Self::new(&icon, d.icon_size, d.size, d.icons))
    }

    /// One sample: RGB `[3, C, C]` in [-1, 1] and where the icons went.
    pub fn tile(&self, seed: u64) -> Result<(Vec<f32>, Vec<Placement>), TileError> {
        let c = self.canvas;
        let mut rng = StdRng::seed_from_u64(seed);
        'restart: for _ in 0..RESTARTS {
            let mut occupied = vec![false; c * c];
            let mut rgb = vec![1.0f32; 3 * c * c];
            let mut placed = Vec::with_capacity(self.count);
            for _ in 0..self.count {
                let mut ok = false;
                for _ in 0..TRIES {
                    let p = Placement {
                        cx: rng.random::<f32>() * c as f32,
                        cy: rng.random::<f32>() * c as f32,
                        angle: rng.random::<f32>() * std::f32::consts::TAU,
                    };
                    let px = stamp(&self.icon, self.size, p, c);
                    let free = px
                        .iter()
                        .all(|(x, y, v)| v[3] <= OPAQUE || !occupied[y * c + x]);
                    if !free {
                        continue;
                    }
                    for (x, y, v) in px {
                        let i = y * c + x;
                        if v[3] > OPAQUE {
                            occupied[i] = true;
                        }
                        for ch in 0..3 {
                            let o = ch * c * c + i;
                            rgb[o] = v[ch] + (1.0 - v[3]) * rgb[o];
                        }
                    }
                    placed.push(p);
                    ok = true;
                    break;
                }
                if !ok {
                    continue 'restart;
                }
            }
            for v in &mut rgb {
                *v = v.clamp(0.0, 1.0) * 2.0 - 1.0;
            }
            return Ok((rgb, placed));
        }
        Err(TileError::DoesNotFit {
            count: self.count,
            size: self.size,
            canvas: c,
        })
    }

    /// The seed of sample `i`: samples do not depend on the thread count or chunking.
    fn sample_seed(seed: u64, i: usize) -> u64 {
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64).wrapping_add(1)
    }
}

/// Builds a set chunk by chunk so the app can show progress and cancel.
pub struct TileGenerator {
    tiling: Tiling,
    seed: u64,
    n: usize,
    data: Vec<f32>,
    done: usize,
}

impl TileGenerator {
    pub fn new(tiling: Tiling, n: usize, seed: u64) -> Self {
        Self {
            tiling,
            seed,
            n,
            data: Vec::new(),
            done: 0,
        }
    }

    pub fn done(&self) -> usize {
        self.done
    }

    pub fn total(&self) -> usize {
        self.n
    }

    pub fn finished(&self) -> bool {
        self.done >= self.n
    }

    pub fn step(&mut self) -> Result<(), TileError> {
        let end = (self.done + CHUNK).min(self.n);
        let chunk: Vec<Vec<f32>> = (self.done..end)
            .into_par_iter()
            .map(|i| {
                self.tiling
                    .tile(Tiling::sample_seed(self.seed, i))
                    .map(|(rgb, _)| rgb)
            })
            .collect::<Result<_, _>>()?;
        self.data.extend(chunk.into_iter().flatten());
        self.done = end;
        Ok(())
    }

    pub fn finish(self) -> ImageSet {
        let c = self.tiling.canvas;
        ImageSet {
            n: self.done,
            channels: 3,
            h: c,
            w: c,
            data: self.data,
        }
    }
}

/// The whole set at once; `progress(done, total)` returns false to cancel (`Ok(None)`).
pub fn generate(
    tiling: Tiling,
    n: usize,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Option<ImageSet>, TileError> {
    let mut g = TileGenerator::new(tiling, n, seed);
    while !g.finished() {
        g.step()?;
        if !progress(g.done(), g.total()) {
            return Ok(None);
        }
    }
    Ok(Some(g.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiling(count: usize) -> Tiling {
        Tiling::new(&Icon::builtin("dot", 64).unwrap(), 16, 48, count)
    }

    #[test]
    fn opaque_pixels_of_different_icons_never_overlap() {
        let t = tiling(6);
        for seed in 0..20 {
            let (_, placed) = t.tile(seed).unwrap();
            assert_eq!(placed.len(), 6);
            // Re-rasterise every placement independently and count opaque hits per pixel.
            let mut hits = vec![0u8; 48 * 48];
            for p in &placed {
                for (x, y, v) in stamp(&t.icon, t.size, *p, 48) {
                    if v[3] > OPAQUE {
                        hits[y * 48 + x] += 1;
                    }
                }
            }
            assert!(hits.iter().all(|&h| h <= 1), "seed {seed}");
            // Each dot covers π(0.3·16)² ≈ 72 opaque pixels.
            let covered = hits.iter().filter(|&&h| h == 1).count();
            assert!((6 * 60..6 * 85).contains(&covered), "{covered}");
        }
    }

    #[test]
    fn an_icon_across_the_border_wraps_to_the_other_side() {
        let t = tiling(1);
        let p = Placement {
            cx: 0.0,
            cy: 24.0,
            angle: 0.3,
        };
        let px = stamp(&t.icon, t.size, p, 48);
        let opaque: Vec<_> = px.iter().filter(|(_, _, v)| v[3] > OPAQUE).collect();
        assert!(opaque.iter().any(|(x, _, _)| *x < 4));
        assert!(opaque.iter().any(|(x, _, _)| *x > 44));
        assert!(opaque.iter().all(|(x, _, _)| *x < 8 || *x > 40));
        // And the images themselves carry icons cut by the border somewhere.
        let crossing = (0..20).any(|seed| {
            let (rgb, _) = t.tile(seed).unwrap();
            (0..48).any(|y| rgb[y * 48] < 0.0 && rgb[y * 48 + 47] < 0.0)
        });
        assert!(crossing);
    }

    #[test]
    fn the_same_seed_gives_the_same_set_and_another_seed_another() {
        let set = |seed| {
            generate(tiling(4), 70, seed, &mut |_, _| true)
                .unwrap()
                .unwrap()
        };
        let (a, b, c) = (set(3), set(3), set(4));
        assert_eq!(a, b);
        assert_ne!(a.data, c.data);
        assert_eq!((a.n, a.channels, a.h, a.w), (70, 3, 48, 48));
        assert!(a.data.iter().all(|v| (-1.0..=1.0).contains(v)));
        // White background, blue icons: the blue channel stays bright where red is dark.
        let plane = 48 * 48;
        let img = a.image(0);
        let dark_red = (0..plane).filter(|&i| img[i] < -0.5).count();
        assert!(dark_red > 100);
        assert!(
            (0..plane)
                .filter(|&i| img[i] < -0.5)
                .all(|i| img[2 * plane + i] > img[i])
        );
    }

    #[test]
    fn too_many_icons_is_a_clear_error_and_cancel_stops() {
        let e = tiling(40).tile(0).unwrap_err().to_string();
        assert!(e.contains("40 icons") && e.contains("dataset.icons"), "{e}");
        let mut calls = 0;
        let out = generate(tiling(2), 1000, 0, &mut |_, _| {
            calls += 1;
            false
        });
        assert_eq!(out, Ok(None));
        assert_eq!(calls, 1);
    }
}
