//! One training job: data → score model → flow model, reporting progress and honouring
//! cancel between steps. Fronts (CLI, app worker) observe it through [`Observer`].
//!
//! A non-finite loss stops the job and keeps the last model whose loss was finite, so nothing
//! already trained is lost.

use super::host::{HostFlowTrainer, HostScoreTrainer, host_trains};
use crate::data::Dataset;
use crate::method::diffusion::{self, Schedule};
use crate::method::equilibrium::{LossConfig, equilibrium_loss};
use crate::nn::batchnorm::BnMode;
use crate::nn::flow_mlp::{FlowMlp, FlowMlpConfig};
use crate::nn::score_mlp::{self, ScoreMlp};
use crate::preset::{Estimator, FlowSettings, LrSchedule, Preset, ScoreSettings};
use crate::tensor_util::{from_rows, init_seeded, scalar, to_vec};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, decay::WeightDecayConfig};
use burn::tensor::{Device, Tensor};
use rand::rngs::StdRng;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Data,
    Score,
    Flow,
    Samples,
    Metrics,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::Data => "data",
            Phase::Score => "score",
            Phase::Flow => "flow",
            Phase::Samples => "samples",
            Phase::Metrics => "metrics",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub phase: Phase,
    pub done: usize,
    pub total: usize,
    /// Mean loss of the epoch just finished, when the phase trains.
    pub loss: Option<f64>,
}

/// Who watches a job: gets progress, may ask it to stop.
pub trait Observer {
    fn progress(&mut self, _p: &Progress) {}
    fn cancelled(&self) -> bool {
        false
    }
}

/// Watches nothing (tests, benchmarks).
pub struct Silent;
impl Observer for Silent {}

#[derive(Debug, Clone, PartialEq)]
pub struct LossPoint {
    pub phase: Phase,
    pub epoch: usize,
    pub loss: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    NonFinite { phase: Phase, epoch: usize },
    Cancelled { phase: Phase },
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::NonFinite { phase, epoch } => write!(
                f,
                "the {} loss became NaN or infinite in epoch {epoch}; training stopped and the \
                 last model with a finite loss was kept (try a smaller learning rate)",
                phase.label()
            ),
            Stop::Cancelled { phase } => write!(f, "cancelled during the {} phase", phase.label()),
        }
    }
}

/// The last epoch's loss of `phase`, NaN when that phase never finished an epoch.
pub fn final_loss(losses: &[LossPoint], phase: Phase) -> f64 {
    losses
        .iter()
        .rev()
        .find(|l| l.phase == phase)
        .map_or(f64::NAN, |l| l.loss)
}

/// How many batches `batches` yields for `n` points.
pub(crate) fn batches_per_epoch(n: usize, batch: usize) -> usize {
    n / batch + usize::from(n % batch >= 2)
}

pub(crate) fn gather(points: &[f32], idx: &[usize], dim: usize) -> Vec<f32> {
    idx.iter()
        .flat_map(|&i| points[i * dim..(i + 1) * dim].iter().copied())
        .collect()
}

pub(crate) fn adam(weight_decay: f64) -> ModuleOptimizer {
    AdamConfig::new()
        .with_weight_decay(Some(WeightDecayConfig::new(weight_decay as f32)))
        .init()
}

/// `model` moved to the autodiff version of `device`, its parameters tracked: what every
/// trainer optimises.
pub(crate) fn trainable<M: Module>(model: M, device: &Device) -> M {
    model.fork(&device.clone().autodiff()).train()
}

/// The loss was NaN or infinite; no update was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonFiniteLoss;

/// One optimiser step on `loss`, shared by every trainer: a NaN or infinite loss changes
/// nothing; otherwise the model before the step becomes the last good one. Returns the loss.
pub(crate) fn descend<M: Module>(
    model: &mut M,
    last_good: &mut M,
    optim: &mut ModuleOptimizer,
    lr: f64,
    loss: Tensor<1>,
) -> Result<f64, NonFiniteLoss> {
    let value = scalar(loss.clone());
    if !value.is_finite() {
        return Err(NonFiniteLoss);
    }
    *last_good = model.clone();
    let grads = GradientsParams::from_grads(loss.backward(), &*model);
    *model = optim.step(lr, model.clone(), grads);
    Ok(value)
}

