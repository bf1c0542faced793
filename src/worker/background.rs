//! A long computation of a job (an image job's metrics: minutes on two cores) on its own
//! thread, so the session can keep stepping in the meantime: the app's live canvas plays
//! while the metrics run instead of freezing until they end.

use crate::train::job::{Observer, Progress};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

enum Msg<T> {
    Progress(Progress),
    Done(T),
    Panicked(Box<dyn Any + Send>),
}

/// What [`Background::poll`] found.
pub enum Poll<T> {
    Running,
    Done(T),
    /// The computation panicked; the payload, to be raised again where a panic of the
    /// session's own step would be handled.
    Panicked(Box<dyn Any + Send>),
}

/// A computation running on its own thread. Dropping it asks the computation to stop (at
/// its next progress tick) and does not wait for it.
pub struct Background<T> {
    rx: Receiver<Msg<T>>,
    cancel: Arc<AtomicBool>,
    progress: Option<Progress>,
}

/// The computation's observer: progress goes back over the channel; it is cancelled when
/// the job is (`job`) or when its [`Background`] is dropped (`own`).
struct Forward<T> {
    tx: Sender<Msg<T>>,
    own: Arc<AtomicBool>,
    job: Arc<AtomicBool>,
}

impl<T> Observer for Forward<T> {
    fn progress(&mut self, p: &Progress) {
        let _ = self.tx.send(Msg::Progress(p.clone()));
    }
    fn cancelled(&self) -> bool {
        self.own.load(Ordering::Relaxed) || self.job.load(Ordering::Relaxed)
    }
}

impl<T: Send + 'static> Background<T> {
    /// Run `f` on a new thread; `job_cancel` is the job's own stop flag, which `f`'s
    /// observer reports as well.
    pub fn spawn(
        job_cancel: Arc<AtomicBool>,
        f: impl FnOnce(&mut dyn Observer) -> T + Send + 'static,
    ) -> Self {
        let (tx, rx) = unbounded();
        let cancel = Arc::new(AtomicBool::new(false));
        let mut obs = Forward {
            tx: tx.clone(),
            own: cancel.clone(),
            job: job_cancel,
        };
        std::thread::Builder::new()
            .name("equiflow-metrics".into())
            .spawn(move || {
                let msg = match catch_unwind(AssertUnwindSafe(|| f(&mut obs))) {
                    Ok(v) => Msg::Done(v),
                    Err(p) => Msg::Panicked(p),
                };
                let _ = tx.send(msg);
            })
            .expect("the OS starts a thread");
        Self {
            rx,
            cancel,
            progress: None,
        }
    }

    /// Wait up to `wait` for the result, taking in the progress sent meanwhile.
    pub fn poll(&mut self, wait: Duration) -> Poll<T> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            match self.rx.recv_deadline(deadline) {
                Ok(Msg::Progress(p)) => self.progress = Some(p),
                Ok(Msg::Done(v)) => return Poll::Done(v),
                Ok(Msg::Panicked(p)) => return Poll::Panicked(p),
                Err(RecvTimeoutError::Timeout) => return Poll::Running,
                // The thread always sends before it ends; this is a thread killed outright.
                Err(RecvTimeoutError::Disconnected) => {
                    return Poll::Panicked(Box::new("the metrics thread ended without a result"));
                }
            }
        }
    }

    /// The latest progress the computation reported.
    pub fn progress(&self) -> Option<&Progress> {
        self.progress.as_ref()
    }
}

impl<T> Drop for Background<T> {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::job::Phase;
    use std::time::Instant;

    fn tick(obs: &mut dyn Observer, done: usize) {
        obs.progress(&Progress {
            phase: Phase::Metrics,
            done,
            total: 10,
            loss: None,
        });
    }

    #[test]
    fn the_result_and_the_progress_come_back_while_the_caller_keeps_going() {
        let (go_tx, go_rx) = unbounded::<()>();
        let job = Arc::new(AtomicBool::new(false));
        let mut bg = Background::spawn(job, move |obs| {
            tick(obs, 3);
            go_rx.recv().unwrap();
            42
        });
        // The caller is not blocked while the computation waits; its progress arrives (a
        // loaded machine may start the thread late, so poll until it does).
        let t0 = Instant::now();
        while bg.progress().is_none() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no progress came back"
            );
            assert!(matches!(bg.poll(Duration::from_millis(50)), Poll::Running));
        }
        assert_eq!(bg.progress().map(|p| p.done), Some(3));
        go_tx.send(()).unwrap();
        match bg.poll(Duration::from_secs(10)) {
            Poll::Done(v) => assert_eq!(v, 42),
            _ => panic!("expected the result"),
        }
    }

    #[test]
    fn dropping_it_or_cancelling_the_job_stops_the_computation() {
        for cancel_job in [false, true] {
            let job = Arc::new(AtomicBool::new(false));
            let (seen_tx, seen_rx) = unbounded::<bool>();
            let bg = Background::spawn(job.clone(), move |obs| {
                let t0 = Instant::now();
                while !obs.cancelled() && t0.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let _ = seen_tx.send(obs.cancelled());
            });
            if cancel_job {
                job.store(true, Ordering::Relaxed);
            } else {
                drop(bg);
            }
            assert_eq!(seen_rx.recv_timeout(Duration::from_secs(10)), Ok(true));
        }
    }

    #[test]
    fn a_panic_comes_back_as_its_payload() {
        let job = Arc::new(AtomicBool::new(false));
        let mut bg = Background::<()>::spawn(job, |_| panic!("boom"));
        match bg.poll(Duration::from_secs(10)) {
            Poll::Panicked(p) => assert_eq!(p.downcast_ref::<&str>(), Some(&"boom")),
            _ => panic!("expected the panic"),
        }
    }
}
