//! The left panel for image jobs: the Gray–Scott system (with an F–k map to click), the
//! score model, and the live controls of the pattern dynamics.

use super::controls::{number, rate, seed};
use crate::data::gray_scott::{Params, Regime};
use crate::data::icon::BUILTIN;
use crate::preset::{
    GrayScottData, ImageFlow, ImageLayout, ImagesData, KernelKind, Preset, Source,
};
use crate::ui::app::EquiflowApp;
use crate::worker::command::Restart;
use egui::{Slider, Ui};
use egui_plot::{HoverPosition, MarkerShape, Plot, PlotPoints, Points};

impl EquiflowApp {
    pub(crate) fn pattern_settings(&mut self, ui: &mut Ui) {
        let mut changed = false;
        let mut lr_changed = false;
        let s = &mut self.settings;
        if s.dataset.alife().is_some() {
            changed |= alife_target(ui, s);
        } else if let Source::Images(i) = &mut s.dataset.source {
            changed |= user_images(ui, i, &mut s.seed);
        } else if let Source::GrayScott(g) = &mut s.dataset.source {
            egui::CollapsingHeader::new("Gray–Scott system")
                .default_open(true)
                .show(ui, |ui| {
                    let label = ui.label("pattern");
                    egui::ComboBox::from_id_salt("gs-pattern")
                        .selected_text(g.pattern.name())
                        .show_ui(ui, |ui| {
                            for regime in Regime::ALL {
                                let p = regime.params();
                                let tip = format!("F {} · k {}", p.f, p.k);
                                if ui
                                    .selectable_label(g.pattern == regime, regime.name())
                                    .on_hover_text(tip)
                                    .clicked()
                                {
                                    g.pattern = regime;
                                    (g.f, g.k) = (None, None);
                                    changed = true;
                                }
                            }
                        })
                        .response
                        .labelled_by(label.id)
                        .on_hover_text("A named regime of the Gray–Scott system (sets F and k)");
                    changed |= fk_map(ui, g);
                    egui::Grid::new("gs").num_columns(2).show(ui, |ui| {
                        changed |= number(
                            ui,
                            "size (px)",
                            &mut g.size,
                            8..=512,
                            "Side of each snapshot; a multiple of 4",
                        );
                        changed |= number(
                            ui,
                            "snapshots",
                            &mut g.n,
                            16..=100_000,
                            "How many patterns to simulate",
                        );
                        changed |= number(
                            ui,
                            "steps",
                            &mut g.sim_steps,
                            1..=100_000,
                            "Gray–Scott steps from the seed discs to the snapshot",
                        );
                        changed |= seed(ui, &mut s.seed);
                    });
                });
        }
        egui::CollapsingHeader::new("Score model (UNet)")
            .default_open(true)
            .show(ui, |ui| {
                egui::Grid::new("unet").num_columns(2).show(ui, |ui| {
                    let c = &mut s.score.channels;
                    if c.len() == 3 {
                        changed |= number(
                            ui,
                            "channels",
                            &mut c[0],
                            1..=256,
                            "Channels at full resolution (then ×2, ×4 below)",
                        );
                        (c[1], c[2]) = (2 * c[0], 4 * c[0]);
                    }
                    changed |= number(
                        ui,
                        "epochs",
                        &mut s.score.epochs,
                        1..=100_000,
                        "Passes over the snapshots",
                    );
                    changed |= number(
                        ui,
                        "batch",
                        &mut s.score.batch,
                        2..=4096,
                        "Images per training step",
                    );
                    lr_changed |= rate(
                        ui,
                        "learning rate",
                        &mut s.score.lr,
                        "AdamW step size; changes apply live",
                    );
                });
            });
        egui::CollapsingHeader::new("Flow")
            .default_open(true)
            .show(ui, |ui| {
                let f = &mut s.sde.flow;
                ui.horizontal(|ui| {
                    changed |= ui
                        .selectable_value(f, ImageFlow::TrainingFree, "training-free")
                        .on_hover_text("v = K * ∇log p with a skew kernel: no second network")
                        .changed();
                    changed |= ui
                        .selectable_value(f, ImageFlow::Nca, "trained NCA")
                        .on_hover_text(
                            "A neural cellular automaton trained with the equilibrium loss \
                             after the score model (see the NCA tab)",
                        )
                        .changed();
                });
                if *f != ImageFlow::Nca {
                    return;
                }
                let n = &mut s.flow;
                egui::Grid::new("nca").num_columns(2).show(ui, |ui| {
                    changed |= number(
                        ui,
                        "hidden",
                        &mut n.hidden,
                        1..=256,
                        "Channels of the stencil and the 1×1 layers",
                    );
                    changed |= number(
                        ui,
                        "depth",
                        &mut n.depth,
                        0..=8,
                        "Hidden 1×1 layers after the stencil",
                    );
                    changed |= number(
                        ui,
                        "epochs",
                        &mut n.epochs,
                        1..=100_000,
                        "Passes over the snapshots",
                    );
                    changed |= number(
                        ui,
                        "batch",
                        &mut n.batch,
                        2..=4096,
                        "Noised images per training step",
                    );
                    changed |= number(
                        ui,
                        "probes",
                        &mut n.probes,
                        1..=64,
                        "Hutchinson probes per divergence estimate",
                    );
                    lr_changed |= rate(
                        ui,
                        "learning rate",
                        &mut n.lr,
                        "Adam step size of the NCA; changes apply live",
                    );
                });
                changed |= ui
                    .checkbox(&mut n.output_bn, "output batch-norm")
                    .on_hover_text(
                        "Each output channel normalised to unit variance: blocks the trivial v = 0",
                    )
                    .changed();
            });
        if changed || lr_changed {
            self.state.settings_toml = self.settings.to_toml();
        }
        if lr_changed {
            self.send_live_lr();
        }
    }

