//! The low-dimensional flow network v(x) (METHOD §3):
//! [x, sin(2^k x), cos(2^k x)]_k → Linear → SiLU → Linear → SiLU → Linear → output BN.
//! SiLU rather than ReLU because the loss needs smooth first derivatives of v.

use super::batchnorm::{BnMode, BnOutput, OutputBatchNorm};
use super::jvp;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowMlpConfig {
    pub dim: usize,
    pub hidden: usize,
    pub freqs: usize,
    pub bn_momentum: f64,
}

#[derive(Module, Debug)]
pub struct FlowMlp {
    pub l1: Linear,
    pub l2: Linear,
    pub l3: Linear,
    pub bn: OutputBatchNorm,
    pub freqs: usize,
}

/// v(x), its tangents (if any were pushed), and the batch statistics of the output norm.
pub struct FlowOutput {
    pub v: Tensor<2>,
    pub tangents: Option<Tensor<3>>,
    pub batch_stats: Option<(Tensor<1>, Tensor<1>)>,
}

impl FlowMlpConfig {
    pub fn encoded_dim(&self) -> usize {
        self.dim * (1 + 2 * self.freqs)
    }

    pub fn init(&self, device: &Device) -> FlowMlp {
        FlowMlp {
            l1: LinearConfig::new(self.encoded_dim(), self.hidden).init(device),
            l2: LinearConfig::new(self.hidden, self.hidden).init(device),
            l3: LinearConfig::new(self.hidden, self.dim).init(device),
            bn: OutputBatchNorm::new(self.dim, self.bn_momentum, device),
            freqs: self.freqs,
        }
    }
}

impl FlowMlp {
    pub fn dim(&self) -> usize {
        self.l3.weight.dims()[1]
    }

    /// v(x) alone.
    pub fn forward(&self, x: Tensor<2>, mode: BnMode) -> Tensor<2> {
        self.forward_jvp(x, None, mode).v
    }

    /// v(x) and, for tangents `t` `[m, B, dim]`, the products J_v(x) t.
    pub fn forward_jvp(&self, x: Tensor<2>, t: Option<Tensor<3>>, mode: BnMode) -> FlowOutput {
        let (e, te) = self.encode(x, t);
        let (a1, ta1) = hidden_layer(&self.l1, e, te);
        let (a2, ta2) = hidden_layer(&self.l2, a1, ta1);
        let h3 = self.l3.forward(a2);
        let th3 = ta2.map(|t| jvp::linear(t, self.l3.weight.val()));
        let BnOutput {
            out,
            inv_std,
            batch_stats,
        } = self.bn.forward(h3, mode);
        FlowOutput {
            v: out,
            tangents: th3.map(|t| jvp::scale(t, inv_std)),
            batch_stats,
        }
    }

    fn encode(&self, x: Tensor<2>, t: Option<Tensor<3>>) -> (Tensor<2>, Option<Tensor<3>>) {
        let mut parts = vec![x.clone()];
        let mut tparts = t.iter().cloned().collect::<Vec<_>>();
        let mut sines = Vec::new();
        let mut cosines = Vec::new();
        let mut tsines = Vec::new();
        let mut tcosines = Vec::new();
        for k in 0..self.freqs {
            let f = (1u64 << k) as f64;
            let a = x.clone().mul_scalar(f);
            let (s, c) = (a.clone().sin(), a.cos());
            if let Some(t) = &t {
                // d sin(f x) = f cos(f x) dx ; d cos(f x) = -f sin(f x) dx
                tsines.push(jvp::scale(t.clone(), c.clone().mul_scalar(f)));
                tcosines.push(jvp::scale(t.clone(), s.clone().mul_scalar(-f)));
            }
            sines.push(s);
            cosines.push(c);
        }
        parts.extend(sines);
        parts.extend(cosines);
        tparts.extend(tsines);
        tparts.extend(tcosines);
        let e = Tensor::cat(parts, 1);
        let te = t.map(|_| Tensor::cat(tparts, 2));
        (e, te)
    }
}

