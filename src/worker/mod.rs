//! The worker thread: owns burn and every heavy computation. The UI talks to it only through
//! [`Command`]s and [`Event`]s; particle frames come on their own bounded channel so a
//! busy worker never floods a slow UI (a full channel drops the frame, never blocks).

pub mod background;
pub mod command;
pub mod drive;
pub mod epochs;
pub mod event;
pub mod job;
pub mod patterns;
pub mod session;
pub mod stacked_flows;
pub mod sweep_session;

pub use command::Command;
pub use event::{Event, Frame, ParticleFrame};

use crate::backend::Backend;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded, unbounded};
use job::JobSession;
use patterns::PatternSession;
use session::Session;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use sweep_session::SweepSession;

/// Called after the worker sends something, so the UI wakes up (`request_repaint`).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// How long the worker trains before it looks at commands and views again.
const SLICE: Duration = Duration::from_millis(25);
const FRAME: Duration = Duration::from_millis(20);
/// How often progress alone wakes the window.
const WAKE_EVERY: Duration = Duration::from_millis(200);
// Unit tests refresh the views far more often, so that they run between training steps.
const FIELD_EVERY: Duration = Duration::from_millis(if cfg!(test) { 5 } else { 1000 });
const SAMPLES_EVERY: Duration = Duration::from_millis(if cfg!(test) { 10 } else { 2500 });

pub struct Worker {
    commands: Sender<Command>,
    events: Receiver<Event>,
    frames: Receiver<Frame>,
    cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Whether `cmd` should cut the running job's current step short. A Start the worker
/// will refuse (settings that do not validate, a GPU not known to exist) must leave the
/// running job alone; such a Start waits for the current step and is then rejected.
fn interrupts(cmd: &Command) -> bool {
    match cmd {
        Command::Stop | Command::Shutdown => true,
        Command::Start { preset, backend } => {
            preset.validate().is_ok() && Backend::surely_available(*backend)
        }
        Command::StartSweep {
            preset, backend, ..
        } => {
            !preset.dataset.kind().is_image()
                && preset.validate().is_ok()
                && Backend::surely_available(*backend)
        }
        _ => false,
    }
}

/// [`Command::OpenData`]: the file (or folder of pictures) read with the closest built-in's
/// settings.
fn open_data(path: &std::path::Path, quick: bool) -> Result<event::OpenedData, String> {
    use crate::train::own_data;
    let name = path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().to_string());
    if own_data::is_images(path) {
        let (preset, summary) =
            own_data::open_images(&path.display().to_string(), None, quick, &[], None)
                .map_err(|e| e.to_string())?;
        return Ok(event::OpenedData {
            preset,
            summary,
            points: None,
        });
    }
    if !own_data::is_point_file(path) {
        return Err(format!(
            "{}: equiflow opens point snapshots from .csv, .tsv, .txt and .npy files, and \
             image snapshots from a folder of PNG/JPEG pictures or one picture",
            path.display()
        ));
    }
    let file = crate::preset::FileData {
        path: path.display().to_string(),
        ..Default::default()
    };
    let (preset, data) = own_data::open(file, None, quick, &[], None).map_err(|e| e.to_string())?;
    let base = crate::preset::Preset::closest_builtin(data.dim);
    Ok(event::OpenedData {
        summary: own_data::describe(&name, &data, base),
        points: Some(session::point_data(&preset, &data)),
        preset,
    })
}

