//! Gray–Scott reaction–diffusion (METHOD §6): a plain-Rust stencil, not a neural net.
//!
//! du = Du lap(u) - u v² + F (1 - u),  dv = Dv lap(v) + u v² - (F + k) v,
//! 5-point Laplacian on a periodic grid, explicit Euler with dt = 1, clamped to [0, 1].
//! Rows are updated in parallel (rayon); the interior of a row has no wrap-around, so the
//! compiler can vectorise it.

use rand::RngExt;
use rand::rngs::StdRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub f: f32,
    pub k: f32,
    pub du: f32,
    pub dv: f32,
}

impl Params {
    const fn new(f: f32, k: f32) -> Self {
        Self {
            f,
            k,
            du: 0.16,
            dv: 0.08,
        }
    }

    const fn slow(f: f32, k: f32) -> Self {
        Self {
            f,
            k,
            du: 0.10,
            dv: 0.05,
        }
    }
}

/// The fifteen named regimes of METHOD §6 (`dataset.pattern` in a preset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    Life,
    Waves,
    Spirals,
    Maze,
    Spots,
    Dots,
    Stripes,
    Holes,
    Worms,
    Bubbles,
    Fingerprints,
    USkate,
    Chaos,
    Solitons,
    PulsatingSolitons,
}

impl Regime {
    pub const ALL: [Regime; 15] = [
        Regime::Life,
        Regime::Waves,
        Regime::Spirals,
        Regime::Maze,
        Regime::Spots,
        Regime::Dots,
        Regime::Stripes,
        Regime::Holes,
        Regime::Worms,
        Regime::Bubbles,
        Regime::Fingerprints,
        Regime::USkate,
        Regime::Chaos,
        Regime::Solitons,
        Regime::PulsatingSolitons,
    ];

    /// The name a preset file uses.
    pub fn name(self) -> &'static str {
        match self {
            Regime::Life => "life",
            Regime::Waves => "waves",
            Regime::Spirals => "spirals",
            Regime::Maze => "maze",
            Regime::Spots => "spots",
            Regime::Dots => "dots",
            Regime::Stripes => "stripes",
            Regime::Holes => "holes",
            Regime::Worms => "worms",
            Regime::Bubbles => "bubbles",
            Regime::Fingerprints => "fingerprints",
            Regime::USkate => "u_skate",
            Regime::Chaos => "chaos",
            Regime::Solitons => "solitons",
            Regime::PulsatingSolitons => "pulsating_solitons",
        }
    }

    pub fn from_name(name: &str) -> Option<Regime> {
        Regime::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The regime's feed, kill and diffusion rates.
    pub fn params(self) -> Params {
        match self {
            Regime::Life => Params::new(0.006, 0.045),
            Regime::Waves => Params::new(0.018, 0.049),
            Regime::Spirals => Params::new(0.007, 0.028),
            Regime::Maze => Params::new(0.029, 0.057),
            Regime::Spots => Params::new(0.035, 0.065),
            Regime::Dots => Params::new(0.04, 0.07),
            Regime::Stripes => Params::new(0.035, 0.060),
            Regime::Holes => Params::new(0.039, 0.058),
            Regime::Worms => Params::new(0.046, 0.063),
            Regime::Bubbles => Params::new(0.090, 0.059),
            Regime::Fingerprints => Params::new(0.040, 0.064),
            Regime::USkate => Params::new(0.062, 0.061),
            Regime::Chaos => Params::slow(0.026, 0.051),
            Regime::Solitons => Params::slow(0.030, 0.060),
            Regime::PulsatingSolitons => Params::slow(0.025, 0.060),
        }
    }
}

/// One H×W state: the two concentrations, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub h: usize,
    pub w: usize,
    pub u: Vec<f32>,
    pub v: Vec<f32>,
}

