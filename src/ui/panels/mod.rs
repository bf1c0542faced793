//! The panels around the views.

pub mod controls;
pub mod pattern_controls;
