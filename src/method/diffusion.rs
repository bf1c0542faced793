//! DDPM on low-dimensional data with the reference cosine schedule (METHOD §2):
//! x_t = sqrt(a_t) x0 + sqrt(1 − a_t) eps, the net predicts eps, and the score of the
//! smoothed density is s(x_t) = −eps_hat / sqrt(1 − a_t).

use crate::nn::score_mlp::ScoreMlp;
use crate::preset::{NoiseSchedule, ScoreSettings};
use crate::tensor_util::{from_rows, normal};
use burn::tensor::{Device, Tensor};
use rand::RngExt;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;

#[derive(Debug, Clone)]
pub struct Schedule {
    /// a_i for i = 0..n (a_0 ≈ 1, a_{n−1} ≈ 0).
    pub alpha_bar: Vec<f64>,
}

impl Schedule {
    /// a_i = (cos(π i/(n−1))·(1 − 2e−3) + 1) / 2.
    pub fn cosine(n: usize) -> Self {
        let last = (n - 1) as f64;
        let alpha_bar = (0..n)
            .map(|i| ((std::f64::consts::PI * i as f64 / last).cos() * (1.0 - 2e-3) + 1.0) / 2.0)
            .collect();
        Self { alpha_bar }
    }

    /// beta linear from `b0` to `b1` over `n` steps, a_i = Π_{j ≤ i} (1 − beta_j): the
    /// image reference (100 steps, 1e-4 → 0.1 puts step 10 at a ≈ 0.945).
    pub fn linear(n: usize, b0: f64, b1: f64) -> Self {
        let last = (n - 1).max(1) as f64;
        let mut a = 1.0;
        let alpha_bar = (0..n)
            .map(|i| {
                a *= 1.0 - (b0 + (b1 - b0) * i as f64 / last);
                a
            })
            .collect();
        Self { alpha_bar }
    }

    /// The schedule a preset's score settings ask for.
    pub fn from_settings(s: &ScoreSettings) -> Self {
        match s.schedule {
            NoiseSchedule::Cosine => Self::cosine(s.diffusion_steps),
            NoiseSchedule::Linear => Self::linear(s.diffusion_steps, s.beta_start, s.beta_end),
        }
    }

    pub fn len(&self) -> usize {
        self.alpha_bar.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alpha_bar.is_empty()
    }

    /// The network's time input 2t − 1 with t = i/(n−1).
    pub fn t_input(&self, i: usize) -> f32 {
        (2.0 * i as f64 / (self.len() - 1) as f64 - 1.0) as f32
    }

    /// Noise std sqrt(1 − a_i) at step i.
    pub fn sigma(&self, i: usize) -> f64 {
        (1.0 - self.alpha_bar[i]).sqrt()
    }
}

/// Per-point noise levels `[B, 1]` for a batch: sqrt(a), sqrt(1 − a), and the time input.
fn levels(steps: &[usize], sched: &Schedule, device: &Device) -> [Tensor<2>; 3] {
    let sa: Vec<f32> = steps
        .iter()
        .map(|&i| sched.alpha_bar[i].sqrt() as f32)
        .collect();
    let sb: Vec<f32> = steps.iter().map(|&i| sched.sigma(i) as f32).collect();
    let ti: Vec<f32> = steps.iter().map(|&i| sched.t_input(i)).collect();
    [sa, sb, ti].map(|v| from_rows(&v, 1, device))
}

/// The same levels for all `b` points, at one step.
fn fixed_level(b: usize, sched: &Schedule, step: usize, device: &Device) -> [Tensor<2>; 3] {
    levels(&vec![step; b], sched, device)
}

/// One batch of the denoising loss, on the host: clean rows `x0` noised at uniformly drawn
/// steps. Both score trainers (burn's and the host's) draw through here, so they take the
/// same levels and noise from the job's generator.
pub struct DsmBatch {
    /// x_t = sqrt(ā) x0 + sqrt(1 − ā) eps, rows of `dim`.
    pub xt: Vec<f32>,
    /// The network's time input per row.
    pub t_in: Vec<f32>,
    pub eps: Vec<f32>,
}

pub fn dsm_batch(x0: &[f32], dim: usize, sched: &Schedule, rng: &mut StdRng) -> DsmBatch {
    let b = x0.len() / dim;
    let steps: Vec<usize> = (0..b).map(|_| rng.random_range(0..sched.len())).collect();
    let eps: Vec<f32> = (0..b * dim).map(|_| rng.sample(StandardNormal)).collect();
    let mut xt = vec![0f32; b * dim];
    let mut t_in = vec![0f32; b];
    for (r, &k) in steps.iter().enumerate() {
        let (sa, sb) = (sched.alpha_bar[k].sqrt() as f32, sched.sigma(k) as f32);
        t_in[r] = sched.t_input(k);
        for i in r * dim..(r + 1) * dim {
            xt[i] = x0[i] * sa + eps[i] * sb;
        }
    }
    DsmBatch { xt, t_in, eps }
}

