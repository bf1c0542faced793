//! Many models of one system, and what they agree on (the paper's central question: are the
//! flows the snapshots allow one solution or many?).
//!
//! A sweep (`equiflow sweep`) trains one score model and N flows that differ only in their
//! seed, each written as an ordinary run directory; [`aggregate`] builds the summary from
//! any set of point run directories, wherever they were trained (a job array on a cluster
//! writes ordinary run dirs). The summary holds every metric's mean, sd, min and max over
//! the models and the consistency table: pairwise |cos| between the models' fields on the
//! same data states, and each against the truth where it is known (Lorenz).

use super::checkpoint::{RunDir, RunDirError};
use super::evaluate::random_flow;
use crate::backend::Backend;
use crate::data::Dataset;
use crate::data::table::DataError;
use crate::method::diffusion::{self, Schedule};
use crate::method::skew;
use crate::metrics::consistency::{Stats, across, against, pairwise};
use crate::nn::batchnorm::BnMode;
use crate::nn::flow_mlp::FlowMlp;
use crate::nn::score_mlp::ScoreMlp;
use crate::preset::{DatasetKind, Preset};
use crate::tensor_util::{from_rows, to_vec};
use burn::tensor::Device;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The files a sweep or an aggregation writes beside the run directories.
pub const MODELS_CSV: &str = "models.csv";
pub const SUMMARY: &str = "summary.json";

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("nothing to aggregate: give at least one run directory")]
    Empty,
    #[error(transparent)]
    Run(#[from] RunDirError),
    #[error(
        "{0} is an image run; aggregation compares the flows of point systems (ring, two \
         peaks, two moons, Lorenz)"
    )]
    Image(PathBuf),
    #[error("{0} has no trained flow (its run stopped early): train it to the end or leave it out")]
    NoFlow(PathBuf),
    #[error("{0} is a {1:?} run but {2} is a {3:?} run: aggregate runs of one system")]
    Mixed(PathBuf, DatasetKind, PathBuf, DatasetKind),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(
        "{0} was trained on other snapshots than {1} (their data files differ): aggregate \
         runs of one dataset"
    )]
    OtherData(PathBuf, PathBuf),
}

/// The settings of model `seed` of a sweep over `base`: the same data (and so the same
/// score) for every model, its own seed for everything else.
pub fn model_preset(base: &Preset, seed: u64) -> Preset {
    let mut p = base.clone();
    p.dataset.seed = Some(base.data_seed());
    p.seed = seed;
    p
}

/// One model of a summary: its run directory, its seed, its metrics.
pub type Run = (PathBuf, u64, Map<String, Value>);

/// What [`aggregate`] found: one row of metrics per run, and the summary.
#[derive(Debug, Clone)]
pub struct Summary {
    pub runs: Vec<Run>,
    pub json: Value,
}

impl Summary {
    /// One row per model: its directory, its seed, then every numeric metric any run has.
    pub fn models_csv(&self) -> String {
        let keys: std::collections::BTreeSet<&String> = self
            .runs
            .iter()
            .flat_map(|(_, _, m)| m.iter().filter(|(_, v)| v.is_number()).map(|(k, _)| k))
            .collect();
        let mut out = String::from("dir,seed");
        for k in &keys {
            out.push(',');
            out.push_str(k);
        }
        out.push('\n');
        for (dir, seed, m) in &self.runs {
            out.push_str(&format!("{},{seed}", csv_field(&dir.display().to_string())));
            for k in &keys {
                out.push(',');
                if let Some(x) = m.get(*k).and_then(Value::as_f64) {
                    out.push_str(&x.to_string());
                }
            }
            out.push('\n');
        }
        out
    }

