//! N flow models trained as one stacked network (a sweep's models; `nn::flow_stack`): one
//! optimiser step moves all of them. Each model gets exactly the updates it would get alone
//! (the loss is the sum of the models' own losses and Adam works element by element), so a
//! stacked sweep and a sequential one give the same models.
//!
//! On the CPU (exact divergence) each model takes its own host step instead, the models
//! spread over the cores: same updates, same models.
//!
//! A model whose loss turns NaN or infinite is frozen at its last good state and leaves the
//! sum; the others train on.

use super::host::HostFlowTrainer;
use super::job::{FLOW_INIT, Lr, TrainPath, adam, trainable};
use crate::method::equilibrium::{LossConfig, stack_equilibrium_loss};
use crate::nn::batchnorm::BnMode;
use crate::nn::flow_mlp::{FlowMlp, FlowMlpConfig};
use crate::nn::flow_stack::FlowStack;
use crate::preset::FlowSettings;
use crate::tensor_util::{init_seeded, to_vec};
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

pub struct StackTrainer {
    engine: StackEngine,
    lr: Lr,
    /// `Some(model)` once a model's loss went non-finite: its last good state.
    frozen: Vec<Option<FlowMlp>>,
}

struct BurnStack {
    model: FlowStack,
    /// The stack before the last step that trained any model: a model frozen now takes its
    /// slice (the state at its last finite loss).
    last_good: FlowStack,
    optim: ModuleOptimizer,
    cfg: LossConfig,
}

enum StackEngine {
    /// One stacked burn network: one batched product per layer for all models (what pays
    /// where a small model's step is bound by kernel launches, a GPU).
    Burn(Box<BurnStack>),
    /// Each model its own host step (`train::host`), the models spread over the cores:
    /// on the CPU a host step per model is faster than the stacked network's.
    Host(Vec<HostFlowTrainer>),
}

impl StackTrainer {
    /// One model per seed, each starting from the weights [`super::job::FlowTrainer::new`]
    /// would give it; `total_steps` spans the learning-rate schedule.
    pub fn new(
        net: FlowMlpConfig,
        f: &FlowSettings,
        total_steps: usize,
        seeds: &[u64],
        device: &Device,
    ) -> Self {
        Self::on_path(net, f, total_steps, seeds, device, TrainPath::Auto)
    }

    pub fn on_path(
        net: FlowMlpConfig,
        f: &FlowSettings,
        total_steps: usize,
        seeds: &[u64],
        device: &Device,
        path: TrainPath,
    ) -> Self {
        let models: Vec<FlowMlp> = seeds
            .iter()
            .map(|&seed| init_seeded(|| net.init(device), seed ^ FLOW_INIT, device))
            .collect();
        let cfg = LossConfig::from_settings(f, net.dim);
        let engine = if path.host(&cfg, device) {
            StackEngine::Host(
                models
                    .into_iter()
                    .map(|m| HostFlowTrainer::new(m, f.weight_decay, cfg.sym_penalty))
                    .collect(),
            )
        } else {
            let model = trainable(FlowStack::stack(&models), device);
            StackEngine::Burn(Box::new(BurnStack {
                last_good: model.clone(),
                model,
                optim: adam(f.weight_decay),
                cfg,
            }))
        };
        Self {
            engine,
            lr: Lr::new(f.lr, f.lr_schedule, total_steps),
            frozen: vec![None; seeds.len()],
        }
    }

    pub fn models(&self) -> usize {
        self.frozen.len()
    }

    /// One step: model k's batch is rows `x[k]` with scores `s[k]` (host, every model's
    /// batch of one size), `z` its probes `[sets·probes, B, d]` each (Hutchinson only).
    /// Returns each model's loss: `None` for a frozen one (also the step it froze in).
    pub fn step(&mut self, x: &[Vec<f32>], s: &[Vec<f32>], z: &[Vec<f32>]) -> Vec<Option<f64>> {
        let lr = self.lr.next();
        match &mut self.engine {
            StackEngine::Host(hosts) => {
                let frozen = &self.frozen;
                let losses: Vec<Option<f64>> = hosts
                    .par_iter_mut()
                    .enumerate()
                    .map(|(k, h)| {
                        if frozen[k].is_some() {
                            return None;
                        }
                        h.step(&x[k], &s[k], lr)
                    })
                    .collect();
                for (k, h) in hosts.iter().enumerate() {
                    if self.frozen[k].is_none() && losses[k].is_none() {
                        self.frozen[k] = Some(h.last_good());
                    }
                }
                losses
            }
            StackEngine::Burn(stack) => burn_step(stack, &mut self.frozen, lr, (x, s, z)),
        }
    }