    pub(crate) fn sim_controls(&mut self, ui: &mut Ui) {
        ui.label("Pattern dynamics (live)");
        ui.horizontal(|ui| {
            if ui
                .button("Restart from data")
                .on_hover_text("Start the dynamics again from the next data image")
                .clicked()
            {
                self.restart_sim(Restart::Sample);
            }
            if ui
                .button("Restart from noise")
                .on_hover_text("Start from uniform noise: watch a pattern emerge")
                .clicked()
            {
                self.restart_sim(Restart::Noise);
            }
        });
        // A trained NCA replaces the skew kernel; sign and strength apply to either.
        let nca = self.running.as_ref().unwrap_or(&self.settings).sde.flow == ImageFlow::Nca;
        let c = &mut self.state.sim;
        ui.horizontal(|ui| {
            let mut flip = c.sign < 0.0;
            if ui
                .checkbox(&mut flip, "reverse (sign −1)")
                .on_hover_text("Flip the flow: the same equilibrium, run the other way")
                .changed()
            {
                c.sign = if flip { -1.0 } else { 1.0 };
            }
            if !nca && ui
                .button("New dynamics")
                .on_hover_text(format!(
                    "Draw another random skew kernel (seed {}): other motions, same equilibrium",
                    c.kernel_seed
                ))
                .clicked()
            {
                c.kernel_seed = c.kernel_seed.wrapping_add(1);
            }
        });
        ui.horizontal_wrapped(|ui| {
            if nca {
                ui.weak("v = the trained NCA (see the NCA tab)");
                return;
            }
            ui.label("kernel")
                .on_hover_text("The skew kernel K in v = K * ∇log p");
            ui.selectable_value(&mut c.kernel, KernelKind::Mix, "1×1 mix")
                .on_hover_text("Mix the channels at each pixel with a skew matrix (two chemicals: g·[[0, 1], [−1, 0]]/√2)");
            ui.selectable_value(&mut c.kernel, KernelKind::Spatial, "k×k random")
                .on_hover_text("A seeded random kernel with K[o][i](d) = −K[i][o](−d): moves patterns sideways too");
            ui.selectable_value(&mut c.kernel, KernelKind::Shared, "k×k shared")
                .on_hover_text("One random odd k×k stencil on every channel alike: shapes move as a whole");
        });
        ui.add(
            Slider::new(&mut c.gain, 0.01..=4.0)
                .logarithmic(true)
                .text("flow strength"),
        )
        .on_hover_text(
            "Scales v (the skew kernel's norm, or the NCA's output): stronger moves faster, \
             too strong tears shapes apart",
        );
        ui.add(Slider::new(&mut c.eta, 0.0..=1.0).text("η (noise)"))
            .on_hover_text("Langevin strength: pulls the state back onto the patterns, adds noise");
        ui.add(
            Slider::new(&mut c.dt, 0.001..=0.1)
                .logarithmic(true)
                .text("dt"),
        )
        .on_hover_text("SDE time step");
        ui.add(Slider::new(&mut c.speed, 1..=32).text("steps / frame"))
            .on_hover_text("Play speed: SDE steps per drawn frame");
    }
}

