//! `metrics.json`: its field names are a public contract (other tools read them).

use serde::{Deserialize, Serialize};

/// Reading back numbers that were not finite: JSON has no NaN or infinity, so
/// [`to_json`] writes them as `null`; these read `null` as NaN instead of failing (which
/// would drop the whole file) or of forgetting the field.
pub mod nullable {
    use serde::{Deserialize, Deserializer};

    pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }

    /// For optional fields (absent = `None` through `#[serde(default)]`): present but
    /// `null` is a number that was not finite.
    pub fn opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(Some(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN)))
    }
}

/// The key that lists, in `metrics.json`, the fields written as `null`.
pub const NON_FINITE: &str = "non_finite";

/// `metrics.json` text of any metrics struct. A number that is not finite (a phase that
/// never finished, a diverged loss) is written as `null` and its name listed under
/// [`NON_FINITE`], so a reader can tell "NaN or infinite" from "not measured" (absent).
pub fn to_json(m: &impl Serialize) -> String {
    // Serialised directly (not through a Value, whose map sorts the keys) to keep the
    // struct's field order in the file.
    let text = serde_json::to_string_pretty(m).expect("metrics serialise");
    let v = serde_json::to_value(m).expect("metrics serialise");
    let nulls: Vec<&String> = v
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, x)| x.is_null())
        .map(|(k, _)| k)
        .collect();
    match text.strip_suffix("\n}") {
        Some(head) if !nulls.is_empty() => {
            let list = serde_json::to_string(&nulls).expect("names serialise");
            format!("{head},\n  \"{NON_FINITE}\": {list}\n}}")
        }
        _ => text,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub backend: String,
    #[serde(deserialize_with = "nullable::f64")]
    pub seconds_score: f64,
    #[serde(deserialize_with = "nullable::f64")]
    pub seconds_flow: f64,
    #[serde(deserialize_with = "nullable::f64")]
    pub score_loss_final: f64,
    #[serde(deserialize_with = "nullable::f64")]
    pub flow_loss_final: f64,
    /// MMD² between data states at t = 0 and after the RK4 run, per field.
    #[serde(deserialize_with = "nullable::f64")]
    pub mmd2_learned: f64,
    #[serde(deserialize_with = "nullable::f64")]
    pub mmd2_random: f64,
    #[serde(deserialize_with = "nullable::f64")]
    pub mmd2_score: f64,
    #[serde(deserialize_with = "nullable::f64")]
    pub mmd2_training_free: f64,
    /// The same by the paper's protocol (`eval.protocol`): 256 data states, 100 RK4 steps of
    /// dt 0.1 (its mean ± sd is over models: `equiflow sweep`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub mmd2_learned_ref: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub mmd2_random_ref: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub mmd2_score_ref: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub mmd2_training_free_ref: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub tangential_ratio: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub lyapunov_mean: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub lyapunov_positive_fraction: Option<f64>,
    /// Lorenz, the paper's protocol (`eval.protocol`): 64 bounded trajectories, RK4 dt 0.1,
    /// 5000 steps, the separation renormalised after each window of 2500 steps; the exponents'
    /// mean, range over trajectories and positive share, and the mean divided by the mean speed.
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub lyapunov_mean_ref: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub lyapunov_min_ref: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub lyapunov_max_ref: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub lyapunov_positive_fraction_ref: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub lyapunov_per_speed_ref: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_learned: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_training_free: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_random: Option<f64>,
    /// The random baseline over `train::evaluate::RANDOM_DRAWS` untrained flows (draw 0 is
    /// `cos_truth_random`): a learned flow means something when it lies beyond mean + 2 sd.
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_random_mean: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "nullable::opt"
    )]
    pub cos_truth_random_sd: Option<f64>,
    /// Metrics left out for these data, each with the reason.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty", default)]
    pub not_measured: std::collections::BTreeMap<String, String>,
    /// Set when the run was stopped (Ctrl-C, a cancel, a non-finite loss) before its metrics
    /// were all computed: why, and that the fields present are all there is.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub interrupted: Option<String>,
}

impl Metrics {
    /// Human-readable lines, one metric each.
    pub fn lines(&self) -> Vec<String> {
        lines(self)
    }
}

/// A metrics struct that can say its run stopped early (written as it is, partial).
pub trait Partial: Serialize {
    fn set_interrupted(&mut self, why: String);
}

impl Partial for Metrics {
    fn set_interrupted(&mut self, why: String) {
        self.interrupted = Some(why);
    }
}

/// Human-readable lines of any metrics struct, one field each.
pub fn lines(m: &impl Serialize) -> Vec<String> {
    let v = serde_json::to_value(m).expect("metrics serialise");
    v.as_object()
        .expect("metrics are an object")
        .iter()
        .map(|(k, v)| match v.as_f64() {
            _ if v.is_null() => format!("{k:<28} not finite (NaN or infinite)"),
            Some(x) if x.abs() >= 1e5 => format!("{k:<28} {x:.4e}"),
            Some(x) => format!("{k:<28} {x:.6}"),
            None => match v.as_object() {
                Some(o) => o
                    .iter()
                    .map(|(name, why)| {
                        format!("{name:<28} not measured: {}", why.as_str().unwrap_or(""))
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                None => format!("{k:<28} {}", v.as_str().unwrap_or(&v.to_string())),
            },
        })
        .collect()
}

/// MMD² between the data and the data carried `points[k][0]` RK4 steps by one field.
#[derive(Debug, Clone, PartialEq)]
pub struct MmdCurve {
    pub field: &'static str,
    pub points: Vec<[f64; 2]>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_numbers_are_written_as_null_named_and_read_back_as_nan() {
        let m = Metrics {
            backend: "cpu".into(),
            score_loss_final: f64::NAN,
            mmd2_learned: f64::INFINITY,
            mmd2_random: 0.5,
            cos_truth_learned: Some(f64::NAN),
            interrupted: Some("cancelled during the flow phase".into()),
            ..Default::default()
        };
        let text = to_json(&m);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["score_loss_final"].is_null() && v["cos_truth_learned"].is_null());
        let listed: Vec<&str> = v[NON_FINITE]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert_eq!(
            listed,
            ["cos_truth_learned", "mmd2_learned", "score_loss_final"]
        );
        let back: Metrics = serde_json::from_str(&text).expect("a file with nulls reads back");
        assert!(back.score_loss_final.is_nan() && back.mmd2_learned.is_nan());
        assert!(back.cos_truth_learned.is_some_and(f64::is_nan));
        assert_eq!(back.mmd2_random, 0.5);
        assert_eq!(back.cos_truth_random, None, "absent stays absent");
        assert_eq!(back.interrupted, m.interrupted);
        assert!(lines(&m).iter().any(|l| l.contains("not finite")));
    }
}
