//! Forward-mode tangent propagation helpers.
//!
//! Tangents are stacked as `[m, B, n]`: m directions pushed through the same batch of B
//! points at once, so one pass gives m Jacobian-vector products per point.

use super::circ_conv_op::in_use_on;
use super::silu_op::{silu, silu_prime};
use burn::tensor::{Tensor, activation::sigmoid};

/// The tangent through `x W + b` is `t W` (the bias does not move).
pub fn linear(t: Tensor<3>, w: Tensor<2>) -> Tensor<3> {
    let [m, b, n] = t.dims();
    let out = w.dims()[1];
    t.reshape([m * b, n]).matmul(w).reshape([m, b, out])
}

/// Multiply every tangent by the point-wise derivative `factor` `[B, n]` (or `[1, n]`).
pub fn scale(t: Tensor<3>, factor: Tensor<2>) -> Tensor<3> {
    super::bcast_op::repeat_mul(t, factor)
}

/// SiLU and its derivative σ(h)·(1 + h·(1 − σ(h))).
pub fn silu_with_derivative(h: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
    // On the CPU two fused operations (one pass and one exponential each, forward and
    // backward) instead of about seven of burn's.
    if in_use_on(&h.device()) {
        return (silu(h.clone()), silu_prime(h));
    }
    let s = sigmoid(h.clone());
    let y = h.clone() * s.clone();
    let one_minus_s = s.clone().neg().add_scalar(1.0);
    let dy = s * (h * one_minus_s).add_scalar(1.0);
    (y, dy)
}
