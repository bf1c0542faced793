//! The science: diffusion (the score), the equilibrium loss (the learned flow) and the
//! skew-symmetric training-free flow. Nothing here knows about files or fronts.

pub mod diffusion;
pub mod equilibrium;
pub mod image_diffusion;
pub mod image_flow;
pub mod skew;
