//! `equiflow bench --images`: the image models' costs, per architecture (`score.arch`):
//! one UNet training step at the quick shape and batch, one batched score call at tau, and
//! one Heun step of the image SDE on the live canvas at 96² and 256² (both score evaluations
//! included), one NCA training step. Ratios between rows of one run are what to compare.

use crate::backend::Backend;
use crate::method::diffusion::Schedule;
use crate::method::image_diffusion;
use crate::method::skew::ImageKernel;
use crate::nn::circ_conv_op;
use crate::nn::score_unet::ScoreUnet;
use crate::preset::{Levels, Prediction, ScoreSettings, UnetArch};
use crate::sim::sde::Sde;
use crate::train::nca::NcaTrainer;
use crate::train::turing::ImageScoreTrainer;
use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct ImageBenchRow {
    pub case: String,
    pub backend: String,
    pub arch: String,
    /// Whose kernels: `equiflow` (our CPU operations: circular convolution, SiLU, GroupNorm,
    /// 2× resampling) or `burn` (its composed operations: padding + conv2d and the rest).
    pub conv: String,
    /// `[channels, height, width]` of one image.
    pub shape: [usize; 3],
    pub batch: usize,
    /// Trainable parameters of the UNet.
    pub params: usize,
    pub ms_per_step: f64,
}

fn settings(arch: UnetArch) -> ScoreSettings {
    ScoreSettings {
        arch,
        channels: vec![8, 16, 32],
        prediction: Prediction::V,
        schedule: crate::preset::NoiseSchedule::Linear,
        tau_step: 10,
        levels: Levels::All,
        grad_clip: Some(1.0),
        ..Default::default()
    }
}

fn time(steps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..steps {
        f();
    }
    t.elapsed().as_secs_f64() * 1e3 / steps as f64
}

/// The rows `run` can time, in its order.
pub const CASES: [&str; 7] = [
    "unet_step_quick",
    "score_eval_tau",
    "unet_step_full",
    "sde_step_live",
    "sde_step_live_256",
    "sde_step_live_full",
    "nca_step_quick",
];

/// Timed steps at the full scale (a few seconds each on two cores).
const FULL_STEPS: usize = 2;