impl Grid {
    /// The resting state u = 1, v = 0.
    pub fn rest(h: usize, w: usize) -> Self {
        Self {
            h,
            w,
            u: vec![1.0; h * w],
            v: vec![0.0; h * w],
        }
    }

    /// Between 1 and `max_discs` discs at random places, radius 2 to about a twelfth of
    /// the side (METHOD §6).
    pub fn seed_random(&mut self, max_discs: usize, rng: &mut StdRng) {
        let r_max = (self.h.min(self.w) / 12).max(3);
        for _ in 0..rng.random_range(1..=max_discs.max(1)) {
            let (cy, cx) = (rng.random_range(0..self.h), rng.random_range(0..self.w));
            self.seed_disc(cy, cx, rng.random_range(2..=r_max));
        }
    }

    /// Both planes mapped from [0, 1] to [-1, 1], `[u, v]` planes one after the other.
    pub fn to_scaled(&self) -> Vec<f32> {
        self.u
            .iter()
            .chain(&self.v)
            .map(|x| 2.0 * x - 1.0)
            .collect()
    }

    /// The inverse of `to_scaled` (values clamped back into [0, 1]).
    pub fn from_scaled(x: &[f32], h: usize, w: usize) -> Self {
        let n = h * w;
        assert_eq!(x.len(), 2 * n, "a scaled grid holds two planes");
        let back = |p: &[f32]| {
            p.iter()
                .map(|x| ((x + 1.0) / 2.0).clamp(0.0, 1.0))
                .collect()
        };
        Self {
            h,
            w,
            u: back(&x[..n]),
            v: back(&x[n..]),
        }
    }

    /// Set a disc (wrapping at the borders) to u = 0.5, v = 0.25: the seeds patterns grow from.
    pub fn seed_disc(&mut self, cy: usize, cx: usize, r: usize) {
        let (h, w, r2) = (self.h as isize, self.w as isize, (r * r) as isize);
        let r = r as isize;
        for dy in -r..=r {
            for dx in -r..=r {
                if dy * dy + dx * dx <= r2 {
                    let y = (cy as isize + dy).rem_euclid(h) as usize;
                    let x = (cx as isize + dx).rem_euclid(w) as usize;
                    self.u[y * self.w + x] = 0.5;
                    self.v[y * self.w + x] = 0.25;
                }
            }
        }
    }
}

#[inline(always)]
fn cell(p: &Params, u: f32, v: f32, lu: f32, lv: f32) -> (f32, f32) {
    let uvv = u * v * v;
    let nu = u + p.du * lu - uvv + p.f * (1.0 - u);
    let nv = v + p.dv * lv + uvv - (p.f + p.k) * v;
    (nu.clamp(0.0, 1.0), nv.clamp(0.0, 1.0))
}

/// One row `y` of the next state from `src`.
fn row(p: &Params, src: &Grid, y: usize, out_u: &mut [f32], out_v: &mut [f32]) {
    let (h, w) = (src.h, src.w);
    let (up, dn) = ((y + h - 1) % h, (y + 1) % h);
    fn r(a: &[f32], yy: usize, w: usize) -> &[f32] {
        &a[yy * w..(yy + 1) * w]
    }
    let (uc, uu, ud) = (r(&src.u, y, w), r(&src.u, up, w), r(&src.u, dn, w));
    let (vc, vu, vd) = (r(&src.v, y, w), r(&src.v, up, w), r(&src.v, dn, w));
    let lap = |c: &[f32], a: &[f32], b: &[f32], x: usize, l: usize, rr: usize| {
        a[x] + b[x] + c[l] + c[rr] - 4.0 * c[x]
    };
    for x in [0, w - 1] {
        let (l, rr) = ((x + w - 1) % w, (x + 1) % w);
        let (nu, nv) = cell(
            p,
            uc[x],
            vc[x],
            lap(uc, uu, ud, x, l, rr),
            lap(vc, vu, vd, x, l, rr),
        );
        (out_u[x], out_v[x]) = (nu, nv);
    }
    // The interior: no wrap-around, straight slices the compiler can vectorise.
    for x in 1..w.saturating_sub(1) {
        let lu = uu[x] + ud[x] + uc[x - 1] + uc[x + 1] - 4.0 * uc[x];
        let lv = vu[x] + vd[x] + vc[x - 1] + vc[x + 1] - 4.0 * vc[x];
        (out_u[x], out_v[x]) = cell(p, uc[x], vc[x], lu, lv);
    }
}

