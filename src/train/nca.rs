//! Training the image flow, a neural cellular automaton, with the equilibrium loss on a
//! trained image score model (METHOD §3): noised training images x_tau, their scores from the
//! frozen UNet, and the unbiased Hutchinson loss of `method::equilibrium`.

use super::job::{
    LossPoint, Lr, NonFiniteLoss, Observer, Phase, Stop, adam, batches_per_epoch, descend,
    run_epochs,
};
use crate::data::turing::ImageSet;
use crate::method::diffusion::{self, Schedule};
use crate::method::equilibrium::nca_equilibrium_loss;
use crate::method::image_diffusion;
use crate::nn::batchnorm::BnMode;
use crate::nn::flow_nca::{Nca, NcaConfig};
use crate::nn::score_unet::ScoreUnet;
use crate::preset::{FlowSettings, Preset};
use crate::tensor_util::to_vec;
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use std::time::Instant;

/// The NCA's initial weights come from their own seed stream, so the untrained baseline
/// (`untrained`) is exactly the net that training started from.
const NCA_SEED: u64 = 0x0CA_5EED;

pub fn nca_config(preset: &Preset) -> NcaConfig {
    let f = &preset.flow;
    NcaConfig {
        channels: preset.dataset.kind.dim(),
        hidden: f.hidden,
        depth: f.depth,
        output_bn: f.output_bn,
        bn_momentum: f.bn_momentum,
    }
}

/// The net training starts from (seeded; draws from the device's generator).
fn initial(preset: &Preset, device: &Device) -> Nca {
    device.seed(preset.seed ^ NCA_SEED);
    nca_config(preset).init(device)
}

/// The same NCA, untrained, its norms calibrated on `x` (noised images): the baseline a
/// trained NCA must beat.
pub fn untrained(preset: &Preset, x: Tensor<4>) -> Nca {
    initial(preset, &x.device()).calibrated(x)
}

/// The NCA with its optimiser: one equilibrium-loss step at a time (CLI and app worker).
pub struct NcaTrainer {
    model: Nca,
    last_good: Nca,
    optim: ModuleOptimizer,
    probes: usize,
    unbiased: bool,
    lr: Lr,
}

impl NcaTrainer {
    pub fn new(preset: &Preset, total_steps: usize, device: &Device) -> Self {
        let f: &FlowSettings = &preset.flow;
        let model = initial(preset, device)
            .fork(&device.clone().autodiff())
            .train();
        Self {
            last_good: model.clone(),
            model,
            optim: adam(f.weight_decay),
            probes: f.probes,
            unbiased: f.unbiased,
            lr: Lr::new(f.lr, f.lr_schedule, total_steps),
        }
    }

    /// One step on noised images `x` with their scores `s` (host values of `shape`).
    pub fn step(
        &mut self,
        x: Vec<f32>,
        s: Vec<f32>,
        shape: [usize; 4],
    ) -> Result<f64, NonFiniteLoss> {
        let device = self.model.stencil.centre.device();
        let x = Tensor::<4>::from_data(TensorData::new(x, shape), &device);
        let s = Tensor::<4>::from_data(TensorData::new(s, shape), &device);
        let (loss, stats) =
            nca_equilibrium_loss(&self.model, x, s, self.probes, self.unbiased, BnMode::Batch);
        let lr = self.lr.next();
        let value = descend(
            &mut self.model,
            &mut self.last_good,
            &mut self.optim,
            lr,
            loss,
        )?;
        let [b, _, h, w] = shape;
        self.model = self.model.clone().updated(stats, b * h * w);
        Ok(value)
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.lr.base = lr;
    }

    pub fn model(&self) -> Nca {
        self.model.valid()
    }

    pub fn last_good(&self) -> Nca {
        self.last_good.valid()
    }
}

/// Clean images `idx` of `data` noised to tau, with the frozen score model's scores there
/// (host values, `[b, c, h, w]`).
pub fn noised_with_scores(
    score: &ScoreUnet,
    sched: &Schedule,
    tau: usize,
    clip_x0: bool,
    data: &ImageSet,
    idx: &[usize],
) -> (Vec<f32>, Vec<f32>, [usize; 4]) {
    let shape = [idx.len(), data.channels, data.h, data.w];
    let x0 = Tensor::<4>::from_data(TensorData::new(data.gather(idx), shape), &score.device());
    let x = diffusion::noised(x0, sched, tau);
    let s = image_diffusion::score(score, x.clone(), sched, tau, clip_x0);
    (to_vec(x), to_vec(s), shape)
}

/// What NCA training produced.
pub struct NcaTrained {
    pub nca: Nca,
    pub losses: Vec<LossPoint>,
    pub seconds: f64,
    pub stopped: Option<Stop>,
}

/// Epochs over the training images, fresh noise every batch.
pub fn train(
    preset: &Preset,
    data: &ImageSet,
    score: &ScoreUnet,
    rng: &mut StdRng,
    obs: &mut dyn Observer,
) -> NcaTrained {
    let t0 = Instant::now();
    let f = &preset.flow;
    let sched = Schedule::from_settings(&preset.score);
    let tau = preset.score.tau_step;
    let total = f.epochs * batches_per_epoch(data.n, f.batch);
    let mut trainer = NcaTrainer::new(preset, total, &score.device());
    let mut order: Vec<usize> = (0..data.n).collect();
    let mut losses = Vec::new();
    let stopped = run_epochs(
        Phase::Flow,
        f.epochs,
        &mut order,
        f.batch,
        &mut trainer,
        |_| {},
        |t, idx, _| {
            let (x, s, shape) =
                noised_with_scores(score, &sched, tau, preset.sde.clip_x0, data, idx);
            t.step(x, s, shape)
        },
        rng,
        &mut losses,
        obs,
    );
    let nca = match stopped {
        Some(Stop::NonFinite { .. }) => trainer.last_good(),
        _ => trainer.model(),
    };
    NcaTrained {
        nca,
        losses,
        seconds: t0.elapsed().as_secs_f64(),
        stopped,
    }
}
