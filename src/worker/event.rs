//! What the worker tells the UI: plain numbers, never tensors or egui types.

pub use crate::metrics::report::{Metrics, MmdCurve};
use crate::train::job::Phase;
use std::path::PathBuf;

/// Points are row-major `[n, dim]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cloud {
    pub dim: usize,
    pub points: Vec<f32>,
}

impl Cloud {
    pub fn len(&self) -> usize {
        self.points.len() / self.dim.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.points[i * self.dim..(i + 1) * self.dim]
    }
}

/// A job began: which, where, and what it shows before anything is trained.
#[derive(Debug, Clone)]
pub struct JobStarted {
    pub preset: String,
    pub backend: String,
    pub shows: Shows,
}

/// What a point job or an image job shows first.
#[derive(Debug, Clone)]
pub enum Shows {
    Points(PointData),
    /// Images of `size`² (Turing patterns, artificial life).
    Images {
        size: usize,
    },
}

/// The data of a point job, and where the views look.
#[derive(Debug, Clone)]
pub struct PointData {
    pub dim: usize,
    /// A subset of the training data.
    pub data: Cloud,
    /// Per-axis view bounds `[lo, hi]` that hold the data with a margin.
    pub bounds: Vec<[f32; 2]>,
    /// For Lorenz: one true trajectory in the same (standardised) coordinates.
    pub truth: Option<Cloud>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProgressInfo {
    pub phase: Phase,
    pub epoch: usize,
    pub epochs: usize,
    /// Steps (batches) done and in all, within the phase.
    pub done: usize,
    pub total: usize,
    pub eta_seconds: Option<f64>,
}

impl ProgressInfo {
    /// A one-step phase that has just begun (metrics, samples).
    pub fn starting(phase: Phase) -> Self {
        Self {
            phase,
            epoch: 1,
            epochs: 1,
            done: 0,
            total: 1,
            eta_seconds: None,
        }
    }
}

/// A phase without epochs (the metrics) as far as its own counter says.
impl From<&crate::train::job::Progress> for ProgressInfo {
    fn from(p: &crate::train::job::Progress) -> Self {
        Self {
            done: p.done,
            total: p.total,
            ..Self::starting(p.phase)
        }
    }
}

/// Arrows: `vectors[i]` starts at `origins[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorField {
    pub origins: Cloud,
    pub vectors: Cloud,
}

/// Particles and their recent past: `trails` is `[n, len, dim]`, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ParticleFrame {
    pub dim: usize,
    pub len: usize,
    pub trails: Vec<f32>,
    pub speed: Vec<f32>,
}

impl ParticleFrame {
    pub fn count(&self) -> usize {
        self.speed.len()
    }

    /// Point `k` (0 = oldest) of particle `i`'s trail.
    pub fn point(&self, i: usize, k: usize) -> &[f32] {
        let at = (i * self.len + k) * self.dim;
        &self.trails[at..at + self.dim]
    }
}

/// The first training images of a dataset, drawn before any job runs, so a newcomer sees
/// what will be learned.
#[derive(Debug, Clone)]
pub struct Preview {
    /// What they were drawn for: the view shows them only while the settings still match.
    pub dataset: crate::preset::DatasetSettings,
    pub seed: u64,
    /// The images, or why there are none (e.g. a regime in which every sample dies).
    pub images: Result<Images, String>,
}

impl Preview {
    pub fn matches(&self, p: &crate::preset::Preset) -> bool {
        self.dataset == p.dataset && self.seed == p.data_seed()
    }
}

/// The user's snapshot file, read: the settings a job on it takes, and its data.
#[derive(Debug, Clone)]
pub struct OpenedData {
    pub preset: crate::preset::Preset,
    /// One line on what was opened (rows, dimensions, the settings' origin).
    pub summary: String,
    /// Point snapshots as read; pictures are previewed like any image preset.
    pub points: Option<PointData>,
}

/// A file preset's snapshots, read before training.
#[derive(Debug, Clone)]
pub struct PointsPreview {
    /// What they were read for: shown only while the settings still match.
    pub dataset: crate::preset::DatasetSettings,
    pub seed: u64,
    pub points: Result<PointData, String>,
}

impl PointsPreview {
    pub fn matches(&self, p: &crate::preset::Preset) -> bool {
        self.dataset == p.dataset && self.seed == p.data_seed()
    }
}

/// Which images an [`Images`] event holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// Training snapshots.
    Data,
    /// Drawn from the score model by reverse diffusion.
    Samples,
    /// A data pattern noised to tau, then the model's denoised version of it.
    Denoised,
}

/// Images `[n, channels, h, w]` scaled to [-1, 1]: two chemicals (Turing) or RGB (ALife).
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    pub kind: ImageKind,
    pub channels: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Images {
    pub fn count(&self) -> usize {
        self.data.len() / (self.channels * self.h * self.w).max(1)
    }

    pub fn image(&self, i: usize) -> &[f32] {
        let l = self.channels * self.h * self.w;
        &self.data[i * l..(i + 1) * l]
    }
}

