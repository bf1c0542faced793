//! Experiment settings: one serde struct per run, loaded from `presets/*.toml`.
//!
//! Loading order: built-in defaults ← preset file ← its `[quick]` table (with `--quick`) ←
//! `--set key=value` pairs. Every step is checked, so a typo never silently falls back to a
//! default: unknown keys and malformed TOML are errors that name the place.

use crate::data::gray_scott::Regime;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Presets shipped inside the binary, so `--preset ring` works from any directory.
pub const BUILTIN: &[(&str, &str)] = &[
    ("ring", include_str!("../presets/ring.toml")),
    ("two_peaks", include_str!("../presets/two_peaks.toml")),
    ("two_moons", include_str!("../presets/two_moons.toml")),
    ("lorenz", include_str!("../presets/lorenz.toml")),
    ("gs-life", include_str!("../presets/gs-life.toml")),
    ("gs-waves", include_str!("../presets/gs-waves.toml")),
    ("gs-spirals", include_str!("../presets/gs-spirals.toml")),
    ("gs-maze", include_str!("../presets/gs-maze.toml")),
    ("alife-dot", include_str!("../presets/alife-dot.toml")),
    ("alife-dots", include_str!("../presets/alife-dots.toml")),
    (
        "alife-firefly",
        include_str!("../presets/alife-firefly.toml"),
    ),
    ("alife-taiji", include_str!("../presets/alife-taiji.toml")),
];

#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    #[error("unknown preset '{name}'; known presets: {known} (or pass a path to a .toml file)")]
    Unknown { name: String, known: String },
    #[error("cannot read preset file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("malformed preset {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("unknown setting '{key}'; known settings: {known}")]
    UnknownKey { key: String, known: String },
    #[error("bad --set '{arg}': expected key=value, for example flow.lr=0.005")]
    BadSet { arg: String },
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    Ring,
    TwoPeaks,
    TwoMoons,
    Lorenz,
    /// Turing patterns: images of the Gray–Scott system (the image pipeline, `train::turing`).
    GrayScott,
    /// Artificial life: a target icon stamped at random positions and rotations
    /// (`data::tiler`), RGB images on the image pipeline.
    Alife,
    /// The user's own point snapshots, read from a CSV/TSV or `.npy` file (`data::points_file`).
    File,
    /// The user's own image snapshots: a folder of pictures, or crops of one picture
    /// (`data::image_files`).
    Images,
}

impl DatasetKind {
    /// The dimension of one point snapshot (image kinds: the channels of a pixel). A file's
    /// dimension is known only once it is read (`Dataset::dim`); 2 stands in until then.
    pub fn dim(self) -> usize {
        match self {
            DatasetKind::Lorenz | DatasetKind::Alife => 3,
            _ => 2,
        }
    }

