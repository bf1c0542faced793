//! SiLU x·σ(x) as one CPU operation (burn's backend-extension mechanism, like
//! `nn::circ_conv_op`): burn composes it from a sigmoid and a product, which costs three
//! exponentials and about seven passes over the tensor per training step; here the forward
//! pass is one pass with one exponential and the backward pass another. Other backends keep
//! burn's `silu`.

use super::circ_conv_op::{contiguous, values};
use super::circ_kernels::written;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::activation;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use std::mem::MaybeUninit;

#[backend_extension(Flex, Autodiff)]
pub trait SiluBackend: Backend {
    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// SiLU's derivative σ(x)·(1 + x·(1 − σ(x))), which the NCA's tangents are scaled by.
    fn fused_silu_prime(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Which function of x an operation computes: its value and its derivative.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Silu,
    SiluPrime,
}

impl Kind {
    #[inline(always)]
    fn value(self, v: f32) -> f32 {
        let s = sigmoid(v);
        match self {
            Self::Silu => v * s,
            Self::SiluPrime => s * (1.0 + v * (1.0 - s)),
        }
    }

    #[inline(always)]
    fn derivative(self, v: f32) -> f32 {
        let s = sigmoid(v);
        match self {
            Self::Silu => s * (1.0 + v * (1.0 - s)),
            Self::SiluPrime => s * (1.0 - s) * (2.0 + v * (1.0 - 2.0 * s)),
        }
    }
}

type Host = FloatTensor<Flex>;

/// Chunks big enough that a thread's share outweighs handing it out.
const CHUNK: usize = 1 << 14;

fn map(x: &Host, f: impl Fn(f32) -> f32 + Sync) -> Host {
    let x = contiguous(x);
    let src = values(&x);
    let fill = |out: &mut [MaybeUninit<f32>]| {
        out.par_chunks_mut(CHUNK)
            .zip(src.par_chunks(CHUNK))
            .for_each(|(o, s)| {
                o.iter_mut().zip(s).for_each(|(o, &v)| {
                    o.write(f(v));
                })
            });
    };
    // SAFETY: one value written per input value.
    let out = unsafe { written(src.len(), fill) };
    Host::from_data(TensorData::new(out, x.shape()))
}

pub(super) fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + exp(-v))
}

/// e^x within a few ulp (Cephes' `expf`: x = n·ln 2 + r, a degree-7 polynomial in r, 2^n
/// from the exponent bits), without branches so the loops calling it vectorise: glibc's
/// `expf` is one call per value and was ~9 % of a quick training step. Saturates to
/// e^±87 outside ±87, where SiLU is already x or 0 to f32 precision.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    // Adding 1.5·2^23 rounds to an integer in the mantissa.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 87.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    // ln 2 in two parts, so n·ln 2 is exact enough.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^n from n's bits in the shifted mantissa: integer lanes, where `n as i32` (saturating)
    // would make the loop scalar.
    let biased = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127);
    e * f32::from_bits(biased << 23)
}

impl SiluBackend for Flex {
    fn fused_silu(x: Host) -> Host {
        map(&x, |v| Kind::Silu.value(v))
    }

    fn fused_silu_prime(x: Host) -> Host {
        map(&x, |v| Kind::SiluPrime.value(v))
    }
}

#[derive(Debug)]
struct SiluStep;

impl Backward<Flex, 1> for SiluStep {
    /// The input, and which function of it.
    type State = (Host, Kind);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [Some(node)] = ops.parents else {
            return;
        };
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, kind) = ops.state;
        let (x, g) = (contiguous(&x), contiguous(&grad));
        let (xs, gs) = (values(&x), values(&g));
        assert_eq!(xs.len(), gs.len(), "gradient size");
        let fill = |out: &mut [MaybeUninit<f32>]| {
            out.par_chunks_mut(CHUNK)
                .zip(xs.par_chunks(CHUNK).zip(gs.par_chunks(CHUNK)))
                .for_each(|(o, (xc, gc))| {
                    for ((o, &v), &g) in o.iter_mut().zip(xc).zip(gc) {
                        o.write(g * kind.derivative(v));
                    }
                });
        };
        // SAFETY: one value written per input value (the gradient has the input's size).
        let out = unsafe { written(xs.len(), fill) };
        grads.register::<Flex>(node.id, Host::from_data(TensorData::new(out, x.shape())));
    }
}