    /// Every model for inference: the trained ones as they are now, frozen ones as they were
    /// at their last finite loss.
    pub fn trained(&self) -> Vec<FlowMlp> {
        match &self.engine {
            StackEngine::Host(hosts) => hosts
                .iter()
                .zip(&self.frozen)
                .map(|(h, f)| f.clone().unwrap_or_else(|| h.model()))
                .collect(),
            StackEngine::Burn(b) => {
                let now = b.model.valid();
                (0..self.models())
                    .map(|k| self.frozen[k].clone().unwrap_or_else(|| now.model(k)))
                    .collect()
            }
        }
    }
}

type Batches<'a> = (&'a [Vec<f32>], &'a [Vec<f32>], &'a [Vec<f32>]);

fn burn_step(
    stack: &mut BurnStack,
    frozen: &mut [Option<FlowMlp>],
    lr: f64,
    (x, s, z): Batches,
) -> Vec<Option<f64>> {
    let BurnStack {
        model,
        last_good,
        optim,
        cfg,
    } = stack;
    let n = frozen.len();
    let d = model.dim();
    let device = model.l1.weight.device();
    let b = x[0].len() / d;
    let stacked = |rows: &[Vec<f32>]| -> Tensor<3> {
        let v: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(v, [n, b, d]), &device)
    };
    let probes = (!z.is_empty()).then(|| {
        let m = z[0].len() / (b * d);
        // Each model drew [m, B, d]; the stack wants [m, N, B, d].
        let v: Vec<f32> = z.iter().flatten().copied().collect();
        let per_model = Tensor::<4>::from_data(TensorData::new(v, [n, m, b, d]), &device);
        per_model.swap_dims(0, 1)
    });
    let (losses, stats) =
        stack_equilibrium_loss(model, stacked(x), stacked(s), probes, cfg, BnMode::Batch);
    let values = to_vec(losses.clone());
    let mut total: Option<Tensor<1>> = None;
    let mut out = vec![None; n];
    for k in 0..n {
        if frozen[k].is_some() {
            continue;
        }
        let value = values[k] as f64;
        if !value.is_finite() {
            frozen[k] = Some(last_good.model(k).valid());
            continue;
        }
        out[k] = Some(value);
        let term = losses.clone().narrow(0, k, 1);
        total = Some(match total {
            Some(t) => t + term,
            None => term,
        });
    }
    let Some(total) = total else {
        return out;
    };
    *last_good = model.clone();
    let grads = GradientsParams::from_grads(total.backward(), &*model);
    *model = optim.step(lr, model.clone(), grads);
    if let Some((mean, var)) = stats {
        *model = model.clone().updated(mean, var, b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::flow_mlp::shift_free_params;
    use crate::preset::Preset;
    use crate::tensor_util::flat_params;
    use crate::train::job::TrainPath;
    use crate::train::job::{FlowTrainer, flow_config};
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, StandardNormal};

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + x.abs()),
                "{what}: [{i} of {}] {x} vs {y}",
                a.len()
            );
        }
    }

    /// Steps of the stack move each model as its own trainer moves it alone, on both paths:
    /// the host's stack against its own single steps, and burn's stacked network against
    /// them too (the host step and burn's autodiff give the same training).
    #[test]
    fn a_stack_step_is_each_models_own_step() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let sets = ["flow.hidden=16".to_string()];
        let p = Preset::load("lorenz", true, &sets).unwrap();
        let cfg = flow_config(&p, 3);
        let seeds = [3u64, 4];
        for path in [TrainPath::Auto, TrainPath::Burn] {
            let mut stack = StackTrainer::on_path(cfg, &p.flow, 10, &seeds, &device, path);
            assert_eq!(
                matches!(stack.engine, StackEngine::Host(_)),
                path == TrainPath::Auto
            );
            let mut alone: Vec<FlowTrainer> = seeds
                .iter()
                .map(|&s| FlowTrainer::new(cfg, &p.flow, 10, s, &device))
                .collect();
            for (t, m) in alone.iter().zip(stack.trained()) {
                close(&flat_params(&t.model()), &flat_params(&m), "initial");
            }
            let mut rng = StdRng::seed_from_u64(1);
            let mut draw = |n: usize| -> Vec<f32> {
                (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
            };
            for step in 0..3 {
                let xs: Vec<Vec<f32>> = (0..2).map(|_| draw(64 * 3)).collect();
                let ss: Vec<Vec<f32>> = (0..2).map(|_| draw(64 * 3)).collect();
                let got = stack.step(&xs, &ss, &[]);
                let mut r = StdRng::seed_from_u64(0);
                for (k, t) in alone.iter_mut().enumerate() {
                    let own = t.step(&xs[k], &ss[k], &mut r).unwrap();
                    let g = got[k].unwrap();
                    assert!(
                        (own - g).abs() <= 1e-5 * (1.0 + own.abs()),
                        "{path:?} step {step}: loss {own} vs {g}"
                    );
                }
                for (t, m) in alone.iter().zip(stack.trained()) {
                    let (a, b) = (shift_free_params(&t.model()), shift_free_params(&m));
                    close(&a, &b, &format!("{path:?} step {step}"));
                }
            }
        }
    }
}
