//! The Solutions view: many flows of one system (a sweep) and how far they agree — are the
//! dynamics the snapshots allow one solution or many? A table of the models, the pairwise
//! |cos| of their fields as a heat map, the fields as points in a plane (their first two
//! principal axes), histograms of |cos| to the true field and of Lyapunov exponents.
//! Clicking a model (its row, its heat-map row or its point) plays its flow in the Flow
//! and 3-D views.

use crate::ui::results::Results;
use crate::worker::event::{ModelState, Solutions};
use egui::{Color32, Rect, Sense, Ui, pos2, vec2};
use egui_plot::{Bar, BarChart, Plot, Points};

/// What the user asked for in this view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SolutionsAction {
    /// Run a sweep of this many models with the panel's settings.
    Start { seeds: usize, stack: usize },
    /// Play model k's flow.
    Watch(usize),
}

/// |cos| in [0, 1] as a colour: dark violet (orthogonal fields) to yellow (the same field).
pub fn agreement_colour(c: f64) -> Color32 {
    let t = c.clamp(0.0, 1.0) as f32;
    // Three stops of a viridis-like ramp.
    let stops = [
        (68.0, 1.0, 84.0),
        (33.0, 145.0, 140.0),
        (253.0, 231.0, 37.0),
    ];
    let (a, b, u) = if t < 0.5 {
        (stops[0], stops[1], t * 2.0)
    } else {
        (stops[1], stops[2], t * 2.0 - 1.0)
    };
    let mix = |x: f32, y: f32| (x + (y - x) * u).round() as u8;
    Color32::from_rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn state_text(s: &ModelState) -> String {
    match s {
        ModelState::Waiting => "waiting".into(),
        ModelState::Training => "training".into(),
        ModelState::Trained => "trained, metrics next".into(),
        ModelState::Measuring => "measuring".into(),
        ModelState::Done => "done".into(),
        ModelState::Stopped(why) => format!("stopped: {why}"),
    }
}

/// The view; `seeds` and `stack` are the sweep settings it edits.
pub fn solutions_view(
    ui: &mut Ui,
    results: &Results,
    seeds: &mut usize,
    stack: &mut usize,
) -> Option<SolutionsAction> {
    let mut action = None;
    ui.horizontal(|ui| {
        ui.label("models").on_hover_text(
            "Flows to train on one score model, each with its own seed (the paper: 100)",
        );
        ui.add(egui::DragValue::new(seeds).range(2..=200));
        ui.label("trained together")
            .on_hover_text("Flows trained at once (1: one at a time)");
        ui.add(egui::DragValue::new(stack).range(1..=32));
        let running = results.is_running();
        if ui
            .add_enabled(!running, egui::Button::new("Run sweep"))
            .on_hover_text(
                "Train one score model, then this many flows that differ only in their seed, \
                 and compare their fields",
            )
            .clicked()
        {
            action = Some(SolutionsAction::Start {
                seeds: *seeds,
                stack: *stack,
            });
        }
    });
    let Some(s) = &results.solutions else {
        ui.weak(
            "No sweep yet. Run one to see how far flows trained from the same snapshots agree.",
        );
        return action;
    };
    let measured = s.states.iter().filter(|m| **m == ModelState::Done).count();
    ui.label(format!(
        "{measured} of {} models measured{}",
        s.len(),
        s.watched
            .map(|k| format!("; playing seed {} in Flow / 3-D", s.seeds[k]))
            .unwrap_or_default()
    ));
    for line in &s.summary {
        ui.monospace(line);
    }
    ui.columns(2, |cols| {
        if let Some(k) = model_table(&mut cols[0], s) {
            action = Some(SolutionsAction::Watch(k));
        }
        cols[0].add_space(6.0);
        if let Some(k) = heat_map(&mut cols[0], s) {
            action = Some(SolutionsAction::Watch(k));
        }
        if let Some(k) = plane(&mut cols[1], s) {
            action = Some(SolutionsAction::Watch(k));
        }
        histograms(&mut cols[1], s);
    });
    action
}

/// One row per model; a click on its seed plays it.
fn model_table(ui: &mut Ui, s: &Solutions) -> Option<usize> {
    let mut clicked = None;
    egui::ScrollArea::vertical()
        .id_salt("models")
        .max_height(180.0)
        .show(ui, |ui| {
            egui::Grid::new("model-table").striped(true).show(ui, |ui| {
                ui.strong("model");
                ui.strong("state");
                ui.strong("|cos| truth");
                ui.strong("Lyapunov");
                ui.end_row();
                for k in 0..s.len() {
                    let done = s.states[k] == ModelState::Done;
                    let label = format!("seed {}", s.seeds[k]);
                    let r = ui
                        .add_enabled(done, egui::Button::selectable(s.watched == Some(k), label))
                        .on_hover_text("Play this model's flow in the Flow and 3-D views");
                    if r.clicked() {
                        clicked = Some(k);
                    }
                    ui.label(state_text(&s.states[k]));
                    let num = |x: Option<f64>| x.map_or("—".into(), |v| format!("{v:.3}"));
                    ui.monospace(num(s.cos_truth[k]));
                    ui.monospace(num(s.lyapunov[k]));
                    ui.end_row();
                }
            });
        });
    clicked
}

/// The pairwise |cos| matrix; a click on a row plays that model.
fn heat_map(ui: &mut Ui, s: &Solutions) -> Option<usize> {
    let n = s.len();
    ui.label("|cos| between the models' fields (violet 0 … yellow 1)")
        .on_hover_text("On the same data states; 1 = the same dynamics up to speed and sign");
    let side = ui.available_width().clamp(60.0, 320.0);
    let (rect, response) = ui.allocate_exact_size(vec2(side, side), Sense::click());
    let painter = ui.painter_at(rect);
    let cell = side / n.max(1) as f32;
    for i in 0..n {
        for j in 0..n {
            let r = Rect::from_min_size(
                pos2(rect.left() + j as f32 * cell, rect.top() + i as f32 * cell),
                vec2(cell, cell),
            );
            let colour = s
                .agreement(i, j)
                .map_or(ui.visuals().faint_bg_color, agreement_colour);
            painter.rect_filled(r.shrink(if cell > 6.0 { 0.5 } else { 0.0 }), 0.0, colour);
        }
    }
    if let Some(k) = s.watched {
        let r = Rect::from_min_size(
            pos2(rect.left(), rect.top() + k as f32 * cell),
            vec2(side, cell),
        );
        painter.rect_stroke(
            r,
            0.0,
            egui::Stroke::new(1.5, ui.visuals().strong_text_color()),
            egui::StrokeKind::Inside,
        );
    }
    let at = |p: egui::Pos2| {
        let (i, j) = (
            ((p.y - rect.top()) / cell) as usize,
            ((p.x - rect.left()) / cell) as usize,
        );
        (i < n && j < n).then_some((i, j))
    };
    let hovered = response.hover_pos().and_then(at);
    let response = match hovered {
        Some((i, j)) => response.on_hover_text(format!(
            "seed {} vs seed {}: {}",
            s.seeds[i],
            s.seeds[j],
            s.agreement(i, j)
                .map_or("not measured yet".into(), |c| format!("|cos| {c:.3}"))
        )),
        None => response,
    };
    let (i, _) = response
        .clicked()
        .then(|| response.interact_pointer_pos().and_then(at))
        .flatten()?;
    (s.states[i] == ModelState::Done).then_some(i)
}

/// The fields as points (first two principal axes); a click plays the nearest model.
fn plane(ui: &mut Ui, s: &Solutions) -> Option<usize> {
    ui.label("The fields in a plane (PCA)").on_hover_text(
        "Each point is one model's field on the data states (unit length, sign aligned), \
             on the two directions in which the fields differ most. One tight cluster is one \
             solution; colour = |cos| to the true field where it is known",
    );
    let points: Vec<(usize, [f64; 2])> = s
        .embedding
        .iter()
        .enumerate()
        .filter_map(|(k, p)| p.map(|p| (k, p)))
        .collect();
    let r = Plot::new("solutions-plane")
        .height(220.0)
        .data_aspect(1.0)
        .allow_drag(false)
        .show(ui, |plot| {
            for &(k, p) in &points {
                let colour = s.cos_truth[k].map_or(Color32::LIGHT_BLUE, agreement_colour);
                let watched = s.watched == Some(k);
                plot.points(
                    Points::new(format!("seed {}", s.seeds[k]), vec![p])
                        .radius(if watched { 7.0 } else { 4.5 })
                        .color(colour)
                        .filled(!watched),
                );
            }
            let pointer = plot.pointer_coordinate()?;
            plot.response().clicked().then_some(())?;
            points
                .iter()
                .map(|&(k, p)| (k, (p[0] - pointer.x).powi(2) + (p[1] - pointer.y).powi(2)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(k, _)| k)
        });
    r.inner
}

/// Counts of `xs` in `bins` equal bins over `[lo, hi]`, as bars.
fn bars(xs: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<Bar> {
    let w = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &x in xs.iter().filter(|x| x.is_finite()) {
        let b = (((x - lo) / w).floor().max(0.0) as usize).min(bins - 1);
        counts[b] += 1;
    }
    counts
        .iter()
        .enumerate()
        .map(|(b, &c)| Bar::new(lo + (b as f64 + 0.5) * w, c as f64).width(w * 0.9))
        .collect()
}

fn histograms(ui: &mut Ui, s: &Solutions) {
    let cos: Vec<f64> = s.cos_truth.iter().flatten().copied().collect();
    let lyap: Vec<f64> = s.lyapunov.iter().flatten().copied().collect();
    if !cos.is_empty() {
        ui.label("|cos| to the true field").on_hover_text(
            "Per model, on data states (the paper: 0.257 ± 0.012 over 100 Lorenz models)",
        );
        Plot::new("hist-cos").height(110.0).show(ui, |plot| {
            plot.bar_chart(BarChart::new("models", bars(&cos, 0.0, 1.0, 20)));
        });
    }
    if !lyap.is_empty() {
        let lo = lyap.iter().copied().fold(0.0f64, f64::min);
        let hi = lyap.iter().copied().fold(0.0f64, f64::max).max(lo + 1e-3);
        ui.label("Largest Lyapunov exponent").on_hover_text(
            "Per model (our protocol); positive = chaotic (the paper: all 100 positive)",
        );
        Plot::new("hist-lyap").height(110.0).show(ui, |plot| {
            plot.bar_chart(BarChart::new("models", bars(&lyap, lo, hi, 16)));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_count_every_finite_value_once() {
        let b = bars(&[0.0, 0.05, 0.5, 1.0, f64::NAN, -0.2], 0.0, 1.0, 10);
        let counts: Vec<f64> = b.iter().map(|b| b.value).collect();
        assert_eq!(counts.iter().sum::<f64>(), 5.0);
        assert_eq!(counts[0], 3.0, "0, 0.05 and the clamped -0.2");
        assert_eq!(counts[5], 1.0);
        assert_eq!(counts[9], 1.0, "the top edge falls in the last bin");
        assert_eq!(agreement_colour(0.0), Color32::from_rgb(68, 1, 84));
        assert_eq!(agreement_colour(1.0), Color32::from_rgb(253, 231, 37));
    }
}
