//! DDPM on images (METHOD §2): the UNet's raw output (eps, x0 or v) turned into the noise
//! prediction, the score at the fixed level tau, and the denoised image (Tweedie).
//! With x_t = sa·x0 + sb·eps and v = sa·eps − sb·x0:  eps = sb·x_t + sa·v,  x0 = sa·x_t − sb·v.

use super::diffusion::{Schedule, ancestral};
use crate::nn::score_unet::ScoreUnet;
use crate::preset::{Levels, Prediction, ScoreSettings};
use burn::tensor::{Device, Tensor, TensorData};
use rand::RngExt;
use rand::rngs::StdRng;

/// Which diffusion steps a training batch is drawn at (`score.levels`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepDraw {
    pub levels: Levels,
    pub tau: usize,
    pub tau_share: f64,
}

impl StepDraw {
    pub fn from_settings(s: &ScoreSettings) -> Self {
        Self {
            levels: s.levels,
            tau: s.tau_step,
            tau_share: s.tau_share,
        }
    }

    /// `b` steps of a schedule with `n` steps.
    pub fn draw(&self, b: usize, n: usize, rng: &mut StdRng) -> Vec<usize> {
        (0..b)
            .map(|_| match self.levels {
                Levels::All => rng.random_range(0..n),
                Levels::Tau => self.tau,
                Levels::Mix if rng.random::<f64>() < self.tau_share => self.tau,
                Levels::Mix => rng.random_range(0..n),
            })
            .collect()
    }
}

/// Per-image `[B, 1, 1, 1]` factors from host values.
fn per_image(v: Vec<f32>, device: &Device) -> Tensor<4> {
    let b = v.len();
    Tensor::from_data(TensorData::new(v, [b, 1, 1, 1]), device)
}

/// The denoising loss at steps drawn by `draw`: mean ‖out − target‖², target as the model
/// predicts. The noise comes from `rng` (host side), so a run's losses depend on its seed
/// alone, never on what else drew from burn's process-wide generator.
pub fn dsm_loss(
    model: &ScoreUnet,
    x0: Tensor<4>,
    sched: &Schedule,
    draw: &StepDraw,
    rng: &mut StdRng,
) -> Tensor<1> {
    let device = x0.device();
    let b = x0.dims()[0];
    let steps = draw.draw(b, sched.len(), rng);
    let sa_v: Vec<f32> = steps
        .iter()
        .map(|&i| sched.alpha_bar[i].sqrt() as f32)
        .collect();
    let sb_v: Vec<f32> = steps.iter().map(|&i| sched.sigma(i) as f32).collect();
    let t_in: Vec<f32> = steps.iter().map(|&i| sched.t_input(i)).collect();
    let (sa, sb) = (per_image(sa_v, &device), per_image(sb_v, &device));
    let shape = x0.dims();
    let eps = crate::tensor_util::normal(shape, rng, &device);
    let xt = x0.clone() * sa.clone() + eps.clone() * sb.clone();
    let target = match model.prediction() {
        Prediction::Eps => eps,
        Prediction::X0 => x0,
        Prediction::V => eps * sa - x0 * sb,
    };
    (model.forward(xt, &t_in) - target).square().mean()
}

/// The predicted noise of images `x` all at level `step`.
pub fn eps_hat(model: &ScoreUnet, x: Tensor<4>, sched: &Schedule, step: usize) -> Tensor<4> {
    let b = x.dims()[0];
    let out = model.forward(x.clone(), &vec![sched.t_input(step); b]);
    let (sa, sb) = (sched.alpha_bar[step].sqrt(), sched.sigma(step));
    match model.prediction() {
        Prediction::Eps => out,
        Prediction::X0 => (x - out.mul_scalar(sa)).div_scalar(sb),
        Prediction::V => x.mul_scalar(sb) + out.mul_scalar(sa),
    }
}

/// The score s(x) = −eps_hat / sigma of the data smoothed to level `step`. With `clip_x0`
/// (the reference) the denoised x̂0 = (x − sigma·eps_hat)/√a is clamped to the data's range
/// [-1, 1] first and the score formed from it: s = (√a·x̂0 − x)/(1 − a).
pub fn score(
    model: &ScoreUnet,
    x: Tensor<4>,
    sched: &Schedule,
    step: usize,
    clip_x0: bool,
) -> Tensor<4> {
    let eps = eps_hat(model, x.clone(), sched, step);
    let sigma = sched.sigma(step);
    if !clip_x0 {
        return eps.div_scalar(-sigma);
    }
    clipped_score(x, eps, sched.alpha_bar[step])
}

