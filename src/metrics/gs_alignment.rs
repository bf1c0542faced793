//! Agreement of a learned image flow with the true Gray–Scott dynamics (METHOD §7).
//!
//! Protocol, per held-out start pattern x0 (scaled to [-1, 1]):
//! - truth: run the Gray–Scott stencil `gs_steps` (20) steps from x0; the true displacement
//!   is the result minus x0 (in the same scaled units);
//! - learned: noise x0 to the score's level tau, run `sde_steps` (200) Heun steps of
//!   dx = (v + eta s) dt + sqrt(2 eta dt) dW, keep an EMA of the denoised state x0_hat, and
//!   take the final EMA minus the EMA of the same run with v = 0 (pure Langevin, same noise).
//!   Subtracting the v = 0 run removes what the denoiser and the Langevin terms do on their
//!   own (smoothing, bias), so what is compared is the motion that v causes;
//! - |cos| between the two displacements over all pixels and both channels, averaged over
//!   the starts. Absolute, because −v keeps p as well (the kernel's sign is a free choice).

use super::alignment::abs_cosine;
use crate::data::gray_scott::{self, Grid, Params};
use crate::data::turing::ImageSet;
use crate::method::diffusion::{self, Schedule};
use crate::method::image_diffusion::{self, denoised};
use crate::nn::score_unet::ScoreUnet;
use crate::sim::sde::{Ema, Sde, State};
use crate::tensor_util::to_vec;
use burn::tensor::{Tensor, TensorData};

/// How the learned displacement is simulated.
#[derive(Debug, Clone, Copy)]
pub struct Protocol {
    pub sde: Sde,
    pub ema: f64,
    pub sde_steps: usize,
    pub gs_steps: usize,
    pub tau: usize,
    /// Clamp x̂0 to [-1, 1] in the score (`sde.clip_x0`).
    pub clip_x0: bool,
}

impl Protocol {
    /// The preset's simulation and `eval.cos_*` settings.
    pub fn from_preset(p: &crate::preset::Preset) -> Self {
        Self {
            sde: Sde {
                eta: p.sde.eta,
                dt: p.sde.dt,
            },
            ema: p.sde.ema,
            sde_steps: p.eval.cos_sde_steps,
            gs_steps: p.eval.cos_gs_steps,
            tau: p.score.tau_step,
            clip_x0: p.sde.clip_x0,
        }
    }
}

/// The true displacements `[n, 2, H, W]` of the starts after `gs_steps` simulator steps.
pub fn true_displacement(starts: &ImageSet, params: &Params, gs_steps: usize) -> Vec<f32> {
    let (h, w) = (starts.h, starts.w);
    let mut grids: Vec<Grid> = (0..starts.n)
        .map(|i| Grid::from_scaled(starts.image(i), h, w))
        .collect();
    gray_scott::run_batch(params, &mut grids, gs_steps);
    grids
        .iter()
        .enumerate()
        .flat_map(|(i, g)| {
            let start = starts.image(i);
            g.to_scaled()
                .into_iter()
                .zip(start)
                .map(|(a, b)| a - b)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A velocity field `v(x, s)` for the SDE.
pub type Field<'a> = &'a dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>;

/// The learned displacement of the starts under the flow `v(s)` (see the module doc).
/// `tick(done, total)` is called before each SDE step and returns false to cancel (then the
/// result is None).
pub fn learned_displacement(
    model: &ScoreUnet,
    sched: &Schedule,
    starts: &ImageSet,
    v: Field,
    p: &Protocol,
    tick: &mut dyn FnMut(usize, usize) -> bool,
) -> Option<Vec<f32>> {
    learned_displacements(model, sched, starts, &[v], p, tick)?.pop()
}

/// [`learned_displacement`] for several fields. Every run starts from the same noised
/// starts with the same noise draws, so the v = 0 run they are all measured against is
/// simulated once and shared (n fields cost n + 1 runs, not 2n).
pub fn learned_displacements(
    model: &ScoreUnet,
    sched: &Schedule,
    starts: &ImageSet,
    fields: &[Field],
    p: &Protocol,
    tick: &mut dyn FnMut(usize, usize) -> bool,
) -> Option<Vec<Vec<f32>>> {
    let device = model.device();
    let x0 = Tensor::<4>::from_data(
        TensorData::new(
            starts.data.clone(),
            [starts.n, starts.channels, starts.h, starts.w],
        ),
        &device,
    );
    let score = |x: Tensor<4>| image_diffusion::score(model, x, sched, p.tau, p.clip_x0);
    let zero = |_x: Tensor<4>, s: Tensor<4>| s.zeros_like();
    // Every run: same seed, same noise sequence.
    let seed = 0x5DE_0001;
    let total = (fields.len() + 1) * p.sde_steps;
    let mut ends = Vec::new();
    for (run, field) in std::iter::once(&zero as Field)
        .chain(fields.iter().copied())
        .enumerate()
    {
        device.seed(seed);
        let x = diffusion::noised(x0.clone(), sched, p.tau);
        let mut st: State = Sde::start(x, &score);
        let mut ema = Ema {
            value: denoised(st.x.clone(), st.s.clone(), sched, p.tau),
            w: p.ema,
        };
        for k in 0..p.sde_steps {
            if !tick(run * p.sde_steps + k, total) {
                return None;
            }
            st = p.sde.step(st, &score, field);
            ema.update(denoised(st.x.clone(), st.s.clone(), sched, p.tau));
        }
        ends.push(ema.value);
    }
    let base = ends.remove(0);
    Some(
        ends.into_iter()
            .map(|moved| to_vec(moved - base.clone()))
            .collect(),
    )
}

/// Mean and sample standard deviation (0 for fewer than two values).
pub fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n.max(1.0);
    if xs.len() < 2 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Mean over images of |cos| between two stacks of per-image fields.
pub fn mean_abs_cos(a: &[f32], b: &[f32], n: usize) -> f64 {
    let len = a.len() / n.max(1);
    (0..n)
        .map(|i| abs_cosine(&a[i * len..(i + 1) * len], &b[i * len..(i + 1) * len]))
        .sum::<f64>()
        / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_displacement_is_zero_at_rest_and_mean_cos_averages() {
        let rest = Grid::rest(8, 8).to_scaled();
        let set = ImageSet {
            n: 1,
            channels: 2,
            h: 8,
            w: 8,
            data: rest,
        };
        let d = true_displacement(&set, &gray_scott::preset("maze").unwrap(), 20);
        assert!(d.iter().all(|&x| x == 0.0));
        let a = [1.0f32, 0.0, 1.0, 0.0];
        let b = [1.0f32, 0.0, 0.0, 1.0];
        assert!((mean_abs_cos(&a, &b, 2) - 0.5).abs() < 1e-12);
        assert_eq!(mean_sd(&[1.0, 3.0]), (2.0, 2f64.sqrt()));
        assert_eq!(mean_sd(&[0.5]), (0.5, 0.0));
    }
}