    /// `models.csv` and `summary.json` into `dir`, each written atomically.
    pub fn write(&self, dir: &Path) -> Result<(), SweepError> {
        let text = serde_json::to_string_pretty(&self.json).expect("a summary serialises");
        for (name, body) in [(MODELS_CSV, self.models_csv()), (SUMMARY, text)] {
            let path = dir.join(name);
            crate::data::write_atomically(&path, |w| std::io::Write::write_all(w, body.as_bytes()))
                .map_err(|source| SweepError::Io { path, source })?;
        }
        Ok(())
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn stats_json(xs: &[f64]) -> Value {
    Stats::of(xs).map_or(Value::Null, |s| json!(s))
}

/// One model's fields on the states the summary compares them on: its learned flow, its
/// training-free field (its own seed's skew matrix on its score), its random field (its
/// seed's untrained flow) and its score.
#[derive(Debug, Clone)]
pub struct ModelFields {
    pub learned: Vec<f32>,
    pub free: Vec<f32>,
    pub random: Vec<f32>,
    pub score: Vec<f32>,
}

impl ModelFields {
    /// The fields of model `p` at the row-major states `pts`.
    pub fn of(
        p: &Preset,
        score: &ScoreMlp,
        flow: &FlowMlp,
        pts: &[f32],
        dim: usize,
        device: &Device,
    ) -> Self {
        let x = || from_rows(pts, dim, device);
        let sched = Schedule::cosine(p.score.diffusion_steps);
        let s = diffusion::score(score, x(), &sched, p.score.tau_step);
        let d_matrix = skew::random_antisymmetric(dim, p.seed);
        let untrained = random_flow(p, dim, pts, device);
        Self {
            free: to_vec(skew::apply(&d_matrix, s.clone(), device)),
            score: to_vec(s),
            learned: to_vec(flow.forward(x(), BnMode::Running)),
            random: to_vec(untrained.forward(x(), BnMode::Running)),
        }
    }
}

/// The states a summary compares the fields on (`eval.cos_points` of the data), and the
/// true field there where it is known (Lorenz, a file with velocities).
pub fn comparison_states(p0: &Preset, data: &Dataset) -> (Vec<f32>, Option<Vec<f32>>) {
    let n = p0.eval.cos_points;
    (data.spread(n), data.spread_truth(n))
}

/// A model's metrics as `metrics.json` holds them (non-finite values are null there).
pub fn metrics_map(m: &crate::metrics::report::Metrics) -> Map<String, Value> {
    serde_json::from_str::<Value>(&crate::metrics::report::to_json(m))
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

/// The summary of the point runs in `dirs` (see the module doc). The fields are compared on
/// `eval.cos_points` states of the first run's data; each model's training-free field uses
/// its own seed's skew matrix and its own score, its random field is its own seed's
/// untrained flow.
pub fn aggregate(dirs: &[PathBuf], backend: &Backend) -> Result<Summary, SweepError> {
    let first = dirs.first().ok_or(SweepError::Empty)?;
    let mut opened: Vec<(RunDir, Preset)> = Vec::with_capacity(dirs.len());
    let device = &backend.device;
    for d in dirs {
        let run = RunDir::open(d)?;
        let p = run.read_preset()?;
        if p.dataset.kind().is_image() {
            return Err(SweepError::Image(d.clone()));
        }
        if !run.has_flow() {
            return Err(SweepError::NoFlow(d.clone()));
        }
        if let Some((r0, _)) = opened.first() {
            let sha = |r: &RunDir| r.data_record().map(|d| d.data.sha256);
            if sha(&run) != sha(r0) {
                return Err(SweepError::OtherData(d.clone(), first.clone()));
            }
        }
        if let Some((_, p0)) = opened.first()
            && p.dataset.kind() != p0.dataset.kind()
        {
            return Err(SweepError::Mixed(
                d.clone(),
                p.dataset.kind(),
                first.clone(),
                p0.dataset.kind(),
            ));
        }
        opened.push((run, p));
    }
    let p0 = &opened[0].1;
    let data = Dataset::generate(&p0.dataset, p0.data_seed())?;
    let dim = data.dim;
    let (pts, truth) = comparison_states(p0, &data);
    let mut models = Vec::with_capacity(dirs.len());
    for (d, (run, p)) in dirs.iter().zip(&opened) {
        let score = run.load_score(p, dim, device)?;
        let flow = run.load_flow(p, dim, device)?;
        let fields = ModelFields::of(p, &score, &flow, &pts, dim, device);
        let metrics = std::fs::read_to_string(d.join(super::checkpoint::METRICS))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        models.push(((d.clone(), p.seed, metrics), fields));
    }
    Ok(summarize(&p0.name, models, truth.as_deref()))
}

/// The summary of models already measured: each with its directory, seed, metrics and
/// fields (on the same states; `truth` is the true field there, if known).
pub fn summarize(system: &str, models: Vec<(Run, ModelFields)>, truth: Option<&[f32]>) -> Summary {
    let (mut learned, mut free, mut random, mut scores) = (vec![], vec![], vec![], vec![]);
    let mut runs = Vec::with_capacity(models.len());
    for (run, f) in models {
        learned.push(f.learned);
        free.push(f.free);
        random.push(f.random);
        scores.push(f.score);
        runs.push(run);
    }
    let mut summary = Map::new();
    summary.insert("models".into(), json!(runs.len()));
    summary.insert("system".into(), json!(system));
    let seconds: f64 = runs
        .iter()
        .flat_map(|(_, _, m)| ["seconds_score", "seconds_flow"].map(|k| m.get(k).cloned()))
        .flatten()
        .filter_map(|v| v.as_f64())
        .fold(0.0, |a, b| a + b);
    summary.insert("seconds_total".into(), json!(seconds));
    let positive = |key: &str| {
        let xs: Vec<f64> = runs
            .iter()
            .filter_map(|(_, _, m)| m.get(key).and_then(Value::as_f64))
            .collect();
        (!xs.is_empty()).then(|| xs.iter().filter(|&&l| l > 0.0).count() as f64 / xs.len() as f64)
    };
    summary.insert(
        "lyapunov_positive_fraction".into(),
        json!(positive("lyapunov_mean")),
    );
    summary.insert(
        "lyapunov_positive_fraction_ref".into(),
        json!(positive("lyapunov_mean_ref")),
    );
    summary.insert(
        "consistency_learned".into(),
        stats_json(&pairwise(&learned)),
    );
    summary.insert(
        "consistency_training_free".into(),
        stats_json(&pairwise(&free)),
    );
    summary.insert(
        "learned_vs_training_free".into(),
        stats_json(&across(&learned, &free)),
    );
    for (key, fields) in [
        ("cos_truth_learned", &learned),
        ("cos_truth_training_free", &free),
        ("cos_truth_random", &random),
        ("cos_truth_score", &scores),
    ] {
        let v = truth
            .as_ref()
            .map_or(Value::Null, |t| stats_json(&against(fields, t)));
        summary.insert(key.into(), v);
    }
    // Every numeric metric the runs recorded, over the models.
    let mut per_key: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (_, _, m) in &runs {
        for (k, v) in m {
            if let Some(x) = v.as_f64() {
                per_key.entry(k.clone()).or_default().push(x);
            }
        }
    }
    let metrics: Map<String, Value> = per_key
        .into_iter()
        .map(|(k, xs)| (k, stats_json(&xs)))
        .collect();
    summary.insert("metrics".into(), Value::Object(metrics));
    summary.insert(
        "runs".into(),
        json!(
            runs.iter()
                .map(|(d, _, _)| d.display().to_string())
                .collect::<Vec<_>>()
        ),
    );
    Summary {
        runs,
        json: Value::Object(summary),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::score_mlp;
    use crate::train::job::flow_config;

    /// A Lorenz run dir holding untrained models drawn with `seed` (aggregation only reads
    /// models, so training them would test nothing more here).
    fn run(root: &Path, name: &str, seed: u64, with_flow: bool) -> PathBuf {
        let device = burn::tensor::Device::flex();
        let sets = [
            "dataset.runs=2".to_string(),
            "dataset.steps_per_run=200".into(),
        ];
        let base = Preset::load("lorenz", true, &sets).unwrap();
        let p = model_preset(&base, seed);
        let path = root.join(name);
        let dir = RunDir::create(&path, false).unwrap();
        dir.write_preset(&p).unwrap();
        let score = crate::tensor_util::init_seeded(
            || score_mlp::init(3, p.score.hidden, p.score.prediction, &device),
            7,
            &device,
        );
        dir.save_score(score).unwrap();
        if with_flow {
            let flow =
                crate::tensor_util::init_seeded(|| flow_config(&p, 3).init(&device), seed, &device);
            dir.save_flow(flow).unwrap();
        }
        let m = json!({"lyapunov_mean": seed as f64 - 1.5, "mmd2_learned": seed as f64, "backend": "cpu"});
        std::fs::write(path.join(super::super::checkpoint::METRICS), m.to_string()).unwrap();
        path
    }

    #[test]
    fn aggregate_summarises_runs_and_compares_their_fields() {
        let _rng = crate::tensor_util::rng_lock();
        let tmp = tempfile::tempdir().unwrap();
        let a = run(tmp.path(), "a", 1, true);
        let b = run(tmp.path(), "b", 2, true);
        // The same model twice: their fields agree exactly.
        let c = tmp.path().join("c");
        std::fs::create_dir(&c).unwrap();
        for f in std::fs::read_dir(&a).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), c.join(f.file_name())).unwrap();
        }
        let backend = Backend::cpu();
        let s = aggregate(&[a.clone(), b.clone(), c.clone()], &backend).unwrap();
        let j = &s.json;
        assert_eq!(j["models"], 3);
        let learned = &j["consistency_learned"];
        assert_eq!(learned["count"], 3, "three pairs");
        assert!(
            (learned["max"].as_f64().unwrap() - 1.0).abs() < 1e-9,
            "{learned}"
        );
        assert!(
            learned["min"].as_f64().unwrap() < 0.999,
            "different seeds, different fields"
        );
        assert_eq!(j["learned_vs_training_free"]["count"], 9);
        // One score: the score fields agree, and each has a |cos| to the true Lorenz field.
        assert_eq!(j["cos_truth_score"]["sd"], 0.0);
        for key in [
            "cos_truth_learned",
            "cos_truth_training_free",
            "cos_truth_random",
        ] {
            let m = j[key]["mean"].as_f64().unwrap();
            assert!(m > 0.0 && m <= 1.0, "{key} {m}");
        }
        // Metrics over the runs: seeds 1, 2, 1.
        assert_eq!(
            j["metrics"]["mmd2_learned"]["mean"].as_f64().unwrap(),
            4.0 / 3.0
        );
        assert_eq!(j["lyapunov_positive_fraction"].as_f64().unwrap(), 1.0 / 3.0);
        let csv = s.models_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "dir,seed,lyapunov_mean,mmd2_learned");
        assert!(lines[2].ends_with(",2,0.5,2"), "{}", lines[2]);
        s.write(tmp.path()).unwrap();
        let back: Value =
            serde_json::from_str(&std::fs::read_to_string(tmp.path().join(SUMMARY)).unwrap())
                .unwrap();
        let (x, y) = (&back["consistency_learned"]["mean"], &learned["mean"]);
        assert!((x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-12);
        assert_eq!(back["models"], 3);
        assert_eq!(j["seconds_total"], 0.0, "no times were recorded");

        // What cannot be aggregated says why.
        let no_flow = run(tmp.path(), "d", 3, false);
        let e = aggregate(&[a.clone(), no_flow], &backend).unwrap_err();
        assert!(e.to_string().contains("no trained flow"), "{e}");
        assert!(
            aggregate(&[], &backend)
                .unwrap_err()
                .to_string()
                .contains("at least one")
        );
        let ring = tmp.path().join("ring");
        let dir = RunDir::create(&ring, false).unwrap();
        dir.write_preset(&Preset::load("ring", true, &[]).unwrap())
            .unwrap();
        dir.save_flow(flow_config(&Preset::default(), 2).init(&backend.device))
            .unwrap();
        let e = aggregate(&[a, ring], &backend).unwrap_err();
        assert!(e.to_string().contains("one system"), "{e}");
    }
}
