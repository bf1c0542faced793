//! A sweep as a job (`equiflow sweep` and the app's Solutions view step the same one): one
//! score model, then N flows that differ only in their seed — `stack` at a time as one
//! stacked network ([`StackedFlows`]), or one after the other when `stack` is 1 — each
//! measured as an ordinary run ([`Session::from_trained`] / [`Session::from_score`]). As
//! each model is measured the session sends [`Solutions`]: where every model stands, how
//! far their fields agree, and a 2-D picture of the fields. One finished model at a time is
//! "watched": the Flow and 3-D views animate it.

use super::event::{Event, Frame, JobMetrics, ModelState, ProgressInfo, Solutions};
use super::job::JobSession;
use super::session::{JobClock, Session};
use super::stacked_flows::StackedFlows;
use crate::backend::Backend;
use crate::data::Dataset;
use crate::metrics::consistency::{embedding, pairwise};
use crate::preset::Preset;
use crate::train::checkpoint::{RunDir, RunDirError};
use crate::train::job::{LossPoint, Phase};
use crate::train::sweep::{self, ModelFields, Summary};
use serde_json::Value;
use std::collections::VecDeque;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The consistency table's keys, with the paper's values for the classic Lorenz system
/// (σ 10, ρ 28, β 8/3; METHOD.md), shown beside ours.
const PAPER_LORENZ: [(&str, &str); 7] = [
    ("consistency_learned", "0.9988 ± 0.0005"),
    ("consistency_training_free", "0.504 ± 0.290"),
    ("learned_vs_training_free", "0.371 ± 0.199"),
    ("cos_truth_learned", "0.257 ± 0.012"),
    ("cos_truth_training_free", "0.129 ± 0.077"),
    ("cos_truth_random", "0.045 ± 0.039"),
    ("cos_truth_score", "0.027"),
];

enum Stage {
    Score(Box<Session>),
    /// Models `range` trained as one stack.
    Stack(Box<StackedFlows>, Range<usize>),
    /// Model k trained (and measured) on its own.
    Single(Box<Session>, usize),
    /// Models whose flows are trained, measured one by one.
    Measure(VecDeque<(usize, Box<Session>)>, usize),
    Done,
}

/// One model of the sweep.
struct Model {
    preset: Preset,
    state: ModelState,
    /// Its run once it ended (measured, or stopped early): what Save writes and Watch shows.
    run: Option<Box<Session>>,
    fields: Option<ModelFields>,
}

pub struct SweepSession {
    base: Preset,
    backend: Backend,
    stack: usize,
    cancel: Arc<AtomicBool>,
    stage: Stage,
    models: Vec<Model>,
    scorer: Option<Box<Session>>,
    score: Option<(crate::nn::score_mlp::ScoreMlp, Vec<LossPoint>, f64)>,
    data: Option<Dataset>,
    /// The states the fields are compared on, and the true field there (Lorenz).
    states: Option<(Vec<f32>, Option<Vec<f32>>)>,
    watched: Option<usize>,
    summary: Option<Summary>,
    /// Where each run is written as soon as it ends (the CLI); `force` replaces runs there.
    save_to: Option<(PathBuf, bool)>,
    clock: JobClock,
    inject_panic: bool,
}

impl SweepSession {
    /// The sweep over `base` with seeds `base.seed`, `base.seed + 1`, … (`seeds` of them).
    pub fn new(
        base: Preset,
        seeds: usize,
        stack: usize,
        backend: Backend,
        cancel: Arc<AtomicBool>,
        out: &mut Vec<Event>,
    ) -> Result<Self, crate::data::table::DataError> {
        let data = Dataset::generate(&base.dataset, base.data_seed())?;
        Ok(Self::with_data(
            base, data, seeds, stack, backend, cancel, out,
        ))
    }

