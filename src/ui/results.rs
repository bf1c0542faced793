//! What the views show: the latest of everything the worker sent for the current job.

use crate::metrics::report::{Metrics, MmdCurve};
use crate::train::job::Phase;
use crate::train::turing::ImageMetrics;
use crate::worker::event::{
    Cloud, Event, ImageKind, Images, JobMetrics, JobStarted, NcaRule, ParticleFrame, PatternFrame,
    PointData, ProgressInfo, RuleAt, Shows, Solutions, VectorField,
};
use std::collections::VecDeque;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JobState {
    #[default]
    Idle,
    Training,
    Paused,
    Finished,
    Failed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub text: String,
    pub error: bool,
}

impl Message {
    pub fn info(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            error: false,
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            error: true,
        }
    }
}

#[derive(Default)]
pub struct Results {
    pub state: JobState,
    /// The running (or last) job: which, where, and what it showed first.
    pub job: Option<JobStarted>,
    pub progress: Option<ProgressInfo>,
    /// `[epoch, loss]` per finished epoch.
    pub score_losses: Vec<[f64; 2]>,
    pub flow_losses: Vec<[f64; 2]>,
    pub samples: Option<Cloud>,
    pub score_field: Option<VectorField>,
    pub streamlines: Option<(usize, Cloud)>,
    pub particles: Option<ParticleFrame>,
    pub metrics: Option<(Metrics, Vec<MmdCurve>)>,
    /// A sweep's models and how far they agree.
    pub solutions: Option<Solutions>,
    pub seconds: Option<f64>,
    pub saved: Option<PathBuf>,
    /// Where the job's models were last autosaved (shown in the status bar).
    pub autosaved: Option<PathBuf>,
    /// Events received for this job (the status bar shows that the worker is alive).
    pub events: usize,
    /// Progress events received (tests watch progress move).
    pub progress_events: usize,
    /// Image jobs: the pictures they sent.
    pub data_images: Option<Images>,
    pub sample_images: Option<Images>,
    pub denoised: Option<Images>,
    pub pattern_frame: Option<PatternFrame>,
    pub pattern_metrics: Option<ImageMetrics>,
    /// The trained image flow's rule, newest; and `[training step, |cos|]` as it trained.
    pub nca_rule: Option<NcaRule>,
    pub nca_cos: Vec<[f64; 2]>,
    /// Artificial life, per frame received: SDE steps, blob count, blob speed.
    pub blob_history: Vec<[f64; 3]>,
    /// The last frames as pictures, for the GIF export.
    pub recent_frames: VecDeque<Picture>,
}

/// An 8-bit RGBA picture `(w, h, pixels)`, shared: an export takes the recent frames without
/// copying tens of megabytes on the UI thread.
pub type Picture = std::sync::Arc<(usize, usize, Vec<u8>)>;

/// Points kept in a series that grows as long as the app runs (blob readouts, live |cos|,
/// losses): past this, every other point is dropped, so a long session stays flat in
/// memory and the plot keeps its shape.
pub const SERIES_CAP: usize = 4096;

/// Append `item`, halving the series (every other point, the first kept) when it is full.
pub fn push_capped<T>(series: &mut Vec<T>, item: T) {
    if series.len() >= SERIES_CAP {
        let mut i = 0;
        series.retain(|_| {
            i += 1;
            i % 2 == 1
        });
    }
    series.push(item);
}

/// Frames kept for the GIF export (at most about 64 MB of pictures).
pub const GIF_FRAMES: usize = 120;

impl Results {
    /// Take in a live pattern frame; artificial-life frames also extend the blob readouts
    /// and the GIF buffer, and the new picture `(w, h, rgba)` is returned (for a recording).
    /// A restart (steps going back) starts the readouts afresh.
    pub fn take_pattern_frame(&mut self, f: PatternFrame) -> Option<&Picture> {
        let picture = f.channels != 2;
        if picture {
            if self
                .blob_history
                .last()
                .is_some_and(|l| l[0] > f.steps as f64)
            {
                self.blob_history.clear();
                self.recent_frames.clear();
            }
            push_capped(
                &mut self.blob_history,
                [f.steps as f64, f.blobs as f64, f.blob_speed as f64],
            );
            let pixels = crate::ui::pixels::state_image(&f.learned, f.channels, f.h, f.w)
                .pixels
                .iter()
                .flat_map(|c| c.to_array())
                .collect();
            let cap = GIF_FRAMES.min((64 << 20) / (4 * f.h * f.w).max(1)).max(2);
            while self.recent_frames.len() >= cap {
                self.recent_frames.pop_front();
            }
            self.recent_frames
                .push_back(std::sync::Arc::new((f.w, f.h, pixels)));
        }
        self.pattern_frame = Some(f);
        self.recent_frames.back().filter(|_| picture)
    }

    /// The data and view bounds of a point job.
    pub fn points(&self) -> Option<&PointData> {
        match &self.job.as_ref()?.shows {
            Shows::Points(p) => Some(p),
            Shows::Images { .. } => None,
        }
    }

    pub fn dim(&self) -> Option<usize> {
        self.points().map(|s| s.dim)
    }

