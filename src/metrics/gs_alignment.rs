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

/// The learned displacements of the starts under each flow `v(x, s)` of `fields` (see the
/// module doc). Every run starts from the same noised starts with the same noise draws, so
/// the v = 0 run they are all measured against is simulated once and shared (n fields cost
/// n + 1 runs, not 2n). `tick(done, total)` is called before each SDE step and returns false
/// to cancel (then the result is None).
pub fn learned_displacements(
    model: &ScoreUnet,
    sched: &Schedule,
    starts: &ImageSet,
    fields: &[Field],
    p: &Protocol,
    tick: &mut dyn FnMut(usize, usize) -> bool,
) -> Option<Vec<Vec<f32>>> {
    let total = (fields.len() + 1) * p.sde_steps;
    let base = still_end(model, sched, starts, p, &mut |k| tick(k, total))?;
    let mut out = Vec::with_capacity(fields.len());
    for (i, v) in fields.iter().enumerate() {
        let offset = (i + 1) * p.sde_steps;
        let mut step = |k: usize| tick(offset + k, total);
        out.push(displacement_from(
            model, sched, starts, *v, &base, p, &mut step,
        )?);
    }
    Some(out)
}

/// The end of the v = 0 run (the EMA of the denoised state), which every displacement is
/// measured from: keep it to measure more fields later at the cost of one run each.
/// `tick(step)` returns false to cancel.
pub fn still_end(
    model: &ScoreUnet,
    sched: &Schedule,
    starts: &ImageSet,
    p: &Protocol,
    tick: &mut dyn FnMut(usize) -> bool,
) -> Option<Tensor<4>> {
    let zero = |_x: Tensor<4>, s: Tensor<4>| s.zeros_like();
    ema_end(model, sched, starts, &zero, p, tick)
}

/// The displacement under `v` measured from [`still_end`]'s `base`.
pub fn displacement_from(
    model: &ScoreUnet,
    sched: &Schedule,
    starts: &ImageSet,
    v: Field,
    base: &Tensor<4>,
    p: &Protocol,
    tick: &mut dyn FnMut(usize) -> bool,
) -> Option<Vec<f32>> {
    let moved = ema_end(model, sched, starts, v, p, tick)?;
    Some(to_vec(moved - base.clone()))
}

/// One run of the protocol: the starts noised to τ, `sde_steps` Heun steps under `v`, the
/// final EMA of the denoised state. Every run draws from its own generator with one fixed
/// seed, so all runs share the start and every noise draw.
fn ema_end(
    model: &ScoreUnet,
    sched: &Schedule,
    starts: &ImageSet,
    v: Field,
    p: &Protocol,
    tick: &mut dyn FnMut(usize) -> bool,
) -> Option<Tensor<4>> {
    let x0 = starts_tensor(starts, &model.device());
    let score = |x: Tensor<4>| image_diffusion::score(model, x, sched, p.tau, p.clip_x0);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0x5DE_0001);
    let x = diffusion::noised(x0, sched, p.tau, &mut rng);
    let mut st: State = Sde::start(x, &score);
    let mut ema = Ema {
        value: denoised(st.x.clone(), st.s.clone(), sched, p.tau),
        w: p.ema,
    };
    for k in 0..p.sde_steps {
        if !tick(k) {
            return None;
        }
        st = p.sde.step(st, &score, v, &mut rng);
        ema.update(denoised(st.x.clone(), st.s.clone(), sched, p.tau));
    }
    Some(ema.value)
}

/// The paper's Turing protocol (METHOD §7), measured beside ours: the SDE starts from the
/// clean snapshot (not noised to τ), runs with dt 0.01 and η 0.1 whatever the preset says,
/// keeps an EMA (decay 0.9) of the raw state over steps 0…199, and the displacement is
/// that EMA minus the start, with no v = 0 run subtracted. The paper runs 300 steps; the
/// ones after 199 do not enter the EMA, so they are not simulated.
#[derive(Debug, Clone, Copy)]
pub struct Reference {
    pub tau: usize,
    pub clip_x0: bool,
}

impl Reference {
    pub const SDE: Sde = Sde { eta: 0.1, dt: 0.01 };
    /// The EMA's weight of each new state (decay 0.9).
    pub const EMA_W: f64 = 0.1;
    /// States 0…199 enter the EMA: 199 SDE steps after the start.
    pub const SDE_STEPS: usize = 199;