    /// [`SweepSession::new`] on the data already read (`base`'s, drawn with its data seed).
    pub fn with_data(
        base: Preset,
        data: Dataset,
        seeds: usize,
        stack: usize,
        backend: Backend,
        cancel: Arc<AtomicBool>,
        out: &mut Vec<Event>,
    ) -> Self {
        let seeds = seeds.max(1);
        let shared = sweep::model_preset(&base, base.seed);
        let scorer =
            Session::with_data(shared, backend.clone(), data, cancel.clone(), out).score_only();
        let models = (0..seeds as u64)
            .map(|k| Model {
                preset: sweep::model_preset(&base, base.seed.wrapping_add(k)),
                state: ModelState::Waiting,
                run: None,
                fields: None,
            })
            .collect();
        let s = Self {
            base,
            backend,
            stack: stack.max(1),
            cancel,
            stage: Stage::Score(Box::new(scorer)),
            models,
            scorer: None,
            score: None,
            data: None,
            states: None,
            watched: None,
            summary: None,
            save_to: None,
            clock: JobClock::new(),
            inject_panic: false,
        };
        out.push(Event::Solutions(Box::new(s.solutions())));
        s
    }

    /// Write the score's run (`DIR/score`), each model's (`DIR/seed-K`) as soon as it ends,
    /// and the summary (`DIR/models.csv`, `DIR/summary.json`) once all are measured.
    pub fn saving_into(mut self, dir: &Path, force: bool) -> Self {
        self.save_to = Some((dir.to_path_buf(), force));
        self
    }