/// The parameters the equilibrium loss depends on, flattened: all but the output layer's
/// bias and the running mean. The output norm subtracts the batch mean, so the bias's
/// gradient is only rounding noise, which Adam scales up to full-size steps; two
/// computations of one training that round differently move it (and the running mean that
/// follows it) differently while computing the same field in batch mode.
#[cfg(test)]
pub(crate) fn shift_free_params(m: &FlowMlp) -> Vec<f32> {
    use crate::tensor_util::to_vec;
    let bias = |l: &Linear| to_vec(l.bias.as_ref().expect("a bias").val());
    [
        to_vec(m.l1.weight.val()),
        bias(&m.l1),
        to_vec(m.l2.weight.val()),
        bias(&m.l2),
        to_vec(m.l3.weight.val()),
        to_vec(m.bn.running_var.val()),
    ]
    .concat()
}

fn hidden_layer(l: &Linear, x: Tensor<2>, t: Option<Tensor<3>>) -> (Tensor<2>, Option<Tensor<3>>) {
    let h = l.forward(x);
    let (a, da) = super::jvp::silu_with_derivative(h);
    let ta = t.map(|t| jvp::scale(jvp::linear(t, l.weight.val()), da));
    (a, ta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::{from_rows, to_vec};
    use burn::tensor::Distribution;

    /// The hand-propagated tangent equals central finite differences of the forward pass.
    #[test]
    fn jvp_matches_central_differences() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        device.seed(3);
        for dim in [2usize, 3] {
            let net = FlowMlpConfig {
                dim,
                hidden: 16,
                freqs: 4,
                bn_momentum: 0.1,
            }
            .init(&device);
            // Evaluate with running statistics (identity norm) so rows are independent.
            let b = 8;
            let x = Tensor::<2>::random([b, dim], Distribution::Normal(0.0, 1.0), &device);
            let t = Tensor::<3>::random([2, b, dim], Distribution::Normal(0.0, 1.0), &device);
            let out = net.forward_jvp(x.clone(), Some(t.clone()), BnMode::Running);
            let jt = to_vec(out.tangents.unwrap());
            // Small enough that the sin(8x) features' third derivative does not bias the
            // difference, large enough for f32 rounding.
            let h = 2e-3f64;
            for m in 0..2 {
                let tm = t.clone().narrow(0, m, 1).reshape([b, dim]);
                let plus = net.forward(x.clone() + tm.clone().mul_scalar(h), BnMode::Running);
                let minus = net.forward(x.clone() - tm.mul_scalar(h), BnMode::Running);
                let fd = to_vec((plus - minus).div_scalar(2.0 * h));
                let got = &jt[m * b * dim..(m + 1) * b * dim];
                let scale = fd.iter().map(|v| v.abs()).fold(0.0f32, f32::max).max(1e-3);
                for (g, f) in got.iter().zip(&fd) {
                    assert!((g - f).abs() / scale < 2e-3, "dim {dim}: jvp {g} vs fd {f}");
                }
            }
        }
    }

    #[test]
    fn batch_mode_normalises_each_output() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let mut net = FlowMlpConfig {
            dim: 2,
            hidden: 8,
            freqs: 2,
            bn_momentum: 0.1,
        }
        .init(&device);
        // A fresh net's raw outputs vary by ~1e-4, where eps = 1e-5 would show.
        net.bn.epsilon = 1e-12;
        let rows: Vec<f32> = (0..512)
            .map(|i| ((i * 7919) % 1000) as f32 / 300.0)
            .collect();
        let v = to_vec(net.forward(from_rows(&rows, 2, &device), BnMode::Batch));
        for c in 0..2 {
            let col: Vec<f64> = v.iter().skip(c).step_by(2).map(|&x| x as f64).collect();
            let m = col.iter().sum::<f64>() / col.len() as f64;
            let var = col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / col.len() as f64;
            assert!(m.abs() < 1e-3 && (var - 1.0).abs() < 2e-3, "{m} {var}");
        }
    }
}
