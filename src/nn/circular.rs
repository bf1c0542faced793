//! Convolutions on a torus: Turing patterns have no edges, so a convolution must see the
//! opposite border where a plain one would see zeros.

use super::{circ_conv_op, resample_op};
use burn::module::Module;
use burn::nn::Initializer;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

/// Pad the last two dimensions by `p` on every side with the values from the opposite
/// border (circular padding).
pub fn pad_circular(x: Tensor<4>, p: usize) -> Tensor<4> {
    if p == 0 {
        return x;
    }
    let [_, _, h, w] = x.dims();
    assert!(
        p <= h && p <= w,
        "circular padding {p} wider than the image"
    );
    let x = Tensor::cat(
        vec![x.clone().narrow(2, h - p, p), x.clone(), x.narrow(2, 0, p)],
        2,
    );
    Tensor::cat(
        vec![x.clone().narrow(3, w - p, p), x.clone(), x.narrow(3, 0, p)],
        3,
    )
}

/// A k×k convolution (odd k) whose output has the input's size, wrapping at the borders.
#[derive(Module, Debug)]
pub struct CircConv {
    pub conv: Conv2d,
}

impl CircConv {
    pub fn new(c_in: usize, c_out: usize, k: usize, device: &Device) -> Self {
        Self::from_config(Conv2dConfig::new([c_in, c_out], [k, k]), device)
    }

    /// He initialisation (weight variance 2 / fan-in) for a convolution followed by SiLU
    /// with no normalisation after it. burn's default (PyTorch's: variance 1 / (3 fan-in))
    /// shrinks the signal about eightfold per convolution and SiLU, so a stack of them
    /// without normalisation starts with an output near zero and trains from a long plateau.
    pub fn he(c_in: usize, c_out: usize, k: usize, device: &Device) -> Self {
        let he = Initializer::KaimingUniform {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: false,
        };
        let config = Conv2dConfig::new([c_in, c_out], [k, k]).with_initializer(he);
        Self::from_config(config, device)
    }

    fn from_config(config: Conv2dConfig, device: &Device) -> Self {
        assert!(
            config.kernel_size.iter().all(|k| k % 2 == 1),
            "circular convolutions need an odd kernel"
        );
        Self {
            conv: config.init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let bias = self.conv.bias.as_ref().map(|b| b.val());
        circular_conv(x, self.conv.weight.val(), bias)
    }
}

/// The k×k convolution (odd k, stride 1) of `x` `[B, c_in, H, W]` with `kernel`
/// `[c_out, c_in, k, k]`, wrapping at the borders. On the CPU, one operation with its own
/// kernels and backward passes (`circ_conv_op`, several times faster); elsewhere burn's
/// convolution of the circularly padded input.
pub fn circular_conv(x: Tensor<4>, kernel: Tensor<4>, bias: Option<Tensor<1>>) -> Tensor<4> {
    if circ_conv_op::in_use_on(&x.device()) {
        let bias = bias.unwrap_or_else(|| Tensor::zeros([kernel.dims()[0]], &x.device()));
        return circ_conv_op::circ_conv(x, kernel, bias);
    }
    let p = kernel.dims()[2] / 2;
    let opts = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
    conv2d(pad_circular(x, p), kernel, bias, opts)
}

/// 2×2 average pooling (sides must be even): one operation on the CPU (`resample_op`).
pub fn down2(x: Tensor<4>) -> Tensor<4> {
    if circ_conv_op::in_use_on(&x.device()) {
        return resample_op::down2(x);
    }
    down2_composed(x)
}

/// Nearest-neighbour 2× upsampling: one operation on the CPU (`resample_op`).
pub fn up2(x: Tensor<4>) -> Tensor<4> {
    if circ_conv_op::in_use_on(&x.device()) {
        return resample_op::up2(x);
    }
    up2_composed(x)
}

/// [`down2`] from burn's operations (every backend).
pub fn down2_composed(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h / 2, 2, w / 2, 2])
        .mean_dim(5)
        .mean_dim(3)
        .reshape([b, c, h / 2, w / 2])
}

/// [`up2`] from burn's operations (every backend).
pub fn up2_composed(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .repeat_dim(3, 2)
        .repeat_dim(5, 2)
        .reshape([b, c, 2 * h, 2 * w])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::to_vec;
    use burn::tensor::TensorData;

    fn grid(h: usize, w: usize, device: &Device) -> Tensor<4> {
        let v: Vec<f32> = (0..h * w).map(|i| i as f32).collect();
        Tensor::from_data(TensorData::new(v, [1, 1, h, w]), device)
    }

    #[test]
    fn padding_really_wraps() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let out = to_vec(pad_circular(grid(3, 4, &device), 1));
        // Padded 5×6: the corner is the opposite corner, the edges the opposite edges.
        assert_eq!(out.len(), 30);
        assert_eq!(out[0], 11.0); // (2, 3)
        assert_eq!(&out[1..5], &[8.0, 9.0, 10.0, 11.0]); // last row
        assert_eq!(out[6], 3.0); // row 0's left neighbour is its last pixel
        assert_eq!(out[11], 0.0); // row 0's right neighbour is its first pixel
        assert_eq!(&out[25..29], &[0.0, 1.0, 2.0, 3.0]); // first row below the last
    }

    /// Shifting the input around the torus shifts the output the same way: no border is
    /// special, which zero padding would break.
    #[test]
    fn circular_convolution_commutes_with_shifts() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let conv = CircConv::new(1, 2, 3, &device);
        let (h, w) = (5, 6);
        let x = Tensor::<4>::random([1, 1, h, w], burn::tensor::Distribution::Default, &device);
        let roll = |t: Tensor<4>| {
            let [_, _, h, _] = t.dims();
            Tensor::cat(
                vec![t.clone().narrow(2, h - 1, 1), t.narrow(2, 0, h - 1)],
                2,
            )
        };
        let a = to_vec(conv.forward(roll(x.clone())));
        let b = to_vec(roll(conv.forward(x)));
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-5, "{p} vs {q}");
        }
    }

    #[test]
    fn pooling_and_upsampling_shapes_and_values() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let x = grid(4, 4, &device);
        let d = to_vec(down2(x.clone()));
        assert_eq!(d, vec![2.5, 4.5, 10.5, 12.5]);
        let u = up2(down2(x));
        assert_eq!(u.dims(), [1, 1, 4, 4]);
        assert_eq!(to_vec(u)[..4], [2.5, 2.5, 4.5, 4.5]);
    }
}
