//! N flow networks of one architecture as one network (a sweep's models, which differ only
//! in their seed): every weight gets a leading model axis and each layer is one batched
//! matrix product, so one step trains all N. Model k of the stack computes exactly what the
//! [`FlowMlp`] it was stacked from computes; [`FlowStack::unstack`] gives them back.
//!
//! Layouts: states `[N, B, d]` (model, point, coordinate); tangents `[m, N, B, d]` (the m
//! directions outermost, so a per-point derivative `[N, B, n]` repeats along them).

use super::batchnorm::{BnMode, OutputBatchNorm, blend, frozen};
use super::flow_mlp::FlowMlp;
use super::jvp;
use burn::module::{Module, Param};
use burn::tensor::Tensor;

#[derive(Module, Debug)]
pub struct StackedLinear {
    /// `[N, in, out]`.
    pub weight: Param<Tensor<3>>,
    /// `[N, 1, out]`.
    pub bias: Param<Tensor<3>>,
}

#[derive(Module, Debug)]
pub struct FlowStack {
    pub l1: StackedLinear,
    pub l2: StackedLinear,
    pub l3: StackedLinear,
    /// Running statistics of each model's output norm, `[N, d]`.
    pub running_mean: Param<Tensor<2>>,
    pub running_var: Param<Tensor<2>>,
    pub momentum: f64,
    pub epsilon: f64,
    pub freqs: usize,
}

/// v for every model, the tangents if any were pushed, and each model's batch statistics
/// of the output norm (`[N, d]` mean and biased variance).
pub struct StackOutput {
    pub v: Tensor<3>,
    pub tangents: Option<Tensor<4>>,
    pub batch_stats: Option<(Tensor<2>, Tensor<2>)>,
}

impl StackedLinear {
    fn stack(layers: &[&burn::nn::Linear]) -> Self {
        let weight = Tensor::stack(layers.iter().map(|l| l.weight.val()).collect(), 0);
        let bias = Tensor::stack(
            layers
                .iter()
                .map(|l| {
                    let b = l.bias.as_ref().expect("flow layers have a bias").val();
                    let n = b.dims()[0];
                    b.reshape([1, n])
                })
                .collect(),
            0,
        );
        Self {
            weight: Param::from_tensor(weight),
            bias: Param::from_tensor(bias),
        }
    }

    fn model(&self, k: usize) -> (Tensor<2>, Tensor<1>) {
        let [_, i, o] = self.weight.dims();
        (
            self.weight.val().narrow(0, k, 1).reshape([i, o]),
            self.bias.val().narrow(0, k, 1).reshape([o]),
        )
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        x.matmul(self.weight.val()) + self.bias.val()
    }

    /// The tangents `[m, N, B, in]` through the layer (the bias does not move).
    fn tangent(&self, t: Tensor<4>) -> Tensor<4> {
        t.matmul(self.weight.val().unsqueeze_dim::<4>(0))
    }
}

impl FlowStack {
    /// The models side by side, model k from `models[k]` (all of one architecture).
    pub fn stack(models: &[FlowMlp]) -> Self {
        assert!(!models.is_empty(), "a stack of at least one model");
        let layers = |f: fn(&FlowMlp) -> &burn::nn::Linear| -> Vec<&burn::nn::Linear> {
            models.iter().map(f).collect()
        };
        let stats = |f: fn(&FlowMlp) -> Tensor<1>| -> Tensor<2> {
            Tensor::stack(models.iter().map(f).collect(), 0)
        };
        let first = &models[0];
        Self {
            l1: StackedLinear::stack(&layers(|m| &m.l1)),
            l2: StackedLinear::stack(&layers(|m| &m.l2)),
            l3: StackedLinear::stack(&layers(|m| &m.l3)),
            running_mean: frozen(stats(|m| m.bn.running_mean.val()).detach()),
            running_var: frozen(stats(|m| m.bn.running_var.val()).detach()),
            momentum: first.bn.momentum,
            epsilon: first.bn.epsilon,
            freqs: first.freqs,
        }
    }

