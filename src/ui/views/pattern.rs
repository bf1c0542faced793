//! Turing-pattern views: images the worker sent, drawn as textures (coloured by
//! [`crate::ui::pixels`]).

use crate::ui::pixels::{displacement_image, pattern_image, state_image};
use crate::ui::results::Results;
use crate::worker::event::{Images, Preview};
use egui::{Color32, ColorImage, TextureHandle, TextureOptions, Ui, Vec2};
use std::collections::HashMap;

/// Textures by name, re-filled in place as new frames arrive (transient, never persisted).
#[derive(Default)]
pub struct Textures {
    map: HashMap<String, TextureHandle>,
}

impl Textures {
    /// Draw `image` `size` wide (its aspect kept) with a caption under it.
    pub(crate) fn show(
        &mut self,
        ui: &mut Ui,
        key: &str,
        image: ColorImage,
        size: f32,
        caption: &str,
    ) {
        let [w, h] = image.size;
        let shown = Vec2::new(size, size * h as f32 / w.max(1) as f32);
        let tex = match self.map.get_mut(key) {
            Some(t) => {
                t.set(image, TextureOptions::NEAREST);
                t.clone()
            }
            None => {
                let t = ui.ctx().load_texture(key, image, TextureOptions::NEAREST);
                self.map.insert(key.to_string(), t.clone());
                t
            }
        };
        ui.vertical(|ui| {
            ui.add(egui::Image::new((tex.id(), shown)))
                .on_hover_text(caption);
            ui.small(caption);
        });
    }
}

fn strip(ui: &mut Ui, tex: &mut Textures, key: &str, images: &Images, size: f32, caption: &str) {
    ui.horizontal_wrapped(|ui| {
        for i in 0..images.count() {
            let img = state_image(images.image(i), images.channels, images.h, images.w);
            tex.show(
                ui,
                &format!("{key}{i}"),
                img,
                size,
                &format!("{caption} {}", i + 1),
            );
        }
    });
}

/// Before training: the preset's first training images, so a newcomer sees what will be
/// learned.
fn preview_view(ui: &mut Ui, preview: Option<&Preview>, tex: &mut Textures) {
    let Some(p) = preview else {
        ui.weak("Drawing a few training images…");
        return;
    };
    match &p.images {
        Ok(images) => {
            ui.strong(if images.channels == 3 {
                "What will be learned: the first training images (the target tiled at random \
                 positions and rotations on a torus)"
            } else {
                "What will be learned: the first training snapshots (Gray–Scott patterns)"
            });
            let size =
                ((ui.available_width() - 40.0) / images.count().max(1) as f32).clamp(96.0, 240.0);
            strip(ui, tex, "preview", images, size, "training image");
        }
        Err(e) => {
            ui.colored_label(ui.visuals().error_fg_color, format!("No preview: {e}."));
        }
    }
}

/// The Data tab of an image job: snapshots, samples from the model, a denoising check.
pub fn images_view(ui: &mut Ui, results: &Results, preview: Option<&Preview>, tex: &mut Textures) {
    if results.data_images.is_none() {
        ui.weak("The training snapshots appear here as they are simulated or tiled (press Train).");
        ui.add_space(6.0);
        preview_view(ui, preview, tex);
        return;
    }
    egui::ScrollArea::vertical().show(ui, |ui| {
        if let Some(d) = &results.data_images {
            ui.strong(if d.channels == 3 {
                "Training images (the target, tiled at random positions and rotations)"
            } else {
                "Training snapshots (true Gray–Scott patterns)"
            });
            strip(ui, tex, "data", d, 96.0, "snapshot");
        }
        if let Some(d) = &results.denoised {
            ui.add_space(6.0);
            ui.strong("Denoising, live: a snapshot with noise at τ, and the model's clean guess");
            ui.horizontal(|ui| {
                let labels = ["noisy input", "denoised by the model"];
                for (i, label) in labels.iter().enumerate().take(d.count()) {
                    let img = state_image(d.image(i), d.channels, d.h, d.w);
                    tex.show(ui, &format!("denoise{i}"), img, 128.0, label);
                }
            });
        }
        if let Some(s) = &results.sample_images {
            ui.add_space(6.0);
            ui.strong("New images drawn from the score model (reverse diffusion)");
            strip(ui, tex, "sample", s, 96.0, "sample");
        }
    });
}

