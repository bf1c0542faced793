//! Largest Lyapunov exponent from twin trajectories (METHOD §7): each state gets a twin at
//! distance 1e-5; after every window of RK4 steps the growth of their separation is logged
//! and the twin is pulled back to 1e-5 along the same direction. λ = Σ log(growth) / time.
//! A trajectory counts only if it stays bounded (|x| < `bound` at every renormalisation, in
//! standardised units), so escaping orbits cannot pass for chaos.

use crate::sim::ode::integrate;
use crate::tensor_util::{from_rows, to_vec};
use burn::tensor::{Device, Tensor};

#[derive(Debug, Clone, Copy)]
pub struct LyapunovConfig {
    pub dt: f64,
    pub steps: usize,
    pub window: usize,
    pub keep: usize,
    pub bound: f64,
    pub delta: f64,
}

impl LyapunovConfig {
    /// The paper's protocol (METHOD §7 and §8).
    pub const REFERENCE: LyapunovConfig = LyapunovConfig {
        dt: 0.1,
        steps: 5000,
        window: 2500,
        keep: 64,
        bound: 4.0,
        delta: 1e-5,
    };
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lyapunov {
    /// Exponents of the kept trajectories (per unit time).
    pub exponents: Vec<f64>,
    pub mean: f64,
    pub positive_fraction: f64,
    /// Mean |v| over the kept trajectories at the end of every window (state units per
    /// unit time): the exponent divided by it is per unit of path, comparable between
    /// fields that run at different speeds.
    pub mean_speed: f64,
}

impl Lyapunov {
    pub fn min(&self) -> f64 {
        self.exponents.iter().copied().fold(f64::NAN, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.exponents.iter().copied().fold(f64::NAN, f64::max)
    }
}

pub fn largest_exponent(
    v: &dyn Fn(Tensor<2>) -> Tensor<2>,
    starts: &[f32],
    dim: usize,
    cfg: &LyapunovConfig,
    device: &Device,
) -> Lyapunov {
    let m = starts.len() / dim;
    let dir = 1.0 / (dim as f64).sqrt();
    let mut x: Vec<f32> = starts.to_vec();
    let mut y: Vec<f32> = starts
        .iter()
        .map(|&a| a + (cfg.delta * dir) as f32)
        .collect();
    let mut log_growth = vec![0.0f64; m];
    let mut bounded = vec![true; m];
    let mut speed_sum = vec![0.0f64; m];
    let windows = cfg.steps.div_ceil(cfg.window);
    for _ in 0..windows {
        let both = from_rows(&[x.as_slice(), y.as_slice()].concat(), dim, device);
        let out = to_vec(integrate(v, both, cfg.dt, cfg.window));
        let (nx, ny) = out.split_at(m * dim);
        x = nx.to_vec();
        y = ny.to_vec();
        let vx = to_vec(v(from_rows(&x, dim, device)));
        for (i, sum) in speed_sum.iter_mut().enumerate() {
            *sum += vx[i * dim..(i + 1) * dim]
                .iter()
                .map(|a| (*a as f64).powi(2))
                .sum::<f64>()
                .sqrt();
        }
        for i in 0..m {
            let (xi, yi) = (&x[i * dim..(i + 1) * dim], &mut y[i * dim..(i + 1) * dim]);
            let norm = xi.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
            if !norm.is_finite() || norm >= cfg.bound {
                bounded[i] = false;
            }
            let sep: f64 = xi
                .iter()
                .zip(yi.iter())
                .map(|(a, b)| ((b - a) as f64).powi(2))
                .sum::<f64>()
                .sqrt()
                .max(1e-12);
            log_growth[i] += (sep / cfg.delta).ln();
            for (a, b) in xi.iter().zip(yi.iter_mut()) {
                *b = (*a as f64 + (*b - a) as f64 * cfg.delta / sep) as f32;
            }
        }
    }
    let time = (windows * cfg.window) as f64 * cfg.dt;
    let kept: Vec<usize> = (0..m)
        .filter(|&i| bounded[i] && log_growth[i].is_finite())
        .take(cfg.keep)
        .collect();
    let exponents: Vec<f64> = kept.iter().map(|&i| log_growth[i] / time).collect();
    // No bounded trajectory: nothing was measured (NaN), not an exponent of 0.
    let n = exponents.len() as f64;
    Lyapunov {
        mean: exponents.iter().sum::<f64>() / n,
        positive_fraction: exponents.iter().filter(|&&l| l > 0.0).count() as f64 / n,
        mean_speed: kept.iter().map(|&i| speed_sum[i]).sum::<f64>() / (n * windows as f64),
        exponents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LyapunovConfig {
        LyapunovConfig {
            dt: 0.05,
            steps: 400,
            window: 10,
            keep: 8,
            bound: 4.0,
            delta: 1e-5,
        }
    }

    #[test]
    fn linear_fields_give_their_eigenvalue() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        // v = 0.3 x expands at rate 0.3 but escapes: the bound must reject it.
        let grow = |x: Tensor<2>| x.mul_scalar(0.3);
        let starts = [0.5f32, 0.2, -0.3, 0.4];
        let l = largest_exponent(&grow, &starts, 2, &cfg(), &device);
        assert!(l.exponents.is_empty());
        assert!(
            l.mean.is_nan() && l.positive_fraction.is_nan(),
            "none measured, not 0"
        );
        // A rotation keeps separations: λ ≈ 0, bounded.
        let rot = |x: Tensor<2>| {
            let [b, _] = x.dims();
            let xs = x.clone().slice([0..b, 0..1]);
            Tensor::cat(vec![x.slice([0..b, 1..2]).neg(), xs], 1)
        };
        let l = largest_exponent(&rot, &starts, 2, &cfg(), &device);
        assert_eq!(l.exponents.len(), 2);
        assert!(l.mean.abs() < 5e-3, "{}", l.mean);
        // A rotation keeps |x|, and |v| = |x|: the two starts have |x| 0.539 and 0.5.
        let expected = (0.29f64.sqrt() + 0.5) / 2.0;
        assert!((l.mean_speed - expected).abs() < 1e-3, "{}", l.mean_speed);
        // Contraction v = −0.5 x: λ = −0.5.
        let shrink = |x: Tensor<2>| x.mul_scalar(-0.5);
        let l = largest_exponent(&shrink, &starts, 2, &cfg(), &device);
        assert!((l.mean + 0.5).abs() < 1e-2, "{}", l.mean);
        assert_eq!(l.positive_fraction, 0.0);
        assert!(l.min() <= l.mean && l.mean <= l.max());
    }
}
