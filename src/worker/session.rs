//! One job as the app runs it: the same training as `train::job`, cut into single steps so
//! the worker can pause, steer, animate and report between any two of them.

use super::background::{Background, Poll};
use super::epochs::Epochs;
use super::event::{
    Cloud, Event, Frame, JobMetrics, JobStarted, ParticleFrame, PointData, ProgressInfo, Shows,
    VectorField,
};
use super::job::JobSession;
use crate::backend::Backend;
use crate::data::{Dataset, lorenz};
use crate::method::diffusion::{self, Schedule};
use crate::metrics::report::{Metrics, MmdCurve};
use crate::nn::flow_host::running_field;
use crate::nn::flow_mlp::FlowMlp;
use crate::nn::score_mlp::ScoreMlp;
use crate::preset::Preset;
use crate::sim::particles::{self, Particles};
use crate::tensor_util::{from_rows, to_vec};
use crate::train::checkpoint::{RunDir, RunDirError};
use crate::train::evaluate::evaluate_with_curves;
use crate::train::job::{
    FlowTrainer, LossPoint, Phase, ScoreTrainer, final_loss, flow_config, gather,
    noised_with_scores,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// When a job and its running phase began, and why the job ended early: what both kinds of
/// session keep to time their phases and to end.
pub(super) struct JobClock {
    started: Instant,
    phase: Instant,
    /// Why the job ended early (`None` while it runs or once it finished).
    pub(super) stopped: Option<String>,
}

impl JobClock {
    pub(super) fn new() -> Self {
        Self {
            started: Instant::now(),
            phase: Instant::now(),
            stopped: None,
        }
    }

    /// Seconds since the running phase began; the next phase begins now.
    pub(super) fn lap(&mut self) -> f64 {
        let s = self.phase.elapsed().as_secs_f64();
        self.phase = Instant::now();
        s
    }

    /// Seconds since the job began.
    pub(super) fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The job ends: `stop` says why when early, `failed` when it broke.
    pub(super) fn finish(&mut self, stop: Option<String>, failed: bool, out: &mut Vec<Event>) {
        self.stopped = stop.clone();
        out.push(Event::Finished {
            stop,
            failed,
            seconds: self.elapsed(),
        });
    }
}

/// Samples sent to the views (the run keeps all `score.samples`).
const SHOWN_SAMPLES: usize = 2000;
/// The views' noise stream (xor the job's seed).
const VIEW_SEED: u64 = 0x0B5E_77E5;

enum Stage {
    Score(Box<ScoreTrainer>, Epochs),
    Flow {
        trainer: Box<FlowTrainer>,
        epochs: Epochs,
        xs: Vec<f32>,
        ss: Vec<f32>,
    },
    /// The metrics, on their own thread once the first step of this stage starts them (a
    /// sweep queues several measured runs and must not start them all at once).
    Metrics(Option<Box<Background<Measured>>>),
    Done,
}

/// What the metrics thread returns: the metrics and the MMD curves.
type Measured = (Metrics, Vec<MmdCurve>);

/// How long one step waits for the metrics thread before handing control back.
const METRICS_WAIT: Duration = Duration::from_millis(20);

/// How particles look for a job of this dimension.
pub struct ParticleStyle {
    pub trail: usize,
    pub respawn_rate: f64,
}

impl ParticleStyle {
    pub fn for_dim(dim: usize) -> Self {
        if dim == 2 {
            Self {
                trail: 14,
                respawn_rate: 0.004,
            }
        } else {
            // In 3-D the particles draw long trajectories: never reborn unless they escape.
            Self {
                trail: 400,
                respawn_rate: 0.0,
            }
        }
    }
}

pub struct Session {
    preset: Preset,
    backend: Backend,
    dataset: Dataset,
    sched: Schedule,
    rng: StdRng,
    stage: Stage,
    /// Inference copies of the models as they were at the last refresh.
    score: Option<ScoreMlp>,
    flow: Option<FlowMlp>,
    losses: Vec<LossPoint>,
    samples: Vec<f32>,
    metrics: Option<Metrics>,
    bounds: Vec<[f32; 2]>,
    particles: Option<Particles>,
    clock: JobClock,
    /// The seconds the score and flow phases took.
    seconds: [f64; 2],
    /// Noise for what the views show (samples drawn while the score trains): never the
    /// training's own `rng`, so watching a job does not change what it learns.
    view_rng: StdRng,
    /// RK4 steps between points of the MMD curves (the app plots them; the CLI needs only
    /// the end point).
    curve_every: usize,
    cancel: Arc<AtomicBool>,
    pub inject_panic: bool,
    /// Stop once the score is trained ([`Session::score_only`]).
    score_only: bool,
}

/// Per-axis data bounds with a margin of `pad` times the range on each side.
pub fn bounds_of(points: &[f32], dim: usize, pad: f32) -> Vec<[f32; 2]> {
    (0..dim)
        .map(|a| {
            let (lo, hi) = points
                .chunks(dim)
                .map(|p| p[a])
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), x| {
                    (l.min(x), h.max(x))
                });
            let m = (hi - lo).max(1e-3) * pad;
            [lo - m, hi + m]
        })
        .collect()
}

