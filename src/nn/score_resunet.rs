//! The reference-class image denoiser (METHOD §2): a diffusers-style UNet on the torus.
//! Per level `blocks` residual blocks (GroupNorm → SiLU → circular 3×3 conv, the time
//! embedding projected and added, GroupNorm → SiLU → circular 3×3 conv, a 1×1 skip where the
//! width changes), average pooling between levels, a mid block of two residual blocks with
//! optional self-attention between them, and a decoder that concatenates each level's
//! encoder output. Every operation is translation-equivariant on the torus (circular
//! convolutions, pooling by 2, attention without positions), so a shifted picture gives a
//! shifted prediction.

use super::attention_op;
use super::circular::{CircConv, down2, up2};
use super::group_norm_op::group_norm;
use super::silu_op::silu;
use super::softmax_op::softmax_last;
use super::time_features::{TIME_FEATURES, time_features};
use crate::preset::Prediction;
use burn::module::Module;
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

/// GroupNorm(8) as in the reference, or the largest group count ≤ 8 that divides `c`
/// (narrow quick nets have widths such as 4 or 12).
pub fn groups_for(c: usize) -> usize {
    (1..=8.min(c))
        .rev()
        .find(|g| c.is_multiple_of(*g))
        .unwrap_or(1)
}

fn norm(c: usize, device: &Device) -> GroupNorm {
    GroupNormConfig::new(groups_for(c), c).init(device)
}

#[derive(Module, Debug)]
pub struct ResBlock {
    pub norm1: GroupNorm,
    pub conv1: CircConv,
    pub time: Linear,
    pub norm2: GroupNorm,
    pub conv2: CircConv,
    /// A 1×1 convolution where the block changes the width.
    pub skip: Option<CircConv>,
}

impl ResBlock {
    pub fn new(c_in: usize, c_out: usize, temb: usize, device: &Device) -> Self {
        Self {
            norm1: norm(c_in, device),
            conv1: CircConv::new(c_in, c_out, 3, device),
            time: LinearConfig::new(temb, c_out).init(device),
            norm2: norm(c_out, device),
            conv2: CircConv::new(c_out, c_out, 3, device),
            skip: (c_in != c_out).then(|| CircConv::new(c_in, c_out, 1, device)),
        }
    }

    /// `temb` is the activated time embedding `[B, temb]`.
    pub fn forward(&self, x: Tensor<4>, temb: Tensor<2>) -> Tensor<4> {
        let [b, _, _, _] = x.dims();
        let c = self.time.weight.dims()[1];
        let h = self.conv1.forward(group_norm(&self.norm1, x.clone(), true));
        let h = h + self.time.forward(temb).reshape([b, c, 1, 1]);
        let h = self.conv2.forward(group_norm(&self.norm2, h, true));
        let skip = match &self.skip {
            Some(s) => s.forward(x),
            None => x,
        };
        skip + h
    }
}

/// Single-head self-attention over the pixels of a (small) feature map, with a residual.
#[derive(Module, Debug)]
pub struct Attention {
    pub norm: GroupNorm,
    pub qkv: Linear,
    pub proj: Linear,
}

