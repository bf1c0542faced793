//! The metrics of METHOD §7 for a trained score model and flow.
//!
//! Fields compared: the learned flow; an untrained flow of the same architecture (its output
//! norm calibrated on the data, so it too has unit variance); the score field itself; and the
//! training-free flow D s. The score and training-free fields are rescaled to the learned
//! flow's mean speed (mean |v|² = dim on the data), so MMD² compares where the fields carry
//! the distribution, not how fast they happen to be.

use super::job::{Observer, Phase, Progress, flow_config};
use crate::backend::Backend;
use crate::data::Dataset;
use crate::method::diffusion::{self, Schedule};
use crate::method::skew;
use crate::metrics::alignment::{abs_cosine, tangential_ratio};
use crate::metrics::consistency::Stats;
use crate::metrics::lyapunov::{LyapunovConfig, largest_exponent};
use crate::metrics::mmd::mmd2_rbf;
use crate::metrics::report::{Metrics, MmdCurve};
use crate::nn::batchnorm::BnMode;
use crate::nn::flow_host::running_field;
use crate::nn::flow_mlp::FlowMlp;
use crate::nn::score_mlp::ScoreMlp;
use crate::preset::{DatasetKind, Preset};
use crate::sim::ode::integrate;
use crate::tensor_util::{from_rows, to_vec};
use burn::tensor::{Device, Tensor};

type Field<'a> = Box<dyn Fn(Tensor<2>) -> Tensor<2> + 'a>;

/// Data states of the paper's MMD protocol.
const REF_MMD_STATES: usize = 256;

/// Untrained flows drawn for the random baseline of "|cos| to the truth" (mean ± sd).
pub const RANDOM_DRAWS: usize = 10;

/// An untrained flow with the preset's architecture, seeded, its norm calibrated on `points`.
pub fn random_flow(preset: &Preset, dim: usize, points: &[f32], device: &Device) -> FlowMlp {
    random_flow_draw(preset, dim, points, device, 0)
}

/// Draw `k` of the untrained flows ([`random_flow`] is draw 0).
pub fn random_flow_draw(
    preset: &Preset,
    dim: usize,
    points: &[f32],
    device: &Device,
    k: u64,
) -> FlowMlp {
    let seed = preset
        .seed
        .wrapping_add(0x9E37)
        .wrapping_add(k.wrapping_mul(0x2545_F491));
    let net =
        crate::tensor_util::init_seeded(|| flow_config(preset, dim).init(device), seed, device);
    let out = net.forward_jvp(from_rows(points, dim, device), None, BnMode::Batch);
    let (mean, var) = out.batch_stats.expect("batch mode returns statistics");
    FlowMlp {
        bn: net.bn.with_stats(mean, var),
        ..net
    }
}

/// `field` scaled so that mean |v|² over `points` equals `dim`.
fn speed_matched<'a>(field: Field<'a>, points: &[f32], dim: usize, device: &Device) -> Field<'a> {
    let v = to_vec(field(from_rows(points, dim, device)));
    let ms = v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / (points.len() / dim) as f64;
    let c = if ms > 0.0 && ms.is_finite() {
        (dim as f64 / ms).sqrt()
    } else {
        1.0
    };
    Box::new(move |x| field(x).mul_scalar(c))
}

/// `flow` is `None` for a run stopped before its flow trained: the learned-flow metrics are
/// then NaN or absent, the others measured as usual.
pub fn evaluate(
    preset: &Preset,
    data: &Dataset,
    score: &ScoreMlp,
    flow: Option<&FlowMlp>,
    backend: &Backend,
    obs: &mut dyn Observer,
) -> Metrics {
    let every = preset.eval.rk4_steps;
    evaluate_with_curves(preset, data, score, flow, backend, every, obs).0
}