fn tracked<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    kind: Kind,
) -> FloatTensor<Autodiff<Flex, C>> {
    let prep = SiluStep.prepare::<C>([x.node()]).compute_bound().stateful();
    let out = map(x.primitive(), |v| kind.value(v));
    match prep {
        OpsKind::Tracked(prep) => prep.finish((x.primitive().clone(), kind), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

impl<C: CheckpointStrategy> SiluBackend for Autodiff<Flex, C> {
    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        tracked::<C>(x, Kind::Silu)
    }

    fn fused_silu_prime(x: FloatTensor<Self>) -> FloatTensor<Self> {
        tracked::<C>(x, Kind::SiluPrime)
    }
}

/// SiLU: fused on the CPU (unless [`super::circ_conv_op::set_own_kernels`] turned our kernels
/// off), burn's elsewhere.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if super::circ_conv_op::in_use_on(&x.device()) {
        Tensor::from_dispatch(<Dispatch as SiluBackend>::fused_silu(x.into_dispatch()))
    } else {
        activation::silu(x)
    }
}

/// SiLU's derivative σ(x)·(1 + x·(1 − σ(x))) as one operation (CPU only: see
/// `nn::jvp::silu_with_derivative`).
pub fn silu_prime<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as SiluBackend>::fused_silu_prime(
        x.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::to_vec;
    use burn::tensor::{Device, Distribution};

    #[test]
    fn the_fast_exponential_is_accurate() {
        let mut worst = 0f64;
        for i in 0..=400_000 {
            let x = -87.0 + 174.0 * i as f64 / 400_000.0;
            let got = exp(x as f32) as f64;
            let want = (x as f32 as f64).exp();
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 4e-7, "relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) > 0.0 && exp(1000.0).is_finite());
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn matches_burns_silu_and_its_gradient() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(5);
        let x = Tensor::<3>::random([3, 70, 400], Distribution::Normal(0.0, 3.0), &device)
            .require_grad();
        let probe = Tensor::<3>::random([3, 70, 400], Distribution::Default, &device);
        let ours = Tensor::from_dispatch(<Dispatch as SiluBackend>::fused_silu(
            x.clone().into_dispatch(),
        ));
        let theirs = activation::silu(x.clone());
        let close = |a: Vec<f32>, b: Vec<f32>| {
            for (p, q) in a.iter().zip(&b) {
                assert!((p - q).abs() < 1e-5 * (1.0 + q.abs()), "{p} vs {q}");
            }
        };
        close(to_vec(ours.clone()), to_vec(theirs.clone()));
        let ga = x.grad(&(ours * probe.clone()).sum().backward()).unwrap();
        let gb = x.grad(&(theirs * probe.clone()).sum().backward()).unwrap();
        close(to_vec(ga), to_vec(gb));
        // The derivative as its own operation, differentiated once more (the NCA's loss
        // backpropagates through its tangents).
        let prime = silu_prime(x.clone());
        let s = activation::sigmoid(x.clone());
        let composed = s.clone() * (x.clone() * s.neg().add_scalar(1.0)).add_scalar(1.0);
        close(to_vec(prime.clone()), to_vec(composed.clone()));
        let ga = x.grad(&(prime * probe.clone()).sum().backward()).unwrap();
        let gb = x
            .grad(&(composed * probe.clone()).sum().backward())
            .unwrap();
        close(to_vec(ga), to_vec(gb));
        // Without autodiff too.
        let xi = x.inner();
        close(to_vec(silu(xi.clone())), to_vec(activation::silu(xi)));
    }
}