    /// The backend the running (or last) job uses.
    pub fn backend(&self) -> Option<&str> {
        self.job.as_ref().map(|s| s.backend.as_str())
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, JobState::Training | JobState::Paused)
    }

    /// Take in one event; returns a message for the user when the event calls for one.
    pub fn apply(&mut self, event: Event) -> Option<Message> {
        self.events += 1;
        match event {
            Event::Started(s) => {
                *self = Results {
                    state: JobState::Training,
                    job: Some(*s),
                    events: 1,
                    ..Results::default()
                };
            }
            Event::Images(i) => match i.kind {
                ImageKind::Data => self.data_images = Some(i),
                ImageKind::Samples => self.sample_images = Some(i),
                ImageKind::Denoised => self.denoised = Some(i),
            },
            Event::NcaRule(r) => {
                if let Some((at, c)) = r.cos {
                    // The final measurement comes after the last training step.
                    let x = match (at, self.nca_cos.last()) {
                        (RuleAt::Trained, Some(p)) => p[0] + 1.0,
                        (RuleAt::Trained, None) => 0.0,
                        (RuleAt::Step(at), _) => at as f64,
                    };
                    if self.nca_cos.last().is_none_or(|p| p[0] != x) {
                        push_capped(&mut self.nca_cos, [x, c]);
                    }
                }
                self.nca_rule = Some(r);
            }
            Event::Progress(p) => {
                self.progress_events += 1;
                self.progress = Some(p);
            }
            Event::Loss { phase, epoch, loss } => {
                let series = match phase {
                    Phase::Score => &mut self.score_losses,
                    _ => &mut self.flow_losses,
                };
                push_capped(series, [epoch as f64 + 1.0, loss]);
            }
            Event::Paused(p) => {
                if self.is_running() {
                    self.state = if p {
                        JobState::Paused
                    } else {
                        JobState::Training
                    };
                }
            }
            Event::Samples(c) => self.samples = Some(c),
            Event::Solutions(s) => self.solutions = Some(*s),
            Event::ScoreField(f) => self.score_field = Some(f),
            Event::Streamlines { len, lines } => self.streamlines = Some((len, lines)),
            Event::Metrics(m) => match m {
                JobMetrics::Points { metrics, curves } => self.metrics = Some((*metrics, curves)),
                JobMetrics::Images(m) => self.pattern_metrics = Some(*m),
            },
            Event::Finished {
                stop,
                failed,
                seconds,
            } => {
                self.seconds = Some(seconds);
                return Some(match stop {
                    None => {
                        self.state = JobState::Finished;
                        Message::info(format!("Training finished in {seconds:.0} s."))
                    }
                    Some(why) if failed => {
                        self.state = JobState::Failed;
                        Message::error(format!("Training failed: {why}."))
                    }
                    Some(why) => {
                        self.state = JobState::Finished;
                        Message::info(format!("Training ended early: {why}."))
                    }
                });
            }
            Event::Failed(why) => {
                // A job that announced itself failed; a failure before any job is no job.
                self.state = if self.job.is_some() {
                    JobState::Failed
                } else {
                    JobState::Idle
                };
                return Some(Message::error(format!("The job failed: {why}.")));
            }
            Event::Rejected(why) => {
                return Some(Message::error(format!("Cannot train: {why}.")));
            }
            Event::Autosaved(p) => self.autosaved = Some(p),
            Event::Saved(p) => {
                let text = format!("Saved the run to {}", p.display());
                self.saved = Some(p);
                return Some(Message::info(text));
            }
            Event::Notice(text) => return Some(Message::info(text)),
            // The app keeps the preview itself: it outlives jobs, which reset the results.
            Event::Preview(_) | Event::DataOpened(_) | Event::PointsPreview(_) => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_job() -> Results {
        let mut r = Results::default();
        r.apply(Event::Started(Box::new(JobStarted {
            preset: "alife-dot".into(),
            backend: "cpu".into(),
            shows: Shows::Images { size: 48 },
        })));
        r
    }

    #[test]
    fn a_crashed_image_job_is_failed_not_idle() {
        let mut r = image_job();
        assert_eq!(r.state, JobState::Training);
        let m = r
            .apply(Event::Failed("the job crashed (boom)".into()))
            .unwrap();
        assert!(m.error && m.text.contains("boom"));
        assert_eq!(r.state, JobState::Failed);
        // With no job at all a failure leaves the app idle.
        let mut idle = Results::default();
        idle.apply(Event::Failed("x".into()));
        assert_eq!(idle.state, JobState::Idle);
    }

    #[test]
    fn a_rejected_start_leaves_the_running_job_running() {
        let mut r = image_job();
        let m = r
            .apply(Event::Rejected("no GPU adapter was found".into()))
            .unwrap();
        assert!(m.error && m.text.starts_with("Cannot train: no GPU"));
        assert_eq!(r.state, JobState::Training);
        assert!(r.job.is_some());
    }

    #[test]
    fn a_long_live_session_stays_flat_in_memory() {
        let mut r = image_job();
        let frame = |steps: usize| PatternFrame {
            channels: 3,
            h: 4,
            w: 4,
            learned: vec![0.0; 48],
            truth: Vec::new(),
            learned_delta: Vec::new(),
            truth_delta: Vec::new(),
            steps,
            trails: Vec::new(),
            tracked: true,
            blobs: 2,
            blob_speed: 0.5,
            icon_fidelity: None,
        };
        // Half an hour at 30 frames a second.
        for steps in 0..54_000 {
            r.take_pattern_frame(frame(steps));
            r.apply(Event::Loss {
                phase: Phase::Flow,
                epoch: steps,
                loss: 1.0,
            });
        }
        assert!(r.blob_history.len() <= SERIES_CAP && r.blob_history.len() > SERIES_CAP / 2);
        assert!(r.flow_losses.len() <= SERIES_CAP);
        assert!(r.recent_frames.len() <= GIF_FRAMES);
        // Decimated, not truncated: the series still spans the whole session.
        assert_eq!(r.blob_history[0][0], 0.0);
        assert_eq!(r.blob_history.last().unwrap()[0], 53_999.0);
    }
}
