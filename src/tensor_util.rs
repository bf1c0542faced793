//! Moving rows between host `Vec<f32>` and device tensors, and randomness a computation
//! owns.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use rand::RngExt;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;

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

/// Standard normal noise of `shape` drawn from `rng` on the host: a computation that owns its
/// generator draws the same numbers whatever else used burn's process-wide one meanwhile
/// (the app's live views do, between training steps).
pub fn normal<const D: usize>(shape: [usize; D], rng: &mut StdRng, device: &Device) -> Tensor<D> {
    let n = shape.iter().product::<usize>();
    let v: Vec<f32> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// Uniform noise in `[lo, hi)` of `shape` from `rng`, on the host (see [`normal`]).
pub fn uniform<const D: usize>(
    shape: [usize; D],
    lo: f32,
    hi: f32,
    rng: &mut StdRng,
    device: &Device,
) -> Tensor<D> {
    let n = shape.iter().product::<usize>();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// A new model's parameters, drawn now and from `seed`. burn draws them lazily from the
/// device's one generator at their first use, so a model built in one place and first run
/// after other work would depend on that work; seeding right before forcing them pins them
/// to the seed alone.
pub fn init_seeded<M: Module>(make: impl FnOnce() -> M, seed: u64, device: &Device) -> M {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    device.seed(seed);
    let model = make();
    model.visit(&mut Touch);
    model
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

/// Every float parameter of `m`, flattened in visiting order: two models compared by value
/// (their saved files also hold random parameter ids).
#[cfg(test)]
pub(crate) fn flat_params<M: Module>(m: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(to_vec(param.val()));
        }
    }
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0
}
