//! Simulating a field forward in time.

pub mod ode;
