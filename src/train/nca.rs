//! Training the image flow, a neural cellular automaton, with the equilibrium loss on a
//! trained image score model (METHOD §3): noised training images x_tau, their scores from the
//! frozen UNet, and the unbiased Hutchinson loss of `method::equilibrium`.

use super::job::{Lr, NonFiniteLoss, adam, descend};
use crate::data::turing::ImageSet;
use crate::method::diffusion::{self, Schedule};
use crate::method::equilibrium::nca_equilibrium_loss;
use crate::method::image_diffusion;
use crate::nn::batchnorm::BnMode;
use crate::nn::flow_nca::{Nca, NcaConfig};
use crate::nn::score_unet::ScoreUnet;
use crate::preset::{FlowSettings, Preset};
use crate::tensor_util::{init_seeded, to_vec};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;

/// The NCA's initial weights come from their own seed stream, so the untrained baseline
/// (`untrained`) is exactly the net that training started from.
const NCA_SEED: u64 = 0x0CA_5EED;

pub fn nca_config(preset: &Preset) -> NcaConfig {
    let f = &preset.flow;
    NcaConfig {
        channels: preset.dataset.channels(),
        hidden: f.hidden,
        depth: f.depth,
        output_bn: f.output_bn,
        bn_momentum: f.bn_momentum,
    }
}

/// The net training starts from (its own seed).
fn initial(preset: &Preset, device: &Device) -> Nca {
    init_seeded(
        || nca_config(preset).init(device),
        preset.seed ^ NCA_SEED,
        device,
    )
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
        let model = super::job::trainable(initial(preset, device), device);
        Self {
            last_good: model.clone(),
            model,
            optim: adam(f.weight_decay),
            probes: f.probes,
            unbiased: f.unbiased,
            lr: Lr::new(f.lr, f.lr_schedule, total_steps),
        }
    }

    /// One step on noised images `x` with their scores `s` (host values of `shape`); the
    /// probes come from `rng`.
    pub fn step(
        &mut self,
        x: Vec<f32>,
        s: Vec<f32>,
        shape: [usize; 4],
        rng: &mut StdRng,
    ) -> Result<f64, NonFiniteLoss> {
        let device = self.model.stencil.centre.device();
        let x = Tensor::<4>::from_data(TensorData::new(x, shape), &device);
        let s = Tensor::<4>::from_data(TensorData::new(s, shape), &device);
        let (loss, stats) = nca_equilibrium_loss(
            &self.model,
            x,
            s,
            self.probes,
            self.unbiased,
            BnMode::Batch,
            rng,
        );
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
    rng: &mut StdRng,
) -> (Vec<f32>, Vec<f32>, [usize; 4]) {
    let shape = [idx.len(), data.channels, data.h, data.w];
    let x0 = Tensor::<4>::from_data(TensorData::new(data.gather(idx), shape), &score.device());
    let x = diffusion::noised(x0, sched, tau, rng);
    let s = image_diffusion::score(score, x.clone(), sched, tau, clip_x0);
    (to_vec(x), to_vec(s), shape)
}
