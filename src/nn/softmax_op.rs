//! Softmax over the last axis as one CPU operation (burn's backend-extension mechanism, like
//! `nn::silu_op`), for the residual UNet's self-attention. burn composes it from a maximum,
//! a difference, an exponential, a sum and a quotient, five passes over the attention
//! matrix with one libm `expf` call per entry; on a live 256² canvas that matrix is
//! 4096 × 4096 per score call and the `expf` calls alone took a fifth of an SDE step. Here
//! each row is one pass for its maximum and one that exponentiates (vectorised), sums and
//! scales; the backward pass y ⊙ (g − Σ g ⊙ y) is one more per row. Other backends keep
//! burn's `softmax`.

use super::circ_conv_op::{contiguous, values};
use super::circ_kernels::{lane_max, lane_sum, written};
use super::silu_op::exp;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::Tensor;
use burn::tensor::TensorData;
use burn::tensor::activation;
use rayon::prelude::*;
use std::mem::MaybeUninit;

#[backend_extension(Flex, Autodiff)]
pub trait SoftmaxBackend: Backend {
    /// Softmax of each row (the last axis).
    fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

type Host = FloatTensor<Flex>;

/// Rows handed to a thread at once: enough work per hand-out for short rows.
fn rows_per_task(n: usize) -> usize {
    (4096 / n.max(1)).max(1)
}

fn softmax_rows(x: &Host) -> Host {
    let x = contiguous(x);
    let shape = x.shape();
    let n = *shape
        .as_slice()
        .last()
        .expect("softmax of a tensor with an axis");
    let src = values(&x);
    let fill = |out: &mut [MaybeUninit<f32>]| {
        let per = rows_per_task(n) * n;
        out.par_chunks_mut(per)
            .zip(src.par_chunks(per))
            .for_each(|(o, s)| {
                for (o, s) in o.chunks_mut(n).zip(s.chunks(n)) {
                    let max = lane_max(s);
                    for (o, &v) in o.iter_mut().zip(s) {
                        o.write(exp(v - max));
                    }
                    // SAFETY: written just above.
                    let o = unsafe { &mut *(o as *mut [MaybeUninit<f32>] as *mut [f32]) };
                    let inv = (1.0 / lane_sum(o, |e| e)) as f32;
                    o.iter_mut().for_each(|e| *e *= inv);
                }
            });
    };
    // SAFETY: every value of every row is written.
    let out = unsafe { written(src.len(), fill) };
    Host::from_data(TensorData::new(out, shape))
}

impl SoftmaxBackend for Flex {
    fn fused_softmax(x: Host) -> Host {
        softmax_rows(&x)
    }
}

/// Σ a·b in 16 lanes (vectorised).
fn lane_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            lanes[i] += x[i] * y[i];
        }
    }
    tail + lanes.iter().sum::<f32>()
}

#[derive(Debug)]
struct SoftmaxStep;

impl Backward<Flex, 1> for SoftmaxStep {
    /// The output y: the Jacobian of softmax is diag(y) − y yᵀ.
    type State = Host;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [Some(node)] = ops.parents else {
            return;
        };
        let grad = grads.consume::<Flex>(&ops.node);
        let (y, g) = (contiguous(&ops.state), contiguous(&grad));
        let shape = y.shape();
        let n = *shape.as_slice().last().expect("an axis");
        let (ys, gs) = (values(&y), values(&g));
        assert_eq!(ys.len(), gs.len(), "gradient size");
        let fill = |out: &mut [MaybeUninit<f32>]| {
            let per = rows_per_task(n) * n;
            out.par_chunks_mut(per)
                .zip(ys.par_chunks(per).zip(gs.par_chunks(per)))
                .for_each(|(o, (yc, gc))| {
                    for (o, (y, g)) in o.chunks_mut(n).zip(yc.chunks(n).zip(gc.chunks(n))) {
                        let dot = lane_dot(y, g);
                        for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                            o.write(y * (g - dot));
                        }
                    }
                });
        };
        // SAFETY: one value written per output value.
        let out = unsafe { written(ys.len(), fill) };
        grads.register::<Flex>(node.id, Host::from_data(TensorData::new(out, shape)));
    }
}

impl<C: CheckpointStrategy> SoftmaxBackend for Autodiff<Flex, C> {
    fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let prep = SoftmaxStep
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful();
        let out = softmax_rows(x.primitive());
        match prep {
            OpsKind::Tracked(prep) => prep.finish(out.clone(), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

/// Softmax over the last axis: fused on the CPU (unless
/// [`super::circ_conv_op::set_own_kernels`] turned our kernels off), burn's elsewhere.
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if super::circ_conv_op::in_use_on(&x.device()) {
        Tensor::from_dispatch(<Dispatch as SoftmaxBackend>::fused_softmax(
            x.into_dispatch(),
        ))
    } else {
        activation::softmax(x, D - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::to_vec;
    use burn::tensor::{Device, Distribution};

    #[test]
    fn matches_burns_softmax_and_its_gradient() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(6);
        // Rows long and short, and large logits (the maximum is subtracted first).
        for [b, r, n] in [[2usize, 37, 300], [3, 500, 7]] {
            let x = Tensor::<3>::random([b, r, n], Distribution::Normal(0.0, 20.0), &device)
                .require_grad();
            let probe = Tensor::<3>::random([b, r, n], Distribution::Default, &device);
            let ours = Tensor::from_dispatch(<Dispatch as SoftmaxBackend>::fused_softmax(
                x.clone().into_dispatch(),
            ));
            let theirs = activation::softmax(x.clone(), 2);
            let close = |a: Vec<f32>, b: Vec<f32>| {
                for (p, q) in a.iter().zip(&b) {
                    assert!((p - q).abs() < 1e-5 * (1.0 + q.abs()), "{p} vs {q}");
                }
            };
            close(to_vec(ours.clone()), to_vec(theirs.clone()));
            let ga = x.grad(&(ours * probe.clone()).sum().backward()).unwrap();
            let gb = x.grad(&(theirs * probe).sum().backward()).unwrap();
            close(to_vec(ga), to_vec(gb));
            let xi = x.inner();
            close(
                to_vec(softmax_last(xi.clone())),
                to_vec(activation::softmax(xi, 2)),
            );
        }
    }
}