/// The score from a noise prediction with the denoised image clamped to [-1, 1].
fn clipped_score(x: Tensor<4>, eps: Tensor<4>, a: f64) -> Tensor<4> {
    let (sa, var) = (a.sqrt(), 1.0 - a);
    let x0 = (x.clone() - eps.mul_scalar(var.sqrt()))
        .div_scalar(sa)
        .clamp(-1.0, 1.0);
    (x0.mul_scalar(sa) - x).div_scalar(var)
}

/// The denoised image from the state `x` at level `step` and its score `s` (Tweedie):
/// x0 = (x + (1 − a) s) / sqrt(a).
pub fn denoised(x: Tensor<4>, s: Tensor<4>, sched: &Schedule, step: usize) -> Tensor<4> {
    let a = sched.alpha_bar[step];
    (x + s.mul_scalar(1.0 - a)).div_scalar(a.sqrt())
}

/// `n` images of `h`×`w` drawn by reverse diffusion.
pub fn sample(
    model: &ScoreUnet,
    n: usize,
    [h, w]: [usize; 2],
    sched: &Schedule,
    rng: &mut StdRng,
) -> Tensor<4> {
    let device = model.device();
    let c = model.channels();
    let x = crate::tensor_util::normal([n, c, h, w], rng, &device);
    ancestral(x, sched, rng, |x, i| eps_hat(model, x, sched, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::to_vec;

    /// The three parameterisations are the same model read three ways: a net whose output
    /// is exactly the target gives the same noise back in each.
    #[test]
    fn conversions_agree_with_the_forward_process() {
        let sched = Schedule::linear(100, 1e-4, 0.1);
        let step = 10;
        let (sa, sb) = (
            sched.alpha_bar[step].sqrt() as f32,
            sched.sigma(step) as f32,
        );
        let (x0, eps) = (0.3f32, -1.2f32);
        let xt = sa * x0 + sb * eps;
        let v = sa * eps - sb * x0;
        assert!((sb * xt + sa * v - eps).abs() < 1e-6);
        assert!((sa * xt - sb * v - x0).abs() < 1e-6);
        // Tweedie with the exact score of a point mass at x0 returns x0.
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let x = Tensor::<4>::full([1, 1, 1, 1], xt, &device);
        let s = Tensor::<4>::full([1, 1, 1, 1], -eps / sb, &device);
        let back = to_vec(denoised(x, s, &sched, step))[0];
        assert!((back - x0).abs() < 1e-5, "{back}");
    }

    /// With the clamp, Tweedie's x̂0 from the score never leaves [-1, 1], and inside the
    /// range the clamp changes nothing.
    #[test]
    fn the_clamp_keeps_the_denoised_image_in_range_and_only_there() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let sched = Schedule::linear(100, 1e-4, 0.1);
        let step = 10;
        let a = sched.alpha_bar[step];
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![3.0f32, -2.5, 0.2, 0.9], [1, 1, 2, 2]),
            &device,
        );
        let eps = Tensor::<4>::from_data(
            TensorData::new(vec![-1.0f32, 1.0, 0.1, -0.3], [1, 1, 2, 2]),
            &device,
        );
        let plain = eps.clone().div_scalar(-sched.sigma(step));
        let clipped = clipped_score(x.clone(), eps, a);
        let back = to_vec(denoised(x.clone(), clipped.clone(), &sched, step));
        let unclipped = to_vec(denoised(x, plain.clone(), &sched, step));
        assert!(unclipped[0] > 1.5 && unclipped[1] < -1.5, "{unclipped:?}");
        assert!(
            (back[0] - 1.0).abs() < 1e-5 && (back[1] + 1.0).abs() < 1e-5,
            "{back:?}"
        );
        let (p, c) = (to_vec(plain), to_vec(clipped));
        for i in 2..4 {
            assert!((back[i] - unclipped[i]).abs() < 1e-5);
            assert!((p[i] - c[i]).abs() < 1e-3, "{} vs {}", p[i], c[i]);
        }
    }

    #[test]
    fn tau_levels_only_ever_draw_tau_and_mix_draws_its_share() {
        use rand::SeedableRng;
        let mut rng = StdRng::seed_from_u64(3);
        let mut d = StepDraw {
            levels: Levels::Tau,
            tau: 10,
            tau_share: 0.5,
        };
        assert!(d.draw(5000, 100, &mut rng).iter().all(|&s| s == 10));
        d.levels = Levels::All;
        let all = d.draw(5000, 100, &mut rng);
        let at_tau = all.iter().filter(|&&s| s == 10).count();
        assert!(at_tau < 100, "{at_tau} of 5000 at tau when uniform");
        assert!(all.contains(&99) && all.contains(&0));
        d.levels = Levels::Mix;
        d.tau_share = 0.7;
        let mix = d.draw(5000, 100, &mut rng);
        let share = mix.iter().filter(|&&s| s == 10).count() as f64 / 5000.0;
        assert!((share - 0.703).abs() < 0.03, "share at tau {share}");
    }
}
