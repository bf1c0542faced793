//! The central views. Each draws what the worker last sent; none computes.

pub mod field2d;
pub mod help;
pub mod lorenz3d;
pub mod nca_view;
pub mod paint_view;
pub mod pattern;
pub mod plane;
pub mod plots;
pub mod solutions;
