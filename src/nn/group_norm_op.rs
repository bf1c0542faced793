//! GroupNorm, optionally followed by SiLU, as one CPU operation (burn's backend-extension
//! mechanism, like `nn::circ_conv_op`). burn composes GroupNorm from about ten tensor
//! operations (reshape, mean, subtract, square, mean, add, sqrt, divide, scale, shift) and
//! their backward passes, each a pass over the activations on one thread: on the residual
//! UNet that was about a third of a quick training step's wall time. Here the forward pass
//! is two passes over each group (statistics, then the normalised and activated output) and
//! the backward pass two more, with the groups of all images spread over the threads. Other
//! backends keep burn's `GroupNorm` (+ `silu`).

use super::circ_conv_op::{contiguous, in_use_on, values};
use super::circ_kernels::{lane_sum, written};
use super::silu_op::{sigmoid, silu};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::GroupNorm;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use std::mem::MaybeUninit;

#[backend_extension(Flex, Autodiff)]
pub trait GroupNormBackend: Backend {
    /// `x` `[B, C, …]`, `gamma` and `beta` `[C]`: each group of `C / groups` channels of each
    /// image normalised to mean 0 and variance 1 (biased, `epsilon` added to it), scaled by
    /// `gamma` and shifted by `beta` per channel; then SiLU when `then_silu`.
    fn fused_group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f32,
        then_silu: bool,
    ) -> FloatTensor<Self>;
}

type Host = FloatTensor<Flex>;

/// The layout of one call: images, channels, groups, values per channel.
#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    channels: usize,
    groups: usize,
    pixels: usize,
}

impl Dims {
    fn of(x: &Host, groups: usize) -> Self {
        let dims = x.shape().dims::<4>();
        let [batch, channels] = [dims[0], dims[1]];
        assert!(
            groups > 0 && channels.is_multiple_of(groups),
            "{channels} channels do not split into {groups} groups"
        );
        Self {
            batch,
            channels,
            groups,
            pixels: dims[2] * dims[3],
        }
    }

    fn per_group(&self) -> usize {
        self.channels / self.groups
    }

    /// Values in one group of one image (contiguous in NCHW).
    fn group_len(&self) -> usize {
        self.per_group() * self.pixels
    }
}

/// Mean and 1/σ of every group of every image, `[B·groups]` pairs.
fn stats(x: &[f32], d: &Dims, epsilon: f32) -> Vec<(f32, f32)> {
    x.par_chunks(d.group_len())
        .map(|g| {
            let n = g.len() as f64;
            let mean = lane_sum(g, |v| v) / n;
            // Second pass about the mean (the group is still in cache): no cancellation.
            let m = mean as f32;
            let var = lane_sum(g, |v| (v - m) * (v - m)) / n;
            (mean as f32, 1.0 / ((var as f32) + epsilon).sqrt())
        })
        .collect()
}

/// The per-channel affine map of each group's normalisation: y = x·a + b.
fn affine(mean: f32, rstd: f32, gamma: f32, beta: f32) -> (f32, f32) {
    let a = rstd * gamma;
    (a, beta - mean * a)
}

fn forward_values(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    d: &Dims,
    st: &[(f32, f32)],
    then_silu: bool,
) -> Vec<f32> {
    let fill = |out: &mut [MaybeUninit<f32>]| {
        out.par_chunks_mut(d.group_len())
            .zip(x.par_chunks(d.group_len()))
            .enumerate()
            .for_each(|(bg, (o, xg))| {
                let (mean, rstd) = st[bg];
                let first = (bg % d.groups) * d.per_group();
                for (c, (o, xc)) in o.chunks_mut(d.pixels).zip(xg.chunks(d.pixels)).enumerate() {
                    let (a, b) = affine(mean, rstd, gamma[first + c], beta[first + c]);
                    for (o, &v) in o.iter_mut().zip(xc) {
                        let z = v * a + b;
                        o.write(if then_silu { z * sigmoid(z) } else { z });
                    }
                }
            });
    };
    // SAFETY: the groups tile the tensor and every value of every group is written.
    unsafe { written(x.len(), fill) }
}

fn host(values: Vec<f32>, like: &Host) -> Host {
    Host::from_data(TensorData::new(values, like.shape()))
}

/// The forward pass on host tensors, with the statistics the backward pass needs.
fn forward_host(
    x: &Host,
    gamma: &Host,
    beta: &Host,
    groups: usize,
    epsilon: f32,
    then_silu: bool,
) -> (Host, Vec<(f32, f32)>) {
    let d = Dims::of(x, groups);
    let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
    let (gv, bv) = (values(&gamma), values(&beta));
    assert!(
        gv.len() == d.channels && bv.len() == d.channels,
        "one gamma and beta per channel"
    );
    let st = stats(values(&x), &d, epsilon);
    let out = forward_values(values(&x), gv, bv, &d, &st, then_silu);
    (host(out, &x), st)
}

