//! What every kind of job is to its drivers: the app's worker thread and the CLI step the
//! same sessions through this one trait, so a preset and seed train the same models from
//! either front.

use super::command::SimControls;
use super::event::{Event, Frame, ProgressInfo};
use crate::preset::Preset;
use crate::train::checkpoint::{RunDir, RunDirError};
use std::path::Path;

/// A job cut into steps (one batch, one chunk of data, the metrics), with its models and
/// results kept between them.
pub trait JobSession: Send {
    fn preset(&self) -> &Preset;
    /// Whether steps remain (false once finished, stopped or failed).
    fn is_training(&self) -> bool;
    /// A flow (trained or training-free) exists to animate.
    fn has_flow(&self) -> bool;
    /// Anything trained worth saving.
    fn has_models(&self) -> bool;
    /// Which stage runs now (stage changes end a worker slice, so the UI hears at once).
    fn stage_index(&self) -> usize;
    fn progress(&self) -> Option<ProgressInfo>;
    /// One step (one batch, one chunk of data, or the whole metrics stage).
    fn step(&mut self, out: &mut Vec<Event>);
    /// End the job now, keeping what it trained.
    fn stop(&mut self, why: &str, out: &mut Vec<Event>);
    /// After a panic the stage may be half-updated: stop training, keep the models.
    fn abandon(&mut self);
    fn set_lr(&mut self, score: f64, flow: f64);
    /// Send what the views show of the models as they are now.
    fn refresh_views(&mut self, with_samples: bool, out: &mut Vec<Event>);
    /// Advance the live simulation by one frame.
    fn frame(&mut self, particles: usize, dt: f64) -> Option<Frame>;
    /// Write the models, losses, samples and metrics (partial for a job that ended early)
    /// into `run`, not committed.
    fn write_into(&self, run: &RunDir) -> Result<(), RunDirError>;
    /// The metrics as `name: value` lines, once there are any.
    fn metric_lines(&self) -> Vec<String>;
    /// The next step panics (tests of the worker's recovery).
    fn inject_panic(&mut self);
    /// New live-simulation settings (image jobs; others have no live canvas).
    fn steer(&mut self, _controls: SimControls, _restart: bool, _out: &mut Vec<Event>) {}
    /// A sweep: show model `k` in the flow views (other jobs have one model).
    fn watch(&mut self, _k: usize, _out: &mut Vec<Event>) {}
    /// CSV of the live blob tracks (artificial life), if any.
    fn tracks_csv(&self) -> Option<String> {
        None
    }

    /// Write what this job has so far into a new run directory, or with `replace` over the
    /// run `dir` holds (swapped in whole once written, so the old one survives a failure).
    fn save(&self, dir: &Path, replace: bool) -> Result<(), RunDirError> {
        let run = RunDir::create(dir, replace)?;
        self.write_into(&run)?;
        run.commit()?;
        Ok(())
    }
}
