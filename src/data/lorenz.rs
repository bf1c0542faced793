//! The Lorenz system: data trajectories and the true field (for |cos| to ground truth).

use super::Standardizer;
use rand::RngExt;
use rand::rngs::StdRng;

pub const SIGMA: f64 = 10.0;
pub const RHO: f64 = 28.0;
pub const BETA: f64 = 8.0 / 3.0;

/// Steps thrown away so every kept state lies on the attractor, not on the way to it.
const BURN_IN: usize = 1000;

pub fn rhs(x: [f64; 3]) -> [f64; 3] {
    [
        SIGMA * (x[1] - x[0]),
        x[0] * (RHO - x[2]) - x[1],
        x[0] * x[1] - BETA * x[2],
    ]
}

pub fn rk4_step(x: [f64; 3], dt: f64) -> [f64; 3] {
    let add =
        |a: [f64; 3], b: [f64; 3], h: f64| [a[0] + h * b[0], a[1] + h * b[1], a[2] + h * b[2]];
    let k1 = rhs(x);
    let k2 = rhs(add(x, k1, dt / 2.0));
    let k3 = rhs(add(x, k2, dt / 2.0));
    let k4 = rhs(add(x, k3, dt));
    std::array::from_fn(|i| x[i] + dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// `runs` trajectories of `steps` RK4 steps from random starts, row-major `[runs*steps, 3]`.
pub fn trajectories(runs: usize, steps: usize, dt: f64, rng: &mut StdRng) -> Vec<f64> {
    let mut out = Vec::with_capacity(runs * steps * 3);
    for _ in 0..runs {
        let mut x = [
            rng.random_range(-15.0..15.0),
            rng.random_range(-20.0..20.0),
            rng.random_range(5.0..45.0),
        ];
        for _ in 0..BURN_IN {
            x = rk4_step(x, dt);
        }
        for _ in 0..steps {
            x = rk4_step(x, dt);
            out.extend(x);
        }
    }
    out
}

/// The true Lorenz field expressed in standardised coordinates z = (x - mean) / std.
pub fn field_standardised(z: &[f32], st: &Standardizer) -> Vec<f32> {
    z.chunks(3)
        .flat_map(|q| {
            let x: [f64; 3] = std::array::from_fn(|i| q[i] as f64 * st.std[i] + st.mean[i]);
            let f = rhs(x);
            (0..3)
                .map(move |i| (f[i] / st.std[i]) as f32)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn trajectories_live_on_the_butterfly() {
        let mut rng = StdRng::seed_from_u64(3);
        let p = trajectories(2, 3000, 0.01, &mut rng);
        // Both wings are visited and z stays in the attractor's range.
        let left = p.chunks(3).filter(|q| q[0] < 0.0).count();
        assert!(left > 500 && left < 5500, "{left}");
        assert!(p.chunks(3).all(|q| q[2] > 0.0 && q[2] < 55.0));
    }
}