/// What the views show of `dataset` before anything is trained.
pub fn point_data(preset: &Preset, dataset: &Dataset) -> PointData {
    let dim = dataset.dim;
    let shown = dataset.spread(2000.min(dataset.len()));
    let bounds = bounds_of(&shown, dim, 0.15);
    PointData {
        dim,
        data: Cloud { dim, points: shown },
        bounds,
        truth: truth_trajectory(preset, dataset),
    }
}

impl Session {
    /// Generate (or read) the data and set up the score phase; a file that cannot be used
    /// is refused here, before anything is trained or written.
    pub fn new(
        preset: Preset,
        backend: Backend,
        cancel: Arc<AtomicBool>,
        out: &mut Vec<Event>,
    ) -> Result<Self, crate::data::table::DataError> {
        let dataset = Dataset::generate(&preset.dataset, preset.data_seed())?;
        Ok(Self::with_data(preset, backend, dataset, cancel, out))
    }

    /// [`Session::new`] on data already read.
    pub fn with_data(
        preset: Preset,
        backend: Backend,
        dataset: Dataset,
        cancel: Arc<AtomicBool>,
        out: &mut Vec<Event>,
    ) -> Self {
        let s = &preset.score;
        let epochs = Epochs::new(Phase::Score, dataset.len(), s.batch, s.epochs);
        let trainer =
            ScoreTrainer::new(dataset.dim, s, epochs.total(), preset.seed, &backend.device);
        let stage = Stage::Score(Box::new(trainer), epochs);
        Self::assemble(preset, backend, dataset, stage, cancel, out)
    }

    /// A job that trains only the flow on a score trained elsewhere (a sweep's models share
    /// one score and one dataset, drawn with `dataset.seed`): the flow, its batches and
    /// probes, and the metrics' random baselines follow `preset.seed`. The score's losses
    /// and training time are kept so the run directory is complete.
    #[allow(clippy::too_many_arguments)]
    pub fn from_score(
        preset: Preset,
        backend: Backend,
        dataset: Dataset,
        score: (ScoreMlp, Vec<LossPoint>, f64),
        cancel: Arc<AtomicBool>,
        out: &mut Vec<Event>,
    ) -> Self {
        let mut s = Self::assemble(preset, backend, dataset, Stage::Done, cancel, out);
        let (model, losses, seconds) = score;
        s.score = Some(model);
        s.losses = losses;
        s.seconds[0] = seconds;
        s.start_flow(out);
        s
    }

    /// A job whose flow was trained elsewhere (in a sweep's stack, `worker::stacked_flows`)
    /// on this score: it only measures the metrics, and writes the run as
    /// [`Session::from_score`] would have. A flow that stopped early (`flow.stop`) is
    /// written with partial metrics and that reason, as a job stopped there would be.
    pub fn from_trained(
        backend: Backend,
        dataset: Dataset,
        score: (ScoreMlp, f64),
        flow: super::stacked_flows::TrainedFlow,
        cancel: Arc<AtomicBool>,
        out: &mut Vec<Event>,
    ) -> Self {
        let t = flow;
        let mut s = Self::assemble(
            t.preset,
            backend,
            dataset,
            Stage::Metrics(None),
            cancel,
            out,
        );
        let (model, seconds) = score;
        s.score = Some(model);
        s.flow = Some(t.flow);
        s.losses = t.losses;
        s.samples = t.samples;
        s.seconds = [seconds, t.seconds_flow];
        if let Some(why) = t.stop {
            s.stage = Stage::Done;
            s.finish(Some(why), true, out);
        } else {
            out.push(Event::Progress(ProgressInfo::starting(Phase::Metrics)));
        }
        s
    }