/// The denoising loss mean ‖out − target‖² (target eps or x0) at uniformly drawn steps, for
/// clean rows `x0`.
pub fn dsm_loss(model: &ScoreMlp, x0: &[f32], sched: &Schedule, rng: &mut StdRng) -> Tensor<1> {
    let device = model.l1.weight.device();
    let dim = model.dim();
    let DsmBatch { xt, t_in, eps } = dsm_batch(x0, dim, sched, rng);
    let target = if model.predicts_x0 { x0 } else { &eps };
    let out = model.forward(from_rows(&xt, dim, &device), from_rows(&t_in, 1, &device));
    (out - from_rows(target, dim, &device)).square().mean()
}

/// The score s(x) of the data density smoothed to noise level `step`.
pub fn score(model: &ScoreMlp, x: Tensor<2>, sched: &Schedule, step: usize) -> Tensor<2> {
    let device = x.device();
    let [b, _] = x.dims();
    let [sa, sb, ti] = fixed_level(b, sched, step, &device);
    model.eps_hat(x, ti, sa, sb).div_scalar(-sched.sigma(step))
}

/// Noise clean data `x0` (points or images) to level `step`: the states the flow works on.
pub fn noised<const D: usize>(
    x0: Tensor<D>,
    sched: &Schedule,
    step: usize,
    rng: &mut StdRng,
) -> Tensor<D> {
    let eps = normal(x0.dims(), rng, &x0.device());
    x0.mul_scalar(sched.alpha_bar[step].sqrt()) + eps.mul_scalar(sched.sigma(step))
}

/// Draw `n` samples by ancestral (DDPM) reverse diffusion from pure noise.
pub fn sample(
    model: &ScoreMlp,
    n: usize,
    sched: &Schedule,
    device: &Device,
    rng: &mut StdRng,
) -> Tensor<2> {
    let x = normal([n, model.dim()], rng, device);
    ancestral(x, sched, rng, |x, i| {
        let [sa, sb, ti] = fixed_level(n, sched, i, device);
        model.eps_hat(x, ti, sa, sb)
    })
}

/// Ancestral (DDPM) reverse diffusion from noise `x` at the last level down to the
/// posterior mean of x0, for any model given as its noise prediction `eps_hat(x, step)`.
pub fn ancestral<const D: usize>(
    mut x: Tensor<D>,
    sched: &Schedule,
    rng: &mut StdRng,
    eps_hat: impl Fn(Tensor<D>, usize) -> Tensor<D>,
) -> Tensor<D> {
    let last = sched.len() - 1;
    for i in (1..=last).rev() {
        let a = sched.alpha_bar[i];
        let a_prev = sched.alpha_bar[i - 1];
        let alpha = a / a_prev;
        let beta = 1.0 - alpha;
        let e = eps_hat(x.clone(), i);
        let mean = (x - e.mul_scalar(beta / (1.0 - a).sqrt())).div_scalar(alpha.sqrt());
        let var = beta * (1.0 - a_prev) / (1.0 - a);
        let z = normal(mean.dims(), rng, &mean.device());
        x = mean + z.mul_scalar(var.sqrt());
    }
    // Last step: the posterior mean of x0 given x at level 0.
    let e = eps_hat(x.clone(), 0);
    (x - e.mul_scalar(sched.sigma(0))).div_scalar(sched.alpha_bar[0].sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_matches_the_reference_levels() {
        let s = Schedule::cosine(100);
        assert!((s.alpha_bar[0] - 0.999).abs() < 1e-6);
        assert!((s.alpha_bar[99] - 0.001).abs() < 1e-6);
        // tau for 2-D: step 9 → a ≈ 0.979, sigma ≈ 0.15.
        assert!((s.alpha_bar[9] - 0.979).abs() < 1e-3);
        assert!((s.sigma(9) - 0.146).abs() < 2e-3);
        assert!(s.alpha_bar.windows(2).all(|w| w[1] < w[0]));
    }

    #[test]
    fn linear_schedule_matches_the_image_reference() {
        let s = Schedule::linear(100, 1e-4, 0.1);
        // tau for images: step 10 → a ≈ 0.945, sigma ≈ 0.235.
        assert!(
            (s.alpha_bar[10] - 0.945).abs() < 2e-3,
            "{}",
            s.alpha_bar[10]
        );
        assert!((s.sigma(10) - 0.235).abs() < 3e-3);
        assert!(s.alpha_bar[99] < 1e-2);
        assert!(s.alpha_bar.windows(2).all(|w| w[1] < w[0]));
    }
}
