//! What the UI asks of the worker.

use crate::backend::BackendChoice;
use crate::preset::{KernelKind, Preset};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub enum Command {
    /// Start a new job (stopping any running one) with these settings.
    Start {
        preset: Box<Preset>,
        backend: BackendChoice,
    },
    /// Start a sweep (stopping any running job): one score model, then `seeds` flows that
    /// differ only in their seed, `stack` of them trained at a time as one network.
    StartSweep {
        preset: Box<Preset>,
        backend: BackendChoice,
        seeds: usize,
        stack: usize,
    },
    /// A sweep: show model `k`'s flow in the Flow and 3-D views.
    Watch(usize),
    Pause,
    Resume,
    /// End the job; what it trained so far stays available (views, Save).
    Stop,
    /// Live: the learning rates of the running job (each applies to its own phase).
    SetLr {
        score: f64,
        flow: f64,
    },
    /// Live: how many particles are advected, and the time step per animation frame.
    SetParticles {
        count: usize,
        dt: f64,
    },
    /// Whether a view that shows particles is on screen (animation costs CPU).
    Animate(bool),
    /// Live, image jobs: how the learned pattern dynamics run; `restart` starts them again
    /// (from a data pattern or from noise, as `controls.restart` says).
    Steer {
        controls: SimControls,
        restart: bool,
    },
    /// Read the user's snapshot file and answer with the settings for it and its data
    /// (`Event::DataOpened`); `quick` picks the closest built-in's quick settings. A
    /// running job goes on.
    OpenData {
        path: PathBuf,
        quick: bool,
    },
    /// Read the snapshots of a point preset from a file, to show them before training
    /// (answered by `Event::PointsPreview`).
    PreviewPoints(Box<Preset>),
    /// Draw the first training images of an image preset (what a job on it will learn),
    /// answered by `Event::Preview`; a running job pauses for as long as that takes.
    Preview(Box<Preset>),
    /// Write the current job's models, losses, samples and metrics to a run directory.
    Save(PathBuf),
    /// Write the current job's models over its autosave directory (`runs/<preset>-autosave-
    /// <time>`, one per job), if it has any: the app sends it every few minutes and on exit.
    Autosave,
    /// Artificial life: write the live blob tracks as CSV (`track,t,x,y`).
    ExportTracks(PathBuf),
    /// For tests: make the job panic at its next step, as a bug would.
    #[doc(hidden)]
    InjectPanic,
    Shutdown,
}

/// Where the live pattern simulation starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Restart {
    /// The next data pattern (the true dynamics start from the same one).
    #[default]
    Sample,
    /// Uniform noise in [-1, 1].
    Noise,
}

/// The live controls of the pattern simulation (METHOD §5).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimControls {
    /// +1 or −1: the direction of the skew kernel.
    pub sign: f64,
    /// The skew kernel: the 1×1 channel mixer or a random k×k one (METHOD §4).
    pub kernel: KernelKind,
    pub eta: f64,
    pub dt: f64,
    /// SDE steps per animation frame (the play speed).
    pub speed: usize,
    pub restart: Restart,
    /// Seeds the random skew kernel ("new dynamics" draws another).
    pub kernel_seed: u64,
    /// Strength of the flow (the kernel's norm).
    pub gain: f64,
}

impl SimControls {
    pub fn from_preset(p: &Preset) -> Self {
        Self {
            sign: p.sde.sign,
            kernel: p.sde.kernel,
            eta: p.sde.eta,
            dt: p.sde.dt,
            speed: 4,
            restart: Restart::Sample,
            kernel_seed: p.sde.kernel_seed,
            gain: p.sde.gain,
        }
    }
}

impl Default for SimControls {
    fn default() -> Self {
        Self::from_preset(&Preset::default())
    }
}
