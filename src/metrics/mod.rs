//! How success is measured (METHOD §7). Protocols are documented where they are computed.

pub mod alignment;
pub mod blob_motion;
pub mod blobs;
pub mod consistency;
pub mod gs_alignment;
pub mod icon_fidelity;
pub mod lyapunov;
pub mod mmd;
pub mod picture_look;
pub mod report;