    /// Snapshots are images, trained by the image pipeline rather than the point one.
    pub fn is_image(self) -> bool {
        matches!(
            self,
            DatasetKind::GrayScott | DatasetKind::Alife | DatasetKind::Images
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Estimator {
    /// `exact` for dimension ≤ 8, `hutchinson` above.
    Auto,
    /// One JVP per basis vector: the divergence without variance, plus λ‖sym J‖²_F.
    Exact,
    /// `probes` Gaussian probes; with one squared estimate this hides a (2/k)‖sym J‖²_F penalty.
    Hutchinson,
}

/// What the snapshots are, with the seed they are drawn with. In a preset file this is the
/// `[dataset]` table tagged by `kind`; each kind has only its own settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "FlatDataset", into = "FlatDataset")]
pub struct DatasetSettings {
    pub source: Source,
    /// The seed the data are drawn with; unset, the preset's `seed`. A sweep's models share
    /// one dataset (and one score) while their seeds differ.
    pub seed: Option<u64>,
}

/// One variant per kind of data.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Ring(PointCount),
    TwoPeaks(PointCount),
    TwoMoons(Moons),
    Lorenz(LorenzData),
    /// Turing patterns: images of the Gray–Scott system (the image pipeline, `train::turing`).
    GrayScott(GrayScottData),
    /// Artificial life: a target icon stamped at random positions and rotations
    /// (`data::tiler`), RGB images on the image pipeline.
    Alife(AlifeData),
    /// Point snapshots from the user's file.
    File(FileData),
    /// Image snapshots from the user's pictures.
    Images(ImagesData),
}

impl Default for Source {
    fn default() -> Self {
        Source::Ring(PointCount::default())
    }
}

/// Ring, two peaks: how many points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointCount {
    pub n: usize,
}

impl Default for PointCount {
    fn default() -> Self {
        Self { n: 10_000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moons {
    pub n: usize,
    /// Standard deviation of the Gaussian noise before standardising.
    pub noise: f64,
}

impl Default for Moons {
    fn default() -> Self {
        Self {
            n: 10_000,
            noise: 0.1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LorenzData {
    /// Independent trajectories.
    pub runs: usize,
    /// RK4 steps kept per trajectory (after a burn-in onto the attractor).
    pub steps_per_run: usize,
    /// RK4 step of the data trajectories.
    pub dt: f64,
    /// The system's parameters (classic: 10, 28, 8/3); the true field and every truth
    /// metric follow them.
    pub sigma: f64,
    pub rho: f64,
    pub beta: f64,
}

impl Default for LorenzData {
    fn default() -> Self {
        let c = crate::data::lorenz::Lorenz::CLASSIC;
        Self {
            runs: 10,
            steps_per_run: 5000,
            dt: 0.01,
            sigma: c.sigma,
            rho: c.rho,
            beta: c.beta,
        }
    }
}

impl LorenzData {
    /// The system these settings describe.
    pub fn system(&self) -> crate::data::lorenz::Lorenz {
        crate::data::lorenz::Lorenz {
            sigma: self.sigma,
            rho: self.rho,
            beta: self.beta,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrayScottData {
    /// Snapshots.
    pub n: usize,
    /// Image side in pixels (a multiple of 4, for the UNet's two poolings).
    pub size: usize,
    /// One of the fifteen named regimes.
    pub pattern: Regime,
    /// Feed and kill rates and diffusion rates; unset, the regime's own.
    pub f: Option<f64>,
    pub k: Option<f64>,
    pub du: Option<f64>,
    pub dv: Option<f64>,
    /// Euler steps from the seeded discs to the snapshot.
    pub sim_steps: usize,
    /// At most this many random seed discs per sample (at least one).
    pub discs: usize,
}

impl Default for GrayScottData {
    fn default() -> Self {
        Self {
            n: 10_000,
            size: 128,
            pattern: Regime::Waves,
            f: None,
            k: None,
            du: None,
            dv: None,
            sim_steps: 4000,
            discs: 8,
        }
    }
}

impl GrayScottData {
    /// The regime's parameters with any override of F, k, Du, Dv.
    pub fn params(&self) -> crate::data::gray_scott::Params {
        let base = self.pattern.params();
        let pick = |v: Option<f64>, default: f32| v.map_or(default, |v| v as f32);
        crate::data::gray_scott::Params {
            f: pick(self.f, base.f),
            k: pick(self.k, base.k),
            du: pick(self.du, base.du),
            dv: pick(self.dv, base.dv),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlifeData {
    /// Snapshots.
    pub n: usize,
    /// Canvas side in pixels (a multiple of 4).
    pub size: usize,
    /// The target, a built-in name (`data::icon::BUILTIN`) or a PNG/JPEG path.
    pub target: String,
    /// Side of a stamped icon in pixels.
    pub icon_size: usize,
    /// Icons per image.
    pub icons: usize,
}

impl Default for AlifeData {
    fn default() -> Self {
        Self {
            n: 10_000,
            size: 128,
            target: "dot".into(),
            icon_size: 64,
            icons: 10,
        }
    }
}

/// A column of a table, by its header name or its 0-based index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Column {
    Index(usize),
    Name(String),
}

impl std::fmt::Display for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Column::Index(i) => write!(f, "{i}"),
            Column::Name(n) => write!(f, "'{n}'"),
        }
    }
}

/// The user's own point snapshots: one row per state, one column per axis.
#[derive(Debug, Clone, PartialEq)]
pub struct FileData {
    /// A `.csv`, `.tsv` (or `.txt`, whitespace-separated) or `.npy` file.
    pub path: String,
    /// The columns that are the state's axes; empty, every column.
    pub columns: Vec<Column>,
    /// Shift and scale each axis to mean 0 and variance 1 (the models' settings assume it).
    pub standardise: bool,
    /// At most this many rows, drawn without replacement (seeded) when the file has more.
    pub n: Option<usize>,
    /// Velocities at the same states (same rows, same columns): the truth the flows are
    /// compared with.
    pub velocity: Option<String>,
}

impl Default for FileData {
    fn default() -> Self {
        Self {
            path: String::new(),
            columns: Vec::new(),
            standardise: true,
            n: None,
            velocity: None,
        }
    }
}

pub use crate::data::image_files::ImageLayout;

/// The user's own image snapshots. In a preset file: `path`, `channels`, and for a folder
/// `n` (at most that many pictures, picked with the seed) and `resize`; for a picture
/// `crops`, `size` and `periodic`. What is not given is read from the pictures when the
/// preset is read (`data::image_files::probe`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImagesData {
    pub path: String,
    pub layout: ImageLayout,
    /// Snapshots: a folder's pictures used, or a picture's crops.
    pub n: usize,
    /// Snapshot side in pixels (a multiple of 4).
    pub size: usize,
    /// 1 (grey) or 3 (colour); by default what the pictures hold.
    pub channels: usize,
}

impl ImagesData {
    /// Crops of a picture when none are asked for.
    pub const CROPS: usize = 1024;
    /// Crop side of a picture when none is asked for (capped by the picture).
    pub const CROP_SIDE: usize = 64;

    /// The settings for the picture or folder at `path` (a folder's pictures fitted to
    /// `resize`² when given), with every other value read from the pictures or defaulted:
    /// what a preset file that names only `path` gives.
    pub fn open(
        path: &str,
        resize: Option<usize>,
    ) -> Result<Self, crate::data::image_files::ImageFileError> {
        Self::resolve(path, None, None, resize, None, None)
    }

    /// Fill what a preset did not say from the pictures' headers.
    fn resolve(
        path: &str,
        picture: Option<bool>,
        n: Option<usize>,
        size: Option<usize>,
        channels: Option<usize>,
        periodic: Option<bool>,
    ) -> Result<Self, crate::data::image_files::ImageFileError> {
        use crate::data::image_files::{check_sizes, probe};
        let need_probe = picture.is_none() || n.is_none() || size.is_none() || channels.is_none();
        let probe = if need_probe {
            Some(probe(Path::new(path))?)
        } else {
            None
        };
        let picture = picture.unwrap_or_else(|| probe.as_ref().is_some_and(|p| p.picture));
        let layout = if picture {
            ImageLayout::Picture {
                periodic: periodic.unwrap_or(false),
            }
        } else {
            ImageLayout::Folder
        };
        let p = probe.as_ref();
        let size = match size {
            Some(s) => s,
            None => {
                let p = p.expect("probed");
                if picture {
                    Self::CROP_SIDE.min(p.fitted_side())
                } else {
                    check_sizes(Path::new(path))?;
                    p.fitted_side().min(MAX_SIDE)
                }
            }
        };
        let n = match n {
            Some(n) => n,
            None if picture => Self::CROPS,
            None => p.expect("probed").count,
        };
        let channels = channels.unwrap_or_else(|| p.expect("probed").channels);
        Ok(Self {
            path: path.into(),
            layout,
            n,
            size,
            channels,
        })
    }

    /// What `data::image_files` reads.
    pub fn spec(&self) -> crate::data::image_files::Spec<'_> {
        crate::data::image_files::Spec {
            path: &self.path,
            layout: self.layout,
            size: self.size,
            channels: self.channels,
        }
    }

    /// `k` snapshots, or as many as a folder holds when it holds fewer (a picture gives any
    /// number of crops).
    pub fn at_most(&self, k: usize) -> usize {
        match self.layout {
            ImageLayout::Folder => k.min(self.n),
            ImageLayout::Picture { .. } => k,
        }
    }

    /// What the snapshots show, as `metrics.json`'s `pattern`: the file or folder's name.
    pub fn name(&self) -> String {
        Path::new(&self.path)
            .file_stem()
            .map_or_else(|| "images".into(), |s| s.to_string_lossy().into_owned())
    }
}

impl Source {
    pub fn kind(&self) -> DatasetKind {
        match self {
            Source::Ring(_) => DatasetKind::Ring,
            Source::TwoPeaks(_) => DatasetKind::TwoPeaks,
            Source::TwoMoons(_) => DatasetKind::TwoMoons,
            Source::Lorenz(_) => DatasetKind::Lorenz,
            Source::GrayScott(_) => DatasetKind::GrayScott,
            Source::Alife(_) => DatasetKind::Alife,
            Source::File(_) => DatasetKind::File,
            Source::Images(_) => DatasetKind::Images,
        }
    }
}

impl DatasetSettings {
    pub fn new(source: Source) -> Self {
        Self { source, seed: None }
    }

    pub fn kind(&self) -> DatasetKind {
        self.source.kind()
    }

    pub fn lorenz(&self) -> Option<&LorenzData> {
        match &self.source {
            Source::Lorenz(l) => Some(l),
            _ => None,
        }
    }

    pub fn gray_scott(&self) -> Option<&GrayScottData> {
        match &self.source {
            Source::GrayScott(g) => Some(g),
            _ => None,
        }
    }

    pub fn alife(&self) -> Option<&AlifeData> {
        match &self.source {
            Source::Alife(a) => Some(a),
            _ => None,
        }
    }

    pub fn file(&self) -> Option<&FileData> {
        match &self.source {
            Source::File(f) => Some(f),
            _ => None,
        }
    }

    pub fn file_mut(&mut self) -> Option<&mut FileData> {
        match &mut self.source {
            Source::File(f) => Some(f),
            _ => None,
        }
    }

    pub fn user_images(&self) -> Option<&ImagesData> {
        match &self.source {
            Source::Images(i) => Some(i),
            _ => None,
        }
    }

    /// Image kinds: channels of a pixel (Gray–Scott's u and v, an icon's RGB, a user's grey
    /// or colour pictures); point kinds: 0.
    pub fn channels(&self) -> usize {
        match &self.source {
            Source::GrayScott(_) => 2,
            Source::Alife(_) => 3,
            Source::Images(i) => i.channels,
            _ => 0,
        }
    }

    pub fn alife_mut(&mut self) -> Option<&mut AlifeData> {
        match &mut self.source {
            Source::Alife(a) => Some(a),
            _ => None,
        }
    }

    /// Point kinds drawn by equiflow: how many snapshots (a file's are known once read).
    pub fn rows(&self) -> Option<usize> {
        match &self.source {
            Source::Ring(p) | Source::TwoPeaks(p) => Some(p.n),
            Source::TwoMoons(m) => Some(m.n),
            Source::Lorenz(l) => Some(l.runs * l.steps_per_run),
            _ => None,
        }
    }

    /// Image kinds: how many snapshots and their side in pixels.
    pub fn images(&self) -> Option<(usize, usize)> {
        match &self.source {
            Source::GrayScott(g) => Some((g.n, g.size)),
            Source::Alife(a) => Some((a.n, a.size)),
            Source::Images(i) => Some((i.n, i.size)),
            _ => None,
        }
    }

    /// Image kinds: the snapshot count and side, to edit.
    pub fn images_mut(&mut self) -> Option<(&mut usize, &mut usize)> {
        match &mut self.source {
            Source::GrayScott(g) => Some((&mut g.n, &mut g.size)),
            Source::Alife(a) => Some((&mut a.n, &mut a.size)),
            Source::Images(i) => Some((&mut i.n, &mut i.size)),
            _ => None,
        }
    }

    /// What the images show, as `metrics.json`'s `pattern`: the Gray–Scott regime, or the
    /// artificial-life target (empty for point data).
    pub fn pattern_name(&self) -> String {
        match &self.source {
            Source::GrayScott(g) => g.pattern.name().into(),
            Source::Alife(a) => a.target.clone(),
            Source::Images(i) => i.name(),
            _ => String::new(),
        }
    }
}

/// The `[dataset]` table as a file holds it: every kind's keys, each optional. Files written
/// before the settings were typed hold every key of every kind; a key of another kind is
/// accepted only at the value those files wrote for it, so a setting that would do nothing
/// is an error, not a silent no-op.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlatDataset {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<DatasetKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    noise: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    runs: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    steps_per_run: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sigma: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rho: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    beta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pattern: Option<String>,
    #[serde(
        default,
        deserialize_with = "zero_is_none",
        skip_serializing_if = "Option::is_none"
    )]
    f: Option<f64>,
    #[serde(
        default,
        deserialize_with = "zero_is_none",
        skip_serializing_if = "Option::is_none"
    )]
    k: Option<f64>,
    #[serde(
        default,
        deserialize_with = "zero_is_none",
        skip_serializing_if = "Option::is_none"
    )]
    du: Option<f64>,
    #[serde(
        default,
        deserialize_with = "zero_is_none",
        skip_serializing_if = "Option::is_none"
    )]
    dv: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sim_steps: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    discs: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    icon_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    icons: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    columns: Option<Vec<Column>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    standardise: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    velocity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crops: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    periodic: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resize: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    channels: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
}

