//! The exact equilibrium loss of the low-dimensional flow (METHOD §3; `Estimator::Exact`)
//! and its gradient, by hand on the host: what one training step of a point flow needs.
//!
//! Through burn, one step is a few hundred small operations on `[2048, 64]` tensors (the
//! forward pass, one tangent per input axis, the output norm, then autodiff back through
//! all of it): on two CPU cores that is bound by moving those tensors through memory, not
//! by arithmetic. Here the batch goes through in blocks of rows that stay in cache, and each
//! layer is one matrix product over the block's 1 + d streams (the activations and the d
//! tangents, stacked), forward and backward.
//!
//! Per row, with the encoding e(x) = [x, sin(2^k x), cos(2^k x)] and its derivative ∂e/∂x_j:
//! h₁ = W₁e + b₁, a₁ = silu h₁, t₁ⱼ = silu'(h₁) ⊙ W₁ ∂e/∂x_j; the same for layer 2;
//! h₃ = W₃a₂ + b₃, u₃ⱼ = W₃t₂ⱼ; the output norm over the batch v = (h₃ − μ)·ι, ι = (σ² + ε)^−½,
//! and the Jacobian's columns cⱼ = u₃ⱼ·ι (the statistics count as constants per point, as in
//! [`super::batchnorm`], but the gradient flows through them). Loss = mean r² + λ mean ‖sym J‖²_F
//! with r = tr J + v·s: the same function as `method::equilibrium::equilibrium_loss`.

use super::circ_kernels::{matmul, sized};
use super::silu_op::sigmoid;
use rayon::prelude::*;

/// Rows per block: enough work per task, a block's streams within a core's cache.
const ROWS: usize = 64;

/// The network's sizes and where each parameter sits in the flat parameter vector:
/// `[W₁ (e×h), b₁, W₂ (h×h), b₂, W₃ (h×d), b₃]`, weights as burn's `Linear` (`[in, out]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub dim: usize,
    pub hidden: usize,
    pub freqs: usize,
}

impl Layout {
    pub fn encoded(&self) -> usize {
        self.dim * (1 + 2 * self.freqs)
    }

    /// Offsets of W₁, b₁, W₂, b₂, W₃, b₃ and the total length.
    pub fn offsets(&self) -> [usize; 7] {
        let (d, h, e) = (self.dim, self.hidden, self.encoded());
        let sizes = [e * h, h, h * h, h, h * d, d];
        let mut o = [0; 7];
        for (i, s) in sizes.iter().enumerate() {
            o[i + 1] = o[i] + s;
        }
        o
    }

    pub fn params(&self) -> usize {
        self.offsets()[6]
    }

    /// The activations and tangents travel as 1 + d streams of rows.
    fn streams(&self) -> usize {
        1 + self.dim
    }
}