    /// End the job once its score is trained (a sweep's shared score).
    pub fn score_only(mut self) -> Self {
        self.score_only = true;
        self
    }

    /// The trained score with its losses and training time, once the score phase is over.
    pub fn trained_score(&self) -> Option<(ScoreMlp, Vec<LossPoint>, f64)> {
        let score = self
            .score
            .clone()
            .filter(|_| !matches!(self.stage, Stage::Score(..)))?;
        let losses = self
            .losses
            .iter()
            .filter(|l| l.phase == Phase::Score)
            .cloned()
            .collect();
        Some((score, losses, self.seconds[0]))
    }

    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// The flow as last refreshed (trained, once the flow phase is over).
    pub fn flow(&self) -> Option<&FlowMlp> {
        self.flow.as_ref()
    }

    /// The points drawn from the score model when the flow phase began.
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    pub fn losses(&self) -> &[LossPoint] {
        &self.losses
    }

    fn assemble(
        preset: Preset,
        backend: Backend,
        dataset: Dataset,
        stage: Stage,
        cancel: Arc<AtomicBool>,
        out: &mut Vec<Event>,
    ) -> Self {
        let shows = point_data(&preset, &dataset);
        let bounds = shows.bounds.clone();
        out.push(Event::Started(Box::new(JobStarted {
            preset: preset.name.clone(),
            backend: backend.description.clone(),
            shows: Shows::Points(shows),
        })));
        Self {
            sched: Schedule::cosine(preset.score.diffusion_steps),
            rng: StdRng::seed_from_u64(preset.seed),
            view_rng: StdRng::seed_from_u64(preset.seed ^ VIEW_SEED),
            clock: JobClock::new(),
            seconds: [f64::NAN; 2],
            curve_every: (preset.eval.rk4_steps / 10).max(1),
            stage,
            score_only: false,
            score: None,
            flow: None,
            losses: Vec::new(),
            samples: Vec::new(),
            metrics: None,
            bounds,
            particles: None,
            cancel,
            inject_panic: false,
            preset,
            backend,
            dataset,
        }
    }

    pub fn dim(&self) -> usize {
        self.dataset.dim
    }

    /// Record how long the phase that ends now took.
    fn end_phase(&mut self) {
        let i = match self.stage {
            Stage::Score(..) => 0,
            Stage::Flow { .. } => 1,
            _ => return,
        };
        self.seconds[i] = self.clock.lap();
    }

    fn finish(&mut self, stop: Option<String>, failed: bool, out: &mut Vec<Event>) {
        self.clock.finish(stop, failed, out);
    }

    /// Copy the models being trained into the inference slots the views use.
    fn refresh_models(&mut self) {
        match &self.stage {
            Stage::Score(t, _) => self.score = Some(t.model()),
            Stage::Flow { trainer, .. } => self.flow = Some(trainer.model()),
            _ => {}
        }
    }

    fn non_finite(&mut self, phase: Phase, epoch: usize, out: &mut Vec<Event>) {
        let why = crate::train::job::Stop::NonFinite { phase, epoch }.to_string();
        self.end_phase();
        self.stage = Stage::Done;
        self.finish(Some(why), true, out);
    }

