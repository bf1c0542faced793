//! Output batch-norm without affine parameters: each output dimension has zero mean and unit
//! variance over the batch. It is what blocks the trivial solution v = 0 of the equilibrium
//! loss. Running statistics are plain non-trainable parameters updated functionally, so a
//! cloned model is a true snapshot (nothing shared, nothing mutated behind its back).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

#[derive(Module, Debug)]
pub struct OutputBatchNorm {
    pub running_mean: Param<Tensor<1>>,
    pub running_var: Param<Tensor<1>>,
    pub momentum: f64,
    pub epsilon: f64,
}

/// Running statistics `(mean, var)` blended with a batch's biased ones over `batch` rows
/// (momentum as in PyTorch; the variance unbiased), as new frozen parameters.
pub(super) fn blend<const D: usize>(
    running: (&Param<Tensor<D>>, &Param<Tensor<D>>),
    (mean, var): (Tensor<D>, Tensor<D>),
    momentum: f64,
    batch: usize,
) -> (Param<Tensor<D>>, Param<Tensor<D>>) {
    let m = momentum;
    let unbias = batch as f64 / (batch.max(2) - 1) as f64;
    let rm = running.0.val().mul_scalar(1.0 - m) + mean.mul_scalar(m);
    let rv = running.1.val().mul_scalar(1.0 - m) + var.mul_scalar(m * unbias);
    (frozen(rm.detach()), frozen(rv.detach()))
}

/// Which statistics normalise the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BnMode {
    /// Batch statistics (training); the new running statistics are returned.
    Batch,
    /// Running statistics (evaluation).
    Running,
}

pub struct BnOutput {
    pub out: Tensor<2>,
    /// 1/sqrt(var + eps), `[1, n]`: the tangent factor. The statistics count as constants in
    /// the per-point Jacobian (their dependence on one point is O(1/B)).
    pub inv_std: Tensor<2>,
    /// Batch mean and (biased) variance, when normalised by the batch.
    pub batch_stats: Option<(Tensor<1>, Tensor<1>)>,
}

/// A parameter the optimiser leaves alone (running statistics).
pub(super) fn frozen<const D: usize>(t: Tensor<D>) -> Param<Tensor<D>> {
    Param::from_tensor(t).set_require_grad(false)
}

impl OutputBatchNorm {
    pub fn new(features: usize, momentum: f64, device: &Device) -> Self {
        Self {
            running_mean: frozen(Tensor::zeros([features], device)),
            running_var: frozen(Tensor::ones([features], device)),
            momentum,
            epsilon: 1e-5,
        }
    }

    pub fn forward(&self, h: Tensor<2>, mode: BnMode) -> BnOutput {
        let [_, n] = h.dims();
        let (mean, var, stats) = match mode {
            BnMode::Batch => {
                let mean = h.clone().mean_dim(0);
                let var = (h.clone() - mean.clone()).square().mean_dim(0);
                let stats = (
                    mean.clone().detach().reshape([n]),
                    var.clone().detach().reshape([n]),
                );
                (mean, var, Some(stats))
            }
            BnMode::Running => {
                let device = h.device();
                let mean = self.running_mean.val().to_device(&device).reshape([1, n]);
                let var = self.running_var.val().to_device(&device).reshape([1, n]);
                (mean, var, None)
            }
        };
        let inv_std = var.add_scalar(self.epsilon).sqrt().recip();
        BnOutput {
            out: (h - mean) * inv_std.clone(),
            inv_std,
            batch_stats: stats,
        }
    }

    /// Blend batch statistics into the running ones (momentum as in PyTorch; unbiased var).
    pub fn updated(self, mean: Tensor<1>, var: Tensor<1>, batch: usize) -> Self {
        let running = (&self.running_mean, &self.running_var);
        let (running_mean, running_var) = blend(running, (mean, var), self.momentum, batch);
        Self {
            running_mean,
            running_var,
            ..self
        }
    }

    /// Running statistics set to exactly these (calibrating an untrained net on data).
    pub fn with_stats(self, mean: Tensor<1>, var: Tensor<1>) -> Self {
        Self {
            running_mean: frozen(mean.detach()),
            running_var: frozen(var.detach()),
            ..self
        }
    }
}

/// A hidden batch-norm with learned scale and shift (PyTorch's `BatchNorm` with affine).
#[derive(Module, Debug)]
pub struct AffineBatchNorm {
    pub norm: OutputBatchNorm,
    pub gamma: Param<Tensor<1>>,
    pub beta: Param<Tensor<1>>,
}

impl AffineBatchNorm {
    pub fn new(features: usize, momentum: f64, device: &Device) -> Self {
        Self {
            norm: OutputBatchNorm::new(features, momentum, device),
            gamma: Param::from_tensor(Tensor::ones([features], device)),
            beta: Param::from_tensor(Tensor::zeros([features], device)),
        }
    }

    /// The normalised rows, the tangent factor γ/√(var + ε) `[1, n]`, and the batch
    /// statistics when normalised by the batch.
    pub fn forward(
        &self,
        h: Tensor<2>,
        mode: BnMode,
    ) -> (Tensor<2>, Tensor<2>, Option<(Tensor<1>, Tensor<1>)>) {
        let [_, n] = h.dims();
        let BnOutput {
            out,
            inv_std,
            batch_stats,
        } = self.norm.forward(h, mode);
        let gamma = self.gamma.val().reshape([1, n]);
        let out = out * gamma.clone() + self.beta.val().reshape([1, n]);
        (out, inv_std * gamma, batch_stats)
    }

    pub fn updated(self, mean: Tensor<1>, var: Tensor<1>, batch: usize) -> Self {
        Self {
            norm: self.norm.updated(mean, var, batch),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::{from_rows, to_vec};

    #[test]
    fn batch_mode_gives_zero_mean_unit_variance() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let raw: Vec<f32> = (0..600)
            .map(|i| ((i * 37 % 101) as f32) * 0.3 + if i % 2 == 0 { 5.0 } else { -2.0 })
            .collect();
        let bn = OutputBatchNorm::new(3, 0.1, &device);
        let out = bn.forward(from_rows(&raw, 3, &device), BnMode::Batch);
        let v = to_vec(out.out);
        for c in 0..3 {
            let col: Vec<f64> = v.iter().skip(c).step_by(3).map(|&x| x as f64).collect();
            let m = col.iter().sum::<f64>() / col.len() as f64;
            let var = col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / col.len() as f64;
            assert!(m.abs() < 1e-4, "mean {m}");
            assert!((var - 1.0).abs() < 1e-3, "var {var}");
        }
    }

    #[test]
    fn running_mode_uses_updated_statistics() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let rows: Vec<f32> = vec![1.0, 3.0, 5.0, 7.0];
        let x = from_rows(&rows, 1, &device);
        let bn = OutputBatchNorm::new(1, 1.0, &device);
        let (m, v) = bn.forward(x.clone(), BnMode::Batch).batch_stats.unwrap();
        let bn = bn.updated(m, v, 4);
        // momentum 1: running = batch mean 4, unbiased var 20/3.
        let out = to_vec(bn.forward(x, BnMode::Running).out);
        let want = (1.0f64 - 4.0) / (20.0f64 / 3.0 + 1e-5).sqrt();
        assert!((out[0] as f64 - want).abs() < 1e-5, "{} vs {want}", out[0]);
    }
}
