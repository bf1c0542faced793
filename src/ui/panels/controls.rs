//! The left panel: preset, settings, run controls, progress and messages.

use crate::backend::BackendChoice;
use crate::preset::{self, Estimator, Source};
use crate::train::job::Phase;
use crate::ui::app::EquiflowApp;
use crate::ui::results::JobState;
use egui::{DragValue, Slider, Ui};

fn eta(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// A labelled number in a two-column grid; returns whether it changed.
pub(super) fn number<T: egui::emath::Numeric>(
    ui: &mut Ui,
    label: &str,
    value: &mut T,
    range: std::ops::RangeInclusive<T>,
    tip: &str,
) -> bool {
    ui.label(label).on_hover_text(tip);
    let changed = ui
        .add(
            DragValue::new(value)
                .range(range)
                .clamp_existing_to_range(false),
        )
        .on_hover_text(tip)
        .changed();
    ui.end_row();
    changed
}

/// The run's seed, in a settings grid.
pub(super) fn seed(ui: &mut Ui, seed: &mut u64) -> bool {
    number(
        ui,
        "seed",
        seed,
        0..=u64::MAX,
        "Seeds the data, the initial weights and the noise: same seed, same run",
    )
}

/// The user's snapshot file: which columns, how many rows, standardised or not, the
/// velocity file; returns whether a setting changed and whether to pick a velocity file.
fn file_settings(ui: &mut Ui, f: &mut preset::FileData) -> (bool, bool) {
    let mut changed = false;
    let mut pick = false;
    let file_name = |path: &str| {
        std::path::Path::new(path)
            .file_name()
            .map_or(path.to_string(), |n| n.to_string_lossy().to_string())
    };
    ui.label("file");
    ui.label(file_name(&f.path)).on_hover_text(&f.path);
    ui.end_row();
    ui.label("velocities").on_hover_text(
        "The true velocity at each snapshot (same rows and columns): the flows are compared \
         with it (|cos| to the truth)",
    );
    ui.horizontal(|ui| {
        if let Some(v) = &f.velocity {
            ui.label(file_name(v)).on_hover_text(v);
            if ui
                .small_button("×")
                .on_hover_text("No velocities")
                .clicked()
            {
                f.velocity = None;
                changed = true;
            }
        }
        pick = ui
            .small_button("Open…")
            .on_hover_text("Pick the velocity file")
            .clicked();
    });
    ui.end_row();
    let tip = "The columns that are the axes, by header name or 0-based index, separated by \
               commas (empty: every column); applies at the next Train";
    let label = ui.label("columns").on_hover_text(tip);
    let id = ui.scope_id().with("file-columns");
    let shown = columns_text(&f.columns);
    let mut text: String = ui.data_mut(|d| d.get_temp(id)).unwrap_or(shown.clone());
    let resp = ui
        .add(
            egui::TextEdit::singleline(&mut text)
                .hint_text("all")
                .desired_width(120.0),
        )
        .labelled_by(label.id);
    let resp = resp.on_hover_text(tip);
    if resp.lost_focus() {
        let picked = parse_columns(&text);
        changed |= picked != f.columns;
        f.columns = picked;
        ui.data_mut(|d| d.remove::<String>(id));
    } else if resp.has_focus() {
        ui.data_mut(|d| d.insert_temp(id, text));
    }
    ui.end_row();
    changed |= ui
        .checkbox(&mut f.standardise, "standardise")
        .on_hover_text(
            "Shift and scale each axis to mean 0 and variance 1 (the settings assume it)",
        )
        .changed();
    ui.end_row();
    let mut sub = f.n.is_some();
    if ui
        .checkbox(&mut sub, "subsample")
        .on_hover_text("Train on a seeded random subset of the rows")
        .changed()
    {
        f.n = sub.then_some(10_000);
        changed = true;
    }
    ui.end_row();
    if let Some(n) = &mut f.n {
        changed |= number(
            ui,
            "rows",
            n,
            preset::MIN_FILE_ROWS..=100_000_000,
            "How many rows to draw",
        );
    }
    (changed, pick)
}

/// `columns` as the panel shows them: `x, 2, z`.
fn columns_text(columns: &[preset::Column]) -> String {
    columns
        .iter()
        .map(|c| match c {
            preset::Column::Index(i) => i.to_string(),
            preset::Column::Name(n) => n.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The panel's column list: numbers are indices, anything else a header name.
fn parse_columns(text: &str) -> Vec<preset::Column> {
    text.split(',')
        .map(|c| c.trim().trim_matches('"'))
        .filter(|c| !c.is_empty())
        .map(|c| match c.parse::<usize>() {
            Ok(i) => preset::Column::Index(i),
            Err(_) => preset::Column::Name(c.to_string()),
        })
        .collect()
}

pub(super) fn rate(ui: &mut Ui, label: &str, value: &mut f64, tip: &str) -> bool {
    ui.label(label).on_hover_text(tip);
    let changed = ui
        .add(
            Slider::new(value, 1e-5..=1e-1)
                .logarithmic(true)
                .clamping(egui::SliderClamping::Edits),
        )
        .on_hover_text(tip)
        .changed();
    ui.end_row();
    changed
}

impl EquiflowApp {
    pub(crate) fn controls(&mut self, ui: &mut Ui) {
        self.preset_picker(ui);
        ui.separator();
        self.run_buttons(ui);
        self.progress(ui);
        self.messages(ui);
        ui.separator();
        if self.is_image() {
            self.pattern_settings(ui);
            ui.separator();
            self.sim_controls(ui);
        } else {
            self.settings_editor(ui);
            ui.separator();
            self.view_controls(ui);
        }
    }

    fn preset_picker(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            let label = ui
                .label("Preset")
                .on_hover_text("The system to learn and its reference settings");
            let mut chosen = None;
            egui::ComboBox::from_id_salt("preset")
                .selected_text(self.state.preset_name.clone())
                .show_ui(ui, |ui| {
                    for (name, text) in preset::BUILTIN {
                        let about = text.lines().next().unwrap_or("").trim_start_matches("# ");
                        if ui
                            .selectable_label(self.state.preset_name == *name, *name)
                            .on_hover_text(about)
                            .clicked()
                        {
                            chosen = Some(*name);
                        }
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("Pick a built-in preset (or open / drop a .toml file)");
            if let Some(name) = chosen {
                self.choose_preset(name);
            }
            if ui
                .button("Open…")
                .on_hover_text(
                    "Load a preset .toml file (Ctrl+O); you can also drop one on the window",
                )
                .clicked()
            {
                self.open_dialog();
            }
            if ui
                .button("Open data…")
                .on_hover_text(
                    "Your own snapshots: points in a .csv, .tsv, .txt or .npy file with one row \
                     per state and one column per axis, or one PNG/JPEG picture of a pattern to \
                     take random crops from (you can also drop one on the window)",
                )
                .clicked()
            {
                self.open_data_dialog();
            }
            if ui
                .button("Open folder…")
                .on_hover_text(
                    "Your own image snapshots: a folder of PNG/JPEG pictures, one snapshot each \
                     (you can also drop the folder on the window)",
                )
                .clicked()
            {
                self.open_folder_dialog();
            }
        });
        let mut quick = self.state.quick;
        if ui
            .checkbox(&mut quick, "Quick (scaled down for a CPU)")
            .on_hover_text(
                "Use the preset's [quick] settings: trains in a minute or two on a laptop CPU. \
                 Switching reloads the preset's settings.",
            )
            .changed()
        {
            self.set_quick(quick);
        }
    }

    fn run_buttons(&mut self, ui: &mut Ui) {
        let state = self.results.state;
        let running = self.results.is_running();
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!running, egui::Button::new("Train"))
                .on_hover_text("Train the score model, then the flow, with these settings (Space)")
                .clicked()
            {
                self.start();
            }
            let (label, tip) = if state == JobState::Paused {
                ("Resume", "Continue training (Space)")
            } else {
                ("Pause", "Pause training; particles keep moving (Space)")
            };
            if ui
                .add_enabled(running, egui::Button::new(label))
                .on_hover_text(tip)
                .clicked()
            {
                self.play_pause();
            }
            if ui
                .add_enabled(running, egui::Button::new("Stop"))
                .on_hover_text("End the job; what it has trained stays and can be saved")
                .clicked()
            {
                self.stop();
            }
            if ui
                .button("Reset")
                .on_hover_text("Stop, clear the views and return to the preset's own settings")
                .clicked()
            {
                self.reset();
            }
        });
        ui.horizontal(|ui| {
            if ui
                .button("Save run")
                .on_hover_text("Write models, losses, samples and metrics under runs/ (Ctrl+S)")
                .clicked()
            {
                self.save_run(None);
            }
            if ui
                .button("Save as…")
                .on_hover_text("Choose the folder to save the run into")
                .clicked()
            {
                self.save_dialog();
            }
        });
    }

    fn progress(&mut self, ui: &mut Ui) {
        let Some(p) = &self.results.progress else {
            return;
        };
        let frac = if p.total > 0 {
            p.done as f32 / p.total as f32
        } else {
            0.0
        };
        let mut text = match p.phase {
            Phase::Score | Phase::Flow => {
                format!("{} · epoch {}/{}", p.phase.label(), p.epoch, p.epochs)
            }
            _ => format!("{} {}/{}", p.phase.label(), p.done, p.total),
        };
        if let Some(s) = p
            .eta_seconds
            .filter(|_| self.results.state == JobState::Training)
        {
            text += &format!(" · ETA {}", eta(s));
        }
        let done = matches!(self.results.state, JobState::Finished | JobState::Failed);
        ui.add(
            egui::ProgressBar::new(if done { 1.0 } else { frac }).text(if done {
                "done".to_string()
            } else {
                text
            }),
        )
        .on_hover_text("Phase, epoch and the time left in this phase");
        if !done && matches!(p.phase, Phase::Score | Phase::Flow) {
            ui.weak(format!("step {} of {} in this phase", p.done, p.total));
        }
    }

    fn messages(&mut self, ui: &mut Ui) {
        if self.edits_pending() {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "Changed settings apply on the next run (learning rates apply now).",
            );
        }
        let mut dismiss = false;
        if let Some(m) = &self.message {
            ui.horizontal_wrapped(|ui| {
                if m.error {
                    ui.colored_label(ui.visuals().error_fg_color, &m.text);
                } else {
                    ui.label(&m.text);
                }
                dismiss = ui.small_button("×").on_hover_text("Dismiss").clicked();
            });
        }
        if dismiss {
            self.message = None;
        }
    }

    fn settings_editor(&mut self, ui: &mut Ui) {
        let mut changed = false;
        let mut lr_changed = false;
        let mut pick_velocity = false;
        let s = &mut self.settings;
        egui::CollapsingHeader::new("Dataset")
            .default_open(true)
            .show(ui, |ui| {
                egui::Grid::new("data").num_columns(2).show(ui, |ui| {
                    ui.label("system");
                    ui.label(format!("{:?}", s.dataset.kind()));
                    ui.end_row();
                    let points = |ui: &mut Ui, n: &mut usize| {
                        number(
                            ui,
                            "points",
                            n,
                            16..=1_000_000,
                            "How many snapshots to generate (2-D systems)",
                        )
                    };
                    match &mut s.dataset.source {
                        Source::Ring(p) | Source::TwoPeaks(p) => changed |= points(ui, &mut p.n),
                        Source::TwoMoons(m) => {
                            changed |= points(ui, &mut m.n);
                            changed |= number(
                                ui,
                                "noise",
                                &mut m.noise,
                                0.0..=1.0,
                                "Gaussian noise added to the moons",
                            );
                        }
                        Source::Lorenz(l) => {
                            changed |= number(
                                ui,
                                "runs",
                                &mut l.runs,
                                1..=10_000,
                                "Independent Lorenz trajectories",
                            );
                            changed |= number(
                                ui,
                                "steps per run",
                                &mut l.steps_per_run,
                                1..=1_000_000,
                                "States kept per trajectory (after burn-in)",
                            );
                        }
                        Source::File(f) => {
                            let (c, pick) = file_settings(ui, f);
                            changed |= c;
                            pick_velocity |= pick;
                        }
                        // Image kinds have their own panel.
                        Source::GrayScott(_) | Source::Alife(_) | Source::Images(_) => {}
                    }
                    changed |= seed(ui, &mut s.seed);
                });
            });
        egui::CollapsingHeader::new("Score model")
            .default_open(true)
            .show(ui, |ui| {
                egui::Grid::new("score").num_columns(2).show(ui, |ui| {
                    changed |= number(ui, "hidden", &mut s.score.hidden, 4..=4096, "Width of the score network's hidden layers");
                    changed |= number(ui, "epochs", &mut s.score.epochs, 1..=1_000_000, "Passes over the data");
                    changed |= number(ui, "batch", &mut s.score.batch, 2..=1_000_000, "Points per training step");
                    lr_changed |= rate(ui, "learning rate", &mut s.score.lr, "Adam step size; changes apply live to a running job");
                    let max_tau = s.score.diffusion_steps.saturating_sub(1);
                    changed |= number(ui, "diffusion steps", &mut s.score.diffusion_steps, 2..=10_000, "Noise levels of the cosine schedule");
                    changed |= number(ui, "score step τ", &mut s.score.tau_step, 0..=max_tau, "The noise level whose score the flow is trained with: small = sharp, large = smooth");
                });
            });
        egui::CollapsingHeader::new("Flow model")
            .default_open(true)
            .show(ui, |ui| {
                egui::Grid::new("flow").num_columns(2).show(ui, |ui| {
                    changed |= number(ui, "hidden", &mut s.flow.hidden, 4..=4096, "Width of the flow network's hidden layers");
                    changed |= number(ui, "frequencies", &mut s.flow.freqs, 0..=64, "Sin/cos features of the input: more = finer detail");
                    changed |= number(ui, "epochs", &mut s.flow.epochs, 1..=1_000_000, "Passes over the data");
                    changed |= number(ui, "batch", &mut s.flow.batch, 2..=1_000_000, "Points per training step");
                    lr_changed |= rate(ui, "learning rate", &mut s.flow.lr, "Adam step size; changes apply live to a running job");
                    ui.label("divergence").on_hover_text("How ∇·v is computed in the equilibrium loss");
                    egui::ComboBox::from_id_salt("estimator")
                        .selected_text(format!("{:?}", s.flow.estimator))
                        .show_ui(ui, |ui| {
                            for (e, tip) in [
                                (Estimator::Auto, "exact up to 8 dimensions, else Hutchinson"),
                                (Estimator::Exact, "one pass per dimension, no noise"),
                                (Estimator::Hutchinson, "random probes: cheaper in high dimension, noisy"),
                            ] {
                                changed |= ui
                                    .selectable_value(&mut s.flow.estimator, e, format!("{e:?}"))
                                    .on_hover_text(tip)
                                    .changed();
                            }
                        })
                        .response
                        .on_hover_text("How ∇·v is computed in the equilibrium loss");
                    ui.end_row();
                    if s.flow.estimator == Estimator::Hutchinson {
                        changed |= number(ui, "probes", &mut s.flow.probes, 1..=256, "Hutchinson probes per point");
                    }
                    changed |= number(ui, "sym-J penalty", &mut s.flow.sym_penalty, 0.0..=10.0, "Weight of ‖sym J‖²: favours rotation-like flows (good on the ring, bad for Lorenz)");
                });
            });
        ui.horizontal(|ui| {
            ui.label("Backend")
                .on_hover_text("Where training runs: GPU (wgpu) when available, else CPU");
            egui::ComboBox::from_id_salt("backend")
                .selected_text(format!("{:?}", self.state.backend))
                .show_ui(ui, |ui| {
                    for b in [BackendChoice::Auto, BackendChoice::Cpu, BackendChoice::Gpu] {
                        ui.selectable_value(&mut self.state.backend, b, format!("{b:?}"));
                    }
                })
                .response
                .on_hover_text("Auto takes a hardware GPU when there is one, else the CPU");
        });
        if let Some(s) = &self.results.job {
            ui.weak(format!("in use: {}", s.backend));
        }
        if pick_velocity {
            self.open_velocity_dialog();
        }
        if changed || lr_changed {
            self.state.settings_toml = self.settings.to_toml();
        }
        if lr_changed {
            self.send_live_lr();
        }
    }

    fn view_controls(&mut self, ui: &mut Ui) {
        ui.label("Particles (live)");
        let three_d = self
            .results
            .dim()
            .unwrap_or(self.settings.dataset.kind().dim())
            >= 3;
        if three_d {
            ui.add(Slider::new(&mut self.state.particles_3d, 1..=128).text("trajectories"))
                .on_hover_text("How many learned-flow trajectories the 3-D view draws");
        } else {
            ui.add(
                Slider::new(&mut self.state.particles_2d, 10..=4000)
                    .logarithmic(true)
                    .text("particles"),
            )
            .on_hover_text("How many particles the flow view moves");
        }
        let dim = self.results.dim().unwrap_or(2);
        if dim >= 3 {
            ui.label("Axes shown").on_hover_text(
                "Which data axes the views show as x, y and z (the plane views: x against z)",
            );
            ui.horizontal(|ui| {
                for (k, name) in ["x", "y", "z"].iter().enumerate() {
                    egui::ComboBox::from_id_salt(("axis", k))
                        .width(48.0)
                        .selected_text(format!("{name}: {}", self.state.axes[k].min(dim - 1)))
                        .show_ui(ui, |ui| {
                            for a in 0..dim {
                                ui.selectable_value(
                                    &mut self.state.axes[k],
                                    a,
                                    format!("axis {a}"),
                                );
                            }
                        });
                }
            });
        }
        ui.add(
            Slider::new(&mut self.state.sim_dt, 0.002..=0.1)
                .logarithmic(true)
                .text("time step"),
        )
        .on_hover_text("Simulated time per animation frame: the playback speed");
    }
}
