//! Unbiased MMD² with an RBF kernel k(x, y) = exp(−‖x − y‖² / (2σ²)).

/// Unbiased MMD² between row-major samples `x` and `y` of dimension `dim`
/// (diagonal terms left out, so it can dip below zero when the laws agree).
pub fn mmd2_rbf(x: &[f32], y: &[f32], dim: usize, sigma: f64) -> f64 {
    let gamma = 1.0 / (2.0 * sigma * sigma);
    let k = |a: &[f32], b: &[f32]| {
        let d2: f64 = a.iter().zip(b).map(|(p, q)| ((p - q) as f64).powi(2)).sum();
        (-gamma * d2).exp()
    };
    let within = |s: &[f32]| {
        let rows: Vec<&[f32]> = s.chunks(dim).collect();
        let n = rows.len() as f64;
        let mut sum = 0.0;
        for i in 0..rows.len() {
            for j in (i + 1)..rows.len() {
                sum += k(rows[i], rows[j]);
            }
        }
        2.0 * sum / (n * (n - 1.0))
    };
    let cross = {
        let (nx, ny) = (x.len() / dim, y.len() / dim);
        let mut sum = 0.0;
        for a in x.chunks(dim) {
            for b in y.chunks(dim) {
                sum += k(a, b);
            }
        }
        sum / (nx * ny) as f64
    };
    within(x) + within(y) - 2.0 * cross
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(n: usize, shift: f32) -> Vec<f32> {
        (0..n)
            .flat_map(|i| {
                let a = (i * 7919 % n) as f32 / n as f32;
                let b = (i * 104729 % n) as f32 / n as f32;
                [a + shift, b]
            })
            .collect()
    }

    #[test]
    fn same_law_near_zero_shifted_law_positive() {
        let a = grid(400, 0.0);
        let b: Vec<f32> = grid(401, 0.0);
        let c = grid(400, 1.0);
        let same = mmd2_rbf(&a, &b, 2, 0.5);
        let far = mmd2_rbf(&a, &c, 2, 0.5);
        assert!(same.abs() < 5e-3, "{same}");
        assert!(far > 0.3, "{far}");
        assert!(mmd2_rbf(&a, &grid(400, 0.3), 2, 0.5) < far);
    }
}