/// Each model's initial weights have a seed stream of their own (xor the job's seed).
pub(crate) const SCORE_INIT: u64 = 0x5C0E_0001;
pub(crate) const FLOW_INIT: u64 = 0xF10E_0002;

/// The score model with its optimiser: one DSM step at a time.
pub struct ScoreTrainer {
    engine: ScoreEngine,
    lr: Lr,
}

struct BurnScore {
    model: ScoreMlp,
    last_good: ScoreMlp,
    optim: ModuleOptimizer,
}

enum ScoreEngine {
    Burn(Box<BurnScore>),
    /// Our host step (`train::host`), on the CPU.
    Host(Box<HostScoreTrainer>),
}

/// A learning-rate schedule being walked through.
pub(crate) struct Lr {
    pub(crate) base: f64,
    schedule: LrSchedule,
    step: usize,
    total: usize,
    /// Steps of linear ramp from 0 before the schedule starts.
    warmup: usize,
}

impl Lr {
    pub(crate) fn new(base: f64, schedule: LrSchedule, total: usize) -> Self {
        Self {
            base,
            schedule,
            step: 0,
            total,
            warmup: 0,
        }
    }

    /// Ramp up linearly over the first `warmup` steps; the schedule spans the rest.
    pub(crate) fn with_warmup(mut self, warmup: usize) -> Self {
        self.warmup = warmup.min(self.total.saturating_sub(1));
        self
    }

    pub(crate) fn next(&mut self) -> f64 {
        let (k, w) = (self.step, self.warmup);
        let lr = if k < w {
            self.base * (k + 1) as f64 / w as f64
        } else {
            self.schedule.at(self.base, k - w, self.total - w)
        };
        self.step += 1;
        lr
    }
}

impl ScoreTrainer {
    /// `total_steps` spans the learning-rate schedule; the initial weights come from `seed`.
    pub fn new(
        dim: usize,
        s: &ScoreSettings,
        total_steps: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        Self::on_path(dim, s, total_steps, seed, device, TrainPath::Auto)
    }

    pub fn on_path(
        dim: usize,
        s: &ScoreSettings,
        total_steps: usize,
        seed: u64,
        device: &Device,
        path: TrainPath,
    ) -> Self {
        let make = || score_mlp::init(dim, s.hidden, s.prediction, device);
        let init = init_seeded(make, seed ^ SCORE_INIT, device);
        let engine = if path.host_score(device) {
            ScoreEngine::Host(Box::new(HostScoreTrainer::new(init, s.weight_decay)))
        } else {
            let model = trainable(init, device);
            ScoreEngine::Burn(Box::new(BurnScore {
                last_good: model.clone(),
                model,
                optim: adam(s.weight_decay),
            }))
        };
        Self {
            engine,
            lr: Lr::new(s.lr, s.lr_schedule, total_steps),
        }
    }

    /// One step on clean points `x0`.
    pub fn step(
        &mut self,
        x0: &[f32],
        sched: &Schedule,
        rng: &mut StdRng,
    ) -> Result<f64, NonFiniteLoss> {
        match &mut self.engine {
            ScoreEngine::Host(host) => {
                let lr = self.lr.next();
                host.step(x0, sched, rng, lr).ok_or(NonFiniteLoss)
            }
            ScoreEngine::Burn(b) => {
                let BurnScore {
                    model,
                    last_good,
                    optim,
                } = &mut **b;
                let loss = diffusion::dsm_loss(model, x0, sched, rng);
                let lr = self.lr.next();
                descend(model, last_good, optim, lr, loss)
            }
        }
    }

    /// Change the base learning rate; the schedule continues from where it is.
    pub fn set_lr(&mut self, lr: f64) {
        self.lr.base = lr;
    }

    /// The current model, for inference.
    pub fn model(&self) -> ScoreMlp {
        match &self.engine {
            ScoreEngine::Host(host) => host.model(),
            ScoreEngine::Burn(b) => b.model.valid(),
        }
    }

