//! The image denoiser (METHOD §2): a small UNet with circular padding. Three resolutions
//! (full, half, quarter) with `channels` [c1, c2, c3], two 3×3 convolutions per block, SiLU,
//! skip connections by concatenation, and the diffusion time added per block through a
//! learned projection of sinusoidal features. Its output is the raw prediction (eps, x0 or v);
//! `method::image_diffusion` turns it into a score.

use super::circular::{CircConv, down2, up2};
use super::score_resunet::ResUnet;
use super::silu_op::silu;
use super::time_features::{TIME_FEATURES, time_features};
use crate::preset::{ConvInit, Prediction, ScoreSettings, UnetArch};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

/// Two circular 3×3 convolutions with SiLU; the time projection is added after the first.
#[derive(Module, Debug)]
pub struct Block {
    pub a: CircConv,
    pub b: CircConv,
    pub time: Linear,
}

impl Block {
    fn new(c_in: usize, c_out: usize, init: ConvInit, device: &Device) -> Self {
        let conv = |c_in, c_out| match init {
            ConvInit::Default => CircConv::new(c_in, c_out, 3, device),
            ConvInit::He => CircConv::he(c_in, c_out, 3, device),
        };
        Self {
            a: conv(c_in, c_out),
            b: conv(c_out, c_out),
            time: LinearConfig::new(TIME_FEATURES, c_out).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>, t: Tensor<2>) -> Tensor<4> {
        let [b, c] = [x.dims()[0], self.time.weight.dims()[1]];
        let t = self.time.forward(t).reshape([b, c, 1, 1]);
        let h = silu(self.a.forward(x) + t);
        silu(self.b.forward(h))
    }
}

/// The plain UNet: no normalisation, no residuals (~30 k parameters at 8/16/32).
#[derive(Module, Debug)]
pub struct PlainUnet {
    pub enc1: Block,
    pub enc2: Block,
    pub mid: Block,
    pub dec2: Block,
    pub dec1: Block,
    pub out: CircConv,
    pub prediction: u8,
}

impl PlainUnet {
    pub fn new(
        channels: usize,
        widths: &[usize],
        prediction: Prediction,
        init: ConvInit,
        device: &Device,
    ) -> Self {
        let [c1, c2, c3] = [widths[0], widths[1], widths[2]];
        Self {
            enc1: Block::new(channels, c1, init, device),
            enc2: Block::new(c1, c2, init, device),
            mid: Block::new(c2, c3, init, device),
            dec2: Block::new(c3 + c2, c2, init, device),
            dec1: Block::new(c2 + c1, c1, init, device),
            out: CircConv::new(c1, channels, 1, device),
            prediction: prediction.code(),
        }
    }

    pub fn channels(&self) -> usize {
        self.out.conv.weight.dims()[0]
    }

    pub fn device(&self) -> Device {
        self.out.conv.weight.device()
    }

    /// The raw prediction for images `x` `[B, C, H, W]` (H, W multiples of 4) at time
    /// inputs `t_in` (one per image, in [-1, 1]).
    pub fn forward(&self, x: Tensor<4>, t_in: &[f32]) -> Tensor<4> {
        let t = time_features(t_in, &x.device());
        let e1 = self.enc1.forward(x, t.clone());
        let e2 = self.enc2.forward(down2(e1.clone()), t.clone());
        let m = self.mid.forward(down2(e2.clone()), t.clone());
        let d2 = self
            .dec2
            .forward(Tensor::cat(vec![up2(m), e2], 1), t.clone());
        let d1 = self.dec1.forward(Tensor::cat(vec![up2(d2), e1], 1), t);
        self.out.forward(d1)
    }
}

/// The image denoiser, in either architecture (`score.arch`).
// Both variants are a few kB of module handles and a run holds one model, moved rarely:
// boxing would buy nothing but an indirection in every forward pass.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ScoreUnet {
    Plain(PlainUnet),
    Residual(ResUnet),
}

impl ScoreUnet {
    /// The net a preset's score settings ask for, for images of `channels` channels.
    pub fn new(channels: usize, s: &ScoreSettings, device: &Device) -> Self {
        match s.arch {
            UnetArch::Plain => Self::Plain(PlainUnet::new(
                channels,
                &s.channels,
                s.prediction,
                s.init,
                device,
            )),
            UnetArch::Residual => Self::Residual(ResUnet::new(
                channels,
                &s.channels,
                s.blocks,
                s.attention,
                s.prediction,
                device,
            )),
        }
    }

    pub fn prediction(&self) -> Prediction {
        Prediction::from_code(match self {
            Self::Plain(n) => n.prediction,
            Self::Residual(n) => n.prediction,
        })
    }

    pub fn channels(&self) -> usize {
        match self {
            Self::Plain(n) => n.channels(),
            Self::Residual(n) => n.channels(),
        }
    }

    pub fn device(&self) -> Device {
        match self {
            Self::Plain(n) => n.device(),
            Self::Residual(n) => n.device(),
        }
    }

    /// The raw prediction for images `x` `[B, C, H, W]` at time inputs `t_in` (one per
    /// image, in [-1, 1]).
    pub fn forward(&self, x: Tensor<4>, t_in: &[f32]) -> Tensor<4> {
        match self {
            Self::Plain(n) => n.forward(x, t_in),
            Self::Residual(n) => n.forward(x, t_in),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn keeps_the_image_shape_and_depends_on_time() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let settings = ScoreSettings {
            channels: vec![4, 6, 8],
            prediction: Prediction::V,
            ..Default::default()
        };
        let net = ScoreUnet::new(2, &settings, &device);
        assert!(matches!(net, ScoreUnet::Plain(_)));
        let x = Tensor::<4>::random([3, 2, 8, 12], Distribution::Default, &device);
        let a = net.forward(x.clone(), &[0.0, 0.0, 0.0]);
        assert_eq!(a.dims(), [3, 2, 8, 12]);
        let b = net.forward(x, &[0.5, 0.5, 0.5]);
        let diff = crate::tensor_util::scalar((a - b).abs().max());
        assert!(diff > 1e-4, "the time input changes nothing: {diff}");
        assert_eq!(net.prediction(), Prediction::V);
    }

    /// With no normalisation, the initial scale of the convolutions decides whether the
    /// net starts by passing a signal through or by predicting ~0 (a loss plateau at the
    /// target's variance that lasted 5–10 epochs and left seed-dependent final losses).
    #[test]
    fn he_initialisation_passes_a_signal_that_the_default_loses() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        // How much the output depends on the input: the spread of the change between two
        // independent inputs (biases alone would give a spread with no signal in it).
        let change_sd = |init: ConvInit| {
            device.seed(3);
            let settings = ScoreSettings {
                channels: vec![8, 16, 32],
                init,
                ..Default::default()
            };
            let net = ScoreUnet::new(3, &settings, &device);
            let draw =
                || Tensor::<4>::random([4, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
            let change = net.forward(draw(), &[0.0; 4]) - net.forward(draw(), &[0.0; 4]);
            let out = crate::tensor_util::to_vec(change);
            (out.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / out.len() as f64).sqrt()
        };
        let (default, he) = (change_sd(ConvInit::Default), change_sd(ConvInit::He));
        assert!(he > 0.1, "He: output change sd {he} at initialisation");
        assert!(default < 0.02, "default: output change sd {default}");
    }
}
