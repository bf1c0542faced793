//! The image pipeline for Turing patterns: Gray–Scott snapshots → UNet score model →
//! training-free skew flow → agreement with the true dynamics. Progress and cancel as in
//! `job`; the same `Observer`.

use super::job::{Lr, NonFiniteLoss, Observer, Phase, Progress, descend};
use super::nca;
use crate::backend::Backend;
use crate::data::image_files::{self, FileLoader};
use crate::data::tiler::{self, Tiling};
use crate::data::turing::{self, DataError, ImageSet};
use crate::method::diffusion::Schedule;
use crate::method::image_diffusion::{self, StepDraw, denoised};
use crate::method::image_flow::Velocity;
use crate::method::skew::{ImageKernel, Inks};
use crate::metrics::blob_motion::{self, Finder};
use crate::metrics::gs_alignment::{self, Protocol};
use crate::metrics::icon_fidelity::IconTemplates;
use crate::metrics::picture_look;
use crate::metrics::report::nullable;
use crate::nn::flow_nca::Nca;
use crate::nn::score_unet::ScoreUnet;
use crate::preset::{Preset, ScoreSettings, Source};
use crate::sim::sde::Sde;
use crate::tensor_util::{init_seeded, scalar};
use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// Held-out patterns come from their own seed stream, never from the training set.
const HELD_OUT: u64 = 0x4E1D_0007;

/// The UNet with its optimiser: one denoising step at a time (CLI and app worker alike).
pub struct ImageScoreTrainer {
    model: ScoreUnet,
    last_good: ScoreUnet,
    optim: ModuleOptimizer,
    lr: Lr,
    draw: StepDraw,
}

impl ImageScoreTrainer {
    /// The initial weights come from `seed`.
    pub fn new(
        channels: usize,
        s: &ScoreSettings,
        total_steps: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let make = || ScoreUnet::new(channels, s, device);
        let model = super::job::trainable(
            init_seeded(make, seed ^ super::job::SCORE_INIT, device),
            device,
        );
        Self {
            last_good: model.clone(),
            model,
            optim: AdamWConfig::new()
                .with_weight_decay(s.weight_decay as f32)
                .with_grad_clipping(s.grad_clip.map(|c| GradientClippingConfig::Norm(c as f32)))
                .init(),
            lr: Lr::new(s.lr, s.lr_schedule, total_steps).with_warmup(s.warmup),
            draw: StepDraw::from_settings(s),
        }
    }

    /// One step on clean images `x0` `[b, c, h, w]` (host values).
    pub fn step(
        &mut self,
        x0: Vec<f32>,
        shape: [usize; 4],
        sched: &Schedule,
        rng: &mut StdRng,
    ) -> Result<f64, NonFiniteLoss> {
        let x0 = Tensor::<4>::from_data(TensorData::new(x0, shape), &self.model.device());
        let loss = image_diffusion::dsm_loss(&self.model, x0, sched, &self.draw, rng);
        let lr = self.lr.next();
        descend(
            &mut self.model,
            &mut self.last_good,
            &mut self.optim,
            lr,
            loss,
        )
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.lr.base = lr;
    }

    pub fn model(&self) -> ScoreUnet {
        self.model.valid()
    }

    pub fn last_good(&self) -> ScoreUnet {
        self.last_good.valid()
    }
}

/// Simulate (or read from `cache`) the Gray–Scott snapshots, or tile the artificial-life
/// target, reporting it as the data phase.
pub fn dataset(
    preset: &Preset,
    cache: Option<&Path>,
    obs: &mut dyn Observer,
) -> Result<turing::Generated, DataError> {
    let mut progress = |done: usize, total: usize| {
        obs.progress(&Progress {
            phase: Phase::Data,
            done,
            total,
            loss: None,
        });
        !obs.cancelled()
    };
    let seed = preset.data_seed();
    match &preset.dataset.source {
        Source::Alife(a) => Ok(turing::Generated {
            set: tiler::generate(Tiling::from_settings(a)?, a.n, seed, &mut progress)?,
            cell_updates_per_s: 0.0,
            from_cache: false,
        }),
        Source::GrayScott(g) => match cache {
            Some(path) => turing::load_or_generate(g, g.n, seed, path, &mut progress),
            None => Ok(turing::generate(g, g.n, seed, &mut progress)),
        },
        Source::Images(i) => {
            let mut loader = FileLoader::new(&i.spec(), i.n, seed)?;
            while !loader.finished() {
                if !progress(loader.done(), loader.total()) {
                    return Ok(turing::Generated {
                        set: None,
                        cell_updates_per_s: 0.0,
                        from_cache: false,
                    });
                }
                loader.step()?;
            }
            Ok(turing::Generated {
                set: Some(loader.finish()),
                cell_updates_per_s: 0.0,
                from_cache: false,
            })
        }
        other => panic!("{:?} data are points, not images", other.kind()),
    }
}

