//! Turing-pattern snapshots: N Gray–Scott states of H×W after S steps from random seed
//! discs, both planes scaled to [-1, 1] (METHOD §6). Generating a full set takes minutes, so
//! it reports progress, honours cancel, and is cached beside the run.

use super::gray_scott::{self, Grid, Params};
use crate::preset::{DatasetSettings, GrayScottData, Source};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

pub use super::image_set::ImageSet;

impl ImageSet {
    /// Fail when no sample holds a pattern (nothing to learn).
    pub fn check_alive(&self, d: &GrayScottData) -> Result<(), DataError> {
        if self.n > 0 && self.alive_fraction() == 0.0 {
            return Err(DataError::AllDead {
                pattern: d.pattern.name().into(),
                size: d.size,
                steps: d.sim_steps,
                attempts: ATTEMPTS,
            });
        }
        Ok(())
    }
}

/// How a generation went: the images (None when cancelled) and the simulator's speed.
pub struct Generated {
    pub set: Option<ImageSet>,
    /// Cell updates per second while generating (0 when read from the cache).
    pub cell_updates_per_s: f64,
    pub from_cache: bool,
}

/// Samples are simulated in chunks of this many, so progress and cancel come often.
const CHUNK: usize = 32;

/// Generation cut into chunks, so a front can step it, show progress and stop between them.
pub struct Generator {
    params: Params,
    size: usize,
    discs: usize,
    sim_steps: usize,
    n: usize,
    seed: u64,
    data: Vec<f32>,
    seconds: f64,
    /// Simulator steps run, retries of dead samples included.
    steps_run: usize,
    /// Samples whose pattern died out in every attempt (kept, but counted).
    dead: usize,
}

/// Attempts at a living pattern per sample: in some regimes (and on small grids) the seed
/// discs can die out, leaving a blank image that teaches the model nothing. A dead attempt
/// is noticed within `CHECK_EVERY` steps, so retries cost little.
const ATTEMPTS: usize = 16;
const CHECK_EVERY: usize = 250;

/// A pattern is alive while some cell still holds v above this.
pub fn is_alive(g: &Grid) -> bool {
    g.v.iter().any(|&v| v > 0.05)
}

impl Generator {
    pub fn new(d: &GrayScottData, n: usize, seed: u64) -> Self {
        Self {
            params: d.params(),
            size: d.size,
            discs: d.discs,
            sim_steps: d.sim_steps,
            n,
            seed,
            data: Vec::with_capacity(n * 2 * d.size * d.size),
            seconds: 0.0,
            steps_run: 0,
            dead: 0,
        }
    }

    pub fn done(&self) -> usize {
        self.data.len() / (2 * self.size * self.size)
    }

    pub fn total(&self) -> usize {
        self.n
    }

    pub fn finished(&self) -> bool {
        self.done() >= self.n
    }

    /// Samples whose pattern died in every attempt.
    pub fn dead(&self) -> usize {
        self.dead
    }

    /// Simulate the next chunk of samples, each on its own thread with its own seed (so
    /// the set does not depend on the number of threads).
    pub fn step(&mut self) {
        let first = self.done();
        let m = CHUNK.min(self.n - first);
        let t0 = Instant::now();
        let (size, discs, steps, params) = (self.size, self.discs, self.sim_steps, self.params);
        let base = self.seed ^ 0x6A7_5C0A7;
        let results: Vec<(Grid, usize, bool)> = (first..first + m)
            .into_par_iter()
            .map(|i| {
                let mut rng = StdRng::seed_from_u64(base.wrapping_add(i as u64 * 0x9E37_79B9));
                let (mut tries, mut run) = (0, 0);
                loop {
                    let mut g = Grid::rest(size, size);
                    g.seed_random(discs, &mut rng);
                    let mut left = steps;
                    while left > 0 && is_alive(&g) {
                        let n = left.min(CHECK_EVERY);
                        gray_scott::run_serial(&params, &mut g, n);
                        (left, run) = (left - n, run + n);
                    }
                    tries += 1;
                    if is_alive(&g) || tries == ATTEMPTS {
                        let alive = is_alive(&g);
                        return (g, run, alive);
                    }
                }
            })
            .collect();
        for (g, run, alive) in results {
            self.data.extend(g.to_scaled());
            self.steps_run += run;
            self.dead += usize::from(!alive);
        }
        self.seconds += t0.elapsed().as_secs_f64();
    }

    /// Cell updates per second so far.
    pub fn speed(&self) -> f64 {
        let cells = self.steps_run * self.size * self.size;
        cells as f64 / self.seconds.max(1e-9)
    }

    pub fn finish(self) -> ImageSet {
        ImageSet {
            n: self.done(),
            channels: 2,
            h: self.size,
            w: self.size,
            data: self.data,
        }
    }
}

