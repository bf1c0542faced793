//! Networks. Each module that the equilibrium loss differentiates also pushes tangents
//! forward by hand (`jvp`), because burn 0.22 has no double backward.

pub mod attention_op;
pub mod batchnorm;
pub mod bcast_op;
pub mod circ_conv_op;
pub mod circ_kernels;
pub mod circular;
pub mod flow_grad;
pub mod flow_host;
pub mod flow_mlp;
pub mod flow_nca;
pub mod flow_stack;
pub mod group_norm_op;
pub mod jvp;
pub mod resample_op;
pub mod score_grad;
pub mod score_mlp;
pub mod score_resunet;
pub mod score_unet;
pub mod silu_op;
pub mod softmax_op;
pub mod time_features;