/// One Euler step from `src` into `dst` (same size), rows in parallel.
pub fn step(p: &Params, src: &Grid, dst: &mut Grid) {
    assert!(
        src.h >= 3 && src.w >= 3,
        "Gray–Scott needs a grid of at least 3×3"
    );
    let w = src.w;
    dst.u
        .par_chunks_mut(w)
        .zip(dst.v.par_chunks_mut(w))
        .enumerate()
        .for_each(|(y, (ou, ov))| row(p, src, y, ou, ov));
}

/// One Euler step on this thread only: for batches, where the samples are the parallel
/// unit and splitting a small grid's rows would only add overhead.
pub fn step_serial(p: &Params, src: &Grid, dst: &mut Grid) {
    let w = src.w;
    for (y, (ou, ov)) in dst.u.chunks_mut(w).zip(dst.v.chunks_mut(w)).enumerate() {
        row(p, src, y, ou, ov);
    }
}

/// `steps` steps in place (two buffers swap).
pub fn run(p: &Params, grid: &mut Grid, steps: usize) {
    run_with(p, grid, steps, step);
}

fn run_with(p: &Params, grid: &mut Grid, steps: usize, f: fn(&Params, &Grid, &mut Grid)) {
    let mut other = grid.clone();
    for _ in 0..steps {
        f(p, grid, &mut other);
        std::mem::swap(grid, &mut other);
    }
}

/// `steps` steps on this thread only.
pub fn run_serial(p: &Params, grid: &mut Grid, steps: usize) {
    run_with(p, grid, steps, step_serial);
}

/// Many grids `steps` steps each, the grids in parallel (each on one thread).
pub fn run_batch(p: &Params, grids: &mut [Grid], steps: usize) {
    grids.par_iter_mut().for_each(|g| run_serial(p, g, steps));
}

