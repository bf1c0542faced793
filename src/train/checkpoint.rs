//! A run directory: `preset.toml` (resolved settings), `score.bpk` and `flow.bpk` (burn
//! records), `losses.csv`, `samples.csv` (reverse-diffusion samples) and `metrics.json`.

use super::job::{LossPoint, flow_config};
use crate::metrics::report::Metrics;
use crate::nn::flow_mlp::FlowMlp;
use crate::nn::flow_nca::Nca;
use crate::nn::score_mlp::{self, ScoreMlp};
use crate::nn::score_unet::ScoreUnet;
use crate::preset::{Preset, PresetError, Source};
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

/// Snapshots from the user's file: what the run's copies are and where they came from.
pub const DATA_RECORD: &str = "data.json";
/// The files a run writes (anything else in its directory is the user's and stays), besides
/// its copy of a target picture ([`TARGET`]`.EXT`) and of a data file (`data.EXT`,
/// `velocity.EXT`).
const RUN_FILES: [&str; 8] = [
    PRESET,
    SCORE,
    FLOW,
    LOSSES,
    SAMPLES,
    METRICS,
    DATASET,
    DATA_RECORD,
];
/// Artificial life with a target from a file: the run's copy of the picture, `target.EXT`.
pub const TARGET: &str = "target";
/// A file dataset: the run's copies of the snapshots and the velocities.
const DATA_COPY: &str = "data";
const VELOCITY_COPY: &str = "velocity";

fn is_run_file(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    RUN_FILES.contains(&name.as_ref())
        || name == DATA_COPY
        || [TARGET, DATA_COPY, VELOCITY_COPY]
            .iter()
            .any(|stem| name.starts_with(&format!("{stem}.")))
}

/// `STEM.EXT`, the name of a run's copy of `src`, keeping its extension (lower case;
/// `default` when it has none).
fn copy_name(stem: &str, src: &Path, default: &str) -> String {
    let ext = src
        .extension()
        .map_or(default.into(), |e| e.to_string_lossy().to_lowercase());
    format!("{stem}.{ext}")
}

/// The SHA-256 of a file's bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// One data file a run was trained on: its copy in the run, the original, its SHA-256.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataFile {
    pub copy: String,
    pub original: String,
    pub sha256: String,
    pub bytes: u64,
}

/// `data.json`: the snapshots (and velocities) a file run was trained on.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataRecord {
    pub data: DataFile,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub velocity: Option<DataFile>,
}

/// The SHA-256 of a data file, or of a folder of pictures as a run records it.
fn current_sha256(path: &Path) -> std::io::Result<String> {
    if path.is_dir() {
        return crate::data::image_files::sha256(path)
            .map(|(sha, _)| sha)
            .map_err(|e| std::io::Error::other(e.to_string()));
    }
    std::fs::read(path).map(|b| sha256_hex(&b))
}

/// The picture file an artificial-life preset's target names (not a built-in target).
fn target_file(preset: &Preset) -> Option<PathBuf> {
    let t = &preset.dataset.alife()?.target;
    let builtin = crate::data::icon::BUILTIN.contains(&t.as_str());
    (!builtin && !t.is_empty()).then(|| PathBuf::from(t))
}

/// `target.EXT`, keeping the picture's extension (PNG or JPEG).
fn target_name(src: &Path) -> String {
    copy_name(TARGET, src, "png")
}

pub struct RunDir {
    /// Where this run's files are written.
    pub path: PathBuf,
    /// A forced run over an existing one trains beside it (in `path`); the old run stays
    /// here, untouched, until [`RunDir::commit`] swaps the new one in.
    replaces: Option<PathBuf>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunDirError + '_ {
    move |source| RunDirError::Io {
        path: path.into(),
        source,
    }
}

/// Where a forced run over `path` trains until it is swapped in: `NAME.new` beside it.
pub fn staging_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    path.with_file_name(name)
}

