//! The user's own point snapshots: a table from a file (`data::table`), its columns picked,
//! checked, subsampled and standardised, with velocities at the same states if given.

use super::table::{self, DataError, Table};
use super::{Dataset, Standardizer};
use crate::preset::{Column, DatasetKind, FileData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index;
use std::path::Path;

pub use crate::preset::MIN_FILE_ROWS as MIN_ROWS;
/// The point models' settings are made for a few dimensions; the paper goes up to 3.
pub const MAX_DIM: usize = 16;

/// Read `f`'s snapshots (and velocities), with the generator seeded by `seed` for the
/// subsample.
pub fn load(f: &FileData, seed: u64) -> Result<Dataset, DataError> {
    let budget = table::memory_budget();
    let path = Path::new(&f.path);
    let t = table::read(path, budget)?;
    let picked = pick_columns(&t, &f.columns, &f.path)?;
    let dim = picked.len();
    if dim < 2 {
        return Err(DataError::Unusable(format!(
            "{}: {} column; snapshots need at least 2 axes (a 1-D flow that keeps its \
             distribution cannot move)",
            f.path, dim
        )));
    }
    if t.rows < MIN_ROWS {
        return Err(DataError::Unusable(format!(
            "{}: {} rows; equiflow needs at least {MIN_ROWS} snapshots to learn their \
             distribution",
            f.path, t.rows
        )));
    }
    let velocity = match &f.velocity {
        None => None,
        Some(v) => {
            let vt = table::read(Path::new(v), budget)?;
            if vt.rows != t.rows {
                return Err(DataError::Unusable(format!(
                    "the velocity file {v} has {} rows and the snapshots {} have {}: it must \
                     give one velocity per snapshot, in the same order",
                    vt.rows, f.path, t.rows
                )));
            }
            if vt.cols != t.cols {
                return Err(DataError::Unusable(format!(
                    "the velocity file {v} has {} columns and the snapshots {} have {}: it \
                     must have the same columns (the same dataset.columns pick from both)",
                    vt.cols, f.path, t.cols
                )));
            }
            Some(vt)
        }
    };
    // Which rows: all, or a seeded subsample in the file's order.
    let rows: Vec<usize> = match f.n {
        Some(n) if n < t.rows => {
            let mut rng = StdRng::seed_from_u64(seed ^ 0xF11E_5EED);
            let mut idx = index::sample(&mut rng, t.rows, n).into_vec();
            idx.sort_unstable();
            idx
        }
        _ => (0..t.rows).collect(),
    };
    let gather = |t: &Table| -> Vec<f64> {
        let mut out = Vec::with_capacity(rows.len() * dim);
        for &r in &rows {
            out.extend(picked.iter().map(|&c| t.values[r * t.cols + c]));
        }
        out
    };
    // Every row and column in order: the table's numbers are the data (no second copy).
    let whole = rows.len() == t.rows && picked.iter().copied().eq(0..t.cols);
    let mut raw = if whole { t.values } else { gather(&t) };
    let gather_velocity = |vt: Table| if whole { vt.values } else { gather(&vt) };
    for a in 0..dim {
        let (lo, hi) = raw
            .iter()
            .skip(a)
            .step_by(dim)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
                (l.min(x), h.max(x))
            });
        if hi <= lo {
            return Err(DataError::Unusable(format!(
                "{}: axis {} is constant ({lo}); every axis must vary across the snapshots",
                f.path,
                a + 1
            )));
        }
    }
    let standardizer = f
        .standardise
        .then(|| Standardizer::fit_apply(&mut raw, dim));
    let velocity = velocity.map(|vt| {
        let mut v = gather_velocity(vt);
        // Velocities are derivatives of the coordinates: scaled, never shifted.
        if let Some(st) = &standardizer {
            for row in v.chunks_mut(dim) {
                for (x, s) in row.iter_mut().zip(&st.std) {
                    *x /= s;
                }
            }
        }
        v.iter().map(|&x| x as f32).collect()
    });
    Ok(Dataset {
        kind: DatasetKind::File,
        dim,
        points: raw.iter().map(|&x| x as f32).collect(),
        standardizer,
        velocity,
    })
}

