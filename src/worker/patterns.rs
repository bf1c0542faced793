//! An image job as the app runs it (Turing patterns): the snapshots are simulated chunk by
//! chunk, the UNet trains one batch per step, then the metrics run and the training-free
//! flow plays live beside the true Gray–Scott dynamics from the same start.

use super::command::{Restart, SimControls};
use super::event::{Event, ImageKind, Images, PatternFrame, ProgressInfo};
use super::session::{Epochs, MetricsObserver, record};
use crate::backend::Backend;
use crate::data::gray_scott::{self, Grid, Params};
use crate::data::turing::{self, Generator, ImageSet};
use crate::method::diffusion::{self, Schedule};
use crate::method::image_diffusion::{self, denoised};
use crate::method::skew::ImageKernel;
use crate::nn::score_unet::ScoreUnet;
use crate::preset::Preset;
use crate::sim::sde::{Ema, Sde, State};
use crate::tensor_util::to_vec;
use crate::train::checkpoint::{self, RunDir, RunDirError};
use crate::train::job::{LossPoint, Phase, Stop, final_loss};
use crate::train::turing::{self as tjob, ImageScoreTrainer, TuringMetrics};
use burn::tensor::{Distribution, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Dataset images shown while training (and offered as starts).
const SHOWN: usize = 8;
/// True simulator steps per learned SDE step in the side-by-side view: the metric's ratio
/// (20 Gray–Scott steps against 200 SDE steps).
const GS_PER_SDE: f64 = 0.1;
/// Frames between the snapshots the displacement view subtracts.
const DELTA_FRAMES: usize = 20;

enum Stage {
    Data(Box<Generator>),
    Score(Box<ImageScoreTrainer>, Epochs),
    Metrics,
    Done,
}

/// The learned dynamics and the true ones, running side by side from one start.
struct PatternSim {
    state: State,
    ema: Ema,
    truth: Grid,
    gs_carry: f64,
    anchor: Option<(Vec<f32>, Vec<f32>)>,
    frames: usize,
    steps: usize,
}

pub struct PatternSession {
    preset: Preset,
    backend: Backend,
    params: Params,
    sched: Schedule,
    rng: StdRng,
    stage: Stage,
    data: Option<ImageSet>,
    cache: Option<PathBuf>,
    score: Option<ScoreUnet>,
    losses: Vec<LossPoint>,
    samples: Vec<f32>,
    metrics: Option<TuringMetrics>,
    controls: SimControls,
    kernel: ImageKernel,
    sim: Option<PatternSim>,
    next_start: usize,
    started: Instant,
    cancel: Arc<AtomicBool>,
    live: Box<dyn Fn(Event) + Send>,
    pub inject_panic: bool,
}

impl PatternSession {
    /// Start generating the snapshots (or read them from `cache` when it holds this set).
    pub fn new(
        preset: Preset,
        backend: Backend,
        cache: Option<PathBuf>,
        cancel: Arc<AtomicBool>,
        live: Box<dyn Fn(Event) + Send>,
        out: &mut Vec<Event>,
    ) -> Self {
        backend.device.seed(preset.seed);
        let d = &preset.dataset;
        let params = Params::from_settings(d).expect("validated pattern");
        let controls = SimControls::from_preset(&preset);
        out.push(Event::PatternJob {
            preset: preset.name.clone(),
            backend: backend.description.clone(),
            size: d.size,
        });
        let mut s = Self {
            sched: Schedule::from_settings(&preset.score),
            rng: StdRng::seed_from_u64(preset.seed),
            stage: Stage::Data(Box::new(Generator::new(d, d.n, preset.seed))),
            data: None,
            score: None,
            losses: Vec::new(),
            samples: Vec::new(),
            metrics: None,
            kernel: ImageKernel::from_settings(&preset.sde, 2),
            controls,
            sim: None,
            next_start: 0,
            started: Instant::now(),
            cancel,
            live,
            inject_panic: false,
            params,
            backend,
            preset,
            cache,
        };
        let (d, seed) = (&s.preset.dataset, s.preset.seed);
        let cached = s
            .cache
            .as_deref()
            .and_then(|p| turing::read_cached(d, d.n, seed, p));
        if let Some(set) = cached {
            out.push(Event::Notice(
                "Reusing the cached snapshots of these settings.".into(),
            ));
            s.begin_score(set, out);
        }
        s
    }

    pub fn is_training(&self) -> bool {
        !matches!(self.stage, Stage::Done)
    }

    /// The flow can play once the score model is trained.
    pub fn has_flow(&self) -> bool {
        self.sim.is_some()
    }

    pub fn has_models(&self) -> bool {
        self.score.is_some()
    }

    pub fn stage_index(&self) -> usize {
        match self.stage {
            Stage::Data(_) => 0,
            Stage::Score(..) => 1,
            Stage::Metrics => 2,
            Stage::Done => 3,
        }
    }

    pub fn set_lr(&mut self, score: f64) {
        if let Stage::Score(t, _) = &mut self.stage {
            t.set_lr(score);
        }
    }

    pub fn progress(&self) -> Option<ProgressInfo> {
        match &self.stage {
            Stage::Data(g) => {
                let (done, total) = (g.done(), g.total());
                let elapsed = self.started.elapsed().as_secs_f64();
                Some(ProgressInfo {
                    phase: Phase::Data,
                    epoch: 1,
                    epochs: 1,
                    done,
                    total,
                    eta_seconds: (done > 0).then(|| elapsed / done as f64 * (total - done) as f64),
                })
            }
            Stage::Score(_, e) => Some(e.progress()),
            _ => None,
        }
    }

    pub fn stop(&mut self, why: &str, out: &mut Vec<Event>) {
        if self.is_training() {
            if let Stage::Score(t, _) = &self.stage {
                self.score = Some(t.model());
                self.start_sim(out);
            }
            self.stage = Stage::Done;
            self.finish(Some(why.to_string()), false, out);
        }
    }

    pub fn abandon(&mut self) {
        self.stage = Stage::Done;
    }

    fn finish(&mut self, stop: Option<String>, failed: bool, out: &mut Vec<Event>) {
        out.push(Event::Finished {
            stop,
            failed,
            seconds: self.started.elapsed().as_secs_f64(),
        });
    }

    pub fn step(&mut self, out: &mut Vec<Event>) {
        if std::mem::take(&mut self.inject_panic) {
            panic!("injected failure (test)");
        }
        match &mut self.stage {
            Stage::Data(g) => {
                g.step();
                if g.finished() {
                    let Stage::Data(g) = std::mem::replace(&mut self.stage, Stage::Metrics) else {
                        unreachable!("matched just above")
                    };
                    let set = g.finish();
                    if let Err(e) = set.check_alive(&self.preset.dataset) {
                        self.stage = Stage::Done;
                        self.finish(Some(e.to_string()), true, out);
                        return;
                    }
                    if let Some(path) = &self.cache
                        && let Err(e) =
                            turing::write_cached(&self.preset.dataset, self.preset.seed, path, &set)
                    {
                        out.push(Event::Notice(format!("{e}; the snapshots stay in memory")));
                    }
                    self.begin_score(set, out);
                }
            }
            Stage::Score(trainer, epochs) => match epochs.next_batch(&mut self.rng) {
                Some(idx) => {
                    let data = self.data.as_ref().expect("data come first");
                    let shape = [idx.len(), data.channels, data.h, data.w];
                    match trainer.step(data.gather(&idx), shape, &self.sched, &mut self.rng) {
                        Ok(loss) => record(epochs, loss, &mut self.losses, out),
                        Err(_) => {
                            let epoch = epochs.epoch;
                            self.score = Some(trainer.last_good());
                            self.stage = Stage::Done;
                            let why = Stop::NonFinite {
                                phase: Phase::Score,
                                epoch,
                            };
                            self.finish(Some(why.to_string()), true, out);
                        }
                    }
                }
                None => {
                    self.score = Some(trainer.model());
                    self.stage = Stage::Metrics;
                    self.push_samples(out);
                    self.start_sim(out);
                    out.push(Event::Progress(ProgressInfo::starting(Phase::Metrics)));
                }
            },
            Stage::Metrics => {
                let score = self.score.as_ref().expect("trained");
                let mut obs = MetricsObserver {
                    live: &*self.live,
                    cancel: &self.cancel,
                };
                let m = tjob::evaluate(&self.preset, score, &self.backend, &mut obs);
                self.stage = Stage::Done;
                match m {
                    Some(mut m) => {
                        m.score_loss_final = final_loss(&self.losses, Phase::Score);
                        if let Some(d) = &self.data {
                            m.dataset_alive_fraction = d.alive_fraction();
                        }
                        out.push(Event::PatternMetrics(Box::new(m.clone())));
                        self.metrics = Some(m);
                        self.finish(None, false, out);
                    }
                    None => self.finish(Some("stopped while computing metrics".into()), false, out),
                }
            }
            Stage::Done => {}
        }
    }

    fn begin_score(&mut self, set: ImageSet, out: &mut Vec<Event>) {
        out.push(Event::Images(Images {
            kind: ImageKind::Data,
            h: set.h,
            w: set.w,
            data: set.gather(&(0..SHOWN.min(set.n)).collect::<Vec<_>>()),
        }));
        let s = &self.preset.score;
        let epochs = Epochs::new(Phase::Score, set.n, s.batch, s.epochs);
        let trainer = ImageScoreTrainer::new(set.channels, s, epochs.total(), &self.backend.device);
        self.stage = Stage::Score(Box::new(trainer), epochs);
        self.data = Some(set);
    }

    /// While the score trains: a held-out-free look at how well it denoises a data image.
    pub fn refresh_views(&mut self, with_samples: bool, out: &mut Vec<Event>) {
        let (Stage::Score(t, _), Some(data), true) = (&self.stage, &self.data, with_samples) else {
            return;
        };
        let model = t.model();
        let tau = self.preset.score.tau_step;
        let x0 = self.tensor(data.image(0).to_vec(), data);
        let xt = diffusion::noised(x0, &self.sched, tau);
        let s = image_diffusion::score(&model, xt.clone(), &self.sched, tau);
        let clean = denoised(xt.clone(), s, &self.sched, tau);
        let mut both = to_vec(xt.div_scalar(self.sched.alpha_bar[tau].sqrt()));
        both.extend(to_vec(clean));
        out.push(Event::Images(Images {
            kind: ImageKind::Denoised,
            h: data.h,
            w: data.w,
            data: both,
        }));
    }

    fn tensor(&self, values: Vec<f32>, like: &ImageSet) -> Tensor<4> {
        let n = values.len() / like.image_len();
        Tensor::from_data(
            TensorData::new(values, [n, like.channels, like.h, like.w]),
            &self.backend.device,
        )
    }

    fn push_samples(&mut self, out: &mut Vec<Event>) {
        let (Some(score), Some(data)) = (&self.score, &self.data) else {
            return;
        };
        let n = self.preset.score.samples.min(SHOWN);
        if n == 0 {
            return;
        }
        self.samples = to_vec(image_diffusion::sample(
            score,
            n,
            data.h,
            data.w,
            &self.sched,
        ));
        out.push(Event::Images(Images {
            kind: ImageKind::Samples,
            h: data.h,
            w: data.w,
            data: self.samples.clone(),
        }));
    }

    /// (Re)start the side-by-side simulation.
    fn start_sim(&mut self, out: &mut Vec<Event>) {
        let (Some(score), Some(data)) = (&self.score, &self.data) else {
            return;
        };
        let start = match self.controls.restart {
            Restart::Sample => {
                let i = self.next_start % data.n;
                self.next_start += 1;
                data.image(i).to_vec()
            }
            Restart::Noise => {
                let t = Tensor::<4>::random(
                    [1, data.channels, data.h, data.w],
                    Distribution::Uniform(-1.0, 1.0),
                    &self.backend.device,
                );
                to_vec(t)
            }
        };
        let tau = self.preset.score.tau_step;
        let x0 = self.tensor(start.clone(), data);
        let x = diffusion::noised(x0, &self.sched, tau);
        let sched = &self.sched;
        let state = Sde::start(x, &|x| image_diffusion::score(score, x, sched, tau));
        let ema = Ema {
            value: denoised(state.x.clone(), state.s.clone(), sched, tau),
            w: self.preset.sde.ema,
        };
        self.sim = Some(PatternSim {
            state,
            ema,
            truth: Grid::from_scaled(&start, data.h, data.w),
            gs_carry: 0.0,
            anchor: None,
            frames: 0,
            steps: 0,
        });
        out.push(Event::Notice(match self.controls.restart {
            Restart::Sample => "The flow starts from a data pattern.".into(),
            Restart::Noise => "The flow starts from noise.".into(),
        }));
    }

    /// New simulation settings; a flipped sign or a restart request takes effect at once.
    pub fn steer(&mut self, c: SimControls, restart: bool, out: &mut Vec<Event>) {
        if (c.sign, c.kernel) != (self.controls.sign, self.controls.kernel) {
            let mut sde = self.preset.sde.clone();
            (sde.sign, sde.kernel) = (c.sign, c.kernel);
            self.kernel = ImageKernel::from_settings(&sde, 2);
        }
        self.controls = c;
        if restart {
            self.start_sim(out);
        }
    }

    /// Advance the learned and the true dynamics by one frame's worth of steps.
    pub fn animate(&mut self) -> Option<PatternFrame> {
        let (score, data) = (self.score.as_ref()?, self.data.as_ref()?);
        let sim = self.sim.as_mut()?;
        let c = self.controls;
        let tau = self.preset.score.tau_step;
        let sde = Sde {
            eta: c.eta,
            dt: c.dt,
        };
        let sched = &self.sched;
        let score_fn = |x: Tensor<4>| image_diffusion::score(score, x, sched, tau);
        let kernel = &self.kernel;
        let v = |s: Tensor<4>| kernel.apply(s);
        for _ in 0..c.speed {
            sim.state = sde.step(sim.state.clone(), &score_fn, &v);
            sim.ema.update(denoised(
                sim.state.x.clone(),
                sim.state.s.clone(),
                sched,
                tau,
            ));
            sim.steps += 1;
        }
        sim.gs_carry += c.speed as f64 * GS_PER_SDE;
        let gs_steps = sim.gs_carry.floor() as usize;
        sim.gs_carry -= gs_steps as f64;
        gray_scott::run(&self.params, &mut sim.truth, gs_steps);
        let learned = to_vec(sim.ema.value.clone());
        let truth = sim.truth.to_scaled();
        if sim.frames % DELTA_FRAMES == 0 || sim.anchor.is_none() {
            sim.anchor = Some((learned.clone(), truth.clone()));
        }
        sim.frames += 1;
        let (al, at) = sim.anchor.as_ref().expect("set above");
        let diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x - y).collect();
        Some(PatternFrame {
            h: data.h,
            w: data.w,
            learned_delta: diff(&learned, al),
            truth_delta: diff(&truth, at),
            learned,
            truth,
            steps: sim.steps,
        })
    }

    /// Write what this job has so far into a new run directory.
    pub fn save(&self, dir: &Path) -> Result<(), RunDirError> {
        let run = RunDir::create(dir, false)?;
        run.write_preset(&self.preset)?;
        if let Some(s) = &self.score {
            run.save_image_score(s.clone())?;
        }
        run.write_losses(&self.losses)?;
        if let Some(d) = &self.data
            && !self.samples.is_empty()
        {
            run.write_image_samples(&self.samples, d.h, d.w)?;
        }
        if let Some(d) = &self.data {
            let path = dir.join(checkpoint::DATASET);
            turing::write_cached(&self.preset.dataset, self.preset.seed, &path, d).map_err(
                |e| RunDirError::Io {
                    path,
                    source: std::io::Error::other(e.to_string()),
                },
            )?;
        }
        if let Some(m) = &self.metrics {
            run.write_json_metrics(m)?;
        }
        Ok(())
    }
}