impl Worker {
    pub fn spawn(waker: impl Fn() + Send + Sync + 'static) -> Self {
        let waker: Waker = Arc::new(waker);
        let (commands, rx) = unbounded();
        let (events_tx, events) = unbounded();
        let (frames_tx, frames) = bounded(2);
        let cancel = Arc::new(AtomicBool::new(false));
        let state = Loop {
            commands: rx,
            events: events_tx,
            frames: frames_tx,
            waker,
            cancel: cancel.clone(),
            session: None,
            autosave: None,
            paused: false,
            animate: false,
            particles: 300,
            dt: 0.02,
            lr: None,
            last_field: Instant::now(),
            last_samples: Instant::now(),
            last_frame: Instant::now(),
            last_wake: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("equiflow-worker".into())
            .spawn(move || {
                lower_priority();
                state.run()
            })
            .expect("spawn the worker thread");
        Self {
            commands,
            events,
            frames,
            cancel,
            thread: Some(thread),
        }
    }

    pub fn send(&self, cmd: Command) {
        if interrupts(&cmd) {
            // Reaches a long metrics step at once, before the command is read.
            self.cancel.store(true, Ordering::Relaxed);
        }
        // A dead worker already reported why; the UI keeps working without it.
        let _ = self.commands.send(cmd);
    }

    /// Every event sent since the last call.
    pub fn events(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }

    /// The newest simulation frame, if any arrived.
    pub fn latest_frame(&self) -> Option<Frame> {
        self.frames.try_iter().last()
    }

    pub fn is_alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Loop {
    commands: Receiver<Command>,
    events: Sender<Event>,
    frames: Sender<Frame>,
    waker: Waker,
    cancel: Arc<AtomicBool>,
    session: Option<Box<dyn JobSession>>,
    /// The running job's autosave directory, chosen at its first autosave.
    autosave: Option<std::path::PathBuf>,
    paused: bool,
    animate: bool,
    particles: usize,
    dt: f64,
    lr: Option<(f64, f64)>,
    last_field: Instant,
    last_samples: Instant,
    last_frame: Instant,
    last_wake: Instant,
}

/// Events waiting for the UI past which views that a newer one replaces are dropped.
const QUEUE_CAP: usize = 256;

/// Send `e` to the UI. A window that stops draining (minimised, or stuck) must not make the
/// queue grow for as long as training runs: past [`QUEUE_CAP`] waiting events, progress and
/// view refreshes (each superseded by the next) are dropped; what the job records (losses,
/// metrics, its end) always goes through, and that is bounded by the job's size, not its age.
fn send_event(events: &Sender<Event>, e: Event) {
    if events.len() >= QUEUE_CAP && e.is_view_refresh() {
        return;
    }
    let _ = events.send(e);
}

/// Where a job's autosaves go (one directory per job, replaced at each autosave).
fn autosave_dir(p: &crate::preset::Preset) -> std::path::PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    std::path::PathBuf::from("runs").join(format!("{}-autosave-{secs}", p.file_stem()))
}

/// Where the app keeps simulated snapshots, so a preset is not simulated twice.
fn pattern_cache(p: &crate::preset::Preset) -> std::path::PathBuf {
    let (n, size) = p.dataset.images().unwrap_or_default();
    // A painted target's name is a path: its file stem, made safe.
    let pattern = p.dataset.pattern_name();
    let stem = std::path::Path::new(&pattern)
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let name = crate::preset::safe_file_name(&stem, "target");
    std::path::PathBuf::from("runs").join("cache").join(format!(
        "{}-{name}-seed{}-{size}px-{n}.bin",
        p.dataset.kind().name(),
        p.seed,
    ))
}

/// Let the window thread win the CPU: on a two-core laptop training would otherwise starve
/// the frame rate. Threads burn's CPU backend starts from here inherit the lower priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread's own id; failure only leaves the
    // priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

impl Loop {
    fn training(&self) -> bool {
        !self.paused && self.session.as_ref().is_some_and(|s| s.is_training())
    }

    fn animating(&self) -> bool {
        self.animate && self.session.as_ref().is_some_and(|s| s.has_flow())
    }

    fn run(mut self) {
        loop {
            let cmd = if self.training() {
                self.commands.try_recv().ok()
            } else if self.animating() {
                let wait = FRAME.saturating_sub(self.last_frame.elapsed());
                match self.commands.recv_timeout(wait) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match self.commands.recv() {
                    Ok(c) => Some(c),
                    Err(_) => return,
                }
            };
            let mut out = Vec::new();
            let mut next = cmd;
            while let Some(c) = next {
                if matches!(c, Command::Shutdown) {
                    return;
                }
                self.handle(c, &mut out);
                next = self.commands.try_recv().ok();
            }
            self.guarded(&mut out, |lp, out| lp.work(out));
            self.flush(out);
        }
    }