/// `n` samples seeded by `seed`. `progress(done, total)` is called between chunks and
/// returns false to cancel.
pub fn generate(
    d: &GrayScottData,
    n: usize,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Generated {
    let mut g = Generator::new(d, n, seed);
    while !g.finished() {
        if !progress(g.done(), n) {
            return Generated {
                set: None,
                cell_updates_per_s: 0.0,
                from_cache: false,
            };
        }
        g.step();
    }
    progress(n, n);
    Generated {
        cell_updates_per_s: g.speed(),
        set: Some(g.finish()),
        from_cache: false,
    }
}

/// What a cache file must match to be reused.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct CacheKey {
    version: u32,
    seed: u64,
    n: usize,
    settings: DatasetSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot write the dataset cache {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "every Gray–Scott '{pattern}' sample died out ({size}² grid, {steps} steps, \
         {attempts} attempts each): its seed discs do not grow into a pattern under these \
         settings. Try a larger dataset.size, more dataset.discs, or other F and k"
    )]
    AllDead {
        pattern: String,
        size: usize,
        steps: usize,
        attempts: usize,
    },
    #[error(transparent)]
    Target(#[from] super::icon::IconError),
    #[error(transparent)]
    Tiling(#[from] super::tiler::TileError),
    #[error(transparent)]
    Files(#[from] super::image_files::ImageFileError),
}

/// The cached set at `path` when it was made with the same settings, else a freshly
/// generated one written there. A damaged or stale cache is regenerated, never trusted.
pub fn load_or_generate(
    d: &GrayScottData,
    n: usize,
    seed: u64,
    path: &Path,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Generated, DataError> {
    let settings = DatasetSettings::new(Source::GrayScott(*d));
    if let Some(set) = read_cached(&settings, n, seed, path) {
        return Ok(Generated {
            set: Some(set),
            cell_updates_per_s: 0.0,
            from_cache: true,
        });
    }
    let g = generate(d, n, seed, progress);
    if let Some(set) = &g.set {
        write_cached(&settings, seed, path, set)?;
    }
    Ok(g)
}

fn key(d: &DatasetSettings, n: usize, seed: u64) -> CacheKey {
    CacheKey {
        version: 1,
        seed,
        n,
        // The seed is the key's own field (a sweep names it in the settings, a run does not).
        settings: DatasetSettings {
            seed: None,
            ..d.clone()
        },
    }
}

/// The set cached at `path`, if it was made with exactly these settings.
pub fn read_cached(d: &DatasetSettings, n: usize, seed: u64, path: &Path) -> Option<ImageSet> {
    read_cache(path, &key(d, n, seed))
}

/// Cache `set` at `path` (creating its folder).
pub fn write_cached(
    d: &DatasetSettings,
    seed: u64,
    path: &Path,
    set: &ImageSet,
) -> Result<(), DataError> {
    let err = |source| DataError::Write {
        path: path.display().to_string(),
        source,
    };
    super::create_parent(path).map_err(err)?;
    write_cache(path, &key(d, set.n, seed), set).map_err(err)
}

fn read_cache(path: &Path, key: &CacheKey) -> Option<ImageSet> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .read_to_end(&mut bytes)
        .ok()?;
    let nl = bytes.iter().position(|&b| b == b'\n')?;
    let found: CacheKey = serde_json::from_slice(&bytes[..nl]).ok()?;
    if &found != key {
        return None;
    }
    let body = &bytes[nl + 1..];
    let (_, size) = key.settings.images()?;
    // Two channels for Gray–Scott, three for artificial life: the length says which.
    let per_channel = key.n * size * size * 4;
    let channels = body.len() / per_channel.max(1);
    if per_channel == 0 || body.len() != channels * per_channel || !(1..=4).contains(&channels) {
        return None;
    }
    let data = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Some(ImageSet {
        n: key.n,
        channels,
        h: size,
        w: size,
        data,
    })
}

fn write_cache(path: &Path, key: &CacheKey, set: &ImageSet) -> std::io::Result<()> {
    super::write_atomically(path, |f| {
        serde_json::to_writer(&mut *f, key)?;
        f.write_all(b"\n")?;
        for x in &set.data {
            f.write_all(&x.to_le_bytes())?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> GrayScottData {
        GrayScottData {
            pattern: gray_scott::Regime::Maze,
            size: 16,
            sim_steps: 40,
            ..Default::default()
        }
    }

    #[test]
    fn seeded_scaled_and_cancellable() {
        let d = small();
        let a = generate(&d, 40, 3, &mut |_, _| true).set.unwrap();
        let b = generate(&d, 40, 3, &mut |_, _| true).set.unwrap();
        let c = generate(&d, 40, 4, &mut |_, _| true).set.unwrap();
        assert_eq!(a, b);
        assert_ne!(a.data, c.data);
        assert_eq!(a.data.len(), 40 * 2 * 16 * 16);
        assert!(a.data.iter().all(|x| (-1.0..=1.0).contains(x)));
        let mut calls = 0;
        let g = generate(&d, 40, 3, &mut |_, _| {
            calls += 1;
            calls < 2
        });
        assert!(g.set.is_none(), "cancel after the first chunk");
    }

    #[test]
    fn the_cache_is_reused_only_for_the_same_settings() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("dataset.bin");
        let d = small();
        let first = load_or_generate(&d, 8, 1, &path, &mut |_, _| true).unwrap();
        assert!(!first.from_cache);
        let again = load_or_generate(&d, 8, 1, &path, &mut |_, _| true).unwrap();
        assert!(again.from_cache);
        assert_eq!(first.set, again.set);
        let other = GrayScottData {
            sim_steps: 41,
            ..small()
        };
        assert!(
            !load_or_generate(&other, 8, 1, &path, &mut |_, _| true)
                .unwrap()
                .from_cache
        );
        // A damaged file is regenerated rather than read.
        std::fs::write(&path, b"garbage").unwrap();
        let fixed = load_or_generate(&other, 8, 1, &path, &mut |_, _| true).unwrap();
        assert!(!fixed.from_cache && fixed.set.is_some());
    }

    #[test]
    fn a_three_channel_set_round_trips_through_the_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("dataset.bin");
        let d = DatasetSettings::new(Source::Alife(crate::preset::AlifeData {
            size: 6,
            ..Default::default()
        }));
        let set = ImageSet {
            n: 2,
            channels: 3,
            h: 6,
            w: 6,
            data: (0..2 * 3 * 36).map(|i| i as f32 / 100.0).collect(),
        };
        write_cached(&d, 5, &path, &set).unwrap();
        assert_eq!(read_cached(&d, 2, 5, &path), Some(set));
        assert_eq!(read_cached(&d, 3, 5, &path), None, "another n");
    }
}
