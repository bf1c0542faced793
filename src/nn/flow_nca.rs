//! The image flow network, a neural cellular automaton (METHOD §3): every pixel looks at its
//! 3×3 neighbourhood through a kernel that is the same under the square's rotations and
//! reflections, then a small per-pixel MLP (1×1 convolutions) says how it changes.
//!
//! `sym 3×3 (c → hidden) · BN · SiLU · [1×1 hidden → hidden · BN · SiLU] × depth ·
//! 1×1 hidden → c · optional BN without affine`, on a torus (circular padding).
//!
//! The symmetric stencil has three weights per channel pair (centre, edge, corner), so the
//! rule cannot prefer a direction: like the Laplacian in Gray–Scott, any motion must come
//! from the pattern itself. Tangents are pushed forward by hand (see `jvp`): a convolution's
//! tangent is the same convolution without its bias; after the stencil every layer acts on
//! single pixels, so the pixels become rows and the MLP tangent rules apply unchanged.

use super::batchnorm::{AffineBatchNorm, BnMode, BnOutput, OutputBatchNorm};
use super::circular::circular_conv;
use super::jvp;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor, TensorData};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NcaConfig {
    pub channels: usize,
    pub hidden: usize,
    /// Hidden 1×1 layers between the stencil and the output layer.
    pub depth: usize,
    /// A final batch-norm without affine: blocks v = 0 (each output channel has unit variance).
    pub output_bn: bool,
    pub bn_momentum: f64,
}

/// A 3×3 kernel `[out, in, 3, 3]` built from centre, edge and corner weights `[out, in]`:
/// invariant under the 8 symmetries of the square by construction.
#[derive(Module, Debug)]
pub struct SymConv3 {
    pub centre: Param<Tensor<2>>,
    pub edge: Param<Tensor<2>>,
    pub corner: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
}

/// Which of the three weights each of the 9 kernel cells takes (row-major).
const CELLS: [[f32; 9]; 3] = [
    [0., 0., 0., 0., 1., 0., 0., 0., 0.],
    [0., 1., 0., 1., 0., 1., 0., 1., 0.],
    [1., 0., 1., 0., 0., 0., 1., 0., 1.],
];

impl SymConv3 {
    pub fn new(c_in: usize, c_out: usize, device: &Device) -> Self {
        // PyTorch's default for a convolution: U(±1/√fan_in), fan_in = c_in · 9.
        let bound = 1.0 / ((c_in * 9) as f64).sqrt();
        let u = || {
            Param::from_tensor(Tensor::<2>::random(
                [c_out, c_in],
                Distribution::Uniform(-bound, bound),
                device,
            ))
        };
        Self {
            centre: u(),
            edge: u(),
            corner: u(),
            bias: Param::from_tensor(Tensor::<1>::random(
                [c_out],
                Distribution::Uniform(-bound, bound),
                device,
            )),
        }
    }

    /// The full kernel `[out, in, 3, 3]` (differentiable in the three weights).
    pub fn kernel(&self) -> Tensor<4> {
        let [o, i] = self.centre.dims();
        let device = self.centre.device();
        let mut k: Option<Tensor<3>> = None;
        for (w, cells) in [&self.centre, &self.edge, &self.corner]
            .into_iter()
            .zip(CELLS)
        {
            let mask = Tensor::<1>::from_data(TensorData::new(cells.to_vec(), [9]), &device)
                .reshape([1, 1, 9]);
            let term = w.val().reshape([o, i, 1]) * mask;
            k = Some(match k {
                Some(k) => k + term,
                None => term,
            });
        }
        k.expect("three terms").reshape([o, i, 3, 3])
    }

    fn conv(&self, x: Tensor<4>, kernel: Tensor<4>, bias: Option<Tensor<1>>) -> Tensor<4> {
        circular_conv(x, kernel, bias)
    }
}

#[derive(Module, Debug)]
pub struct Nca {
    pub stencil: SymConv3,
    pub norms: Vec<AffineBatchNorm>,
    pub hidden: Vec<Linear>,
    pub out: Linear,
    pub out_bn: Option<OutputBatchNorm>,
}

/// v(x) `[B, c, H, W]`, its tangents `[m, B, c, H, W]` if any were pushed, and the batch
/// statistics of every batch-norm (hidden ones first, then the output one).
pub struct NcaOutput {
    pub v: Tensor<4>,
    pub tangents: Option<Tensor<5>>,
    pub batch_stats: Vec<(Tensor<1>, Tensor<1>)>,
}

impl NcaConfig {
    pub fn init(&self, device: &Device) -> Nca {
        let (c, h) = (self.channels, self.hidden);
        Nca {
            stencil: SymConv3::new(c, h, device),
            norms: (0..=self.depth)
                .map(|_| AffineBatchNorm::new(h, self.bn_momentum, device))
                .collect(),
            hidden: (0..self.depth)
                .map(|_| LinearConfig::new(h, h).init(device))
                .collect(),
            out: LinearConfig::new(h, c).init(device),
            out_bn: self
                .output_bn
                .then(|| OutputBatchNorm::new(c, self.bn_momentum, device)),
        }
    }
}

