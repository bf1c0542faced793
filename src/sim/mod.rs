//! Simulating a field forward in time.

pub mod ode;
pub mod particles;
pub mod sde;