/// Every `[dataset]` key a file may hold, and the kinds it belongs to.
const DATASET_KEYS: &[(&str, &[DatasetKind])] = {
    use DatasetKind::*;
    &[
        (
            "kind",
            &[
                Ring, TwoPeaks, TwoMoons, Lorenz, GrayScott, Alife, File, Images,
            ],
        ),
        (
            "seed",
            &[
                Ring, TwoPeaks, TwoMoons, Lorenz, GrayScott, Alife, File, Images,
            ],
        ),
        (
            "n",
            &[Ring, TwoPeaks, TwoMoons, GrayScott, Alife, File, Images],
        ),
        ("noise", &[TwoMoons]),
        ("runs", &[Lorenz]),
        ("steps_per_run", &[Lorenz]),
        ("dt", &[Lorenz]),
        ("sigma", &[Lorenz]),
        ("rho", &[Lorenz]),
        ("beta", &[Lorenz]),
        ("pattern", &[GrayScott]),
        ("f", &[GrayScott]),
        ("k", &[GrayScott]),
        ("du", &[GrayScott]),
        ("dv", &[GrayScott]),
        ("sim_steps", &[GrayScott]),
        ("discs", &[GrayScott]),
        ("size", &[GrayScott, Alife, Images]),
        ("target", &[Alife]),
        ("icon_size", &[Alife]),
        ("icons", &[Alife]),
        ("path", &[File, Images]),
        ("columns", &[File]),
        ("standardise", &[File]),
        ("velocity", &[File]),
        ("crops", &[Images]),
        ("periodic", &[Images]),
        ("resize", &[Images]),
        ("channels", &[Images]),
    ]
};

impl DatasetKind {
    /// Its name in a preset file.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Ring => "ring",
            DatasetKind::TwoPeaks => "two_peaks",
            DatasetKind::TwoMoons => "two_moons",
            DatasetKind::Lorenz => "lorenz",
            DatasetKind::GrayScott => "gray_scott",
            DatasetKind::Alife => "alife",
            DatasetKind::File => "file",
            DatasetKind::Images => "images",
        }
    }
}

impl TryFrom<FlatDataset> for DatasetSettings {
    type Error = String;

    fn try_from(f: FlatDataset) -> Result<Self, String> {
        let kind = f.kind.unwrap_or(DatasetKind::Ring);
        // What files written before the settings were typed hold for another kind's keys.
        let legacy = FlatDataset::legacy().everything();
        let given = f.clone().everything();
        for (key, owners) in DATASET_KEYS {
            if owners.contains(&kind) {
                continue;
            }
            let (Some(v), old) = (given.get(*key), legacy.get(*key)) else {
                continue;
            };
            if old != Some(v) {
                let owners: Vec<&str> = owners.iter().map(|k| k.name()).collect();
                return Err(format!(
                    "dataset.{key} is not a setting of {} data (it applies to: {})",
                    kind.name(),
                    owners.join(", ")
                ));
            }
        }
        let source = match kind {
            DatasetKind::Ring | DatasetKind::TwoPeaks => {
                let p = PointCount {
                    n: f.n.unwrap_or(PointCount::default().n),
                };
                if kind == DatasetKind::Ring {
                    Source::Ring(p)
                } else {
                    Source::TwoPeaks(p)
                }
            }
            DatasetKind::TwoMoons => {
                let d = Moons::default();
                Source::TwoMoons(Moons {
                    n: f.n.unwrap_or(d.n),
                    noise: f.noise.unwrap_or(d.noise),
                })
            }
            DatasetKind::Lorenz => {
                let d = LorenzData::default();
                Source::Lorenz(LorenzData {
                    runs: f.runs.unwrap_or(d.runs),
                    steps_per_run: f.steps_per_run.unwrap_or(d.steps_per_run),
                    dt: f.dt.unwrap_or(d.dt),
                    sigma: f.sigma.unwrap_or(d.sigma),
                    rho: f.rho.unwrap_or(d.rho),
                    beta: f.beta.unwrap_or(d.beta),
                })
            }
            DatasetKind::GrayScott => {
                let d = GrayScottData::default();
                let pattern = match &f.pattern {
                    None => d.pattern,
                    Some(name) => Regime::from_name(name).ok_or_else(|| {
                        let known: Vec<&str> = Regime::ALL.iter().map(|r| r.name()).collect();
                        format!(
                            "unknown dataset.pattern '{name}'; known: {}",
                            known.join(", ")
                        )
                    })?,
                };
                Source::GrayScott(GrayScottData {
                    n: f.n.unwrap_or(d.n),
                    size: f.size.unwrap_or(d.size),
                    pattern,
                    f: f.f,
                    k: f.k,
                    du: f.du,
                    dv: f.dv,
                    sim_steps: f.sim_steps.unwrap_or(d.sim_steps),
                    discs: f.discs.unwrap_or(d.discs),
                })
            }
            DatasetKind::Alife => {
                let d = AlifeData::default();
                Source::Alife(AlifeData {
                    n: f.n.unwrap_or(d.n),
                    size: f.size.unwrap_or(d.size),
                    target: f.target.unwrap_or(d.target),
                    icon_size: f.icon_size.unwrap_or(d.icon_size),
                    icons: f.icons.unwrap_or(d.icons),
                })
            }
            DatasetKind::File => Source::File(FileData {
                path: f.path.unwrap_or_default(),
                columns: f.columns.unwrap_or_default(),
                standardise: f.standardise.unwrap_or(true),
                n: f.n,
                velocity: f.velocity,
            }),
            DatasetKind::Images => Source::Images(images_from_flat(&f)?),
        };
        Ok(DatasetSettings {
            source,
            seed: f.seed,
        })
    }
}

impl FlatDataset {
    /// The keys set, as TOML values (to compare one kind's keys with another's).
    fn everything(self) -> toml::Table {
        toml::Table::try_from(&self).expect("a flat dataset table always serialises")
    }

    /// What files written before the settings were typed held: every kind's defaults.
    fn legacy() -> FlatDataset {
        let c = crate::data::lorenz::Lorenz::CLASSIC;
        FlatDataset {
            kind: Some(DatasetKind::Ring),
            n: Some(10_000),
            noise: Some(0.1),
            runs: Some(10),
            steps_per_run: Some(5000),
            dt: Some(0.01),
            sigma: Some(c.sigma),
            rho: Some(c.rho),
            beta: Some(c.beta),
            pattern: Some("waves".into()),
            f: None,
            k: None,
            du: None,
            dv: None,
            size: Some(128),
            sim_steps: Some(4000),
            discs: Some(8),
            target: Some("dot".into()),
            icon_size: Some(64),
            icons: Some(10),
            path: None,
            columns: None,
            standardise: None,
            velocity: None,
            crops: None,
            periodic: None,
            resize: None,
            channels: None,
            seed: None,
        }
    }
}

/// `kind = "images"`: a folder takes `n` and `resize`, a picture `crops`, `size` and
/// `periodic`; a key of the other layout is an error, and what is missing is read from
/// the pictures.
fn images_from_flat(f: &FlatDataset) -> Result<ImagesData, String> {
    let Some(path) = f.path.clone().filter(|p| !p.is_empty()) else {
        return Err("dataset.path must name a folder of pictures or one picture".into());
    };
    let picture_keys = f.crops.is_some() || f.size.is_some() || f.periodic.is_some();
    let folder_keys = f.n.is_some() || f.resize.is_some();
    if picture_keys && folder_keys {
        return Err(
            "dataset.crops, size and periodic crop one picture; dataset.n and resize take the \
             pictures of a folder: give one set"
                .into(),
        );
    }
    let picture = if picture_keys {
        Some(true)
    } else if folder_keys {
        Some(false)
    } else {
        None
    };
    let on_disk = Path::new(&path).is_dir();
    if picture == Some(true) && on_disk {
        return Err(format!(
            "{path} is a folder: dataset.crops, size and periodic crop one picture (a folder \
             takes dataset.n and resize)"
        ));
    }
    if picture == Some(false) && Path::new(&path).is_file() {
        return Err(format!(
            "{path} is one picture: dataset.n and resize take the pictures of a folder (a \
             picture takes dataset.crops, size and periodic)"
        ));
    }
    if let Some(c) = f.channels
        && c != 1
        && c != 3
    {
        return Err(format!(
            "dataset.channels must be 1 (grey) or 3 (colour), not {c}"
        ));
    }
    ImagesData::resolve(
        &path,
        picture,
        f.crops.or(f.n),
        f.size.or(f.resize),
        f.channels,
        f.periodic,
    )
    .map_err(|e| e.to_string())
}