impl GroupNormBackend for Flex {
    fn fused_group_norm(
        x: Host,
        gamma: Host,
        beta: Host,
        groups: usize,
        epsilon: f32,
        then_silu: bool,
    ) -> Host {
        forward_host(&x, &gamma, &beta, groups, epsilon, then_silu).0
    }
}

/// The gradients of input, gamma and beta for the output gradient `g`.
fn backward_values(
    x: &[f32],
    g: &[f32],
    gamma: &[f32],
    beta: &[f32],
    d: &Dims,
    st: &[(f32, f32)],
    then_silu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), g.len(), "gradient size");
    // Per image and channel: Σ dz and Σ dz·x̂ (dz: the gradient before the affine scale).
    let mut per_channel = vec![(0f64, 0f64); d.batch * d.channels];
    let fill = |dx: &mut [MaybeUninit<f32>]| {
        dx.par_chunks_mut(d.group_len())
            .zip(x.par_chunks(d.group_len()).zip(g.par_chunks(d.group_len())))
            .zip(per_channel.par_chunks_mut(d.per_group()))
            .enumerate()
            .for_each_init(Vec::new, |dz, (bg, ((dx, (xg, gg)), sums))| {
                let (mean, rstd) = st[bg];
                let first = (bg % d.groups) * d.per_group();
                let n = xg.len() as f64;
                // dz = dy·SiLU'(z) (or dy), kept for the second pass; per channel Σ dz and
                // Σ dz·x̂, in 16 lanes so the loop vectorises.
                dz.clear();
                dz.extend_from_slice(gg);
                let (mut m1, mut m2) = (0f64, 0f64);
                for (c, (dzc, xc)) in dz.chunks_mut(d.pixels).zip(xg.chunks(d.pixels)).enumerate() {
                    if then_silu {
                        let (a, b) = affine(mean, rstd, gamma[first + c], beta[first + c]);
                        for (dz, &v) in dzc.iter_mut().zip(xc) {
                            let z = v * a + b;
                            let s = sigmoid(z);
                            *dz *= s * (1.0 + z * (1.0 - s));
                        }
                    }
                    let (mut l1, mut l2) = ([0f32; 16], [0f32; 16]);
                    let mut pairs = dzc.chunks_exact(16).zip(xc.chunks_exact(16));
                    for (dz16, x16) in &mut pairs {
                        for i in 0..16 {
                            l1[i] += dz16[i];
                            l2[i] += dz16[i] * ((x16[i] - mean) * rstd);
                        }
                    }
                    let done = dzc.len() / 16 * 16;
                    let (mut s_dz, mut s_dzx) = (0f64, 0f64);
                    for (&dz, &v) in dzc[done..].iter().zip(&xc[done..]) {
                        s_dz += dz as f64;
                        s_dzx += (dz * ((v - mean) * rstd)) as f64;
                    }
                    s_dz += l1.iter().map(|&v| v as f64).sum::<f64>();
                    s_dzx += l2.iter().map(|&v| v as f64).sum::<f64>();
                    sums[c] = (s_dz, s_dzx);
                    m1 += gamma[first + c] as f64 * s_dz;
                    m2 += gamma[first + c] as f64 * s_dzx;
                }
                let (m1, m2) = ((m1 / n) as f32, (m2 / n) as f32);
                for (c, (dxc, (xc, dzc))) in dx
                    .chunks_mut(d.pixels)
                    .zip(xg.chunks(d.pixels).zip(dz.chunks(d.pixels)))
                    .enumerate()
                {
                    let gm = gamma[first + c];
                    for (o, (&v, &dz)) in dxc.iter_mut().zip(xc.iter().zip(dzc)) {
                        let xhat = (v - mean) * rstd;
                        o.write(rstd * (gm * dz - m1 - xhat * m2));
                    }
                }
            });
    };
    // SAFETY: the groups tile the tensor and every value of every group is written.
    let dx = unsafe { written(x.len(), fill) };
    // γ's and β's gradients: the per-image sums added over images in order.
    let mut dgamma = vec![0f64; d.channels];
    let mut dbeta = vec![0f64; d.channels];
    for image in per_channel.chunks(d.channels) {
        for (c, &(s_dz, s_dzx)) in image.iter().enumerate() {
            dbeta[c] += s_dz;
            dgamma[c] += s_dzx;
        }
    }
    let narrow = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
    (dx, narrow(dgamma), narrow(dbeta))
}

#[derive(Debug)]
struct GroupNormStep;

/// What the backward pass needs: input, gamma, beta, the statistics, groups, SiLU or not.
type NormState = (Host, Host, Host, Vec<(f32, f32)>, usize, bool);