/// The parameters of each layer, cut out of the flat vector.
struct Layers<'a> {
    w: [&'a [f32]; 3],
    b: [&'a [f32]; 3],
}

impl<'a> Layers<'a> {
    fn of(params: &'a [f32], l: &Layout) -> Self {
        let o = l.offsets();
        let p = |i: usize| &params[o[i]..o[i + 1]];
        Self {
            w: [p(0), p(2), p(4)],
            b: [p(1), p(3), p(5)],
        }
    }
}

/// One block's forward values, kept for its backward pass (stream-major: stream k of the
/// block's n rows is rows k·n..(k+1)·n).
#[derive(Default)]
struct Block {
    n: usize,
    /// The encoding (stream 0) and its derivative along each axis.
    input: Vec<f32>,
    /// Each layer's pre-activations: stream 0 with the bias (h), the tangents' W·t.
    z: [Vec<f32>; 3],
    /// What layers 2 and 3 read: stream 0 silu(h), the others silu'(h) ⊙ z.
    act: [Vec<f32>; 2],
    /// Gradient buffers: w.r.t. the last layer's z, then reused per layer.
    dz: Vec<f32>,
    dact: Vec<f32>,
    /// silu' (and silu'') of the layer at hand.
    slope: Vec<f32>,
    /// This block's share of the parameters' gradient.
    grad: Vec<f32>,
}

/// Reusable buffers for [`loss_and_grad`] (allocating them each step costs page faults).
#[derive(Default)]
pub struct Workspace {
    blocks: Vec<Block>,
}

/// What one step computes.
pub struct LossGrad {
    pub loss: f64,
    /// d loss / d params, laid out as the parameters.
    pub grad: Vec<f32>,
    /// The batch mean and (biased) variance of h₃, to fold into the running statistics.
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

/// The loss at states `x` with scores `s` (row-major `[B, d]`) and its gradient.
pub fn loss_and_grad(
    params: &[f32],
    layout: &Layout,
    x: &[f32],
    s: &[f32],
    sym_penalty: f64,
    epsilon: f64,
    ws: &mut Workspace,
) -> LossGrad {
    let d = layout.dim;
    assert_eq!(params.len(), layout.params());
    assert_eq!(x.len(), s.len());
    let rows = x.len() / d;
    assert!(rows > 0, "an empty batch");
    let nblocks = rows.div_ceil(ROWS);
    ws.blocks.resize_with(nblocks, Block::default);
    let layers = Layers::of(params, layout);
    ws.blocks
        .par_iter_mut()
        .zip(x.par_chunks(ROWS * d))
        .for_each(|(blk, xs)| forward(blk, xs, &layers, layout));

    let (loss, mean, var) = output_and_seed(&mut ws.blocks, s, layout, sym_penalty, epsilon);

    ws.blocks
        .par_iter_mut()
        .for_each(|blk| backward(blk, &layers, layout));
    // Summed in block order, so the same batch always gives the same bits.
    let mut grad = vec![0f32; layout.params()];
    for blk in &ws.blocks {
        grad.iter_mut().zip(&blk.grad).for_each(|(g, b)| *g += b);
    }
    LossGrad {
        loss,
        grad,
        mean,
        var,
    }
}

fn forward(blk: &mut Block, xs: &[f32], layers: &Layers, l: &Layout) {
    let (d, h, e, m) = (l.dim, l.hidden, l.encoded(), l.streams());
    let n = xs.len() / d;
    blk.n = n;
    let f = l.freqs;
    let input = sized(&mut blk.input, m * n * e);
    input.fill(0.0);
    for (r, xr) in xs.chunks(d).enumerate() {
        for (j, &v) in xr.iter().enumerate() {
            input[r * e + j] = v;
            input[((1 + j) * n + r) * e + j] = 1.0;
            for k in 0..f {
                let fk = (1u64 << k) as f32;
                let (sin, cos) = (v * fk).sin_cos();
                let (at_sin, at_cos) = (d * (1 + k) + j, d * (1 + f + k) + j);
                input[r * e + at_sin] = sin;
                input[r * e + at_cos] = cos;
                // d sin(f x) = f cos(f x) dx ; d cos(f x) = −f sin(f x) dx
                let dj = ((1 + j) * n + r) * e;
                input[dj + at_sin] = fk * cos;
                input[dj + at_cos] = -fk * sin;
            }
        }
    }
    let widths = [e, h, h, d];
    for layer in 0..3 {
        let (k, out) = (widths[layer], widths[layer + 1]);
        let (below, above) = blk.act.split_at_mut(layer);
        let src: &[f32] = if layer == 0 {
            &blk.input
        } else {
            &below[layer - 1]
        };
        let z = sized(&mut blk.z[layer], m * n * out);
        matmul(
            z,
            src,
            (k, 1),
            layers.w[layer],
            (out, 1),
            (m * n, k, out),
            false,
        );
        for row in z[..n * out].chunks_mut(out) {
            row.iter_mut()
                .zip(layers.b[layer])
                .for_each(|(v, b)| *v += b);
        }
        if layer == 2 {
            break;
        }
        let act = sized(&mut above[0], m * n * out);
        let g = sized(&mut blk.slope, n * out);
        let (h0, tangents) = z.split_at(n * out);
        let (a0, ta) = act.split_at_mut(n * out);
        // Separate passes over contiguous runs, so each loop vectorises.
        for ((&hv, a), g) in h0.iter().zip(a0.iter_mut()).zip(g.iter_mut()) {
            let sg = sigmoid(hv);
            *a = hv * sg;
            *g = sg * (1.0 + hv * (1.0 - sg));
        }
        for (t, u) in ta.chunks_mut(n * out).zip(tangents.chunks(n * out)) {
            t.iter_mut()
                .zip(u)
                .zip(g.iter())
                .for_each(|((t, u), g)| *t = g * u);
        }
    }
}

/// The output norm, the loss, and the loss's gradient w.r.t. the last layer's z (into each
/// block's `dz`): the only part that needs the whole batch at once. Returns the loss and
/// the batch statistics.
fn output_and_seed(
    blocks: &mut [Block],
    s: &[f32],
    l: &Layout,
    lambda: f64,
    eps: f64,
) -> (f64, Vec<f32>, Vec<f32>) {
    let d = l.dim;
    let rows: usize = blocks.iter().map(|b| b.n).sum();
    let bf = rows as f64;
    let mut mean = vec![0f64; d];
    for blk in blocks.iter() {
        for row in blk.z[2][..blk.n * d].chunks(d) {
            mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
        }
    }
    mean.iter_mut().for_each(|m| *m /= bf);
    let mut var = vec![0f64; d];
    for blk in blocks.iter() {
        for row in blk.z[2][..blk.n * d].chunks(d) {
            for i in 0..d {
                var[i] += (row[i] as f64 - mean[i]).powi(2);
            }
        }
    }
    var.iter_mut().for_each(|v| *v /= bf);
    let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();

    // First pass: loss, d loss/dv and d loss/dc per row (dc already through c = u·ι into
    // du), and the sums the norm's backward needs.
    let (mut loss, mut sum_dv, mut d_inv) = (0f64, vec![0f64; d], vec![0f64; d]);
    let mut row0 = 0;
    let (mut c, mut sym) = (vec![0f64; d * d], vec![0f64; d * d]);
    for blk in blocks.iter_mut() {
        let n = blk.n;
        let z = &blk.z[2];
        let dz = sized(&mut blk.dz, (1 + d) * n * d);
        for r in 0..n {
            let h3 = &z[r * d..(r + 1) * d];
            let sr = &s[(row0 + r) * d..(row0 + r + 1) * d];
            // c[j·d + i] = ∂v_i/∂x_j
            for j in 0..d {
                let u = &z[((1 + j) * n + r) * d..((1 + j) * n + r + 1) * d];
                for i in 0..d {
                    c[j * d + i] = u[i] as f64 * inv[i];
                }
            }
            let mut res = 0f64;
            for i in 0..d {
                res += c[i * d + i] + (h3[i] as f64 - mean[i]) * inv[i] * sr[i] as f64;
            }
            let mut pen = 0f64;
            for i in 0..d {
                for j in 0..d {
                    sym[i * d + j] = 0.5 * (c[j * d + i] + c[i * d + j]);
                    pen += sym[i * d + j].powi(2);
                }
            }
            loss += res * res + lambda * pen;
            let dr = 2.0 * res / bf;
            for i in 0..d {
                let dv = dr * sr[i] as f64;
                sum_dv[i] += dv;
                d_inv[i] += dv * (h3[i] as f64 - mean[i]);
                // The row's dv waits in dz's stream 0 until the norm's sums are known.
                dz[r * d + i] = dv as f32;
            }
            for j in 0..d {
                let u = &z[((1 + j) * n + r) * d..((1 + j) * n + r + 1) * d];
                let du = &mut dz[((1 + j) * n + r) * d..((1 + j) * n + r + 1) * d];
                for i in 0..d {
                    let dc = if i == j { dr } else { 0.0 } + 2.0 * lambda / bf * sym[i * d + j];
                    d_inv[i] += dc * u[i] as f64;
                    du[i] = (dc * inv[i]) as f32;
                }
            }
        }
        row0 += n;
    }
    // ι = (σ² + ε)^−½ with σ² = mean (h − μ)²; μ's own path through σ² vanishes.
    let d_var: Vec<f64> = (0..d).map(|i| -0.5 * d_inv[i] * inv[i].powi(3)).collect();
    for blk in blocks.iter_mut() {
        let n = blk.n;
        for r in 0..n {
            for i in 0..d {
                let h = blk.z[2][r * d + i] as f64 - mean[i];
                let dv = blk.dz[r * d + i] as f64;
                blk.dz[r * d + i] =
                    (inv[i] * (dv - sum_dv[i] / bf) + d_var[i] * 2.0 * h / bf) as f32;
            }
        }
    }
    let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
    (loss / bf, f32s(mean), f32s(var))
}

fn backward(blk: &mut Block, layers: &Layers, l: &Layout) {
    let (d, h, e, m) = (l.dim, l.hidden, l.encoded(), l.streams());
    let n = blk.n;
    let o = l.offsets();
    let grad = sized(&mut blk.grad, l.params());
    let widths = [e, h, h, d];
    for layer in (0..3).rev() {
        let (k, out) = (widths[layer], widths[layer + 1]);
        let src: &[f32] = if layer == 0 {
            &blk.input
        } else {
            &blk.act[layer - 1]
        };
        let dz = &blk.dz[..m * n * out];
        // dW = srcᵀ·dz over all streams; db from stream 0 (the tangents carry no bias).
        let gw = &mut grad[o[2 * layer]..o[2 * layer + 1]];
        matmul(gw, src, (1, k), dz, (out, 1), (k, m * n, out), false);
        let gb = &mut grad[o[2 * layer + 1]..o[2 * layer + 2]];
        gb.fill(0.0);
        for row in dz[..n * out].chunks(out) {
            gb.iter_mut().zip(row).for_each(|(g, v)| *g += v);
        }
        if layer == 0 {
            break;
        }
        // d src = dz·Wᵀ, then back through src = [silu h, silu'(h) ⊙ z]: into dz for the
        // layer below.
        let dact = sized(&mut blk.dact, m * n * k);
        matmul(
            dact,
            dz,
            (out, 1),
            layers.w[layer],
            (1, out),
            (m * n, out, k),
            false,
        );
        let zb = &blk.z[layer - 1];
        let nk = n * k;
        let (g, g2) = sized(&mut blk.slope, 2 * nk).split_at_mut(nk);
        for ((&hv, g), g2) in zb[..nk].iter().zip(g.iter_mut()).zip(g2.iter_mut()) {
            let sg = sigmoid(hv);
            *g = sg * (1.0 + hv * (1.0 - sg));
            *g2 = sg * (1.0 - sg) * (2.0 + hv * (1.0 - 2.0 * sg));
        }
        let dzb = sized(&mut blk.dz, m * nk);
        // dz of stream 0 first collects Σⱼ d tⱼ ⊙ zⱼ (the slope's gradient).
        let (d0, dt) = dzb.split_at_mut(nk);
        d0.fill(0.0);
        for (j, dtj) in dt.chunks_mut(nk).enumerate() {
            let at = (1 + j) * nk;
            let (da, zj) = (&dact[at..at + nk], &zb[at..at + nk]);
            for ((((dg, t), &a), &z), &g) in d0
                .iter_mut()
                .zip(dtj.iter_mut())
                .zip(da)
                .zip(zj)
                .zip(g.iter())
            {
                *dg += a * z;
                *t = a * g;
            }
        }
        for (((dz, &a), &g), &g2) in d0.iter_mut().zip(&dact[..nk]).zip(g.iter()).zip(g2.iter()) {
            *dz = a * g + *dz * g2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::equilibrium::{LossConfig, equilibrium_loss};
    use crate::nn::batchnorm::BnMode;
    use crate::nn::flow_mlp::FlowMlpConfig;
    use crate::preset::Estimator;
    use crate::tensor_util::{flat_params, to_vec};
    use burn::module::Module;
    use burn::tensor::{Device, Distribution, Tensor};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// The hand-written gradient is burn's autodiff gradient of the same loss, for 2-D and
    /// 3-D nets, with and without the ‖sym J‖² penalty, over several blocks of rows (one of
    /// them partial).
    #[test]
    fn the_host_gradient_is_autodiffs() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(21);
        for (dim, lambda, rows) in [(3usize, 0.0, 150usize), (3, 0.3, 70), (2, 0.2, 64)] {
            let cfg = FlowMlpConfig {
                dim,
                hidden: 16,
                freqs: 3,
                bn_momentum: 0.1,
            };
            let net = cfg.init(&device);
            let x = Tensor::<2>::random([rows, dim], Distribution::Normal(0.0, 1.2), &device);
            let s = Tensor::<2>::random([rows, dim], Distribution::Normal(0.0, 1.0), &device);
            let loss_cfg = LossConfig {
                estimator: Estimator::Exact,
                probes: 1,
                unbiased: false,
                sym_penalty: lambda,
            };
            let out = equilibrium_loss(
                &net,
                x.clone(),
                s.clone(),
                &loss_cfg,
                BnMode::Batch,
                &mut StdRng::seed_from_u64(0),
            );
            let want_loss = to_vec(out.loss.clone())[0] as f64;
            let g = out.loss.backward();
            let grad_of = |p: &burn::module::Param<Tensor<2>>| to_vec(p.val().grad(&g).unwrap());
            let bgrad =
                |l: &burn::nn::Linear| to_vec(l.bias.as_ref().unwrap().val().grad(&g).unwrap());
            let want = [
                grad_of(&net.l1.weight),
                bgrad(&net.l1),
                grad_of(&net.l2.weight),
                bgrad(&net.l2),
                grad_of(&net.l3.weight),
                bgrad(&net.l3),
            ];
            let layout = Layout {
                dim,
                hidden: 16,
                freqs: 3,
            };
            let got = loss_and_grad(
                &flat_params(&net.valid())[..layout.params()],
                &layout,
                &to_vec(x),
                &to_vec(s),
                lambda,
                net.bn.epsilon,
                &mut Workspace::default(),
            );
            assert!(
                (got.loss - want_loss).abs() < 1e-4 * want_loss.abs().max(1.0),
                "loss {} vs {want_loss}",
                got.loss
            );
            let o = layout.offsets();
            // The output bias's gradient is rounding noise (the norm removes it): skip it.
            for (p, want) in want.iter().enumerate().take(5) {
                let got = &got.grad[o[p]..o[p + 1]];
                let scale = want.iter().map(|v| v.abs()).fold(0f32, f32::max).max(1e-6);
                for (a, b) in got.iter().zip(want) {
                    assert!(
                        (a - b).abs() < 2e-3 * scale,
                        "dim {dim} λ {lambda} param {p}: {a} vs {b} (scale {scale})"
                    );
                }
            }
        }
    }
}
