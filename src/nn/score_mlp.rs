//! The low-dimensional denoiser (METHOD §2): eps_hat = mlp([x, 2t − 1]) + x,
//! an MLP dim+1 → h → h → dim with ReLU. The residual makes "predict the input" the
//! starting point, which is right at high noise where x_t is almost pure noise.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

#[derive(Module, Debug)]
pub struct ScoreMlp {
    pub l1: Linear,
    pub l2: Linear,
    pub l3: Linear,
}

pub fn init(dim: usize, hidden: usize, device: &Device) -> ScoreMlp {
    ScoreMlp {
        l1: LinearConfig::new(dim + 1, hidden).init(device),
        l2: LinearConfig::new(hidden, hidden).init(device),
        l3: LinearConfig::new(hidden, dim).init(device),
    }
}

impl ScoreMlp {
    pub fn dim(&self) -> usize {
        self.l3.weight.dims()[1]
    }

    /// Predicted noise for points `x` `[B, dim]` at times `t_in` `[B, 1]` (in [-1, 1]).
    pub fn forward(&self, x: Tensor<2>, t_in: Tensor<2>) -> Tensor<2> {
        let h = Tensor::cat(vec![x.clone(), t_in], 1);
        let h = relu(self.l1.forward(h));
        let h = relu(self.l2.forward(h));
        self.l3.forward(h) + x
    }
}
