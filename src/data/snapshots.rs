//! Image snapshots made a chunk at a time (so the app can show progress and cancel):
//! Gray–Scott simulation for Turing patterns, icon tiling for artificial life, the user's
//! pictures read.

use super::image_files::FileLoader;
use super::tiler::{TileGenerator, Tiling};
use super::turing::{DataError, Generator, ImageSet};
use crate::preset::{DatasetSettings, Source};

pub enum SnapshotMaker {
    Turing(Box<Generator>),
    Tiles(Box<TileGenerator>),
    Files(Box<FileLoader>),
}

impl SnapshotMaker {
    pub fn new(d: &DatasetSettings, n: usize, seed: u64) -> Result<Self, DataError> {
        Ok(match &d.source {
            Source::Alife(a) => Self::Tiles(Box::new(TileGenerator::new(
                Tiling::from_settings(a)?,
                n,
                seed,
            ))),
            Source::GrayScott(g) => Self::Turing(Box::new(Generator::new(g, n, seed))),
            Source::Images(i) => Self::Files(Box::new(FileLoader::new(&i.spec(), n, seed)?)),
            other => panic!("{:?} data are points, not images", other.kind()),
        })
    }

    pub fn done(&self) -> usize {
        match self {
            Self::Turing(g) => g.done(),
            Self::Tiles(g) => g.done(),
            Self::Files(g) => g.done(),
        }
    }

    pub fn total(&self) -> usize {
        match self {
            Self::Turing(g) => g.total(),
            Self::Tiles(g) => g.total(),
            Self::Files(g) => g.total(),
        }
    }

    pub fn finished(&self) -> bool {
        match self {
            Self::Turing(g) => g.finished(),
            Self::Tiles(g) => g.finished(),
            Self::Files(g) => g.finished(),
        }
    }

    pub fn step(&mut self) -> Result<(), DataError> {
        match self {
            Self::Turing(g) => g.step(),
            Self::Tiles(g) => g.step()?,
            Self::Files(g) => g.step()?,
        }
        Ok(())
    }

    /// The finished set; Gray–Scott sets where every sample died are an error.
    pub fn finish(self, d: &DatasetSettings) -> Result<ImageSet, DataError> {
        match self {
            Self::Turing(g) => {
                let set = g.finish();
                if let Some(gs) = d.gray_scott() {
                    set.check_alive(gs)?;
                }
                Ok(set)
            }
            Self::Tiles(g) => Ok(g.finish()),
            Self::Files(g) => Ok(g.finish()),
        }
    }
}
