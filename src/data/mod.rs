//! Snapshots: seeded, deterministic point clouds. No time order is kept — that is the premise.

pub mod examples;
pub mod gray_scott;
pub mod icon;
pub mod image_files;
pub mod image_set;
pub mod lorenz;
pub mod points_file;
pub mod snapshots;
pub mod table;
pub mod tiler;
pub mod toy2d;
pub mod turing;

use crate::preset::{DatasetKind, DatasetSettings, Source};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Create the folder `path` will be written into (nothing for a bare file name).
pub fn create_parent(path: &std::path::Path) -> std::io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    }
}

/// Where a file is written before it is renamed to `path`: beside it, `NAME.part`.
pub fn part_path(path: &std::path::Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

/// Write `path` (creating its folder) through `write` into [`part_path`], renamed into place
/// only once `write` succeeded and the bytes are flushed: a run killed mid-write leaves no
/// half file under the real name, and a failed write leaves nothing.
pub fn write_atomically<T>(
    path: &std::path::Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    use std::io::Write;
    create_parent(path)?;
    let part = part_path(path);
    let written = std::fs::File::create(&part).and_then(|f| {
        let mut w = std::io::BufWriter::new(f);
        let t = write(&mut w)?;
        w.flush()?;
        Ok(t)
    });
    match written.and_then(|t| std::fs::rename(&part, path).map(|_| t)) {
        Ok(t) => Ok(t),
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}

/// Per-axis affine map between raw and standardised coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Fit to row-major `points` of dimension `dim` and standardise them in place.
    pub fn fit_apply(points: &mut [f64], dim: usize) -> Self {
        let n = (points.len() / dim) as f64;
        let mut mean = vec![0.0; dim];
        let mut var = vec![0.0; dim];
        for row in points.chunks(dim) {
            for (m, x) in mean.iter_mut().zip(row) {
                *m += x / n;
            }
        }
        for row in points.chunks(dim) {
            for ((v, x), m) in var.iter_mut().zip(row).zip(&mean) {
                *v += (x - m) * (x - m) / n;
            }
        }
        let std: Vec<f64> = var.iter().map(|v| v.sqrt().max(1e-12)).collect();
        for row in points.chunks_mut(dim) {
            for ((x, m), s) in row.iter_mut().zip(&mean).zip(&std) {
                *x = (*x - m) / s;
            }
        }
        Standardizer { mean, std }
    }
}

/// A set of snapshots, row-major `[n, dim]`.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub kind: DatasetKind,
    pub dim: usize,
    pub points: Vec<f32>,
    /// How raw coordinates were standardised (two moons, Lorenz, a file by default).
    pub standardizer: Option<Standardizer>,
    /// The true velocity at each snapshot, in the same (standardised) coordinates, where it
    /// is known: Lorenz's own field, or a file's velocities. The "|cos| to the truth"
    /// metrics compare the flows with it.
    pub velocity: Option<Vec<f32>>,
}

impl Dataset {
    /// The snapshots `settings` describe: drawn (built-in systems, which cannot fail) or read
    /// from the user's file.
    pub fn generate(settings: &DatasetSettings, seed: u64) -> Result<Self, table::DataError> {
        let mut rng = StdRng::seed_from_u64(seed ^ 0xDA7A_5E7D);
        let dim = settings.kind().dim();
        let (raw, standardise) = match &settings.source {
            Source::File(f) => return points_file::load(f, seed),
            Source::Ring(p) => (toy2d::ring(p.n, &mut rng), false),
            Source::TwoPeaks(p) => (toy2d::two_peaks(p.n, &mut rng), false),
            Source::TwoMoons(m) => (toy2d::two_moons(m.n, m.noise, &mut rng), true),
            Source::Lorenz(l) => (
                lorenz::trajectories(l.runs, l.steps_per_run, l.dt, l.system(), &mut rng),
                true,
            ),
            Source::GrayScott(_) | Source::Alife(_) | Source::Images(_) => {
                panic!("image snapshots are made by data::snapshots, not as points")
            }
        };
        let mut raw = raw;
        let standardizer = standardise.then(|| Standardizer::fit_apply(&mut raw, dim));
        let points: Vec<f32> = raw.iter().map(|&x| x as f32).collect();
        let velocity = standardizer
            .as_ref()
            .zip(settings.lorenz())
            .map(|(st, l)| lorenz::field_standardised(&points, st, l.system()));
        Ok(Dataset {
            kind: settings.kind(),
            dim,
            points,
            standardizer,
            velocity,
        })
    }

