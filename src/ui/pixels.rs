//! States as pixels. A two-channel state (u, v in [-1, 1]) becomes one colour so both
//! chemicals read at a glance: v (the autocatalyst, where the pattern is) glows warm,
//! depleted u tints violet, rest is deep blue; three channels are RGB.

use egui::{Color32, ColorImage};

/// The colour of one cell from its scaled (u, v).
pub fn pattern_colour(u: f32, v: f32) -> Color32 {
    let u = ((u + 1.0) / 2.0).clamp(0.0, 1.0);
    let v = ((v + 1.0) / 2.0).clamp(0.0, 1.0);
    // v rarely exceeds ~0.45: stretch it so the pattern uses the whole ramp.
    let t = (v * 2.4).min(1.0);
    let depleted = 1.0 - u;
    let lerp = |a: f32, b: f32| a + (b - a) * t;
    let r = lerp(0.05, 1.0) + 0.35 * depleted * (1.0 - t);
    let g = lerp(0.08, 0.78);
    let b = lerp(0.25, 0.25) + 0.45 * depleted * (1.0 - t);
    Color32::from_rgb(
        (r.min(1.0) * 255.0) as u8,
        (g.min(1.0) * 255.0) as u8,
        (b.min(1.0) * 255.0) as u8,
    )
}

/// A two-channel image `[2, h, w]` as colours.
pub fn pattern_image(x: &[f32], h: usize, w: usize) -> ColorImage {
    let n = h * w;
    let pixels = (0..n).map(|i| pattern_colour(x[i], x[n + i])).collect();
    ColorImage::new([w, h], pixels)
}

/// An RGB image `[3, h, w]` in [-1, 1] (artificial life) as colours.
pub fn rgb_image(x: &[f32], h: usize, w: usize) -> ColorImage {
    let n = h * w;
    let byte = |v: f32| (((v + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0).round() as u8;
    let pixels = (0..n)
        .map(|i| Color32::from_rgb(byte(x[i]), byte(x[n + i]), byte(x[2 * n + i])))
        .collect();
    ColorImage::new([w, h], pixels)
}

/// One grey channel in [-1, 1] (the user's grey pictures).
pub fn grey_image(x: &[f32], h: usize, w: usize) -> ColorImage {
    let byte = |v: f32| (((v + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0).round() as u8;
    let pixels = x[..h * w]
        .iter()
        .map(|&v| Color32::from_gray(byte(v)))
        .collect();
    ColorImage::new([w, h], pixels)
}

/// Any state the worker sends: grey, two chemicals or RGB.
pub fn state_image(x: &[f32], channels: usize, h: usize, w: usize) -> ColorImage {
    match channels {
        1 => grey_image(x, h, w),
        3 => rgb_image(x, h, w),
        _ => pattern_image(x, h, w),
    }
}

/// A displacement `[2, h, w]`: v's change in a blue–white–red map scaled to its largest
/// value (white = no change), so the direction of motion shows whatever its size.
pub fn displacement_image(d: &[f32], h: usize, w: usize) -> ColorImage {
    let n = h * w;
    let dv = &d[n..2 * n];
    let scale = dv.iter().fold(1e-6f32, |m, x| m.max(x.abs()));
    let pixels = dv
        .iter()
        .map(|&x| {
            let t = (x / scale).clamp(-1.0, 1.0);
            let (r, g, b) = if t >= 0.0 {
                (1.0, 1.0 - t, 1.0 - t)
            } else {
                (1.0 + t, 1.0 + t, 1.0)
            };
            Color32::from_rgb((r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8)
        })
        .collect();
    ColorImage::new([w, h], pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_is_dark_and_the_pattern_is_bright() {
        let rest = pattern_colour(1.0, -1.0);
        let spot = pattern_colour(-0.2, -0.3);
        let lum = |c: Color32| c.r() as u32 + c.g() as u32 + c.b() as u32;
        assert!(lum(spot) > 2 * lum(rest), "{rest:?} vs {spot:?}");
        let img = displacement_image(&[0.0, 0.0, 1.0, -0.5], 1, 2);
        assert_eq!(img.pixels[0], Color32::from_rgb(255, 0, 0));
        assert_eq!(img.pixels[1].b(), 255);
    }
}
