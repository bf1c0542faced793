//! A run directory: `preset.toml` (resolved settings), `score.bpk` and `flow.bpk` (burn
//! records), `losses.csv`, `samples.csv` (reverse-diffusion samples) and `metrics.json`.

use super::job::{LossPoint, flow_config};
use crate::metrics::report::Metrics;
use crate::nn::flow_mlp::FlowMlp;
use crate::nn::flow_nca::Nca;
use crate::nn::score_mlp::{self, ScoreMlp};
use crate::nn::score_unet::ScoreUnet;
use crate::preset::{Preset, PresetError};
use burn::module::Module;
use burn::tensor::Device;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub const PRESET: &str = "preset.toml";
pub const SCORE: &str = "score.bpk";
pub const FLOW: &str = "flow.bpk";
pub const LOSSES: &str = "losses.csv";
pub const SAMPLES: &str = "samples.csv";
pub const METRICS: &str = "metrics.json";
/// Image runs: the simulated snapshots, reused when the settings match.
pub const DATASET: &str = "dataset.bin";

#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error(
        "{0} already holds a run ({PRESET} or model files are there); \
         choose another --out or pass --force to overwrite it"
    )]
    Occupied(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not a run directory: it has no {PRESET} (train one with `equiflow train`)")]
    NotARun(PathBuf),
    #[error("{path} is missing: the run did not finish or the file was removed")]
    Missing { path: PathBuf },
    #[error("{path} does not match {PRESET} (different architecture or a damaged file): {message}")]
    Mismatch { path: PathBuf, message: String },
    #[error("{0}")]
    Preset(#[from] PresetError),
}

pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// A directory for a new run; refuses one that holds another run unless `force`.
    pub fn create(path: &Path, force: bool) -> Result<Self, RunDirError> {
        let occupied = [PRESET, SCORE, FLOW, METRICS]
            .iter()
            .any(|f| path.join(f).exists());
        if occupied && !force {
            return Err(RunDirError::Occupied(path.into()));
        }
        // An overwritten run must not leave files of the old one behind (a stale
        // metrics.json beside a run that then fails would lie).
        for f in [PRESET, SCORE, FLOW, LOSSES, SAMPLES, METRICS] {
            let old = path.join(f);
            if old.is_file() {
                std::fs::remove_file(&old)
                    .map_err(|source| RunDirError::Io { path: old, source })?;
            }
        }
        std::fs::create_dir_all(path).map_err(|source| RunDirError::Io {
            path: path.into(),
            source,
        })?;
        Ok(Self { path: path.into() })
    }

    /// An existing run, for `eval`.
    pub fn open(path: &Path) -> Result<Self, RunDirError> {
        if !path.join(PRESET).is_file() {
            return Err(RunDirError::NotARun(path.into()));
        }
        Ok(Self { path: path.into() })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn write(&self, name: &str, text: &str) -> Result<(), RunDirError> {
        let path = self.file(name);
        std::fs::write(&path, text).map_err(|source| RunDirError::Io { path, source })
    }

    pub fn write_preset(&self, preset: &Preset) -> Result<(), RunDirError> {
        self.write(PRESET, &preset.to_toml())
    }

    pub fn read_preset(&self) -> Result<Preset, RunDirError> {
        let path = self.file(PRESET);
        Ok(Preset::load(&path.to_string_lossy(), false, &[])?)
    }

    pub fn write_losses(&self, losses: &[LossPoint]) -> Result<(), RunDirError> {
        let mut s = String::from("phase,epoch,loss\n");
        for l in losses {
            let _ = writeln!(s, "{},{},{}", l.phase.label(), l.epoch, l.loss);
        }
        self.write(LOSSES, &s)
    }

    pub fn write_samples(&self, samples: &[f32], dim: usize) -> Result<(), RunDirError> {
        let header: Vec<String> = (0..dim).map(|i| format!("x{i}")).collect();
        let mut s = header.join(",") + "\n";
        for row in samples.chunks(dim) {
            let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            s += &(cells.join(",") + "\n");
        }
        self.write(SAMPLES, &s)
    }

    pub fn write_metrics(&self, m: &Metrics) -> Result<(), RunDirError> {
        self.write_json_metrics(m)
    }

    /// `metrics.json` from any metrics struct (image runs have their own fields).
    pub fn write_json_metrics(&self, m: &impl serde::Serialize) -> Result<(), RunDirError> {
        let json = serde_json::to_string_pretty(m).expect("metrics serialise");
        self.write(METRICS, &(json + "\n"))
    }

    /// Reverse-diffusion image samples `[n, c, h, w]` as one CSV row per image
    /// (values in [-1, 1], channel planes one after the other).
    pub fn write_image_samples(
        &self,
        samples: &[f32],
        h: usize,
        w: usize,
    ) -> Result<(), RunDirError> {
        self.write_samples(samples, 2 * h * w)
    }

    /// The net itself is stored, not the enum around it, so runs written before the
    /// residual net existed keep loading; `score.arch` in the run's preset says which it is.
    pub fn save_image_score(&self, model: ScoreUnet) -> Result<(), RunDirError> {
        match model {
            ScoreUnet::Plain(n) => self.save(SCORE, n),
            ScoreUnet::Residual(n) => self.save(SCORE, n),
        }
    }

    pub fn load_image_score(
        &self,
        preset: &Preset,
        device: &Device,
    ) -> Result<ScoreUnet, RunDirError> {
        Ok(
            match ScoreUnet::new(preset.dataset.kind.dim(), &preset.score, device) {
                ScoreUnet::Plain(n) => ScoreUnet::Plain(self.load(SCORE, n)?),
                ScoreUnet::Residual(n) => ScoreUnet::Residual(self.load(SCORE, n)?),
            },
        )
    }

    /// Image runs with a trained flow: the NCA, stored as the run's flow.
    pub fn save_nca(&self, model: Nca) -> Result<(), RunDirError> {
        self.save(FLOW, model)
    }

    pub fn has_flow(&self) -> bool {
        self.file(FLOW).is_file()
    }

    pub fn load_nca(&self, preset: &Preset, device: &Device) -> Result<Nca, RunDirError> {
        self.load(FLOW, crate::train::nca::nca_config(preset).init(device))
    }

    pub fn save_score(&self, model: ScoreMlp) -> Result<(), RunDirError> {
        self.save(SCORE, model)
    }

    pub fn save_flow(&self, model: FlowMlp) -> Result<(), RunDirError> {
        self.save(FLOW, model)
    }

    fn save<M: Module>(&self, name: &str, model: M) -> Result<(), RunDirError> {
        let path = self.file(name);
        model.save_file(&path).map_err(|e| RunDirError::Io {
            path,
            source: std::io::Error::other(e.to_string()),
        })
    }

    pub fn load_score(
        &self,
        preset: &Preset,
        dim: usize,
        device: &Device,
    ) -> Result<ScoreMlp, RunDirError> {
        self.load(
            SCORE,
            score_mlp::init(dim, preset.score.hidden, preset.score.prediction, device),
        )
    }

    pub fn load_flow(
        &self,
        preset: &Preset,
        dim: usize,
        device: &Device,
    ) -> Result<FlowMlp, RunDirError> {
        self.load(FLOW, flow_config(preset, dim).init(device))
    }

    fn load<M: Module>(&self, name: &str, template: M) -> Result<M, RunDirError> {
        let path = self.file(name);
        if !path.is_file() {
            return Err(RunDirError::Missing { path });
        }
        // burn panics on some malformed inputs instead of returning an error; a damaged file
        // must still become a sentence, not a crash.
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            template.try_load_file(&path)
        }));
        match attempt {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(e)) => Err(RunDirError::Mismatch {
                path,
                message: e.to_string(),
            }),
            Err(_) => Err(RunDirError::Mismatch {
                path,
                message: "the record could not be decoded".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_occupied_dir_is_refused_unless_forced_and_then_cleared() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        // A directory without a run is fine.
        RunDir::create(&dir, false).unwrap();
        std::fs::write(dir.join(METRICS), "{}").unwrap();
        std::fs::write(dir.join(LOSSES), "old").unwrap();
        let err = RunDir::create(&dir, false).err().unwrap().to_string();
        assert!(err.contains("--force"), "{err}");
        RunDir::create(&dir, true).unwrap();
        assert!(!dir.join(METRICS).exists() && !dir.join(LOSSES).exists());
        assert!(
            dir.join("notes.txt").exists(),
            "files that are not ours stay"
        );
    }

    #[test]
    fn eval_needs_a_run_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let err = RunDir::open(tmp.path()).err().unwrap().to_string();
        assert!(err.contains("not a run directory"), "{err}");
    }
}
