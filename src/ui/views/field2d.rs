//! The 2-D views: data beside samples, the score field, and the flow with its particles.
//! Higher-dimensional data are shown on two axes the user picks (x and z for Lorenz).

use super::plane::{DATA, Plane, SAMPLES, Segments, dots, ramp};
use crate::ui::results::Results;
use crate::worker::event::Cloud;
use egui::{Color32, Painter, Pos2, Sense, Stroke, Ui};

/// A square-ish drawing area filling what is left of `ui`.
fn canvas(ui: &mut Ui, sense: Sense) -> (egui::Response, Painter) {
    let size = ui.available_size().max(egui::vec2(64.0, 64.0));
    let (resp, painter) = ui.allocate_painter(size, sense);
    painter.rect_filled(resp.rect, 4.0, ui.visuals().extreme_bg_color);
    (resp, painter)
}

fn plane_for(results: &Results, rect: egui::Rect, axes: [usize; 3]) -> Option<Plane> {
    let s = results.points()?;
    Some(Plane::fit(
        rect.shrink(8.0),
        &s.bounds,
        Plane::axes_for(s.dim, axes),
    ))
}

fn scatter(painter: &Painter, plane: &Plane, cloud: &Cloud, colour: Color32, r: f32) {
    let points = (0..cloud.len()).map(|i| plane.to_screen(cloud.row(i)));
    dots(painter, points, 2.0 * r, colour);
}

fn waiting(painter: &Painter, rect: egui::Rect, text: &str, ui: &Ui) {
    painter.text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        text,
        egui::FontId::proportional(15.0),
        ui.visuals().weak_text_color(),
    );
}

fn caption(painter: &Painter, rect: egui::Rect, text: &str, ui: &Ui) {
    painter.text(
        rect.left_top() + egui::vec2(10.0, 8.0),
        egui::Align2::LEFT_TOP,
        text,
        egui::FontId::proportional(13.0),
        ui.visuals().text_color(),
    );
}

/// Training data beside samples drawn from the diffusion model as it learns.
pub fn data_view(ui: &mut Ui, results: &Results, axes: [usize; 3]) {
    ui.columns(2, |cols| {
        let (resp, painter) = canvas(&mut cols[0], Sense::hover());
        match (plane_for(results, resp.rect, axes), results.points()) {
            (Some(plane), Some(s)) => {
                scatter(&painter, &plane, &s.data, DATA.gamma_multiply(0.7), 1.5);
                caption(
                    &painter,
                    resp.rect,
                    &format!("data ({} shown)", s.data.len()),
                    &cols[0],
                );
            }
            _ => waiting(
                &painter,
                resp.rect,
                "Press Train to generate the data",
                &cols[0],
            ),
        }
        let (resp, painter) = canvas(&mut cols[1], Sense::hover());
        match (plane_for(results, resp.rect, axes), &results.samples) {
            (Some(plane), Some(samples)) => {
                scatter(&painter, &plane, samples, SAMPLES.gamma_multiply(0.8), 1.5);
                caption(
                    &painter,
                    resp.rect,
                    "samples from the diffusion model",
                    &cols[1],
                );
            }
            _ => waiting(
                &painter,
                resp.rect,
                "Samples appear as the score model learns",
                &cols[1],
            ),
        }
    });
}

/// Arrows of the score field; their colour and length grow with its strength.
pub fn score_view(ui: &mut Ui, results: &Results, axes: [usize; 3]) {
    let (resp, painter) = canvas(ui, Sense::hover());
    let (Some(plane), Some(field)) = (plane_for(results, resp.rect, axes), &results.score_field)
    else {
        waiting(
            &painter,
            resp.rect,
            "The score field appears as the score model learns",
            ui,
        );
        return;
    };
    if let Some(s) = results.points() {
        scatter(&painter, &plane, &s.data, DATA.gamma_multiply(0.25), 1.2);
    }
    let n = field.origins.len();
    let norms: Vec<f32> = (0..n)
        .map(|i| plane.vec_to_screen(field.vectors.row(i)).length())
        .collect();
    let max = norms.iter().copied().fold(0.0f32, f32::max).max(1e-6);
    // The longest arrow spans about one grid cell.
    let cell = resp.rect.width().min(resp.rect.height()) / 22.0;
    for (i, norm) in norms.iter().enumerate() {
        let v = plane.vec_to_screen(field.vectors.row(i)) * (cell / max);
        let colour = ramp(0.25 + 0.75 * norm / max);
        painter.arrow(
            plane.to_screen(field.origins.row(i)),
            v,
            Stroke::new(1.3, colour),
        );
    }
    caption(
        &painter,
        resp.rect,
        "score ∇log p at the training noise level",
        ui,
    );
}

/// Streamlines of the learned flow under particles with fading trails coloured by speed.
pub fn flow_view(ui: &mut Ui, results: &Results, show_streamlines: bool, axes: [usize; 3]) {
    let (resp, painter) = canvas(ui, Sense::hover());
    let Some(plane) = plane_for(results, resp.rect, axes) else {
        waiting(
            &painter,
            resp.rect,
            "Press Train: particles start moving once the flow trains",
            ui,
        );
        return;
    };
    if let Some(s) = results.points() {
        scatter(&painter, &plane, &s.data, DATA.gamma_multiply(0.18), 1.2);
    }
    let mut mesh = Segments::default();
    if show_streamlines && let Some((len, lines)) = &results.streamlines {
        let c = ui.visuals().weak_text_color().gamma_multiply(0.6);
        for line in lines.points.chunks(len * lines.dim) {
            let pts: Vec<Pos2> = line.chunks(lines.dim).map(|p| plane.to_screen(p)).collect();
            for w in pts.windows(2) {
                mesh.add(w[0], w[1], 1.0, c, c);
            }
        }
    }
    let Some(frame) = &results.particles else {
        mesh.paint(&painter);
        waiting(
            &painter,
            resp.rect,
            "Particles start moving once the flow trains",
            ui,
        );
        return;
    };
    let top = frame.speed.iter().copied().fold(0.0f32, f32::max).max(1e-6);
    for i in 0..frame.count() {
        let colour = ramp(frame.speed[i] / top);
        let fade = |k: usize| colour.gamma_multiply(k as f32 / frame.len as f32);
        let mut prev = plane.to_screen(frame.point(i, 0));
        for k in 1..frame.len {
            let p = plane.to_screen(frame.point(i, k));
            let width = 0.5 + 1.5 * k as f32 / frame.len as f32;
            mesh.add(prev, p, width, fade(k - 1), fade(k));
            prev = p;
        }
        mesh.dot(prev, 3.5, colour);
    }
    mesh.paint(&painter);
    caption(
        &painter,
        resp.rect,
        &format!(
            "{} particles under the learned flow (colour = speed)",
            frame.count()
        ),
        ui,
    );
}