impl Backward<Flex, 3> for GroupNormStep {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, gamma, beta, st, groups, then_silu) = ops.state;
        let d = Dims::of(&x, groups);
        let (x, gamma, beta, grad) = (
            contiguous(&x),
            contiguous(&gamma),
            contiguous(&beta),
            contiguous(&grad),
        );
        let (dx, dgamma, dbeta) = backward_values(
            values(&x),
            values(&grad),
            values(&gamma),
            values(&beta),
            &d,
            &st,
            then_silu,
        );
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, host(dx, &x));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, host(dgamma, &gamma));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, host(dbeta, &beta));
        }
    }
}

impl<C: CheckpointStrategy> GroupNormBackend for Autodiff<Flex, C> {
    fn fused_group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f32,
        then_silu: bool,
    ) -> FloatTensor<Self> {
        let prep = GroupNormStep
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let (xp, gp, bp) = (x.primitive(), gamma.primitive(), beta.primitive());
        let (out, st) = forward_host(xp, gp, bp, groups, epsilon, then_silu);
        match prep {
            OpsKind::Tracked(prep) => {
                let state = (xp.clone(), gp.clone(), bp.clone(), st, groups, then_silu);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

/// `norm` applied to `x`, then SiLU when `then_silu`: one operation on the CPU (unless our
/// kernels are switched off), burn's module and `silu` elsewhere.
pub fn group_norm(norm: &GroupNorm, x: Tensor<4>, then_silu: bool) -> Tensor<4> {
    match (&norm.gamma, &norm.beta) {
        (Some(gamma), Some(beta)) if in_use_on(&x.device()) => {
            Tensor::from_dispatch(<Dispatch as GroupNormBackend>::fused_group_norm(
                x.into_dispatch(),
                gamma.val().into_dispatch(),
                beta.val().into_dispatch(),
                norm.num_groups,
                norm.epsilon as f32,
                then_silu,
            ))
        }
        _ => {
            let z = norm.forward(x);
            if then_silu { silu(z) } else { z }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::to_vec;
    use burn::module::{Module, Param};
    use burn::nn::GroupNormConfig;
    use burn::tensor::activation;
    use burn::tensor::{Device, Distribution};

    fn close(a: Tensor<1>, b: Tensor<1>, what: &str) {
        let (a, b) = (to_vec(a), to_vec(b));
        assert_eq!(a.len(), b.len());
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 2e-4 * (1.0 + q.abs()), "{what}: {p} vs {q}");
        }
    }

    /// Same values and the same gradients (input, gamma, beta) as burn's GroupNorm and
    /// GroupNorm + SiLU, with gamma and beta away from their initial 1 and 0.
    #[test]
    fn matches_burns_group_norm_with_and_without_silu() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(9);
        let mut norm = GroupNormConfig::new(3, 6).init(&device);
        let param = |mean| {
            Some(Param::from_tensor(Tensor::random(
                [6],
                Distribution::Normal(mean, 0.5),
                &device,
            )))
        };
        norm.gamma = param(1.0);
        norm.beta = param(0.0);
        // Non-zero mean and a scale far from 1, so the statistics matter.
        let x = (Tensor::<4>::random([4, 6, 5, 7], Distribution::Normal(0.3, 2.0), &device))
            .require_grad();
        let probe = Tensor::<4>::random([4, 6, 5, 7], Distribution::Default, &device);
        for then_silu in [false, true] {
            let ours = group_norm(&norm, x.clone(), then_silu);
            let theirs = norm.forward(x.clone());
            let theirs = if then_silu {
                activation::silu(theirs)
            } else {
                theirs
            };
            close(
                ours.clone().flatten(0, 3),
                theirs.clone().flatten(0, 3),
                "y",
            );
            let ga = (ours * probe.clone()).sum().backward();
            let gb = (theirs * probe.clone()).sum().backward();
            let flat = |t: Option<Tensor<4>>| t.expect("grad").flatten(0, 3);
            close(flat(x.grad(&ga)), flat(x.grad(&gb)), "dx");
            for (p, what) in [(&norm.gamma, "dgamma"), (&norm.beta, "dbeta")] {
                let p = p.as_ref().expect("affine");
                close(p.grad(&ga).expect("grad"), p.grad(&gb).expect("grad"), what);
            }
            // Without autodiff too.
            let plain = norm.valid();
            let xi = x.clone().inner();
            let theirs = plain.forward(xi.clone());
            let theirs = if then_silu {
                activation::silu(theirs)
            } else {
                theirs
            };
            close(
                group_norm(&plain, xi, then_silu).flatten(0, 3),
                theirs.flatten(0, 3),
                "inference",
            );
        }
    }
}
