//! The point models trained on the host (`nn::flow_grad`, `nn::score_grad`): the CPU's
//! path for the score MLP and for the flow with the exact divergence, with Adam as burn's
//! `AdamConfig` computes it (L2 weight decay added to the gradient, bias-corrected moments,
//! ε 1e-5) and the flow's output norm's running statistics blended as
//! `OutputBatchNorm::updated` does. The models they hand out are ordinary [`FlowMlp`] and
//! [`ScoreMlp`], so everything downstream (metrics, views, checkpoints) is unchanged.

use crate::method::diffusion::{DsmBatch, Schedule, dsm_batch};
use crate::nn::flow_grad::{Layout, Workspace, loss_and_grad};
use crate::nn::flow_mlp::FlowMlp;
use crate::nn::score_grad;
use crate::nn::score_mlp::ScoreMlp;
use crate::tensor_util::to_vec;
use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;

const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;
const EPSILON: f32 = 1e-5;

/// burn's Adam on one flat parameter vector.
struct Adam {
    weight_decay: f32,
    m: Vec<f32>,
    v: Vec<f32>,
    time: i32,
}

impl Adam {
    fn new(weight_decay: f64, n: usize) -> Self {
        Self {
            weight_decay: weight_decay as f32,
            m: vec![0.0; n],
            v: vec![0.0; n],
            time: 0,
        }
    }

    fn step(&mut self, params: &mut [f32], grad: &[f32], lr: f64) {
        self.time += 1;
        let bc2 = (1.0 - BETA_2.powi(self.time)).sqrt();
        let factor = bc2 / (1.0 - BETA_1.powi(self.time));
        let eps = EPSILON * bc2;
        let lr = lr as f32;
        for (((p, &g), m), v) in params
            .iter_mut()
            .zip(grad)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            let g = g + self.weight_decay * *p;
            *m = *m * BETA_1 + g * (1.0 - BETA_1);
            *v = *v * BETA_2 + g * g * (1.0 - BETA_2);
            *p -= lr * (*m * factor / (v.sqrt() + eps));
        }
    }
}

/// Parameters and running statistics: what a model is, and what "last good" restores.
#[derive(Clone)]
struct State {
    params: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
}

impl State {
    /// Become `other` (same sizes) without allocating: once per training step.
    fn copy_from(&mut self, other: &State) {
        self.params.copy_from_slice(&other.params);
        self.mean.copy_from_slice(&other.mean);
        self.var.copy_from_slice(&other.var);
    }
}

pub struct HostFlowTrainer {
    layout: Layout,
    /// The model as it was initialised: its configuration and device for [`Self::model`].
    template: FlowMlp,
    now: State,
    last_good: State,
    adam: Adam,
    sym_penalty: f64,
    ws: Workspace,
}

/// The parameters of three linear layers, laid out as both [`Layout::offsets`] say.
fn flat(layers: [&Linear; 3]) -> Vec<f32> {
    let mut out = Vec::new();
    for l in layers {
        out.extend(to_vec(l.weight.val()));
        out.extend(to_vec(l.bias.as_ref().expect("a bias").val()));
    }
    out
}

/// Three linear layers shaped as `like`, with the flat parameters `params`.
fn linears(params: &[f32], like: [&Linear; 3]) -> [Linear; 3] {
    let device: Device = like[0].weight.device();
    let mut at = 0;
    like.map(|l| {
        let dims = l.weight.dims();
        let take = |n: usize, at: &mut usize| {
            *at += n;
            params[*at - n..*at].to_vec()
        };
        let w = TensorData::new(take(dims[0] * dims[1], &mut at), dims);
        let b = TensorData::new(take(dims[1], &mut at), [dims[1]]);
        Linear {
            weight: Param::from_tensor(Tensor::from_data(w, &device)),
            bias: Some(Param::from_tensor(Tensor::from_data(b, &device))),
        }
    })
}

fn flow_layers(m: &FlowMlp) -> [&Linear; 3] {
    [&m.l1, &m.l2, &m.l3]
}