/// Swap two directories in one step where the system can (Linux), so that no instant sees
/// `b` missing; elsewhere in three renames.
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
        let (ca, cb) = (c(a)?, c(b)?);
        // SAFETY: two valid NUL-terminated paths; renameat2 only reads them.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                ca.as_ptr(),
                libc::AT_FDCWD,
                cb.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        // File systems without the exchange fall through to the renames.
        if !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) {
            return Err(e);
        }
    }
    exchange_by_renames(a, b)
}

/// [`exchange`] where the system has no atomic swap: `b` is missing for an instant.
fn exchange_by_renames(a: &Path, b: &Path) -> std::io::Result<()> {
    let mut aside = b.as_os_str().to_os_string();
    aside.push(".old");
    let aside = PathBuf::from(aside);
    std::fs::rename(b, &aside)?;
    if let Err(e) = std::fs::rename(a, b) {
        std::fs::rename(&aside, b)?;
        return Err(e);
    }
    std::fs::rename(&aside, a)
}

impl RunDir {
    /// A directory for a new run; refuses one that holds another run unless `force`. A forced
    /// run trains in [`staging_path`] and replaces the old run only at [`RunDir::commit`], so
    /// a run that fails or is killed at any instant leaves the old one as it was.
    pub fn create(path: &Path, force: bool) -> Result<Self, RunDirError> {
        let occupied = [PRESET, SCORE, FLOW, METRICS]
            .iter()
            .any(|f| path.join(f).exists());
        if occupied && !force {
            return Err(RunDirError::Occupied(path.into()));
        }
        if !occupied {
            std::fs::create_dir_all(path).map_err(io_err(path))?;
            return Ok(Self {
                path: path.into(),
                replaces: None,
            });
        }
        let stage = staging_path(path);
        if stage.exists() {
            // What an earlier forced run left when it failed; this one replaces it.
            std::fs::remove_dir_all(&stage).map_err(io_err(&stage))?;
        }
        std::fs::create_dir_all(&stage).map_err(io_err(&stage))?;
        // The simulated snapshots are reused when the settings match. A hard link costs
        // nothing, and the old run keeps its file: writes replace a file by renaming a new
        // one over it, never by writing into it.
        let cache = path.join(DATASET);
        if cache.is_file() {
            let staged = stage.join(DATASET);
            std::fs::hard_link(&cache, &staged)
                .or_else(|_| std::fs::copy(&cache, &staged).map(|_| ()))
                .map_err(io_err(&cache))?;
        }
        Ok(Self {
            path: stage,
            replaces: Some(path.into()),
        })
    }

    /// The directory the run will have once committed (where the user asked for it).
    pub fn destination(&self) -> &Path {
        self.replaces.as_deref().unwrap_or(&self.path)
    }

    /// A forced run replaces the old one (a no-op otherwise); files in the old directory that
    /// are not a run's own stay with it.
    pub fn commit(self) -> Result<PathBuf, RunDirError> {
        self.commit_with(exchange)
    }

    fn commit_with(
        self,
        swap: impl FnOnce(&Path, &Path) -> std::io::Result<()>,
    ) -> Result<PathBuf, RunDirError> {
        let Some(target) = self.replaces else {
            return Ok(self.path);
        };
        swap(&self.path, &target).map_err(io_err(&target))?;
        // `self.path` now holds the old run.
        let old = self.path;
        for entry in std::fs::read_dir(&old).map_err(io_err(&old))? {
            let entry = entry.map_err(io_err(&old))?;
            let name = entry.file_name();
            if !is_run_file(&name) && !target.join(&name).exists() {
                std::fs::rename(entry.path(), target.join(&name)).map_err(io_err(&target))?;
            }
        }
        std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
        Ok(target)
    }

    /// An existing run, for `eval`.
    pub fn open(path: &Path) -> Result<Self, RunDirError> {
        if !path.join(PRESET).is_file() {
            return Err(RunDirError::NotARun(path.into()));
        }
        Ok(Self {
            path: path.into(),
            replaces: None,
        })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), RunDirError> {
        let path = self.file(name);
        crate::data::write_atomically(&path, |w| std::io::Write::write_all(w, bytes))
            .map_err(|source| RunDirError::Io { path, source })
    }

