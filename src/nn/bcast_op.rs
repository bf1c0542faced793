//! `t · f` where `f` repeats along `t`'s leading axes, as one CPU operation (burn's
//! backend-extension mechanism, like `nn::silu_op`). Every tangent rule of the flows is this
//! product: m tangents `[m, B, n]` times a per-point derivative `[B, n]`, or times a per-
//! feature factor `[1, n]`. burn's broadcasting product walks such pairs one value at a time
//! on one thread (`zip_map`), and with its backward pass it was the largest single cost of
//! an NCA training step; here both passes are flat, vectorised and split over the threads.
//! Other backends keep burn's product.

use super::circ_conv_op::{contiguous, values};
use super::circ_kernels::written;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use std::mem::MaybeUninit;

#[backend_extension(Flex, Autodiff)]
pub trait BcastBackend: Backend {
    /// `out[i] = t[i] · f[i mod len(f)]`: `f` holds `t`'s trailing axes.
    fn repeat_mul(t: FloatTensor<Self>, f: FloatTensor<Self>) -> FloatTensor<Self>;
}

type Host = FloatTensor<Flex>;

/// Values per task: enough work per hand-out.
const CHUNK: usize = 1 << 14;

/// `out[i] = a[i] · f[i mod L]`, with the same shape as `a`.
fn product(a: &[f32], f: &[f32], shape: burn::tensor::Shape) -> Host {
    let l = f.len();
    assert!(
        l > 0 && a.len().is_multiple_of(l),
        "the factor repeats along the tensor"
    );
    let fill = |out: &mut [MaybeUninit<f32>]| {
        out.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK))
            .enumerate()
            .for_each(|(j, (o, a))| {
                // Walk the factor from where this task starts, a contiguous stretch at a time.
                let (mut done, mut pos) = (0, (j * CHUNK) % l);
                while done < o.len() {
                    let run = (l - pos).min(o.len() - done);
                    let fs = &f[pos..pos + run];
                    let (os, as_) = (&mut o[done..done + run], &a[done..done + run]);
                    for ((o, &a), &f) in os.iter_mut().zip(as_).zip(fs) {
                        o.write(a * f);
                    }
                    (done, pos) = (done + run, 0);
                }
            });
    };
    // SAFETY: one value written per value of `a`.
    let out = unsafe { written(a.len(), fill) };
    Host::from_data(TensorData::new(out, shape))
}

/// `Σ_k g[k·L + l] · t[k·L + l]` for every l: the factor's gradient.
fn repeat_dot(g: &[f32], t: &[f32], l: usize) -> Vec<f32> {
    let reps = g.len() / l;
    if l >= 4096 || reps < 8 {
        // Long factor: split it, each task sums its stretch over the repeats.
        let mut out = vec![0f32; l];
        out.par_chunks_mut(1024).enumerate().for_each(|(j, o)| {
            let start = j * 1024;
            for k in 0..reps {
                let base = k * l + start;
                let (gs, ts) = (&g[base..base + o.len()], &t[base..base + o.len()]);
                for ((o, &g), &t) in o.iter_mut().zip(gs).zip(ts) {
                    *o += g * t;
                }
            }
        });
        return out;
    }
    // Short factor, many repeats: each task sums its block of repeats, then the blocks add
    // in order (fixed blocks, not rayon's fold, whose splits depend on timing: the same
    // training must give the same numbers wherever it runs).
    let per = (CHUNK / l).max(1);
    let partials: Vec<Vec<f32>> = g
        .par_chunks(per * l)
        .zip(t.par_chunks(per * l))
        .map(|(gb, tb)| {
            let mut acc = vec![0f32; l];
            for (gr, tr) in gb.chunks(l).zip(tb.chunks(l)) {
                for ((a, &g), &t) in acc.iter_mut().zip(gr).zip(tr) {
                    *a += g * t;
                }
            }
            acc
        })
        .collect();
    let mut out = vec![0f32; l];
    for p in &partials {
        out.iter_mut().zip(p).for_each(|(o, p)| *o += p);
    }
    out
}

