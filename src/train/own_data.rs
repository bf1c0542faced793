//! A run on the user's own snapshots: the file read once, the settings of the built-in
//! preset closest to the data (or of the one asked for), named after the file. The CLI's
//! `--data` and the app's *Open data…* both come here, for point files and for pictures.

use crate::data::Dataset;
use crate::data::image_files::{self, ImageFileError};
use crate::data::table::DataError;
use crate::preset::{FileData, ImageLayout, ImagesData, Preset, PresetError, Source};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Preset(#[from] PresetError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Images(#[from] ImageFileError),
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
    fit_epochs(&mut preset, &own, quick, data.len(), MIN_STEPS, sets);
    Ok((preset, data))
}

/// The settings for the pictures at `path` (a folder of snapshots, or one picture to crop):
/// those of `base`, else of [`Preset::IMAGE_BASE`]. A picture gives as many crops, of the
/// side, as the base trains on (capped by the picture); a folder gives all its pictures,
/// fitted to the base's side when theirs is larger. `dataset.resize` in `sets` fits a
/// folder of mixed sizes. Returns the preset and a line saying what was opened.
pub fn open_images(
    path: &str,
    base: Option<&str>,
    quick: bool,
    sets: &[String],
    seed: Option<u64>,
) -> Result<(Preset, String), OpenError> {
    let base = base.unwrap_or(Preset::IMAGE_BASE);
    let own = [
        Preset::load(base, false, &[])?,
        Preset::load(base, true, &[])?,
    ];
    let (base_n, base_side) = own[usize::from(quick)]
        .dataset
        .images()
        .unwrap_or((ImagesData::CROPS, ImagesData::CROP_SIDE));
    let probe = image_files::probe(Path::new(path))?;
    let asked_resize = set_value(sets, "dataset.resize");
    if !probe.picture && asked_resize.is_none() {
        image_files::check_sizes(Path::new(path))?;
    }
    let mut images = ImagesData::open(path, asked_resize.filter(|_| !probe.picture))?;
    let fitted = probe.fitted_side();
    if probe.picture {
        images.n = base_n;
        images.size = base_side.min(fitted);
    } else {
        images.size = asked_resize.unwrap_or(fitted.min(base_side));
    }
    // A colour mixer turns an icon's inks; a picture of a pattern moves as a whole (and a
    // grey one has no colours to turn).
    let mut sets = sets.to_vec();
    if !sets.iter().any(|s| {
        s.split_once('=')
            .is_some_and(|(k, _)| k.trim() == "sde.kernel")
    }) {
        sets.insert(0, "sde.kernel=\"shared\"".into());
    }
    let mut preset = Preset::for_data(base, Source::Images(images), quick, &sets)?;
    if let Some(seed) = seed {
        preset.seed = seed;
    }
    let (n, side) = preset.dataset.images().expect("image settings");
    fit_epochs(&mut preset, &own, quick, n, (0, 0), &sets);
    let i = preset.dataset.user_images().expect("image settings");
    let what = match i.layout {
        ImageLayout::Picture { periodic } => format!(
            "a {}×{} picture: {n} random crops of {side}²{}",
            probe.w,
            probe.h,
            if periodic { ", wrapping around" } else { "" }
        ),
        ImageLayout::Folder => format!(
            "{n} pictures{}",
            if probe.same_size && probe.w as usize == side && probe.h as usize == side {
                format!(" of {side}²")
            } else {
                format!(" fitted to {side}² (dataset.resize)")
            }
        ),
    };
    let summary = format!(
        "{path}: {what}, {}, with the settings of '{base}'",
        if i.channels == 1 { "grey" } else { "colour" }
    );
    Ok((preset, summary))
}

/// The value `sets` gives `key` (`key=value`), if a whole number.
fn set_value(sets: &[String], key: &str) -> Option<usize> {
    sets.iter().rev().find_map(|s| {
        let (k, v) = s.split_once('=')?;
        (k.trim() == key).then(|| v.trim().parse().ok())?
    })
}

/// Whether `path` names pictures [`open_images`] reads: a folder, or a PNG/JPEG file.
pub fn is_images(path: &Path) -> bool {
    path.is_dir() || image_files::is_picture(path)
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
fn fit_epochs(
    preset: &mut Preset,
    own: &[Preset; 2],
    quick: bool,
    rows: usize,
    min_steps: (usize, usize),
    sets: &[String],
) {
    let set = |key: &str| sets.iter().any(|s| s.trim_start().starts_with(key));
    let steps_to_epochs = |own: &Preset, score: bool| {
        let own_rows = own
            .dataset
            .rows()
            .or(own.dataset.images().map(|(n, _)| n))
            .unwrap_or(rows);
        let (epochs, batch, now_batch, min) = if score {
            (
                own.score.epochs,
                own.score.batch,
                preset.score.batch,
                min_steps.0,
            )
        } else {
            (
                own.flow.epochs,
                own.flow.batch,
                preset.flow.batch,
                min_steps.1,
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
