//! The equilibrium loss (METHOD §1, §3): a stationary density p obeys div(p v) = 0, i.e.
//! r(x) = div v(x) + v(x)·s(x) = 0 with s the score. We minimise mean r² over noised data.
//!
//! The divergence comes from forward-mode Jacobian-vector products (see `nn::jvp`):
//! - `Exact`: one JVP per basis vector gives the whole Jacobian J, so div v = tr J with no
//!   variance. We add an explicit λ‖sym J‖²_F, sym J = (J + Jᵀ)/2.
//! - `Hutchinson`: k Gaussian probes z, div v ≈ mean z·Jz. Squaring one estimate is biased:
//!   E[(est + v·s)²] = r² + (2/k)‖sym J‖²_F. That hidden term penalises the symmetric
//!   (stretching) part of J and so favours rotation-like, circulating flows; the reference
//!   relies on it. `Exact` with λ = 2/k optimises the same objective without the noise.
//!   With `unbiased`, two independent estimates are multiplied, E[r1·r2] = r², no penalty.

use crate::nn::batchnorm::BnMode;
use crate::nn::flow_mlp::FlowMlp;
use crate::nn::flow_nca::Nca;
use crate::nn::flow_stack::FlowStack;
use crate::preset::{Estimator, FlowSettings};
use crate::tensor_util::normal;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossConfig {
    /// `Exact` or `Hutchinson` (never `Auto`: resolve it with the data dimension first).
    pub estimator: Estimator,
    pub probes: usize,
    pub unbiased: bool,
    pub sym_penalty: f64,
}

impl LossConfig {
    pub fn from_settings(s: &FlowSettings, dim: usize) -> Self {
        Self {
            estimator: s.resolved_estimator(dim),
            probes: s.probes,
            unbiased: s.unbiased,
            sym_penalty: s.sym_penalty,
        }
    }
}

pub struct LossOutput {
    /// What the optimiser minimises.
    pub loss: Tensor<1>,
    /// Batch statistics of the output norm, to fold into the running ones.
    pub batch_stats: Option<(Tensor<1>, Tensor<1>)>,
}

/// Tangents e_j for every point: `[d, B, d]` with slice j holding the j-th basis vector.
pub fn basis_tangents(b: usize, d: usize, device: &Device) -> Tensor<3> {
    let mut data = vec![0f32; d * b * d];
    for j in 0..d {
        for p in 0..b {
            data[(j * b + p) * d + j] = 1.0;
        }
    }
    Tensor::from_data(TensorData::new(data, [d, b, d]), device)
}

/// tr J per point from the columns `cols[j, p, i] = ∂v_i/∂x_j` (JVPs along the basis).
pub fn divergence_from_columns(cols: Tensor<3>) -> Tensor<1> {
    let [d, b, _] = cols.dims();
    let mask = basis_tangents(b, d, &cols.device());
    (cols * mask).sum_dim(0).sum_dim(2).reshape([b])
}

/// ‖(J + Jᵀ)/2‖²_F per point from the Jacobian columns.
pub fn sym_sq_from_columns(cols: Tensor<3>) -> Tensor<1> {
    let [_, b, _] = cols.dims();
    let sym = (cols.clone() + cols.swap_dims(0, 2)).mul_scalar(0.5);
    sym.square().sum_dim(0).sum_dim(2).reshape([b])
}

/// Hutchinson's estimate mean_j z_j·(J z_j) per point, from probes `z` and products `jz`.
pub fn hutchinson_from(z: Tensor<3>, jz: Tensor<3>) -> Tensor<1> {
    let [_, b, _] = z.dims();
    (z * jz).sum_dim(2).mean_dim(0).reshape([b])
}

/// The loss at states `x` with scores `s` (both `[B, d]`).
pub fn equilibrium_loss(
    model: &FlowMlp,
    x: Tensor<2>,
    s: Tensor<2>,
    cfg: &LossConfig,
    mode: BnMode,
    rng: &mut StdRng,
) -> LossOutput {
    let device = x.device();
    let [b, d] = x.dims();
    match cfg.estimator {
        Estimator::Hutchinson => {
            let k = cfg.probes;
            let sets = if cfg.unbiased { 2 } else { 1 };
            let z = normal([sets * k, b, d], rng, &device);
            let out = model.forward_jvp(x, Some(z.clone()), mode);
            let jz = out.tangents.expect("tangents were pushed");
            let vs = (out.v * s).sum_dim(1).reshape([b]);
            let r1 =
                hutchinson_from(z.clone().narrow(0, 0, k), jz.clone().narrow(0, 0, k)) + vs.clone();
            let loss = if cfg.unbiased {
                let r2 = hutchinson_from(z.narrow(0, k, k), jz.narrow(0, k, k)) + vs;
                (r1 * r2).mean()
            } else {
                r1.square().mean()
            };
            LossOutput {
                loss,
                batch_stats: out.batch_stats,
            }
        }
        _ => {
            let basis = basis_tangents(b, d, &device);
            let out = model.forward_jvp(x, Some(basis), mode);
            let cols = out.tangents.expect("tangents were pushed");
            let vs = (out.v * s).sum_dim(1).reshape([b]);
            let r = divergence_from_columns(cols.clone()) + vs;
            let mut loss = r.square().mean();
            if cfg.sym_penalty > 0.0 {
                loss = loss + sym_sq_from_columns(cols).mean().mul_scalar(cfg.sym_penalty);
            }
            LossOutput {
                loss,
                batch_stats: out.batch_stats,
            }
        }
    }
}

