//! equiflow: from snapshots of a system to dynamics that keep their distribution.
//!
//! Data flows one way: `data` → score model (`nn::score_mlp`, `method::diffusion`) →
//! flow (`nn::flow_mlp`, `method::equilibrium`, `method::skew`) → simulation (`sim`) →
//! metrics and fronts (the CLI in `main.rs`, the app in `ui`, driven by the `worker` thread). See `shared/ARCHITECTURE.md`.

pub mod backend;
pub mod bench;
pub mod bench_images;
pub mod data;
pub mod method;
pub mod metrics;
pub mod nn;
pub mod preset;
pub mod sim;
pub mod tensor_util;
pub mod train;
pub mod ui;
pub mod worker;