/// One frame of the live pattern view: the learned state (EMA of the denoised x0), the true
/// Gray–Scott state from the same start, and each one's change over the last few frames.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternFrame {
    pub channels: usize,
    pub h: usize,
    pub w: usize,
    pub learned: Vec<f32>,
    pub truth: Vec<f32>,
    pub learned_delta: Vec<f32>,
    pub truth_delta: Vec<f32>,
    /// SDE steps since the start.
    pub steps: usize,
    /// Artificial life: recent positions of each tracked blob (pixels, on the torus), the
    /// newest last, and the blob count and mean speed (pixels per SDE time unit) now.
    pub trails: Vec<Vec<[f32; 2]>>,
    /// Blobs are found and tracked (artificial life; not the user's own pictures).
    pub tracked: bool,
    pub blobs: usize,
    pub blob_speed: f32,
    /// Artificial life: how much the blobs look like the target now (1 = the icon itself).
    pub icon_fidelity: Option<f32>,
}

/// Where in its training an NCA stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAt {
    /// Training, after this many steps.
    Step(usize),
    Trained,
}

/// The trained image flow's rule: the NCA's 3×3 stencil kernels `[hidden, channels, 3, 3]`
/// row-major, and (Turing) the latest |cos| of its simulated displacement to the true
/// Gray–Scott one on held-out patterns, with where in training it was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct NcaRule {
    pub steps: RuleAt,
    pub cos: Option<(RuleAt, f64)>,
    pub hidden: usize,
    pub channels: usize,
    pub kernels: Vec<f32>,
}

/// What the bounded frame channel carries: the newest picture of a running simulation.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Particles(ParticleFrame),
    Pattern(PatternFrame),
}

/// Where one model of a sweep stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelState {
    Waiting,
    Training,
    /// Its flow is trained; its metrics wait for the models before it.
    Trained,
    Measuring,
    Done,
    /// It stopped before its metrics (a NaN loss, or the sweep was stopped): why.
    Stopped(String),
}

/// A sweep's models and how far they agree, as measured so far (the Solutions view).
/// Per-model vectors are indexed like `seeds`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Solutions {
    pub seeds: Vec<u64>,
    pub states: Vec<ModelState>,
    /// |cos| of each measured model's field to the true one (Lorenz), and its mean largest
    /// Lyapunov exponent.
    pub cos_truth: Vec<Option<f64>>,
    pub lyapunov: Vec<Option<f64>>,
    /// |cos| between the fields of models i and j on the same data states, row-major
    /// `n × n`; `None` until both are measured.
    pub agreement: Vec<Option<f64>>,
    /// Each measured model's field on the first two principal axes of all measured fields.
    pub embedding: Vec<Option<[f64; 2]>>,
    /// The model whose flow the Flow and 3-D views show.
    pub watched: Option<usize>,
    /// The consistency table as `name: mean ± sd` lines, once every model is measured.
    pub summary: Vec<String>,
}

impl Solutions {
    pub fn len(&self) -> usize {
        self.seeds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seeds.is_empty()
    }

    pub fn agreement(&self, i: usize, j: usize) -> Option<f64> {
        self.agreement.get(i * self.len() + j).copied().flatten()
    }
}

/// The metrics of a point job (with its MMD² curves) or of an image job.
#[derive(Debug, Clone)]
pub enum JobMetrics {
    Points {
        metrics: Box<Metrics>,
        curves: Vec<MmdCurve>,
    },
    Images(Box<crate::train::turing::ImageMetrics>),
}

impl Event {
    /// A view of the job as it is now, replaced by the next one of its kind (the UI may
    /// miss it without losing anything).
    pub fn is_view_refresh(&self) -> bool {
        matches!(
            self,
            Event::Progress(_)
                | Event::Samples(_)
                | Event::ScoreField(_)
                | Event::Streamlines { .. }
        ) || matches!(self, Event::Images(i) if i.kind == ImageKind::Denoised)
    }
}

#[derive(Debug, Clone)]
pub enum Event {
    Started(Box<JobStarted>),
    Images(Images),
    /// Answer to [`Command::Preview`](super::command::Command::Preview).
    Preview(Box<Preview>),
    /// Answer to [`Command::OpenData`](super::command::Command::OpenData): the settings
    /// for the file and what its data look like, or why it cannot be used.
    DataOpened(Result<Box<OpenedData>, String>),
    /// Answer to [`Command::PreviewPoints`](super::command::Command::PreviewPoints).
    PointsPreview(Box<PointsPreview>),
    NcaRule(NcaRule),
    Progress(ProgressInfo),
    /// Mean loss of one finished epoch.
    Loss {
        phase: Phase,
        epoch: usize,
        loss: f64,
    },
    Paused(bool),
    /// Samples drawn from the diffusion model as it is now.
    Samples(Cloud),
    /// The score field at tau on a grid (2-D) or at data points (projected views use axes).
    ScoreField(VectorField),
    /// Streamlines of the current flow: `[n, len, dim]` in a cloud of `n*len` points.
    Streamlines {
        len: usize,
        lines: Cloud,
    },
    /// The job's metrics, once measured.
    Metrics(JobMetrics),
    /// A sweep's models and how far they agree (sent as each model is measured).
    Solutions(Box<Solutions>),
    /// The job ended; `stop` says why when it did not run to the end.
    Finished {
        stop: Option<String>,
        /// The job broke (a NaN loss) rather than being stopped.
        failed: bool,
        seconds: f64,
    },
    /// The job failed (a panic in the worker); the app stays usable and keeps its models.
    Failed(String),
    /// A Start the worker refused (invalid settings, no such backend): whatever job was
    /// running goes on untouched.
    Rejected(String),
    Saved(PathBuf),
    /// The job's models were written over its autosave directory.
    Autosaved(PathBuf),
    /// A request that could not be done (e.g. saving before anything was trained).
    Notice(String),
}
