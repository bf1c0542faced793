//! The diffusion time as the UNets see it: sinusoidal features of t in [-1, 1], shared by
//! the plain and the residual net.

use burn::tensor::{Device, Tensor, TensorData};

/// Sinusoidal features of the time input: [t, sin(πkt), cos(πkt)] for k = 1..=4.
pub const TIME_FEATURES: usize = 9;

pub fn time_features(t_in: &[f32], device: &Device) -> Tensor<2> {
    let mut f = Vec::with_capacity(t_in.len() * TIME_FEATURES);
    for &t in t_in {
        f.push(t);
        for k in 1..=4 {
            let a = std::f32::consts::PI * k as f32 * t;
            f.push(a.sin());
            f.push(a.cos());
        }
    }
    Tensor::from_data(TensorData::new(f, [t_in.len(), TIME_FEATURES]), device)
}
