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
    if base.is_none() && closest != guess {
        preset = make(closest)?;
    }
    Ok((preset, data))
}

/// Whether `path` names what [`open`] reads (by its extension).
pub fn is_point_file(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| {
        let e = e.to_string_lossy().to_lowercase();
        crate::data::table::Format::EXTENSIONS.contains(&e.as_str())
    })
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
