//! The app: panels around a central view, wired to the worker by commands and events.

use super::paint::{Brush, PaintCanvas};
use super::results::{JobState, Message, Results};
use super::state::{AppState, Tab, ThemeChoice, builtin_source};
use super::views::paint_view::{self, PaintAction, PaintTexture};
use super::views::pattern::Export;
use super::views::solutions::{self, SolutionsAction};
use super::views::{field2d, help, lorenz3d, nca_view, pattern, plots};
use crate::data::icon::{ASSET_SIZE, Icon};
use crate::preset::{DatasetKind, ImageFlow};
use crate::preset::{DatasetSettings, Preset};
use crate::ui::export::Recorder;
use crate::worker::command::{Restart, SimControls};
use crate::worker::event::{Event, Preview};
use crate::worker::{Command, Frame, Worker};
use crossbeam_channel::{Receiver, Sender, unbounded};
use egui::{Key, KeyboardShortcut, Modifiers, Ui};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a running job's last good models are written to its autosave directory.
const AUTOSAVE_EVERY: Duration = Duration::from_secs(300);
/// How often the window redraws while a job trains and nothing on screen animates.
const PROGRESS_REPAINT: Duration = Duration::from_millis(250);

/// A file chosen in a dialog (dialogs run on their own thread so the UI never blocks).
enum FileChoice {
    OpenPreset(PathBuf),
    OpenData(PathBuf),
    OpenVelocity(PathBuf),
    SaveTo(PathBuf),
    OpenTarget(PathBuf),
    SaveTarget(PathBuf),
    /// A file written off the UI thread: what to tell the user.
    Wrote(Result<String, String>),
    /// The dialog closed at once without a choice: most likely no desktop portal runs.
    NoDialog,
}

/// Run a file dialog on its own thread and report what was chosen.
fn dialog(
    tx: Sender<FileChoice>,
    pick: impl FnOnce() -> Option<PathBuf> + Send + 'static,
    wrap: fn(PathBuf) -> FileChoice,
) {
    std::thread::spawn(move || {
        let t0 = Instant::now();
        let choice = match pick() {
            Some(p) => wrap(p),
            // Nobody cancels a dialog within a third of a second.
            None if t0.elapsed() < Duration::from_millis(300) => FileChoice::NoDialog,
            None => return,
        };
        let _ = tx.send(choice);
    });
}

pub struct EquiflowApp {
    pub state: AppState,
    /// The settings the panel edits (and the next Train uses).
    pub settings: Preset,
    pub results: Results,
    pub message: Option<Message>,
    /// The settings of the job that is running, to tell which edits wait for the next run.
    pub(crate) running: Option<Preset>,
    pub(crate) worker: Worker,
    frame_times: VecDeque<Instant>,
    files: (Sender<FileChoice>, Receiver<FileChoice>),
    sent_animate: Option<bool>,
    sent_particles: Option<(usize, f64)>,
    sent_sim: Option<SimControls>,
    /// The dataset (and seed) a preview was last asked for.
    sent_preview: Option<(DatasetSettings, u64)>,
    /// One preview at a time: edits made meanwhile are previewed once it arrives.
    preview_in_flight: bool,
    /// A file preset's snapshots: the dataset (and seed) last read to show before training.
    sent_points_preview: Option<(DatasetSettings, u64)>,
    /// The first training images of the open image preset, drawn before training.
    pub preview: Option<Preview>,
    /// A live recording of the artificial-life view (MP4 through ffmpeg).
    recorder: Option<Recorder>,
    /// ffmpeg, when it is on PATH (looked up once).
    pub ffmpeg: Option<PathBuf>,
    textures: pattern::Textures,
    /// Artificial life: the picture in the Paint tab and its brush (transient).
    pub paint: PaintCanvas,
    pub brush: Brush,
    paint_texture: PaintTexture,
    applied_theme: Option<ThemeChoice>,
    fonts_installed: bool,
    /// When the running job's models were last autosaved.
    last_autosave: Instant,
}

/// egui's text font lacks a few maths symbols the views use (∇, ‖, →); its monospace font
/// has them, so it backs the text font up.
fn install_fonts(ctx: &egui::Context) {
    let mut fonts = egui::FontDefinitions::default();
    if let Some(family) = fonts.families.get_mut(&egui::FontFamily::Proportional) {
        let at = family.len().min(1);
        family.insert(at, "Hack".to_owned());
    }
    ctx.set_fonts(fonts);
}

