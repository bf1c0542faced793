//! The Paint tab: tools above, the icon large on a checkerboard (transparency shows), and
//! what to do with it (load, save, use as the training target).

use crate::data::icon::BUILTIN;
use crate::ui::paint::{Brush, PaintCanvas, Tool};
use egui::{Color32, ColorImage, Key, KeyboardShortcut, Modifiers, Sense, TextureHandle, Ui, Vec2};

/// What the Paint tab asks the app to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaintAction {
    /// Save the icon and make it the target of the artificial-life settings.
    UseAsTarget,
    /// Open a PNG/JPEG (dialog).
    Load,
    /// Save the icon as a PNG (dialog).
    Save,
    /// Replace the picture with a built-in target.
    Builtin(&'static str),
}

/// The view's own state: the picture's texture (re-uploaded only when it changed) and
/// whether a press is being held.
#[derive(Default)]
pub struct PaintTexture {
    texture: Option<(u64, TextureHandle)>,
    held: bool,
}

fn shortcuts(ui: &Ui, canvas: &mut PaintCanvas) {
    let typing = ui.ctx().memory(|m| m.focused().is_some());
    if typing {
        return;
    }
    let (undo, redo) = ui.input_mut(|i| {
        let redo = i.consume_shortcut(&KeyboardShortcut::new(
            Modifiers::COMMAND | Modifiers::SHIFT,
            Key::Z,
        )) || i.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::Y));
        let undo = i.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::Z));
        (undo, redo)
    });
    if undo {
        canvas.undo();
    }
    if redo {
        canvas.redo();
    }
}

fn toolbar(ui: &mut Ui, canvas: &mut PaintCanvas, brush: &mut Brush) {
    ui.horizontal_wrapped(|ui| {
        for (tool, name, tip) in [
            (Tool::Brush, "Brush", "Paint with the colour"),
            (Tool::Eraser, "Eraser", "Make pixels transparent"),
            (Tool::Fill, "Fill", "Fill the region under the click"),
        ] {
            ui.selectable_value(&mut brush.tool, tool, name)
                .on_hover_text(tip);
        }
        ui.separator();
        ui.label("size");
        ui.add(egui::Slider::new(&mut brush.radius, 0.5..=24.0).max_decimals(1))
            .on_hover_text("Brush radius in icon pixels");
        ui.label("softness");
        ui.add(egui::Slider::new(&mut brush.softness, 0.0..=1.0).max_decimals(2))
            .on_hover_text("0: a hard edge; 1: coverage fades from the centre");
        ui.label("colour");
        ui.color_edit_button_rgba_unmultiplied(&mut brush.colour)
            .on_hover_text("Brush and fill colour, with opacity");
        ui.separator();
        if ui
            .add_enabled(canvas.can_undo(), egui::Button::new("Undo"))
            .on_hover_text("Ctrl+Z")
            .clicked()
        {
            canvas.undo();
        }
        if ui
            .add_enabled(canvas.can_redo(), egui::Button::new("Redo"))
            .on_hover_text("Ctrl+Shift+Z or Ctrl+Y")
            .clicked()
        {
            canvas.redo();
        }
        if ui.button("Clear").clicked() {
            canvas.clear();
        }
    });
}

/// Draw the tab; returns what the user asked for beyond painting.
pub fn paint_view(
    ui: &mut Ui,
    canvas: &mut PaintCanvas,
    brush: &mut Brush,
    texture: &mut PaintTexture,
    target: &str,
) -> Option<PaintAction> {
    shortcuts(ui, canvas);
    toolbar(ui, canvas, brush);
    let mut action = None;
    ui.horizontal_wrapped(|ui| {
        ui.label("start from");
        for &name in BUILTIN {
            if ui.button(name).clicked() {
                action = Some(PaintAction::Builtin(name));
            }
        }
        ui.separator();
        if ui
            .button("Load…")
            .on_hover_text("A PNG or JPEG, fitted to the canvas (or drop one on the window)")
            .clicked()
        {
            action = Some(PaintAction::Load);
        }
        if ui.button("Save PNG…").clicked() {
            action = Some(PaintAction::Save);
        }
        ui.separator();
        if ui
            .button(egui::RichText::new("Use as target").strong())
            .on_hover_text("Train on this icon: the next Train tiles it and learns its score")
            .clicked()
        {
            action = Some(PaintAction::UseAsTarget);
        }
    });
    ui.weak(format!("The settings' target now: {target}"));
    let n = canvas.size();
    let side = ui
        .available_width()
        .min(ui.available_height() - 8.0)
        .clamp(128.0, 512.0);
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(side), Sense::click_and_drag());
    let painter = ui.painter_at(rect);
    // A checkerboard under the icon so transparency is visible.
    let cells = 8;
    let cell = side / cells as f32;
    for y in 0..cells {
        for x in 0..cells {
            let shade = if (x + y) % 2 == 0 { 230 } else { 200 };
            let r = egui::Rect::from_min_size(
                rect.min + Vec2::new(x as f32, y as f32) * cell,
                Vec2::splat(cell),
            );
            painter.rect_filled(r, 0.0, Color32::from_gray(shade));
        }
    }
    let stale = texture
        .texture
        .as_ref()
        .is_none_or(|(rev, _)| *rev != canvas.revision);
    if stale {
        let image = ColorImage::from_rgba_unmultiplied([n, n], &canvas.icon.to_rgba8());
        match &mut texture.texture {
            Some((rev, t)) => {
                t.set(image, egui::TextureOptions::NEAREST);
                *rev = canvas.revision;
            }
            None => {
                let t = ui
                    .ctx()
                    .load_texture("paint", image, egui::TextureOptions::NEAREST);
                texture.texture = Some((canvas.revision, t));
            }
        }
    }
    if let Some((_, t)) = &texture.texture {
        let uv = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
        painter.image(t.id(), rect, uv, Color32::WHITE);
    }
    painter.rect_stroke(
        rect,
        0.0,
        egui::Stroke::new(1.0, Color32::GRAY),
        egui::StrokeKind::Outside,
    );
    // Pointer: press starts a stroke (or fills), moves extend it, release ends it.
    let down = response.is_pointer_button_down_on();
    let at = response
        .interact_pointer_pos()
        .map(|p| ((p - rect.min) / side * n as f32).to_pos2());
    match (down, at) {
        (true, Some(p)) if !texture.held => {
            texture.held = true;
            canvas.press(p.x, p.y, *brush);
        }
        (true, Some(p)) => canvas.drag(p.x, p.y),
        (false, at) => {
            // A click shorter than a frame never shows as held.
            if let (false, true, Some(p)) = (texture.held, response.clicked(), at) {
                canvas.press(p.x, p.y, *brush);
            }
            texture.held = false;
            canvas.end_stroke();
        }
        _ => {}
    }
    if let (true, Some(h)) = (brush.tool != Tool::Fill, response.hover_pos()) {
        painter.circle_stroke(
            h,
            brush.radius * side / n as f32,
            egui::Stroke::new(1.0, Color32::from_black_alpha(160)),
        );
    }
    action
}