    fn start_flow(&mut self, out: &mut Vec<Event>) {
        self.end_phase();
        let score = self.score.as_ref().expect("score trained");
        let n = self.preset.score.samples;
        self.samples = to_vec(diffusion::sample(
            score,
            n,
            &self.sched,
            &self.backend.device,
            &mut self.rng,
        ));
        let dim = self.dataset.dim;
        let shown = self.samples.len().min(SHOWN_SAMPLES * dim);
        out.push(Event::Samples(Cloud {
            dim,
            points: self.samples[..shown].to_vec(),
        }));
        self.push_score_field(out);
        let f = &self.preset.flow;
        let epochs = Epochs::new(Phase::Flow, self.dataset.len(), f.batch, f.epochs);
        let cfg = flow_config(&self.preset, self.dataset.dim);
        let seed = self.preset.seed;
        let trainer = FlowTrainer::new(cfg, f, epochs.total(), seed, &self.backend.device);
        self.stage = Stage::Flow {
            trainer: Box::new(trainer),
            epochs,
            xs: Vec::new(),
            ss: Vec::new(),
        };
    }

    /// The metrics of the trained models, on their own thread: the views keep playing (and
    /// a sweep's click on another model is answered) while they run.
    fn begin_metrics(&self) -> Option<Background<Measured>> {
        let (score, flow) = (self.score.clone()?, self.flow.clone()?);
        let (preset, data) = (self.preset.clone(), self.dataset.clone());
        let (backend, every) = (self.backend.clone(), self.curve_every);
        Some(Background::spawn(self.cancel.clone(), move |obs| {
            evaluate_with_curves(&preset, &data, &score, Some(&flow), &backend, every, obs)
        }))
    }

    fn metrics_measured(&mut self, (mut m, curves): Measured, out: &mut Vec<Event>) {
        m.score_loss_final = final_loss(&self.losses, Phase::Score);
        m.flow_loss_final = final_loss(&self.losses, Phase::Flow);
        [m.seconds_score, m.seconds_flow] = self.seconds;
        out.push(Event::Metrics(JobMetrics::Points {
            metrics: Box::new(m.clone()),
            curves,
        }));
        self.metrics = Some(m);
    }

    fn push_score_field(&self, out: &mut Vec<Event>) {
        let Some(score) = &self.score else { return };
        let dim = self.dataset.dim;
        let origins = if dim == 2 {
            particles::grid(&self.bounds, 22)
        } else {
            self.dataset.spread(400)
        };
        let tau = self.preset.score.tau_step;
        let device = &self.backend.device;
        let s = to_vec(diffusion::score(
            score,
            from_rows(&origins, dim, device),
            &self.sched,
            tau,
        ));
        out.push(Event::ScoreField(VectorField {
            origins: Cloud {
                dim,
                points: origins,
            },
            vectors: Cloud { dim, points: s },
        }));
    }

    fn push_streamlines(&self, out: &mut Vec<Event>) {
        let Some(flow) = &self.flow else { return };
        let dim = self.dataset.dim;
        if dim != 2 {
            return;
        }
        let field = running_field(flow);
        let seeds = particles::grid(&self.bounds, 14);
        let len = 24;
        let lines = particles::streamlines(
            &field,
            &seeds,
            dim,
            0.03,
            len - 1,
            &self.bounds,
            &self.backend.device,
        );
        out.push(Event::Streamlines {
            len,
            lines: Cloud { dim, points: lines },
        });
    }

    /// Advance the particles one step under the current flow; `None` until a flow exists.
    pub fn animate(&mut self, count: usize, dt: f64) -> Option<ParticleFrame> {
        let flow = self.flow.as_ref()?;
        let dim = self.dataset.dim;
        let p = self.particles.get_or_insert_with(|| {
            let style = ParticleStyle::for_dim(dim);
            let wide = self.bounds.iter().map(|[lo, hi]| {
                let m = (hi - lo) * 0.5;
                [lo - m, hi + m]
            });
            Particles::new(
                count,
                style.trail,
                self.dataset.spread(4000.min(self.dataset.len())),
                dim,
                wide.collect(),
                style.respawn_rate,
                self.preset.seed,
            )
        });
        if p.count() != count {
            p.resize(count);
        }
        let field = running_field(flow);
        p.step(&field, dt, &self.backend.device);
        Some(ParticleFrame {
            dim,
            len: p.trail_len(),
            trails: p.trails(),
            speed: p.speeds().to_vec(),
        })
    }

    /// The CLI plots nothing: the MMD² is measured at the end of the RK4 run only.
    pub fn headless(mut self) -> Self {
        self.curve_every = self.preset.eval.rk4_steps.max(1);
        self
    }