/// The column indices `columns` names (all, if empty).
fn pick_columns(t: &Table, columns: &[Column], path: &str) -> Result<Vec<usize>, DataError> {
    if columns.is_empty() {
        if t.cols > MAX_DIM {
            return Err(DataError::Unusable(format!(
                "{path} has {} columns; equiflow learns flows in 2 to {MAX_DIM} dimensions: \
                 pick the axes with dataset.columns, e.g. --set 'dataset.columns=[0, 1, 2]'{}",
                t.cols,
                names_hint(t)
            )));
        }
        return Ok((0..t.cols).collect());
    }
    let mut out = Vec::with_capacity(columns.len());
    for c in columns {
        let i = match c {
            Column::Index(i) if *i < t.cols => *i,
            Column::Index(i) => {
                return Err(DataError::Unusable(format!(
                    "dataset.columns: {path} has {} columns (0 to {}); there is no column {i}",
                    t.cols,
                    t.cols - 1
                )));
            }
            Column::Name(n) => t
                .names
                .as_ref()
                .and_then(|names| names.iter().position(|x| x == n))
                .ok_or_else(|| {
                    DataError::Unusable(match &t.names {
                        Some(_) => format!(
                            "dataset.columns: {path} has no column '{n}'{}",
                            names_hint(t)
                        ),
                        None => format!(
                            "dataset.columns: {path} has no header, so its columns have no \
                             names; pick them by index (0 to {})",
                            t.cols - 1
                        ),
                    })
                })?,
        };
        if out.contains(&i) {
            return Err(DataError::Unusable(format!(
                "dataset.columns names column {c} twice"
            )));
        }
        out.push(i);
    }
    if out.len() > MAX_DIM {
        return Err(DataError::Unusable(format!(
            "dataset.columns picks {} columns; equiflow learns flows in 2 to {MAX_DIM} dimensions",
            out.len()
        )));
    }
    Ok(out)
}

