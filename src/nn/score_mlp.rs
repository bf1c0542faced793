//! The low-dimensional denoiser (METHOD §2): out = mlp([x, 2t − 1]) + x, an MLP
//! dim+1 → h → h → dim with ReLU. `out` predicts either the noise eps or the clean point x0
//! (see `preset::Prediction`); the residual makes "the input" the starting guess.

use crate::preset::Prediction;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

#[derive(Module, Debug)]
pub struct ScoreMlp {
    pub l1: Linear,
    pub l2: Linear,
    pub l3: Linear,
    /// true: `forward` predicts x0; false: it predicts eps.
    pub predicts_x0: bool,
}

pub fn init(dim: usize, hidden: usize, prediction: Prediction, device: &Device) -> ScoreMlp {
    ScoreMlp {
        l1: LinearConfig::new(dim + 1, hidden).init(device),
        l2: LinearConfig::new(hidden, hidden).init(device),
        l3: LinearConfig::new(hidden, dim).init(device),
        predicts_x0: prediction == Prediction::X0,
    }
}

impl ScoreMlp {
    pub fn dim(&self) -> usize {
        self.l3.weight.dims()[1]
    }

    /// The raw prediction (eps or x0) for points `x` `[B, dim]` at times `t_in` `[B, 1]`
    /// (in [-1, 1]).
    pub fn forward(&self, x: Tensor<2>, t_in: Tensor<2>) -> Tensor<2> {
        let h = Tensor::cat(vec![x.clone(), t_in], 1);
        let h = relu(self.l1.forward(h));
        let h = relu(self.l2.forward(h));
        self.l3.forward(h) + x
    }

    /// The predicted noise, whatever the parameterisation: x_t = sa·x0 + sb·eps, so
    /// eps = (x_t − sa·x0) / sb. `sa`, `sb` broadcast (`[B, 1]` or `[1, 1]`).
    pub fn eps_hat(
        &self,
        x: Tensor<2>,
        t_in: Tensor<2>,
        sa: Tensor<2>,
        sb: Tensor<2>,
    ) -> Tensor<2> {
        let out = self.forward(x.clone(), t_in);
        if self.predicts_x0 {
            (x - out * sa) / sb
        } else {
            out
        }
    }
}