/// What the live artificial-life view asks the app to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    Png,
    Gif,
    /// Start or stop recording the live view as MP4 (through ffmpeg).
    Record,
    TracksCsv,
}

/// Whether the live view can be recorded (ffmpeg found), and how many frames a recording
/// in progress holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recording {
    pub available: bool,
    pub frames: Option<usize>,
}

/// The live view: learned dynamics beside the true ones and what each moved (Turing), or
/// the icons with their trails and readouts (artificial life).
pub fn pattern_view(
    ui: &mut Ui,
    results: &Results,
    preview: Option<&Preview>,
    recording: Recording,
    tex: &mut Textures,
) -> Option<Export> {
    let Some(f) = &results.pattern_frame else {
        ui.weak(
            "The learned dynamics play here once the score model is trained. Train a Turing \
             preset (gs-waves is the liveliest) or an artificial-life target, then watch.",
        );
        ui.add_space(6.0);
        preview_view(ui, preview, tex);
        return None;
    };
    // Pictures (artificial life, the user's own): no true dynamics to show beside them.
    if f.channels != 2 {
        return alife_view(ui, results, f, recording, tex);
    }
    let avail = ui.available_width();
    let size = ((avail - 24.0) / 2.0).clamp(96.0, 360.0);
    ui.horizontal(|ui| {
        tex.show(
            ui,
            "learned",
            pattern_image(&f.learned, f.h, f.w),
            size,
            "learned: moved by v (K * ∇log p, or the NCA); denoised, smoothed",
        );
        tex.show(
            ui,
            "truth",
            pattern_image(&f.truth, f.h, f.w),
            size,
            "truth: Gray–Scott from the same start",
        );
    });
    let small = (size * 0.6).max(72.0);
    ui.horizontal(|ui| {
        tex.show(
            ui,
            "learned_delta",
            displacement_image(&f.learned_delta, f.h, f.w),
            small,
            "Δx/Δt learned (v: red grows, blue shrinks)",
        );
        tex.show(
            ui,
            "truth_delta",
            displacement_image(&f.truth_delta, f.h, f.w),
            small,
            "Δx/Δt true",
        );
    });
    ui.weak(format!("{} SDE steps since the start", f.steps));
    None
}

