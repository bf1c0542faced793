//! The training-free flow (METHOD §4): for any skew-symmetric D, v = D s satisfies
//! div(p D ∇log p) = div(D ∇p) = Σ D_ij ∂i∂j p = 0, because D is antisymmetric and the Hessian
//! symmetric. No second network, no training: only a score and a random D.

use crate::tensor_util::from_rows;
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

/// A seeded random antisymmetric `d × d` matrix with unit Frobenius norm, row-major.
pub fn random_antisymmetric(d: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5CE3_D00D);
    let mut m = vec![0f64; d * d];
    for i in 0..d {
        for j in (i + 1)..d {
            let g: f64 = StandardNormal.sample(&mut rng);
            m[i * d + j] = g;
            m[j * d + i] = -g;
        }
    }
    let norm = m.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    m.iter().map(|x| (x / norm) as f32).collect()
}

/// v = D s for row vectors: v = s Dᵀ.
pub fn apply(d_matrix: &[f32], s: Tensor<2>, device: &Device) -> Tensor<2> {
    let [_, d] = s.dims();
    let dt = from_rows(d_matrix, d, device).transpose();
    s.matmul(dt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::to_vec;

    /// Score of an isotropic Gaussian mixture with the given means and std.
    fn mixture_score(x: [f64; 2], means: &[[f64; 2]], std: f64) -> [f64; 2] {
        let (mut w, mut g) = (0.0, [0.0, 0.0]);
        for m in means {
            let d = [x[0] - m[0], x[1] - m[1]];
            let e = (-(d[0] * d[0] + d[1] * d[1]) / (2.0 * std * std)).exp();
            w += e;
            g[0] -= e * d[0] / (std * std);
            g[1] -= e * d[1] / (std * std);
        }
        [g[0] / w, g[1] / w]
    }

    #[test]
    fn antisymmetric_and_normalised() {
        let d = random_antisymmetric(4, 9);
        for i in 0..4 {
            for j in 0..4 {
                assert_eq!(d[i * 4 + j], -d[j * 4 + i]);
            }
        }
        let n: f32 = d.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-5);
        assert_ne!(d, random_antisymmetric(4, 10));
    }

    /// div(p v) / p = div v + v·s vanishes for v = D s on a two-Gaussian mixture, while a
    /// non-skew D (the identity) clearly does not keep p.
    #[test]
    fn skew_flow_keeps_a_gaussian_mixture() {
        let device = Device::flex();
        let means = [[-1.0, -1.0], [1.0, 0.5]];
        let dm = random_antisymmetric(2, 1);
        let field = |x: [f64; 2], mat: &[f32]| -> [f64; 2] {
            let s = mixture_score(x, &means, 0.6);
            let s_t = from_rows(&[s[0] as f32, s[1] as f32], 2, &device);
            let v = to_vec(apply(mat, s_t, &device));
            [v[0] as f64, v[1] as f64]
        };
        let residual = |x: [f64; 2], mat: &[f32]| -> f64 {
            let h = 1e-3;
            let dvx =
                (field([x[0] + h, x[1]], mat)[0] - field([x[0] - h, x[1]], mat)[0]) / (2.0 * h);
            let dvy =
                (field([x[0], x[1] + h], mat)[1] - field([x[0], x[1] - h], mat)[1]) / (2.0 * h);
            let v = field(x, mat);
            let s = mixture_score(x, &means, 0.6);
            dvx + dvy + v[0] * s[0] + v[1] * s[1]
        };
        let identity = [1.0f32, 0.0, 0.0, 1.0];
        let points = [
            [0.3, -0.2],
            [-1.2, -0.7],
            [0.9, 0.9],
            [0.0, 0.4],
            [1.5, -0.5],
        ];
        for x in points {
            let r = residual(x, &dm);
            assert!(r.abs() < 2e-2, "skew residual {r} at {x:?}");
        }
        let worst = points
            .iter()
            .map(|&x| residual(x, &identity).abs())
            .fold(0.0, f64::max);
        assert!(worst > 0.5, "identity should break equilibrium: {worst}");
    }
}
