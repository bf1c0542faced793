//! Agreement of two fields sampled at the same states.

/// |cos| between two fields seen as one long vector each (all states, all axes): the global
/// alignment used by the reference (a random field scores ≈ 0, not the 0.5 that a mean of
/// per-point |cos| would give in 3-D). The absolute value because −v keeps p too.
pub fn abs_cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na * nb)).abs()
}

/// Ring: mean over points of |v·r̂| / |v| — 0 for a purely circulating flow, 1 for radial.
pub fn tangential_ratio(points: &[f32], v: &[f32]) -> f64 {
    let mut sum = 0.0;
    let mut n = 0usize;
    for (p, w) in points.chunks(2).zip(v.chunks(2)) {
        let r = ((p[0] as f64).powi(2) + (p[1] as f64).powi(2)).sqrt();
        let s = ((w[0] as f64).powi(2) + (w[1] as f64).powi(2)).sqrt();
        if r > 1e-9 && s > 1e-12 {
            sum += ((p[0] as f64 * w[0] as f64 + p[1] as f64 * w[1] as f64) / (r * s)).abs();
            n += 1;
        }
    }
    if n == 0 { 1.0 } else { sum / n as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_and_tangential_ratio() {
        assert!((abs_cosine(&[1.0, 2.0], &[-2.0, -4.0]) - 1.0).abs() < 1e-12);
        assert!(abs_cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-12);
        let pts = [1.0f32, 0.0, 0.0, 2.0];
        assert!(tangential_ratio(&pts, &[0.0, 1.0, -1.0, 0.0]) < 1e-9);
        assert!((tangential_ratio(&pts, &[3.0, 0.0, 0.0, -1.0]) - 1.0).abs() < 1e-9);
    }
}