    /// The summary, once every model is measured (models that stopped early left out).
    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }

    fn seed_dir(&self, k: usize) -> String {
        format!("seed-{}", self.models[k].preset.seed)
    }

    /// Write a run where the sweep saves as it goes; a failure stops the sweep.
    fn save_as_we_go(&mut self, name: &str, job: &dyn JobSession, out: &mut Vec<Event>) -> bool {
        let Some((dir, force)) = &self.save_to else {
            return true;
        };
        match job.save(&dir.join(name), *force) {
            Ok(()) => true,
            Err(e) => {
                self.end(Some(format!("could not write {name}: {e}")), true, out);
                false
            }
        }
    }

    /// What the Solutions view shows now.
    pub fn solutions(&self) -> Solutions {
        let n = self.models.len();
        let measured: Vec<usize> = (0..n)
            .filter(|&k| self.models[k].fields.is_some())
            .collect();
        let fields: Vec<Vec<f32>> = measured
            .iter()
            .map(|&k| {
                self.models[k]
                    .fields
                    .as_ref()
                    .expect("measured")
                    .learned
                    .clone()
            })
            .collect();
        let mut agreement = vec![None; n * n];
        let pairs = pairwise(&fields);
        let mut p = pairs.iter();
        for (a, &i) in measured.iter().enumerate() {
            agreement[i * n + i] = Some(1.0);
            for &j in &measured[a + 1..] {
                let c = *p.next().expect("one |cos| per pair");
                agreement[i * n + j] = Some(c);
                agreement[j * n + i] = Some(c);
            }
        }
        let mut plane = vec![None; n];
        for (&k, xy) in measured.iter().zip(embedding(&fields)) {
            plane[k] = Some(xy);
        }
        let metric = |k: usize, f: fn(&crate::metrics::report::Metrics) -> Option<f64>| {
            let m = &self.models[k];
            m.fields.as_ref()?;
            m.run.as_ref()?.metrics().as_ref().and_then(f)
        };
        let summary = self.summary.as_ref().map_or_else(Vec::new, |s| {
            let j = &s.json;
            // The paper's numbers are for the classic system only.
            let classic = crate::data::lorenz::Lorenz::CLASSIC;
            let lorenz = self
                .base
                .dataset
                .lorenz()
                .is_some_and(|l| l.system() == classic);
            PAPER_LORENZ
                .iter()
                .filter_map(|(key, paper)| {
                    let (m, sd) = (j[key]["mean"].as_f64()?, j[key]["sd"].as_f64()?);
                    let beside = if lorenz {
                        format!("   (paper, 100 models: {paper})")
                    } else {
                        String::new()
                    };
                    Some(format!("{key}: {m:.3} ± {sd:.3}{beside}"))
                })
                .chain(
                    j["lyapunov_positive_fraction"]
                        .as_f64()
                        .map(|f| format!("positive Lyapunov exponents: {:.0} %", 100.0 * f)),
                )
                .collect()
        });
        Solutions {
            seeds: self.models.iter().map(|m| m.preset.seed).collect(),
            states: self.models.iter().map(|m| m.state.clone()).collect(),
            cos_truth: (0..n).map(|k| metric(k, |m| m.cos_truth_learned)).collect(),
            lyapunov: (0..n).map(|k| metric(k, |m| m.lyapunov_mean)).collect(),
            agreement,
            embedding: plane,
            watched: self.watched,
            summary,
        }
    }

    /// The score is trained: keep it and start the first models.
    fn score_done(&mut self, scorer: Box<Session>, out: &mut Vec<Event>) {
        if !self.save_as_we_go("score", &*scorer, out) {
            return;
        }
        let data = scorer.dataset().clone();
        self.states = Some(sweep::comparison_states(&self.base, &data));
        self.score = scorer.trained_score();
        self.data = Some(data);
        self.scorer = Some(scorer);
        self.start_models(0, out);
    }

    /// Start models `first..` (the next stack, or the next single model).
    fn start_models(&mut self, first: usize, out: &mut Vec<Event>) {
        let n = self.models.len();
        if first >= n {
            return self.finish_all(out);
        }
        let (score, data) = match (&self.score, &self.data) {
            (Some(s), Some(d)) => (s.clone(), d.clone()),
            _ => unreachable!("models start after the score"),
        };
        let range = first..(first + self.stack).min(n);
        for m in &mut self.models[range.clone()] {
            m.state = ModelState::Training;
        }
        out.push(Event::Notice(if range.len() == 1 {
            format!(
                "model {} of {n} (seed {})",
                first + 1,
                self.models[first].preset.seed
            )
        } else {
            format!("flows {}–{} of {n}, trained together", first + 1, range.end)
        }));
        self.stage = if self.stack == 1 {
            let mut ignored = Vec::new();
            let job = Session::from_score(
                self.models[first].preset.clone(),
                self.backend.clone(),
                data,
                score,
                self.cancel.clone(),
                &mut ignored,
            )
            .headless();
            Stage::Single(Box::new(job), first)
        } else {
            let presets = self.models[range.clone()]
                .iter()
                .map(|m| m.preset.clone())
                .collect();
            let (model, losses, _) = score;
            let flows = StackedFlows::new(presets, &self.backend, data, model, &losses);
            Stage::Stack(Box::new(flows), range)
        };
        out.push(Event::Solutions(Box::new(self.solutions())));
    }

    /// The runs of the stack's models (`range`), as their flows stand now, to be measured.
    fn stack_runs(&self, flows: StackedFlows, range: Range<usize>) -> Vec<(usize, Box<Session>)> {
        let (score, data) = match (&self.score, &self.data) {
            (Some(s), Some(d)) => ((s.0.clone(), s.2), d),
            _ => unreachable!("models start after the score"),
        };
        range
            .zip(flows.finish())
            .map(|(k, trained)| {
                let job = Session::from_trained(
                    self.backend.clone(),
                    data.clone(),
                    score.clone(),
                    trained,
                    self.cancel.clone(),
                    &mut Vec::new(),
                )
                .headless();
                (k, Box::new(job))
            })
            .collect()
    }

    /// The stack's flows are trained: measure each as its own run.
    fn stack_done(&mut self, flows: StackedFlows, range: Range<usize>, out: &mut Vec<Event>) {
        let next = range.end;
        let mut queue = VecDeque::new();
        for (k, job) in self.stack_runs(flows, range) {
            if job.is_training() {
                self.models[k].state = ModelState::Trained;
                queue.push_back((k, job));
            } else if !self.model_ended(k, job, out) {
                return;
            }
        }
        self.stage = Stage::Measure(queue, next);
        out.push(Event::Solutions(Box::new(self.solutions())));
    }

    /// Model `k`'s run ended (measured, or stopped early): keep it, write it where the sweep
    /// saves, and show it. False when writing failed (the sweep has ended).
    fn model_ended(&mut self, k: usize, job: Box<Session>, out: &mut Vec<Event>) -> bool {
        let name = self.seed_dir(k);
        if !self.save_as_we_go(&name, &*job, out) {
            return false;
        }
        let stopped = job
            .metrics()
            .and_then(|m| m.interrupted.clone())
            .or_else(|| job.flow().is_none().then(|| "no flow".to_string()));
        let m = &mut self.models[k];
        match stopped {
            Some(why) => m.state = ModelState::Stopped(why),
            None => {
                let (pts, _) = self.states.as_ref().expect("states come with the score");
                let score = &self.score.as_ref().expect("the score").0;
                let flow = job.flow().expect("a measured model has its flow");
                let dim = job.dim();
                m.fields = Some(ModelFields::of(
                    &m.preset,
                    score,
                    flow,
                    pts,
                    dim,
                    &self.backend.device,
                ));
                m.state = ModelState::Done;
            }
        }
        m.run = Some(job);
        if self.watched.is_none() && self.models[k].fields.is_some() {
            self.watch(k, out);
        }
        out.push(Event::Solutions(Box::new(self.solutions())));
        true
    }

    fn finish_all(&mut self, out: &mut Vec<Event>) {
        self.stage = Stage::Done;
        let (_, truth) = self.states.as_ref().expect("states come with the score");
        let root = self.save_to.as_ref().map(|(d, _)| d.clone());
        let measured: Vec<_> = (0..self.models.len())
            .filter(|&k| self.models[k].fields.is_some())
            .map(|k| {
                let name = self.seed_dir(k);
                let m = &self.models[k];
                let metrics = m
                    .run
                    .as_ref()
                    .and_then(|r| r.metrics())
                    .map(|x| sweep::metrics_map(&x))
                    .unwrap_or_default();
                let dir = root
                    .as_ref()
                    .map_or_else(|| PathBuf::from(&name), |r| r.join(&name));
                let fields = m.fields.clone().expect("measured");
                ((dir, m.preset.seed, metrics), fields)
            })
            .collect();
        if measured.is_empty() {
            return self.end(
                Some("every model stopped before its metrics".into()),
                true,
                out,
            );
        }
        let mut summary = sweep::summarize(&self.base.name, measured, truth.as_deref());
        // One score for all: the sweep's cost is its wall time, not the runs' sum.
        summary.json["seconds_total"] = Value::from(self.clock.elapsed());
        if let Some((dir, _)) = &self.save_to
            && let Err(e) = summary.write(dir)
        {
            return self.end(Some(format!("could not write the summary: {e}")), true, out);
        }
        self.summary = Some(summary);
        out.push(Event::Solutions(Box::new(self.solutions())));
        self.end(None, false, out);
    }

    fn end(&mut self, stop: Option<String>, failed: bool, out: &mut Vec<Event>) {
        self.stage = Stage::Done;
        self.clock.finish(stop, failed, out);
    }

    /// Show model `k` (once its run ended with a flow): its streamlines, samples, metrics.
    fn watch(&mut self, k: usize, out: &mut Vec<Event>) {
        let Some(run) = self.models.get_mut(k).and_then(|m| m.run.as_mut()) else {
            return;
        };
        if !run.has_flow() {
            return;
        }
        self.watched = Some(k);
        run.refresh_views(false, out);
        if let Some(m) = run.metrics() {
            out.push(Event::Metrics(JobMetrics::Points {
                metrics: Box::new(m),
                curves: Vec::new(),
            }));
        }
    }
}