/// Held-out start images for the metrics (never in the training set).
pub fn held_out(preset: &Preset, n: usize) -> Result<ImageSet, DataError> {
    drawn(preset, n, preset.data_seed() ^ HELD_OUT)
}

/// `n` images drawn like the training data, with the training seed: what a job will learn,
/// shown before it runs. A regime in which every sample dies is the same error training gives.
pub fn examples(preset: &Preset, n: usize) -> Result<ImageSet, DataError> {
    let set = drawn(preset, n, preset.data_seed())?;
    if let Some(g) = preset.dataset.gray_scott() {
        set.check_alive(g)?;
    }
    Ok(set)
}

fn drawn(preset: &Preset, n: usize, seed: u64) -> Result<ImageSet, DataError> {
    let set = match &preset.dataset.source {
        Source::Alife(a) => tiler::generate(Tiling::from_settings(a)?, n, seed, &mut |_, _| true)?,
        Source::GrayScott(g) => turing::generate(g, n, seed, &mut |_, _| true).set,
        // A folder has no pictures to spare: its held-out starts are its own pictures.
        Source::Images(i) => Some(image_files::load(&i.spec(), i.at_most(n), seed)?),
        other => panic!("{:?} data are points, not images", other.kind()),
    };
    Ok(set.expect("generation without a cancel hook completes"))
}

