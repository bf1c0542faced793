//! Whether the user's pictures keep their look and move under a flow, where no true
//! dynamics and no icon exist to compare with: the SDE run from held-out snapshots (as
//! `blob_motion` runs it), its denoised state compared with the clean snapshots by their
//! tones (1-Wasserstein distance between pixel values) and their sharpness (mean squared
//! difference between neighbouring pixels), and how far it moved (RMS change per pixel).

use super::blob_motion::{Protocol, simulate};
use crate::data::image_set::ImageSet;
use crate::method::diffusion::{self, Schedule};
use crate::nn::score_unet::ScoreUnet;
use crate::tensor_util::to_vec;
use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// One run's readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Look {
    /// 1-Wasserstein distance between the pixel values of the last frame and of the clean
    /// snapshots (0: the same tones).
    pub tone_w1: f64,
    /// The last frame's sharpness over the clean snapshots' (1: as sharp; below, blurred).
    pub edge_ratio: f64,
    /// RMS change per pixel from the first frame to the last.
    pub moved_rms: f64,
}

/// The 1-Wasserstein distance between two samples of values (same count or not), by their
/// quantiles.
pub fn tone_w1(a: &[f32], b: &[f32]) -> f64 {
    let sorted = |x: &[f32]| {
        let mut v = x.to_vec();
        v.sort_by(f32::total_cmp);
        v
    };
    let (a, b) = (sorted(a), sorted(b));
    if a.is_empty() || b.is_empty() {
        return f64::NAN;
    }
    const Q: usize = 1000;
    let at = |v: &[f32], q: f64| v[((q * v.len() as f64) as usize).min(v.len() - 1)];
    (0..Q)
        .map(|i| {
            let q = (i as f64 + 0.5) / Q as f64;
            f64::from((at(&a, q) - at(&b, q)).abs())
        })
        .sum::<f64>()
        / Q as f64
}

/// Mean squared difference between horizontal and vertical neighbours (periodic), over
/// images `[n, c, h, w]`.
pub fn sharpness(x: &[f32], h: usize, w: usize) -> f64 {
    let plane = h * w;
    let mut sum = 0.0;
    for p in x.chunks_exact(plane) {
        for y in 0..h {
            for xx in 0..w {
                let v = p[y * w + xx];
                let right = p[y * w + (xx + 1) % w];
                let down = p[((y + 1) % h) * w + xx];
                sum += f64::from((v - right).powi(2) + (v - down).powi(2));
            }
        }
    }
    sum / (2 * x.len()).max(1) as f64
}

/// The SDE from `starts` (noised to the protocol's level) under `v` for `p.steps`;
/// `tick(k)` returns false to cancel (then None).
pub fn look(
    model: &ScoreUnet,
    sched: &Schedule,
    starts: &ImageSet,
    v: &dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
    p: &Protocol,
    seed: u64,
    tick: &mut dyn FnMut(usize) -> bool,
) -> Option<Look> {
    let device = model.device();
    let (n, c, h, w) = (starts.n, starts.channels, starts.h, starts.w);
    let x0 = Tensor::<4>::from_data(TensorData::new(starts.data.clone(), [n, c, h, w]), &device);
    let mut rng = StdRng::seed_from_u64(seed);
    let x = diffusion::noised(x0, sched, p.tau, &mut rng);
    let mut first = Vec::new();
    let last = simulate(model, sched, p, x, v, &mut rng, tick, &mut |k, ema| {
        if k == 0 {
            first = to_vec(ema.value.clone());
        }
    })?;
    let last = to_vec(last.value);
    let moved = first
        .iter()
        .zip(&last)
        .map(|(a, b)| f64::from((a - b).powi(2)))
        .sum::<f64>()
        / last.len().max(1) as f64;
    Some(Look {
        tone_w1: tone_w1(&last, &starts.data),
        edge_ratio: sharpness(&last, h, w) / sharpness(&starts.data, h, w).max(1e-12),
        moved_rms: moved.sqrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tones_and_sharpness_tell_a_shift_and_a_blur_apart() {
        let (h, w) = (8, 8);
        let stripes: Vec<f32> = (0..h * w)
            .map(|i| if (i % w) % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        // The same stripes moved by one pixel: same tones, same sharpness.
        let moved: Vec<f32> = stripes.iter().map(|v| -v).collect();
        assert_eq!(tone_w1(&stripes, &moved), 0.0);
        assert_eq!(sharpness(&stripes, h, w), sharpness(&moved, h, w));
        // Blurred to grey: tones 1 apart, no edges left.
        let grey = vec![0.0f32; h * w];
        assert!((tone_w1(&stripes, &grey) - 1.0).abs() < 1e-9);
        assert_eq!(sharpness(&grey, h, w), 0.0);
        assert!(sharpness(&stripes, h, w) > 1.0);
    }
}
