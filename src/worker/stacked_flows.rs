//! The flow phase of several point jobs that share one score and one dataset (a sweep),
//! trained together (`train::flow_stack`). Each model keeps the random stream
//! its own [`super::session::Session::from_score`] would have — the samples it draws, the noised states of
//! every epoch, its batch order and probes — so model k ends exactly as it would alone;
//! [`StackedFlows::finish`] hands each back as a [`TrainedFlow`] for
//! [`super::session::Session::from_trained`] to measure and write.

use super::epochs::Epochs;
use super::event::ProgressInfo;
use crate::backend::Backend;
use crate::data::Dataset;
use crate::method::diffusion::{self, Schedule};
use crate::nn::flow_mlp::FlowMlp;
use crate::nn::score_mlp::ScoreMlp;
use crate::preset::{Estimator, Preset};
use crate::tensor_util::to_vec;
use crate::train::flow_stack::StackTrainer;
use crate::train::job::{LossPoint, Phase, Stop, flow_config, gather, noised_with_scores};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use std::time::Instant;

/// One model of the stack and the random stream that is its own.
struct Member {
    preset: Preset,
    rng: StdRng,
    epochs: Epochs,
    xs: Vec<f32>,
    ss: Vec<f32>,
    losses: Vec<LossPoint>,
    samples: Vec<f32>,
    /// Why it stopped before the end (its loss turned NaN or infinite).
    stop: Option<String>,
}

/// A flow trained in a stack, with what its run directory needs.
pub struct TrainedFlow {
    pub preset: Preset,
    pub flow: FlowMlp,
    /// The score's losses, then this flow's.
    pub losses: Vec<LossPoint>,
    pub samples: Vec<f32>,
    /// This model's share of the stack's training time.
    pub seconds_flow: f64,
    pub stop: Option<String>,
}

pub struct StackedFlows {
    dataset: Dataset,
    score: ScoreMlp,
    sched: Schedule,
    tau: usize,
    members: Vec<Member>,
    trainer: StackTrainer,
    started: Instant,
    /// The live models' mean loss of the epoch the last step ended, if it ended one.
    ended_epoch: Option<LossPoint>,
}

impl StackedFlows {
    /// The flow phase of each of `presets` (one per model, differing only in their seed) on
    /// `dataset` with `score` (its losses first in every model's loss record).
    pub fn new(
        presets: Vec<Preset>,
        backend: &Backend,
        dataset: Dataset,
        score: ScoreMlp,
        score_losses: &[LossPoint],
    ) -> Self {
        assert!(!presets.is_empty(), "at least one model");
        let device = &backend.device;
        let base = presets[0].clone();
        let sched = Schedule::cosine(base.score.diffusion_steps);
        let f = &base.flow;
        let members: Vec<Member> = presets
            .into_iter()
            .map(|preset| {
                // As Session::from_score: the samples come first from the model's stream.
                let mut rng = StdRng::seed_from_u64(preset.seed);
                let n = preset.score.samples;
                let samples = to_vec(diffusion::sample(&score, n, &sched, device, &mut rng));
                Member {
                    epochs: Epochs::new(Phase::Flow, dataset.len(), f.batch, f.epochs),
                    rng,
                    xs: Vec::new(),
                    ss: Vec::new(),
                    losses: score_losses.to_vec(),
                    samples,
                    stop: None,
                    preset,
                }
            })
            .collect();
        let seeds: Vec<u64> = members.iter().map(|m| m.preset.seed).collect();
        let cfg = flow_config(&base, dataset.dim);
        let total = members[0].epochs.total();
        let trainer = StackTrainer::new(cfg, f, total, &seeds, device);
        Self {
            tau: base.score.tau_step,
            dataset,
            score,
            sched,
            members,
            trainer,
            started: Instant::now(),
            ended_epoch: None,
        }
    }

    /// Progress of the stack (every model walks the same batches).
    pub fn progress(&self) -> ProgressInfo {
        self.members[0].epochs.progress()
    }

