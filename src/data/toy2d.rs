//! The 2-D systems of METHOD §6, as raw row-major `[n, 2]` coordinates.

use rand::rngs::StdRng;
use rand::{RngExt, seq::SliceRandom};
use rand_distr::{Distribution, Normal};
use std::f64::consts::PI;

/// Uniform in the annulus 1 ≤ r ≤ 2: r² is uniform, so the area density is flat.
pub fn ring(n: usize, rng: &mut StdRng) -> Vec<f64> {
    let mut out = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let r = rng.random_range(1.0..4.0f64).sqrt();
        let th = rng.random_range(0.0..2.0 * PI);
        out.extend([r * th.cos(), r * th.sin()]);
    }
    out
}

/// Two Gaussians of std 0.5 at (-1,-1) and (1,1), equal weight.
pub fn two_peaks(n: usize, rng: &mut StdRng) -> Vec<f64> {
    let g = Normal::new(0.0, 0.5).expect("valid std");
    let mut out = Vec::with_capacity(2 * n);
    for i in 0..n {
        let c = if i % 2 == 0 { -1.0 } else { 1.0 };
        out.extend([c + g.sample(rng), c + g.sample(rng)]);
    }
    shuffle_rows(&mut out, 2, rng);
    out
}

/// Two interleaving half circles with Gaussian noise (the usual "moons").
pub fn two_moons(n: usize, noise: f64, rng: &mut StdRng) -> Vec<f64> {
    let mut out = Vec::with_capacity(2 * n);
    let g = Normal::new(0.0, noise.max(f64::MIN_POSITIVE)).expect("valid std");
    for i in 0..n {
        let th = rng.random_range(0.0..PI);
        let (x, y) = if i % 2 == 0 {
            (th.cos(), th.sin())
        } else {
            (1.0 - th.cos(), 0.5 - th.sin())
        };
        let (dx, dy) = if noise > 0.0 {
            (g.sample(rng), g.sample(rng))
        } else {
            (0.0, 0.0)
        };
        out.extend([x + dx, y + dy]);
    }
    shuffle_rows(&mut out, 2, rng);
    out
}

pub(crate) fn shuffle_rows(points: &mut Vec<f64>, dim: usize, rng: &mut StdRng) {
    let mut rows: Vec<Vec<f64>> = points.chunks(dim).map(|r| r.to_vec()).collect();
    rows.shuffle(rng);
    *points = rows.concat();
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ring_stays_in_the_annulus_with_flat_area_density() {
        let mut rng = StdRng::seed_from_u64(1);
        let p = ring(20_000, &mut rng);
        let r2: Vec<f64> = p.chunks(2).map(|q| q[0] * q[0] + q[1] * q[1]).collect();
        assert!(r2.iter().all(|&r| (1.0..=4.0).contains(&r)));
        // Flat in area ⇔ r² uniform on [1, 4]: half the points below r² = 2.5.
        let below = r2.iter().filter(|&&r| r < 2.5).count() as f64 / r2.len() as f64;
        assert!((below - 0.5).abs() < 0.02, "{below}");
    }

    #[test]
    fn peaks_are_where_they_should_be() {
        let mut rng = StdRng::seed_from_u64(2);
        let p = two_peaks(10_000, &mut rng);
        let upper = p.chunks(2).filter(|q| q[0] + q[1] > 0.0).count();
        assert!((upper as f64 / 10_000.0 - 0.5).abs() < 0.03);
    }
}