    /// The last model whose loss was finite, for inference.
    pub fn last_good(&self) -> ScoreMlp {
        match &self.engine {
            ScoreEngine::Host(host) => host.last_good(),
            ScoreEngine::Burn(b) => b.last_good.valid(),
        }
    }
}

/// The flow model with its optimiser: one equilibrium-loss step at a time.
pub struct FlowTrainer {
    engine: FlowEngine,
    lr: Lr,
}

struct BurnFlow {
    model: FlowMlp,
    last_good: FlowMlp,
    optim: ModuleOptimizer,
    cfg: LossConfig,
}

/// Who computes a flow step.
enum FlowEngine {
    /// burn's autodiff, on any backend and for every estimator.
    Burn(Box<BurnFlow>),
    /// Our host step (`train::host`): the CPU, exact divergence.
    Host(Box<HostFlowTrainer>),
}

/// Which path trains a point model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainPath {
    /// The host step where it applies (the CPU backend; for flows, the exact divergence),
    /// burn elsewhere.
    Auto,
    /// burn's autodiff everywhere (the reference the host step is tested against).
    Burn,
}

impl TrainPath {
    /// Whether the host trains a score model on `device`.
    pub(crate) fn host_score(self, device: &Device) -> bool {
        self == TrainPath::Auto && host_trains(device)
    }

    /// Whether the host trains a flow with loss `cfg` on `device`.
    pub(crate) fn host(self, cfg: &LossConfig, device: &Device) -> bool {
        self.host_score(device) && cfg.estimator == Estimator::Exact
    }
}

impl FlowTrainer {
    /// `total_steps` spans the learning-rate schedule; the initial weights come from `seed`.
    pub fn new(
        net: FlowMlpConfig,
        f: &FlowSettings,
        total_steps: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        Self::on_path(net, f, total_steps, seed, device, TrainPath::Auto)
    }

    pub fn on_path(
        net: FlowMlpConfig,
        f: &FlowSettings,
        total_steps: usize,
        seed: u64,
        device: &Device,
        path: TrainPath,
    ) -> Self {
        let init = init_seeded(|| net.init(device), seed ^ FLOW_INIT, device);
        let cfg = LossConfig::from_settings(f, net.dim);
        let engine = if path.host(&cfg, device) {
            FlowEngine::Host(Box::new(HostFlowTrainer::new(
                init,
                f.weight_decay,
                cfg.sym_penalty,
            )))
        } else {
            let model = trainable(init, device);
            FlowEngine::Burn(Box::new(BurnFlow {
                last_good: model.clone(),
                model,
                optim: adam(f.weight_decay),
                cfg,
            }))
        };
        Self {
            engine,
            lr: Lr::new(f.lr, f.lr_schedule, total_steps),
        }
    }

    /// One step on noised states `x` with their scores `s` (host rows); probes from `rng`.
    pub fn step(&mut self, x: &[f32], s: &[f32], rng: &mut StdRng) -> Result<f64, NonFiniteLoss> {
        match &mut self.engine {
            FlowEngine::Host(host) => {
                let lr = self.lr.next();
                host.step(x, s, lr).ok_or(NonFiniteLoss)
            }
            FlowEngine::Burn(b) => {
                let BurnFlow {
                    model,
                    last_good,
                    optim,
                    cfg,
                } = &mut **b;
                let dim = model.dim();
                let device = model.l1.weight.device();
                let (x, s) = (from_rows(x, dim, &device), from_rows(s, dim, &device));
                let [b, _] = x.dims();
                let out = equilibrium_loss(model, x, s, cfg, BnMode::Batch, rng);
                let lr = self.lr.next();
                let value = descend(model, last_good, optim, lr, out.loss)?;
                if let Some((mean, var)) = out.batch_stats {
                    let m = model.clone();
                    *model = FlowMlp {
                        bn: m.bn.updated(mean, var, b),
                        ..m
                    };
                }
                Ok(value)
            }
        }
    }

    /// Change the base learning rate; the schedule continues from where it is.
    pub fn set_lr(&mut self, lr: f64) {
        self.lr.base = lr;
    }

    pub fn model(&self) -> FlowMlp {
        match &self.engine {
            FlowEngine::Host(host) => host.model(),
            FlowEngine::Burn(b) => b.model.valid(),
        }
    }