    /// The metrics so far: all of them once measured; for a job that ended early, its
    /// times and losses with the reason it stopped (the MMDs unmeasured).
    pub fn metrics(&self) -> Option<Metrics> {
        if let Some(m) = &self.metrics {
            return Some(m.clone());
        }
        let why = self.clock.stopped.clone()?;
        let mut m = Metrics {
            backend: self.backend.kind.to_string(),
            seconds_score: self.seconds[0],
            seconds_flow: self.seconds[1],
            score_loss_final: final_loss(&self.losses, Phase::Score),
            flow_loss_final: final_loss(&self.losses, Phase::Flow),
            mmd2_learned: f64::NAN,
            mmd2_random: f64::NAN,
            mmd2_score: f64::NAN,
            mmd2_training_free: f64::NAN,
            ..Default::default()
        };
        crate::metrics::report::Partial::set_interrupted(&mut m, why);
        Some(m)
    }
}

pub(super) fn record(
    epochs: &mut Epochs,
    loss: f64,
    losses: &mut Vec<LossPoint>,
    out: &mut Vec<Event>,
) {
    if let Some(p) = epochs.record(loss) {
        out.push(Event::Loss {
            phase: p.phase,
            epoch: p.epoch,
            loss: p.loss,
        });
        losses.push(p);
    }
}

/// One true Lorenz trajectory from the first data state, in the data's coordinates.
fn truth_trajectory(preset: &Preset, data: &Dataset) -> Option<Cloud> {
    let l = preset.dataset.lorenz()?;
    let st = data.standardizer.as_ref()?;
    let z0 = data.head(1);
    let mut x: [f64; 3] = std::array::from_fn(|i| z0[i] as f64 * st.std[i] + st.mean[i]);
    let mut points = Vec::with_capacity(3 * 2000);
    for _ in 0..2000 {
        x = lorenz::rk4_step(x, l.dt, l.system());
        points.extend((0..3).map(|i| ((x[i] - st.mean[i]) / st.std[i]) as f32));
    }
    Some(Cloud { dim: 3, points })
}

impl JobSession for Session {
    fn is_training(&self) -> bool {
        !matches!(self.stage, Stage::Done)
    }

    fn has_flow(&self) -> bool {
        self.flow.is_some()
    }

    fn has_models(&self) -> bool {
        self.score.is_some()
    }

    /// Which stage runs now (changes end a worker slice, so the UI hears of them at once).
    fn stage_index(&self) -> usize {
        match self.stage {
            Stage::Score(..) => 0,
            Stage::Flow { .. } => 1,
            Stage::Metrics(_) => 2,
            Stage::Done => 3,
        }
    }

    fn progress(&self) -> Option<ProgressInfo> {
        match &self.stage {
            Stage::Score(_, e) | Stage::Flow { epochs: e, .. } => Some(e.progress()),
            Stage::Metrics(run) => Some(
                run.as_ref()
                    .and_then(|r| r.progress())
                    .map_or(ProgressInfo::starting(Phase::Metrics), ProgressInfo::from),
            ),
            Stage::Done => None,
        }
    }