    pub fn models(&self) -> usize {
        self.l1.weight.dims()[0]
    }

    pub fn dim(&self) -> usize {
        self.l3.weight.dims()[2]
    }

    /// Model `k` as a [`FlowMlp`] (its own tensors, nothing shared with the stack).
    pub fn model(&self, k: usize) -> FlowMlp {
        let device = self.l1.weight.device();
        let layer = |s: &StackedLinear| {
            let (w, b) = s.model(k);
            burn::nn::Linear {
                weight: Param::from_tensor(w),
                bias: Some(Param::from_tensor(b)),
            }
        };
        let d = self.dim();
        let row = |p: &Param<Tensor<2>>| p.val().narrow(0, k, 1).reshape([d]);
        let mut bn = OutputBatchNorm::new(d, self.momentum, &device)
            .with_stats(row(&self.running_mean), row(&self.running_var));
        bn.epsilon = self.epsilon;
        FlowMlp {
            l1: layer(&self.l1),
            l2: layer(&self.l2),
            l3: layer(&self.l3),
            bn,
            freqs: self.freqs,
        }
    }

    /// Every model, in order.
    pub fn unstack(&self) -> Vec<FlowMlp> {
        (0..self.models()).map(|k| self.model(k)).collect()
    }

    /// v for states `x` `[N, B, d]` (model k moves `x[k]`) and, for tangents `t`
    /// `[m, N, B, d]`, the products J_v t; as [`FlowMlp::forward_jvp`] does for each model.
    pub fn forward_jvp(&self, x: Tensor<3>, t: Option<Tensor<4>>, mode: BnMode) -> StackOutput {
        let [n, _, d] = x.dims();
        let (e, te) = self.encode(x, t);
        let (a1, ta1) = self.hidden(&self.l1, e, te);
        let (a2, ta2) = self.hidden(&self.l2, a1, ta1);
        let h3 = self.l3.forward(a2);
        let th3 = ta2.map(|t| self.l3.tangent(t));
        let (mean, var, stats) = match mode {
            BnMode::Batch => {
                let mean = h3.clone().mean_dim(1);
                let var = (h3.clone() - mean.clone()).square().mean_dim(1);
                let stats = (
                    mean.clone().detach().reshape([n, d]),
                    var.clone().detach().reshape([n, d]),
                );
                (mean, var, Some(stats))
            }
            BnMode::Running => (
                self.running_mean.val().reshape([n, 1, d]),
                self.running_var.val().reshape([n, 1, d]),
                None,
            ),
        };
        let inv_std = var.add_scalar(self.epsilon).sqrt().recip();
        let tangents = th3.map(|t| t * inv_std.clone().unsqueeze_dim::<4>(0));
        StackOutput {
            v: (h3 - mean) * inv_std,
            tangents,
            batch_stats: stats,
        }
    }

    /// The running statistics blended with batch statistics `[N, d]` (as
    /// [`super::batchnorm::OutputBatchNorm::updated`] does for one model).
    pub fn updated(self, mean: Tensor<2>, var: Tensor<2>, batch: usize) -> Self {
        let running = (&self.running_mean, &self.running_var);
        let (running_mean, running_var) = blend(running, (mean, var), self.momentum, batch);
        Self {
            running_mean,
            running_var,
            ..self
        }
    }