impl EquiflowApp {
    /// `wake` is called from the worker thread whenever it sent something.
    pub fn new(state: AppState, wake: impl Fn() + Send + Sync + 'static) -> Self {
        let settings = state.settings();
        let target = settings
            .dataset
            .alife()
            .map_or("dot", |a| a.target.as_str());
        let icon = Icon::load(target, ASSET_SIZE)
            .unwrap_or_else(|_| Icon::builtin("dot", ASSET_SIZE).expect("built in"));
        Self {
            state,
            settings,
            results: Results::default(),
            message: None,
            running: None,
            worker: Worker::spawn(wake),
            frame_times: VecDeque::new(),
            files: unbounded(),
            sent_animate: None,
            sent_particles: None,
            sent_sim: None,
            sent_preview: None,
            preview_in_flight: false,
            sent_points_preview: None,
            preview: None,
            recorder: None,
            ffmpeg: crate::ui::export::find_ffmpeg(),
            textures: pattern::Textures::default(),
            paint: PaintCanvas::new(icon),
            brush: Brush::default(),
            paint_texture: PaintTexture::default(),
            applied_theme: None,
            fonts_installed: false,
            last_autosave: Instant::now(),
        }
    }

    pub fn from_creation(cc: &eframe::CreationContext<'_>) -> Self {
        let state = cc
            .storage
            .and_then(|s| eframe::get_value::<AppState>(s, eframe::APP_KEY))
            .unwrap_or_default();
        let ctx = cc.egui_ctx.clone();
        Self::new(state, move || ctx.request_repaint())
    }

    // ---- actions (buttons, shortcuts and tests all go through these) ----

    /// The settings describe an image job (Turing patterns) rather than points.
    pub fn is_image(&self) -> bool {
        self.settings.dataset.kind().is_image()
    }

    /// Start the live pattern simulation again, from a data pattern or from noise.
    pub fn restart_sim(&mut self, from: Restart) {
        self.state.sim.restart = from;
        self.worker.send(Command::Steer {
            controls: self.state.sim,
            restart: true,
        });
        self.sent_sim = Some(self.state.sim);
    }

    /// The settings validate: the job about to start is the running one. Otherwise the
    /// user is told why nothing starts.
    fn ready_to_start(&mut self) -> bool {
        if let Err(e) = self.settings.validate() {
            self.message = Some(Message::error(format!("Cannot train: {e}.")));
            return false;
        }
        self.message = None;
        self.running = Some(self.settings.clone());
        true
    }

    pub fn start(&mut self) {
        if !self.ready_to_start() {
            return;
        }
        self.worker.send(Command::Start {
            preset: Box::new(self.settings.clone()),
            backend: self.state.backend,
        });
    }

    /// Train one score model, then `seeds` flows that differ only in their seed (`stack` at
    /// a time as one network), and compare them (the Solutions view).
    pub fn start_sweep(&mut self, seeds: usize, stack: usize) {
        if self.is_image() {
            self.message = Some(Message::error(
                "a sweep compares the flows of point systems: choose ring, two peaks, two \
                 moons or Lorenz",
            ));
            return;
        }
        if !self.ready_to_start() {
            return;
        }
        self.worker.send(Command::StartSweep {
            preset: Box::new(self.settings.clone()),
            backend: self.state.backend,
            seeds,
            stack,
        });
    }

    /// A sweep: play model `k`'s flow in the Flow and 3-D views.
    pub fn watch_model(&mut self, k: usize) {
        self.worker.send(Command::Watch(k));
    }

    /// Space: train when idle, otherwise pause or resume.
    pub fn play_pause(&mut self) {
        match self.results.state {
            JobState::Training => self.worker.send(Command::Pause),
            JobState::Paused => self.worker.send(Command::Resume),
            _ => self.start(),
        }
    }

    pub fn stop(&mut self) {
        self.worker.send(Command::Stop);
    }

    /// Stop, clear the views and return the settings to the preset's own.
    pub fn reset(&mut self) {
        self.worker.send(Command::Stop);
        self.results = Results::default();
        self.running = None;
        self.message = None;
        match self.state.preset() {
            Ok(p) => self.set_settings(p),
            Err(e) => self.message = Some(Message::error(e.to_string())),
        }
    }

