//! Data of three or more dimensions in 3-D (the Lorenz attractor, a user's file): orbit
//! camera, axes, the data cloud, the true trajectory in grey (Lorenz) and trajectories of the
//! learned flow. Above three dimensions it shows the three data axes the user picked.

use super::plane::{DATA, Segments, dots, ramp};
use crate::ui::camera::OrbitCamera;
use crate::ui::results::Results;
use egui::{Color32, Pos2, Rect, Sense, Stroke, Ui, pos2};

fn to_screen(cam: &OrbitCamera, rect: Rect, p: [f32; 3]) -> Option<(Pos2, f32)> {
    let q = cam.project(p)?;
    let half = rect.height() / 2.0;
    Some((
        pos2(rect.center().x + q.x * half, rect.center().y + q.y * half),
        q.depth,
    ))
}

/// The three shown coordinates of a data row (`axes` are clamped to its dimension).
fn xyz(p: &[f32], axes: [usize; 3]) -> [f32; 3] {
    axes.map(|a| {
        p.get(a.min(p.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    })
}

/// Returns whether the camera moved (the app persists it).
pub fn lorenz_view(
    ui: &mut Ui,
    results: &Results,
    cam: &mut OrbitCamera,
    axes: [usize; 3],
) -> bool {
    let size = ui.available_size().max(egui::vec2(64.0, 64.0));
    let (resp, painter) = ui.allocate_painter(size, Sense::click_and_drag());
    let rect = resp.rect;
    painter.rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
    let Some(started) = results.points().filter(|s| s.dim >= 3) else {
        painter.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            "This view shows data of 3 or more dimensions: pick the lorenz preset, or open \
             your own file (Open data…)",
            egui::FontId::proportional(15.0),
            ui.visuals().weak_text_color(),
        );
        return false;
    };
    let before = *cam;
    if resp.dragged() {
        let d = resp.drag_delta();
        cam.drag(d.x, d.y);
    }
    if resp.hovered() {
        let scroll = ui.input(|i| i.smooth_scroll_delta.y);
        if scroll != 0.0 {
            cam.zoom(scroll);
        }
    }
    if resp.double_clicked() {
        cam.reset();
    }
    let axes = axes.map(|a| a.min(started.dim - 1));
    let bounds = axes.map(|a| started.bounds[a]);
    cam.target = std::array::from_fn(|a| (bounds[a][0] + bounds[a][1]) / 2.0);

    let project = |p: [f32; 3]| to_screen(cam, rect, p);
    let painter = painter.with_clip_rect(rect);
    // Axes from the centre of the data, half the data's extent long, labelled.
    let centre = cam.target;
    let names: Vec<String> = if started.dim == 3 && axes == [0, 1, 2] {
        vec!["x".into(), "y".into(), "z".into()]
    } else {
        axes.iter().map(|a| format!("axis {a}")).collect()
    };
    for (a, name) in names.iter().enumerate() {
        let mut end = centre;
        end[a] = bounds[a][1];
        if let (Some((p0, _)), Some((p1, _))) = (project(centre), project(end)) {
            let c = [
                Color32::from_rgb(220, 80, 80),
                Color32::from_rgb(80, 190, 90),
                Color32::from_rgb(90, 130, 240),
            ][a];
            painter.line_segment([p0, p1], Stroke::new(1.5, c));
            painter.text(
                p1,
                egui::Align2::LEFT_BOTTOM,
                name,
                egui::FontId::proportional(14.0),
                c,
            );
        }
    }
    let cloud = (0..started.data.len()).filter_map(|i| project(xyz(started.data.row(i), axes)));
    dots(
        &painter,
        cloud.map(|(p, _)| p),
        2.4,
        DATA.gamma_multiply(0.45),
    );
    if let Some(truth) = &started.truth {
        let pts: Vec<Pos2> = (0..truth.len())
            .filter_map(|i| project(xyz(truth.row(i), axes)).map(|(p, _)| p))
            .collect();
        painter.line(
            pts,
            Stroke::new(1.0, Color32::from_gray(150).gamma_multiply(0.7)),
        );
    }
    if let Some(frame) = results.particles.as_ref().filter(|f| f.dim >= 3) {
        let mut mesh = Segments::default();
        for i in 0..frame.count() {
            let colour = ramp(0.35 + 0.65 * i as f32 / frame.count().max(1) as f32);
            let fade = |k: usize| colour.gamma_multiply(0.15 + 0.85 * k as f32 / frame.len as f32);
            let mut prev: Option<Pos2> = None;
            for k in 0..frame.len {
                let p = project(xyz(frame.point(i, k), axes)).map(|(p, _)| p);
                if let (Some(a), Some(b)) = (prev, p) {
                    mesh.add(a, b, 1.6, fade(k - 1), fade(k));
                }
                prev = p;
            }
            if let Some(p) = prev {
                mesh.dot(p, 5.0, colour);
            }
        }
        mesh.paint(&painter);
    }
    painter.text(
        rect.left_top() + egui::vec2(10.0, 8.0),
        egui::Align2::LEFT_TOP,
        "drag: rotate · scroll: zoom · double-click: reset",
        egui::FontId::proportional(12.0),
        ui.visuals().weak_text_color(),
    );
    *cam != before
}