impl HostFlowTrainer {
    /// Train `init` (an initialised, not autodiff, model) with the exact divergence.
    pub fn new(init: FlowMlp, weight_decay: f64, sym_penalty: f64) -> Self {
        let layout = Layout {
            dim: init.dim(),
            hidden: init.l1.weight.dims()[1],
            freqs: init.freqs,
        };
        let params = flat(flow_layers(&init));
        let now = State {
            mean: to_vec(init.bn.running_mean.val()),
            var: to_vec(init.bn.running_var.val()),
            params,
        };
        let n = now.params.len();
        Self {
            layout,
            template: init,
            last_good: now.clone(),
            now,
            adam: Adam::new(weight_decay, n),
            sym_penalty,
            ws: Workspace::default(),
        }
    }

    /// The loss at `x` with scores `s` (host rows) before the step, or `None` (and no step)
    /// when it is not finite.
    pub fn step(&mut self, x: &[f32], s: &[f32], lr: f64) -> Option<f64> {
        let eps = self.template.bn.epsilon;
        let lg = loss_and_grad(
            &self.now.params,
            &self.layout,
            x,
            s,
            self.sym_penalty,
            eps,
            &mut self.ws,
        );
        if !lg.loss.is_finite() {
            return None;
        }
        self.last_good.copy_from(&self.now);
        let mut grad = lg.grad;
        // The output norm subtracts the batch mean, so the exact gradient of the last bias
        // is zero; what the sum gives is rounding noise, which Adam would scale up to
        // full-size steps.
        let o = self.layout.offsets();
        grad[o[5]..o[6]].fill(0.0);
        self.adam.step(&mut self.now.params, &grad, lr);
        let rows = x.len() / self.layout.dim;
        let m = self.template.bn.momentum as f32;
        let unbias = rows as f32 / (rows.max(2) - 1) as f32;
        for i in 0..self.layout.dim {
            self.now.mean[i] = self.now.mean[i] * (1.0 - m) + lg.mean[i] * m;
            self.now.var[i] = self.now.var[i] * (1.0 - m) + lg.var[i] * m * unbias;
        }
        Some(lg.loss)
    }

    /// The model now, for inference.
    pub fn model(&self) -> FlowMlp {
        self.build(&self.now)
    }

    /// The model before the last step that was taken.
    pub fn last_good(&self) -> FlowMlp {
        self.build(&self.last_good)
    }

    fn build(&self, st: &State) -> FlowMlp {
        let t = &self.template;
        let device: Device = t.l1.weight.device();
        let stat = |v: &[f32]| Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &device);
        let [l1, l2, l3] = linears(&st.params, flow_layers(t));
        FlowMlp {
            l1,
            l2,
            l3,
            bn: t.bn.clone().with_stats(stat(&st.mean), stat(&st.var)),
            freqs: t.freqs,
        }
    }
}

/// The score MLP trained on the host, on the denoising loss of `method::diffusion::dsm_loss`
/// with the same draws from the job's generator (`dsm_batch`).
pub struct HostScoreTrainer {
    layout: score_grad::Layout,
    template: ScoreMlp,
    params: Vec<f32>,
    last_good: Vec<f32>,
    adam: Adam,
    ws: score_grad::Workspace,
}

fn score_layers(m: &ScoreMlp) -> [&Linear; 3] {
    [&m.l1, &m.l2, &m.l3]
}

impl HostScoreTrainer {
    pub fn new(init: ScoreMlp, weight_decay: f64) -> Self {
        let params = flat(score_layers(&init));
        let layout = score_grad::Layout {
            dim: init.dim(),
            hidden: init.l1.weight.dims()[1],
        };
        Self {
            layout,
            adam: Adam::new(weight_decay, params.len()),
            last_good: params.clone(),
            params,
            template: init,
            ws: score_grad::Workspace::default(),
        }
    }