/// [`equilibrium_loss`] for every model of a stack at once: states `x` and scores `s`
/// `[N, B, d]` (model k's batch in slice k) and, for Hutchinson, the probes `z`
/// `[sets·k, N, B, d]` each model drew. Each model's own loss, `[N]`: their sum has each
/// model's gradient in its own weights.
pub fn stack_equilibrium_loss(
    model: &FlowStack,
    x: Tensor<3>,
    s: Tensor<3>,
    z: Option<Tensor<4>>,
    cfg: &LossConfig,
    mode: BnMode,
) -> (Tensor<1>, Option<(Tensor<2>, Tensor<2>)>) {
    let device = x.device();
    let [n, b, d] = x.dims();
    let per_point = |t: Tensor<4>| t.reshape([n, b]);
    let mean_over_points = |t: Tensor<2>| t.mean_dim(1).reshape([n]);
    match cfg.estimator {
        Estimator::Hutchinson => {
            let z = z.expect("Hutchinson needs probes");
            let k = cfg.probes;
            let out = model.forward_jvp(x, Some(z.clone()), mode);
            let jz = out.tangents.expect("tangents were pushed");
            let vs = (out.v * s).sum_dim(2).reshape([n, b]);
            let est = |z: Tensor<4>, jz: Tensor<4>| per_point((z * jz).sum_dim(3).mean_dim(0));
            let r1 = est(z.clone().narrow(0, 0, k), jz.clone().narrow(0, 0, k)) + vs.clone();
            let loss = if cfg.unbiased {
                let r2 = est(z.narrow(0, k, k), jz.narrow(0, k, k)) + vs;
                mean_over_points(r1 * r2)
            } else {
                mean_over_points(r1.square())
            };
            (loss, out.batch_stats)
        }
        _ => {
            let basis = basis_tangents(n * b, d, &device).reshape([d, n, b, d]);
            let out = model.forward_jvp(x, Some(basis.clone()), mode);
            let cols = out.tangents.expect("tangents were pushed");
            let vs = (out.v * s).sum_dim(2).reshape([n, b]);
            let div = per_point((cols.clone() * basis).sum_dim(0).sum_dim(3));
            let mut loss = mean_over_points((div + vs).square());
            if cfg.sym_penalty > 0.0 {
                let sym = (cols.clone() + cols.swap_dims(0, 3)).mul_scalar(0.5);
                let sq = per_point(sym.square().sum_dim(0).sum_dim(3));
                loss = loss + mean_over_points(sq).mul_scalar(cfg.sym_penalty);
            }
            (loss, out.batch_stats)
        }
    }
}

/// The image loss (METHOD §3, images): each image is one point of dimension c·H·W, so
/// r = div v + v·s sums over all its pixels. Hutchinson probes `z` `[2k, B, c, H, W]` with
/// their products `jz`; with `unbiased` the first k and the last k give two independent
/// estimates r1, r2 and the loss is mean(r1·r2) / mean |v|² (else mean(r²) of one estimate
/// over all 2k probes). Dividing by the mean squared norm of v per image makes the loss blind
/// to v's scale, so shrinking v towards 0 cannot lower it.
pub fn image_residual_loss(
    v: Tensor<4>,
    s: Tensor<4>,
    z: Tensor<5>,
    jz: Tensor<5>,
    unbiased: bool,
) -> Tensor<1> {
    let [b, ..] = v.dims();
    let m = z.dims()[0];
    let per_image = |t: Tensor<4>| t.reshape([b as i32, -1]).sum_dim(1).reshape([b]);
    let vs = per_image(v.clone() * s);
    let v2 = per_image(v.square()).mean();
    let est = (z * jz)
        .reshape([m as i32, b as i32, -1])
        .sum_dim(2)
        .reshape([m, b]);
    let num = if unbiased {
        let k = m / 2;
        let r1 = est.clone().narrow(0, 0, k).mean_dim(0).reshape([b]) + vs.clone();
        let r2 = est.narrow(0, k, k).mean_dim(0).reshape([b]) + vs;
        (r1 * r2).mean()
    } else {
        (est.mean_dim(0).reshape([b]) + vs).square().mean()
    };
    num / v2
}

