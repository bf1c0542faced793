//! Targets for artificial life: a small RGBA picture ("icon") that the tiler stamps many
//! times (METHOD §6). Built-in targets are drawn here, analytically, so `assets/targets/`
//! is reproducible from our own code (`equiflow target NAME --out FILE.png`).

use std::path::Path;

/// Straight (not premultiplied) RGBA in [0, 1], row-major `[y][x][rgba]`, square.
#[derive(Debug, Clone, PartialEq)]
pub struct Icon {
    pub size: usize,
    pub rgba: Vec<f32>,
}

/// The targets we ship, by name.
pub const BUILTIN: &[&str] = &["dot", "dots", "firefly", "taiji"];

/// The side of the shipped target PNGs (the reference's icon size).
pub const ASSET_SIZE: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum IconError {
    #[error("cannot read target {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin} is not an image we can read (PNG or JPEG): {reason}")]
    Decode { origin: String, reason: String },
    #[error("{origin} has no pixels")]
    NoPixels { origin: String },
    #[error("{origin} is empty: every pixel is transparent (or white); paint something first")]
    Blank { origin: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
}

const BLUE: [f32; 3] = [0.13, 0.33, 0.85];
const RED: [f32; 3] = [0.86, 0.18, 0.16];
const INK: [f32; 3] = [0.08, 0.08, 0.1];

/// Coverage of a shape with a soft edge `soft` pixels wide, given its signed distance.
fn edge(distance: f32, soft: f32) -> f32 {
    (0.5 - distance / soft.max(1e-3)).clamp(0.0, 1.0)
}

impl Icon {
    pub fn blank(size: usize) -> Self {
        Self {
            size,
            rgba: vec![0.0; size * size * 4],
        }
    }

    /// A built-in target drawn at `size` pixels, or `None` for an unknown name.
    pub fn builtin(name: &str, size: usize) -> Option<Self> {
        let s = size as f32;
        let paint: Box<dyn Fn(f32, f32) -> [f32; 4]> = match name {
            "dot" => Box::new(move |x, y| {
                let d = ((x - 0.5).hypot(y - 0.5) - 0.3) * s;
                let [r, g, b] = BLUE;
                [r, g, b, edge(d, 0.08 * s)]
            }),
            "dots" => Box::new(move |x, y| {
                let blue = edge(((x - 0.3).hypot(y - 0.5) - 0.18) * s, 0.06 * s);
                let red = edge(((x - 0.7).hypot(y - 0.5) - 0.18) * s, 0.06 * s);
                let [r, g, b] = if blue >= red { BLUE } else { RED };
                [r, g, b, blue.max(red)]
            }),
            "firefly" => Box::new(move |x, y| {
                let ellipse = |cx: f32, cy: f32, a: f32, b: f32| {
                    (((x - cx) / a).hypot((y - cy) / b) - 1.0) * a.min(b) * s
                };
                let body = edge(ellipse(0.5, 0.42, 0.16, 0.24), 0.04 * s);
                let glow = edge(ellipse(0.5, 0.62, 0.24, 0.26), 0.25 * s) * 0.85;
                let a = body + glow * (1.0 - body);
                if a <= 0.0 {
                    return [0.0; 4];
                }
                let mix = |i: usize| (BLUE[i] * body + RED[i] * glow * (1.0 - body)) / a;
                [mix(0), mix(1), mix(2), a]
            }),
            "taiji" => Box::new(move |x, y| {
                let (dx, dy) = (x - 0.5, y - 0.5);
                let r = dx.hypot(dy);
                let outer = 0.42;
                // Dark on the left half, then the two half-discs swap the colour, then the dots.
                let mut dark = dx < 0.0;
                let upper = dx.hypot(dy + outer / 2.0);
                let lower = dx.hypot(dy - outer / 2.0);
                if upper < outer / 2.0 {
                    dark = false;
                }
                if lower < outer / 2.0 {
                    dark = true;
                }
                if upper < outer / 7.0 {
                    dark = true;
                }
                if lower < outer / 7.0 {
                    dark = false;
                }
                // A dark rim keeps the light half visible on the white canvas.
                if r > outer - 0.035 {
                    dark = true;
                }
                let a = edge((r - outer) * s, 0.04 * s);
                let [cr, cg, cb] = if dark { INK } else { [0.97, 0.96, 0.9] };
                [cr, cg, cb, a]
            }),
            _ => return None,
        };
        // 4×4 supersampling: smooth edges without a blur pass.
        let mut icon = Self::blank(size);
        const SS: usize = 4;
        for py in 0..size {
            for px in 0..size {
                let mut acc = [0.0f32; 4];
                for sy in 0..SS {
                    for sx in 0..SS {
                        let x = (px as f32 + (sx as f32 + 0.5) / SS as f32) / s;
                        let y = (py as f32 + (sy as f32 + 0.5) / SS as f32) / s;
                        let c = paint(x, y);
                        for i in 0..3 {
                            acc[i] += c[i] * c[3];
                        }
                        acc[3] += c[3];
                    }
                }
                let o = (py * size + px) * 4;
                let a = acc[3] / (SS * SS) as f32;
                for i in 0..3 {
                    icon.rgba[o + i] = if acc[3] > 0.0 { acc[i] / acc[3] } else { 0.0 };
                }
                icon.rgba[o + 3] = a;
            }
        }
        Some(icon)
    }

    /// A target by name (a built-in) or by path (PNG or JPEG), fitted to `size`.
    pub fn load(name_or_path: &str, size: usize) -> Result<Self, IconError> {
        if let Some(icon) = Self::builtin(name_or_path, size) {
            return Ok(icon);
        }
        let bytes = std::fs::read(name_or_path).map_err(|source| IconError::Io {
            path: name_or_path.into(),
            source,
        })?;
        Self::decode(&bytes, name_or_path, size)
    }

    /// Decode an image of any size and fit it, centred and with its aspect kept, into
    /// `size`×`size`. Without an alpha channel, white counts as transparent (the canvas
    /// the icons are stamped on is white).
    pub fn decode(bytes: &[u8], origin: &str, size: usize) -> Result<Self, IconError> {
        let img = image::load_from_memory(bytes).map_err(|e| IconError::Decode {
            origin: origin.into(),
            reason: e.to_string(),
        })?;
        let (w, h) = (img.width() as usize, img.height() as usize);
        if w == 0 || h == 0 {
            return Err(IconError::NoPixels {
                origin: origin.into(),
            });
        }
        let has_alpha = img.color().has_alpha();
        let rgba = img.to_rgba32f();
        let mut src: Vec<f32> = rgba.into_raw();
        for px in src.chunks_exact_mut(4) {
            if !has_alpha {
                let ink = px[..3].iter().map(|c| 1.0 - c).fold(0.0f32, f32::max);
                px[3] = (ink / 0.1).clamp(0.0, 1.0);
            }
            // Premultiplied while resampling, so transparent pixels lend no colour.
            for i in 0..3 {
                px[i] *= px[3];
            }
        }
        let icon = fit(&src, w, h, size);
        if icon.rgba.chunks_exact(4).all(|p| p[3] < 0.02) {
            return Err(IconError::Blank {
                origin: origin.into(),
            });
        }
        Ok(icon)
    }

    /// Fit this icon to another size (area-weighted, premultiplied).
    pub fn resized(&self, size: usize) -> Self {
        if size == self.size {
            return self.clone();
        }
        fit(&self.premultiplied(), self.size, self.size, size)
    }

    /// Premultiplied RGBA, the form in which pixels are resampled and composited.
    pub fn premultiplied(&self) -> Vec<f32> {
        let mut p = self.rgba.clone();
        for px in p.chunks_exact_mut(4) {
            for i in 0..3 {
                px[i] *= px[3];
            }
        }
        p
    }

    pub fn is_blank(&self) -> bool {
        self.rgba.chunks_exact(4).all(|p| p[3] < 0.02)
    }

    pub fn to_rgba8(&self) -> Vec<u8> {
        self.rgba
            .iter()
            .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect()
    }

    pub fn save_png(&self, path: &Path) -> Result<(), IconError> {
        save_rgba_png(path, &self.to_rgba8(), self.size, self.size)
    }
}

/// Write 8-bit RGBA (`[y][x][rgba]`) as a PNG, creating its folder.
pub fn save_rgba_png(path: &Path, rgba: &[u8], w: usize, h: usize) -> Result<(), IconError> {
    super::create_parent(path).map_err(|e| IconError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    image::save_buffer(
        path,
        rgba,
        w as u32,
        h as u32,
        image::ExtendedColorType::Rgba8,
    )
    .map_err(|e| IconError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Box-filter premultiplied `src` (`w`×`h`) into a centred `size`×`size` icon, keeping the
/// aspect ratio; the output is straight alpha again.
fn fit(src: &[f32], w: usize, h: usize, size: usize) -> Icon {
    let scale = size as f32 / w.max(h) as f32;
    let (fw, fh) = (w as f32 * scale, h as f32 * scale);
    let (ox, oy) = ((size as f32 - fw) / 2.0, (size as f32 - fh) / 2.0);
    let mut icon = Icon::blank(size);
    // Each output pixel averages the source area it covers (exact box filter, so shrinking
    // a large photo does not alias and enlarging a tiny one stays blocky but faithful).
    for py in 0..size {
        for px in 0..size {
            let x0 = (px as f32 - ox) / scale;
            let x1 = (px as f32 + 1.0 - ox) / scale;
            let y0 = (py as f32 - oy) / scale;
            let y1 = (py as f32 + 1.0 - oy) / scale;
            let mut acc = [0.0f32; 4];
            let mut area = 0.0;
            let (sx0, sx1) = (x0.floor().max(0.0) as usize, (x1.ceil() as usize).min(w));
            let (sy0, sy1) = (y0.floor().max(0.0) as usize, (y1.ceil() as usize).min(h));
            for sy in sy0..sy1 {
                let wy = (y1.min(sy as f32 + 1.0) - y0.max(sy as f32)).max(0.0);
                for sx in sx0..sx1 {
                    let wx = (x1.min(sx as f32 + 1.0) - x0.max(sx as f32)).max(0.0);
                    let wgt = wx * wy;
                    let o = (sy * w + sx) * 4;
                    for i in 0..4 {
                        acc[i] += src[o + i] * wgt;
                    }
                    area += wgt;
                }
            }
            // Pixels outside the fitted picture stay transparent.
            let full = (x1 - x0) * (y1 - y0);
            if area <= 0.0 {
                continue;
            }
            let o = (py * size + px) * 4;
            let a = acc[3] / full;
            icon.rgba[o + 3] = a;
            for i in 0..3 {
                icon.rgba[o + i] = if acc[3] > 0.0 { acc[i] / acc[3] } else { 0.0 };
            }
        }
    }
    icon
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, color: image::ColorType, fill: impl Fn(u32, u32) -> Vec<u8>) -> Vec<u8> {
        let mut raw = Vec::new();
        for y in 0..h {
            for x in 0..w {
                raw.extend(fill(x, y));
            }
        }
        let mut out = std::io::Cursor::new(Vec::new());
        image::write_buffer_with_format(&mut out, &raw, w, h, color, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn builtins_are_drawn_opaque_inside_and_clear_at_the_corners() {
        for name in BUILTIN {
            let icon = Icon::builtin(name, 32).unwrap();
            assert_eq!(icon.rgba.len(), 32 * 32 * 4);
            assert_eq!(icon.rgba[3], 0.0, "{name}: corner");
            let opaque = icon.rgba.chunks_exact(4).filter(|p| p[3] > 0.5).count();
            assert!(opaque > 32 * 32 / 10, "{name}: {opaque} opaque pixels");
        }
        assert!(Icon::builtin("unicorn", 32).is_none());
        // Both discs of "dots" are there: one blue-dominant, one red-dominant pixel.
        let dots = Icon::builtin("dots", 32).unwrap();
        let at = |x: usize, y: usize| &dots.rgba[(y * 32 + x) * 4..][..4];
        assert!(at(9, 16)[2] > at(9, 16)[0]);
        assert!(at(22, 16)[0] > at(22, 16)[2]);
    }

    #[test]
    fn the_shipped_assets_are_what_the_code_draws() {
        for name in BUILTIN {
            let path = format!("{}/assets/targets/{name}.png", env!("CARGO_MANIFEST_DIR"));
            let shipped = Icon::load(&path, ASSET_SIZE).unwrap();
            let drawn = Icon::builtin(name, ASSET_SIZE).unwrap();
            // Colour under full transparency is meaningless; compare premultiplied.
            let worst = shipped
                .premultiplied()
                .iter()
                .zip(drawn.premultiplied())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 2.0 / 255.0, "{name}: {worst}");
        }
    }

    #[test]
    fn odd_sizes_and_missing_alpha_are_fitted_and_garbage_is_refused() {
        // 7×3 red bar with alpha: fitted to 14 px wide, centred vertically, clear above.
        let bar = png(7, 3, image::ColorType::Rgba8, |_, _| vec![255, 0, 0, 255]);
        let icon = Icon::decode(&bar, "bar.png", 14).unwrap();
        let alpha = |x: usize, y: usize| icon.rgba[(y * 14 + x) * 4 + 3];
        assert!(alpha(7, 7) > 0.99 && alpha(0, 7) > 0.99);
        assert_eq!(alpha(7, 0), 0.0);
        // No alpha: white is transparent, the dark square in the middle is not.
        let rgb = png(9, 9, image::ColorType::Rgb8, |x, y| {
            if (3..6).contains(&x) && (3..6).contains(&y) {
                vec![10, 20, 200]
            } else {
                vec![255, 255, 255]
            }
        });
        let icon = Icon::decode(&rgb, "square.png", 9).unwrap();
        assert_eq!(icon.rgba[3], 0.0);
        assert!(icon.rgba[(4 * 9 + 4) * 4 + 3] > 0.99);
        // Garbage, an empty file and a blank picture: errors that say what is wrong.
        for (bytes, needle) in [
            (b"not a png at all".to_vec(), "not an image"),
            (Vec::new(), "not an image"),
            (
                png(4, 4, image::ColorType::Rgba8, |_, _| vec![0, 0, 0, 0]),
                "empty",
            ),
        ] {
            let e = Icon::decode(&bytes, "x.png", 16).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        let missing = Icon::load("/no/such/target.png", 16).unwrap_err();
        assert!(missing.to_string().contains("/no/such/target.png"));
    }

    #[test]
    fn a_png_saved_into_a_missing_folder_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exports/new/taiji.png");
        let icon = Icon::builtin("taiji", 24).unwrap();
        icon.save_png(&path).unwrap();
        let back = Icon::load(path.to_str().unwrap(), 24).unwrap();
        // 8-bit storage: compare premultiplied, as colour under no alpha is meaningless.
        let worst = back
            .premultiplied()
            .iter()
            .zip(icon.premultiplied())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 2.0 / 255.0, "{worst}");
    }

    #[test]
    fn resizing_keeps_the_colour_and_the_coverage() {
        let dot = Icon::builtin("dot", 64).unwrap();
        let small = dot.resized(16);
        let coverage =
            |i: &Icon| i.rgba.chunks_exact(4).map(|p| p[3]).sum::<f32>() / (i.size * i.size) as f32;
        assert!((coverage(&dot) - coverage(&small)).abs() < 0.01);
        let centre = &small.rgba[(8 * 16 + 8) * 4..][..4];
        assert!((centre[2] - BLUE[2]).abs() < 0.01 && centre[3] > 0.99);
    }
}
