//! DDPM on images (METHOD §2): the UNet's raw output (eps, x0 or v) turned into the noise
//! prediction, the score at the fixed level tau, and the denoised image (Tweedie).
//! With x_t = sa·x0 + sb·eps and v = sa·eps − sb·x0:  eps = sb·x_t + sa·v,  x0 = sa·x_t − sb·v.

use super::diffusion::{Schedule, ancestral};
use crate::nn::score_unet::ScoreUnet;
use crate::preset::Prediction;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use rand::RngExt;
use rand::rngs::StdRng;

/// Per-image `[B, 1, 1, 1]` factors from host values.
fn per_image(v: Vec<f32>, device: &Device) -> Tensor<4> {
    let b = v.len();
    Tensor::from_data(TensorData::new(v, [b, 1, 1, 1]), device)
}

/// The denoising loss at uniformly drawn steps: mean ‖out − target‖², target as the model
/// predicts.
pub fn dsm_loss(model: &ScoreUnet, x0: Tensor<4>, sched: &Schedule, rng: &mut StdRng) -> Tensor<1> {
    let device = x0.device();
    let b = x0.dims()[0];
    let steps: Vec<usize> = (0..b).map(|_| rng.random_range(0..sched.len())).collect();
    let sa_v: Vec<f32> = steps
        .iter()
        .map(|&i| sched.alpha_bar[i].sqrt() as f32)
        .collect();
    let sb_v: Vec<f32> = steps.iter().map(|&i| sched.sigma(i) as f32).collect();
    let t_in: Vec<f32> = steps.iter().map(|&i| sched.t_input(i)).collect();
    let (sa, sb) = (per_image(sa_v, &device), per_image(sb_v, &device));
    let eps = Tensor::<4>::random(x0.shape(), Distribution::Normal(0.0, 1.0), &device);
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

/// The score s(x) = −eps_hat / sigma of the data smoothed to level `step`.
pub fn score(model: &ScoreUnet, x: Tensor<4>, sched: &Schedule, step: usize) -> Tensor<4> {
    eps_hat(model, x, sched, step).div_scalar(-sched.sigma(step))
}

/// The denoised image from the state `x` at level `step` and its score `s` (Tweedie):
/// x0 = (x + (1 − a) s) / sqrt(a).
pub fn denoised(x: Tensor<4>, s: Tensor<4>, sched: &Schedule, step: usize) -> Tensor<4> {
    let a = sched.alpha_bar[step];
    (x + s.mul_scalar(1.0 - a)).div_scalar(a.sqrt())
}

/// `n` images of `h`×`w` drawn by reverse diffusion.
pub fn sample(model: &ScoreUnet, n: usize, h: usize, w: usize, sched: &Schedule) -> Tensor<4> {
    let device = model.device();
    let c = model.channels();
    let x = Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &device);
    ancestral(x, sched, |x, i| eps_hat(model, x, sched, i))
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
}