/// [`evaluate`], also recording MMD² every `every` RK4 steps for each field (the app's
/// "MMD² over time" plot; the last point of each curve is the metric).
pub fn evaluate_with_curves(
    preset: &Preset,
    data: &Dataset,
    score: &ScoreMlp,
    flow: Option<&FlowMlp>,
    backend: &Backend,
    every: usize,
    obs: &mut dyn Observer,
) -> (Metrics, Vec<MmdCurve>) {
    let every = every.max(1);
    let device = &backend.device;
    let dim = data.dim;
    let e = &preset.eval;
    let sched = Schedule::cosine(preset.score.diffusion_steps);
    let tau = preset.score.tau_step;
    let x0 = data.spread(e.mmd_points);
    let random = random_flow(preset, dim, &x0, device);
    let d_matrix = skew::random_antisymmetric(dim, preset.seed);

    let learned: Option<Field> = flow.map(running_field);
    let random_field: Field = running_field(&random);
    let score_field = speed_matched(
        Box::new(|x| diffusion::score(score, x, &sched, tau)),
        &x0,
        dim,
        device,
    );
    let training_free = speed_matched(
        Box::new(|x| {
            skew::apply(
                &d_matrix,
                diffusion::score(score, x.clone(), &sched, tau),
                &x.device(),
            )
        }),
        &x0,
        dim,
        device,
    );

    let chaos = matches!(data.kind, DatasetKind::Lorenz | DatasetKind::File);
    let has_truth = data.velocity.is_some();
    let total = 3 + usize::from(learned.is_some()) + usize::from(chaos) + usize::from(has_truth);
    let mut step = 0;
    let mut tick = |obs: &mut dyn Observer| {
        step += 1;
        obs.progress(&Progress {
            phase: Phase::Metrics,
            done: step,
            total,
            loss: None,
        });
    };
    let mut curves = Vec::new();
    let mut mmd = |name: &'static str, field: &Field| {
        let mut x = from_rows(&x0, dim, device);
        let mut points = vec![[0.0, 0.0]];
        let mut done = 0;
        while done < e.rk4_steps {
            let n = every.min(e.rk4_steps - done);
            x = integrate(field, x, e.dt, n);
            done += n;
            points.push([
                done as f64,
                mmd2_rbf(&x0, &to_vec(x.clone()), dim, e.mmd_sigma),
            ]);
        }
        let last = points.last().map_or(f64::NAN, |p| p[1]);
        curves.push(MmdCurve {
            field: name,
            points,
        });
        last
    };
    let mut m = Metrics {
        backend: backend.kind.to_string(),
        ..Default::default()
    };
    // A cancelled evaluation stops between fields; what is not computed stays NaN.
    let named: [(&'static str, Option<&Field>); 4] = [
        ("learned", learned.as_ref()),
        ("random", Some(&random_field)),
        ("score", Some(&score_field)),
        ("training-free", Some(&training_free)),
    ];
    let mut values = [f64::NAN; 4];
    for (value, (name, field)) in values.iter_mut().zip(named) {
        let Some(field) = field else { continue };
        if obs.cancelled() {
            break;
        }
        *value = mmd(name, field);
        tick(obs);
    }
    [
        m.mmd2_learned,
        m.mmd2_random,
        m.mmd2_score,
        m.mmd2_training_free,
    ] = values;
    if obs.cancelled() {
        return (m, curves);
    }
    if e.protocol.reference() {
        // The paper's MMD protocol: 256 data states, 100 RK4 steps of dt 0.1.
        let x_ref = data.spread(REF_MMD_STATES);
        let mmd_ref = |field: &Field| {
            let x = integrate(field, from_rows(&x_ref, dim, device), 0.1, 100);
            mmd2_rbf(&x_ref, &to_vec(x), dim, e.mmd_sigma)
        };
        m.mmd2_learned_ref = learned.as_ref().map(mmd_ref);
        m.mmd2_random_ref = Some(mmd_ref(&random_field));
        m.mmd2_score_ref = Some(mmd_ref(&score_field));
        m.mmd2_training_free_ref = Some(mmd_ref(&training_free));
    }

    let ring = data.kind == DatasetKind::Ring;
    let file_2d = data.kind == DatasetKind::File && dim == 2;
    if let Some(learned) = learned.as_ref().filter(|_| ring || file_2d) {
        // About the data's centre (the ring's is the origin).
        let centre = if ring {
            vec![0.0; 2]
        } else {
            mean_state(&x0, dim)
        };
        let centred: Vec<f32> = x0
            .chunks(dim)
            .flat_map(|p| [p[0] - centre[0], p[1] - centre[1]])
            .collect();
        let v = to_vec(learned(from_rows(&x0, dim, device)));
        m.tangential_ratio = Some(tangential_ratio(&centred, &v));
    }
    if data.kind == DatasetKind::File && dim > 2 {
        m.not_measured.insert(
            "tangential_ratio".into(),
            format!(
                "defined for 2-D data only (the share of the flow along circles about the \
                 data's centre); these data have {dim} dimensions"
            ),
        );
    }
    if chaos {
        // Lorenz: the paper's bound (standardised units). A file: trajectories that leave
        // 1.5 times the farthest snapshot's distance from the origin have escaped.
        let bound = if data.kind == DatasetKind::Lorenz {
            4.0
        } else {
            1.5 * data
                .points
                .chunks(dim)
                .map(|p| p.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt())
                .fold(0.0, f64::max)
        };
        let cfg = LyapunovConfig {
            dt: e.dt,
            steps: e.lyapunov_steps,
            window: e.lyapunov_window,
            keep: e.lyapunov_keep,
            bound,
            delta: 1e-5,
        };
        if let Some(learned) = &learned {
            let starts = data.spread(e.lyapunov_candidates);
            if e.protocol.ours() {
                let l = largest_exponent(learned, &starts, dim, &cfg, device);
                m.lyapunov_mean = Some(l.mean);
                m.lyapunov_positive_fraction = Some(l.positive_fraction);
            }
            if e.protocol.reference() && !obs.cancelled() {
                let reference = LyapunovConfig {
                    bound,
                    ..LyapunovConfig::REFERENCE
                };
                let l = largest_exponent(learned, &starts, dim, &reference, device);
                m.lyapunov_mean_ref = Some(l.mean);
                m.lyapunov_min_ref = Some(l.min());
                m.lyapunov_max_ref = Some(l.max());
                m.lyapunov_positive_fraction_ref = Some(l.positive_fraction);
                m.lyapunov_per_speed_ref = Some(l.mean / l.mean_speed);
            }
            tick(obs);
        }
    }
    if let Some(truth) = data.spread_truth(e.cos_points).filter(|_| !obs.cancelled()) {
        let pts = data.spread(e.cos_points);
        let cos = |f: &Field| abs_cosine(&to_vec(f(from_rows(&pts, dim, device))), &truth);
        m.cos_truth_learned = learned.as_ref().map(cos);
        m.cos_truth_training_free = Some(cos(&training_free));
        m.cos_truth_random = Some(cos(&random_field));
        // Draw 0 is the random flow above; the others only for this baseline.
        let draws: Vec<f64> = (0..RANDOM_DRAWS as u64)
            .map(|k| match k {
                0 => m.cos_truth_random.unwrap_or(f64::NAN),
                _ => cos(&running_field(&random_flow_draw(
                    preset, dim, &x0, device, k,
                ))),
            })
            .collect();
        let stats = Stats::of(&draws).expect("RANDOM_DRAWS is above 0");
        m.cos_truth_random_mean = Some(stats.mean);
        m.cos_truth_random_sd = Some(stats.sd);
        tick(obs);
    }
    (m, curves)
}