/// What a sweep's inner runs say that its front should hear: all the score's run says (its
/// start is the sweep's; its end is taken out before), only the progress of the models'
/// runs (a model's views and metrics come when it is watched).
fn forward(events: Vec<Event>, scoring: bool, out: &mut Vec<Event>) {
    out.extend(
        events
            .into_iter()
            .filter(|e| scoring || matches!(e, Event::Progress(_))),
    );
}

impl JobSession for SweepSession {
    fn preset(&self) -> &Preset {
        &self.base
    }

    fn is_training(&self) -> bool {
        !matches!(self.stage, Stage::Done)
    }

    fn has_flow(&self) -> bool {
        self.watched.is_some()
    }

    fn has_models(&self) -> bool {
        self.scorer.is_some() || matches!(&self.stage, Stage::Score(s) if s.has_models())
    }

    fn stage_index(&self) -> usize {
        match &self.stage {
            Stage::Score(_) => 0,
            // Each model's training and metrics, and the moment its metrics begin, are
            // stages of their own: the view hears of each at once.
            Stage::Stack(_, r) => 1 + 4 * r.start,
            Stage::Single(_, k) => 1 + 4 * k,
            Stage::Measure(q, _) => q.front().map_or(2, |(k, _)| {
                2 + 4 * k + usize::from(self.models[*k].state == ModelState::Measuring)
            }),
            Stage::Done => usize::MAX,
        }
    }