fn names_hint(t: &Table) -> String {
    match &t.names {
        Some(n) => format!(" (its columns: {})", n.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, text: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn grid(rows: usize, cols: usize, f: impl Fn(usize, usize) -> f64) -> String {
        let mut s = String::new();
        for r in 0..rows {
            let cells: Vec<String> = (0..cols).map(|c| f(r, c).to_string()).collect();
            s += &(cells.join(",") + "\n");
        }
        s
    }

    #[test]
    fn columns_subsample_standardisation_and_velocities() {
        let dir = tempfile::tempdir().unwrap();
        let header = "t,x,y,z\n".to_string();
        let pts = file(
            dir.path(),
            "p.csv",
            &(header.clone() + &grid(300, 4, |r, c| (r * (c + 1)) as f64 + (r % 7) as f64)),
        );
        let vel = file(
            dir.path(),
            "v.csv",
            &(header + &grid(300, 4, |r, c| (c as f64 + 1.0) * (r as f64).sin())),
        );
        let f = FileData {
            path: pts.clone(),
            columns: vec![Column::Name("x".into()), Column::Index(3)],
            velocity: Some(vel),
            ..Default::default()
        };
        let d = load(&f, 1).unwrap();
        assert_eq!((d.dim, d.len()), (2, 300));
        let st = d.standardizer.as_ref().unwrap();
        // Velocity row 5 of column x (index 1) is 2 sin 5, divided by x's scale.
        let v = d.velocity.as_ref().unwrap();
        assert!((v[10] as f64 - 2.0 * 5f64.sin() / st.std[0]).abs() < 1e-5);
        assert!((v[11] as f64 - 4.0 * 5f64.sin() / st.std[1]).abs() < 1e-5);
        // Subsampled: seeded, in file order, the velocities follow their rows.
        let sub = FileData {
            n: Some(120),
            standardise: false,
            ..f.clone()
        };
        let a = load(&sub, 3).unwrap();
        assert_eq!(a.len(), 120);
        assert_eq!(a.points, load(&sub, 3).unwrap().points);
        assert_ne!(a.points, load(&sub, 4).unwrap().points);
        for (p, v) in a.points.chunks(2).zip(a.velocity.unwrap().chunks(2)) {
            // x = r·2 + r%7, so r is recoverable from x and z.
            let r = ((p[1] - p[0]) / 2.0).round() as usize;
            assert!((v[0] - 2.0 * (r as f32).sin()).abs() < 1e-4);
        }
    }

    /// Lorenz states with their own right-hand side as the velocity file: after the
    /// standardisation the velocities are Lorenz's field in standardised coordinates.
    #[test]
    fn a_known_field_as_velocities_is_the_truth_through_the_standardisation() {
        use crate::data::lorenz::{self, Lorenz};
        let dir = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(2);
        let raw = lorenz::trajectories(2, 200, 0.01, Lorenz::CLASSIC, &mut rng);
        let rows: Vec<&[f64]> = raw.chunks(3).collect();
        let text = |f: &dyn Fn(&[f64]) -> [f64; 3]| -> String {
            rows.iter()
                .map(|r| {
                    let v = f(r);
                    format!("{},{},{}\n", v[0], v[1], v[2])
                })
                .collect()
        };
        let pts = file(dir.path(), "l.csv", &text(&|r| [r[0], r[1], r[2]]));
        let vel = file(
            dir.path(),
            "v.csv",
            &text(&|r| lorenz::rhs([r[0], r[1], r[2]], Lorenz::CLASSIC)),
        );
        let f = FileData {
            path: pts,
            velocity: Some(vel),
            ..Default::default()
        };
        let d = load(&f, 0).unwrap();
        let st = d.standardizer.as_ref().unwrap();
        let truth = lorenz::field_standardised(&d.points, st, Lorenz::CLASSIC);
        let v = d.velocity.as_ref().unwrap();
        let cos = crate::metrics::alignment::abs_cosine(v, &truth);
        assert!((cos - 1.0).abs() < 1e-6, "{cos}");
        assert!(
            v.iter()
                .zip(&truth)
                .all(|(a, b)| (a - b).abs() <= 1e-4 * (1.0 + b.abs()))
        );
    }

    #[test]
    fn npy_and_csv_of_the_same_numbers_are_the_same_data() {
        let dir = tempfile::tempdir().unwrap();
        let values: Vec<f64> = (0..600)
            .map(|i| ((i * 37) % 101) as f64 * 0.013 - 0.4)
            .collect();
        let csv: String = values
            .chunks(3)
            .map(|r| format!("{},{},{}\n", r[0], r[1], r[2]))
            .collect();
        let mut npy = Vec::new();
        table::write_npy(&mut npy, &values, 3).unwrap();
        let a_path = file(dir.path(), "a.csv", &csv);
        let b_path = dir.path().join("a.npy");
        std::fs::write(&b_path, npy).unwrap();
        let load_n = |path: String| {
            load(
                &FileData {
                    path,
                    n: Some(150),
                    ..Default::default()
                },
                5,
            )
            .unwrap()
        };
        let (a, b) = (load_n(a_path), load_n(b_path.display().to_string()));
        assert_eq!(a.points, b.points);
        assert_eq!(a.standardizer, b.standardizer);
    }

    #[test]
    fn unusable_tables_are_refused_with_a_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let ok = grid(150, 3, |r, c| (r * 3 + c) as f64 * 0.37 % 5.0);
        let cases: Vec<(String, FileData, &str)> = vec![
            (
                grid(50, 3, |r, c| (r + c) as f64),
                FileData::default(),
                "50 rows; equiflow needs at least 100",
            ),
            (
                grid(150, 1, |r, _| r as f64),
                FileData::default(),
                "1 column",
            ),
            (
                grid(150, 17, |r, c| (r * c) as f64),
                FileData::default(),
                "17 columns",
            ),
            (
                ok.clone(),
                FileData {
                    columns: vec![Column::Index(5)],
                    ..Default::default()
                },
                "there is no column 5",
            ),
            (
                ok.clone(),
                FileData {
                    columns: vec![Column::Name("x".into()), Column::Index(0)],
                    ..Default::default()
                },
                "has no header",
            ),
            (
                grid(150, 2, |r, c| if c == 0 { 1.0 } else { r as f64 }),
                FileData::default(),
                "axis 1 is constant",
            ),
        ];
        for (text, mut f, want) in cases {
            f.path = file(dir.path(), "d.csv", &text);
            let e = load(&f, 0).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
        let pts = file(dir.path(), "p.csv", &ok);
        for (v, want) in [
            (grid(149, 3, |r, c| (r + c) as f64), "has 149 rows"),
            (grid(150, 2, |r, c| (r + c) as f64), "has 2 columns"),
        ] {
            let f = FileData {
                path: pts.clone(),
                velocity: Some(file(dir.path(), "v.csv", &v)),
                ..Default::default()
            };
            let e = load(&f, 0).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
    }
}