    pub fn from_preset(p: &crate::preset::Preset) -> Self {
        Self {
            tau: p.score.tau_step,
            clip_x0: p.sde.clip_x0,
        }
    }
}

/// The displacements of the starts under each flow of `fields` by the paper's protocol
/// ([`Reference`]). Every run draws the same noise (one fixed seed), so fields differ only
/// by their flow. `tick(done, total)` returns false to cancel.
pub fn reference_displacements(
    model: &ScoreUnet,
    sched: &Schedule,
    starts: &ImageSet,
    fields: &[Field],
    p: &Reference,
    tick: &mut dyn FnMut(usize, usize) -> bool,
) -> Option<Vec<Vec<f32>>> {
    let score = |x: Tensor<4>| image_diffusion::score(model, x, sched, p.tau, p.clip_x0);
    reference_runs(&score, &model.device(), starts, fields, tick)
}

/// [`reference_displacements`] for any score function.
fn reference_runs(
    score: &dyn Fn(Tensor<4>) -> Tensor<4>,
    device: &burn::tensor::Device,
    starts: &ImageSet,
    fields: &[Field],
    tick: &mut dyn FnMut(usize, usize) -> bool,
) -> Option<Vec<Vec<f32>>> {
    let steps = Reference::SDE_STEPS;
    let total = fields.len() * steps;
    let x0 = starts_tensor(starts, device);
    let mut out = Vec::with_capacity(fields.len());
    for (i, v) in fields.iter().enumerate() {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0x5DE_0002);
        let mut st: State = Sde::start(x0.clone(), score);
        let mut ema = Ema {
            value: x0.clone(),
            w: Reference::EMA_W,
        };
        for k in 0..steps {
            if !tick(i * steps + k, total) {
                return None;
            }
            st = Reference::SDE.step(st, score, *v, &mut rng);
            ema.update(st.x.clone());
        }
        out.push(to_vec(ema.value - x0.clone()));
    }
    Some(out)
}

/// The start images as one `[n, c, h, w]` tensor.
fn starts_tensor(starts: &ImageSet, device: &burn::tensor::Device) -> Tensor<4> {
    Tensor::<4>::from_data(
        TensorData::new(
            starts.data.clone(),
            [starts.n, starts.channels, starts.h, starts.w],
        ),
        device,
    )
}

/// |cos| between two stacks of per-image fields, image by image.
pub fn abs_cos_per_image(a: &[f32], b: &[f32], n: usize) -> Vec<f64> {
    let len = a.len() / n.max(1);
    (0..n)
        .map(|i| abs_cosine(&a[i * len..(i + 1) * len], &b[i * len..(i + 1) * len]))
        .collect()
}

/// Mean and sample standard deviation (0 for fewer than two values; both 0 for none).
pub fn mean_sd(xs: &[f64]) -> (f64, f64) {
    super::consistency::Stats::of(xs).map_or((0.0, 0.0), |s| (s.mean, s.sd))
}