    /// The settings, and an artificial-life target read from a file copied in beside them
    /// (as `target.EXT`), so the run does not depend on a picture that may move or change.
    pub fn write_preset(&self, preset: &Preset) -> Result<(), RunDirError> {
        self.copy_data(preset)?;
        if let Some(src) = target_file(preset) {
            let name = target_name(&src);
            if src != self.file(&name) && src.is_file() {
                let bytes = std::fs::read(&src).map_err(io_err(&src))?;
                self.write(&name, &bytes)?;
            }
        }
        self.write(PRESET, preset.to_toml().as_bytes())
    }

    /// A file dataset: the snapshot (and velocity) files copied into the run with their
    /// SHA-256 in [`DATA_RECORD`], so the run reopens without the originals. A preset read
    /// back from a run already names the copies; they stay as they are.
    fn copy_data(&self, preset: &Preset) -> Result<(), RunDirError> {
        let (path, velocity) = match (preset.dataset.file(), preset.dataset.user_images()) {
            (Some(f), _) => (&f.path, f.velocity.as_ref()),
            (None, Some(i)) => (&i.path, None),
            (None, None) => return Ok(()),
        };
        let record_path = self.file(DATA_RECORD);
        let old: Option<DataRecord> = std::fs::read_to_string(&record_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let copy = |stem: &str, src: &str, old: Option<&DataFile>| {
            let src_path = Path::new(src);
            let name = if src_path.is_dir() {
                stem.to_string()
            } else {
                copy_name(stem, src_path, "csv")
            };
            let dest = self.file(&name);
            let same = std::fs::canonicalize(src_path).ok() == std::fs::canonicalize(&dest).ok();
            if same && let Some(old) = old {
                return Ok(old.clone());
            }
            let original = std::fs::canonicalize(src_path)
                .unwrap_or_else(|_| src_path.to_path_buf())
                .display()
                .to_string();
            if src_path.is_dir() {
                return self.copy_folder(src_path, original);
            }
            let bytes = std::fs::read(src_path).map_err(io_err(src_path))?;
            if !same {
                self.write(&name, &bytes)?;
            }
            Ok::<_, RunDirError>(DataFile {
                copy: name,
                original,
                sha256: sha256_hex(&bytes),
                bytes: bytes.len() as u64,
            })
        };
        let data = copy(DATA_COPY, path, old.as_ref().map(|r| &r.data))?;
        let velocity = match velocity {
            Some(v) => Some(copy(
                VELOCITY_COPY,
                v,
                old.as_ref().and_then(|r| r.velocity.as_ref()),
            )?),
            None => None,
        };
        let record = DataRecord { data, velocity };
        let json = serde_json::to_string_pretty(&record).expect("a data record serialises");
        self.write(DATA_RECORD, (json + "\n").as_bytes())
    }

    /// A folder of pictures: each copied into the run's `data/` folder; the record's hash
    /// covers their names and bytes (`image_files::sha256`).
    fn copy_folder(&self, src: &Path, original: String) -> Result<DataFile, RunDirError> {
        let as_io = |e: crate::data::image_files::ImageFileError| RunDirError::Io {
            path: src.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        };
        for f in crate::data::image_files::list(src).map_err(as_io)? {
            let bytes = std::fs::read(&f).map_err(io_err(&f))?;
            let name = f.file_name().unwrap_or_default().to_string_lossy();
            self.write(&format!("{DATA_COPY}/{name}"), &bytes)?;
        }
        let (sha256, bytes) = crate::data::image_files::sha256(src).map_err(as_io)?;
        Ok(DataFile {
            copy: DATA_COPY.into(),
            original,
            sha256,
            bytes,
        })
    }

    /// What `data.json` says of the files a file run was trained on.
    pub fn data_record(&self) -> Option<DataRecord> {
        let text = std::fs::read_to_string(self.file(DATA_RECORD)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// A sentence for each original data file that has changed (or gone) since the run
    /// copied it; the run itself reads its own copies.
    pub fn data_changes(&self) -> Vec<String> {
        let Some(r) = self.data_record() else {
            return Vec::new();
        };
        [Some(&r.data), r.velocity.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|f| match current_sha256(Path::new(&f.original)) {
                Ok(sha) if sha == f.sha256 => None,
                Ok(_) => Some(format!(
                    "{} has changed since this run was trained on it; the run uses its own \
                     copy ({})",
                    f.original,
                    self.file(&f.copy).display()
                )),
                Err(_) => Some(format!(
                    "{} is gone or unreadable; the run uses its own copy ({})",
                    f.original,
                    self.file(&f.copy).display()
                )),
            })
            .collect()
    }

    /// The run's settings; a target picture is read from the run's own copy when it has one,
    /// and so are a file dataset's snapshots and velocities.
    pub fn read_preset(&self) -> Result<Preset, RunDirError> {
        let path = self.file(PRESET);
        let mut preset = Preset::load(&path.to_string_lossy(), false, &[])?;
        if let (Some(r), Source::Images(i)) = (self.data_record(), &mut preset.dataset.source) {
            let data = self.file(&r.data.copy);
            if data.exists() {
                i.path = data.display().to_string();
            }
        }
        if let (Some(r), Some(f)) = (self.data_record(), preset.dataset.file_mut()) {
            let data = self.file(&r.data.copy);
            if data.is_file() {
                f.path = data.display().to_string();
            }
            if let (Some(v), Some(path)) = (&r.velocity, f.velocity.as_mut()) {
                let copy = self.file(&v.copy);
                if copy.is_file() {
                    *path = copy.display().to_string();
                }
            }
        }
        if let Some(src) = target_file(&preset) {
            let copy = self.file(&target_name(&src));
            if copy.is_file()
                && let Some(a) = preset.dataset.alife_mut()
            {
                a.target = copy.display().to_string();
            }
        }
        Ok(preset)
    }

    pub fn write_losses(&self, losses: &[LossPoint]) -> Result<(), RunDirError> {
        let mut s = String::from("phase,epoch,loss\n");
        for l in losses {
            let _ = writeln!(s, "{},{},{}", l.phase.label(), l.epoch, l.loss);
        }
        self.write(LOSSES, s.as_bytes())
    }

    pub fn write_samples(&self, samples: &[f32], dim: usize) -> Result<(), RunDirError> {
        let header: Vec<String> = (0..dim).map(|i| format!("x{i}")).collect();
        let mut s = header.join(",") + "\n";
        for row in samples.chunks(dim) {
            let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            s += &(cells.join(",") + "\n");
        }
        self.write(SAMPLES, s.as_bytes())
    }

    pub fn write_metrics(&self, m: &Metrics) -> Result<(), RunDirError> {
        self.write_json_metrics(m)
    }

    /// `metrics.json` from any metrics struct (image runs have their own fields).
    pub fn write_json_metrics(&self, m: &impl serde::Serialize) -> Result<(), RunDirError> {
        let json = crate::metrics::report::to_json(m);
        self.write(METRICS, (json + "\n").as_bytes())
    }

    /// Reverse-diffusion image samples `[n, c, h, w]` as one CSV row per image
    /// (values in [-1, 1], channel planes one after the other).
    pub fn write_image_samples(
        &self,
        samples: &[f32],
        [c, h, w]: [usize; 3],
    ) -> Result<(), RunDirError> {
        self.write_samples(samples, c * h * w)
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
            match ScoreUnet::new(preset.dataset.channels(), &preset.score, device) {
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
        let bytes = model
            .into_record()
            .into_bytes()
            .map_err(|e| RunDirError::Io {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        self.write(name, &bytes)
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

    /// A run directory holding `tag` in each of its files.
    fn fake_run(dir: &Path, tag: &str) {
        std::fs::create_dir_all(dir).unwrap();
        for f in [PRESET, SCORE, METRICS, LOSSES, DATASET] {
            std::fs::write(dir.join(f), format!("{tag} {f}")).unwrap();
        }
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn an_occupied_dir_is_refused_unless_forced_and_then_replaced_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        // A directory without a run is fine, and is written in place.
        let fresh = RunDir::create(&dir, false).unwrap();
        assert_eq!(fresh.path, dir);
        fake_run(&dir, "old");
        let err = RunDir::create(&dir, false).err().unwrap().to_string();
        assert!(err.contains("--force"), "{err}");

        let new = RunDir::create(&dir, true).unwrap();
        assert_eq!(new.path, staging_path(&dir));
        assert_eq!(new.destination(), dir);
        assert_eq!(
            read(&new.path.join(DATASET)),
            "old dataset.bin",
            "cache kept"
        );
        new.write(SCORE, b"new score").unwrap();
        new.write(PRESET, b"new preset").unwrap();
        // Until the commit, the old run is whole.
        assert_eq!(read(&dir.join(SCORE)), "old score.bpk");
        assert_eq!(new.commit().unwrap(), dir);
        assert_eq!(read(&dir.join(SCORE)), "new score");
        assert_eq!(read(&dir.join(PRESET)), "new preset");
        assert!(
            !dir.join(METRICS).exists(),
            "no file of the old run is left"
        );
        assert!(!dir.join(LOSSES).exists());
        assert_eq!(read(&dir.join("notes.txt")), "mine", "files not ours stay");
        assert!(!staging_path(&dir).exists());
    }

    #[test]
    fn a_forced_run_that_fails_or_dies_mid_swap_leaves_the_old_run() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        fake_run(&dir, "old");
        // Fails before the end: never committed.
        let new = RunDir::create(&dir, true).unwrap();
        new.write(SCORE, b"half").unwrap();
        drop(new);
        assert_eq!(read(&dir.join(SCORE)), "old score.bpk");
        // Killed while swapping (the rename fails): the old run is still there and whole.
        let new = RunDir::create(&dir, true).unwrap();
        assert!(
            !staging_path(&dir).join(SCORE).exists(),
            "a new forced run starts clean"
        );
        new.write(SCORE, b"new").unwrap();
        let failed = new.commit_with(|_, _| Err(std::io::Error::other("killed")));
        assert!(failed.is_err());
        for f in [PRESET, SCORE, METRICS, LOSSES] {
            assert_eq!(read(&dir.join(f)), format!("old {f}"));
        }
    }

    #[test]
    fn both_swaps_exchange_two_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fake_run(&a, "a");
        fake_run(&b, "b");
        exchange(&a, &b).unwrap();
        assert_eq!(read(&a.join(SCORE)), "b score.bpk");
        assert_eq!(read(&b.join(SCORE)), "a score.bpk");
        exchange_by_renames(&a, &b).unwrap();
        assert_eq!(read(&a.join(SCORE)), "a score.bpk");
        assert_eq!(read(&b.join(SCORE)), "b score.bpk");
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            2,
            "nothing left aside"
        );
    }

    #[test]
    fn a_target_picture_is_copied_into_the_run_and_read_from_there() {
        let tmp = tempfile::tempdir().unwrap();
        let png = tmp.path().join("Mine.PNG");
        std::fs::write(&png, b"picture bytes").unwrap();
        let preset = Preset::load(
            "alife-dot",
            true,
            &[format!("dataset.target=\"{}\"", png.display())],
        )
        .unwrap();
        let dir = RunDir::create(&tmp.path().join("run"), false).unwrap();
        dir.write_preset(&preset).unwrap();
        let copy = dir.path.join("target.png");
        assert_eq!(std::fs::read(&copy).unwrap(), b"picture bytes");
        std::fs::remove_file(&png).unwrap();
        let back = RunDir::open(&dir.path).unwrap().read_preset().unwrap();
        assert_eq!(
            back.dataset.alife().unwrap().target,
            copy.display().to_string()
        );
        // A built-in target needs no copy.
        let builtin = Preset::load("alife-dot", true, &[]).unwrap();
        let other = RunDir::create(&tmp.path().join("builtin"), false).unwrap();
        other.write_preset(&builtin).unwrap();
        assert_eq!(std::fs::read_dir(&other.path).unwrap().count(), 1);
    }

    #[test]
    fn eval_needs_a_run_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let err = RunDir::open(tmp.path()).err().unwrap().to_string();
        assert!(err.contains("not a run directory"), "{err}");
    }
}
