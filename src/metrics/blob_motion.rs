//! Do the icons live? Protocol for artificial-life runs (CLI and app alike):
//! - start from held-out tiled images (never trained on), noised to the score's level tau;
//! - run `steps` Heun steps of dx = (v + eta s) dt + sqrt(2 eta dt) dW, keeping an EMA of the
//!   denoised state; every `every` steps, find the blobs in the EMA image and link them into
//!   tracks (`metrics::blobs`);
//! - `count_start` / `count_end`: blobs in the first and last frame, averaged over starts
//!   (the pattern persists if they stay close);
//! - `speed`: total tracked path over total tracked time, pixels per unit of SDE time;
//! - the same run with v = 0 and the same noise gives `speed_still`: what the denoiser and
//!   Langevin noise alone make the centres jitter. Motion is speed well above it;
//! - `fidelity_start` / `fidelity_end`: how much the blobs of the first and last frame look
//!   like the target (`metrics::icon_fidelity`), over all blobs of all starts.

use super::blobs::{self, Blob, Tracker};
use super::icon_fidelity::IconTemplates;
use crate::data::turing::ImageSet;
use crate::method::diffusion::{self, Schedule};
use crate::method::image_diffusion::{self, denoised};
use crate::nn::score_unet::ScoreUnet;
use crate::sim::sde::{Ema, Sde, State};
use crate::tensor_util::to_vec;
use burn::tensor::{Tensor, TensorData};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy)]
pub struct Protocol {
    pub sde: Sde,
    pub ema: f64,
    pub steps: usize,
    pub every: usize,
    pub tau: usize,
    /// Clamp x̂0 to [-1, 1] in the score (`sde.clip_x0`).
    pub clip_x0: bool,
    pub finder: Finder,
}

/// How blobs are found and linked in a frame of a given icon size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Finder {
    pub threshold: f32,
    pub min_area: usize,
    /// Ink this many pixels apart is one blob (0: touching pixels only).
    #[serde(default)]
    pub join: usize,
    pub max_move: f32,
    pub miss_budget: usize,
}

impl Finder {
    /// Scaled to the stamped icon, so that a blob is an icon and not a part of one: ink
    /// less than a tenth of the icon's side apart is one blob (the two discs of `dots`, the
    /// taiji's small dots and its ring); a blob with less than a tenth of the icon's own ink
    /// (its pixels above the threshold, drawn on white) is a speck; a blob may move up to
    /// half an icon between frames.
    pub fn for_tiling(t: &crate::data::tiler::Tiling, threshold: f32) -> Self {
        let ink = t
            .icon
            .chunks_exact(4)
            .filter(|px| {
                // Premultiplied on white: v = c + (1 − a); ink is the darkest channel's 1 − v.
                (0..3).map(|c| px[3] - px[c]).fold(0.0f32, f32::max) > threshold
            })
            .count();
        Self {
            min_area: (ink / 10).max(2),
            join: t.size / 10,
            ..Self::for_icon(t.size, threshold)
        }
    }

    /// Scaled to an icon side alone: blobs smaller than a fortieth of the icon's square are
    /// specks; a blob may move up to half an icon between frames.
    pub fn for_icon(icon_size: usize, threshold: f32) -> Self {
        Self {
            threshold,
            min_area: (icon_size * icon_size / 40).max(2),
            max_move: icon_size as f32 / 2.0,
            miss_budget: 2,
            join: 0,
        }
    }

    /// The finder of a preset without its tiling at hand. Turing patterns have no icon:
    /// their live view counts blobs at the default icon's scale.
    pub fn from_preset(p: &crate::preset::Preset) -> Self {
        let icon = p
            .dataset
            .alife()
            .map_or(crate::preset::AlifeData::default().icon_size, |a| {
                a.icon_size
            });
        Self::for_icon(icon, p.eval.blob_threshold as f32)
    }

    pub fn tracker(&self, h: usize, w: usize) -> Tracker {
        Tracker::new(h, w, self.max_move, self.miss_budget)
    }

