//! The trained image flow: its loss and |cos| to the truth as it learns, the rule it learned
//! (the 3×3 stencil kernels as small pictures), and a live preview of it running.

use super::pattern::Textures;
use crate::ui::pixels::state_image;
use crate::ui::results::Results;
use crate::worker::event::{NcaRule, RuleAt};
use egui::{Color32, ColorImage, Ui};
use egui_plot::{Legend, Line, Plot};

/// Hidden units per row in the kernel picture.
const UNITS_PER_ROW: usize = 8;

/// The stencil kernels `[hidden, c, 3, 3]` laid out as one picture: units in rows of
/// [`UNITS_PER_ROW`], each unit's c kernels side by side, a blank pixel between kernels and
/// two between units. Blue–white–red, scaled to the largest weight (white = 0).
pub fn kernels_image(r: &NcaRule) -> ColorImage {
    let (c, hidden) = (r.channels.max(1), r.hidden.max(1));
    let unit_w = c * 4 + 1;
    let cols = UNITS_PER_ROW.min(hidden);
    let rows = hidden.div_ceil(cols);
    let (w, h) = (cols * unit_w + 1, rows * 5 + 1);
    let mut pixels = vec![Color32::from_gray(40); w * h];
    let scale = r.kernels.iter().fold(1e-9f32, |m, x| m.max(x.abs()));
    for u in 0..hidden {
        let (x0, y0) = ((u % cols) * unit_w + 2, (u / cols) * 5 + 2);
        for i in 0..c {
            for a in 0..3 {
                for b in 0..3 {
                    let k = r.kernels[((u * c + i) * 3 + a) * 3 + b] / scale;
                    pixels[(y0 + a) * w + x0 + i * 4 + b] = diverging(k);
                }
            }
        }
    }
    ColorImage::new([w, h], pixels)
}

fn diverging(t: f32) -> Color32 {
    let t = t.clamp(-1.0, 1.0);
    let (r, g, b) = if t >= 0.0 {
        (1.0, 1.0 - t, 1.0 - t)
    } else {
        (1.0 + t, 1.0 + t, 1.0)
    };
    Color32::from_rgb((r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8)
}

pub fn nca_view(ui: &mut Ui, results: &Results, tex: &mut Textures, nca_chosen: bool) {
    let Some(rule) = &results.nca_rule else {
        ui.weak(if nca_chosen {
            "The NCA trains once the score model is trained; its loss, its agreement with \
             the true dynamics and the rule it learns appear here."
        } else {
            "Choose Flow → trained NCA in the left panel and press Train: a neural cellular \
             automaton then learns a flow with the equilibrium loss."
        });
        return;
    };
    ui.horizontal(|ui| {
        ui.label(match rule.steps {
            RuleAt::Trained => "NCA trained".to_string(),
            RuleAt::Step(n) => format!("NCA training · {n} steps"),
        });
        if let Some((_, c)) = rule.cos {
            ui.separator();
            ui.label(format!("|cos| to the true dynamics {c:.3}"))
                .on_hover_text(
                    "measured once per epoch on two held-out patterns, by the metric's \
                     protocol: the NCA's simulated displacement against Gray–Scott's",
                );
        }
        if let Some(m) = &results.pattern_metrics
            && let (Some(a), Some(b)) = (m.cos_truth_nca, m.cos_truth_nca_random)
        {
            ui.separator();
            ui.label(format!(
                "simulated |cos|: trained {a:.3} · untrained {b:.3}"
            ));
        }
    });
    let half = (ui.available_width() / 2.0 - 8.0).max(160.0);
    let plot_h = 160.0;
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.set_width(half);
            ui.small("equilibrium loss per epoch (unbiased: may dip below 0)");
            Plot::new("nca-loss")
                .height(plot_h)
                .x_axis_label("epoch")
                .show(ui, |plot| {
                    plot.line(Line::new("loss", results.flow_losses.clone()));
                });
            if !results.nca_cos.is_empty() {
                ui.small("|cos| to the true Gray–Scott dynamics (per epoch)");
                Plot::new("nca-cos")
                    .height(plot_h)
                    .legend(Legend::default())
                    .x_axis_label("training steps")
                    .include_y(0.0)
                    .show(ui, |plot| {
                        plot.line(Line::new("NCA", results.nca_cos.clone()));
                        if let Some(tf) = results
                            .pattern_metrics
                            .as_ref()
                            .and_then(|m| m.cos_truth_training_free)
                        {
                            let x1 = results.nca_cos.last().map_or(1.0, |p| p[0]);
                            plot.line(Line::new(
                                "training-free (simulated)",
                                vec![[0.0, tf], [x1, tf]],
                            ));
                        }
                    });
            }
        });
        ui.vertical(|ui| {
            let side = (half * 0.8).min(320.0);
            tex.show(
                ui,
                "nca-kernels",
                kernels_image(rule),
                half.min(520.0),
                "the learned rule: each hidden unit's 3×3 stencil per input channel \
                 (centre, edges, corners; red +, blue −)",
            );
            if let Some(f) = &results.pattern_frame {
                let image = state_image(&f.learned, f.channels, f.h, f.w);
                tex.show(
                    ui,
                    "nca-preview",
                    image,
                    side * 0.6,
                    "live: the NCA running (SDE with v = NCA)",
                );
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kernel_lands_in_its_own_cell() {
        // 2 hidden units, 2 channels; unit 1 channel 0 has +1 in its centre, the rest 0.
        let mut kernels = vec![0.0; 2 * 2 * 9];
        kernels[(2 * 2) * 9 / 2 + 4] = 1.0;
        kernels[0] = -0.5;
        let img = kernels_image(&NcaRule {
            steps: RuleAt::Step(0),
            cos: None,
            hidden: 2,
            channels: 2,
            kernels,
        });
        assert_eq!(img.size, [2 * 9 + 1, 6]);
        // Unit 1 starts at x = 9 + 2; its centre is one in.
        assert_eq!(
            img.pixels[3 * img.size[0] + 12],
            Color32::from_rgb(255, 0, 0)
        );
        // Unit 0, channel 0, top-left: half blue.
        assert_eq!(img.pixels[2 * img.size[0] + 2].b(), 255);
        assert!(img.pixels[2 * img.size[0] + 2].r() < 200);
        // Between kernels: the background.
        assert_eq!(img.pixels[3 * img.size[0] + 5], Color32::from_gray(40));
    }
}
