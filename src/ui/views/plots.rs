//! Loss curves and metrics, with egui_plot.

use crate::ui::results::Results;
use egui::Ui;
use egui_plot::{HoverPosition, Legend, Line, Plot, PlotPoints};

fn log_points(points: &[[f64; 2]]) -> PlotPoints<'static> {
    points
        .iter()
        .filter(|p| p[1] > 0.0 && p[1].is_finite())
        .map(|p| [p[0], p[1].log10()])
        .collect()
}

/// Score and flow losses per epoch, log scale.
pub fn loss_view(ui: &mut Ui, results: &Results) {
    if results.score_losses.is_empty() && results.flow_losses.is_empty() {
        ui.weak("Loss curves appear after the first epoch.");
    }
    Plot::new("losses")
        .legend(Legend::default())
        .x_axis_label("epoch")
        .y_axis_label("loss (log scale)")
        .y_axis_formatter(|m, _| format!("{:.2e}", 10f64.powf(m.value)))
        .label_formatter(|h| {
            let p = match h {
                HoverPosition::NearDataPoint { position, .. } => position,
                HoverPosition::Elsewhere { position } => position,
            };
            Some(format!("epoch {:.0}\nloss {:.4e}", p.x, 10f64.powf(p.y)))
        })
        .show(ui, |plot| {
            plot.line(Line::new("score loss", log_points(&results.score_losses)));
            plot.line(Line::new("flow loss", log_points(&results.flow_losses)));
        });
}

/// One metric; metrics that do not apply to this system (`None`) are left out.
fn row(ui: &mut Ui, name: &str, value: Option<f64>, hint: &str) {
    if value.is_none() {
        return;
    }
    ui.label(name).on_hover_text(hint);
    ui.monospace(value.map_or("—".into(), |v| format!("{v:.4}")));
    ui.end_row();
}

/// MMD² over simulated time for each field, and the final numbers.
pub fn metrics_view(ui: &mut Ui, results: &Results) {
    let Some((m, curves)) = &results.metrics else {
        ui.weak("Metrics are computed when training finishes.");
        return;
    };
    egui::Grid::new("metrics").striped(true).show(ui, |ui| {
        row(
            ui,
            "MMD² learned",
            Some(m.mmd2_learned),
            "data vs data moved 100 steps by the learned flow; near 0 is best",
        );
        row(
            ui,
            "MMD² random",
            Some(m.mmd2_random),
            "the same for an untrained flow of the same kind: the baseline to beat",
        );
        row(
            ui,
            "MMD² score",
            Some(m.mmd2_score),
            "moving along the score itself: collapses onto the peaks",
        );
        row(
            ui,
            "MMD² training-free",
            Some(m.mmd2_training_free),
            "D·∇log p with a random antisymmetric D: keeps p without training",
        );
        row(
            ui,
            "tangential ratio",
            m.tangential_ratio,
            "ring only: radial over total speed; 0 = the flow goes around the ring",
        );
        row(
            ui,
            "Lyapunov exponent",
            m.lyapunov_mean,
            "Lorenz and your own data: mean largest exponent of the learned flow; > 0 means chaos",
        );
        row(
            ui,
            "Lyapunov > 0 (fraction)",
            m.lyapunov_positive_fraction,
            "share of trajectories whose exponent is positive",
        );
        row(
            ui,
            "Lyapunov, paper's protocol",
            m.lyapunov_mean_ref,
            "mean over 64 trajectories, 5000 RK4 steps renormalised every 2500 (paper: 0.025)",
        );
        row(
            ui,
            "  smallest (paper's)",
            m.lyapunov_min_ref,
            "the smallest over this model's trajectories (the paper's 0.006–0.044 is over models)",
        );
        row(
            ui,
            "  largest (paper's)",
            m.lyapunov_max_ref,
            "the largest over this model's trajectories",
        );
        row(
            ui,
            "  > 0 (paper's)",
            m.lyapunov_positive_fraction_ref,
            "share of positive exponents (paper: all 100 models positive)",
        );
        row(
            ui,
            "  per unit speed (paper's)",
            m.lyapunov_per_speed_ref,
            "the exponent divided by the mean speed along the trajectories",
        );
        row(
            ui,
            "|cos| to true field",
            m.cos_truth_learned,
            "Lorenz, or your data's velocities: alignment of the learned flow with the true field",
        );
        row(
            ui,
            "|cos| training-free",
            m.cos_truth_training_free,
            "the same for the training-free flow",
        );
        row(
            ui,
            "|cos| random",
            m.cos_truth_random,
            "the same for an untrained flow",
        );
        row(
            ui,
            "|cos| random, mean",
            m.cos_truth_random_mean,
            "the mean over 10 untrained flows: the learned flow means something above mean + 2 sd",
        );
        row(
            ui,
            "|cos| random, sd",
            m.cos_truth_random_sd,
            "their standard deviation",
        );
        for (name, why) in &m.not_measured {
            ui.label(name.as_str()).on_hover_text(why.as_str());
            ui.weak("not measured").on_hover_text(why.as_str());
            ui.end_row();
        }
    });
    ui.add_space(6.0);
    Plot::new("mmd")
        .legend(Legend::default())
        .x_axis_label("RK4 steps from the data")
        .y_axis_label("MMD²")
        .show(ui, |plot| {
            for c in curves {
                let pts: PlotPoints = c.points.iter().copied().collect();
                plot.line(Line::new(c.field, pts));
            }
        });
}