impl Attention {
    pub fn new(c: usize, device: &Device) -> Self {
        Self {
            norm: norm(c, device),
            qkv: LinearConfig::new(c, 3 * c).init(device),
            proj: LinearConfig::new(c, c).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let tokens = group_norm(&self.norm, x.clone(), false)
            .reshape([b, c, h * w])
            .swap_dims(1, 2);
        let qkv = self.qkv.forward(tokens);
        if attention_op::fused_on(&qkv.device()) {
            let out = self.proj.forward(attention_op::attention(qkv));
            return x + out.swap_dims(1, 2).reshape([b, c, h, w]);
        }
        let q = qkv.clone().narrow(2, 0, c);
        let k = qkv.clone().narrow(2, c, c);
        let v = qkv.narrow(2, 2 * c, c);
        let weights = softmax_last(q.matmul(k.swap_dims(1, 2)).div_scalar((c as f64).sqrt()));
        let out = self.proj.forward(weights.matmul(v));
        x + out.swap_dims(1, 2).reshape([b, c, h, w])
    }
}

/// One resolution: its blocks in order.
#[derive(Module, Debug)]
pub struct Level {
    pub blocks: Vec<ResBlock>,
}

impl Level {
    fn forward(&self, mut x: Tensor<4>, temb: &Tensor<2>) -> Tensor<4> {
        for b in &self.blocks {
            x = b.forward(x, temb.clone());
        }
        x
    }
}

#[derive(Module, Debug)]
pub struct ResUnet {
    pub time1: Linear,
    pub time2: Linear,
    pub conv_in: CircConv,
    pub down: Vec<Level>,
    pub mid1: ResBlock,
    pub attention: Option<Attention>,
    pub mid2: ResBlock,
    pub up: Vec<Level>,
    pub norm_out: GroupNorm,
    pub conv_out: CircConv,
    pub prediction: u8,
}

impl ResUnet {
    /// `widths` per resolution (full, half, …), `blocks` residual blocks per level.
    pub fn new(
        channels: usize,
        widths: &[usize],
        blocks: usize,
        attention: bool,
        prediction: Prediction,
        device: &Device,
    ) -> Self {
        assert!(
            !widths.is_empty() && blocks >= 1,
            "a UNet needs a level and a block"
        );
        let temb = 4 * widths[0];
        let last = *widths.last().expect("non-empty");
        let mut down = Vec::new();
        let mut c = widths[0];
        for &w in widths {
            let mut level = Vec::new();
            for _ in 0..blocks {
                level.push(ResBlock::new(c, w, temb, device));
                c = w;
            }
            down.push(Level { blocks: level });
        }
        let mut up = Vec::new();
        for (l, &w) in widths.iter().enumerate().rev() {
            // The deepest level's decoder reads the mid block beside its own encoder output.
            let below = if l + 1 == widths.len() {
                last
            } else {
                widths[l + 1]
            };
            let mut level = vec![ResBlock::new(below + w, w, temb, device)];
            for _ in 1..blocks {
                level.push(ResBlock::new(w, w, temb, device));
            }
            up.push(Level { blocks: level });
        }
        Self {
            time1: LinearConfig::new(TIME_FEATURES, temb).init(device),
            time2: LinearConfig::new(temb, temb).init(device),
            conv_in: CircConv::new(channels, widths[0], 3, device),
            down,
            mid1: ResBlock::new(last, last, temb, device),
            attention: attention.then(|| Attention::new(last, device)),
            mid2: ResBlock::new(last, last, temb, device),
            up,
            norm_out: norm(widths[0], device),
            conv_out: CircConv::new(widths[0], channels, 3, device),
            prediction: prediction.code(),
        }
    }

    pub fn channels(&self) -> usize {
        self.conv_out.conv.weight.dims()[0]
    }

    pub fn device(&self) -> Device {
        self.conv_out.conv.weight.device()
    }

    /// Sides must be multiples of 2^(levels − 1).
    pub fn forward(&self, x: Tensor<4>, t_in: &[f32]) -> Tensor<4> {
        let t = time_features(t_in, &x.device());
        let temb = silu(self.time2.forward(silu(self.time1.forward(t))));
        let mut h = self.conv_in.forward(x);
        let mut skips = Vec::with_capacity(self.down.len());
        for (l, level) in self.down.iter().enumerate() {
            if l > 0 {
                h = down2(h);
            }
            h = level.forward(h, &temb);
            skips.push(h.clone());
        }
        h = self.mid1.forward(h, temb.clone());
        if let Some(a) = &self.attention {
            h = a.forward(h);
        }
        h = self.mid2.forward(h, temb.clone());
        let depth = self.up.len();
        for (i, level) in self.up.iter().enumerate() {
            let skip = skips.pop().expect("one skip per level");
            h = level.forward(Tensor::cat(vec![h, skip], 1), &temb);
            if i + 1 < depth {
                h = up2(h);
            }
        }
        self.conv_out.forward(group_norm(&self.norm_out, h, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::{scalar, to_vec};
    use burn::tensor::{Distribution, TensorData};

    #[test]
    fn group_counts_divide_the_width() {
        assert_eq!(groups_for(8), 8);
        assert_eq!(groups_for(32), 8);
        assert_eq!(groups_for(12), 6);
        assert_eq!(groups_for(4), 4);
        assert_eq!(groups_for(7), 7);
        assert_eq!(groups_for(11), 1);
    }

    #[test]
    fn residual_blocks_keep_the_side_and_change_the_width() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 4, 6, 8], Distribution::Default, &device);
        let t = Tensor::<2>::random([2, 16], Distribution::Default, &device);
        let same = ResBlock::new(4, 4, 16, &device);
        assert!(same.skip.is_none());
        assert_eq!(same.forward(x.clone(), t.clone()).dims(), [2, 4, 6, 8]);
        let wider = ResBlock::new(4, 12, 16, &device);
        assert!(wider.skip.is_some());
        assert_eq!(wider.forward(x, t).dims(), [2, 12, 6, 8]);
    }