/// The living icons with fading trails of their tracks, blob count and speed over time.
fn alife_view(
    ui: &mut Ui,
    results: &Results,
    f: &crate::worker::event::PatternFrame,
    recording: Recording,
    tex: &mut Textures,
) -> Option<Export> {
    let mut export = None;
    ui.horizontal(|ui| {
        let fidelity = f
            .icon_fidelity
            .map(|v| format!(" · look {v:.2}"))
            .unwrap_or_default();
        let blobs = if f.tracked {
            format!(
                "{} blobs{fidelity} · speed {:.2} px per time unit · ",
                f.blobs, f.blob_speed
            )
        } else {
            String::new()
        };
        ui.label(format!("{blobs}{} SDE steps", f.steps))
            .on_hover_text(
                "look: how much the blobs resemble the target icon at its best rotation \
             (normalised correlation, 1 = the icon itself)",
            );
        ui.separator();
        if ui
            .button("Save PNG")
            .on_hover_text("The current frame, under runs/exports/")
            .clicked()
        {
            export = Some(Export::Png);
        }
        if ui
            .button("Save GIF")
            .on_hover_text(format!(
                "An animated GIF of the last {} frames, under runs/exports/",
                results.recent_frames.len()
            ))
            .clicked()
        {
            export = Some(Export::Gif);
        }
        let (label, tip) = match recording.frames {
            Some(n) => (
                format!("Stop recording ({n} frames)"),
                "Finish the MP4 (it is written under runs/exports/)".to_string(),
            ),
            None => (
                "Record MP4".to_string(),
                "Record the live view as an MP4 video until you stop, under runs/exports/"
                    .to_string(),
            ),
        };
        let record = ui.add_enabled(recording.available, egui::Button::new(label));
        let record = if recording.available {
            record.on_hover_text(tip)
        } else {
            record.on_disabled_hover_text(
                "Recording MP4 needs ffmpeg on PATH (install it, then restart); Save GIF \
                 works without it",
            )
        };
        if record.clicked() {
            export = Some(Export::Record);
        }
        if f.tracked
            && ui
                .button("Save tracks CSV")
                .on_hover_text("Every tracked blob's positions over time (track, t, x, y)")
                .clicked()
        {
            export = Some(Export::TracksCsv);
        }
    });
    let side = (ui.available_width() * 0.6)
        .min(ui.available_height() - 24.0)
        .clamp(128.0, 640.0);
    ui.horizontal_top(|ui| {
        let image = state_image(&f.learned, f.channels, f.h, f.w);
        let response = ui.vertical(|ui| {
            tex.show(
                ui,
                "alife",
                image,
                side,
                "the denoised state (EMA), moved by v = K * ∇log p",
            )
        });
        let rect = response.response.rect;
        let origin = rect.min;
        let scale = side / f.w as f32;
        let painter = ui.painter_at(egui::Rect::from_min_size(origin, Vec2::splat(side)));
        for trail in &f.trails {
            let n = trail.len();
            for (k, seg) in trail.windows(2).enumerate() {
                let (a, b) = (seg[0], seg[1]);
                // A jump across the border is the torus wrapping, not motion.
                if (a[0] - b[0]).abs() > f.w as f32 / 2.0 || (a[1] - b[1]).abs() > f.h as f32 / 2.0
                {
                    continue;
                }
                let fade = (k + 1) as f32 / n as f32;
                let colour = Color32::from_rgba_unmultiplied(255, 140, 0, (fade * 230.0) as u8);
                let p = |q: [f32; 2]| origin + Vec2::new(q[0], q[1]) * scale;
                painter.line_segment([p(a), p(b)], egui::Stroke::new(2.0, colour));
            }
            if let Some(last) = trail.last() {
                let c = origin + Vec2::new(last[0], last[1]) * scale;
                painter.circle_stroke(
                    c,
                    3.0,
                    egui::Stroke::new(1.5, Color32::from_rgb(255, 140, 0)),
                );
            }
        }
        // Blob readouts are for icons; the user's own pictures have none to count.
        if !f.tracked {
            return;
        }
        ui.vertical(|ui| {
            let h = ((side - 20.0) / 2.0).max(80.0);
            let series = |i: usize| -> egui_plot::PlotPoints {
                results.blob_history.iter().map(|r| [r[0], r[i]]).collect()
            };
            ui.small("blobs");
            egui_plot::Plot::new("blob-count")
                .height(h)
                .x_axis_label("SDE steps")
                .show(ui, |plot| {
                    plot.line(egui_plot::Line::new("blobs", series(1)))
                });
            ui.small("mean blob speed (px per time unit)");
            egui_plot::Plot::new("blob-speed")
                .height(h)
                .x_axis_label("SDE steps")
                .show(ui, |plot| {
                    plot.line(egui_plot::Line::new("speed", series(2)))
                });
        });
    });
    export
}

