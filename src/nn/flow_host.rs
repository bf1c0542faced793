//! A trained point flow evaluated on the host, for the many small calls of the metrics and
//! the live views: a Lyapunov estimate integrates 512 twin states through 28 000 field
//! calls, and burn's twenty-odd operations per call on 512 × 64 values cost far more in
//! dispatch than in arithmetic (about 30 s of a Lorenz run's metrics on two cores). Here one
//! call is three matrix products over blocks of rows that stay in cache, with the Fourier
//! features, SiLU and the output norm (running statistics) computed in between. The same
//! function as [`FlowMlp::forward`] in [`BnMode::Running`] (a unit test compares them).

use super::batchnorm::BnMode;
use super::circ_kernels::matmul;
use super::flow_mlp::FlowMlp;
use super::silu_op::sigmoid;
use crate::tensor_util::{from_rows, to_vec};
use burn::tensor::{Device, Tensor};
use rayon::prelude::*;

/// Rows per task: enough work per hand-out, activations within a core's cache.
const ROWS: usize = 64;

pub struct HostFlow {
    dim: usize,
    hidden: usize,
    freqs: usize,
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: Vec<f32>,
    w3: Vec<f32>,
    b3: Vec<f32>,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl HostFlow {
    pub fn of(m: &FlowMlp) -> Self {
        let bias = |l: &burn::nn::Linear| to_vec(l.bias.as_ref().expect("a bias").val());
        let var = to_vec(m.bn.running_var.val());
        Self {
            dim: m.dim(),
            hidden: m.l1.weight.dims()[1],
            freqs: m.freqs,
            w1: to_vec(m.l1.weight.val()),
            b1: bias(&m.l1),
            w2: to_vec(m.l2.weight.val()),
            b2: bias(&m.l2),
            w3: to_vec(m.l3.weight.val()),
            b3: bias(&m.l3),
            mean: to_vec(m.bn.running_mean.val()),
            inv_std: var
                .iter()
                .map(|v| 1.0 / (v + m.bn.epsilon as f32).sqrt())
                .collect(),
        }
    }

    fn encoded(&self) -> usize {
        self.dim * (1 + 2 * self.freqs)
    }

    /// v at row-major states `x` `[n, dim]`.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let (d, h, e) = (self.dim, self.hidden, self.encoded());
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(ROWS * d)
            .zip(x.par_chunks(ROWS * d))
            .for_each_init(
                || {
                    (
                        vec![0f32; ROWS * e],
                        vec![0f32; ROWS * h],
                        vec![0f32; ROWS * h],
                    )
                },
                |(enc, a1, a2), (o, xs)| {
                    let n = xs.len() / d;
                    // [x, sin(2^k x) for each k, cos(2^k x) for each k], as `FlowMlp::encode`.
                    for (r, xr) in xs.chunks(d).enumerate() {
                        let er = &mut enc[r * e..(r + 1) * e];
                        er[..d].copy_from_slice(xr);
                        for k in 0..self.freqs {
                            let f = (1u64 << k) as f32;
                            for (j, &v) in xr.iter().enumerate() {
                                let a = v * f;
                                er[d * (1 + k) + j] = a.sin();
                                er[d * (1 + self.freqs + k) + j] = a.cos();
                            }
                        }
                    }
                    let layer =
                        |dst: &mut [f32], src: &[f32], w: &[f32], b: &[f32], k: usize, m: usize| {
                            matmul(dst, src, (k, 1), w, (m, 1), (n, k, m), false);
                            for row in dst[..n * m].chunks_mut(m) {
                                row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
                            }
                        };
                    let silu = |v: &mut [f32]| v.iter_mut().for_each(|v| *v *= sigmoid(*v));
                    layer(a1, enc, &self.w1, &self.b1, e, h);
                    silu(&mut a1[..n * h]);
                    layer(a2, a1, &self.w2, &self.b2, h, h);
                    silu(&mut a2[..n * h]);
                    layer(o, a2, &self.w3, &self.b3, h, d);
                    for row in o.chunks_mut(d) {
                        for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.inv_std) {
                            *v = (*v - m) * s;
                        }
                    }
                },
            );
        out
    }
}

/// v(x) of a trained flow with its running statistics, as a field on tensors: on the host
/// on the CPU (unless our kernels are switched off), burn's forward pass elsewhere.
pub fn running_field(m: &FlowMlp) -> Box<dyn Fn(Tensor<2>) -> Tensor<2> + '_> {
    let device: Device = m.l1.weight.device();
    if !super::circ_conv_op::in_use_on(&device) {
        return Box::new(move |x| m.forward(x, BnMode::Running));
    }
    let host = HostFlow::of(m);
    Box::new(move |x| {
        let dim = host.dim;
        let device = x.device();
        from_rows(&host.forward(&to_vec(x)), dim, &device)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::flow_mlp::FlowMlpConfig;
    use burn::tensor::Distribution;

    #[test]
    fn the_host_flow_is_the_running_forward_pass() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        device.seed(12);
        for (dim, rows) in [(3usize, 200usize), (2, 64), (3, 5)] {
            let net = FlowMlpConfig {
                dim,
                hidden: 32,
                freqs: 4,
                bn_momentum: 0.1,
            }
            .init(&device);
            // Running statistics away from 0 and 1, so the norm is exercised.
            let x = Tensor::<2>::random([rows, dim], Distribution::Normal(0.0, 1.5), &device);
            let net = FlowMlp {
                bn: net.bn.with_stats(
                    Tensor::random([dim], Distribution::Normal(0.0, 0.1), &device),
                    Tensor::random([dim], Distribution::Uniform(0.01, 0.04), &device),
                ),
                ..net
            };
            let want = to_vec(net.forward(x.clone(), BnMode::Running));
            let got = to_vec(running_field(&net)(x));
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
            }
        }
    }
}