/// Mean over images of |cos| between two stacks of per-image fields.
pub fn mean_abs_cos(a: &[f32], b: &[f32], n: usize) -> f64 {
    abs_cos_per_image(a, b, n).iter().sum::<f64>() / n.max(1) as f64
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
        let d = true_displacement(&set, &gray_scott::Regime::Maze.params(), 20);
        assert!(d.iter().all(|&x| x == 0.0));
        let a = [1.0f32, 0.0, 1.0, 0.0];
        let b = [1.0f32, 0.0, 0.0, 1.0];
        assert!((mean_abs_cos(&a, &b, 2) - 0.5).abs() < 1e-12);
        assert_eq!(mean_sd(&[1.0, 3.0]), (2.0, 2f64.sqrt()));
        assert_eq!(mean_sd(&[0.5]), (0.5, 0.0));
    }

    /// The paper's protocol on a field whose answer is known: with no score and a constant
    /// flow c, the state drifts by c·dt per step plus noise, so EMA − start (decay 0.9 over
    /// states 0…199 from the clean start) has mean c·dt·Σₖ 0.1·0.9^(199−k)·k ≈ c·dt·190.
    /// A protocol that noised the start, subtracted a still run, used another dt or decay,
    /// or averaged x̂0 would miss it.
    #[test]
    fn the_reference_protocol_averages_the_raw_state_from_the_clean_start() {
        let device = burn::tensor::Device::flex();
        let starts = ImageSet {
            n: 2,
            channels: 2,
            h: 16,
            w: 16,
            data: (0..2 * 2 * 256)
                .map(|i| (i % 7) as f32 / 7.0 - 0.5)
                .collect(),
        };
        let no_score = |x: Tensor<4>| x.zeros_like();
        let drift = |_x: Tensor<4>, s: Tensor<4>| s.ones_like();
        let still = |_x: Tensor<4>, s: Tensor<4>| s.zeros_like();
        let mut ticks = 0;
        let d = reference_runs(
            &no_score,
            &device,
            &starts,
            &[&drift, &still],
            &mut |_, t| {
                ticks += 1;
                assert_eq!(t, 2 * Reference::SDE_STEPS);
                true
            },
        )
        .unwrap();
        assert_eq!(ticks, 2 * 199);
        let n = Reference::SDE_STEPS;
        let lag: f64 = (1..=n)
            .map(|k| 0.1 * 0.9f64.powi((n - k) as i32) * k as f64)
            .sum();
        let expected = 0.01 * lag;
        let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        // Noise: per pixel the EMA of a random walk of step sd √(2·0.1·0.01) has sd ≈ 0.6;
        // over 1024 pixels the mean's sd is ≈ 0.02.
        assert!(
            (mean(&d[0]) - expected).abs() < 0.1,
            "drift {} vs {expected}",
            mean(&d[0])
        );
        assert!(mean(&d[1]).abs() < 0.1, "no drift: {}", mean(&d[1]));
        // Both runs drew the same noise: their difference is the drift alone.
        let diff: Vec<f64> = d[0]
            .iter()
            .zip(&d[1])
            .map(|(a, b)| (a - b) as f64)
            .collect();
        assert!(diff.iter().all(|x| (x - expected).abs() < 1e-4));
        // A cancel stops it.
        let cancelled = reference_runs(&no_score, &device, &starts, &[&still], &mut |k, _| k < 3);
        assert!(cancelled.is_none());
    }

    #[test]
    fn fields_measured_together_share_the_still_run_and_match_measured_alone() {
        use crate::preset::ScoreSettings;
        let _rng = crate::tensor_util::rng_lock();
        let device = burn::tensor::Device::flex();
        let settings = ScoreSettings {
            channels: vec![4, 6, 8],
            diffusion_steps: 20,
            ..Default::default()
        };
        let model = ScoreUnet::new(2, &settings, &device);
        let sched = Schedule::from_settings(&settings);
        let starts = ImageSet {
            n: 2,
            channels: 2,
            h: 8,
            w: 8,
            data: (0..2 * 2 * 64)
                .map(|i| ((i * 37) % 17) as f32 / 8.5 - 1.0)
                .collect(),
        };
        let p = Protocol {
            sde: Sde { eta: 0.1, dt: 0.05 },
            ema: 0.9,
            sde_steps: 5,
            gs_steps: 1,
            tau: 5,
            clip_x0: true,
        };
        let swap = |_x: Tensor<4>, s: Tensor<4>| s.flip([1]);
        let still = |_x: Tensor<4>, s: Tensor<4>| s.zeros_like();
        // burn initialises parameters lazily, drawing from the device's generator on first
        // use: a model never run before would spend the first run's noise on its weights.
        let _ = still_end(&model, &sched, &starts, &p, &mut |_| true);
        let mut ticks = 0;
        let both = learned_displacements(
            &model,
            &sched,
            &starts,
            &[&still, &swap],
            &p,
            &mut |_, t| {
                ticks += 1;
                assert_eq!(t, 15, "three runs of five steps");
                true
            },
        )
        .unwrap();
        assert_eq!(ticks, 15);
        assert!(both[0].iter().all(|&d| d == 0.0), "v = 0 moves nothing");
        assert!(both[1].iter().any(|&d| d != 0.0));
        // Each run reseeds: measured alone, after other draws, the same displacement.
        let _ = Tensor::<4>::random([4, 2, 8, 8], burn::tensor::Distribution::Default, &device);
        let alone =
            learned_displacements(&model, &sched, &starts, &[&swap], &p, &mut |_, _| true).unwrap();
        assert_eq!(alone[0], both[1]);
        // A cancel stops it.
        let cancelled =
            learned_displacements(&model, &sched, &starts, &[&swap], &p, &mut |d, _| d < 3);
        assert!(cancelled.is_none());
    }
}