impl From<DatasetSettings> for FlatDataset {
    fn from(d: DatasetSettings) -> Self {
        let mut f = FlatDataset {
            kind: Some(d.kind()),
            seed: d.seed,
            ..Default::default()
        };
        match d.source {
            Source::Ring(p) | Source::TwoPeaks(p) => f.n = Some(p.n),
            Source::TwoMoons(m) => {
                f.n = Some(m.n);
                f.noise = Some(m.noise);
            }
            Source::Lorenz(l) => {
                f.runs = Some(l.runs);
                f.steps_per_run = Some(l.steps_per_run);
                f.dt = Some(l.dt);
                f.sigma = Some(l.sigma);
                f.rho = Some(l.rho);
                f.beta = Some(l.beta);
            }
            Source::GrayScott(g) => {
                f.n = Some(g.n);
                f.size = Some(g.size);
                f.pattern = Some(g.pattern.name().into());
                (f.f, f.k, f.du, f.dv) = (g.f, g.k, g.du, g.dv);
                f.sim_steps = Some(g.sim_steps);
                f.discs = Some(g.discs);
            }
            Source::Alife(a) => {
                f.n = Some(a.n);
                f.size = Some(a.size);
                f.target = Some(a.target);
                f.icon_size = Some(a.icon_size);
                f.icons = Some(a.icons);
            }
            Source::File(d) => {
                f.path = Some(d.path);
                f.columns = (!d.columns.is_empty()).then_some(d.columns);
                f.standardise = Some(d.standardise);
                f.n = d.n;
                f.velocity = d.velocity;
            }
            Source::Images(i) => {
                f.path = Some(i.path);
                f.channels = Some(i.channels);
                match i.layout {
                    ImageLayout::Folder => {
                        f.n = Some(i.n);
                        f.resize = Some(i.size);
                    }
                    ImageLayout::Picture { periodic } => {
                        f.crops = Some(i.n);
                        f.size = Some(i.size);
                        f.periodic = Some(periodic);
                    }
                }
            }
        }
        f
    }
}

/// How the learning rate moves over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    Constant,
    /// Half a cosine from lr down to 0 over all steps: the last steps settle instead of
    /// jittering at full step size.
    Cosine,
}

impl LrSchedule {
    /// The learning rate at `step` of `total`.
    pub fn at(self, lr: f64, step: usize, total: usize) -> f64 {
        match self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine => {
                let frac = step as f64 / total.max(1) as f64;
                lr * 0.5 * (1.0 + (std::f64::consts::PI * frac.min(1.0)).cos())
            }
        }
    }
}

/// What the denoiser's output stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prediction {
    /// The noise eps; the loss weighs every noise level alike in eps units.
    Eps,
    /// The clean point x0 (a denoiser): output ≈ input at low noise.
    X0,
    /// v = sqrt(a) eps − sqrt(1 − a) x0: well scaled at every noise level (images).
    V,
}

impl Prediction {
    /// The byte a saved UNet keeps its parameterisation as.
    pub fn code(self) -> u8 {
        match self {
            Prediction::Eps => 0,
            Prediction::X0 => 1,
            Prediction::V => 2,
        }
    }

    pub fn from_code(code: u8) -> Self {
        match code {
            0 => Prediction::Eps,
            1 => Prediction::X0,
            _ => Prediction::V,
        }
    }
}

/// How the DDPM noise level a_t falls over the steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseSchedule {
    /// a_i = (cos(π i/(n−1))·(1 − 2e−3) + 1) / 2 (the low-dimensional reference).
    Cosine,
    /// beta linear from `beta_start` to `beta_end`, a_i = Π (1 − beta_j) (the image reference).
    Linear,
}

/// Which image denoiser (`nn::score_unet::ScoreUnet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnetArch {
    /// Two plain convolutions per block, no normalisation, no residuals (runs written before
    /// the residual net existed hold this one).
    Plain,
    /// The reference class: residual blocks with GroupNorm, the time embedding added inside
    /// each block, `blocks` per level, optional self-attention at the lowest resolution.
    Residual,
}

/// How the plain UNet's hidden convolutions start (the residual net normalises, so its
/// start scale does not matter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvInit {
    /// burn's and PyTorch's default, weight variance 1 / (3 fan-in): with no normalisation
    /// the signal fades through the stack, so training starts from a plateau.
    #[default]
    Default,
    /// He, variance 2 / fan-in: the signal keeps its scale through conv + SiLU.
    He,
}

/// Which diffusion steps the image denoiser trains on. Everything downstream reads the
/// score at step tau only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Levels {
    /// Uniform over all steps (the reference; reverse-diffusion samples need every level).
    All,
    /// Only step tau: every step of training is spent where the score is read.
    Tau,
    /// A share `tau_share` of each batch at tau, the rest uniform.
    Mix,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoreSettings {
    pub hidden: usize,
    pub prediction: Prediction,
    /// Diffusion steps of the cosine schedule.
    pub diffusion_steps: usize,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub lr_schedule: LrSchedule,
    pub weight_decay: f64,
    /// The fixed noise level at which the score is read: index into the schedule
    /// (9 of 100 gives a ≈ 0.979, sigma ≈ 0.15).
    pub tau_step: usize,
    /// Samples drawn from the trained model by reverse diffusion (to compare with the data).
    pub samples: usize,
    pub schedule: NoiseSchedule,
    pub beta_start: f64,
    pub beta_end: f64,
    /// Images: UNet channels at full, half and quarter resolution.
    pub channels: Vec<usize>,
    /// Images: the denoiser's architecture.
    pub arch: UnetArch,
    /// Images, plain net: the initial scale of its hidden convolutions.
    pub init: ConvInit,
    /// Images, residual net: residual blocks per level.
    pub blocks: usize,
    /// Images, residual net: self-attention between the two mid blocks.
    pub attention: bool,
    /// Images: which diffusion steps training draws.
    pub levels: Levels,
    /// Images, `levels = "mix"`: share of each batch drawn at step tau.
    pub tau_share: f64,
    /// Images: clip the gradient to this global norm before each step (the reference: 1).
    pub grad_clip: Option<f64>,
    /// Images: steps of linear learning-rate warm-up before the schedule (the reference: 500).
    pub warmup: usize,
}

impl Default for ScoreSettings {
    fn default() -> Self {
        Self {
            hidden: 64,
            prediction: Prediction::Eps,
            diffusion_steps: 100,
            epochs: 512,
            batch: 2048,
            lr: 1e-2,
            lr_schedule: LrSchedule::Cosine,
            weight_decay: 1e-5,
            tau_step: 9,
            samples: 1000,
            schedule: NoiseSchedule::Cosine,
            beta_start: 1e-4,
            beta_end: 0.1,
            channels: vec![16, 32, 64],
            arch: UnetArch::Plain,
            init: ConvInit::Default,
            blocks: 2,
            attention: false,
            levels: Levels::All,
            tau_share: 0.5,
            grad_clip: None,
            warmup: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowSettings {
    pub hidden: usize,
    /// Input encoding [x, sin(2^k x), cos(2^k x)] for k = 0..freqs.
    pub freqs: usize,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub lr_schedule: LrSchedule,
    pub weight_decay: f64,
    pub estimator: Estimator,
    /// Hutchinson probes per estimate.
    pub probes: usize,
    /// Hutchinson: multiply two independent estimates (unbiased r², no hidden penalty).
    pub unbiased: bool,
    /// Exact estimator: weight λ of the explicit ‖sym J‖²_F penalty. 2/10 reproduces the
    /// penalty hidden in the 10-probe Hutchinson reference, which favours circulating flows.
    pub sym_penalty: f64,
    /// Momentum of the output batch-norm's running statistics.
    pub bn_momentum: f64,
    /// Images (the NCA): hidden 1×1 layers between the 3×3 stencil and the output layer.
    pub depth: usize,
    /// Images (the NCA): end with a batch-norm without affine, which blocks v = 0.
    pub output_bn: bool,
}

impl Default for FlowSettings {
    fn default() -> Self {
        Self {
            hidden: 64,
            freqs: 4,
            epochs: 1024,
            batch: 2048,
            lr: 1e-2,
            lr_schedule: LrSchedule::Cosine,
            weight_decay: 1e-5,
            estimator: Estimator::Auto,
            probes: 10,
            unbiased: false,
            sym_penalty: 0.2,
            bn_momentum: 0.1,
            depth: 1,
            output_bn: true,
        }
    }
}

impl FlowSettings {
    /// The estimator `auto` resolves to for data of dimension `dim`.
    pub fn resolved_estimator(&self, dim: usize) -> Estimator {
        match self.estimator {
            Estimator::Auto if dim <= 8 => Estimator::Exact,
            Estimator::Auto => Estimator::Hutchinson,
            e => e,
        }
    }
}

/// The training-free image flow v = K * s (METHOD §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelKind {
    /// A 1×1 channel mixer: for two channels g·[[0, 1], [−1, 0]]/√2.
    Mix,
    /// A random k×k kernel with K[o][i](d) = −K[i][o](−d).
    Spatial,
    /// One random odd k×k stencil on every channel alike: moves coloured shapes as a whole.
    Shared,
}

/// The axis a three-channel mixer K x = ω × x turns colours about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MixerAxis {
    /// Drawn from `sde.kernel_seed` alone (every run before this setting existed).
    #[default]
    Random,
    /// Seeded, but across the target's ink colours, so that every ink is turned and moves
    /// (artificial life; a colour along the axis would stay put).
    Inks,
}

/// Which v drives an image simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageFlow {
    /// v = K * s with a skew kernel: no second network (METHOD §4).
    #[default]
    TrainingFree,
    /// A neural cellular automaton trained with the equilibrium loss (METHOD §3); its
    /// settings are the `[flow]` section.
    Nca,
}