    fn progress(&self) -> Option<ProgressInfo> {
        match &self.stage {
            Stage::Score(s) | Stage::Single(s, _) => s.progress(),
            Stage::Stack(f, _) => Some(f.progress()),
            Stage::Measure(q, _) => Some(
                q.front()
                    .and_then(|(_, job)| job.progress())
                    .unwrap_or(ProgressInfo::starting(Phase::Metrics)),
            ),
            Stage::Done => None,
        }
    }

    fn step(&mut self, out: &mut Vec<Event>) {
        if std::mem::take(&mut self.inject_panic) {
            panic!("injected failure (test)");
        }
        let mut inner = Vec::new();
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Score(mut s) => {
                s.step(&mut inner);
                // The score run's end is not the sweep's: taken out, and acted on.
                let ended = inner
                    .iter()
                    .position(|e| matches!(e, Event::Finished { .. }))
                    .map(|i| inner.remove(i));
                forward(inner, true, out);
                match ended {
                    Some(Event::Finished { stop: None, .. }) => self.score_done(s, out),
                    Some(Event::Finished {
                        stop: Some(why),
                        failed,
                        ..
                    }) => {
                        self.scorer = Some(s);
                        self.end(Some(why), failed, out);
                    }
                    _ => self.stage = Stage::Score(s),
                }
            }
            Stage::Stack(mut flows, range) => {
                let going = flows.step();
                if let Some(p) = flows.ended_epoch() {
                    // Each stack's epochs follow the last one's on the Loss view.
                    let before = range.start / self.stack * self.base.flow.epochs;
                    out.push(Event::Loss {
                        phase: Phase::Flow,
                        epoch: before + p.epoch,
                        loss: p.loss,
                    });
                }
                if going {
                    self.stage = Stage::Stack(flows, range);
                } else {
                    self.stack_done(*flows, range, out);
                }
            }
            Stage::Single(mut job, k) => {
                job.step(&mut inner);
                for e in &inner {
                    if let Event::Loss { phase, epoch, loss } = e {
                        out.push(Event::Loss {
                            phase: *phase,
                            epoch: k * self.base.flow.epochs + epoch,
                            loss: *loss,
                        });
                    }
                }
                forward(inner, false, out);
                if job.is_training() {
                    if job.stage_index() == 2 {
                        self.models[k].state = ModelState::Measuring;
                    }
                    self.stage = Stage::Single(job, k);
                } else if self.model_ended(k, job, out) {
                    self.start_models(k + 1, out);
                }
            }
            Stage::Measure(mut queue, next) => {
                let Some((k, mut job)) = queue.pop_front() else {
                    return self.start_models(next, out);
                };
                if self.models[k].state != ModelState::Measuring {
                    // Said before the long metrics step, so the view shows which one runs.
                    self.models[k].state = ModelState::Measuring;
                    queue.push_front((k, job));
                    self.stage = Stage::Measure(queue, next);
                    out.push(Event::Solutions(Box::new(self.solutions())));
                    return;
                }
                job.step(&mut inner);
                forward(inner, false, out);
                if job.is_training() {
                    queue.push_front((k, job));
                    self.stage = Stage::Measure(queue, next);
                } else if self.model_ended(k, job, out) {
                    self.stage = Stage::Measure(queue, next);
                }
            }
            Stage::Done => {}
        }
    }

    fn stop(&mut self, why: &str, out: &mut Vec<Event>) {
        let mut inner = Vec::new();
        let mut ended: Vec<(usize, Box<Session>)> = Vec::new();
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Score(mut s) => {
                s.stop(why, &mut inner);
                self.scorer = Some(s);
            }
            Stage::Stack(flows, range) => {
                for (k, mut job) in self.stack_runs(*flows, range) {
                    job.stop(why, &mut inner);
                    ended.push((k, job));
                }
            }
            Stage::Single(mut job, k) => {
                job.stop(why, &mut inner);
                ended.push((k, job));
            }
            Stage::Measure(queue, _) => {
                for (k, mut job) in queue {
                    job.stop(why, &mut inner);
                    ended.push((k, job));
                }
            }
            Stage::Done => return,
        }
        for (k, job) in ended {
            if !self.model_ended(k, job, out) {
                return;
            }
        }
        self.end(Some(why.to_string()), false, out);
    }

    fn abandon(&mut self) {
        self.stage = Stage::Done;
    }

    fn set_lr(&mut self, score: f64, flow: f64) {
        if let Stage::Score(s) | Stage::Single(s, _) = &mut self.stage {
            s.set_lr(score, flow);
        }
    }

    fn refresh_views(&mut self, with_samples: bool, out: &mut Vec<Event>) {
        match (&mut self.stage, self.watched) {
            (Stage::Score(s), _) => s.refresh_views(with_samples, out),
            (_, Some(k)) => {
                if let Some(run) = &mut self.models[k].run {
                    run.refresh_views(with_samples, out);
                }
            }
            _ => {}
        }
    }

    fn frame(&mut self, particles: usize, dt: f64) -> Option<Frame> {
        let k = self.watched?;
        self.models[k].run.as_mut()?.frame(particles, dt)
    }

    /// The score's run (`score/`), every model's run that ended (`seed-K/`) and, once all
    /// are measured, the summary.
    fn write_into(&self, run: &RunDir) -> Result<(), RunDirError> {
        let scorer = match &self.stage {
            Stage::Score(s) => Some(&**s),
            _ => self.scorer.as_deref(),
        };
        if let Some(s) = scorer.filter(|s| s.has_models()) {
            s.save(&run.path.join("score"), true)?;
        }
        for (k, m) in self.models.iter().enumerate() {
            if let Some(r) = &m.run {
                r.save(&run.path.join(self.seed_dir(k)), true)?;
            }
        }
        if let Some(s) = &self.summary {
            s.write(&run.path).map_err(|e| RunDirError::Io {
                path: run.path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        }
        Ok(())
    }

    fn metric_lines(&self) -> Vec<String> {
        self.solutions().summary
    }

    fn inject_panic(&mut self) {
        self.inject_panic = true;
    }

    fn watch(&mut self, k: usize, out: &mut Vec<Event>) {
        SweepSession::watch(self, k, out);
        out.push(Event::Solutions(Box::new(self.solutions())));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::worker::drive;

    /// A Lorenz preset small enough for a sweep to run in seconds; `extra` settings last.
    pub(crate) fn tiny_lorenz(extra: &[&str]) -> Preset {
        let sets: Vec<String> = [
            "dataset.runs=2",
            "dataset.steps_per_run=150",
            "score.epochs=2",
            "score.samples=50",
            "flow.epochs=2",
            "flow.batch=64",
            "flow.hidden=16",
            "eval.mmd_points=64",
            "eval.rk4_steps=8",
            "eval.lyapunov_candidates=8",
            "eval.lyapunov_keep=4",
            "eval.lyapunov_steps=20",
            "eval.lyapunov_window=5",
            "eval.cos_points=64",
            "eval.protocol=\"ours\"",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
        Preset::load("lorenz", true, &sets).unwrap()
    }

    fn sweep(seeds: usize, stack: usize, dir: &Path, out: &mut Vec<Event>) -> SweepSession {
        let cancel = Arc::new(AtomicBool::new(false));
        SweepSession::new(tiny_lorenz(&[]), seeds, stack, Backend::cpu(), cancel, out)
            .unwrap()
            .saving_into(dir, false)
    }

    /// The sweep the app plays and the CLI runs: every model measured and written as it
    /// ends, the Solutions it sends agree with the summary, `aggregate` of the written run
    /// dirs rebuilds that summary, and a click on a model plays its flow.
    #[test]
    fn a_sweep_measures_every_model_and_shows_how_far_they_agree() {
        let _rng = crate::tensor_util::rng_lock();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sweep");
        let mut events = Vec::new();
        let mut job = sweep(3, 2, &dir, &mut events);
        let ended = drive::run_to_end(&mut job, &|| None, &mut |e| events.push(e.clone()));
        assert_eq!(ended.stop, None);
        let views: Vec<&Solutions> = events
            .iter()
            .filter_map(|e| match e {
                Event::Solutions(s) => Some(&**s),
                _ => None,
            })
            .collect();
        // Models arrive one by one: the heat map fills as they are measured.
        let measured = |s: &Solutions| s.embedding.iter().flatten().count();
        let counts: Vec<usize> = views.iter().map(|s| measured(s)).collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        assert!(counts.contains(&1) && counts.contains(&2), "{counts:?}");
        // The flows' losses continue from stack to stack on the Loss view.
        let flow_epochs: Vec<usize> = events
            .iter()
            .filter_map(|e| match e {
                Event::Loss {
                    phase: Phase::Flow,
                    epoch,
                    ..
                } => Some(*epoch),
                _ => None,
            })
            .collect();
        assert_eq!(
            flow_epochs.len(),
            4,
            "two stacks of two epochs: {flow_epochs:?}"
        );
        assert!(
            flow_epochs.windows(2).all(|w| w[0] < w[1]),
            "{flow_epochs:?}"
        );
        let last = *views.last().unwrap();
        assert_eq!(last.states, vec![ModelState::Done; 3]);
        assert_eq!(last.watched, Some(0), "the first model measured plays");
        for i in 0..3 {
            assert_eq!(last.agreement(i, i), Some(1.0));
            for j in 0..3 {
                let c = last.agreement(i, j).unwrap();
                assert!((0.0..=1.0 + 1e-9).contains(&c));
                assert_eq!(Some(c), last.agreement(j, i));
            }
        }
        assert!(last.cos_truth.iter().all(|c| c.is_some()));
        assert!(last.lyapunov.iter().all(|l| l.is_some()));
        assert!(
            last.summary
                .iter()
                .any(|l| l.starts_with("consistency_learned")),
            "{:?}",
            last.summary
        );
        // The summary's learned-vs-learned mean is the mean of the heat map's pairs.
        let s = job.summary().unwrap();
        let pairs = [(0, 1), (0, 2), (1, 2)].map(|(i, j)| last.agreement(i, j).unwrap());
        let mean = s.json["consistency_learned"]["mean"].as_f64().unwrap();
        assert!((mean - pairs.iter().sum::<f64>() / 3.0).abs() < 1e-12);
        // Written as it went: an ordinary run per model; aggregate rebuilds the summary.
        let seeds: Vec<u64> = last.seeds.clone();
        let dirs: Vec<PathBuf> = seeds
            .iter()
            .map(|s| dir.join(format!("seed-{s}")))
            .collect();
        assert!(
            dir.join("score")
                .join(crate::train::checkpoint::SCORE)
                .exists()
        );
        assert!(dir.join(sweep::SUMMARY).exists() && dir.join(sweep::MODELS_CSV).exists());
        let again = sweep::aggregate(&dirs, &Backend::cpu()).unwrap();
        for key in [
            "consistency_learned",
            "consistency_training_free",
            "learned_vs_training_free",
            "cos_truth_learned",
            "cos_truth_random",
        ] {
            let (a, b) = (&again.json[key]["mean"], &s.json[key]["mean"]);
            assert!(
                (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-12,
                "{key}: {a} vs {b}"
            );
        }
        // Watch model 2: its metrics come, and its flow plays.
        let mut out = Vec::new();
        JobSession::watch(&mut job, 2, &mut out);
        let cos = out.iter().find_map(|e| match e {
            Event::Metrics(JobMetrics::Points { metrics, .. }) => metrics.cos_truth_learned,
            _ => None,
        });
        assert_eq!(cos, last.cos_truth[2]);
        assert!(
            out.iter()
                .any(|e| matches!(e, Event::Solutions(s) if s.watched == Some(2)))
        );
        assert!(matches!(job.frame(16, 0.01), Some(Frame::Particles(f)) if f.dim == 3));
        // Saved again from memory (the app's Save): the same layout.
        let copy = tmp.path().join("copy");
        job.save(&copy, false).unwrap();
        for name in ["score", "seed-2", sweep::SUMMARY] {
            assert!(
                copy.join(name.replace("seed-2", &format!("seed-{}", seeds[2])))
                    .exists()
            );
        }
    }

    /// A stop in the middle of a stack keeps every model of it, each written with a partial
    /// metrics.json that says why; the sweep ends early without a summary.
    #[test]
    fn a_stopped_sweep_keeps_the_models_it_trained() {
        let _rng = crate::tensor_util::rng_lock();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sweep");
        let mut out = Vec::new();
        let mut job = sweep(4, 2, &dir, &mut out);
        while !matches!(job.stage, Stage::Stack(..)) {
            job.step(&mut out);
        }
        job.step(&mut out);
        job.stop("stopped (test)", &mut out);
        assert!(!job.is_training());
        let ended = out.iter().find_map(|e| match e {
            Event::Finished { stop, .. } => Some(drive::Ended {
                stop: stop.clone(),
                failed: false,
            }),
            _ => None,
        });
        let ended = ended.expect("the sweep says it ended");
        let why = ended.stop.expect("stopped");
        assert!(why.contains("stopped (test)"), "{why}");
        assert!(job.summary().is_none() && !dir.join(sweep::SUMMARY).exists());
        let s = job.solutions();
        assert!(
            s.states
                .iter()
                .any(|m| matches!(m, ModelState::Stopped(w) if w.contains("stopped (test)"))),
            "{:?}",
            s.states
        );
        let first = dir.join(format!("seed-{}", s.seeds[0]));
        let m: Value = serde_json::from_str(
            &std::fs::read_to_string(first.join(crate::train::checkpoint::METRICS)).unwrap(),
        )
        .unwrap();
        assert!(
            m["interrupted"]
                .as_str()
                .unwrap()
                .contains("stopped (test)")
        );
        assert!(first.join(crate::train::checkpoint::FLOW).exists());
    }
}