/// The F–k plane with the named regimes; a click picks the nearest one, or sets F and k
/// freely when no regime is near. Returns whether the settings changed.
fn fk_map(ui: &mut Ui, d: &mut GrayScottData) -> bool {
    let current = d.params();
    let named: PlotPoints = Regime::ALL
        .iter()
        .map(|r| {
            let p = r.params();
            [p.k as f64, p.f as f64]
        })
        .collect();
    let mut clicked = None;
    Plot::new("fk-map")
        .height(150.0)
        .x_axis_label("k (kill)")
        .y_axis_label("F (feed)")
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .label_formatter(|h| {
            let p = match h {
                HoverPosition::NearDataPoint { position, .. } => position,
                HoverPosition::Elsewhere { position } => position,
            };
            let near = nearest(p.x, p.y);
            Some(format!("{}\nF {:.3} · k {:.3}", near.name(), p.y, p.x))
        })
        .show(ui, |plot| {
            plot.points(Points::new("regimes", named).radius(3.0));
            plot.points(
                Points::new("chosen", vec![[current.k as f64, current.f as f64]])
                    .radius(6.0)
                    .shape(MarkerShape::Diamond),
            );
            if plot.response().clicked() {
                clicked = plot.pointer_coordinate();
            }
        })
        .response
        .on_hover_text("Click a dot to pick a named regime, or anywhere to set F and k");
    let Some(at) = clicked else {
        return false;
    };
    let regime = nearest(at.x, at.y);
    let p = regime.params();
    let close = ((p.k as f64 - at.x) / 0.004).hypot((p.f as f64 - at.y) / 0.004) < 1.0;
    d.pattern = regime;
    if close {
        (d.f, d.k) = (None, None);
    } else {
        (d.f, d.k) = (Some(at.y.max(1e-4)), Some(at.x.max(1e-4)));
    }
    true
}

/// The named regime nearest to (k, F).
fn nearest(k: f64, f: f64) -> Regime {
    let d = |r: &Regime| {
        let p: Params = r.params();
        (p.k as f64 - k).hypot(p.f as f64 - f)
    };
    Regime::ALL
        .into_iter()
        .min_by(|a, b| d(a).total_cmp(&d(b)))
        .unwrap_or(Regime::Waves)
}