/// `[B, c, H, W]` → pixel rows `[B·H·W, c]`.
fn to_rows(x: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    x.permute([0, 2, 3, 1]).reshape([b * h * w, c])
}

/// Pixel rows back to `[B, c, H, W]`.
fn from_rows(r: Tensor<2>, b: usize, h: usize, w: usize) -> Tensor<4> {
    let [_, c] = r.dims();
    r.reshape([b, h, w, c]).permute([0, 3, 1, 2])
}

impl Nca {
    pub fn channels(&self) -> usize {
        self.stencil.centre.dims()[1]
    }

    pub fn hidden_width(&self) -> usize {
        self.stencil.centre.dims()[0]
    }

    /// v(x) alone.
    pub fn forward(&self, x: Tensor<4>, mode: BnMode) -> Tensor<4> {
        self.forward_jvp(x, None, mode).v
    }

    /// v(x) and, for tangents `t` `[m, B, c, H, W]`, the products J_v(x) t. Batch-norm
    /// statistics count as constants in the Jacobian (each pixel moves them by O(1/(B·H·W))).
    pub fn forward_jvp(&self, x: Tensor<4>, t: Option<Tensor<5>>, mode: BnMode) -> NcaOutput {
        let [b, c, h, w] = x.dims();
        let kernel = self.stencil.kernel();
        let h0 = self
            .stencil
            .conv(x, kernel.clone(), Some(self.stencil.bias.val()));
        let mut rows = to_rows(h0);
        let mut trows = t.map(|t| {
            let m = t.dims()[0];
            let jt = self.stencil.conv(t.reshape([m * b, c, h, w]), kernel, None);
            let width = jt.dims()[1];
            to_rows(jt).reshape([m, b * h * w, width])
        });
        let mut stats = Vec::new();
        for (i, norm) in self.norms.iter().enumerate() {
            if i > 0 {
                let l = &self.hidden[i - 1];
                trows = trows.map(|t| jvp::linear(t, l.weight.val()));
                rows = l.forward(rows);
            }
            let (out, factor, s) = norm.forward(rows, mode);
            stats.extend(s);
            let (a, da) = jvp::silu_with_derivative(out);
            trows = trows.map(|t| jvp::scale(jvp::scale(t, factor), da));
            rows = a;
        }
        trows = trows.map(|t| jvp::linear(t, self.out.weight.val()));
        rows = self.out.forward(rows);
        if let Some(bn) = &self.out_bn {
            let BnOutput {
                out,
                inv_std,
                batch_stats,
            } = bn.forward(rows, mode);
            stats.extend(batch_stats);
            trows = trows.map(|t| jvp::scale(t, inv_std));
            rows = out;
        }
        let tangents = trows.map(|t| {
            let m = t.dims()[0];
            t.reshape([m, b, h, w, c]).permute([0, 1, 4, 2, 3])
        });
        NcaOutput {
            v: from_rows(rows, b, h, w),
            tangents,
            batch_stats: stats,
        }
    }

    /// Fold a training batch's statistics (from [`NcaOutput::batch_stats`]) into the running
    /// ones; `rows` = B·H·W pixels.
    pub fn updated(self, stats: Vec<(Tensor<1>, Tensor<1>)>, rows: usize) -> Self {
        let mut it = stats.into_iter();
        let norms = self
            .norms
            .into_iter()
            .map(|n| match it.next() {
                Some((m, v)) => n.updated(m, v, rows),
                None => n,
            })
            .collect();
        let out_bn = self.out_bn.map(|n| match it.next() {
            Some((m, v)) => n.updated(m, v, rows),
            None => n,
        });
        Self {
            norms,
            out_bn,
            ..self
        }
    }

    /// Running statistics set to those of `x` layer by layer: an untrained net becomes a fair
    /// baseline (its output normalised like a trained one's) without learning anything.
    pub fn calibrated(mut self, x: Tensor<4>) -> Self {
        let [b, _, h, w] = x.dims();
        let saved: Vec<f64> = self.norms.iter().map(|n| n.norm.momentum).collect();
        let saved_out = self.out_bn.as_ref().map(|n| n.momentum);
        for n in &mut self.norms {
            n.norm.momentum = 1.0;
        }
        if let Some(n) = &mut self.out_bn {
            n.momentum = 1.0;
        }
        let stats = self.forward_jvp(x, None, BnMode::Batch).batch_stats;
        let mut net = self.updated(stats, b * h * w);
        for (n, m) in net.norms.iter_mut().zip(saved) {
            n.norm.momentum = m;
        }
        if let (Some(n), Some(m)) = (&mut net.out_bn, saved_out) {
            n.momentum = m;
        }
        net
    }