    pub fn blobs(&self, rgb: &[f32], h: usize, w: usize) -> Vec<blobs::Blob> {
        let ink = blobs::ink(rgb, h, w);
        blobs::detect_joined(&ink, h, w, self.threshold, self.min_area, self.join)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Motion {
    pub count_start: f64,
    pub count_end: f64,
    pub speed: f64,
    /// None when no templates were given or a frame held no blob.
    pub fidelity_start: Option<f64>,
    pub fidelity_end: Option<f64>,
}

/// The blobs of each of the `n` images of `frame` (`[n, 3, h, w]`).
pub fn frame_blobs(finder: &Finder, frame: &[f32], n: usize, h: usize, w: usize) -> Vec<Vec<Blob>> {
    frame
        .chunks(frame.len() / n)
        .map(|img| finder.blobs(img, h, w))
        .collect()
}

/// Mean icon fidelity over every blob `found` in the images of `frame`; None without blobs.
fn fidelity_over(
    t: &IconTemplates,
    frame: &[f32],
    found: &[Vec<Blob>],
    h: usize,
    w: usize,
) -> Option<f64> {
    let len = frame.len() / found.len().max(1);
    let (mut sum, mut count) = (0.0, 0usize);
    for (img, blobs) in frame.chunks(len).zip(found) {
        if let Some(f) = t.fidelity(img, h, w, blobs) {
            sum += f * blobs.len() as f64;
            count += blobs.len();
        }
    }
    (count > 0).then(|| sum / count as f64)
}

/// Mean icon fidelity over every blob of the images `frame` (`[n, 3, h, w]`).
pub fn frame_fidelity(
    t: &IconTemplates,
    finder: &Finder,
    frame: &[f32],
    n: usize,
    h: usize,
    w: usize,
) -> Option<f64> {
    fidelity_over(t, frame, &frame_blobs(finder, frame, n, h, w), h, w)
}

/// The SDE from the state `x` (at level tau) under `v`, keeping an EMA of the denoised
/// state; `each(k, ema)` sees it at the start (k = 0) and after every step k. `tick(k)`
/// returns false to cancel (then None).
#[allow(clippy::too_many_arguments)]
pub(crate) fn simulate(
    model: &ScoreUnet,
    sched: &Schedule,
    p: &Protocol,
    x: Tensor<4>,
    v: &dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
    rng: &mut StdRng,
    tick: &mut dyn FnMut(usize) -> bool,
    each: &mut dyn FnMut(usize, &Ema),
) -> Option<Ema> {
    let score = |x: Tensor<4>| image_diffusion::score(model, x, sched, p.tau, p.clip_x0);
    let mut st: State = Sde::start(x, &score);
    let mut ema = Ema {
        value: denoised(st.x.clone(), st.s.clone(), sched, p.tau),
        w: p.ema,
    };
    each(0, &ema);
    for k in 1..=p.steps {
        if !tick(k) {
            return None;
        }
        st = p.sde.step(st, &score, v, rng);
        ema.update(denoised(st.x.clone(), st.s.clone(), sched, p.tau));
        each(k, &ema);
    }
    Some(ema)
}

/// Blob counts and speed of the starts under the flow `v(s)`; `tick(done, total)` returns
/// false to cancel (then None).
#[allow(clippy::too_many_arguments)]
pub fn motion(
    model: &ScoreUnet,
    sched: &Schedule,
    starts: &ImageSet,
    v: &dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
    p: &Protocol,
    templates: Option<&IconTemplates>,
    seed: u64,
    tick: &mut dyn FnMut(usize) -> bool,
) -> Option<Motion> {
    let device = model.device();
    let (n, h, w) = (starts.n, starts.h, starts.w);
    let x0 = Tensor::<4>::from_data(
        TensorData::new(starts.data.clone(), [n, starts.channels, h, w]),
        &device,
    );
    let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let x = diffusion::noised(x0, sched, p.tau, &mut rng);
    let mut trackers: Vec<Tracker> = (0..n).map(|_| p.finder.tracker(h, w)).collect();
    let mut counts = Vec::new();
    let (mut fidelity_start, mut fidelity_end) = (None, None);
    let mut observe = |k: usize, ema: &Ema| {
        if !(k.is_multiple_of(p.every.max(1)) || k == p.steps) {
            return;
        }
        let frame = to_vec(ema.value.clone());
        let found = frame_blobs(&p.finder, &frame, n, h, w);
        let t = k as f64 * p.sde.dt;
        for (tr, blobs) in trackers.iter_mut().zip(&found) {
            tr.update(t, blobs);
        }
        counts.push(found.iter().map(Vec::len).sum::<usize>() as f64 / n as f64);
        let fidelity = || templates.and_then(|tm| fidelity_over(tm, &frame, &found, h, w));
        if k == 0 {
            fidelity_start = fidelity();
        }
        if k == p.steps {
            fidelity_end = fidelity();
        }
    };
    simulate(model, sched, p, x, v, &mut rng, tick, &mut observe)?;
    let tracks = trackers.iter().flat_map(|t| &t.tracks);
    Some(Motion {
        count_start: counts[0],
        count_end: *counts.last().expect("the start is counted"),
        speed: blobs::mean_speed(tracks, h, w, f64::NEG_INFINITY),
        fidelity_start,
        fidelity_end,
    })
}

/// What grows out of noise: blobs and their look after `steps` SDE steps from uniform
/// noise in [-1, 1] on `canvas`² images (the reference's demo).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FromNoise {
    /// Blobs per image in the last frame.
    pub count: f64,
    pub fidelity: Option<f64>,
}

/// Run the SDE from uniform noise on `n` canvases of `canvas`² and look at the last frame
/// (the EMA of the denoised state). `tick(done)` returns false to cancel (then None).
#[allow(clippy::too_many_arguments)]
pub fn from_noise(
    model: &ScoreUnet,
    sched: &Schedule,
    v: &dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
    p: &Protocol,
    templates: Option<&IconTemplates>,
    (n, canvas): (usize, usize),
    seed: u64,
    tick: &mut dyn FnMut(usize) -> bool,
) -> Option<FromNoise> {
    use rand::{RngExt, SeedableRng};
    let device = model.device();
    let c = model.channels();
    let mut rng = StdRng::seed_from_u64(seed);
    let start: Vec<f32> = (0..n * c * canvas * canvas)
        .map(|_| rng.random_range(-1.0f32..=1.0))
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(start, [n, c, canvas, canvas]), &device);
    let ema = simulate(model, sched, p, x, v, &mut rng, tick, &mut |_, _| {})?;
    let frame = to_vec(ema.value);
    let found = frame_blobs(&p.finder, &frame, n, canvas, canvas);
    Some(FromNoise {
        count: found.iter().map(Vec::len).sum::<usize>() as f64 / n as f64,
        fidelity: templates.and_then(|t| fidelity_over(t, &frame, &found, canvas, canvas)),
    })
}