/// `metrics.json` of an image run. Field names are a public contract; fields that belong
/// to one kind of run (Turing or artificial life) are absent from the other's file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageMetrics {
    pub backend: String,
    /// Turing: the Gray–Scott regime; artificial life: the target.
    pub pattern: String,
    #[serde(deserialize_with = "nullable::f64")]
    pub seconds_data: f64,
    #[serde(deserialize_with = "nullable::f64")]
    pub seconds_score: f64,
    #[serde(deserialize_with = "nullable::f64")]
    pub seconds_metrics: f64,
    #[serde(deserialize_with = "nullable::f64")]
    pub score_loss_final: f64,
    /// Held-out images noised to tau: mean squared error of the denoised image, and of
    /// the identity (the noised image rescaled), per pixel.
    #[serde(deserialize_with = "nullable::f64")]
    pub denoise_mse: f64,
    #[serde(deserialize_with = "nullable::f64")]
    pub denoise_mse_identity: f64,
    /// Turing: share of training snapshots that hold a living pattern (dead ones are retried).
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub dataset_alive_fraction: Option<f64>,
    /// Turing: |cos| of the learned displacement to the true one (`metrics::gs_alignment`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_training_free: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_random_kernel: Option<f64>,
    /// Turing: the same over `eval.random_draws` random kernels (the first is the one above):
    /// their mean and sample standard deviation — the baseline with its spread.
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_random_kernel_mean: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_random_kernel_sd: Option<f64>,
    /// Turing, the paper's protocol (`gs_alignment::Reference`, `eval.protocol`): the skew
    /// 1×1 mixer's |cos| for the better of g = ±1 (`cos_truth_ref_sign`), its mean over the
    /// starts, their sd, and the first start alone (the paper measured one), and the random
    /// non-skew kernels' mean and sd over `eval.random_draws` draws (each a mean over starts).
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_training_free_ref: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_training_free_ref_sd: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_training_free_ref_first: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_ref_sign: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_random_kernel_mean_ref: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_random_kernel_sd_ref: Option<f64>,
    /// Runs with a trained NCA (`sde.flow = "nca"`): the same |cos| for the trained NCA and
    /// for the same NCA untrained (its norms calibrated on the held-out images).
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_nca: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_nca_random: Option<f64>,
    /// Artificial life: blobs per image at the start and the end of the tracked run, their
    /// mean speed (pixels per SDE time unit), and the speed of the same run with v = 0
    /// (`metrics::blob_motion`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub blob_count_start: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub blob_count_end: Option<f64>,
    /// The same at the end of the run with v = 0: whether the score alone keeps the count.
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub blob_count_end_still: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub blob_speed_mean: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub blob_speed_still: Option<f64>,
    /// Artificial life: how much the blobs look like the target (`metrics::icon_fidelity`,
    /// 1 = the icon itself) on the clean held-out images (the ceiling), at the start and the
    /// end of the tracked run, and at the end of the run with v = 0.
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub icon_fidelity_data: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub icon_fidelity_start: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub icon_fidelity_end: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub icon_fidelity_end_still: Option<f64>,
    /// Artificial life with a three-channel mixer K x = ω × x: the share of the target's
    /// ink it turns (mean sin² between ω and the ink colours; near 0, the icons cannot move).
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub mixer_ink_turned: Option<f64>,
    /// Artificial life, `eval.noise_steps`: blobs grown from uniform noise on the live
    /// canvas, per training-image area (compare with `dataset.icons`), and their look.
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub blob_count_from_noise: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub icon_fidelity_from_noise: Option<f64>,
    /// Artificial life with a trained NCA: the blob count at the end and the speed under it
    /// (same starts and noise as above).
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub blob_count_end_nca: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub blob_speed_nca: Option<f64>,
    /// The user's pictures: after `eval.cos_sde_steps` SDE steps from held-out snapshots under
    /// the training-free flow, the 1-Wasserstein distance between its pixel values and the
    /// clean snapshots' (`metrics::picture_look`; 0: the same tones), its sharpness over theirs
    /// (1: as sharp), and the RMS change per pixel over the run; the same with v = 0 (`_still`)
    /// and under a trained NCA (`_nca`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub look_tone_w1_end: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub look_tone_w1_still: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub look_tone_w1_nca: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub look_edge_ratio_end: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub look_edge_ratio_still: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub look_edge_ratio_nca: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub moved_rms: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub moved_rms_still: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub moved_rms_nca: Option<f64>,
    /// Runs with a trained NCA: its training time and last epoch's loss.
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub seconds_flow: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub flow_loss_final: Option<f64>,
    /// Set when the run was stopped (Ctrl-C, a cancel, a non-finite loss) before its metrics
    /// were all computed: why, and that the fields present are all there is.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub interrupted: Option<String>,
}

impl crate::metrics::report::Partial for ImageMetrics {
    fn set_interrupted(&mut self, why: String) {
        self.interrupted = Some(why);
    }
}

/// The denoising check of a trained score model, then the agreement with the true
/// dynamics (Turing) or the blob motion (artificial life), for the training-free flow and,
/// when given, a trained NCA. `None` when cancelled.
pub fn evaluate(
    preset: &Preset,
    score: &ScoreUnet,
    nca: Option<&Nca>,
    backend: &Backend,
    obs: &mut dyn Observer,
) -> Result<Option<ImageMetrics>, DataError> {
    let t0 = Instant::now();
    let e = &preset.eval;
    let sched = Schedule::from_settings(&preset.score);
    let tau = preset.score.tau_step;
    let alife = preset.dataset.alife();
    let starts = held_out(
        preset,
        if alife.is_some() {
            e.blob_starts
        } else {
            e.cos_starts
        },
    )?;
    let device = score.device();
    let x0 = Tensor::<4>::from_data(
        TensorData::new(
            starts.data.clone(),
            [starts.n, starts.channels, starts.h, starts.w],
        ),
        &device,
    );
    let mut rng = StdRng::seed_from_u64(preset.seed ^ HELD_OUT);
    let xt = crate::method::diffusion::noised(x0.clone(), &sched, tau, &mut rng);
    let s = image_diffusion::score(score, xt.clone(), &sched, tau, preset.sde.clip_x0);
    let mse = |a: Tensor<4>| scalar((a - x0.clone()).square().mean());
    let mut m = ImageMetrics {
        backend: backend.kind.to_string(),
        pattern: preset.dataset.pattern_name(),
        denoise_mse: mse(denoised(xt.clone(), s, &sched, tau)),
        denoise_mse_identity: mse(xt.clone().div_scalar(sched.alpha_bar[tau].sqrt())),
        ..Default::default()
    };
    let scale = preset.sde.sign * preset.sde.gain;
    let ncas = nca.map(|n| {
        (
            Velocity::Nca {
                net: Box::new(n.clone()),
                scale,
            },
            Velocity::Nca {
                net: Box::new(nca::untrained(preset, xt.clone())),
                scale,
            },
        )
    });
    let done = if let Some(a) = alife {
        let tiling = Tiling::from_settings(a)?;
        blob_metrics(preset, score, &sched, &starts, &tiling, ncas, &mut m, obs)
    } else if preset.dataset.gray_scott().is_some() {
        truth_metrics(preset, score, &sched, &starts, ncas, &mut m, obs)
    } else {
        picture_metrics(preset, score, &sched, &starts, ncas, &mut m, obs)
    };
    if done.is_none() {
        return Ok(None);
    }
    m.seconds_metrics = t0.elapsed().as_secs_f64();
    Ok(Some(m))
}

