//! `equiflow cross`: is the motion a Turing model finds specific to its own system? Each
//! preset's score moves that preset's held-out snapshots by the paper's protocol (the skew
//! 1×1 mixer, both signs, 199 Heun steps, EMA displacement; `gs_alignment::Reference`), and
//! the displacement is compared with what every preset's Gray–Scott parameters do to the
//! same snapshots. The diagonal is each run's `cos_truth_training_free_ref`; a model whose
//! motion is specific to its system beats the other systems' columns on its row.

use super::turing::{better_sign, fields_of, reference_mixers};
use crate::data::turing::DataError;
use crate::method::diffusion::Schedule;
use crate::metrics::gs_alignment::{self, Reference};
use crate::nn::score_unet::ScoreUnet;
use crate::preset::Preset;
use serde::Serialize;

/// The table: `mean[i][j]` (± `sd[i][j]` over the starts) is the |cos| of model i's motion
/// with preset j's Gray–Scott displacement, from model i's starts, the better of the two
/// mixer signs.
#[derive(Debug, Clone, Serialize)]
pub struct CrossTable {
    pub presets: Vec<String>,
    pub starts: Vec<usize>,
    pub mean: Vec<Vec<f64>>,
    pub sd: Vec<Vec<f64>>,
    /// The sign of the mixer each cell took (+1 or −1).
    pub sign: Vec<Vec<f64>>,
}

impl CrossTable {
    /// Rows: whose motion; columns: whose Gray–Scott.
    pub fn text(&self) -> String {
        let width = self
            .presets
            .iter()
            .map(|p| p.len())
            .max()
            .unwrap_or(4)
            .max(6);
        let mut out = format!("{:<width$}", "motion \\ truth");
        for p in &self.presets {
            out += &format!("  {p:>width$}");
        }
        out.push('\n');
        for (i, p) in self.presets.iter().enumerate() {
            out += &format!("{p:<width$}");
            for j in 0..self.presets.len() {
                let cell = format!("{:.3}±{:.3}", self.mean[i][j], self.sd[i][j]);
                out += &format!("  {cell:>width$}");
            }
            out.push('\n');
        }
        out
    }
}

/// Why a table could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CrossError {
    #[error("'{0}' is not a Gray–Scott (Turing) preset: the cross table compares Turing systems")]
    NotTuring(String),
    #[error(transparent)]
    Data(#[from] DataError),
}

/// The cross table of `models` (each preset with its trained score). `tick(done, total)` is
/// called before every SDE step and returns false to cancel (then the result is None).
pub fn cross(
    models: &[(Preset, ScoreUnet)],
    tick: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Option<CrossTable>, CrossError> {
    let params = models
        .iter()
        .map(|(p, _)| {
            p.dataset
                .gray_scott()
                .map(|g| g.params())
                .ok_or_else(|| CrossError::NotTuring(p.name.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let per_model = 2 * Reference::SDE_STEPS;
    let total = models.len() * per_model;
    let n = models.len();
    let mut table = CrossTable {
        presets: models.iter().map(|(p, _)| p.name.clone()).collect(),
        starts: Vec::with_capacity(n),
        mean: vec![vec![0.0; n]; n],
        sd: vec![vec![0.0; n]; n],
        sign: vec![vec![1.0; n]; n],
    };
    for (i, (preset, score)) in models.iter().enumerate() {
        let starts = super::turing::held_out(preset, preset.eval.cos_starts)?;
        table.starts.push(starts.n);
        let mixers = reference_mixers(preset, starts.channels);
        let vs = fields_of(&mixers);
        let fields: Vec<gs_alignment::Field> =
            vs.iter().map(|v| v as gs_alignment::Field).collect();
        let sched = Schedule::from_settings(&preset.score);
        let Some(moved) = gs_alignment::reference_displacements(
            score,
            &sched,
            &starts,
            &fields,
            &Reference::from_preset(preset),
            &mut |done, _| tick(i * per_model + done, total),
        ) else {
            return Ok(None);
        };
        for (j, gs) in params.iter().enumerate() {
            let truth = gs_alignment::true_displacement(&starts, gs, preset.eval.cos_gs_steps);
            let per_start: Vec<Vec<f64>> = moved
                .iter()
                .map(|d| gs_alignment::abs_cos_per_image(d, &truth, starts.n))
                .collect();
            let best = better_sign(&per_start[0], &per_start[1]);
            (table.mean[i][j], table.sd[i][j]) = gs_alignment::mean_sd(&per_start[best]);
            table.sign[i][j] = if best == 0 { 1.0 } else { -1.0 };
        }
    }
    tick(total, total);
    Ok(Some(table))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::train::job::Silent;
    use burn::tensor::Device;

    /// A 24² maze preset with a tiny UNet (untrained models suffice: the table's plumbing is
    /// what is tested), only the paper's protocol, one random kernel.
    fn tiny(pattern: &str) -> Preset {
        let sets: Vec<String> = [
            "dataset.n=16",
            "dataset.size=24",
            "dataset.sim_steps=600",
            "score.channels=[2, 4, 4]",
            "eval.cos_starts=1",
            "eval.random_draws=1",
            "eval.protocol=\"reference\"",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("dataset.pattern={pattern}")])
        .collect();
        Preset::load("gs-waves", true, &sets).unwrap()
    }

    /// The diagonal is the run's own `cos_truth_training_free_ref`; a preset listed twice
    /// gives two equal columns (same truth) and two equal rows (same motion).
    #[test]
    fn the_diagonal_is_each_runs_reference_cos_and_equal_systems_agree() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        device.seed(3);
        let (maze, spirals) = (tiny("maze"), tiny("spirals"));
        let net = |p: &Preset| ScoreUnet::new(2, &p.score, &device);
        let models = vec![
            (maze.clone(), net(&maze)),
            (spirals.clone(), net(&spirals)),
            (maze.clone(), net(&maze)),
        ];
        let t = cross(&models, &mut |_, _| true).unwrap().unwrap();
        assert_eq!(t.presets.len(), 3);
        for i in 0..3 {
            for j in 0..3 {
                assert!((0.0..=1.0).contains(&t.mean[i][j]), "{:?}", t.mean);
            }
            // Columns 0 and 2 are the same system's truth.
            assert_eq!(t.mean[i][0], t.mean[i][2]);
        }
        // The maze and spirals parameters move the same snapshots differently.
        assert_ne!(t.mean[0][0], t.mean[0][1]);
        for (i, (preset, score)) in models.iter().enumerate().take(2) {
            let m =
                crate::train::turing::evaluate(preset, score, None, &Backend::cpu(), &mut Silent)
                    .unwrap()
                    .unwrap();
            let own = m.cos_truth_training_free_ref.unwrap();
            assert!(
                (t.mean[i][i] - own).abs() < 1e-9,
                "{} vs {own}",
                t.mean[i][i]
            );
        }
        // Cancelling stops it.
        assert!(cross(&models, &mut |done, _| done < 5).unwrap().is_none());
        // Point presets are refused.
        let ring = Preset::load("ring", true, &[]).unwrap();
        let err = cross(&[(ring, net(&maze))], &mut |_, _| true).unwrap_err();
        assert!(err.to_string().contains("Gray–Scott"), "{err}");
    }
}