    /// One training step (one batch), or the move to the next phase.
    fn step(&mut self, out: &mut Vec<Event>) {
        if std::mem::take(&mut self.inject_panic) {
            panic!("injected failure (test)");
        }
        let dim = self.dataset.dim;
        match &mut self.stage {
            Stage::Score(trainer, epochs) => match epochs.next_batch(&mut self.rng) {
                Some(idx) => {
                    let x = gather(&self.dataset.points, &idx, dim);
                    match trainer.step(&x, &self.sched, &mut self.rng) {
                        Ok(loss) => record(epochs, loss, &mut self.losses, out),
                        Err(_) => {
                            let phase_epoch = epochs.epoch;
                            self.score = Some(trainer.last_good());
                            self.non_finite(Phase::Score, phase_epoch, out);
                        }
                    }
                }
                None => {
                    self.score = Some(trainer.model());
                    if self.score_only {
                        self.end_phase();
                        self.stage = Stage::Done;
                        self.finish(None, false, out);
                    } else {
                        self.start_flow(out);
                    }
                }
            },
            Stage::Flow {
                trainer,
                epochs,
                xs,
                ss,
            } => {
                if epochs.at_epoch_start() && epochs.epoch < epochs.epochs {
                    let score = self.score.as_ref().expect("the score phase came first");
                    let tau = self.preset.score.tau_step;
                    (*xs, *ss) = noised_with_scores(
                        score,
                        &self.dataset,
                        &self.sched,
                        tau,
                        &self.backend.device,
                        &mut self.rng,
                    );
                }
                match epochs.next_batch(&mut self.rng) {
                    Some(idx) => {
                        let (x, s) = (gather(xs, &idx, dim), gather(ss, &idx, dim));
                        match trainer.step(&x, &s, &mut self.rng) {
                            Ok(loss) => record(epochs, loss, &mut self.losses, out),
                            Err(_) => {
                                let e = epochs.epoch;
                                self.flow = Some(trainer.last_good());
                                self.non_finite(Phase::Flow, e, out);
                            }
                        }
                    }
                    None => {
                        self.flow = Some(trainer.model());
                        self.end_phase();
                        self.stage = Stage::Metrics(None);
                        out.push(Event::Progress(ProgressInfo::starting(Phase::Metrics)));
                    }
                }
            }
            Stage::Metrics(None) => match self.begin_metrics() {
                Some(run) => self.stage = Stage::Metrics(Some(Box::new(run))),
                None => {
                    self.stage = Stage::Done;
                    self.finish(Some("no trained flow to measure".into()), true, out);
                }
            },
            Stage::Metrics(Some(run)) => {
                let measured = match run.poll(METRICS_WAIT) {
                    Poll::Running => return,
                    Poll::Done(m) => m,
                    Poll::Panicked(p) => {
                        self.stage = Stage::Done;
                        std::panic::resume_unwind(p)
                    }
                };
                self.stage = Stage::Done;
                let stop = if self.cancel.load(Ordering::Relaxed) {
                    Some("stopped while computing metrics".to_string())
                } else {
                    self.metrics_measured(measured, out);
                    None
                };
                self.finish(stop, false, out);
            }
            Stage::Done => {}
        }
    }

    /// End the job now, keeping what it trained.
    fn stop(&mut self, why: &str, out: &mut Vec<Event>) {
        if self.is_training() {
            self.refresh_models();
            self.end_phase();
            self.stage = Stage::Done;
            self.finish(Some(why.to_string()), false, out);
        }
    }

    /// After a panic the stage may be half-updated: stop training, keep the models.
    fn abandon(&mut self) {
        self.stage = Stage::Done;
    }

    fn set_lr(&mut self, score: f64, flow: f64) {
        match &mut self.stage {
            Stage::Score(t, _) => t.set_lr(score),
            Stage::Flow { trainer, .. } => trainer.set_lr(flow),
            _ => {}
        }
    }

    /// Send what the score and flow views show of the models as they are now.
    fn refresh_views(&mut self, with_samples: bool, out: &mut Vec<Event>) {
        self.refresh_models();
        if matches!(self.stage, Stage::Score(..)) {
            self.push_score_field(out);
            if with_samples && let Some(score) = &self.score {
                let s = to_vec(diffusion::sample(
                    score,
                    400,
                    &self.sched,
                    &self.backend.device,
                    &mut self.view_rng,
                ));
                out.push(Event::Samples(Cloud {
                    dim: self.dataset.dim,
                    points: s,
                }));
            }
        }
        if self.flow.is_some() {
            self.push_streamlines(out);
        }
    }

    fn preset(&self) -> &Preset {
        &self.preset
    }

    /// Write what this job has so far into `run` (not committed).
    fn write_into(&self, run: &RunDir) -> Result<(), RunDirError> {
        run.write_preset(&self.preset)?;
        if let Some(s) = &self.score {
            run.save_score(s.clone())?;
        }
        if let Some(f) = &self.flow {
            run.save_flow(f.clone())?;
        }
        run.write_losses(&self.losses)?;
        if !self.samples.is_empty() {
            run.write_samples(&self.samples, self.dataset.dim)?;
        }
        if let Some(m) = self.metrics() {
            run.write_metrics(&m)?;
        }
        Ok(())
    }

