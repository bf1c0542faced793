//! What moves an image simulation: the training-free skew kernel v = K * s (METHOD §4), a
//! trained neural cellular automaton v = NCA(x) (METHOD §3), or nothing (v = 0, the
//! Langevin baseline the metrics subtract).

use super::skew::ImageKernel;
use crate::nn::batchnorm::BnMode;
use crate::nn::flow_nca::Nca;
use burn::tensor::Tensor;

pub enum Velocity {
    Kernel(ImageKernel),
    /// The NCA in evaluation mode, its output times `scale` (sign × strength).
    Nca {
        net: Box<Nca>,
        scale: f64,
    },
    Still,
}

impl Velocity {
    /// v at state `x` whose score is `s` (both `[B, c, H, W]`).
    pub fn at(&self, x: Tensor<4>, s: Tensor<4>) -> Tensor<4> {
        match self {
            Velocity::Kernel(k) => k.apply(s),
            Velocity::Nca { net, scale } => {
                let v = net.forward(x, BnMode::Running);
                if *scale == 1.0 {
                    v
                } else {
                    v.mul_scalar(*scale)
                }
            }
            Velocity::Still => s.zeros_like(),
        }
    }
}
