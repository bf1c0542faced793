//! The panels around the views.

pub mod controls;