/// The image loss of the NCA at noised images `x` with scores `s`, drawing `2·probes`
/// Gaussian probes (`unbiased`) or `probes`.
pub fn nca_equilibrium_loss(
    model: &Nca,
    x: Tensor<4>,
    s: Tensor<4>,
    probes: usize,
    unbiased: bool,
    mode: BnMode,
    rng: &mut StdRng,
) -> (Tensor<1>, Vec<(Tensor<1>, Tensor<1>)>) {
    let [b, c, h, w] = x.dims();
    let m = if unbiased { 2 * probes } else { probes };
    let z = normal([m, b, c, h, w], rng, &x.device());
    let out = model.forward_jvp(x, Some(z.clone()), mode);
    let jz = out.tangents.expect("tangents were pushed");
    let loss = image_residual_loss(out.v, s, z, jz, unbiased);
    (loss, out.batch_stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::jvp;
    use crate::tensor_util::{from_rows, to_vec};
    use burn::tensor::Distribution;

    fn linear_field_columns(a: &[f32], d: usize, b: usize, device: &Device) -> Tensor<3> {
        // v(x) = A x ⇒ the JVP along t is A t; with row vectors that is t Aᵀ.
        let at = from_rows(a, d, device).transpose();
        jvp::linear(basis_tangents(b, d, device), at)
    }

    #[test]
    fn exact_divergence_of_linear_fields_is_the_trace() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let a = [0.5f32, 2.0, -1.0, -3.0, 1.5, 0.25, 4.0, 0.0, 2.0];
        let div = to_vec(divergence_from_columns(linear_field_columns(
            &a, 3, 5, &device,
        )));
        for v in div {
            assert!((v - 4.0).abs() < 1e-5, "{v}");
        }
        // A rotation has zero divergence and zero symmetric part.
        let rot = [0.0f32, -1.0, 1.0, 0.0];
        let cols = linear_field_columns(&rot, 2, 4, &device);
        assert!(
            to_vec(divergence_from_columns(cols.clone()))
                .iter()
                .all(|v| v.abs() < 1e-6)
        );
        assert!(
            to_vec(sym_sq_from_columns(cols))
                .iter()
                .all(|v| v.abs() < 1e-6)
        );
        // ‖sym A‖² for A = [[1, 2], [0, 3]]: sym = [[1, 1], [1, 3]] → 12.
        let cols = linear_field_columns(&[1.0, 2.0, 0.0, 3.0], 2, 3, &device);
        assert!(
            to_vec(sym_sq_from_columns(cols))
                .iter()
                .all(|v| (v - 12.0).abs() < 1e-5)
        );
    }

    #[test]
    fn hutchinson_mean_converges_to_the_trace() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        device.seed(11);
        let a = [0.5f32, 2.0, -1.0, -3.0, 1.5, 0.25, 4.0, 0.0, 2.0];
        let at = from_rows(&a, 3, &device).transpose();
        let mut errors = Vec::new();
        for k in [4usize, 64, 1024] {
            let z = Tensor::<3>::random([k, 256, 3], Distribution::Normal(0.0, 1.0), &device);
            let jz = jvp::linear(z.clone(), at.clone());
            let est = to_vec(hutchinson_from(z, jz));
            let rms =
                (est.iter().map(|e| (e - 4.0).powi(2)).sum::<f32>() / est.len() as f32).sqrt();
            errors.push(rms);
        }
        assert!(errors[0] > errors[1] && errors[1] > errors[2], "{errors:?}");
        assert!(errors[2] < 0.3, "{errors:?}");
    }

    /// The claim the docs make: a squared Hutchinson-k estimate optimises
    /// r² + (2/k)‖sym J‖²_F in expectation (= `exact` with λ = 2/k), and the product of two
    /// independent estimates optimises r² itself (= `exact` with λ = 0).
    #[test]
    fn hutchinson_expectations_match_exact_with_and_without_penalty() {
        use crate::nn::flow_mlp::FlowMlpConfig;
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        device.seed(21);
        let net = FlowMlpConfig {
            dim: 2,
            hidden: 16,
            freqs: 2,
            bn_momentum: 0.1,
        }
        .init(&device);
        let b = 256;
        let x = Tensor::<2>::random([b, 2], Distribution::Normal(0.0, 1.0), &device);
        let s = Tensor::<2>::random([b, 2], Distribution::Normal(0.0, 1.0), &device);
        let k = 2;
        let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(21);
        let mut loss = |estimator, unbiased, sym_penalty| {
            let cfg = LossConfig {
                estimator,
                probes: k,
                unbiased,
                sym_penalty,
            };
            let out = equilibrium_loss(&net, x.clone(), s.clone(), &cfg, BnMode::Running, &mut rng);
            crate::tensor_util::scalar(out.loss)
        };
        let plain = loss(Estimator::Exact, false, 0.0);
        let penalised = loss(Estimator::Exact, false, 2.0 / k as f64);
        assert!(
            penalised > plain * 1.05,
            "the penalty must matter here: {plain} {penalised}"
        );
        let draws = 300;
        let mut mean = |unbiased| {
            (0..draws)
                .map(|_| loss(Estimator::Hutchinson, unbiased, 0.0))
                .sum::<f64>()
                / draws as f64
        };
        let (biased, unbiased) = (mean(false), mean(true));
        assert!(
            (biased - penalised).abs() < 0.05 * penalised,
            "{biased} vs {penalised}"
        );
        assert!(
            (unbiased - plain).abs() < 0.05 * penalised,
            "{unbiased} vs {plain}"
        );
    }

    /// On a linear image field v = W * x (a 3×3 convolution, circular) the divergence is
    /// known exactly: H·W·Σ_c W[c][c](centre). The unbiased loss averaged over many probe
    /// draws equals mean(r²)/mean|v|² with that divergence; the biased one is larger.
    #[test]
    fn the_unbiased_image_loss_has_the_right_expectation_on_a_linear_field() {
        use crate::nn::circular::pad_circular;
        use burn::tensor::module::conv2d;
        use burn::tensor::ops::ConvOptions;
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        device.seed(17);
        let (b, c, h, w) = (3usize, 2usize, 6usize, 5usize);
        let kernel = Tensor::<4>::random([c, c, 3, 3], Distribution::Normal(0.0, 0.5), &device);
        let centre: f32 = to_vec(kernel.clone())
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                let (o, ci, cell) = (i / (c * 9), (i / 9) % c, i % 9);
                o == ci && cell == 4
            })
            .map(|(_, v)| *v)
            .sum();
        let div = (h * w) as f32 * centre;
        let apply = |t: Tensor<4>| {
            let opts = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
            conv2d(pad_circular(t, 1), kernel.clone(), None, opts)
        };
        let x = Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        let s = Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        let v = apply(x);
        let vs: Vec<f32> = to_vec((v.clone() * s.clone()).reshape([b, c * h * w]).sum_dim(1));
        let v2: f32 = to_vec(v.clone().square().reshape([b, c * h * w]).sum_dim(1))
            .iter()
            .sum::<f32>()
            / b as f32;
        let exact = vs.iter().map(|q| (div + q).powi(2)).sum::<f32>() / b as f32 / v2;
        let k = 2;
        let draw = |unbiased: bool| {
            let m = if unbiased { 2 * k } else { k };
            let z = Tensor::<5>::random([m, b, c, h, w], Distribution::Normal(0.0, 1.0), &device);
            let jz = apply(z.clone().reshape([m * b, c, h, w])).reshape([m, b, c, h, w]);
            crate::tensor_util::scalar(image_residual_loss(v.clone(), s.clone(), z, jz, unbiased))
        };
        let draws = 20000;
        let mean = |unbiased| (0..draws).map(|_| draw(unbiased)).sum::<f64>() / draws as f64;
        let (unbiased, biased) = (mean(true), mean(false));
        let exact = exact as f64;
        assert!(
            (unbiased - exact).abs() < 0.05 * exact,
            "unbiased {unbiased} vs exact {exact}"
        );
        // One squared estimate carries its variance (2/k)‖sym J‖²_F, with
        // ‖sym J‖²_F = (‖J‖²_F + ⟨J, Jᵀ⟩)/2 = H·W·(Σ W² + Σ W[o][i](d)·W[i][o](−d))/2.
        let wk = to_vec(kernel.clone());
        let at = |o: usize, i: usize, cell: usize| wk[(o * c + i) * 9 + cell];
        let (mut sq, mut cross) = (0f64, 0f64);
        for o in 0..c {
            for i in 0..c {
                for cell in 0..9 {
                    sq += (at(o, i, cell) as f64).powi(2);
                    cross += (at(o, i, cell) * at(i, o, 8 - cell)) as f64;
                }
            }
        }
        let sym = (h * w) as f64 * (sq + cross) / 2.0;
        let bias = 2.0 / k as f64 * sym / v2 as f64;
        assert!(
            ((biased - unbiased) - bias).abs() < 0.15 * bias,
            "biased − unbiased = {} vs (2/k)‖sym J‖²/|v|² = {bias}",
            biased - unbiased
        );
    }
}
