//! Classic RK4 for dx/dt = v(x), batched over the rows of a tensor.

use burn::tensor::Tensor;

/// One RK4 step of size `dt` for every row of `x`.
pub fn rk4_step(v: &dyn Fn(Tensor<2>) -> Tensor<2>, x: Tensor<2>, dt: f64) -> Tensor<2> {
    let k1 = v(x.clone());
    let k2 = v(x.clone() + k1.clone().mul_scalar(dt / 2.0));
    let k3 = v(x.clone() + k2.clone().mul_scalar(dt / 2.0));
    let k4 = v(x.clone() + k3.clone().mul_scalar(dt));
    x + (k1 + k2.mul_scalar(2.0) + k3.mul_scalar(2.0) + k4).mul_scalar(dt / 6.0)
}

/// `steps` RK4 steps; returns the final states.
pub fn integrate(
    v: &dyn Fn(Tensor<2>) -> Tensor<2>,
    x: Tensor<2>,
    dt: f64,
    steps: usize,
) -> Tensor<2> {
    (0..steps).fold(x, |x, _| rk4_step(v, x, dt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::{from_rows, to_vec};
    use burn::tensor::Device;

    #[test]
    fn rotation_is_integrated_to_fourth_order() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        // v = (-y, x): after time π the point (1, 0) is at (-1, 0).
        let rot = |x: Tensor<2>| {
            let [b, _] = x.dims();
            let xs = x.clone().slice([0..b, 0..1]);
            let ys = x.slice([0..b, 1..2]);
            Tensor::cat(vec![ys.neg(), xs], 1)
        };
        let x0 = from_rows(&[1.0, 0.0], 2, &device);
        let err = |steps: usize| {
            let x = to_vec(integrate(
                &rot,
                x0.clone(),
                std::f64::consts::PI / steps as f64,
                steps,
            ));
            (((x[0] + 1.0) as f64).powi(2) + (x[1] as f64).powi(2)).sqrt()
        };
        let (coarse, fine) = (err(10), err(20));
        assert!(coarse < 1e-3, "{coarse}");
        // Halving dt divides the error by ~16 (until f32 rounding).
        assert!(fine < coarse / 8.0 || fine < 1e-6, "{coarse} {fine}");
    }
}