    pub fn last_good(&self) -> FlowMlp {
        match &self.engine {
            FlowEngine::Host(host) => host.last_good(),
            FlowEngine::Burn(b) => b.last_good.valid(),
        }
    }
}

/// Noised data x_tau and the score there, for one epoch of flow training (host rows).
pub(crate) fn noised_with_scores(
    score: &ScoreMlp,
    data: &Dataset,
    sched: &Schedule,
    tau: usize,
    device: &Device,
    rng: &mut StdRng,
) -> (Vec<f32>, Vec<f32>) {
    let (mut xs, mut ss) = (Vec::new(), Vec::new());
    for chunk in data.points.chunks(8192 * data.dim) {
        let x = diffusion::noised(from_rows(chunk, data.dim, device), sched, tau, rng);
        let s = diffusion::score(score, x.clone(), sched, tau);
        xs.extend(to_vec(x));
        ss.extend(to_vec(s));
    }
    (xs, ss)
}

/// The flow architecture a preset asks for.
pub fn flow_config(preset: &Preset, dim: usize) -> FlowMlpConfig {
    FlowMlpConfig {
        dim,
        hidden: preset.flow.hidden,
        freqs: preset.flow.freqs,
        bn_momentum: preset.flow.bn_momentum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    /// A diffusion model trained on N(mu, s0² I) recovers the analytic smoothed score
    /// s(x) = −(x − sqrt(a) mu) / (a s0² + 1 − a). Low noise levels are the hard ones: the
    /// network's eps error is amplified by 1/sigma there (≈ 7× at step 9).
    #[test]
    fn trained_score_matches_the_analytic_gaussian_score() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        device.seed(5);
        let mut rng = StdRng::seed_from_u64(5);
        let (mu, s0) = ([1.0f32, -0.5], 0.7f32);
        let sample = |rng: &mut StdRng, n: usize| -> Vec<f32> {
            (0..n * 2)
                .map(|i| {
                    let g: f64 = StandardNormal.sample(rng);
                    mu[i % 2] + s0 * g as f32
                })
                .collect()
        };
        let settings = ScoreSettings {
            lr: 2e-3,
            ..Default::default()
        };
        let sched = Schedule::cosine(100);
        let mut trainer = ScoreTrainer::new(2, &settings, 2000, 5, &device);
        for _ in 0..2000 {
            let x0 = sample(&mut rng, 512);
            trainer.step(&x0, &sched, &mut rng).unwrap();
        }
        let model = trainer.model();
        for (tau, tolerance) in [(9usize, 0.3), (30, 0.1)] {
            let a = sched.alpha_bar[tau] as f32;
            let var = a * s0 * s0 + 1.0 - a;
            let x: Vec<f32> = sample(&mut rng, 400)
                .iter()
                .enumerate()
                .map(|(i, v)| a.sqrt() * v + (1.0 - a).sqrt() * if i % 3 == 0 { 0.3 } else { -0.2 })
                .collect();
            let got = to_vec(diffusion::score(
                &model,
                from_rows(&x, 2, &device),
                &sched,
                tau,
            ));
            let (mut err, mut norm) = (0.0f64, 0.0f64);
            for (i, g) in got.iter().enumerate() {
                let want = -(x[i] - a.sqrt() * mu[i % 2]) / var;
                err += ((g - want) as f64).powi(2);
                norm += (want as f64).powi(2);
            }
            let rel = (err / norm).sqrt();
            assert!(rel < tolerance, "step {tau}: relative score error {rel}");
        }
    }

    fn batches(order: &[usize], batch: usize) -> impl Iterator<Item = &[usize]> {
        // A one-point batch has no variance to normalise by.
        order.chunks(batch).filter(|c| c.len() >= 2)
    }

    #[test]
    fn batch_count_matches_the_batches_yielded() {
        for (n, b) in [
            (10_000, 2048),
            (4096, 2048),
            (4097, 2048),
            (4098, 2048),
            (5, 8),
            (1, 8),
        ] {
            let order: Vec<usize> = (0..n).collect();
            assert_eq!(
                batches(&order, b).count(),
                batches_per_epoch(n, b),
                "{n} {b}"
            );
        }
    }
}