/// The textbook version: one thread, modulo indexing everywhere. The reference that
/// `step` must equal and that `bench` compares against.
pub fn step_naive(p: &Params, src: &Grid, dst: &mut Grid) {
    let (h, w) = (src.h, src.w);
    let at = |a: &[f32], y: usize, x: usize| a[(y % h) * w + (x % w)];
    for y in 0..h {
        for x in 0..w {
            let lap = |a: &[f32]| {
                at(a, y + h - 1, x) + at(a, y + 1, x) + at(a, y, x + w - 1) + at(a, y, x + 1)
                    - 4.0 * at(a, y, x)
            };
            let (nu, nv) = cell(
                p,
                at(&src.u, y, x),
                at(&src.v, y, x),
                lap(&src.u),
                lap(&src.v),
            );
            dst.u[y * w + x] = nu;
            dst.v[y * w + x] = nv;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded(h: usize, w: usize) -> Grid {
        let mut g = Grid::rest(h, w);
        g.seed_disc(3, 4, 3);
        g.seed_disc(h - 2, w - 1, 4); // wraps across both borders
        g
    }

    #[test]
    fn the_fast_step_equals_the_reference_and_wraps_periodically() {
        let p = Regime::Maze.params();
        let (mut a, mut b) = (seeded(17, 23), seeded(17, 23));
        let (mut a2, mut b2) = (a.clone(), b.clone());
        for _ in 0..50 {
            step(&p, &a, &mut a2);
            step_naive(&p, &b, &mut b2);
            std::mem::swap(&mut a, &mut a2);
            std::mem::swap(&mut b, &mut b2);
        }
        assert_eq!(a, b);
        // Shifting the start shifts the result: no edge is special on a torus.
        let shift = |g: &Grid, sy: usize, sx: usize| {
            let mut s = g.clone();
            for y in 0..g.h {
                for x in 0..g.w {
                    let (ty, tx) = ((y + sy) % g.h, (x + sx) % g.w);
                    s.u[ty * g.w + tx] = g.u[y * g.w + x];
                    s.v[ty * g.w + tx] = g.v[y * g.w + x];
                }
            }
            s
        };
        let mut moved = shift(&seeded(17, 23), 5, 11);
        run(&p, &mut moved, 50);
        assert_eq!(moved, shift(&a, 5, 11));
    }

    #[test]
    fn rest_stays_at_rest_and_values_stay_in_the_unit_interval() {
        let p = Regime::Maze.params();
        let mut g = Grid::rest(8, 8);
        run(&p, &mut g, 20);
        assert_eq!(g, Grid::rest(8, 8));
        let mut g = seeded(32, 32);
        run(&p, &mut g, 3000);
        assert!(g.u.iter().chain(&g.v).all(|x| (0.0..=1.0).contains(x)));
        // The seeds grew into a pattern rather than dying out.
        assert!(g.v.iter().any(|&v| v > 0.05));
    }

    #[test]
    fn the_batch_equals_one_grid_at_a_time_and_scaling_round_trips() {
        let p = Regime::Waves.params();
        let mut batch = vec![seeded(16, 20), seeded(16, 20)];
        batch[1].seed_disc(8, 8, 2);
        let mut one = batch[1].clone();
        run_batch(&p, &mut batch, 30);
        run(&p, &mut one, 30);
        assert_eq!(batch[1], one);
        let back = Grid::from_scaled(&one.to_scaled(), 16, 20);
        for (a, b) in back.u.iter().chain(&back.v).zip(one.u.iter().chain(&one.v)) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    /// Patterns form: from a few seed discs, v's spatial variance grows and the pattern
    /// spreads (in most samples: on a small grid some seeds die out).
    #[test]
    fn waves_and_maze_grow_patterns_from_the_seeds() {
        use rand::SeedableRng;
        let var = |g: &Grid| {
            let m = g.v.iter().sum::<f32>() / g.v.len() as f32;
            g.v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / g.v.len() as f32
        };
        for regime in [Regime::Waves, Regime::Maze] {
            let p = regime.params();
            let mut rng = StdRng::seed_from_u64(1);
            let mut grids: Vec<Grid> = (0..4)
                .map(|_| {
                    let mut g = Grid::rest(48, 48);
                    g.seed_random(8, &mut rng);
                    g
                })
                .collect();
            let before: Vec<f32> = grids.iter().map(var).collect();
            run_batch(&p, &mut grids, 3000);
            let grown = grids
                .iter()
                .zip(&before)
                .filter(|(g, v0)| {
                    let covered = g.v.iter().filter(|&&v| v > 0.1).count() as f32;
                    var(g) > **v0 && covered / g.v.len() as f32 > 0.1
                })
                .count();
            assert!(grown >= 3, "{regime:?}: only {grown} of 4 grew a pattern");
        }
    }

    #[test]
    fn all_fifteen_regimes_are_there_with_their_names_and_diffusion_rates() {
        assert_eq!(Regime::Life.params(), Params::new(0.006, 0.045));
        assert_eq!(Regime::Chaos.params().du, 0.10);
        assert_eq!(Regime::from_name("u_skate"), Some(Regime::USkate));
        assert!(Regime::from_name("nope").is_none());
        for r in Regime::ALL {
            assert_eq!(Regime::from_name(r.name()), Some(r));
            // The preset file's spelling is serde's.
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.name()));
        }
        let distinct: std::collections::HashSet<_> = Regime::ALL.iter().collect();
        assert_eq!(distinct.len(), 15);
    }
}