    fn encode(&self, x: Tensor<3>, t: Option<Tensor<4>>) -> (Tensor<3>, Option<Tensor<4>>) {
        let [n, b, d] = x.dims();
        let mut parts = vec![x.clone()];
        let mut tparts = t.iter().cloned().collect::<Vec<_>>();
        let (mut sines, mut cosines, mut tsines, mut tcosines) = (vec![], vec![], vec![], vec![]);
        for k in 0..self.freqs {
            let f = (1u64 << k) as f64;
            let a = x.clone().mul_scalar(f);
            let (s, c) = (a.clone().sin(), a.cos());
            if let Some(t) = &t {
                // d sin(f x) = f cos(f x) dx ; d cos(f x) = -f sin(f x) dx
                let m = t.dims()[0];
                let scale = |factor: Tensor<3>| {
                    jvp::scale(t.clone().reshape([m, n * b, d]), factor.reshape([n * b, d]))
                        .reshape([m, n, b, d])
                };
                tsines.push(scale(c.clone().mul_scalar(f)));
                tcosines.push(scale(s.clone().mul_scalar(-f)));
            }
            sines.push(s);
            cosines.push(c);
        }
        parts.extend(sines);
        parts.extend(cosines);
        tparts.extend(tsines);
        tparts.extend(tcosines);
        let e = Tensor::cat(parts, 2);
        let te = t.map(|_| Tensor::cat(tparts, 3));
        (e, te)
    }

    fn hidden(
        &self,
        l: &StackedLinear,
        x: Tensor<3>,
        t: Option<Tensor<4>>,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let h = l.forward(x);
        let [n, b, w] = h.dims();
        let (a, da) = jvp::silu_with_derivative(h.reshape([n * b, w]));
        let ta = t.map(|t| {
            let m = t.dims()[0];
            jvp::scale(l.tangent(t).reshape([m, n * b, w]), da).reshape([m, n, b, w])
        });
        (a.reshape([n, b, w]), ta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::flow_mlp::FlowMlpConfig;
    use crate::tensor_util::{flat_params, init_seeded, to_vec};
    use burn::tensor::{Device, Distribution};

    fn close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (p, q) in a.iter().zip(b) {
            assert!((p - q).abs() <= tol * (1.0 + q.abs()), "{p} vs {q}");
        }
    }

    /// Each model of the stack gives what its own network gives, values and tangents, with
    /// batch statistics (each model's own batch) and with running ones; unstacking returns
    /// the very parameters.
    #[test]
    fn each_model_of_the_stack_is_its_own_network() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let cfg = FlowMlpConfig {
            dim: 3,
            hidden: 16,
            freqs: 4,
            bn_momentum: 0.1,
        };
        let models: Vec<FlowMlp> = (0..3)
            .map(|k| init_seeded(|| cfg.init(&device), 40 + k, &device))
            .collect();
        let stack = FlowStack::stack(&models);
        let back = stack.unstack();
        for (a, b) in models.iter().zip(&back) {
            close(&flat_params(a), &flat_params(b), 0.0);
        }
        let (n, b, m) = (3, 50, 2);
        device.seed(41);
        let x = Tensor::<3>::random([n, b, 3], Distribution::Normal(0.0, 1.0), &device);
        let t = Tensor::<4>::random([m, n, b, 3], Distribution::Normal(0.0, 1.0), &device);
        for mode in [BnMode::Batch, BnMode::Running] {
            let out = stack.forward_jvp(x.clone(), Some(t.clone()), mode);
            let (v, tv) = (to_vec(out.v), to_vec(out.tangents.unwrap()));
            for (k, model) in models.iter().enumerate() {
                let xk = x.clone().narrow(0, k, 1).reshape([b, 3]);
                let tk = t.clone().narrow(1, k, 1).reshape([m, b, 3]);
                let own = model.forward_jvp(xk, Some(tk), mode);
                close(&v[k * b * 3..(k + 1) * b * 3], &to_vec(own.v), 1e-5);
                let own_t = to_vec(own.tangents.unwrap());
                for j in 0..m {
                    let at = (j * n + k) * b * 3;
                    close(
                        &tv[at..at + b * 3],
                        &own_t[j * b * 3..(j + 1) * b * 3],
                        1e-5,
                    );
                }
            }
        }
    }
}
