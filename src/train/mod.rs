//! Jobs: training (score, then flow), evaluation, and the run directory they write.

pub mod checkpoint;
pub mod cross;
pub mod evaluate;
pub mod flow_stack;
pub mod host;
pub mod job;
pub mod nca;
pub mod own_data;
pub mod sweep;
pub mod turing;