/// Simulating images: dx = (v + eta s) dt + sqrt(2 eta dt) dW with Heun (METHOD §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SdeSettings {
    /// The training-free kernel flow, or a trained NCA.
    pub flow: ImageFlow,
    pub kernel: KernelKind,
    /// Side of the spatial kernel (odd).
    pub kernel_size: usize,
    /// +1 or −1: the direction the flow runs.
    pub sign: f64,
    /// Strength of the flow: K is scaled to this norm. Too strong a flow outruns the
    /// score's pull back to the data, and shapes come apart.
    pub gain: f64,
    /// Seeds the kernel (for `axis = "inks"`, which axis across the ink).
    pub kernel_seed: u64,
    /// The axis of a three-channel mixer: random, or across the target's inks.
    pub axis: MixerAxis,
    pub eta: f64,
    pub dt: f64,
    pub steps: usize,
    /// Weight of the newest denoised state in the displayed running average (1 = no EMA).
    pub ema: f64,
    /// Side of the live canvas (everything is convolutional, so it may exceed the training
    /// size); unset, the training size.
    #[serde(
        deserialize_with = "zero_is_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub canvas: Option<usize>,
    /// Clamp the denoised x̂0 to [-1, 1] before the score is formed from it (the reference):
    /// the score then never pulls a pixel past the data's range.
    pub clip_x0: bool,
}

impl Default for SdeSettings {
    fn default() -> Self {
        Self {
            flow: ImageFlow::TrainingFree,
            kernel: KernelKind::Mix,
            kernel_size: 3,
            sign: 1.0,
            gain: 1.0,
            kernel_seed: 0,
            axis: MixerAxis::Random,
            eta: 0.1,
            dt: 0.01,
            steps: 300,
            ema: 0.1,
            canvas: None,
            clip_x0: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSettings {
    /// Data states simulated for the MMD² test.
    pub mmd_points: usize,
    pub rk4_steps: usize,
    pub dt: f64,
    pub mmd_sigma: f64,
    /// Lorenz: twin trajectories started, of which the first `lyapunov_keep` that stay
    /// bounded (|x| < 4) are averaged.
    pub lyapunov_candidates: usize,
    pub lyapunov_keep: usize,
    pub lyapunov_steps: usize,
    /// RK4 steps between renormalisations of the twin's separation.
    pub lyapunov_window: usize,
    /// Lorenz: data states at which the field is compared with the true one.
    pub cos_points: usize,
    /// Gray–Scott: held-out patterns the learned displacement is compared from.
    pub cos_starts: usize,
    /// Gray–Scott: SDE steps of the learned displacement (EMA of x0 minus the start).
    pub cos_sde_steps: usize,
    /// Turing: random non-skew kernels drawn for the |cos| baseline (mean ± sd over them).
    pub random_draws: usize,
    /// Gray–Scott: simulator steps of the true displacement.
    pub cos_gs_steps: usize,
    /// Artificial life: held-out images whose blobs are tracked (`metrics::blob_motion`).
    pub blob_starts: usize,
    /// Artificial life: SDE steps they are tracked over, and steps between frames.
    pub blob_steps: usize,
    pub blob_every: usize,
    /// Artificial life: ink (0 white … 1 black) above which a pixel belongs to a blob.
    pub blob_threshold: f64,
    /// Artificial life: SDE steps from uniform noise on the live canvas, after which the
    /// blobs are counted and compared with the target (none: the protocol is skipped).
    pub noise_steps: Option<usize>,
    /// Artificial life: canvases run from noise at once.
    pub noise_starts: usize,
    /// Which measuring protocols run: ours, the paper's (`_ref` fields), or both.
    pub protocol: Protocols,
}

/// The measuring protocols a run reports (`eval.protocol`). The paper's (METHOD §7) are
/// written with a `_ref` suffix beside ours, so our numbers can be set beside its honestly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocols {
    Ours,
    Reference,
    Both,
}

impl Protocols {
    pub fn ours(self) -> bool {
        self != Protocols::Reference
    }

    pub fn reference(self) -> bool {
        self != Protocols::Ours
    }
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            mmd_points: 1000,
            rk4_steps: 100,
            dt: 0.1,
            mmd_sigma: 0.5,
            lyapunov_candidates: 256,
            lyapunov_keep: 64,
            lyapunov_steps: 2000,
            lyapunov_window: 10,
            cos_points: 1024,
            cos_starts: 8,
            cos_sde_steps: 200,
            random_draws: 10,
            cos_gs_steps: 20,
            blob_starts: 4,
            blob_steps: 400,
            blob_every: 10,
            blob_threshold: 0.3,
            noise_steps: None,
            noise_starts: 1,
            protocol: Protocols::Both,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Preset {
    pub name: String,
    pub seed: u64,
    pub dataset: DatasetSettings,
    pub score: ScoreSettings,
    pub flow: FlowSettings,
    pub eval: EvalSettings,
    /// Images only: how the training-free flow is simulated.
    pub sde: SdeSettings,
    /// Overrides applied by `--quick`, as `"section.key" = value`.
    #[serde(skip_serializing_if = "toml::Table::is_empty")]
    pub quick: toml::Table,
}

impl Default for Preset {
    fn default() -> Self {
        Self {
            name: "custom".into(),
            seed: 0,
            dataset: DatasetSettings::default(),
            score: ScoreSettings::default(),
            flow: FlowSettings::default(),
            eval: EvalSettings::default(),
            sde: SdeSettings::default(),
            quick: toml::Table::new(),
        }
    }
}

/// Fewer snapshots than this from a file cannot train a score model worth the name.
pub const MIN_FILE_ROWS: usize = 100;

/// The largest image side (training images, live canvas) the settings accept.
pub const MAX_SIDE: usize = 4096;
/// The most memory the training images may take, in GiB.
pub const MAX_DATA_GIB: f64 = 8.0;

/// Names of the built-in presets, comma separated.
pub fn builtin_names() -> String {
    BUILTIN
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Preset {
    /// The seed the data are drawn with (`dataset.seed`, else `seed`).
    pub fn data_seed(&self) -> u64 {
        self.dataset.seed.unwrap_or(self.seed)
    }

    /// The preset's name made safe as one file-name component (a name like `../x` or
    /// `a/b` must not place files outside the folder they are meant for).
    pub fn file_stem(&self) -> String {
        safe_file_name(&self.name, "preset")
    }

    /// Resolve `name_or_path` (a built-in name or a `.toml` file), then apply the quick
    /// overrides (if asked) and the `--set` pairs, then validate.
    pub fn load(name_or_path: &str, quick: bool, sets: &[String]) -> Result<Self, PresetError> {
        let (origin, text) = read_source(name_or_path)?;
        Self::from_toml_str(&origin, &text, quick, sets)
    }

    pub fn from_toml_str(
        origin: &str,
        text: &str,
        quick: bool,
        sets: &[String],
    ) -> Result<Self, PresetError> {
        let parse_err = |e: &dyn std::fmt::Display| PresetError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        };
        let mut preset: Preset = toml::from_str(text).map_err(|e| parse_err(&e))?;
        let mut pairs: Vec<(String, toml::Value)> = Vec::new();
        if quick {
            pairs.extend(preset.quick.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        for arg in sets {
            let (k, v) = arg
                .split_once('=')
                .ok_or_else(|| PresetError::BadSet { arg: arg.clone() })?;
            pairs.push((k.trim().to_string(), parse_value(v.trim())));
        }
        if !pairs.is_empty() {
            let mut table = toml::Table::try_from(&preset).map_err(|e| parse_err(&e))?;
            for (k, v) in pairs {
                set_path(&mut table, &k, v)?;
            }
            preset = table.try_into().map_err(|e| parse_err(&e))?;
        }
        preset.validate()?;
        Ok(preset)
    }

    /// The settings of built-in (or file) preset `base` for the user's own snapshots `file`:
    /// the model, training and metric settings of `base` (its quick ones with `quick`), the
    /// data from the file, named after it; then the `--set` pairs.
    pub fn for_file(
        base: &str,
        file: FileData,
        quick: bool,
        sets: &[String],
    ) -> Result<Self, PresetError> {
        Self::for_data(base, Source::File(file), quick, sets)
    }

    /// The settings of `base` (a built-in or a file) on the user's `source` (a point file or
    /// pictures), named after the file or folder.
    pub fn for_data(
        base: &str,
        source: Source,
        quick: bool,
        sets: &[String],
    ) -> Result<Self, PresetError> {
        let (origin, text) = read_source(base)?;
        let parse_err = |e: &dyn std::fmt::Display| PresetError::Parse {
            origin: origin.clone(),
            message: e.to_string().trim_end().to_string(),
        };
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| parse_err(&e))?;
        let path = match &source {
            Source::File(f) => f.path.clone(),
            Source::Images(i) => i.path.clone(),
            _ => String::new(),
        };
        let name = Path::new(&path)
            .file_stem()
            .map_or("data".into(), |s| s.to_string_lossy().to_string());
        table.insert("name".into(), toml::Value::String(name));
        let dataset = DatasetSettings::new(source);
        let dataset = toml::Table::try_from(&dataset).map_err(|e| parse_err(&e))?;
        table.insert("dataset".into(), toml::Value::Table(dataset));
        // The base's quick settings of its own data do not apply to the user's.
        if let Some(toml::Value::Table(q)) = table.get_mut("quick") {
            q.retain(|k, _| !k.starts_with("dataset."));
        }
        let text = toml::to_string(&table).map_err(|e| parse_err(&e))?;
        Self::from_toml_str(&origin, &text, quick, sets)
    }

    /// The built-in preset whose settings suit image snapshots: a pattern-forming system.
    pub const IMAGE_BASE: &'static str = "gs-waves";

    /// The built-in preset whose settings suit snapshots of dimension `dim` best: two moons
    /// (standardised 2-D data) in the plane, Lorenz (standardised 3-D data) above.
    pub fn closest_builtin(dim: usize) -> &'static str {
        if dim <= 2 { "two_moons" } else { "lorenz" }
    }

    /// The resolved settings as TOML (what a run directory stores).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("settings always serialise")
    }

    pub fn validate(&self) -> Result<(), PresetError> {
        let bad = |key: &str, reason: &str| {
            Err(PresetError::Invalid {
                key: key.into(),
                reason: reason.into(),
            })
        };
        let positive = [
            ("score.hidden", self.score.hidden),
            ("score.epochs", self.score.epochs),
            ("score.batch", self.score.batch),
            ("score.samples", self.score.samples),
            ("flow.hidden", self.flow.hidden),
            ("flow.epochs", self.flow.epochs),
            ("flow.batch", self.flow.batch),
            ("flow.probes", self.flow.probes),
            ("eval.mmd_points", self.eval.mmd_points),
            ("eval.rk4_steps", self.eval.rk4_steps),
            ("eval.lyapunov_keep", self.eval.lyapunov_keep),
            ("eval.lyapunov_steps", self.eval.lyapunov_steps),
            ("eval.lyapunov_window", self.eval.lyapunov_window),
            ("eval.cos_points", self.eval.cos_points),
            ("eval.noise_starts", self.eval.noise_starts),
        ];
        for (key, v) in positive {
            if v == 0 {
                return bad(key, "must be at least 1");
            }
        }
        let n = match &self.dataset.source {
            Source::Ring(p) | Source::TwoPeaks(p) => Some(p.n),
            Source::TwoMoons(m) => Some(m.n),
            Source::Lorenz(_) => None,
            Source::GrayScott(g) => Some(g.n),
            Source::Alife(a) => Some(a.n),
            Source::File(f) => f.n,
            // Checked with the other image settings (`dataset.n` or `dataset.crops`).
            Source::Images(_) => None,
        };
        if n.is_some_and(|n| n < 2) {
            return bad("dataset.n", "needs at least 2 points");
        }
        if let Some(l) = self.dataset.lorenz() {
            if l.runs == 0 || l.steps_per_run < 2 {
                return bad(
                    "dataset.steps_per_run",
                    "Lorenz needs runs ≥ 1 and ≥ 2 steps",
                );
            }
            for (key, v) in [
                ("dataset.dt", l.dt),
                ("dataset.sigma", l.sigma),
                ("dataset.rho", l.rho),
                ("dataset.beta", l.beta),
            ] {
                if !(v.is_finite() && v > 0.0) {
                    return bad(key, "must be a finite number above 0");
                }
            }
        }
        if let Some(f) = self.dataset.file() {
            if f.path.trim().is_empty() {
                return bad(
                    "dataset.path",
                    "names no file; give the CSV, TSV or .npy file of your snapshots",
                );
            }
            if f.velocity.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return bad("dataset.velocity", "names no file");
            }
            let min = MIN_FILE_ROWS;
            if f.n.is_some_and(|n| n < min) {
                return bad(
                    "dataset.n",
                    &format!("needs at least {min} snapshots (or unset: every row)"),
                );
            }
        }
        if let Source::TwoMoons(m) = &self.dataset.source
            && !(m.noise.is_finite() && m.noise >= 0.0)
        {
            return bad("dataset.noise", "must be a finite number ≥ 0");
        }
        if self.eval.mmd_points < 2 {
            return bad("eval.mmd_points", "needs at least 2 points");
        }
        if self.score.diffusion_steps < 2 {
            return bad("score.diffusion_steps", "needs at least 2 steps");
        }
        if self.score.tau_step >= self.score.diffusion_steps {
            return bad("score.tau_step", "must be below score.diffusion_steps");
        }
        let positive_reals = [
            ("score.lr", self.score.lr),
            ("flow.lr", self.flow.lr),
            ("eval.dt", self.eval.dt),
            ("eval.mmd_sigma", self.eval.mmd_sigma),
        ];
        for (key, v) in positive_reals {
            if !(v.is_finite() && v > 0.0) {
                return bad(key, "must be a finite number above 0");
            }
        }
        let non_negative = [
            ("score.weight_decay", self.score.weight_decay),
            ("flow.weight_decay", self.flow.weight_decay),
            ("flow.sym_penalty", self.flow.sym_penalty),
        ];
        for (key, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return bad(key, "must be a finite number ≥ 0");
            }
        }
        if !(0.0..=1.0).contains(&self.flow.bn_momentum) {
            return bad("flow.bn_momentum", "must lie in [0, 1]");
        }
        if !(self.score.beta_start > 0.0
            && self.score.beta_start <= self.score.beta_end
            && self.score.beta_end < 1.0)
        {
            return bad(
                "score.beta_end",
                "needs 0 < score.beta_start ≤ score.beta_end < 1",
            );
        }
        if self.dataset.kind().is_image() {
            self.validate_image()?;
        }
        Ok(())
    }