/// The artificial-life data settings: target, icon size and count, canvas. Returns whether
/// the settings changed.
fn alife_target(ui: &mut Ui, s: &mut Preset) -> bool {
    let mut changed = false;
    let Source::Alife(a) = &mut s.dataset.source else {
        return false;
    };
    egui::CollapsingHeader::new("Artificial-life target")
        .default_open(true)
        .show(ui, |ui| {
            let label = ui.label("target");
            egui::ComboBox::from_id_salt("alife-target")
                .selected_text(
                    std::path::Path::new(&a.target)
                        .file_name()
                        .map_or(a.target.clone(), |n| n.to_string_lossy().to_string()),
                )
                .show_ui(ui, |ui| {
                    for &name in BUILTIN {
                        if ui.selectable_label(a.target == name, name).clicked() {
                            a.target = name.to_string();
                            changed = true;
                        }
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text(
                    "A built-in target, or your own: paint one in the Paint tab and press \
                     Use as target",
                );
            egui::Grid::new("alife").num_columns(2).show(ui, |ui| {
                changed |= number(
                    ui,
                    "canvas (px)",
                    &mut a.size,
                    8..=512,
                    "Side of each training image; a multiple of 4",
                );
                changed |= number(
                    ui,
                    "icon (px)",
                    &mut a.icon_size,
                    4..=256,
                    "Side of one stamped icon",
                );
                changed |= number(
                    ui,
                    "icons",
                    &mut a.icons,
                    1..=200,
                    "Icons stamped per image (never overlapping)",
                );
                changed |= number(
                    ui,
                    "images",
                    &mut a.n,
                    16..=100_000,
                    "How many tiled images to train on",
                );
                let mut canvas = s.sde.canvas.unwrap_or(0);
                changed |= number(
                    ui,
                    "live canvas (px)",
                    &mut canvas,
                    0..=1024,
                    "Side of the live simulation (0: the training size); larger works too",
                );
                s.sde.canvas = (canvas > 0).then_some(canvas);
                changed |= seed(ui, &mut s.seed);
            });
        });
    changed
}

/// The user's pictures: where they come from, and the choices that make snapshots of them.
fn user_images(ui: &mut Ui, i: &mut ImagesData, seed_value: &mut u64) -> bool {
    let mut changed = false;
    egui::CollapsingHeader::new("Your pictures")
        .default_open(true)
        .show(ui, |ui| {
            let from = match i.layout {
                ImageLayout::Folder => "folder",
                ImageLayout::Picture { .. } => "picture",
            };
            ui.label(format!("{from}: {}", i.path))
                .on_hover_text("Open data… or Open folder… reads other pictures");
            egui::Grid::new("user-images").num_columns(2).show(ui, |ui| {
                match &mut i.layout {
                    ImageLayout::Picture { periodic } => {
                        changed |= number(
                            ui,
                            "crops",
                            &mut i.n,
                            1..=100_000,
                            "How many random crops of the picture to train on",
                        );
                        changed |= number(
                            ui,
                            "crop side (px)",
                            &mut i.size,
                            8..=4096,
                            "Side of each crop; a multiple of 4, at most the picture's side",
                        );
                        ui.label("wrap around");
                        changed |= ui
                            .checkbox(periodic, "")
                            .on_hover_text(
                                "Crops may cross the edges and continue on the other side (a \
                                 pattern on a torus, a tiling texture)",
                            )
                            .changed();
                        ui.end_row();
                    }
                    ImageLayout::Folder => {
                        changed |= number(
                            ui,
                            "pictures",
                            &mut i.n,
                            1..=1_000_000,
                            "How many of the folder's pictures to train on (picked with the seed \
                             when fewer than it holds)",
                        );
                        changed |= number(
                            ui,
                            "side (px)",
                            &mut i.size,
                            8..=4096,
                            "Each picture's centre square, fitted to this side; a multiple of 4",
                        );
                    }
                }
                ui.label("colour");
                ui.horizontal(|ui| {
                    changed |= ui
                        .radio_value(&mut i.channels, 1, "grey")
                        .on_hover_text("One channel: colours read by their luminance")
                        .changed();
                    changed |= ui
                        .radio_value(&mut i.channels, 3, "colour")
                        .on_hover_text("Three channels (alpha on white)")
                        .changed();
                });
                ui.end_row();
                changed |= seed(ui, seed_value);
            });
        });
    changed
}