/// Every case for both architectures on `backend` — on the CPU once with our kernels and
/// once with burn's — and the NCA step (likewise); `progress` hears each case's name.
/// Only the `cases` named, when any are.
pub fn run(
    backend: &Backend,
    steps: usize,
    cases: &[String],
    progress: &mut dyn FnMut(&str),
) -> Vec<ImageBenchRow> {
    let want = |case: &str| cases.is_empty() || cases.iter().any(|c| c == case);
    let device = &backend.device;
    device.seed(1);
    let mut rows = Vec::new();
    let convs: &[bool] = if circ_conv_op::available_on(device) {
        &[true, false]
    } else {
        &[false]
    };
    let mut rng = StdRng::seed_from_u64(1);
    let mut noise =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
    for (&own, arch) in convs
        .iter()
        .flat_map(|o| [(o, UnetArch::Plain), (o, UnetArch::Residual)])
    {
        circ_conv_op::set_own_kernels(own);
        let conv = if own { "equiflow" } else { "burn" };
        let s = settings(arch);
        let sched = Schedule::from_settings(&s);
        let name = format!("{arch:?}").to_lowercase();
        let row = |case: &str, s: &ScoreSettings, shape: [usize; 3], batch: usize, ms: f64| {
            ImageBenchRow {
                case: case.into(),
                backend: backend.kind.to_string(),
                arch: name.clone(),
                conv: conv.into(),
                shape,
                batch,
                params: ScoreUnet::new(shape[0], s, device).num_params(),
                ms_per_step: ms,
            }
        };
        let mut step_rng = StdRng::seed_from_u64(1);

        // Training at the quick Turing shape: 2 channels, 48², batch 32.
        if want("unet_step_quick") || want("score_eval_tau") {
            progress(&format!("unet_step_quick ({name}, {conv} conv)"));
            let (c, side, batch) = (2, 48, 32);
            let x0 = noise(batch * c * side * side);
            let mut trainer = ImageScoreTrainer::new(c, &s, steps + 1, 1, device);
            let ms = time(steps, || {
                let _ = trainer.step(x0.clone(), [batch, c, side, side], &sched, &mut step_rng);
            });
            if want("unet_step_quick") {
                rows.push(row("unet_step_quick", &s, [c, side, side], batch, ms));
            }

            progress(&format!("score_eval_tau ({name}, {conv} conv)"));
            let net = trainer.model();
            let x = Tensor::<4>::random([batch, c, side, side], Distribution::Default, device);
            let ms = time(steps, || {
                let _ = image_diffusion::score(&net, x.clone(), &sched, 10, true).into_data();
            });
            if want("score_eval_tau") {
                rows.push(row("score_eval_tau", &s, [c, side, side], batch, ms));
            }
        }

        // Training at the full scale: 128², batch 64, widths 16/32/64.
        if want("unet_step_full") {
            progress(&format!("unet_step_full ({name}, {conv} conv)"));
            let full = ScoreSettings {
                channels: vec![16, 32, 64],
                ..s.clone()
            };
            let (c, side, batch) = (2, 128, 64);
            let x0 = noise(batch * c * side * side);
            let mut trainer = ImageScoreTrainer::new(c, &full, steps + 1, 1, device);
            let ms = time(steps.min(FULL_STEPS), || {
                let _ = trainer.step(x0.clone(), [batch, c, side, side], &sched, &mut step_rng);
            });
            rows.push(row("unet_step_full", &full, [c, side, side], batch, ms));
        }
    }
    // The live artificial-life canvas as the app plays it: alife-dot's own score net (quick:
    // residual 8/16/16, one block per level, attention at the lowest level) on its quick
    // canvas (96²) and on 256², and the full profile's net on its 256² canvas.
    for &own in convs {
        circ_conv_op::set_own_kernels(own);
        let conv = if own { "equiflow" } else { "burn" };
        for (case, quick, side) in [
            ("sde_step_live", true, 96),
            ("sde_step_live_256", true, 256),
            ("sde_step_live_full", false, 256),
        ] {
            if !want(case) {
                continue;
            }
            let preset =
                crate::preset::Preset::load("alife-dot", quick, &[]).expect("a built-in preset");
            let s = &preset.score;
            let name = format!("{:?}", s.arch).to_lowercase();
            progress(&format!("{case} ({name}, {conv} conv)"));
            let c = 3;
            let sched = Schedule::from_settings(s);
            let net = ScoreUnet::new(c, s, device);
            let kernel = ImageKernel::from_settings(&preset.sde, c, None);
            let sde = Sde {
                eta: preset.sde.eta,
                dt: preset.sde.dt,
            };
            let score = |x: Tensor<4>| {
                image_diffusion::score(&net, x, &sched, s.tau_step, preset.sde.clip_x0)
            };
            let v = |_x: Tensor<4>, s: Tensor<4>| kernel.apply(s);
            let x = Tensor::<4>::random([1, c, side, side], Distribution::Default, device);
            let mut st = Sde::start(x, &score);
            let mut step_rng = StdRng::seed_from_u64(1);
            let ms = time(steps, || {
                st = sde.step(st.clone(), &score, &v, &mut step_rng);
                let _ = st.x.clone().into_data();
            });
            rows.push(ImageBenchRow {
                case: case.into(),
                backend: backend.kind.to_string(),
                arch: name,
                conv: conv.into(),
                shape: [c, side, side],
                batch: 1,
                params: net.num_params(),
                ms_per_step: ms,
            });
        }
    }
    circ_conv_op::set_own_kernels(true);

    // One NCA training step at gs-waves' quick shape (48², batch 8, 2+2 probes) on noised
    // images with their scores given, as its training sees them.
    if !want("nca_step_quick") {
        return rows;
    }
    let preset = crate::preset::Preset::load("gs-waves", true, &[]).expect("a built-in preset");
    let (c, side, batch) = (2, 48, preset.flow.batch);
    let shape = [batch, c, side, side];
    let (x, sc) = (
        noise(batch * c * side * side),
        noise(batch * c * side * side),
    );
    for &own in convs {
        circ_conv_op::set_own_kernels(own);
        let conv = if own { "equiflow" } else { "burn" };
        progress(&format!("nca_step_quick ({conv} ops)"));
        let mut nca = NcaTrainer::new(&preset, steps + 1, device);
        let mut step_rng = StdRng::seed_from_u64(1);
        let ms = time(steps, || {
            let _ = nca.step(x.clone(), sc.clone(), shape, &mut step_rng);
        });
        rows.push(ImageBenchRow {
            case: "nca_step_quick".into(),
            backend: backend.kind.to_string(),
            arch: "nca".into(),
            conv: conv.into(),
            shape: [c, side, side],
            batch,
            params: nca.model().num_params(),
            ms_per_step: ms,
        });
    }
    circ_conv_op::set_own_kernels(true);
    rows
}

pub fn table(rows: &[ImageBenchRow]) -> String {
    let mut out = format!(
        "{:<18} {:<8} {:<9} {:<9} {:>11} {:>6} {:>8} {:>10}\n",
        "case", "backend", "arch", "conv", "shape", "batch", "params", "ms/step"
    );
    for r in rows {
        out += &format!(
            "{:<18} {:<8} {:<9} {:<9} {:>11} {:>6} {:>8} {:>10.2}\n",
            r.case,
            r.backend,
            r.arch,
            r.conv,
            format!("{}×{}²", r.shape[0], r.shape[1]),
            r.batch,
            r.params,
            r.ms_per_step
        );
    }
    out
}
