//! A job run to its end without a window (the CLI's front): the same sessions the app's
//! worker steps, stepped back to back.

use super::event::Event;
use super::job::JobSession;

/// How a job ended: `stop` says why when it ended early (`failed` when it could not go on).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ended {
    pub stop: Option<String>,
    pub failed: bool,
}

/// Step `job` until it ends. `cancel` is asked between steps; when it gives a reason the job
/// stops there, keeping what it trained. Every event, and the progress after each step,
/// goes to `on`.
pub fn run_to_end(
    job: &mut dyn JobSession,
    cancel: &dyn Fn() -> Option<String>,
    on: &mut dyn FnMut(&Event),
) -> Ended {
    let mut out = Vec::new();
    let mut ended = Ended::default();
    while job.is_training() {
        match cancel() {
            Some(why) => {
                let phase = job.progress().map_or("metrics", |p| p.phase.label());
                job.stop(
                    &format!("{why}: cancelled during the {phase} phase"),
                    &mut out,
                );
            }
            None => {
                job.step(&mut out);
                out.extend(job.progress().map(Event::Progress));
            }
        }
        for e in out.drain(..) {
            if let Event::Finished { stop, failed, .. } = &e {
                ended = Ended {
                    stop: stop.clone(),
                    failed: *failed,
                };
            }
            on(&e);
        }
    }
    ended
}
