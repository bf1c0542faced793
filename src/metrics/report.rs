//! `metrics.json`: its field names are a public contract (other tools read them).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub backend: String,
    pub seconds_score: f64,
    pub seconds_flow: f64,
    pub score_loss_final: f64,
    pub flow_loss_final: f64,
    /// MMD² between data states at t = 0 and after the RK4 run, per field.
    pub mmd2_learned: f64,
    pub mmd2_random: f64,
    pub mmd2_score: f64,
    pub mmd2_training_free: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tangential_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lyapunov_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lyapunov_positive_fraction: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cos_truth_learned: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cos_truth_training_free: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cos_truth_random: Option<f64>,
}

impl Metrics {
    /// Human-readable lines, one metric each.
    pub fn lines(&self) -> Vec<String> {
        lines(self)
    }
}

/// Human-readable lines of any metrics struct, one field each.
pub fn lines(m: &impl Serialize) -> Vec<String> {
    let v = serde_json::to_value(m).expect("metrics serialise");
    v.as_object()
        .expect("metrics are an object")
        .iter()
        .map(|(k, v)| match v.as_f64() {
            Some(x) if x.abs() >= 1e5 => format!("{k:<28} {x:.4e}"),
            Some(x) => format!("{k:<28} {x:.6}"),
            None => format!("{k:<28} {}", v.as_str().unwrap_or(&v.to_string())),
        })
        .collect()
}

/// MMD² between the data and the data carried `points[k][0]` RK4 steps by one field.
#[derive(Debug, Clone, PartialEq)]
pub struct MmdCurve {
    pub field: &'static str,
    pub points: Vec<[f64; 2]>,
}
