//! The Lorenz system: data trajectories and the true field (for |cos| to ground truth).

use super::Standardizer;
use rand::RngExt;
use rand::rngs::StdRng;

/// The system's parameters (`dataset.sigma`, `dataset.rho`, `dataset.beta`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lorenz {
    pub sigma: f64,
    pub rho: f64,
    pub beta: f64,
}

impl Lorenz {
    /// The classic chaotic attractor.
    pub const CLASSIC: Lorenz = Lorenz {
        sigma: 10.0,
        rho: 28.0,
        beta: 8.0 / 3.0,
    };
}

/// Steps thrown away so every kept state lies on the attractor, not on the way to it.
const BURN_IN: usize = 1000;

pub fn rhs(x: [f64; 3], p: Lorenz) -> [f64; 3] {
    [
        p.sigma * (x[1] - x[0]),
        x[0] * (p.rho - x[2]) - x[1],
        x[0] * x[1] - p.beta * x[2],
    ]
}

pub fn rk4_step(x: [f64; 3], dt: f64, p: Lorenz) -> [f64; 3] {
    let add =
        |a: [f64; 3], b: [f64; 3], h: f64| [a[0] + h * b[0], a[1] + h * b[1], a[2] + h * b[2]];
    let k1 = rhs(x, p);
    let k2 = rhs(add(x, k1, dt / 2.0), p);
    let k3 = rhs(add(x, k2, dt / 2.0), p);
    let k4 = rhs(add(x, k3, dt), p);
    std::array::from_fn(|i| x[i] + dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// `runs` trajectories of `steps` RK4 steps from random starts, row-major `[runs*steps, 3]`.
pub fn trajectories(runs: usize, steps: usize, dt: f64, p: Lorenz, rng: &mut StdRng) -> Vec<f64> {
    let mut out = Vec::with_capacity(runs * steps * 3);
    for _ in 0..runs {
        let mut x = [
            rng.random_range(-15.0..15.0),
            rng.random_range(-20.0..20.0),
            rng.random_range(5.0..45.0),
        ];
        for _ in 0..BURN_IN {
            x = rk4_step(x, dt, p);
        }
        for _ in 0..steps {
            x = rk4_step(x, dt, p);
            out.extend(x);
        }
    }
    out
}

/// The true Lorenz field expressed in standardised coordinates z = (x - mean) / std.
pub fn field_standardised(z: &[f32], st: &Standardizer, p: Lorenz) -> Vec<f32> {
    z.chunks(3)
        .flat_map(|q| {
            let x: [f64; 3] = std::array::from_fn(|i| q[i] as f64 * st.std[i] + st.mean[i]);
            let f = rhs(x, p);
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
        let p = trajectories(2, 3000, 0.01, Lorenz::CLASSIC, &mut rng);
        // Both wings are visited and z stays in the attractor's range.
        let left = p.chunks(3).filter(|q| q[0] < 0.0).count();
        assert!(left > 500 && left < 5500, "{left}");
        assert!(p.chunks(3).all(|q| q[2] > 0.0 && q[2] < 55.0));
    }

    /// Off the classic attractor the data follow the settings: with rho below 1 every
    /// trajectory falls to the origin; with rho = 28 they fill both wings.
    #[test]
    fn the_parameters_decide_where_trajectories_go() {
        let mut rng = StdRng::seed_from_u64(4);
        let calm = Lorenz {
            rho: 0.5,
            ..Lorenz::CLASSIC
        };
        let p = trajectories(2, 500, 0.01, calm, &mut rng);
        assert!(p.iter().all(|v| v.abs() < 1e-3), "not at the origin");
        assert_eq!(
            rhs([1.0, 2.0, 3.0], calm),
            [10.0, 1.0 * (0.5 - 3.0) - 2.0, 2.0 - 8.0]
        );
    }
}