    /// Run `f`; a panic fails the job (keeping its models) instead of killing the worker.
    fn guarded(&mut self, out: &mut Vec<Event>, f: impl FnOnce(&mut Self, &mut Vec<Event>)) {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(self, out))) {
            let msg = panic_message(p.as_ref());
            if let Some(s) = &mut self.session {
                s.abandon();
            }
            out.push(Event::Failed(format!(
                "the job crashed ({msg}); training stopped, and what it had trained so far is kept"
            )));
        }
    }

    fn flush(&mut self, out: Vec<Event>) {
        if out.is_empty() {
            return;
        }
        let news = out.iter().any(|e| !matches!(e, Event::Progress(_)));
        for e in out {
            send_event(&self.events, e);
        }
        // Progress alone wakes the window a few times a second: woken at the worker's pace
        // (every slice) it repainted 40 times a second and took a core from training.
        if news || self.last_wake.elapsed() >= WAKE_EVERY {
            self.last_wake = Instant::now();
            (self.waker)();
        }
    }

    /// Start a job (a sweep of `seeds` models, `stack` at a time, when `sweep` is given),
    /// ending the running one; settings the worker refuses leave the running job alone.
    fn start(
        &mut self,
        preset: crate::preset::Preset,
        backend: crate::backend::BackendChoice,
        sweep: Option<(usize, usize)>,
        out: &mut Vec<Event>,
    ) {
        self.cancel.store(false, Ordering::Relaxed);
        // Bad settings leave the current job (and what it trained) alone.
        let image_sweep = sweep.is_some() && preset.dataset.kind().is_image();
        let backend = match preset
            .validate()
            .map_err(|e| e.to_string())
            .and_then(|_| {
                if image_sweep {
                    return Err(format!(
                        "a sweep compares the flows of point systems (ring, two peaks, two \
                         moons, Lorenz); '{}' is an image preset",
                        preset.name
                    ));
                }
                Ok(())
            })
            .and_then(|_| Backend::select(backend).map_err(|e| e.to_string()))
        {
            Ok(b) => b,
            Err(e) => {
                out.push(Event::Rejected(e));
                return;
            }
        };
        // Point data are drawn or read before the running job stops: a file that cannot be
        // used leaves that job (and what it trained) alone.
        let data = if preset.dataset.kind().is_image() {
            None
        } else {
            match crate::data::Dataset::generate(&preset.dataset, preset.data_seed()) {
                Ok(d) => Some(d),
                Err(e) => {
                    out.push(Event::Rejected(e.to_string()));
                    return;
                }
            }
        };
        if let Some(s) = &mut self.session {
            s.stop("replaced by a new job", out);
        }
        self.session = None;
        self.autosave = None;
        self.paused = false;
        let cancel = self.cancel.clone();
        self.guarded(out, |lp, out| {
            let mut s: Box<dyn JobSession> = match (sweep, data) {
                (Some((seeds, stack)), Some(data)) => Box::new(SweepSession::with_data(
                    preset, data, seeds, stack, backend, cancel, out,
                )),
                (None, Some(data)) => {
                    Box::new(Session::with_data(preset, backend, data, cancel, out))
                }
                _ => {
                    let cache = Some(pattern_cache(&preset));
                    Box::new(PatternSession::new(preset, backend, cache, cancel, out))
                }
            };
            if let Some((a, b)) = lp.lr {
                s.set_lr(a, b);
            }
            lp.session = Some(s);
        });
        self.lr = None;
        (self.last_field, self.last_samples) = (Instant::now(), Instant::now());
        out.push(Event::Paused(false));
    }

    fn handle(&mut self, cmd: Command, out: &mut Vec<Event>) {
        match cmd {
            Command::Start { preset, backend } => self.start(*preset, backend, None, out),
            Command::StartSweep {
                preset,
                backend,
                seeds,
                stack,
            } => self.start(*preset, backend, Some((seeds, stack)), out),
            Command::Watch(k) => {
                if let Some(s) = &mut self.session {
                    s.watch(k, out);
                }
            }
            Command::Pause | Command::Resume => {
                let pause = matches!(cmd, Command::Pause);
                if self.session.as_ref().is_some_and(|s| s.is_training()) {
                    self.paused = pause;
                    out.push(Event::Paused(pause));
                }
            }
            Command::Stop => {
                self.paused = false;
                if let Some(s) = &mut self.session {
                    s.stop("stopped by you", out);
                }
                self.cancel.store(false, Ordering::Relaxed);
            }
            Command::SetLr { score, flow } => match &mut self.session {
                Some(s) => s.set_lr(score, flow),
                None => self.lr = Some((score, flow)),
            },
            Command::SetParticles { count, dt } => {
                self.particles = count.clamp(1, 20_000);
                self.dt = dt;
            }
            Command::Animate(on) => self.animate = on,
            Command::Steer { controls, restart } => {
                if let Some(s) = &mut self.session {
                    s.steer(controls, restart, out);
                }
            }
            Command::ExportTracks(path) => {
                let csv = self.session.as_ref().and_then(|s| s.tracks_csv());
                out.push(Event::Notice(match csv {
                    None => {
                        "no blob tracks yet: train an artificial-life target and play it".into()
                    }
                    Some(csv) => match write_file(&path, csv.as_bytes()) {
                        Ok(()) => format!("Tracks saved to {}.", path.display()),
                        Err(e) => format!("could not save the tracks: {e}"),
                    },
                }));
            }
            Command::Autosave => {
                if let Some(s) = self.session.as_ref().filter(|s| s.has_models()) {
                    let dir = self
                        .autosave
                        .get_or_insert_with(|| autosave_dir(s.preset()))
                        .clone();
                    out.push(match s.save(&dir, true) {
                        Ok(()) => Event::Autosaved(dir),
                        Err(e) => Event::Notice(format!("could not autosave: {e}")),
                    });
                }
            }
            Command::Save(dir) => match &self.session {
                Some(s) if s.has_models() => match s.save(&dir, false) {
                    Ok(()) => out.push(Event::Saved(dir)),
                    Err(e) => out.push(Event::Notice(format!("could not save: {e}"))),
                },
                _ => out.push(Event::Notice(
                    "nothing to save yet: train a model first".into(),
                )),
            },
            Command::PreviewPoints(preset) => {
                let points = crate::data::Dataset::generate(&preset.dataset, preset.data_seed())
                    .map(|d| session::point_data(&preset, &d))
                    .map_err(|e| e.to_string());
                out.push(Event::PointsPreview(Box::new(event::PointsPreview {
                    dataset: preset.dataset.clone(),
                    seed: preset.data_seed(),
                    points,
                })));
            }
            Command::OpenData { path, quick } => {
                out.push(Event::DataOpened(open_data(&path, quick).map(Box::new)));
            }
            Command::Preview(preset) => {
                out.push(Event::Preview(Box::new(patterns::preview(&preset))));
            }
            Command::InjectPanic => {
                if let Some(s) = &mut self.session {
                    s.inject_panic();
                }
            }
            Command::Shutdown => {}
        }
    }

    fn work(&mut self, out: &mut Vec<Event>) {
        let training = self.training();
        let Some(s) = &mut self.session else { return };
        if training {
            let t0 = Instant::now();
            let stage = s.stage_index();
            while s.is_training() && t0.elapsed() < SLICE {
                s.step(out);
                if !self.commands.is_empty() || s.stage_index() != stage {
                    break;
                }
            }
            if let Some(p) = s.progress() {
                out.push(Event::Progress(p));
            }
            if self.last_field.elapsed() >= FIELD_EVERY || !s.is_training() {
                let samples = self.last_samples.elapsed() >= SAMPLES_EVERY;
                s.refresh_views(samples, out);
                self.last_field = Instant::now();
                if samples {
                    self.last_samples = Instant::now();
                }
            }
        }
        if self.animate && s.has_flow() && self.last_frame.elapsed() >= FRAME {
            self.last_frame = Instant::now();
            if let Some(frame) = s.frame(self.particles, self.dt) {
                match self.frames.try_send(frame) {
                    Ok(()) => (self.waker)(),
                    Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
                }
            }
        }
    }
}

