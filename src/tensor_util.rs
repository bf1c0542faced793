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

/// burn's CPU backend keeps one random generator for the whole process, and the test
/// harness runs tests on parallel threads: a test that seeds it and then draws would get
/// numbers another test also drew from, so its result would depend on timing. Tests that
/// draw random tensors hold this lock for their whole body.
#[cfg(test)]
pub(crate) fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