    /// One batch for every model; false once every epoch is done (or every model stopped).
    pub fn step(&mut self) -> bool {
        self.ended_epoch = None;
        let dim = self.dataset.dim;
        let device = self.score.l1.weight.device();
        let probes = {
            let f = &self.members[0].preset.flow;
            (f.resolved_estimator(dim) == Estimator::Hutchinson)
                .then(|| f.probes * if f.unbiased { 2 } else { 1 })
        };
        let (mut xs, mut ss, mut zs) = (Vec::new(), Vec::new(), Vec::new());
        for m in &mut self.members {
            if m.epochs.at_epoch_start() && m.epochs.epoch < m.epochs.epochs {
                (m.xs, m.ss) = noised_with_scores(
                    &self.score,
                    &self.dataset,
                    &self.sched,
                    self.tau,
                    &device,
                    &mut m.rng,
                );
            }
            let Some(idx) = m.epochs.next_batch(&mut m.rng) else {
                return false;
            };
            xs.push(gather(&m.xs, &idx, dim));
            ss.push(gather(&m.ss, &idx, dim));
            if let Some(k) = probes {
                // As `normal` draws them inside the single model's loss.
                let z: Vec<f32> = (0..k * idx.len() * dim)
                    .map(|_| StandardNormal.sample(&mut m.rng))
                    .collect();
                zs.push(z);
            }
        }
        let losses = self.trainer.step(&xs, &ss, &zs);
        let mut ended: Vec<LossPoint> = Vec::new();
        for (m, loss) in self.members.iter_mut().zip(losses) {
            match loss {
                Some(loss) => {
                    if let Some(p) = m.epochs.record(loss) {
                        ended.push(p.clone());
                        m.losses.push(p);
                    }
                }
                // A frozen model walks on through its batches unrecorded, so the stack's
                // epochs stay in step.
                None if m.stop.is_none() => {
                    let _ = m.epochs.record(f64::NAN);
                    let epoch = m.epochs.epoch;
                    m.stop = Some(
                        Stop::NonFinite {
                            phase: Phase::Flow,
                            epoch,
                        }
                        .to_string(),
                    );
                }
                None => {
                    let _ = m.epochs.record(f64::NAN);
                }
            }
        }
        self.ended_epoch = ended.first().map(|p| LossPoint {
            loss: ended.iter().map(|p| p.loss).sum::<f64>() / ended.len() as f64,
            ..p.clone()
        });
        self.members.iter().any(|m| m.stop.is_none())
    }

    /// The live models' mean loss of the epoch the last step ended, if it ended one.
    pub fn ended_epoch(&self) -> Option<&LossPoint> {
        self.ended_epoch.as_ref()
    }

    /// Every model as trained so far, each with its run's records.
    pub fn finish(self) -> Vec<TrainedFlow> {
        let share = self.started.elapsed().as_secs_f64() / self.members.len() as f64;
        let flows = self.trainer.trained();
        self.members
            .into_iter()
            .zip(flows)
            .map(|(m, flow)| TrainedFlow {
                preset: m.preset,
                flow,
                losses: m.losses,
                samples: m.samples,
                seconds_flow: share,
                stop: m.stop,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::flow_mlp::shift_free_params;
    use crate::nn::score_mlp;
    use crate::tensor_util::init_seeded;
    use crate::train::sweep::model_preset;
    use crate::worker::job::JobSession;
    use crate::worker::session::Session;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    /// A stacked sweep and a sequential one give each seed the same model, samples and
    /// losses: with the exact divergence (Lorenz) and with Hutchinson probes (ring).
    #[test]
    fn stacked_and_sequential_sweeps_give_the_same_models() {
        let _rng = crate::tensor_util::rng_lock();
        for (name, sets) in [
            (
                "lorenz",
                vec!["dataset.runs=2", "dataset.steps_per_run=150"],
            ),
            ("ring", vec!["dataset.n=300", "flow.estimator=hutchinson"]),
        ] {
            let mut sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            sets.extend(["flow.batch=64".into(), "flow.epochs=2".into()]);
            sets.extend(["flow.hidden=16".into(), "score.samples=50".into()]);
            let base = Preset::load(name, true, &sets).unwrap();
            let backend = Backend::cpu();
            let device = &backend.device;
            let data = Dataset::generate(&base.dataset, base.data_seed()).unwrap();
            let dim = data.dim;
            let score = init_seeded(
                || score_mlp::init(dim, base.score.hidden, base.score.prediction, device),
                7,
                device,
            );
            let seeds = [3u64, 4, 5];
            let presets: Vec<Preset> = seeds.iter().map(|&s| model_preset(&base, s)).collect();
            let mut stack =
                StackedFlows::new(presets.clone(), &backend, data.clone(), score.clone(), &[]);
            while stack.step() {}
            let stacked = stack.finish();
            for (p, got) in presets.into_iter().zip(&stacked) {
                let mut out = Vec::new();
                let cancel = Arc::new(AtomicBool::new(false));
                let mut job = Session::from_score(
                    p,
                    backend.clone(),
                    data.clone(),
                    (score.clone(), Vec::new(), 0.0),
                    cancel,
                    &mut out,
                );
                while job.stage_index() < 2 {
                    job.step(&mut out);
                }
                let own = job.flow().expect("the flow trained");
                let (a, b) = (shift_free_params(own), shift_free_params(&got.flow));
                assert_eq!(a.len(), b.len());
                for (x, y) in a.iter().zip(&b) {
                    assert!(
                        (x - y).abs() <= 1e-4 * (1.0 + x.abs()),
                        "{name}: {x} vs {y}"
                    );
                }
                assert_eq!(job.samples(), &got.samples[..], "{name}: samples");
                let own_losses = job.losses();
                assert_eq!(own_losses.len(), got.losses.len(), "{name}: loss points");
                for (x, y) in own_losses.iter().zip(&got.losses) {
                    assert!(
                        (x.loss - y.loss).abs() <= 1e-4 * (1.0 + x.loss.abs()),
                        "{name}"
                    );
                }
            }
        }
    }
}