    /// GroupNorm as the blocks use it: each group of channels of each image has mean 0 and
    /// variance 1 over its channels and pixels (gamma 1, beta 0 at init).
    #[test]
    fn group_norm_normalises_each_group() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let n = norm(8, &device);
        assert_eq!(n.num_groups, 8);
        let n = norm(16, &device);
        let x = Tensor::<4>::random([2, 16, 5, 5], Distribution::Uniform(2.0, 7.0), &device);
        let y = to_vec(n.forward(x));
        let per_group = 2 * 25;
        for g in y.chunks(per_group) {
            let mean = g.iter().sum::<f32>() / g.len() as f32;
            let var = g.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / g.len() as f32;
            assert!(mean.abs() < 1e-4, "mean {mean}");
            assert!((var - 1.0).abs() < 1e-2, "var {var}");
        }
    }

    fn roll(t: Tensor<4>, dy: usize, dx: usize) -> Tensor<4> {
        let [_, _, h, w] = t.dims();
        let t = Tensor::cat(
            vec![t.clone().narrow(2, h - dy, dy), t.narrow(2, 0, h - dy)],
            2,
        );
        Tensor::cat(
            vec![t.clone().narrow(3, w - dx, dx), t.narrow(3, 0, w - dx)],
            3,
        )
    }

    /// No border is special: shifting the picture around the torus (by a multiple of the
    /// pooling factor) shifts the prediction the same way, attention included.
    #[test]
    fn a_shifted_picture_gives_a_shifted_prediction() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let net = ResUnet::new(3, &[4, 8, 8], 2, true, Prediction::V, &device);
        let x = Tensor::<4>::random([1, 3, 8, 12], Distribution::Default, &device);
        let a = to_vec(net.forward(roll(x.clone(), 4, 8), &[0.3]));
        let b = to_vec(roll(net.forward(x, &[0.3]), 4, 8));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-4, "shift changed the prediction by {worst}");
    }

    #[test]
    fn keeps_the_image_shape_depends_on_time_and_counts_its_parameters() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let net = ResUnet::new(2, &[8, 16, 32], 2, false, Prediction::V, &device);
        let x = Tensor::<4>::random([2, 2, 16, 16], Distribution::Default, &device);
        let a = net.forward(x.clone(), &[0.0, 0.0]);
        assert_eq!(a.dims(), [2, 2, 16, 16]);
        let b = net.forward(x, &[0.9, 0.9]);
        assert!(scalar((a - b).abs().max()) > 1e-5, "time changes nothing");
        // Two blocks per level, three levels at 8/16/32: the reference class (~0.1–0.25 M).
        let p = net.num_params();
        assert!((100_000..250_000).contains(&p), "{p} parameters");
        let with_attention = ResUnet::new(2, &[8, 16, 32], 2, true, Prediction::V, &device);
        assert_eq!(
            with_attention.num_params(),
            p + 32 * 96 + 96 + 32 * 32 + 32 + 2 * 32
        );
        let one = Tensor::<4>::from_data(
            TensorData::new(vec![0.0f32; 2 * 8 * 8], [1, 2, 8, 8]),
            &device,
        );
        assert!(
            to_vec(net.forward(one, &[0.1]))
                .iter()
                .all(|v| v.is_finite())
        );
    }
}
