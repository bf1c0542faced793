//! Image snapshots made a chunk at a time (so the app can show progress and cancel):
//! Gray–Scott simulation for Turing patterns, icon tiling for artificial life.

use super::tiler::{TileGenerator, Tiling};
use super::turing::{DataError, Generator, ImageSet};
use crate::preset::{DatasetKind, DatasetSettings};

pub enum SnapshotMaker {
    Turing(Box<Generator>),
    Tiles(Box<TileGenerator>),
}

impl SnapshotMaker {
    pub fn new(d: &DatasetSettings, n: usize, seed: u64) -> Result<Self, DataError> {
        Ok(match d.kind {
            DatasetKind::Alife => Self::Tiles(Box::new(TileGenerator::new(
                Tiling::from_settings(d)?,
                n,
                seed,
            ))),
            _ => Self::Turing(Box::new(Generator::new(d, n, seed))),
        })
    }

    pub fn done(&self) -> usize {
        match self {
            Self::Turing(g) => g.done(),
            Self::Tiles(g) => g.done(),
        }
    }

    pub fn total(&self) -> usize {
        match self {
            Self::Turing(g) => g.total(),
            Self::Tiles(g) => g.total(),
        }
    }

    pub fn finished(&self) -> bool {
        match self {
            Self::Turing(g) => g.finished(),
            Self::Tiles(g) => g.finished(),
        }
    }

    pub fn step(&mut self) -> Result<(), DataError> {
        match self {
            Self::Turing(g) => g.step(),
            Self::Tiles(g) => g.step()?,
        }
        Ok(())
    }

    /// The finished set; Gray–Scott sets where every sample died are an error.
    pub fn finish(self, d: &DatasetSettings) -> Result<ImageSet, DataError> {
        match self {
            Self::Turing(g) => {
                let set = g.finish();
                set.check_alive(d)?;
                Ok(set)
            }
            Self::Tiles(g) => Ok(g.finish()),
        }
    }
}