/// The mean state of row-major `points`.
fn mean_state(points: &[f32], dim: usize) -> Vec<f32> {
    let n = (points.len() / dim).max(1) as f64;
    (0..dim)
        .map(|a| {
            (points
                .iter()
                .skip(a)
                .step_by(dim)
                .map(|&x| x as f64)
                .sum::<f64>()
                / n) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::score_mlp;

    /// Asks to cancel once `.0` metric steps have reported.
    struct CancelAfterTicks(usize, usize);
    impl Observer for CancelAfterTicks {
        fn progress(&mut self, _p: &Progress) {
            self.1 += 1;
        }
        fn cancelled(&self) -> bool {
            self.1 >= self.0
        }
    }

    #[test]
    fn curves_end_at_the_metric_and_a_cancelled_evaluation_stops_between_fields() {
        let sets = ["eval.mmd_points=100".to_string(), "eval.rk4_steps=4".into()];
        let preset = Preset::load("ring", true, &sets).unwrap();
        let _rng = crate::tensor_util::rng_lock();
        let backend = Backend::cpu();
        let data = Dataset::generate(&preset.dataset, 0).unwrap();
        let score = score_mlp::init(2, 16, preset.score.prediction, &backend.device);
        let flow = flow_config(&preset, 2).init(&backend.device);
        let mut obs = CancelAfterTicks(2, 0);
        let (m, curves) =
            evaluate_with_curves(&preset, &data, &score, Some(&flow), &backend, 2, &mut obs);
        assert!(m.mmd2_learned.is_finite() && m.mmd2_random.is_finite());
        assert!(m.mmd2_score.is_nan() && m.mmd2_training_free.is_nan());
        assert!(m.tangential_ratio.is_none(), "skipped after the cancel");
        assert_eq!(curves.len(), 2);
        let steps: Vec<f64> = curves[0].points.iter().map(|p| p[0]).collect();
        assert_eq!(steps, vec![0.0, 2.0, 4.0]);
        assert_eq!(curves[0].points[2][1], m.mmd2_learned);
    }
}