/// Write `bytes` to `path` (through a file beside it, renamed into place), creating its folder.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    crate::data::write_atomically(path, |f| f.write_all(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendChoice;
    use crate::preset::Preset;
    use crate::worker::event::ModelState;

    fn start(preset: Preset, backend: BackendChoice) -> Command {
        Command::Start {
            preset: Box::new(preset),
            backend,
        }
    }

    #[test]
    fn only_a_start_the_worker_will_accept_interrupts_the_running_job() {
        let ring = Preset::load("ring", true, &[]).unwrap();
        assert!(interrupts(&start(ring.clone(), BackendChoice::Cpu)));
        assert!(interrupts(&start(ring.clone(), BackendChoice::Auto)));
        let mut bad = ring.clone();
        bad.score.epochs = 0;
        assert!(!interrupts(&start(bad, BackendChoice::Cpu)));
        // A GPU Start interrupts only once a probe has found one; until then it may be
        // refused and waits for the running step.
        assert_eq!(
            interrupts(&start(ring, BackendChoice::Gpu)),
            Backend::surely_available(BackendChoice::Gpu)
        );
        assert!(interrupts(&Command::Stop) && interrupts(&Command::Shutdown));
        // A sweep of an image preset is refused, so it leaves the running job alone.
        let sweep = |name: &str| Command::StartSweep {
            preset: Box::new(Preset::load(name, true, &[]).unwrap()),
            backend: BackendChoice::Cpu,
            seeds: 2,
            stack: 2,
        };
        assert!(interrupts(&sweep("lorenz")) && !interrupts(&sweep("gs-waves")));
        assert!(!interrupts(&Command::Pause));
    }

    fn tiny(name: &str, sets: &[&str]) -> Preset {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Preset::load(name, true, &sets).unwrap()
    }

    /// A job run to its end the CLI's way, saved into `dir`.
    fn cli_run(preset: &Preset, dir: &std::path::Path) {
        let mut out = Vec::new();
        let cancel = Arc::new(AtomicBool::new(false));
        let (p, b) = (preset.clone(), Backend::cpu());
        let mut job: Box<dyn JobSession> = if p.dataset.kind().is_image() {
            Box::new(PatternSession::new(p, b, None, cancel, &mut out).headless())
        } else {
            Box::new(Session::new(p, b, cancel, &mut out).unwrap().headless())
        };
        let ended = drive::run_to_end(&mut *job, &|| None, &mut |_| {});
        assert_eq!(ended.stop, None);
        job.save(dir, false).unwrap();
    }

    /// The same job in the app's worker, animating and refreshing its views between steps
    /// (which draw noise of their own), saved into `dir`.
    fn app_run(preset: &Preset, dir: &std::path::Path) {
        let w = Worker::spawn(|| {});
        w.send(Command::SetParticles {
            count: 64,
            dt: 0.01,
        });
        w.send(Command::Animate(true));
        w.send(start(preset.clone(), BackendChoice::Cpu));
        let wait = |what: &dyn Fn(&Event) -> bool| {
            let t0 = Instant::now();
            loop {
                assert!(t0.elapsed() < Duration::from_secs(300), "the worker hangs");
                let _ = w.latest_frame();
                if w.events().iter().any(what) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        wait(&|e| match e {
            Event::Finished { stop, .. } => {
                assert_eq!(stop, &None);
                true
            }
            _ => false,
        });
        w.send(Command::Save(dir.to_path_buf()));
        wait(&|e| matches!(e, Event::Saved(_)));
    }

    fn same_files(a: &std::path::Path, b: &std::path::Path, files: &[&str]) {
        for f in files {
            let (x, y) = (std::fs::read(a.join(f)), std::fs::read(b.join(f)));
            let (x, y) = (x.unwrap(), y.unwrap());
            assert!(!x.is_empty(), "{f} is empty");
            assert!(x == y, "{f} differs between the CLI and the app");
        }
    }

    /// The saved models' weights, score then flow.
    fn weights(dir: &std::path::Path, preset: &Preset) -> [Vec<f32>; 2] {
        use crate::tensor_util::flat_params;
        let run = crate::train::checkpoint::RunDir::open(dir).unwrap();
        let device = Backend::cpu().device;
        if preset.dataset.kind().is_image() {
            [
                flat_params(&run.load_image_score(preset, &device).unwrap()),
                flat_params(&run.load_nca(preset, &device).unwrap()),
            ]
        } else {
            let dim = preset.dataset.kind().dim();
            [
                flat_params(&run.load_score(preset, dim, &device).unwrap()),
                flat_params(&run.load_flow(preset, dim, &device).unwrap()),
            ]
        }
    }

    /// One engine: a preset and seed give the same losses, samples and models to the bit
    /// from the CLI and from the app, though the app draws views and frames between steps.
    #[test]
    fn the_cli_and_the_app_train_the_same_models() {
        let _rng = crate::tensor_util::rng_lock();
        let tmp = std::env::temp_dir().join(format!("equiflow-one-engine-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let ring = tiny(
            "ring",
            &[
                "dataset.n=600",
                "score.epochs=30",
                "score.batch=128",
                "score.samples=50",
                "flow.epochs=3",
                "flow.batch=128",
                "eval.mmd_points=64",
                "eval.rk4_steps=4",
                "eval.cos_points=64",
            ],
        );
        let icons = tiny(
            "alife-dots",
            &[
                "dataset.n=24",
                "dataset.size=24",
                "dataset.icon_size=12",
                "dataset.icons=2",
                "score.channels=[4, 8, 8]",
                "score.epochs=2",
                "score.batch=8",
                "score.samples=2",
                "flow.epochs=2",
                "flow.batch=8",
                "sde.flow=\"nca\"",
                "sde.canvas=24",
                "eval.blob_starts=1",
                "eval.blob_steps=4",
                "eval.blob_every=2",
                "eval.noise_steps=4",
            ],
        );
        for (preset, files) in [
            (ring, &["losses.csv", "samples.csv"][..]),
            (icons, &["losses.csv", "samples.csv"][..]),
        ] {
            let (cli, app) = (
                tmp.join(format!("{}-cli", preset.name)),
                tmp.join(format!("{}-app", preset.name)),
            );
            cli_run(&preset, &cli);
            app_run(&preset, &app);
            same_files(&cli, &app, files);
            // Tiled images are drawn again when needed, never stored.
            assert!(!cli.join("dataset.bin").exists() && !app.join("dataset.bin").exists());
            let (c, a) = (weights(&cli, &preset), weights(&app, &preset));
            assert!(!c[0].is_empty() && !c[1].is_empty());
            assert!(
                c == a,
                "{}: the models differ between the CLI and the app",
                preset.name
            );
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }

    /// Frames the worker sent while the metrics of `preset`'s job ran.
    fn frames_while_measuring(preset: Preset) -> usize {
        let w = Worker::spawn(|| {});
        w.send(Command::Animate(true));
        w.send(start(preset, BackendChoice::Cpu));
        let (mut frames, mut in_metrics) = (0, false);
        let t0 = Instant::now();
        loop {
            assert!(t0.elapsed() < Duration::from_secs(300), "the worker hangs");
            let framed = w.latest_frame().is_some();
            for e in w.events() {
                match e {
                    Event::Progress(p) if p.phase == crate::train::job::Phase::Metrics => {
                        in_metrics = true
                    }
                    Event::Metrics(_) => return frames,
                    Event::Finished { stop, .. } => panic!("ended before its metrics: {stop:?}"),
                    _ => {}
                }
            }
            if framed && in_metrics {
                frames += 1;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The metrics run on their own thread, for image and point jobs alike: the live view
    /// keeps sending frames until they arrive (a blocking metrics step sent one frame, then
    /// nothing until it ended).
    #[test]
    fn the_live_canvas_plays_while_the_metrics_run() {
        let _rng = crate::tensor_util::rng_lock();
        let image = tiny(
            "alife-dot",
            &[
                "dataset.n=16",
                "dataset.size=24",
                "dataset.icon_size=12",
                "dataset.icons=2",
                "score.channels=[4, 8, 8]",
                "score.epochs=1",
                "score.batch=8",
                "score.samples=1",
                "sde.canvas=24",
                "eval.blob_starts=1",
                "eval.blob_steps=100",
                "eval.blob_every=50",
                "eval.noise_steps=50",
            ],
        );
        let points = tiny(
            "ring",
            &[
                "dataset.n=500",
                "score.epochs=2",
                "flow.epochs=2",
                "score.samples=100",
            ],
        );
        for preset in [image, points] {
            let name = preset.name.clone();
            let frames = frames_while_measuring(preset);
            assert!(
                frames >= 5,
                "{name}: {frames} frames arrived while the metrics ran: the view froze"
            );
        }
    }

    /// While one model of a sweep is measured, a click on another is answered at once (its
    /// metrics run on their own thread; they used to hold the worker until they ended).
    #[test]
    fn a_sweep_answers_a_click_while_a_model_is_measured() {
        let _rng = crate::tensor_util::rng_lock();
        // Metrics long enough (seconds) that a click lands while they run.
        let preset = sweep_session::tests::tiny_lorenz(&[
            "eval.mmd_points=300",
            "eval.rk4_steps=100",
            "eval.protocol=\"both\"",
        ]);
        let w = Worker::spawn(|| {});
        w.send(Command::StartSweep {
            preset: Box::new(preset),
            backend: BackendChoice::Cpu,
            seeds: 2,
            stack: 2,
        });
        let t0 = Instant::now();
        let mut clicked = None;
        loop {
            assert!(t0.elapsed() < Duration::from_secs(300), "the worker hangs");
            for e in w.events() {
                match e {
                    Event::Solutions(s) => {
                        let measuring = s.states[1] == ModelState::Measuring;
                        if clicked.is_none() && measuring && s.states[0] == ModelState::Done {
                            w.send(Command::Watch(0));
                            clicked = Some(Instant::now());
                        } else if let Some(at) = clicked
                            && s.watched == Some(0)
                        {
                            assert!(
                                measuring,
                                "the click was answered only after the metrics ended ({:?})",
                                at.elapsed()
                            );
                            return;
                        }
                    }
                    Event::Finished { stop, .. } => panic!("ended before the click: {stop:?}"),
                    _ => {}
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A UI that stops draining holds at most the cap of view refreshes; what the job
    /// records still arrives, in order.
    #[test]
    fn a_stalled_ui_queues_a_bounded_number_of_view_refreshes() {
        let (tx, rx) = unbounded();
        let progress = || {
            Event::Progress(event::ProgressInfo::starting(
                crate::train::job::Phase::Score,
            ))
        };
        for _ in 0..10 * QUEUE_CAP {
            send_event(&tx, progress());
            send_event(&tx, Event::Samples(event::Cloud::default()));
        }
        assert_eq!(rx.len(), QUEUE_CAP);
        let loss = |epoch| Event::Loss {
            phase: crate::train::job::Phase::Score,
            epoch,
            loss: 1.0,
        };
        for epoch in 0..3 {
            send_event(&tx, loss(epoch));
            send_event(&tx, progress());
        }
        let kept: Vec<Event> = rx.try_iter().collect();
        assert_eq!(kept.len(), QUEUE_CAP + 3);
        let epochs: Vec<usize> = kept
            .iter()
            .filter_map(|e| match e {
                Event::Loss { epoch, .. } => Some(*epoch),
                _ => None,
            })
            .collect();
        assert_eq!(epochs, [0, 1, 2]);
        // Drained, the queue takes refreshes again.
        send_event(&tx, progress());
        assert_eq!(rx.len(), 1);
    }
}