/// A progress callback for the metrics phase that reports every tenth step.
fn metrics_tick(obs: &mut dyn Observer, total: usize) -> impl FnMut(usize) -> bool + '_ {
    move |done| {
        if done.is_multiple_of(10) {
            obs.progress(&Progress {
                phase: Phase::Metrics,
                done,
                total,
                loss: None,
            });
        }
        !obs.cancelled()
    }
}

fn truth_metrics(
    preset: &Preset,
    score: &ScoreUnet,
    sched: &Schedule,
    starts: &ImageSet,
    ncas: Option<(Velocity, Velocity)>,
    m: &mut ImageMetrics,
    obs: &mut dyn Observer,
) -> Option<()> {
    let e = &preset.eval;
    let params = preset
        .dataset
        .gray_scott()
        .expect("Turing metrics are for Gray–Scott data")
        .params();
    let truth = gs_alignment::true_displacement(starts, &params, e.cos_gs_steps);
    let c = starts.channels;
    // The first random kernel is the one `sde.kernel_seed` draws (the single baseline of
    // earlier runs); the others give the baseline its spread.
    let draws = e.random_draws.max(1);
    let random = |k: usize| {
        Velocity::Kernel(ImageKernel::random_mix(
            c,
            preset.sde.kernel_seed.wrapping_add(k as u64),
        ))
    };
    let mut ours = vec![Velocity::Kernel(ImageKernel::from_settings(
        &preset.sde,
        c,
        None,
    ))];
    ours.extend((0..draws).map(random));
    ours.extend(ncas.into_iter().flat_map(|(a, b)| [a, b]));
    // The paper's protocol: the skew 1×1 mixer with both signs, then the random kernels.
    let mut paper = reference_mixers(preset, c);
    paper.extend((0..draws).map(random));
    let ours_steps = if e.protocol.ours() {
        (ours.len() + 1) * e.cos_sde_steps
    } else {
        0
    };
    let paper_steps = if e.protocol.reference() {
        paper.len() * gs_alignment::Reference::SDE_STEPS
    } else {
        0
    };
    let total = ours_steps + paper_steps;
    let mut tick = metrics_tick(obs, total);
    if e.protocol.ours() {
        let vs = fields_of(&ours);
        let refs: Vec<gs_alignment::Field> = vs.iter().map(|v| v as gs_alignment::Field).collect();
        let protocol = Protocol::from_preset(preset);
        let learned = gs_alignment::learned_displacements(
            score,
            sched,
            starts,
            &refs,
            &protocol,
            &mut |done, _| tick(done),
        )?;
        let cos: Vec<f64> = learned
            .iter()
            .map(|d| gs_alignment::mean_abs_cos(d, &truth, starts.n))
            .collect();
        let random = &cos[1..1 + draws];
        let (mean, sd) = gs_alignment::mean_sd(random);
        m.cos_truth_training_free = Some(cos[0]);
        m.cos_truth_random_kernel = Some(random[0]);
        m.cos_truth_random_kernel_mean = Some(mean);
        m.cos_truth_random_kernel_sd = Some(sd);
        m.cos_truth_nca = cos.get(1 + draws).copied();
        m.cos_truth_nca_random = cos.get(2 + draws).copied();
    }
    if e.protocol.reference() {
        let vs = fields_of(&paper);
        let refs: Vec<gs_alignment::Field> = vs.iter().map(|v| v as gs_alignment::Field).collect();
        let protocol = gs_alignment::Reference::from_preset(preset);
        let moved = gs_alignment::reference_displacements(
            score,
            sched,
            starts,
            &refs,
            &protocol,
            &mut |done, _| tick(ours_steps + done),
        )?;
        let per_start: Vec<Vec<f64>> = moved
            .iter()
            .map(|d| gs_alignment::abs_cos_per_image(d, &truth, starts.n))
            .collect();
        let mean = |xs: &[f64]| gs_alignment::mean_sd(xs).0;
        let best = better_sign(&per_start[0], &per_start[1]);
        let (tf, tf_sd) = gs_alignment::mean_sd(&per_start[best]);
        m.cos_truth_training_free_ref = Some(tf);
        m.cos_truth_training_free_ref_sd = Some(tf_sd);
        m.cos_truth_training_free_ref_first = Some(per_start[0][0].max(per_start[1][0]));
        m.cos_truth_ref_sign = Some(if best == 0 { 1.0 } else { -1.0 });
        let random: Vec<f64> = per_start[2..].iter().map(|c| mean(c)).collect();
        let (r_mean, r_sd) = gs_alignment::mean_sd(&random);
        m.cos_truth_random_kernel_mean_ref = Some(r_mean);
        m.cos_truth_random_kernel_sd_ref = Some(r_sd);
    }
    tick(total);
    Some(())
}

