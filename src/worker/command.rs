//! What the UI asks of the worker.

use crate::backend::BackendChoice;
use crate::preset::Preset;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub enum Command {
    /// Start a new job (stopping any running one) with these settings.
    Start {
        preset: Box<Preset>,
        backend: BackendChoice,
    },
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
    /// Write the current job's models, losses, samples and metrics to a run directory.
    Save(PathBuf),
    /// For tests: make the job panic at its next step, as a bug would.
    #[doc(hidden)]
    InjectPanic,
    Shutdown,
}
