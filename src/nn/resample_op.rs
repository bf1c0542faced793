//! The UNet's 2× resampling as CPU operations (burn's backend-extension mechanism, like
//! `nn::circ_conv_op`): nearest-neighbour upsampling and 2×2 average pooling, each one
//! parallel pass forward and one backward. burn composes upsampling from two `repeat_dim`s
//! and pooling from two `mean_dim`s over reshaped views; on the CPU those ran on one thread
//! and were ~10 % of a quick training step. Other backends keep the composed forms in
//! `nn::circular`.

use super::circ_conv_op::{contiguous, values};
use super::circ_kernels::written;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use std::mem::MaybeUninit;

#[backend_extension(Flex, Autodiff)]
pub trait ResampleBackend: Backend {
    /// `[B, C, H, W]` → `[B, C, 2H, 2W]`, each pixel repeated over a 2×2 block.
    fn up2_nearest(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `[B, C, H, W]` (even sides) → `[B, C, H/2, W/2]`, the mean of each 2×2 block.
    fn down2_mean(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

type Host = FloatTensor<Flex>;

/// Planes per parallel task: enough pixels that handing a task out costs little.
fn planes_per_task(plane: usize) -> usize {
    (1usize << 14).div_ceil(plane.max(1)).max(1)
}

/// Nearest-neighbour upsampling of `[planes, h, w]` values, times `scale`.
fn up(src: &[f32], h: usize, w: usize, scale: f32) -> Vec<f32> {
    let per = planes_per_task(4 * h * w);
    let fill = |out: &mut [MaybeUninit<f32>]| {
        out.par_chunks_mut(4 * h * w * per)
            .zip(src.par_chunks(h * w * per))
            .for_each(|(o, s)| {
                for (o, s) in o.chunks_mut(4 * w).zip(s.chunks(w)) {
                    for half in o.chunks_mut(2 * w) {
                        for (pair, &v) in half.chunks_exact_mut(2).zip(s) {
                            pair[0].write(v * scale);
                            pair[1].write(v * scale);
                        }
                    }
                }
            });
    };
    // SAFETY: every output row (two per input row) is written, each pixel of it once.
    unsafe { written(4 * src.len(), fill) }
}

/// The sum of each 2×2 block of `[planes, h, w]` values (even sides), times `scale`.
fn down(src: &[f32], h: usize, w: usize, scale: f32) -> Vec<f32> {
    assert!(
        h.is_multiple_of(2) && w.is_multiple_of(2),
        "2×2 pooling needs even sides"
    );
    let (ho, wo) = (h / 2, w / 2);
    let per = planes_per_task(h * w);
    let fill = |out: &mut [MaybeUninit<f32>]| {
        out.par_chunks_mut(ho * wo * per)
            .zip(src.par_chunks(h * w * per))
            .for_each(|(o, s)| {
                for (o, s) in o.chunks_mut(wo).zip(s.chunks(2 * w)) {
                    let (top, bottom) = s.split_at(w);
                    for (i, o) in o.iter_mut().enumerate() {
                        let j = 2 * i;
                        o.write((top[j] + top[j + 1] + bottom[j] + bottom[j + 1]) * scale);
                    }
                }
            });
    };
    // SAFETY: each output pixel is written once (the source holds 4× as many values).
    unsafe { written(src.len() / 4, fill) }
}

fn up2_host(x: &Host, scale: f32) -> Host {
    let [b, c, h, w] = x.shape().dims();
    let x = contiguous(x);
    let out = up(values(&x), h, w, scale);
    Host::from_data(TensorData::new(out, [b, c, 2 * h, 2 * w]))
}

fn down2_host(x: &Host, scale: f32) -> Host {
    let [b, c, h, w] = x.shape().dims();
    let x = contiguous(x);
    let out = down(values(&x), h, w, scale);
    Host::from_data(TensorData::new(out, [b, c, h / 2, w / 2]))
}

impl ResampleBackend for Flex {
    fn up2_nearest(x: Host) -> Host {
        up2_host(&x, 1.0)
    }

    fn down2_mean(x: Host) -> Host {
        down2_host(&x, 0.25)
    }
}

/// Which way a resampling went; its gradient goes the other way: upsampling's is each 2×2
/// block of the output gradient summed, pooling's a quarter of the output gradient on each
/// pixel of its block.
#[derive(Debug, Clone, Copy)]
enum ResampleStep {
    Up,
    Down,
}

impl Backward<Flex, 1> for ResampleStep {
    type State = ();

    fn backward(self, ops: Ops<(), 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [Some(node)] = ops.parents else {
            return;
        };
        let grad = grads.consume::<Flex>(&ops.node);
        let dx = match self {
            Self::Up => down2_host(&grad, 1.0),
            Self::Down => up2_host(&grad, 0.25),
        };
        grads.register::<Flex>(node.id, dx);
    }
}

impl<C: CheckpointStrategy> ResampleBackend for Autodiff<Flex, C> {
    fn up2_nearest(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let prep = ResampleStep::Up.prepare::<C>([x.node()]).compute_bound();
        prep.stateless(Flex::up2_nearest(x.into_primitive()))
    }

    fn down2_mean(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let prep = ResampleStep::Down.prepare::<C>([x.node()]).compute_bound();
        prep.stateless(Flex::down2_mean(x.into_primitive()))
    }
}

/// [`ResampleBackend::up2_nearest`] on high-level tensors (CPU only: see `nn::circular`).
pub fn up2(x: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as ResampleBackend>::up2_nearest(
        x.into_dispatch(),
    ))
}

/// [`ResampleBackend::down2_mean`] on high-level tensors (CPU only: see `nn::circular`).
pub fn down2(x: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as ResampleBackend>::down2_mean(x.into_dispatch()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::circular::{down2_composed, up2_composed};
    use crate::tensor_util::to_vec;
    use burn::tensor::{Device, Distribution};

    /// Same values and gradients as burn's composed forms, with and without autodiff.
    #[test]
    fn match_the_composed_forms_and_their_gradients() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(4);
        let x = Tensor::<4>::random([3, 5, 6, 10], Distribution::Default, &device).require_grad();
        type Op = fn(Tensor<4>) -> Tensor<4>;
        let cases: [(Op, Op); 2] = [(up2, up2_composed), (down2, down2_composed)];
        // The same sums in another order: equal to rounding.
        let close = |a: Tensor<4>, b: Tensor<4>| {
            assert_eq!(a.dims(), b.dims());
            for (p, q) in to_vec(a).iter().zip(to_vec(b)) {
                assert!((p - q).abs() < 1e-6 * (1.0 + q.abs()), "{p} vs {q}");
            }
        };
        for (ours, theirs) in cases {
            let (a, b) = (ours(x.clone()), theirs(x.clone()));
            close(a.clone().inner(), b.clone().inner());
            let probe = Tensor::<4>::random(a.dims(), Distribution::Default, &device);
            let ga = x.grad(&(a * probe.clone()).sum().backward()).expect("grad");
            let gb = x.grad(&(b * probe).sum().backward()).expect("grad");
            close(ga, gb);
            let xi = x.clone().inner();
            close(ours(xi.clone()), theirs(xi));
        }
    }
}