    pub fn set_settings(&mut self, p: Preset) {
        self.state.settings_toml = p.to_toml();
        self.state.sim = SimControls::from_preset(&p);
        self.settings = p;
    }

    /// Choose a built-in preset.
    pub fn choose_preset(&mut self, name: &str) {
        if let Some(text) = builtin_source(name)
            && let Err(e) = self.load_preset_text(name, &text)
        {
            self.message = Some(Message::error(e));
        }
    }

    /// Load a preset from TOML text; on error nothing changes and the error is returned.
    pub fn load_preset_text(&mut self, name: &str, text: &str) -> Result<(), String> {
        let p =
            Preset::from_toml_str(name, text, self.state.quick, &[]).map_err(|e| e.to_string())?;
        self.state.preset_name = name.to_string();
        self.state.preset_source = text.to_string();
        // The Paint tab shows the target of the preset actually open (the old picture stays
        // one undo away).
        let target = p.dataset.alife().map(|a| a.target.clone());
        let before = self.settings.dataset.alife().map(|a| a.target.clone());
        self.set_settings(p);
        if let Some(t) = target
            && (before.as_ref() != Some(&t) || self.paint.icon.is_blank())
            && let Ok(icon) = Icon::load(&t, self.paint.size())
        {
            self.paint.replace(&icon);
        }
        Ok(())
    }

    pub fn load_preset_file(&mut self, path: &Path, bytes: Result<Vec<u8>, String>) {
        let name = path
            .file_name()
            .map_or("preset".into(), |n| n.to_string_lossy().to_string());
        let result = bytes
            .and_then(|b| {
                String::from_utf8(b).map_err(|_| "the file is not UTF-8 text".to_string())
            })
            .and_then(|text| self.load_preset_text(&name, &text));
        self.message = Some(match result {
            Ok(()) => Message::info(format!("Loaded preset {name}. Press Train to run it.")),
            Err(e) => Message::error(format!("Could not load {name}: {e}")),
        });
    }

    /// Turn quick scaling on or off: reloads the preset's settings.
    pub fn set_quick(&mut self, quick: bool) {
        self.state.quick = quick;
        match self.state.preset() {
            Ok(p) => self.set_settings(p),
            Err(e) => self.message = Some(Message::error(e.to_string())),
        }
    }

    /// Write the current job's models over its autosave directory (the worker ignores this
    /// when nothing is trained yet).
    pub fn autosave(&mut self) {
        self.worker.send(Command::Autosave);
        self.last_autosave = Instant::now();
    }

