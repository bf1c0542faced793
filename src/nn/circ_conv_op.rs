//! The circular convolution as one burn operation on the CPU (burn's backend-extension
//! mechanism): the forward pass and its backward passes run our kernels
//! (`nn::circ_kernels`) on the Flex backend, with and without autodiff. Other backends
//! (wgpu) keep the composed padding + `conv2d` in `nn::circular`.

use super::circ_kernels::{self, ConvShape};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, Backend, Dispatch, DispatchDevice, Flex, TensorMetadata, backend_extension,
};
use burn::tensor::{DType, Device, Tensor, TensorData};
use std::sync::atomic::{AtomicBool, Ordering};

#[backend_extension(Flex, Autodiff)]
pub trait CircConvBackend: Backend {
    /// `x` `[B, c_in, H, W]`, `weight` `[c_out, c_in, k, k]` (odd k), `bias` `[c_out]`:
    /// the k×k convolution that wraps at the borders, `[B, c_out, H, W]`.
    fn circ_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

type Host = FloatTensor<Flex>;

/// The tensor in row-major order (itself when it already is: no copy).
pub(super) fn contiguous(t: &Host) -> Host {
    assert_eq!(t.dtype(), DType::F32, "our CPU kernels run in f32");
    t.to_contiguous()
}

/// The values of a tensor [`contiguous`] returned.
pub(super) fn values(t: &Host) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous f32 tensor")
}

fn host(values: Vec<f32>, shape: [usize; 4]) -> Host {
    Host::from_data(TensorData::new(values, shape))
}

fn conv_shape(x: &Host, weight: &Host) -> ConvShape {
    let [batch, c_in, h, w] = x.shape().dims();
    let [c_out, c_in_w, k, k2] = weight.shape().dims();
    assert_eq!(c_in, c_in_w, "input channels differ from the kernel's");
    assert_eq!(k, k2, "the kernel must be square");
    ConvShape {
        batch,
        c_in,
        c_out,
        h,
        w,
        k,
    }
}

impl CircConvBackend for Flex {
    fn circ_conv(x: Host, weight: Host, bias: Host) -> Host {
        let s = conv_shape(&x, &weight);
        let (x, weight, bias) = (contiguous(&x), contiguous(&weight), contiguous(&bias));
        let out = circ_kernels::forward(values(&x), values(&weight), Some(values(&bias)), &s);
        host(out, [s.batch, s.c_out, s.h, s.w])
    }
}

#[derive(Debug)]
struct CircConvStep;

impl Backward<Flex, 3> for CircConvStep {
    /// The input and the weight, as the forward pass saw them.
    type State = (Host, Host);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight) = ops.state;
        let s = conv_shape(&x, &weight);
        let (x, weight, grad) = (contiguous(&x), contiguous(&weight), contiguous(&grad));
        let g = values(&grad);
        if let Some(node) = node_x {
            let dx = circ_kernels::input_grad(g, values(&weight), &s);
            grads.register::<Flex>(node.id, host(dx, [s.batch, s.c_in, s.h, s.w]));
        }
        if let Some(node) = node_weight {
            let dw = circ_kernels::weight_grad(values(&x), g, &s);
            grads.register::<Flex>(node.id, host(dw, [s.c_out, s.c_in, s.k, s.k]));
        }
        if let Some(node) = node_bias {
            let db = circ_kernels::bias_grad(g, &s);
            grads.register::<Flex>(node.id, Host::from_data(TensorData::new(db, [s.c_out])));
        }
    }
}

impl<C: CheckpointStrategy> CircConvBackend for Autodiff<Flex, C> {
    fn circ_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let prep = CircConvStep
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful();
        match prep {
            OpsKind::Tracked(prep) => {
                let state = (x.primitive().clone(), weight.primitive().clone());
                let out = Flex::circ_conv(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                );
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::circ_conv(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            )),
        }
    }
}

/// Off, convolutions take burn's own path everywhere (`equiflow bench --images` times both).
static OWN_KERNELS: AtomicBool = AtomicBool::new(true);

/// Use our kernels on the CPU (the default), or burn's convolution everywhere.
pub fn set_own_kernels(on: bool) {
    OWN_KERNELS.store(on, Ordering::Relaxed);
}

pub fn own_kernels() -> bool {
    OWN_KERNELS.load(Ordering::Relaxed)
}

/// Whether tensors on `device` take our kernels now: on the CPU, unless switched off.
pub fn in_use_on(device: &Device) -> bool {
    own_kernels() && available_on(device)
}

/// Whether tensors on `device` take this operation (the CPU backend, with or without autodiff).
pub fn available_on(device: &Device) -> bool {
    matches!(
        device.clone().without_autodiff().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

/// The circular convolution of [`CircConvBackend::circ_conv`] on high-level tensors; only
/// where [`available_on`] says so.
pub fn circ_conv(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as CircConvBackend>::circ_conv(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::circular::pad_circular;
    use crate::tensor_util::to_vec;
    use burn::module::Module;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (p, q) in a.iter().zip(b) {
            assert!((p - q).abs() < 1e-4 * (1.0 + q.abs()), "{p} vs {q}");
        }
    }

    /// Same values and the same gradients as burn's own convolution on a circularly padded
    /// input, for every parameter and the input.
    #[test]
    fn matches_burns_convolution_forward_and_backward() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(11);
        for (c_in, c_out, k) in [(3usize, 4usize, 3usize), (2, 3, 1)] {
            let conv = Conv2dConfig::new([c_in, c_out], [k, k]).init(&device);
            let x =
                Tensor::<4>::random([2, c_in, 6, 5], Distribution::Default, &device).require_grad();
            let probe = Tensor::<4>::random([2, c_out, 6, 5], Distribution::Default, &device);
            let bias = conv.bias.as_ref().expect("a bias").val();

            let ours = circ_conv(x.clone(), conv.weight.val(), bias);
            let theirs = conv.forward(pad_circular(x.clone(), k / 2));
            close(&to_vec(ours.clone()), &to_vec(theirs.clone()));

            let g_ours = (ours * probe.clone()).sum().backward();
            let g_theirs = (theirs * probe).sum().backward();
            let pairs = [
                (x.grad(&g_ours), x.grad(&g_theirs)),
                (conv.weight.grad(&g_ours), conv.weight.grad(&g_theirs)),
            ];
            for (a, b) in pairs {
                close(&to_vec(a.expect("grad")), &to_vec(b.expect("grad")));
            }
            let b = conv.bias.as_ref().expect("a bias");
            close(
                &to_vec(b.grad(&g_ours).expect("grad")),
                &to_vec(b.grad(&g_theirs).expect("grad")),
            );
            // Inference (no autodiff) takes the same kernels.
            let plain = conv.valid();
            let xi = x.clone().inner();
            let bias = plain.bias.as_ref().expect("a bias").val();
            close(
                &to_vec(circ_conv(xi.clone(), plain.weight.val(), bias)),
                &to_vec(plain.forward(pad_circular(xi, k / 2))),
            );
        }
    }

    #[test]
    fn only_the_cpu_backend_takes_it() {
        assert!(available_on(&Device::flex()));
        assert!(available_on(&Device::flex().autodiff()));
    }
}