/// The paper's Turing flows: the skew 1×1 mixer with g = +1, then with g = −1.
pub(crate) fn reference_mixers(preset: &Preset, channels: usize) -> Vec<Velocity> {
    [1.0, -1.0]
        .iter()
        .map(|&g| Velocity::Kernel(ImageKernel::mix(channels, g, preset.sde.kernel_seed)))
        .collect()
}

/// Which of the two signs' per-start |cos| the paper keeps: the larger mean (0 on a tie).
pub(crate) fn better_sign(plus: &[f64], minus: &[f64]) -> usize {
    let mean = |xs: &[f64]| gs_alignment::mean_sd(xs).0;
    if mean(plus) >= mean(minus) { 0 } else { 1 }
}

/// The flows as the protocols take them, `v(x, s)`.
pub(crate) fn fields_of(
    fields: &[Velocity],
) -> Vec<impl Fn(Tensor<4>, Tensor<4>) -> Tensor<4> + '_> {
    fields
        .iter()
        .map(|f| move |x: Tensor<4>, s: Tensor<4>| f.at(x, s))
        .collect()
}

/// The preset's SDE, run `steps` steps and observed every `every`.
fn sde_protocol(
    preset: &Preset,
    steps: usize,
    every: usize,
    finder: Finder,
) -> blob_motion::Protocol {
    blob_motion::Protocol {
        sde: Sde {
            eta: preset.sde.eta,
            dt: preset.sde.dt,
        },
        ema: preset.sde.ema,
        steps,
        every,
        tau: preset.score.tau_step,
        clip_x0: preset.sde.clip_x0,
        finder,
    }
}

/// The user's pictures: their look and motion under each flow (`metrics::picture_look`).
fn picture_metrics(
    preset: &Preset,
    score: &ScoreUnet,
    sched: &Schedule,
    starts: &ImageSet,
    ncas: Option<(Velocity, Velocity)>,
    m: &mut ImageMetrics,
    obs: &mut dyn Observer,
) -> Option<()> {
    let e = &preset.eval;
    let protocol = sde_protocol(
        preset,
        e.cos_sde_steps,
        e.cos_sde_steps,
        Finder::from_preset(preset),
    );
    let kernel = ImageKernel::from_settings(&preset.sde, starts.channels, None);
    let mut fields = vec![Velocity::Kernel(kernel), Velocity::Still];
    fields.extend(ncas.map(|(trained, _)| trained));
    let steps = e.cos_sde_steps;
    let mut tick = metrics_tick(obs, fields.len() * steps);
    // Every run shares the start and every noise draw.
    let seed = preset.seed ^ 0x100C;
    let mut looks = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let v = |x: Tensor<4>, s: Tensor<4>| f.at(x, s);
        let mut step = |k: usize| tick(i * steps + k);
        looks.push(picture_look::look(
            score, sched, starts, &v, &protocol, seed, &mut step,
        )?);
    }
    let at = |i: usize, f: fn(&picture_look::Look) -> f64| looks.get(i).map(f);
    m.look_tone_w1_end = at(0, |l| l.tone_w1);
    m.look_tone_w1_still = at(1, |l| l.tone_w1);
    m.look_tone_w1_nca = at(2, |l| l.tone_w1);
    m.look_edge_ratio_end = at(0, |l| l.edge_ratio);
    m.look_edge_ratio_still = at(1, |l| l.edge_ratio);
    m.look_edge_ratio_nca = at(2, |l| l.edge_ratio);
    m.moved_rms = at(0, |l| l.moved_rms);
    m.moved_rms_still = at(1, |l| l.moved_rms);
    m.moved_rms_nca = at(2, |l| l.moved_rms);
    Some(())
}