    /// One step on clean points `x0`; `None` (and no step) when the loss is not finite.
    pub fn step(&mut self, x0: &[f32], sched: &Schedule, rng: &mut StdRng, lr: f64) -> Option<f64> {
        let DsmBatch { xt, t_in, eps } = dsm_batch(x0, self.layout.dim, sched, rng);
        let target = if self.template.predicts_x0 { x0 } else { &eps };
        let (loss, grad) =
            score_grad::loss_and_grad(&self.params, &self.layout, &xt, &t_in, target, &mut self.ws);
        if !loss.is_finite() {
            return None;
        }
        self.last_good.copy_from_slice(&self.params);
        self.adam.step(&mut self.params, &grad, lr);
        Some(loss)
    }

    pub fn model(&self) -> ScoreMlp {
        self.build(&self.params)
    }

    pub fn last_good(&self) -> ScoreMlp {
        self.build(&self.last_good)
    }

    fn build(&self, params: &[f32]) -> ScoreMlp {
        let [l1, l2, l3] = linears(params, score_layers(&self.template));
        ScoreMlp {
            l1,
            l2,
            l3,
            predicts_x0: self.template.predicts_x0,
        }
    }
}

/// Whether the host trains the point models: on the CPU backend (the flow only with the
/// exact divergence).
pub fn host_trains(device: &Device) -> bool {
    crate::nn::circ_conv_op::in_use_on(device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::flow_mlp::FlowMlpConfig;
    use crate::tensor_util::flat_params;

    /// A batch whose loss is not finite changes nothing; after a step, "last good" is the
    /// model before it.
    #[test]
    fn a_non_finite_batch_changes_nothing() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        device.seed(4);
        let init = FlowMlpConfig {
            dim: 2,
            hidden: 8,
            freqs: 2,
            bn_momentum: 0.1,
        }
        .init(&device);
        let mut t = HostFlowTrainer::new(init, 1e-5, 0.0);
        let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
        let s: Vec<f32> = x.iter().map(|v| -v).collect();
        // The running statistics come after the layers: the step changes them too.
        let flat = |m: &FlowMlp| flat_params(m);
        let before = flat(&t.model());
        assert!(t.step(&x, &s, 1e-2).is_some_and(f64::is_finite));
        let after = flat(&t.model());
        assert_ne!(before, after);
        assert_eq!(flat(&t.last_good()), before);
        let mut bad = x.clone();
        bad[5] = f32::NAN;
        assert_eq!(t.step(&bad, &s, 1e-2), None);
        assert_eq!(flat(&t.model()), after);
        assert_eq!(flat(&t.last_good()), before);
    }

    /// The host's score steps are burn's: the same losses and weights over a few steps
    /// (both paths draw the same levels and noise from the job's generator).
    #[test]
    fn the_host_score_step_is_burns() {
        use crate::preset::{Prediction, ScoreSettings};
        use crate::train::job::{ScoreTrainer, TrainPath};
        use rand::SeedableRng;
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let sched = Schedule::cosine(100);
        for prediction in [Prediction::X0, Prediction::Eps] {
            let s = ScoreSettings {
                hidden: 16,
                prediction,
                ..Default::default()
            };
            let mut host = ScoreTrainer::on_path(3, &s, 10, 7, &device, TrainPath::Auto);
            let mut burn = ScoreTrainer::on_path(3, &s, 10, 7, &device, TrainPath::Burn);
            let x0: Vec<f32> = (0..3 * 300)
                .map(|i| (i as f32 * 0.61).sin() * 1.5)
                .collect();
            let (mut r1, mut r2) = (StdRng::seed_from_u64(9), StdRng::seed_from_u64(9));
            for step in 0..4 {
                let a = host.step(&x0, &sched, &mut r1).unwrap();
                let b = burn.step(&x0, &sched, &mut r2).unwrap();
                assert!(
                    (a - b).abs() < 1e-5 * (1.0 + b.abs()),
                    "{prediction:?} step {step}: {a} vs {b}"
                );
            }
            let (a, b) = (flat_params(&host.model()), flat_params(&burn.model()));
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x - y).abs() < 1e-4 * (1.0 + y.abs()),
                    "{prediction:?}: {x} vs {y}"
                );
            }
        }
    }
}