fn forward(t: &Host, f: &Host) -> Host {
    let (t, f) = (contiguous(t), contiguous(f));
    product(values(&t), values(&f), t.shape())
}

impl BcastBackend for Flex {
    fn repeat_mul(t: Host, f: Host) -> Host {
        forward(&t, &f)
    }
}

#[derive(Debug)]
struct RepeatMulStep;

impl Backward<Flex, 2> for RepeatMulStep {
    type State = (Host, Host);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_t, node_f] = ops.parents;
        let grad = contiguous(&grads.consume::<Flex>(&ops.node));
        let (t, f) = ops.state;
        let (t, f) = (contiguous(&t), contiguous(&f));
        if let Some(node) = node_f {
            let df = repeat_dot(values(&grad), values(&t), values(&f).len());
            grads.register::<Flex>(node.id, Host::from_data(TensorData::new(df, f.shape())));
        }
        if let Some(node) = node_t {
            grads.register::<Flex>(node.id, product(values(&grad), values(&f), t.shape()));
        }
    }
}

impl<C: CheckpointStrategy> BcastBackend for Autodiff<Flex, C> {
    fn repeat_mul(t: FloatTensor<Self>, f: FloatTensor<Self>) -> FloatTensor<Self> {
        let prep = RepeatMulStep
            .prepare::<C>([t.node(), f.node()])
            .compute_bound()
            .stateful();
        let (tp, fp) = (t.primitive(), f.primitive());
        let out = forward(tp, fp);
        match prep {
            OpsKind::Tracked(prep) => prep.finish((tp.clone(), fp.clone()), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

/// `t · f` for `f` `[B, n]` or `[1, n]` repeated along `t`'s leading axes (`t` `[m, B, n]`):
/// one operation on the CPU (unless [`super::circ_conv_op::set_own_kernels`] turned ours
/// off), burn's broadcasting product elsewhere.
pub fn repeat_mul(t: Tensor<3>, f: Tensor<2>) -> Tensor<3> {
    if !super::circ_conv_op::in_use_on(&t.device()) {
        return t * f.unsqueeze_dim::<3>(0);
    }
    let [_, b, n] = t.dims();
    let [fb, fn_] = f.dims();
    assert!(
        fn_ == n && (fb == b || fb == 1),
        "a factor per point or per feature"
    );
    Tensor::from_dispatch(<Dispatch as BcastBackend>::repeat_mul(
        t.into_dispatch(),
        f.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::to_vec;
    use burn::tensor::{Device, Distribution};

    #[test]
    fn matches_burns_broadcast_product_and_its_gradients() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(9);
        // A per-point factor, a per-feature factor, and sizes off the task length.
        for ([m, b, n], fb) in [
            ([3usize, 700, 64], 700usize),
            ([4, 3000, 9], 1),
            ([2, 5, 3], 5),
        ] {
            let t = Tensor::<3>::random([m, b, n], Distribution::Normal(0.0, 1.0), &device)
                .require_grad();
            let f = Tensor::<2>::random([fb, n], Distribution::Normal(0.0, 1.0), &device)
                .require_grad();
            let probe = Tensor::<3>::random([m, b, n], Distribution::Default, &device);
            let ours = repeat_mul(t.clone(), f.clone());
            let theirs = t.clone() * f.clone().unsqueeze_dim::<3>(0);
            let close = |a: Vec<f32>, b: Vec<f32>| {
                assert_eq!(a.len(), b.len());
                for (p, q) in a.iter().zip(&b) {
                    assert!((p - q).abs() < 1e-4 * (1.0 + q.abs()), "{p} vs {q}");
                }
            };
            close(to_vec(ours.clone()), to_vec(theirs.clone()));
            let ga = (ours * probe.clone()).sum().backward();
            let gb = (theirs * probe).sum().backward();
            close(to_vec(t.grad(&ga).unwrap()), to_vec(t.grad(&gb).unwrap()));
            close(to_vec(f.grad(&ga).unwrap()), to_vec(f.grad(&gb).unwrap()));
        }
    }
}