#[allow(clippy::too_many_arguments)]
fn blob_metrics(
    preset: &Preset,
    score: &ScoreUnet,
    sched: &Schedule,
    starts: &ImageSet,
    tiling: &Tiling,
    ncas: Option<(Velocity, Velocity)>,
    m: &mut ImageMetrics,
    obs: &mut dyn Observer,
) -> Option<()> {
    let e = &preset.eval;
    let finder = Finder::for_tiling(tiling, e.blob_threshold as f32);
    let protocol = sde_protocol(preset, e.blob_steps, e.blob_every, finder);
    let inks = Inks::from_premultiplied(&tiling.icon);
    let kernel = ImageKernel::from_settings(&preset.sde, starts.channels, inks.as_ref());
    m.mixer_ink_turned = inks.zip(kernel.mixer_axis()).map(|(i, u)| i.moved(u));
    let mut fields = vec![Velocity::Kernel(kernel), Velocity::Still];
    fields.extend(ncas.map(|(trained, _)| trained));
    let noise_steps = e.noise_steps.unwrap_or(0);
    let mut tick = metrics_tick(obs, fields.len() * e.blob_steps + noise_steps);
    let templates = IconTemplates::new(tiling, protocol.finder.threshold);
    let (n, h, w) = (starts.n, starts.h, starts.w);
    m.icon_fidelity_data =
        blob_motion::frame_fidelity(&templates, &protocol.finder, &starts.data, n, h, w);
    // Every run shares the start and every noise draw.
    let seed = preset.seed ^ 0xB10B;
    let mut runs = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let v = |x: Tensor<4>, s: Tensor<4>| f.at(x, s);
        let mut step = |k: usize| tick(i * e.blob_steps + k);
        runs.push(blob_motion::motion(
            score,
            sched,
            starts,
            &v,
            &protocol,
            Some(&templates),
            seed,
            &mut step,
        )?);
    }
    m.blob_count_start = Some(runs[0].count_start);
    m.blob_count_end = Some(runs[0].count_end);
    m.blob_count_end_still = Some(runs[1].count_end);
    m.blob_speed_mean = Some(runs[0].speed);
    m.blob_speed_still = Some(runs[1].speed);
    if noise_steps > 0 {
        let side = tiling.canvas;
        let canvas = preset.sde.canvas.unwrap_or(side);
        let p = blob_motion::Protocol {
            steps: noise_steps,
            ..protocol
        };
        let v = |x: Tensor<4>, s: Tensor<4>| fields[0].at(x, s);
        let done = fields.len() * e.blob_steps;
        let grown = blob_motion::from_noise(
            score,
            sched,
            &v,
            &p,
            Some(&templates),
            (e.noise_starts, canvas),
            seed ^ 0x0004_015E,
            &mut |k| tick(done + k),
        )?;
        let area = (side * side) as f64 / (canvas * canvas) as f64;
        m.blob_count_from_noise = Some(grown.count * area);
        m.icon_fidelity_from_noise = grown.fidelity;
    }
    m.icon_fidelity_start = runs[0].fidelity_start;
    m.icon_fidelity_end = runs[0].fidelity_end;
    m.icon_fidelity_end_still = runs[1].fidelity_end;
    m.blob_count_end_nca = runs.get(2).map(|r| r.count_end);
    m.blob_speed_nca = runs.get(2).map(|r| r.speed);
    Some(())
}
