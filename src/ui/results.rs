//! What the views show: the latest of everything the worker sent for the current job.

use crate::metrics::report::{Metrics, MmdCurve};
use crate::train::job::Phase;
use crate::train::turing::ImageMetrics;
use crate::worker::event::{
    Cloud, Event, ImageKind, Images, JobStarted, ParticleFrame, PatternFrame, ProgressInfo,
    VectorField,
};
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
    pub started: Option<JobStarted>,
    pub progress: Option<ProgressInfo>,
    /// `[epoch, loss]` per finished epoch.
    pub score_losses: Vec<[f64; 2]>,
    pub flow_losses: Vec<[f64; 2]>,
    pub samples: Option<Cloud>,
    pub score_field: Option<VectorField>,
    pub streamlines: Option<(usize, Cloud)>,
    pub particles: Option<ParticleFrame>,
    pub metrics: Option<(Metrics, Vec<MmdCurve>)>,
    pub seconds: Option<f64>,
    pub saved: Option<PathBuf>,
    /// Events received for this job (the status bar shows that the worker is alive).
    pub events: usize,
    /// Progress events received (tests watch progress move).
    pub progress_events: usize,
    /// Image jobs: what runs, and the pictures it sent.
    pub pattern: Option<PatternJob>,
    pub data_images: Option<Images>,
    pub sample_images: Option<Images>,
    pub denoised: Option<Images>,
    pub pattern_frame: Option<PatternFrame>,
    pub pattern_metrics: Option<ImageMetrics>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatternJob {
    pub preset: String,
    pub backend: String,
    pub size: usize,
}

impl Results {
    pub fn dim(&self) -> Option<usize> {
        self.started.as_ref().map(|s| s.dim)
    }

    /// The backend the running (or last) job uses.
    pub fn backend(&self) -> Option<&str> {
        self.started
            .as_ref()
            .map(|s| s.backend.as_str())
            .or(self.pattern.as_ref().map(|p| p.backend.as_str()))
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
                    started: Some(*s),
                    events: 1,
                    ..Results::default()
                };
            }
            Event::PatternJob {
                preset,
                backend,
                size,
            } => {
                *self = Results {
                    state: JobState::Training,
                    pattern: Some(PatternJob {
                        preset,
                        backend,
                        size,
                    }),
                    events: 1,
                    ..Results::default()
                };
            }
            Event::Images(i) => match i.kind {
                ImageKind::Data => self.data_images = Some(i),
                ImageKind::Samples => self.sample_images = Some(i),
                ImageKind::Denoised => self.denoised = Some(i),
            },
            Event::PatternMetrics(m) => self.pattern_metrics = Some(*m),
            Event::Progress(p) => {
                self.progress_events += 1;
                self.progress = Some(p);
            }
            Event::Loss { phase, epoch, loss } => {
                let series = match phase {
                    Phase::Score => &mut self.score_losses,
                    _ => &mut self.flow_losses,
                };
                series.push([epoch as f64 + 1.0, loss]);
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
            Event::ScoreField(f) => self.score_field = Some(f),
            Event::Streamlines { len, lines } => self.streamlines = Some((len, lines)),
            Event::Metrics { metrics, curves } => self.metrics = Some((*metrics, curves)),
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
                self.state = if self.started.is_some() {
                    JobState::Failed
                } else {
                    JobState::Idle
                };
                return Some(Message::error(format!("The job failed: {why}.")));
            }
            Event::Saved(p) => {
                let text = format!("Saved the run to {}", p.display());
                self.saved = Some(p);
                return Some(Message::info(text));
            }
            Event::Notice(text) => return Some(Message::info(text)),
        }
        None
    }
}
