//! A run on the user's own snapshots: the file read once, the settings of the built-in
//! preset closest to the data (or of the one asked for), named after the file. The CLI's
//! `--data` and the app's *Open data…* both come here.

use crate::data::Dataset;
use crate::data::table::DataError;
use crate::preset::{FileData, Preset, PresetError};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Preset(#[from] PresetError),
    #[error(transparent)]
    Data(#[from] DataError),
}

/// The settings and the data for `file`: with the settings of `base` when given, else of
/// [`Preset::closest_builtin`] to the data's dimension; `quick` and `sets` as for a preset,
/// `seed` (if any) replacing the preset's before the data are read (a subsample is seeded).
pub fn open(
    file: FileData,
    base: Option<&str>,
    quick: bool,
    sets: &[String],
    seed: Option<u64>,
) -> Result<(Preset, Dataset), OpenError> {
    let make = |base: &str| -> Result<Preset, PresetError> {
        let mut p = Preset::for_file(base, file.clone(), quick, sets)?;
        if let Some(seed) = seed {
            p.seed = seed;
        }
        Ok(p)
    };
    let guess = base.unwrap_or(Preset::closest_builtin(2));
    let mut preset = make(guess)?;
    let data = Dataset::generate(&preset.dataset, preset.data_seed())?;
    let closest = Preset::closest_builtin(data.dim);
    let base = base.unwrap_or(closest);
    if base != guess {
        preset = make(base)?;
    }
    let own = [
        Preset::load(base, false, &[])?,
        Preset::load(base, true, &[])?,
    ];
    fit_epochs(&mut preset, &own, quick, data.len(), sets);
    Ok((preset, data))
}

/// At least this many optimisation steps (score, flow) on a file.
pub const MIN_STEPS: (usize, usize) = (4000, 2000);

/// Training length is set in epochs, tuned for each built-in's own data size: on a file of
/// another size the same epochs would be another number of steps (a 5000-row file with
/// Lorenz's quick epochs trains its flow 180 steps). So a file's epochs give the steps the
/// built-in (`own`: its full and its quick settings) takes on its own data, and at least
/// [`MIN_STEPS`]; the quick ones also go into the preset's `[quick]` table, so switching
/// quick on and off keeps them. Epochs the user set (`--set score.epochs=…`) stay.
/// Measured on other chaotic systems (docs/results.md): Lorenz's quick steps (800 score,
/// 600 flow) leave both models short.
fn fit_epochs(preset: &mut Preset, own: &[Preset; 2], quick: bool, rows: usize, sets: &[String]) {
    let set = |key: &str| sets.iter().any(|s| s.trim_start().starts_with(key));
    let steps_to_epochs = |own: &Preset, score: bool| {
        let own_rows = own.dataset.rows().unwrap_or(rows);
        let (epochs, batch, now_batch, min) = if score {
            (
                own.score.epochs,
                own.score.batch,
                preset.score.batch,
                MIN_STEPS.0,
            )
        } else {
            (
                own.flow.epochs,
                own.flow.batch,
                preset.flow.batch,
                MIN_STEPS.1,
            )
        };
        let own_steps = epochs * own_rows.div_ceil(batch.max(1));
        own_steps.max(min).div_ceil(rows.div_ceil(now_batch.max(1)))
    };
    for (score, key) in [(true, "score.epochs"), (false, "flow.epochs")] {
        if set(key) {
            continue;
        }
        let [full, quick_epochs] = [&own[0], &own[1]].map(|o| steps_to_epochs(o, score));
        let epochs = if quick { quick_epochs } else { full };
        if score {
            preset.score.epochs = epochs;
        } else {
            preset.flow.epochs = epochs;
        }
        preset
            .quick
            .insert(key.into(), toml::Value::Integer(quick_epochs as i64));
    }
}

/// Whether `path` names what [`open`] reads (by its extension).
pub fn is_point_file(path: &std::path::Path) -> bool {
    crate::data::table::Format::of(path).is_ok()
}

/// One line saying what was opened.
pub fn describe(path: &str, data: &Dataset, base: &str) -> String {
    format!(
        "{path}: {} snapshots in {} dimensions{}{}, with the settings of '{base}'",
        data.len(),
        data.dim,
        if data.standardizer.is_some() {
            ", standardised per axis"
        } else {
            ""
        },
        if data.velocity.is_some() {
            ", with velocities"
        } else {
            ""
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 5000-row 3-D file with Lorenz's settings: its epochs give Lorenz's own steps (full:
    /// 512 epochs × 25 batches of 50 000 states) or the floor (quick), and the quick ones
    /// survive a reload with quick on; epochs the user set stay.
    #[test]
    fn a_files_epochs_give_the_built_ins_steps_or_the_floor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        let text: String = (0..5000)
            .map(|i| {
                let t = i as f64 * 0.01;
                format!(
                    "{},{},{}\n",
                    t.sin(),
                    (1.3 * t).cos(),
                    (0.7 * t).sin() * t.cos()
                )
            })
            .collect();
        std::fs::write(&path, text).unwrap();
        let file = FileData {
            path: path.display().to_string(),
            ..Default::default()
        };
        let batches = 5000usize.div_ceil(2048);
        let (quick, data) = open(file.clone(), None, true, &[], None).unwrap();
        assert_eq!(data.len(), 5000);
        assert_eq!(quick.score.epochs, MIN_STEPS.0.div_ceil(batches));
        assert_eq!(quick.flow.epochs, MIN_STEPS.1.div_ceil(batches));
        let again = Preset::from_toml_str("again", &quick.to_toml(), true, &[]).unwrap();
        assert_eq!(
            (again.score.epochs, again.flow.epochs),
            (quick.score.epochs, quick.flow.epochs)
        );
        let (full, _) = open(file.clone(), None, false, &[], None).unwrap();
        assert_eq!(full.score.epochs, (512 * 25usize).div_ceil(batches));
        let sets = ["score.epochs=5".to_string()];
        let (own, _) = open(file, None, true, &sets, None).unwrap();
        assert_eq!(own.score.epochs, 5);
        assert_eq!(own.flow.epochs, quick.flow.epochs);
    }
}