/// Metrics of an image job.
pub fn metrics_view(ui: &mut Ui, results: &Results) {
    let Some(m) = &results.pattern_metrics else {
        ui.weak("Metrics are computed when training finishes.");
        return;
    };
    egui::Grid::new("pattern-metrics")
        .striped(true)
        .show(ui, |ui| {
            let rows = [
                (
                    "|cos| training-free vs truth",
                    m.cos_truth_training_free,
                    "alignment of the skew flow's displacement with the true Gray–Scott one",
                ),
                (
                    "|cos| random 1×1 kernel",
                    m.cos_truth_random_kernel,
                    "the same for a random kernel that is not skew",
                ),
                (
                    "|cos| random, mean of draws",
                    m.cos_truth_random_kernel_mean,
                    "the same over several random kernels (eval.random_draws): the baseline to beat",
                ),
                (
                    "|cos| random, sd of draws",
                    m.cos_truth_random_kernel_sd,
                    "how much the baseline varies from one random kernel to the next",
                ),
                (
                    "|cos| training-free, paper's protocol",
                    m.cos_truth_training_free_ref,
                    "the paper's protocol: from the clean snapshot, EMA of the raw state over 200 \
                     steps, the 1×1 skew mixer with the better sign; mean over the starts",
                ),
                (
                    "  sd over starts (paper's)",
                    m.cos_truth_training_free_ref_sd,
                    "how much it varies from one start to the next",
                ),
                (
                    "  first start alone (paper's)",
                    m.cos_truth_training_free_ref_first,
                    "the paper measured one start: this is that number",
                ),
                (
                    "|cos| random, mean of draws (paper's)",
                    m.cos_truth_random_kernel_mean_ref,
                    "random non-skew 1×1 kernels under the paper's protocol",
                ),
                (
                    "|cos| random, sd of draws (paper's)",
                    m.cos_truth_random_kernel_sd_ref,
                    "their spread over draws",
                ),
                (
                    "|cos| trained NCA vs truth",
                    m.cos_truth_nca,
                    "the same protocol with v = the trained neural cellular automaton",
                ),
                (
                    "|cos| untrained NCA",
                    m.cos_truth_nca_random,
                    "the same NCA before training (norms calibrated): what training adds",
                ),
                (
                    "blobs at the end (NCA)",
                    m.blob_count_end_nca,
                    "icons found after the same run with v = the trained NCA",
                ),
                (
                    "blob speed (NCA)",
                    m.blob_speed_nca,
                    "mean speed of the icons under the trained NCA",
                ),
                (
                    "NCA loss (last epoch)",
                    m.flow_loss_final,
                    "the unbiased equilibrium loss, normalised by mean |v|²",
                ),
                (
                    "blobs at the start",
                    m.blob_count_start,
                    "icons found per held-out image when the flow starts",
                ),
                (
                    "blobs at the end",
                    m.blob_count_end,
                    "icons found after the tracked run: close to the start if the pattern persists",
                ),
                (
                    "blobs at the end, v = 0",
                    m.blob_count_end_still,
                    "the same without the flow: what the score alone keeps",
                ),
                (
                    "blob speed",
                    m.blob_speed_mean,
                    "mean speed of the tracked icons, pixels per unit of SDE time",
                ),
                (
                    "blob speed with v = 0",
                    m.blob_speed_still,
                    "the same run without the flow: jitter from denoising and noise alone",
                ),
                (
                    "icon fidelity, data",
                    m.icon_fidelity_data,
                    "how much the blobs of clean held-out images match the target: the ceiling",
                ),
                (
                    "icon fidelity, start",
                    m.icon_fidelity_start,
                    "the same for the first frame of the tracked run",
                ),
                (
                    "icon fidelity, end",
                    m.icon_fidelity_end,
                    "the same for the last frame: near the data's if the icons keep their look",
                ),
                (
                    "ink the mixer turns",
                    m.mixer_ink_turned,
                    "share of the target's colours the 3-channel mixer turns: near 0, icons cannot move",
                ),
                (
                    "moved (RMS per pixel)",
                    m.moved_rms,
                    "how far the pictures changed over the run under the training-free flow",
                ),
                (
                    "moved with v = 0",
                    m.moved_rms_still,
                    "the same without the flow: jitter from denoising and noise alone",
                ),
                (
                    "moved under the NCA",
                    m.moved_rms_nca,
                    "the same under the trained neural cellular automaton",
                ),
                (
                    "tones apart at the end",
                    m.look_tone_w1_end,
                    "distance between the pixel values after the run and the clean pictures' \
                     (1-Wasserstein; 0 = the same tones)",
                ),
                (
                    "tones apart, v = 0",
                    m.look_tone_w1_still,
                    "the same without the flow",
                ),
                (
                    "tones apart, NCA",
                    m.look_tone_w1_nca,
                    "the same under the trained NCA",
                ),
                (
                    "sharpness at the end",
                    m.look_edge_ratio_end,
                    "edges after the run over the clean pictures' (1 = as sharp; lower: blurred)",
                ),
                (
                    "sharpness, v = 0",
                    m.look_edge_ratio_still,
                    "the same without the flow",
                ),
                (
                    "sharpness, NCA",
                    m.look_edge_ratio_nca,
                    "the same under the trained NCA",
                ),
                (
                    "denoising error",
                    Some(m.denoise_mse),
                    "held-out images noised to τ: error of the model's clean guess",
                ),
                (
                    "identity error",
                    Some(m.denoise_mse_identity),
                    "the same for doing nothing: the model must beat it",
                ),
                (
                    "snapshots alive",
                    m.dataset_alive_fraction,
                    "share of training snapshots that hold a pattern",
                ),
            ];
            for (name, v, tip) in rows {
                let Some(v) = v else { continue };
                ui.label(name).on_hover_text(tip);
                ui.monospace(format!("{v:.4}"));
                ui.end_row();
            }
        });
}