    fn validate_image(&self) -> Result<(), PresetError> {
        let bad = |key: &str, reason: String| {
            Err(PresetError::Invalid {
                key: key.into(),
                reason,
            })
        };
        let Some((n, size)) = self.dataset.images() else {
            return Ok(());
        };
        let (alife, gray_scott) = (self.dataset.alife(), self.dataset.gray_scott());
        let channels = self.dataset.channels();
        let folder = self
            .dataset
            .user_images()
            .is_some_and(|i| i.layout == ImageLayout::Folder);
        if n == 0 {
            let key = if folder { "dataset.n" } else { "dataset.crops" };
            return bad(key, "needs at least one snapshot".into());
        }
        if size < 8 || !size.is_multiple_of(4) || size > MAX_SIDE {
            return bad(
                if folder {
                    "dataset.resize"
                } else {
                    "dataset.size"
                },
                format!("must be a multiple of 4 between 8 and {MAX_SIDE}"),
            );
        }
        // The snapshots are held in memory: refuse a set that cannot fit rather than abort.
        let bytes = n as f64 * channels as f64 * (size * size) as f64 * 4.0;
        if bytes > MAX_DATA_GIB * f64::from(1u32 << 30) {
            return bad(
                "dataset.n",
                format!(
                    "{n} images of {size}² need {:.1} GiB of memory; at most {MAX_DATA_GIB} GiB \
                     (use fewer or smaller images)",
                    bytes / f64::from(1u32 << 30)
                ),
            );
        }
        let checked = if let Some(a) = alife {
            vec![
                ("dataset.icons", a.icons),
                ("eval.blob_starts", self.eval.blob_starts),
                ("eval.blob_steps", self.eval.blob_steps),
                ("eval.blob_every", self.eval.blob_every),
            ]
        } else if let Some(g) = gray_scott {
            vec![
                ("dataset.sim_steps", g.sim_steps),
                ("dataset.discs", g.discs),
                ("eval.cos_starts", self.eval.cos_starts),
                ("eval.cos_sde_steps", self.eval.cos_sde_steps),
                ("eval.random_draws", self.eval.random_draws),
                ("eval.cos_gs_steps", self.eval.cos_gs_steps),
            ]
        } else {
            Vec::new()
        };
        for (key, v) in checked.into_iter().chain([("sde.steps", self.sde.steps)]) {
            if v == 0 {
                return bad(key, "must be at least 1".into());
            }
        }
        if let Some(a) = alife
            && !(4..=size).contains(&a.icon_size)
        {
            return bad(
                "dataset.icon_size",
                format!("must lie between 4 and the canvas side ({size})"),
            );
        }
        if alife.is_none() && self.sde.axis == MixerAxis::Inks {
            return bad(
                "sde.axis",
                "\"inks\" needs a target's colours: only artificial-life presets have one".into(),
            );
        }
        if alife.is_some() && !(self.eval.blob_threshold > 0.0 && self.eval.blob_threshold < 1.0) {
            return bad("eval.blob_threshold", "must lie in (0, 1)".into());
        }
        if let Some(c) = self.sde.canvas
            && (c < 8 || !c.is_multiple_of(4) || c > MAX_SIDE)
        {
            return bad(
                "sde.canvas",
                format!(
                    "must be 0 (the training size) or a multiple of 4 between 8 and {MAX_SIDE}"
                ),
            );
        }
        let rate = |v: fn(&GrayScottData) -> Option<f64>| gray_scott.and_then(v).unwrap_or(0.0);
        for (key, v) in [
            ("dataset.f", rate(|g| g.f)),
            ("dataset.k", rate(|g| g.k)),
            ("dataset.du", rate(|g| g.du)),
            ("dataset.dv", rate(|g| g.dv)),
            ("sde.eta", self.sde.eta),
            ("sde.gain", self.sde.gain),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(key, "must be a finite number ≥ 0".into());
            }
        }
        if self.score.channels.len() != 3 || self.score.channels.contains(&0) {
            return bad(
                "score.channels",
                "needs three channel counts ≥ 1, e.g. [16, 32, 64]".into(),
            );
        }
        if self.score.blocks == 0 {
            return bad(
                "score.blocks",
                "needs at least one residual block per level".into(),
            );
        }
        if !(0.0..=1.0).contains(&self.score.tau_share) {
            return bad("score.tau_share", "must lie in [0, 1]".into());
        }
        if let Some(c) = self.score.grad_clip
            && !(c.is_finite() && c > 0.0)
        {
            return bad("score.grad_clip", "must be a finite norm above 0".into());
        }
        if self.sde.sign.abs() != 1.0 {
            return bad("sde.sign", "must be 1 or -1".into());
        }
        if !(self.sde.dt.is_finite() && self.sde.dt > 0.0) {
            return bad("sde.dt", "must be a finite number above 0".into());
        }
        if !(self.sde.ema > 0.0 && self.sde.ema <= 1.0) {
            return bad("sde.ema", "must lie in (0, 1]".into());
        }
        if self.sde.kernel_size.is_multiple_of(2) || self.sde.kernel_size > size {
            return bad(
                "sde.kernel_size",
                "must be odd and no wider than the image".into(),
            );
        }
        if channels == 1 && self.sde.kernel == KernelKind::Mix {
            return bad(
                "sde.kernel",
                "\"mix\" turns channels into one another, and grey pictures have one: use \
                 \"shared\" or \"spatial\" (or dataset.channels = 3)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// `name` made safe as one file-name component (`fallback` when nothing is left): a name
/// like `../x` or `a/b` must not place files outside the folder they are meant for.
pub fn safe_file_name(name: &str, fallback: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    if safe.is_empty() {
        fallback.into()
    } else {
        safe.into()
    }
}

/// The TOML of a built-in preset name or a preset file, with where it came from.
pub fn read_source(name_or_path: &str) -> Result<(String, String), PresetError> {
    if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
        return Ok((format!("'{name_or_path}'"), text.to_string()));
    }
    let path = Path::new(name_or_path);
    let looks_like_file = path.extension().is_some_and(|e| e == "toml") || path.exists();
    if !looks_like_file {
        return Err(PresetError::Unknown {
            name: name_or_path.into(),
            known: builtin_names(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| PresetError::Io {
        path: name_or_path.into(),
        source,
    })?;
    Ok((path.display().to_string(), text))
}

/// A `--set` value is TOML (`0.01`, `true`, `"exact"`); bare words count as strings.
fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t.remove("v").expect("key v was just written"),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Settings that are `Option`s: absent from a serialised preset while unset, yet settable.
const OPTIONAL_KEYS: &[&str] = &[
    "score.grad_clip",
    "dataset.seed",
    "eval.noise_steps",
    "dataset.f",
    "dataset.k",
    "dataset.du",
    "dataset.dv",
    "sde.canvas",
];

/// An optional setting that files (and runs written before it was optional) may give as 0
/// for "unset".
fn zero_is_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default + PartialEq,
{
    let v = Option::<T>::deserialize(d)?;
    Ok(v.filter(|v| *v != T::default()))
}

fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), PresetError> {
    let unknown = PresetError::UnknownKey {
        key: key.to_string(),
        known: known_keys(table).join(", "),
    };
    let parts: Vec<&str> = key.split('.').collect();
    let (last, sections) = parts.split_last().expect("split yields at least one part");
    let mut cur: &mut toml::Table = table;
    for s in sections {
        match cur.get_mut(*s) {
            Some(toml::Value::Table(t)) if *s != "quick" => cur = t,
            _ => return Err(unknown),
        }
    }
    match cur.get_mut(*last) {
        Some(slot) if !slot.is_table() => {
            *slot = value;
            Ok(())
        }
        // A `[dataset]` key of another kind than the table's: the kind may change in the
        // same breath, and loading says so if it does not.
        None if OPTIONAL_KEYS.contains(&key)
            || (sections == ["dataset"] && DATASET_KEYS.iter().any(|(k, _)| k == last)) =>
        {
            cur.insert(last.to_string(), value);
            Ok(())
        }
        _ => Err(unknown),
    }
}

fn known_keys(table: &toml::Table) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in table {
        match v {
            toml::Value::Table(t) if k != "quick" => {
                out.extend(t.keys().map(|inner| format!("{k}.{inner}")))
            }
            toml::Value::Table(_) => {}
            _ => out.push(k.clone()),
        }
    }
    for k in OPTIONAL_KEYS {
        if !out.iter().any(|o| o == k) {
            out.push(k.to_string());
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unset rates and canvas are `None`: a run written when they were 0-for-unset loads
    /// the same, an explicit value survives the round trip through a saved preset, and
    /// `--set` reaches them although a saved preset leaves them out.
    #[test]
    fn optional_settings_are_options_and_old_zeros_mean_unset() {
        let old = std::fs::read_to_string("tests/fixtures/ring-run-2026-12/preset.toml").unwrap();
        assert!(old.contains("f = 0.0") && old.contains("canvas = 0"));
        let p = Preset::from_toml_str("old run", &old, false, &[]).unwrap();
        assert_eq!(p.dataset.kind(), DatasetKind::Ring);
        assert_eq!(p.sde.canvas, None);
        let text = p.to_toml();
        assert!(!text.contains("canvas") && !text.contains("f = "), "{text}");
        let sets = ["sde.canvas=64".to_string(), "dataset.f=0.03".to_string()];
        let waves = Preset::load("gs-waves", true, &sets).unwrap();
        let f = |p: &Preset| p.dataset.gray_scott().unwrap().f;
        assert_eq!((waves.sde.canvas, f(&waves)), (Some(64), Some(0.03)));
        let back = Preset::from_toml_str("saved", &waves.to_toml(), false, &[]).unwrap();
        assert_eq!((back.sde.canvas, f(&back)), (Some(64), Some(0.03)));
        assert_eq!(back.dataset.gray_scott().unwrap().params().f, 0.03);
        let dot = Preset::load("alife-dot", true, &[]).unwrap();
        assert_eq!(dot.sde.canvas, Some(96));
    }

    /// Each kind holds only its own settings; files written while the settings were one
    /// flat bag (every key of every kind) load to the same settings; a key that would do
    /// nothing for the kind is an error that names it.
    #[test]
    fn image_files_are_read_for_what_a_preset_leaves_out_and_keys_follow_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("frames");
        std::fs::create_dir(&folder).unwrap();
        for i in 0..3 {
            image::GrayImage::from_pixel(22, 18, image::Luma([i * 40]))
                .save(folder.join(format!("{i}.png")))
                .unwrap();
        }
        let picture = dir.path().join("coat.png");
        image::RgbImage::from_pixel(30, 40, image::Rgb([10, 200, 30]))
            .save(&picture)
            .unwrap();
        let load = |dataset: String| {
            Preset::from_toml_str(
                "mine",
                &format!("[dataset]\nkind = \"images\"\n{dataset}\n[sde]\nkernel = \"shared\"\n"),
                false,
                &[],
            )
        };
        let path = |p: &Path| format!("path = {:?}", p.display().to_string());
        // A folder: every picture, their side fitted down to a multiple of 4, grey.
        let p = load(path(&folder)).unwrap();
        let i = p.dataset.user_images().unwrap().clone();
        assert_eq!(
            (i.layout, i.n, i.size, i.channels),
            (ImageLayout::Folder, 3, 16, 1)
        );
        assert_eq!(p.dataset.channels(), 1);
        p.validate().unwrap();
        let back = Preset::from_toml_str("saved", &p.to_toml(), false, &[]).unwrap();
        assert_eq!(back, p, "round trip");
        // A picture: crops of the default side, capped by the picture; colour.
        let p = load(path(&picture)).unwrap();
        let i = p.dataset.user_images().unwrap().clone();
        assert_eq!(
            (i.layout, i.n, i.size, i.channels),
            (
                ImageLayout::Picture { periodic: false },
                ImagesData::CROPS,
                28,
                3
            )
        );
        let text = p.to_toml();
        assert!(
            text.contains("crops = 1024") && !text.contains("resize"),
            "{text}"
        );
        assert_eq!(
            Preset::from_toml_str("saved", &text, false, &[]).unwrap(),
            p
        );
        // Keys of the other layout, a bad channel count, a grey mixer: sentences.
        for (dataset, want) in [
            (format!("{}\nresize = 8", path(&picture)), "is one picture"),
            (format!("{}\ncrops = 8", path(&folder)), "is a folder"),
            (
                format!("{}\ncrops = 8\nn = 3", path(&picture)),
                "give one set",
            ),
            (format!("{}\nchannels = 2", path(&folder)), "1 (grey) or 3"),
            ("path = \"/no/such/frames\"".into(), "no such file"),
            (String::new(), "dataset.path must name"),
        ] {
            let err = load(dataset.clone()).unwrap_err().to_string();
            assert!(err.contains(want), "{dataset}: {err}");
        }
        let mut p = load(path(&folder)).unwrap();
        p.sde.kernel = KernelKind::Mix;
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("grey pictures have one"), "{err}");
    }

    #[test]
    fn dataset_settings_are_typed_per_kind_and_old_flat_files_still_load() {
        for (name, _) in BUILTIN {
            for quick in [false, true] {
                let p = Preset::load(name, quick, &[]).unwrap();
                let text = p.to_toml();
                let back = Preset::from_toml_str("saved", &text, false, &[]).unwrap();
                assert_eq!(back, p, "{name} round trip");
                // Only the kind's own keys are written.
                let table: toml::Table = toml::from_str(&text).unwrap();
                let d = table["dataset"].as_table().unwrap();
                for key in d.keys() {
                    let (_, owners) = DATASET_KEYS.iter().find(|(k, _)| k == key).unwrap();
                    assert!(owners.contains(&p.dataset.kind()), "{name}: {key} written");
                }
                // The flat file of before: every other kind's keys at their old defaults.
                let mut flat = FlatDataset::legacy().everything();
                flat.extend(d.clone());
                let mut old = table.clone();
                old.insert("dataset".into(), toml::Value::Table(flat));
                let old = toml::to_string(&old).unwrap();
                let from_old = Preset::from_toml_str("old", &old, false, &[]).unwrap();
                assert_eq!(from_old, p, "{name} from the flat form");
            }
        }
        // Run directories written by the code before (December 2026), as they are.
        for (file, kind, pattern) in [
            ("gs-waves-quick", DatasetKind::GrayScott, "waves"),
            ("alife-dot-quick", DatasetKind::Alife, "dot"),
        ] {
            let path = format!("tests/fixtures/presets-2026-12/{file}.toml");
            let p = Preset::load(&path, false, &[]).unwrap();
            assert_eq!(
                (p.dataset.kind(), p.dataset.pattern_name().as_str()),
                (kind, pattern)
            );
            assert_eq!(p.dataset.images().unwrap(), (1024, 48));
        }
        let g = Preset::load(
            "tests/fixtures/presets-2026-12/gs-waves-quick.toml",
            false,
            &[],
        )
        .unwrap();
        let gs = g.dataset.gray_scott().unwrap();
        assert_eq!(
            (gs.pattern, gs.sim_steps, gs.f),
            (Regime::Waves, 3000, None)
        );

        // A key of another kind at a value that would change something is refused.
        let err = Preset::load("gs-waves", true, &["dataset.icons=3".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dataset.icons") && err.contains("alife"),
            "{err}"
        );
        let err = Preset::load("lorenz", false, &["dataset.n=500".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("dataset.n") && err.contains("lorenz"), "{err}");
        // An unknown regime names the known ones.
        let err = Preset::load("gs-waves", false, &["dataset.pattern=wavez".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("wavez") && err.contains("u_skate"), "{err}");
        // The kind can change from the command line, with the new kind's keys.
        let sets = [
            "dataset.kind=gray_scott".to_string(),
            "dataset.pattern=maze".to_string(),
            "dataset.size=32".to_string(),
        ];
        let p = Preset::load("ring", false, &sets).unwrap();
        let gs = p.dataset.gray_scott().unwrap();
        assert_eq!((gs.pattern, gs.size, gs.n), (Regime::Maze, 32, 10_000));
    }

    #[test]
    fn huge_images_are_refused_with_a_sentence() {
        for (set, key) in [
            ("dataset.size=1000000", "dataset.size"),
            ("dataset.n=100000000", "dataset.n"),
            ("sde.canvas=99996", "sde.canvas"),
        ] {
            let err = Preset::load("alife-dot", true, &[set.to_string()])
                .err()
                .unwrap_or_else(|| panic!("{set} accepted"))
                .to_string();
            assert!(err.contains(key), "{set}: {err}");
        }
        let err = Preset::load("gs-waves", false, &["dataset.n=10000000".into()])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("GiB"), "{err}");
    }

    #[test]
    fn a_preset_name_cannot_place_files_outside_their_folder() {
        let stem = |name: &str| {
            Preset {
                name: name.into(),
                ..Default::default()
            }
            .file_stem()
        };
        assert_eq!(stem("gs-waves"), "gs-waves");
        assert_eq!(stem("../x"), "_x");
        assert_eq!(stem("a/b\\c"), "a_b_c");
        assert_eq!(stem(".."), "preset");
        assert_eq!(stem(""), "preset");
        for bad in ["../../etc", "/abs", "a/../../b"] {
            let p = std::path::Path::new("runs").join(stem(bad));
            assert_eq!(p.components().count(), 2, "{bad} → {}", p.display());
        }
    }

    #[test]
    fn builtins_load_and_validate() {
        for (name, _) in BUILTIN {
            let p = Preset::load(name, false, &[]).unwrap();
            assert_eq!(&p.name, name);
            let q = Preset::load(name, true, &[]).unwrap();
            let smaller =
                if let (Some((qn, qs)), Some((n, s))) = (q.dataset.images(), p.dataset.images()) {
                    qs < s && qn < n
                } else {
                    q.flow.epochs < p.flow.epochs
                };
            assert!(smaller, "{name}: quick must be smaller");
        }
    }

    #[test]
    fn cosine_schedule_runs_from_lr_to_zero() {
        let c = LrSchedule::Cosine;
        assert_eq!(c.at(0.01, 0, 100), 0.01);
        assert!((c.at(0.01, 50, 100) - 0.005).abs() < 1e-12);
        assert!(c.at(0.01, 100, 100).abs() < 1e-12);
        assert_eq!(LrSchedule::Constant.at(0.01, 99, 100), 0.01);
    }

    #[test]
    fn set_overrides_and_round_trips() {
        let sets = vec![
            "flow.lr=0.005".to_string(),
            "flow.estimator=hutchinson".into(),
        ];
        let p = Preset::load("ring", false, &sets).unwrap();
        assert_eq!(p.flow.lr, 0.005);
        assert_eq!(p.flow.estimator, Estimator::Hutchinson);
        let back = Preset::from_toml_str("x", &p.to_toml(), false, &[]).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn bad_inputs_say_what_is_wrong() {
        let e = Preset::load("nope", false, &[]).unwrap_err().to_string();
        assert!(e.contains("ring") && e.contains("lorenz"), "{e}");
        let e = Preset::load("ring", false, &["flow.lrr=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("flow.lrr") && e.contains("flow.lr"), "{e}");
        let e = Preset::load("ring", false, &["flow".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("key=value"), "{e}");
        let e = Preset::from_toml_str("f.toml", "[flow]\nlr = = 2\n", false, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.toml") && e.contains("line 2"), "{e}");
        let e = Preset::from_toml_str("f.toml", "[flow]\nlrr = 2\n", false, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("lrr"), "{e}");
        let e = Preset::load("ring", false, &["score.tau_step=100".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("score.tau_step"), "{e}");
        for (set, key) in [
            ("dataset.pattern=zebra", "u_skate"),
            ("dataset.size=50", "dataset.size"),
            ("sde.sign=0.5", "sde.sign"),
            ("score.channels=[8, 16]", "score.channels"),
            ("sde.kernel_size=4", "sde.kernel_size"),
        ] {
            let e = Preset::load("gs-waves", true, &[set.into()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{set}: {e}");
        }
    }
}
