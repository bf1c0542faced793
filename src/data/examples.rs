//! The example snapshot files shipped in `assets/examples/` (`equiflow examples` writes
//! them again): a system none of the presets generates, with its true velocities, so a
//! newcomer can try `--data` and `--velocity` on something real.
//!
//! Thomas' cyclically symmetric attractor: dx/dt = sin y − b x, dy/dt = sin z − b y,
//! dz/dt = sin x − b z; chaotic for b = 0.208186.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use std::fmt::Write as _;

pub const THOMAS_B: f64 = 0.208186;

pub fn thomas_rhs(x: [f64; 3]) -> [f64; 3] {
    [
        x[1].sin() - THOMAS_B * x[0],
        x[2].sin() - THOMAS_B * x[1],
        x[0].sin() - THOMAS_B * x[2],
    ]
}

fn rk4(x: [f64; 3], dt: f64) -> [f64; 3] {
    let add =
        |a: [f64; 3], b: [f64; 3], h: f64| [a[0] + h * b[0], a[1] + h * b[1], a[2] + h * b[2]];
    let k1 = thomas_rhs(x);
    let k2 = thomas_rhs(add(x, k1, dt / 2.0));
    let k3 = thomas_rhs(add(x, k2, dt / 2.0));
    let k4 = thomas_rhs(add(x, k3, dt));
    std::array::from_fn(|i| x[i] + dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// `n` states of the Thomas attractor from `runs` trajectories (a burn-in onto the
/// attractor, then one state every `every` RK4 steps of 0.05), shuffled so no time order is
/// left, with the true velocity at each: `(states, velocities)`, row-major `[n, 3]`.
pub fn thomas(n: usize, seed: u64) -> (Vec<[f64; 3]>, Vec<[f64; 3]>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (runs, every, dt) = (20, 10, 0.05);
    let per_run = n.div_ceil(runs);
    let mut states = Vec::with_capacity(runs * per_run);
    for _ in 0..runs {
        let mut x: [f64; 3] = std::array::from_fn(|_| rng.random_range(-3.0..3.0));
        for _ in 0..4000 {
            x = rk4(x, dt);
        }
        for _ in 0..per_run {
            for _ in 0..every {
                x = rk4(x, dt);
            }
            states.push(x);
        }
    }
    states.shuffle(&mut rng);
    states.truncate(n);
    let velocities = states.iter().map(|&x| thomas_rhs(x)).collect();
    (states, velocities)
}

/// Rows as CSV with a header, six significant digits (the file stays small; the
/// velocities are computed from the rounded states, so they are exact for what is written).
pub fn csv(header: &[&str], rows: &[[f64; 3]]) -> String {
    let mut s = header.join(",") + "\n";
    for r in rows {
        let cells: Vec<String> = r.iter().map(|v| format!("{v:.6}")).collect();
        let _ = writeln!(s, "{}", cells.join(","));
    }
    s
}

/// The Thomas example as the two CSV texts `assets/examples/` holds: the states and their
/// velocities (computed at the states as written, after rounding).
pub fn thomas_files(n: usize, seed: u64) -> (String, String) {
    let (states, _) = thomas(n, seed);
    let rounded: Vec<[f64; 3]> = states
        .iter()
        .map(|r| {
            r.map(|v| {
                format!("{v:.6}")
                    .parse()
                    .expect("a formatted number parses")
            })
        })
        .collect();
    let velocities: Vec<[f64; 3]> = rounded.iter().map(|&x| thomas_rhs(x)).collect();
    (
        csv(&["x", "y", "z"], &rounded),
        csv(&["x", "y", "z"], &velocities),
    )
}

/// Rows in the shipped example.
pub const THOMAS_ROWS: usize = 5000;
/// Its seed.
pub const THOMAS_SEED: u64 = 7;

/// A pattern picture to crop (`assets/examples/pattern.png`): Gray–Scott 'fingerprints'
/// grown on a `side`² torus from seeded discs, v drawn dark on light, grey 8-bit. Periodic,
/// so its crops may wrap (`dataset.periodic = true`).
pub fn pattern_picture(side: usize, seed: u64) -> Vec<u8> {
    use super::gray_scott::{Grid, Regime, run};
    let mut rng = StdRng::seed_from_u64(seed);
    let mut grid = Grid::rest(side, side);
    for _ in 0..24 {
        let (cy, cx) = (rng.random_range(0..side), rng.random_range(0..side));
        grid.seed_disc(cy, cx, rng.random_range(2..6));
    }
    run(&Regime::Fingerprints.params(), &mut grid, PATTERN_STEPS);
    let top = grid.v.iter().fold(1e-6f32, |m, &v| m.max(v));
    grid.v
        .iter()
        .map(|&v| (255.0 * (1.0 - v / top)).round().clamp(0.0, 255.0) as u8)
        .collect()
}

/// The shipped pattern picture's side, seed and Gray–Scott steps.
pub const PATTERN_SIDE: usize = 160;
pub const PATTERN_SEED: u64 = 7;
pub const PATTERN_STEPS: usize = 6000;

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped picture is what this code makes, pixel for pixel.
    #[test]
    fn the_shipped_pattern_picture_is_made_by_our_own_code() {
        let grey = pattern_picture(PATTERN_SIDE, PATTERN_SEED);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/examples/pattern.png");
        let shipped = image::open(path).map(|i| i.to_luma8().into_raw());
        assert!(
            shipped.as_ref().is_ok_and(|s| *s == grey),
            "assets/examples/pattern.png differs from what the code makes: rebuild it with \
             `equiflow examples --out assets/examples`"
        );
        // A pattern, not a blank: both inks cover a good share of the picture.
        let dark = grey.iter().filter(|&&g| g < 128).count() as f64 / grey.len() as f64;
        assert!((0.15..0.85).contains(&dark), "dark share {dark}");
    }

    /// The shipped files are what this code makes (rebuild them with `equiflow examples
    /// --out assets/examples` when it changes).
    #[test]
    fn the_shipped_example_is_made_by_our_own_code() {
        let (states, velocities) = thomas_files(THOMAS_ROWS, THOMAS_SEED);
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/examples");
        let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).unwrap_or_default();
        assert!(
            read("thomas.csv") == states && read("thomas-velocity.csv") == velocities,
            "assets/examples differ from what the code makes: rebuild them with \
             `equiflow examples --out assets/examples`"
        );
    }

    #[test]
    fn thomas_states_stay_on_the_bounded_attractor() {
        let (s, v) = thomas(400, 1);
        assert_eq!((s.len(), v.len()), (400, 400));
        assert!(s.iter().flatten().all(|x| x.abs() < 6.0));
        // Not collapsed onto a fixed point: the states spread over several units.
        let spread = s.iter().map(|r| r[0]).fold(f64::NEG_INFINITY, f64::max)
            - s.iter().map(|r| r[0]).fold(f64::INFINITY, f64::min);
        assert!(spread > 3.0, "{spread}");
    }
}
