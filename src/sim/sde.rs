//! Simulating images (METHOD §5): dx = (v + eta s) dt + sqrt(2 eta dt) dW, Heun
//! predictor–corrector with the same noise in both stages. The eta-terms alone are Langevin
//! dynamics, which keep p_tau; v keeps it too, and moves it.

use burn::tensor::Tensor;
use rand::rngs::StdRng;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sde {
    pub eta: f64,
    pub dt: f64,
}

/// A state `x` at the score's noise level together with its score `s`, so each step
/// evaluates the score twice rather than three times.
#[derive(Clone)]
pub struct State {
    pub x: Tensor<4>,
    pub s: Tensor<4>,
}

impl Sde {
    /// The state at `x`.
    pub fn start(x: Tensor<4>, score: &dyn Fn(Tensor<4>) -> Tensor<4>) -> State {
        let s = score(x.clone());
        State { x, s }
    }

    /// One Heun step. `v(x, s)` is the flow at state x with score s (for the training-free
    /// flow K * s, for a trained NCA a function of x); the noise comes from `rng`.
    pub fn step(
        &self,
        st: State,
        score: &dyn Fn(Tensor<4>) -> Tensor<4>,
        v: &dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
        rng: &mut StdRng,
    ) -> State {
        let drift = |x: Tensor<4>, s: Tensor<4>| v(x, s.clone()) + s.mul_scalar(self.eta);
        let noise = crate::tensor_util::normal(st.x.dims(), rng, &st.x.device())
            .mul_scalar((2.0 * self.eta * self.dt).sqrt());
        let f0 = drift(st.x.clone(), st.s);
        let xp = st.x.clone() + f0.clone().mul_scalar(self.dt) + noise.clone();
        let fp = drift(xp.clone(), score(xp));
        let x = st.x + (f0 + fp).mul_scalar(0.5 * self.dt) + noise;
        Sde::start(x, score)
    }
}

/// A running average: value ← (1 − w) value + w x.
pub struct Ema {
    pub value: Tensor<4>,
    pub w: f64,
}

impl Ema {
    pub fn update(&mut self, x: Tensor<4>) {
        self.value = self.value.clone().mul_scalar(1.0 - self.w) + x.mul_scalar(self.w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::to_vec;
    use burn::tensor::Device;

    /// On a standard Gaussian (s = −x) with a rotation as v, Heun's drift rotates the state
    /// and Langevin keeps its variance: after many steps the pixel variance stays near 1.
    #[test]
    fn langevin_with_a_rotation_keeps_a_gaussian() {
        let device = Device::flex();
        let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(2);
        let sde = Sde { eta: 0.5, dt: 0.05 };
        let score = |x: Tensor<4>| x.neg();
        let rotate = |_x: Tensor<4>, s: Tensor<4>| {
            let [b, _, h, w] = s.dims();
            let (a, c) = (s.clone().narrow(1, 0, 1), s.narrow(1, 1, 1));
            Tensor::cat(vec![c, a.neg()], 1).reshape([b, 2, h, w])
        };
        let x = crate::tensor_util::normal([4, 2, 16, 16], &mut rng, &device);
        let mut st = Sde::start(x, &score);
        for _ in 0..200 {
            st = sde.step(st, &score, &rotate, &mut rng);
        }
        let v = to_vec(st.x);
        let var = v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32;
        assert!((var - 1.0).abs() < 0.1, "variance {var}");
    }
}