    /// Save the current job; `None` picks a fresh directory under `runs/`.
    pub fn save_run(&mut self, dir: Option<PathBuf>) {
        let dir = dir.unwrap_or_else(|| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            PathBuf::from("runs").join(format!("{}-app-{secs}", self.settings.file_stem()))
        });
        self.worker.send(Command::Save(dir));
    }

    pub fn open_dialog(&self) {
        self.pick_file("equiflow preset", &["toml"], FileChoice::OpenPreset);
    }

    /// Choose a file of point snapshots (the worker reads it and answers).
    pub fn open_data_dialog(&self) {
        let pick = || {
            rfd::FileDialog::new()
                .add_filter("point snapshots", crate::data::table::Format::EXTENSIONS)
                .add_filter("a picture to crop", crate::data::image_files::EXTENSIONS)
                .pick_file()
        };
        dialog(self.files.0.clone(), pick, FileChoice::OpenData);
    }

    /// Choose a folder of pictures to open as image snapshots.
    pub fn open_folder_dialog(&self) {
        let pick = || rfd::FileDialog::new().pick_folder();
        dialog(self.files.0.clone(), pick, FileChoice::OpenData);
    }

    /// Choose the velocity file of the open file preset.
    pub fn open_velocity_dialog(&self) {
        let tables = crate::data::table::Format::EXTENSIONS;
        self.pick_file("velocities", tables, FileChoice::OpenVelocity);
    }

    /// A file dialog for one kind of file (`what`, by its extensions), answered as `wrap`.
    fn pick_file(
        &self,
        what: &'static str,
        extensions: &'static [&'static str],
        wrap: fn(PathBuf) -> FileChoice,
    ) {
        let pick = move || {
            rfd::FileDialog::new()
                .add_filter(what, extensions)
                .pick_file()
        };
        dialog(self.files.0.clone(), pick, wrap);
    }

    /// The open file preset takes `path` as its velocity file (checked when it trains).
    pub fn set_velocity_file(&mut self, path: &Path) {
        if let Some(f) = self.settings.dataset.file_mut() {
            f.velocity = Some(path.display().to_string());
            self.state.settings_toml = self.settings.to_toml();
            self.message = Some(Message::info(format!(
                "Velocities from {}: used from the next Train.",
                path.display()
            )));
        }
    }

    /// Open the user's snapshot file: the worker reads it and answers with the settings of
    /// the closest built-in and the data, shown before anything trains.
    pub fn open_data(&mut self, path: &Path) {
        self.message = Some(Message::info(format!("Reading {}…", path.display())));
        self.worker.send(Command::OpenData {
            path: path.to_path_buf(),
            quick: self.state.quick,
        });
    }

    /// A file preset's snapshots, read to show before anything trains: shown while no job
    /// has started (a finished job's views stay), or why they cannot be read.
    fn points_preview(&mut self, p: crate::worker::event::PointsPreview) {
        if !p.matches(&self.settings) || self.results.state != JobState::Idle {
            return;
        }
        match p.points {
            Ok(points) => self.show_data(points),
            Err(e) => self.message = Some(Message::error(format!("Cannot read the data: {e}"))),
        }
    }

    /// The views show `points` as the data of a job not started yet (nothing trained).
    fn show_data(&mut self, points: crate::worker::event::PointData) {
        self.results = Results {
            job: Some(crate::worker::event::JobStarted {
                preset: self.settings.name.clone(),
                backend: String::new(),
                shows: crate::worker::event::Shows::Points(points),
            }),
            ..Results::default()
        };
    }

    /// What [`EquiflowApp::open_data`] got back.
    fn data_opened(&mut self, opened: Result<Box<crate::worker::event::OpenedData>, String>) {
        match opened {
            Ok(o) => {
                self.sent_points_preview = Some((o.preset.dataset.clone(), o.preset.data_seed()));
                self.state.preset_name = o.preset.name.clone();
                self.state.preset_source = o.preset.to_toml();
                self.set_settings(o.preset);
                if let Some(points) = o.points.filter(|_| !self.results.is_running()) {
                    self.show_data(points);
                }
                self.message = Some(Message::info(format!(
                    "Opened {}. Press Train to learn its flow.",
                    o.summary
                )));
            }
            Err(e) => self.message = Some(Message::error(format!("Could not open: {e}"))),
        }
    }

    pub fn save_dialog(&self) {
        let pick = || rfd::FileDialog::new().pick_folder();
        dialog(self.files.0.clone(), pick, FileChoice::SaveTo);
    }

    /// What the Paint tab asked for.
    pub fn paint_action(&mut self, action: PaintAction) {
        match action {
            PaintAction::Builtin(name) => {
                if let Some(icon) = Icon::builtin(name, ASSET_SIZE) {
                    self.paint.replace(&icon);
                }
            }
            PaintAction::Load => {
                let pick = || {
                    rfd::FileDialog::new()
                        .add_filter("picture", &["png", "jpg", "jpeg"])
                        .pick_file()
                };
                dialog(self.files.0.clone(), pick, FileChoice::OpenTarget);
            }
            PaintAction::Save => {
                let pick = || {
                    rfd::FileDialog::new()
                        .add_filter("PNG", &["png"])
                        .set_file_name("target.png")
                        .save_file()
                };
                dialog(self.files.0.clone(), pick, FileChoice::SaveTarget);
            }
            PaintAction::UseAsTarget => self.use_painted_target(),
        }
    }

    /// Save the painted icon under `runs/targets/` (named by its content, so a repainted
    /// icon never overwrites the target of an earlier run) and make it the target.
    pub fn use_painted_target(&mut self) {
        if self.paint.icon.is_blank() {
            self.message = Some(Message::error("the canvas is empty: paint a target first"));
            return;
        }
        let bytes = self.paint.icon.to_rgba8();
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        let path = PathBuf::from("runs/targets").join(format!("painted-{hash:016x}.png"));
        if let Err(e) = self.paint.icon.save_png(&path) {
            self.message = Some(Message::error(format!("could not save the target: {e}")));
            return;
        }
        if self.settings.dataset.kind() != DatasetKind::Alife {
            self.choose_preset("alife-dot");
        }
        let mut p = self.settings.clone();
        if let Some(a) = p.dataset.alife_mut() {
            a.target = path.display().to_string();
        }
        self.set_settings(p);
        self.message = Some(Message::info(format!(
            "Target set to {}. Press Train to bring it to life.",
            path.display()
        )));
    }

    /// A picture to paint on (opened or dropped): fitted to the canvas, or an error.
    pub fn load_target_file(&mut self, path: &Path, bytes: Result<Vec<u8>, String>) {
        let name = path.display().to_string();
        let icon = bytes
            .and_then(|b| Icon::decode(&b, &name, self.paint.size()).map_err(|e| e.to_string()));
        match icon {
            Ok(icon) => {
                self.paint.replace(&icon);
                self.state.tab = Tab::Paint;
                self.message = Some(Message::info(format!(
                    "Loaded {name} into the Paint tab; press Use as target to train on it."
                )));
            }
            Err(e) => self.message = Some(Message::error(e)),
        }
    }

    /// Write the live view's current frame, its recent frames or its tracks under
    /// `runs/exports/`, off the UI thread.
    pub fn export(&mut self, what: Export) {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let stem = format!("runs/exports/{}-{secs}", self.settings.file_stem());
        let tx = self.files.0.clone();
        match what {
            Export::TracksCsv => {
                self.worker
                    .send(Command::ExportTracks(PathBuf::from(format!("{stem}.csv"))));
            }
            Export::Png => {
                let Some(picture) = self.results.recent_frames.back().cloned() else {
                    self.message = Some(Message::error("no frame to save yet"));
                    return;
                };
                let path = PathBuf::from(format!("{stem}.png"));
                std::thread::spawn(move || {
                    let (w, h, px) = &*picture;
                    let r = crate::data::icon::save_rgba_png(&path, px, *w, *h)
                        .map(|_| format!("Saved {}.", path.display()))
                        .map_err(|e| e.to_string());
                    let _ = tx.send(FileChoice::Wrote(r));
                });
            }
            Export::Record => match self.recorder.take() {
                Some(r) => {
                    // ffmpeg finishes the frames still queued off the UI thread.
                    std::thread::spawn(move || {
                        let _ = tx.send(FileChoice::Wrote(r.finish()));
                    });
                }
                None => {
                    let Some(ffmpeg) = &self.ffmpeg else {
                        self.message = Some(Message::error(
                            "recording MP4 needs ffmpeg on PATH; Save GIF works without it",
                        ));
                        return;
                    };
                    let Some(&(w, h, _)) = self.results.recent_frames.back().map(|p| &**p) else {
                        self.message = Some(Message::error("no frame to record yet"));
                        return;
                    };
                    let path = PathBuf::from(format!("{stem}.mp4"));
                    self.message = Some(match Recorder::start(ffmpeg, &path, w, h) {
                        Ok(r) => {
                            self.recorder = Some(r);
                            Message::info(format!(
                                "Recording to {}; press Stop recording to finish it.",
                                path.display()
                            ))
                        }
                        Err(e) => Message::error(e),
                    });
                }
            },
            Export::Gif => {
                let frames: Vec<_> = self.results.recent_frames.iter().cloned().collect();
                if frames.is_empty() {
                    self.message = Some(Message::error("no frames to save yet"));
                    return;
                }
                let path = PathBuf::from(format!("{stem}.gif"));
                std::thread::spawn(move || {
                    let r = crate::ui::export::write_gif(&path, &frames)
                        .map(|n| format!("Saved {} ({n} frames).", path.display()));
                    let _ = tx.send(FileChoice::Wrote(r));
                });
            }
        }
    }

    /// For tests: make the running job panic at its next step, as a bug would.
    #[doc(hidden)]
    pub fn inject_failure(&self) {
        self.worker.send(Command::InjectPanic);
    }

    /// The live settings (learning rates) changed: tell the running job.
    pub(crate) fn send_live_lr(&self) {
        if self.results.is_running() {
            self.worker.send(Command::SetLr {
                score: self.settings.score.lr,
                flow: self.settings.flow.lr,
            });
        }
    }

    /// Whether edits (other than the live ones) wait for the next run.
    pub fn edits_pending(&self) -> bool {
        let Some(running) = self.running.as_ref().filter(|_| self.results.is_running()) else {
            return false;
        };
        let mut a = self.settings.clone();
        (a.score.lr, a.flow.lr) = (running.score.lr, running.flow.lr);
        a != *running
    }

    pub fn particle_count(&self) -> usize {
        if self
            .results
            .dim()
            .unwrap_or(self.settings.dataset.kind().dim())
            >= 3
        {
            self.state.particles_3d
        } else {
            self.state.particles_2d
        }
    }

    pub fn fps(&self) -> f64 {
        let n = self.frame_times.len();
        if n < 2 {
            return 0.0;
        }
        let span = self.frame_times[n - 1] - self.frame_times[0];
        (n - 1) as f64 / span.as_secs_f64().max(1e-6)
    }

    // ---- one frame ----

    /// Take in what the worker sent since the last frame.
    pub fn poll(&mut self) {
        for e in self.worker.events() {
            if let Event::Preview(p) = e {
                self.preview = Some(*p);
                self.preview_in_flight = false;
                continue;
            }
            if let Event::DataOpened(o) = e {
                self.data_opened(o);
                continue;
            }
            if let Event::PointsPreview(p) = e {
                self.points_preview(*p);
                continue;
            }
            if let Some(m) = self.results.apply(e) {
                self.message = Some(m);
            }
        }
        match self.worker.latest_frame() {
            Some(Frame::Particles(f)) => self.results.particles = Some(f),
            Some(Frame::Pattern(f)) => {
                if let (Some(picture), Some(r)) =
                    (self.results.take_pattern_frame(f), &mut self.recorder)
                {
                    r.push(picture);
                }
            }
            None => {}
        }
        while let Ok(choice) = self.files.1.try_recv() {
            match choice {
                FileChoice::OpenPreset(p) => {
                    let bytes = std::fs::read(&p).map_err(|e| e.to_string());
                    self.load_preset_file(&p, bytes);
                }
                FileChoice::OpenData(p) => self.open_data(&p),
                FileChoice::OpenVelocity(p) => self.set_velocity_file(&p),
                FileChoice::SaveTo(p) => self.save_run(Some(p)),
                FileChoice::OpenTarget(p) => {
                    let bytes = std::fs::read(&p).map_err(|e| e.to_string());
                    self.load_target_file(&p, bytes);
                }
                FileChoice::SaveTarget(p) => {
                    self.message = Some(match self.paint.icon.save_png(&p) {
                        Ok(()) => Message::info(format!("Saved {}.", p.display())),
                        Err(e) => Message::error(e.to_string()),
                    })
                }
                FileChoice::Wrote(r) => {
                    self.message = Some(match r {
                        Ok(m) => Message::info(m),
                        Err(e) => Message::error(e),
                    })
                }
                FileChoice::NoDialog => {
                    self.message = Some(Message::error(
                        "no file dialog could open (is xdg-desktop-portal running?); \
                         drop a preset file on the window instead, or use Save run",
                    ))
                }
            }
        }
        if !self.worker.is_alive() && !matches!(&self.message, Some(m) if m.error) {
            self.message = Some(Message::error(
                "the worker thread stopped; restart the app to train again",
            ));
        }
    }

    fn sync_worker(&mut self) {
        let key = (self.settings.dataset.clone(), self.settings.seed);
        if self.is_image() && !self.preview_in_flight && self.sent_preview.as_ref() != Some(&key) {
            self.worker
                .send(Command::Preview(Box::new(self.settings.clone())));
            self.sent_preview = Some(key);
            self.preview_in_flight = true;
        }
        let points_key = (self.settings.dataset.clone(), self.settings.data_seed());
        if self.settings.dataset.kind() == DatasetKind::File
            && self.results.state == JobState::Idle
            && self.sent_points_preview.as_ref() != Some(&points_key)
        {
            self.worker
                .send(Command::PreviewPoints(Box::new(self.settings.clone())));
            self.sent_points_preview = Some(points_key);
        }
        let animate = self.state.tab.animates();
        if self.sent_animate != Some(animate) {
            self.worker.send(Command::Animate(animate));
            self.sent_animate = Some(animate);
        }
        if self.sent_sim != Some(self.state.sim) {
            self.worker.send(Command::Steer {
                controls: self.state.sim,
                restart: false,
            });
            self.sent_sim = Some(self.state.sim);
        }
        let particles = (self.particle_count(), self.state.sim_dt);
        if self.sent_particles != Some(particles) {
            self.worker.send(Command::SetParticles {
                count: particles.0,
                dt: particles.1,
            });
            self.sent_particles = Some(particles);
        }
    }

    fn shortcuts(&mut self, ui: &Ui) {
        let typing = ui.ctx().memory(|m| m.focused().is_some());
        let (space, open, save) = ui.input_mut(|i| {
            (
                !typing && i.consume_key(Modifiers::NONE, Key::Space),
                i.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::O)),
                i.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::S)),
            )
        });
        if space {
            self.play_pause();
        }
        if open {
            self.open_dialog();
        }
        if save {
            self.save_run(None);
        }
    }

    fn dropped_files(&mut self, ui: &Ui) {
        let dropped = ui.input(|i| i.raw.dropped_files.clone());
        for f in dropped {
            let path = f.path();
            if crate::train::own_data::is_point_file(path) || path.is_dir() {
                self.open_data(path);
                continue;
            }
            // A picture is a target to paint while painting or training artificial life,
            // else a picture of a pattern to learn from.
            let painting =
                self.state.tab == Tab::Paint || self.settings.dataset.kind() == DatasetKind::Alife;
            let picture = crate::data::image_files::is_picture(path);
            if picture && !painting {
                self.open_data(path);
            } else if picture {
                self.load_target_file(path, f.bytes());
            } else {
                self.load_preset_file(path, f.bytes());
            }
        }
    }

    fn apply_theme(&mut self, ctx: &egui::Context) {
        if self.applied_theme != Some(self.state.theme) {
            ctx.set_theme(match self.state.theme {
                ThemeChoice::System => egui::ThemePreference::System,
                ThemeChoice::Dark => egui::ThemePreference::Dark,
                ThemeChoice::Light => egui::ThemePreference::Light,
            });
            self.applied_theme = Some(self.state.theme);
        }
    }

    /// Draw one frame into `ui` (the whole window).
    pub fn show(&mut self, ui: &mut Ui) {
        let now = Instant::now();
        self.frame_times.push_back(now);
        while self
            .frame_times
            .front()
            .is_some_and(|t| now - *t > Duration::from_secs(1))
        {
            self.frame_times.pop_front();
        }
        if !std::mem::replace(&mut self.fonts_installed, true) {
            install_fonts(ui.ctx());
        }
        self.poll();
        self.apply_theme(ui.ctx());
        self.shortcuts(ui);
        self.dropped_files(ui);
        self.sync_worker();
        if self.results.is_running() && self.last_autosave.elapsed() >= AUTOSAVE_EVERY {
            self.autosave();
        }

        egui::Panel::top("top").show(ui, |ui| self.top_bar(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        egui::Panel::left("controls")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.controls(ui));
            });
        egui::CentralPanel::default().show(ui, |ui| self.central(ui));

        if ui.input(|i| !i.raw.hovered_files.is_empty()) {
            let rect = ui.ctx().content_rect();
            let painter = ui.ctx().layer_painter(egui::LayerId::new(
                egui::Order::Foreground,
                egui::Id::unique("drop"),
            ));
            painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(160));
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "Drop a preset .toml, your data (a table, a picture or a folder of them)",
                egui::FontId::proportional(22.0),
                egui::Color32::WHITE,
            );
        }
        let animating = self.state.tab.animates()
            && (self.results.particles.is_some() || self.results.pattern_frame.is_some());
        if animating {
            ui.ctx().request_repaint();
        } else if self.results.is_running() {
            // The progress bar and its ETA need a few frames a second, not every frame: a
            // window repainting at full rate took a core from training on two cores.
            ui.ctx().request_repaint_after(PROGRESS_REPAINT);
        }
    }

    fn top_bar(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            ui.heading("equiflow");
            ui.separator();
            let tabs = Tab::for_kind(self.settings.dataset.kind());
            if !tabs.contains(&self.state.tab) {
                self.state.tab = if self.is_image() {
                    Tab::Pattern
                } else {
                    Tab::Flow
                };
            }
            for &tab in tabs {
                ui.selectable_value(&mut self.state.tab, tab, tab.label());
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                egui::ComboBox::from_id_salt("theme")
                    .selected_text(format!("{:?}", self.state.theme))
                    .show_ui(ui, |ui| {
                        for t in [ThemeChoice::System, ThemeChoice::Dark, ThemeChoice::Light] {
                            ui.selectable_value(&mut self.state.theme, t, format!("{t:?}"));
                        }
                    })
                    .response
                    .on_hover_text("Colour theme: follow the system, or dark, or light");
                ui.label("Theme");
            });
        });
    }

    fn status_bar(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            ui.monospace(format!("{:>5.1} fps", self.fps()));
            ui.separator();
            let backend = self
                .results
                .backend()
                .unwrap_or("backend: chosen when you train")
                .to_string();
            ui.label(backend);
            ui.separator();
            ui.label(match self.results.state {
                JobState::Idle => "idle",
                JobState::Training => "training",
                JobState::Paused => "paused",
                JobState::Finished => "finished",
                JobState::Failed => "failed",
            });
            if let Some(p) = &self.results.saved {
                ui.separator();
                ui.label(format!("saved: {}", p.display()));
            }
            if let Some(p) = &self.results.autosaved {
                ui.separator();
                ui.label(format!("autosaved: {}", p.display()))
                    .on_hover_text("The last good models, written every few minutes and on exit");
            }
        });
    }

    fn central(&mut self, ui: &mut Ui) {
        let tab = self.state.tab;
        egui::CollapsingHeader::new("What am I seeing?")
            .id_salt(("help", tab as u8))
            .show(ui, |ui| ui.label(help::text(tab)));
        ui.add_space(4.0);
        if self.is_image() {
            let preview = self.preview.as_ref().filter(|p| p.matches(&self.settings));
            let export = match tab {
                Tab::Paint => {
                    let target = self
                        .settings
                        .dataset
                        .alife()
                        .map(|a| a.target.clone())
                        .unwrap_or_default();
                    let action = paint_view::paint_view(
                        ui,
                        &mut self.paint,
                        &mut self.brush,
                        &mut self.paint_texture,
                        &target,
                    );
                    if let Some(a) = action {
                        self.paint_action(a);
                    }
                    None
                }
                Tab::Data => {
                    pattern::images_view(ui, &self.results, preview, &mut self.textures);
                    None
                }
                Tab::Loss => {
                    plots::loss_view(ui, &self.results);
                    None
                }
                Tab::Metrics => {
                    pattern::metrics_view(ui, &self.results);
                    None
                }
                Tab::Rule => {
                    let chosen = self.settings.sde.flow == ImageFlow::Nca;
                    nca_view::nca_view(ui, &self.results, &mut self.textures, chosen);
                    None
                }
                _ => {
                    let recording = pattern::Recording {
                        available: self.ffmpeg.is_some(),
                        frames: self.recorder.as_ref().map(|r| r.frames()),
                    };
                    pattern::pattern_view(ui, &self.results, preview, recording, &mut self.textures)
                }
            };
            if let Some(e) = export {
                self.export(e);
            }
            return;
        }
        match tab {
            Tab::Pattern | Tab::Paint | Tab::Rule => {}
            Tab::Data => field2d::data_view(ui, &self.results, self.state.axes),
            Tab::Score => field2d::score_view(ui, &self.results, self.state.axes),
            Tab::Flow => {
                ui.checkbox(&mut self.state.show_streamlines, "streamlines")
                    .on_hover_text("Draw the learned field's streamlines under the particles");
                field2d::flow_view(
                    ui,
                    &self.results,
                    self.state.show_streamlines,
                    self.state.axes,
                );
            }
            Tab::Loss => plots::loss_view(ui, &self.results),
            Tab::Metrics => plots::metrics_view(ui, &self.results),
            Tab::Lorenz3d => {
                lorenz3d::lorenz_view(ui, &self.results, &mut self.state.camera, self.state.axes);
            }
            Tab::Solutions => {
                let (seeds, stack) = (&mut self.state.sweep_seeds, &mut self.state.sweep_stack);
                match solutions::solutions_view(ui, &self.results, seeds, stack) {
                    Some(SolutionsAction::Start { seeds, stack }) => self.start_sweep(seeds, stack),
                    Some(SolutionsAction::Watch(k)) => self.watch_model(k),
                    None => {}
                }
            }
        }
    }
}

impl eframe::App for EquiflowApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    /// The worker writes the autosave before it stops (it handles commands in order, and
    /// the app waits for it to end).
    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.autosave();
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.state);
    }
}
