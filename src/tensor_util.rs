//! Moving rows between host `Vec<f32>` and device tensors.

use burn::tensor::{Device, Tensor, TensorData};

/// Row-major `[n, dim]` host data as a tensor on `device`.
pub fn from_rows(data: &[f32], dim: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(data.to_vec(), [data.len() / dim, dim]),
        device,
    )
}

/// A host copy of any float tensor, flattened row-major.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("converted to f32 just above")
}

/// The single value of a one-element tensor.
pub fn scalar<const D: usize>(t: Tensor<D>) -> f64 {
    to_vec(t)[0] as f64
}