    pub fn len(&self) -> usize {
        self.points.len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The first `n` points (the data are already in random order), row-major.
    pub fn head(&self, n: usize) -> Vec<f32> {
        self.points[..n.min(self.len()) * self.dim].to_vec()
    }

    /// An evenly spread subset of `n` points, row-major (Lorenz data are in time order
    /// within each run, so a prefix would cover one run only).
    pub fn spread(&self, n: usize) -> Vec<f32> {
        self.spread_of(&self.points, n)
    }

    /// The true velocities at the states [`Dataset::spread`] gives, where they are known.
    pub fn spread_truth(&self, n: usize) -> Option<Vec<f32>> {
        self.velocity.as_ref().map(|v| self.spread_of(v, n))
    }

    fn spread_of(&self, rows: &[f32], n: usize) -> Vec<f32> {
        let len = self.len();
        let n = n.min(len);
        (0..n)
            .flat_map(|i| {
                let j = i * len / n;
                rows[j * self.dim..(j + 1) * self.dim].iter().copied()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::{DatasetSettings, LorenzData, Moons, PointCount, Source};

    #[test]
    fn an_atomic_write_lands_whole_or_leaves_the_old_file() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.bin");
        write_atomically(&path, |f| f.write_all(b"first")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        // A write that fails halfway leaves the previous file and no part file.
        let failed = write_atomically(&path, |f| {
            f.write_all(b"half")?;
            Err::<(), _>(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err_and(|e| e.to_string() == "disk full"));
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert!(!part_path(&path).exists());
        assert_eq!(part_path(&path), dir.path().join("sub/out.bin.part"));
    }

    fn settings(kind: DatasetKind) -> DatasetSettings {
        let source = match kind {
            DatasetKind::Lorenz => Source::Lorenz(LorenzData {
                steps_per_run: 400,
                runs: 3,
                ..Default::default()
            }),
            DatasetKind::TwoMoons => Source::TwoMoons(Moons {
                n: 2000,
                ..Default::default()
            }),
            DatasetKind::Ring => Source::Ring(PointCount { n: 2000 }),
            DatasetKind::TwoPeaks => Source::TwoPeaks(PointCount { n: 2000 }),
            _ => unreachable!("point kinds only"),
        };
        DatasetSettings::new(source)
    }

    #[test]
    fn seeded_and_deterministic() {
        for kind in [
            DatasetKind::Ring,
            DatasetKind::TwoPeaks,
            DatasetKind::TwoMoons,
            DatasetKind::Lorenz,
        ] {
            let a = Dataset::generate(&settings(kind), 7).unwrap();
            let b = Dataset::generate(&settings(kind), 7).unwrap();
            let c = Dataset::generate(&settings(kind), 8).unwrap();
            assert_eq!(a.points, b.points);
            assert_ne!(a.points, c.points);
            assert!(a.points.iter().all(|x| x.is_finite()));
        }
    }

    #[test]
    fn standardised_sets_have_unit_moments() {
        let d = Dataset::generate(&settings(DatasetKind::Lorenz), 1).unwrap();
        assert_eq!(d.len(), 1200);
        for axis in 0..3 {
            let col: Vec<f64> = d
                .points
                .iter()
                .skip(axis)
                .step_by(3)
                .map(|&x| x as f64)
                .collect();
            let m = col.iter().sum::<f64>() / col.len() as f64;
            let v = col.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / col.len() as f64;
            assert!(
                m.abs() < 1e-4 && (v - 1.0).abs() < 1e-3,
                "axis {axis}: {m} {v}"
            );
        }
    }
}