    /// The stencil's 3×3 kernels, `[hidden, c, 3, 3]` row-major (for showing the rule).
    pub fn kernels(&self) -> Vec<f32> {
        crate::tensor_util::to_vec(self.stencil.kernel())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::to_vec;

    fn net(output_bn: bool, depth: usize, device: &Device) -> Nca {
        NcaConfig {
            channels: 2,
            hidden: 8,
            depth,
            output_bn,
            bn_momentum: 0.1,
        }
        .init(device)
    }

    /// Every one of the square's 8 symmetries (4 rotations, each with or without a mirror)
    /// maps the stencil's kernel onto itself.
    #[test]
    fn the_stencil_is_invariant_under_the_symmetries_of_the_square() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        device.seed(5);
        let conv = SymConv3::new(3, 4, &device);
        let k = to_vec(conv.kernel());
        let cell = |o: usize, i: usize, a: usize, b: usize| k[((o * 3 + i) * 3 + a) * 3 + b];
        type Map = fn(usize, usize) -> (usize, usize);
        let maps: [Map; 8] = [
            |a, b| (a, b),
            |a, b| (b, 2 - a),
            |a, b| (2 - a, 2 - b),
            |a, b| (2 - b, a),
            |a, b| (a, 2 - b),
            |a, b| (2 - a, b),
            |a, b| (b, a),
            |a, b| (2 - b, 2 - a),
        ];
        for o in 0..4 {
            for i in 0..3 {
                for map in maps {
                    for a in 0..3 {
                        for b in 0..3 {
                            let (p, q) = map(a, b);
                            assert_eq!(cell(o, i, a, b), cell(o, i, p, q));
                        }
                    }
                }
                // Three distinct values: the kernel is not trivially constant.
                let (c, e, r) = (cell(o, i, 1, 1), cell(o, i, 0, 1), cell(o, i, 0, 0));
                assert!(c != e && e != r && c != r, "{c} {e} {r}");
            }
        }
        // And so the net's output turns with its input: rotating the picture by 90° rotates v.
        let nca = net(true, 1, &device);
        let x = Tensor::<4>::random([2, 2, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let rot = |t: Tensor<4>| t.swap_dims(2, 3).flip([3]);
        let a = to_vec(nca.forward(rot(x.clone()), BnMode::Running));
        let b = to_vec(rot(nca.forward(x, BnMode::Running)));
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-5, "{p} vs {q}");
        }
    }

    /// The hand-propagated tangent through stencil, norms, SiLU and the 1×1 layers equals
    /// central finite differences of the forward pass, borders (the wrap) included.
    #[test]
    fn conv_jvp_matches_central_differences() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        device.seed(9);
        for (output_bn, depth) in [(true, 1), (false, 2)] {
            let nca = net(output_bn, depth, &device);
            // Calibrated running statistics: the same per-pixel map as in simulation.
            let x = Tensor::<4>::random([2, 2, 5, 7], Distribution::Normal(0.0, 1.0), &device);
            let nca = nca.calibrated(x.clone());
            let t = Tensor::<5>::random([2, 2, 2, 5, 7], Distribution::Normal(0.0, 1.0), &device);
            let out = nca.forward_jvp(x.clone(), Some(t.clone()), BnMode::Running);
            let jt = to_vec(out.tangents.unwrap());
            let n = 2 * 2 * 5 * 7;
            let h = 1e-2f64;
            for m in 0..2 {
                let tm = t.clone().narrow(0, m, 1).reshape([2, 2, 5, 7]);
                let plus = nca.forward(x.clone() + tm.clone().mul_scalar(h), BnMode::Running);
                let minus = nca.forward(x.clone() - tm.mul_scalar(h), BnMode::Running);
                let fd = to_vec((plus - minus).div_scalar(2.0 * h));
                let got = &jt[m * n..(m + 1) * n];
                let scale = fd.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
                assert!(scale > 1e-2, "a real signal: {scale}");
                for (g, f) in got.iter().zip(&fd) {
                    assert!(
                        (g - f).abs() / scale < 2e-3,
                        "bn {output_bn} depth {depth}: jvp {g} vs fd {f}"
                    );
                }
            }
        }
    }

    #[test]
    fn batch_mode_normalises_each_output_channel_over_all_pixels() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        device.seed(2);
        let nca = net(true, 1, &device);
        let x = Tensor::<4>::random([3, 2, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        let out = nca.forward_jvp(x, None, BnMode::Batch);
        assert_eq!(
            out.batch_stats.len(),
            3,
            "two hidden norms and the output one"
        );
        let v = out.v;
        for c in 0..2 {
            let ch = to_vec(v.clone().narrow(1, c, 1));
            let m = ch.iter().sum::<f32>() / ch.len() as f32;
            let var = ch.iter().map(|x| (x - m).powi(2)).sum::<f32>() / ch.len() as f32;
            assert!(m.abs() < 1e-4 && (var - 1.0).abs() < 1e-2, "{m} {var}");
        }
    }
}