    fn frame(&mut self, particles: usize, dt: f64) -> Option<Frame> {
        self.animate(particles, dt).map(Frame::Particles)
    }

    fn metric_lines(&self) -> Vec<String> {
        self.metrics().map(|m| m.lines()).unwrap_or_default()
    }

    fn inject_panic(&mut self) {
        self.inject_panic = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_hold_the_data_with_a_margin() {
        let b = bounds_of(&[0.0, -1.0, 2.0, 3.0], 2, 0.25);
        assert_eq!(b, vec![[-0.5, 2.5], [-2.0, 4.0]]);
    }

    /// The user's file path is the built-in path: the ring's own points in a CSV train to
    /// the same losses, to the bit, as the built-in ring with the same seed.
    #[test]
    fn a_csv_of_the_rings_points_trains_as_the_ring_does() {
        let _rng = crate::tensor_util::rng_lock();
        let tiny = [
            "score.epochs=3",
            "score.batch=64",
            "score.samples=20",
            "flow.epochs=2",
            "flow.batch=64",
            "eval.mmd_points=32",
            "eval.rk4_steps=2",
            "eval.cos_points=32",
        ];
        let sets: Vec<String> = tiny.iter().map(|s| s.to_string()).collect();
        let mut with_n = sets.clone();
        with_n.push("dataset.n=300".into());
        let mut ring = Preset::load("ring", true, &with_n).unwrap();
        ring.seed = 1;
        let data = Dataset::generate(&ring.dataset, ring.data_seed()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.csv");
        let text: String = data
            .points
            .chunks(2)
            .map(|p| format!("{},{}\n", p[0], p[1]))
            .collect();
        std::fs::write(&path, text).unwrap();
        let file = crate::preset::FileData {
            path: path.display().to_string(),
            standardise: false,
            ..Default::default()
        };
        let mut own = Preset::for_file("ring", file, true, &sets).unwrap();
        own.seed = 1;
        let losses = |p: Preset| {
            let mut out = Vec::new();
            let cancel = Arc::new(AtomicBool::new(false));
            let mut s = Session::new(p, Backend::cpu(), cancel, &mut out).unwrap();
            let ended = super::super::drive::run_to_end(&mut s, &|| None, &mut |_| {});
            assert_eq!(ended.stop, None);
            assert_eq!(s.dataset.points, data.points);
            s.losses
                .iter()
                .map(|l| l.loss.to_bits())
                .collect::<Vec<_>>()
        };
        let (a, b) = (losses(ring), losses(own));
        assert!(a.len() == 5, "3 score and 2 flow epochs: {}", a.len());
        assert_eq!(a, b);
    }

    /// A cancel between steps ends the job at once, keeping the score trained so far, with
    /// metrics that say why and the losses of every epoch that finished.
    #[test]
    fn a_cancel_stops_the_job_and_keeps_the_model() {
        let _rng = crate::tensor_util::rng_lock();
        let sets = ["dataset.n=500".to_string()];
        let preset = Preset::load("ring", true, &sets).unwrap();
        let mut out = Vec::new();
        let cancel = Arc::new(AtomicBool::new(false));
        let mut s = Session::new(preset, Backend::cpu(), cancel, &mut out).unwrap();
        let epochs = std::cell::Cell::new(0);
        let ended = super::super::drive::run_to_end(
            &mut s,
            &|| (epochs.get() >= 3).then(|| "interrupted (test)".to_string()),
            &mut |e| epochs.set(epochs.get() + usize::from(matches!(e, Event::Loss { .. }))),
        );
        let why = ended.stop.unwrap();
        assert!(
            why.contains("interrupted (test): cancelled during the score phase"),
            "{why}"
        );
        assert_eq!(s.losses.len(), 3);
        assert!(s.has_models() && !s.has_flow());
        let m = s.metrics().unwrap();
        assert_eq!(m.interrupted.as_deref(), Some(why.as_str()));
        assert!(m.score_loss_final.is_finite() && m.seconds_score > 0.0);
        assert!(m.seconds_flow.is_nan() && m.mmd2_learned.is_nan());
    }
}
