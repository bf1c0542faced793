//! Particles advected by a field, with the short trails the flow views draw, and
//! streamlines for the static picture of a field.

use super::ode::rk4_step;
use crate::tensor_util::{from_rows, to_vec};
use burn::tensor::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

type FieldFn<'a> = &'a dyn Fn(Tensor<2>) -> Tensor<2>;

/// Particles with a ring buffer of their last `len` positions.
pub struct Particles {
    dim: usize,
    len: usize,
    pos: Vec<f32>,
    speed: Vec<f32>,
    /// `[len][n][dim]`; slot `head` holds the newest positions.
    history: Vec<f32>,
    head: usize,
    /// Where particles are (re)born: rows of `[_, dim]`.
    spawn: Vec<f32>,
    /// Per-axis `[lo, hi]`; a particle that leaves is reborn.
    bounds: Vec<[f32; 2]>,
    /// Chance per step that a particle is reborn, so trails keep covering the picture.
    respawn_rate: f64,
    rng: StdRng,
}

impl Particles {
    pub fn new(
        count: usize,
        len: usize,
        spawn: Vec<f32>,
        dim: usize,
        bounds: Vec<[f32; 2]>,
        respawn_rate: f64,
        seed: u64,
    ) -> Self {
        assert!(dim > 0 && spawn.len() >= dim && bounds.len() == dim);
        let mut p = Self {
            dim,
            len: len.max(1),
            pos: Vec::new(),
            speed: Vec::new(),
            history: Vec::new(),
            head: 0,
            spawn,
            bounds,
            respawn_rate,
            rng: StdRng::seed_from_u64(seed),
        };
        p.resize(count);
        p
    }

    pub fn count(&self) -> usize {
        self.speed.len()
    }

    pub fn positions(&self) -> &[f32] {
        &self.pos
    }

    /// Keep the first `count` particles, adding fresh ones as needed.
    pub fn resize(&mut self, count: usize) {
        let old = self.count();
        let (d, n_old) = (self.dim, old);
        let mut history = vec![0.0; self.len * count * d];
        for slot in 0..self.len {
            for i in 0..count.min(n_old) {
                let (src, dst) = ((slot * n_old + i) * d, (slot * count + i) * d);
                history[dst..dst + d].copy_from_slice(&self.history[src..src + d]);
            }
        }
        self.history = history;
        self.pos.resize(count * d, 0.0);
        self.speed.resize(count, 0.0);
        for i in old..count {
            self.respawn(i);
        }
    }

    fn respawn(&mut self, i: usize) {
        let d = self.dim;
        let k = self.rng.random_range(0..self.spawn.len() / d);
        let p: Vec<f32> = self.spawn[k * d..(k + 1) * d].to_vec();
        self.pos[i * d..(i + 1) * d].copy_from_slice(&p);
        self.speed[i] = 0.0;
        let n = self.count();
        // A reborn particle's trail collapses onto it, so no line jumps across the view.
        for slot in 0..self.len {
            let at = (slot * n + i) * d;
            self.history[at..at + d].copy_from_slice(&p);
        }
    }

    fn inside(&self, i: usize) -> bool {
        let p = &self.pos[i * self.dim..(i + 1) * self.dim];
        p.iter()
            .zip(&self.bounds)
            .all(|(x, [lo, hi])| x.is_finite() && x >= lo && x <= hi)
    }

    /// One RK4 step of size `dt` for every particle.
    pub fn step(&mut self, v: FieldFn, dt: f64, device: &Device) {
        let n = self.count();
        if n == 0 {
            return;
        }
        let d = self.dim;
        let next = to_vec(rk4_step(v, from_rows(&self.pos, d, device), dt));
        for i in 0..n {
            let (a, b) = (&self.pos[i * d..(i + 1) * d], &next[i * d..(i + 1) * d]);
            let dist: f32 = a.iter().zip(b).map(|(x, y)| (y - x).powi(2)).sum();
            self.speed[i] = dist.sqrt() / dt as f32;
        }
        self.pos = next;
        self.head = (self.head + 1) % self.len;
        let at = self.head * n * d;
        self.history[at..at + n * d].copy_from_slice(&self.pos);
        for i in 0..n {
            if !self.inside(i) || self.rng.random_bool(self.respawn_rate.clamp(0.0, 1.0)) {
                self.respawn(i);
            }
        }
    }

    /// Trails as `[n, len, dim]`, oldest point first.
    pub fn trails(&self) -> Vec<f32> {
        let (n, d) = (self.count(), self.dim);
        let mut out = Vec::with_capacity(n * self.len * d);
        for i in 0..n {
            for k in 1..=self.len {
                let slot = (self.head + k) % self.len;
                let at = (slot * n + i) * d;
                out.extend_from_slice(&self.history[at..at + d]);
            }
        }
        out
    }

    pub fn speeds(&self) -> &[f32] {
        &self.speed
    }

    pub fn trail_len(&self) -> usize {
        self.len
    }
}

/// Streamlines from `seeds` (`[n, dim]`): `steps` RK4 steps each, returned as
/// `[n, steps + 1, dim]`. A line that leaves `bounds` stays where it left.
pub fn streamlines(
    v: FieldFn,
    seeds: &[f32],
    dim: usize,
    dt: f64,
    steps: usize,
    bounds: &[[f32; 2]],
    device: &Device,
) -> Vec<f32> {
    let n = seeds.len() / dim;
    let mut frames = vec![seeds.to_vec()];
    let mut x = seeds.to_vec();
    for _ in 0..steps {
        let next = to_vec(rk4_step(v, from_rows(&x, dim, device), dt));
        for i in 0..n {
            let row = &next[i * dim..(i + 1) * dim];
            let ok = row
                .iter()
                .zip(bounds)
                .all(|(p, [lo, hi])| p.is_finite() && p >= lo && p <= hi);
            if ok {
                x[i * dim..(i + 1) * dim].copy_from_slice(row);
            }
        }
        frames.push(x.clone());
    }
    let mut out = Vec::with_capacity(n * (steps + 1) * dim);
    for i in 0..n {
        for f in &frames {
            out.extend_from_slice(&f[i * dim..(i + 1) * dim]);
        }
    }
    out
}

/// A `side × side` grid over the first two axes of `bounds` (other axes at their centre).
pub fn grid(bounds: &[[f32; 2]], side: usize) -> Vec<f32> {
    let side = side.max(2);
    let mut out = Vec::with_capacity(side * side * bounds.len());
    let at = |[lo, hi]: [f32; 2], k: usize| lo + (hi - lo) * (k as f32 + 0.5) / side as f32;
    for r in 0..side {
        for c in 0..side {
            for (axis, b) in bounds.iter().enumerate() {
                out.push(match axis {
                    0 => at(*b, c),
                    1 => at(*b, r),
                    _ => 0.5 * (b[0] + b[1]),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotation(x: Tensor<2>) -> Tensor<2> {
        let xs = x.clone().narrow(1, 0, 1);
        let ys = x.narrow(1, 1, 1);
        Tensor::cat(vec![ys.neg(), xs], 1)
    }

    fn radius(p: &[f32]) -> f32 {
        (p[0] * p[0] + p[1] * p[1]).sqrt()
    }

    #[test]
    fn particles_under_a_rotation_stay_on_their_circles_and_trails_follow() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let spawn = vec![1.0, 0.0, 0.0, 1.5, -0.5, 0.0];
        let bounds = vec![[-3.0, 3.0]; 2];
        let mut p = Particles::new(20, 8, spawn, 2, bounds, 0.0, 7);
        let r0: Vec<f32> = p.positions().chunks(2).map(radius).collect();
        for _ in 0..50 {
            p.step(&rotation, 0.05, &device);
        }
        for (i, r) in p.positions().chunks(2).map(radius).enumerate() {
            assert!((r - r0[i]).abs() < 1e-4, "{r} vs {}", r0[i]);
            // |v| = r for a rigid rotation.
            assert!((p.speeds()[i] - r).abs() < 1e-2, "{} vs {r}", p.speeds()[i]);
        }
        // The trail ends at the particle and is ordered in time: each point is one step
        // behind the next, i.e. rotated back by dt.
        let trails = p.trails();
        let len = p.trail_len();
        let newest = &trails[(len - 1) * 2..len * 2];
        assert_eq!(newest, &p.positions()[0..2]);
        let prev = &trails[(len - 2) * 2..(len - 1) * 2];
        let angle = |q: &[f32]| q[1].atan2(q[0]);
        let step = (angle(newest) - angle(prev)).rem_euclid(std::f32::consts::TAU);
        assert!((step - 0.05).abs() < 1e-3, "{step}");
    }

    #[test]
    fn particles_that_leave_the_bounds_are_reborn_from_the_spawn_points() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let outward = |x: Tensor<2>| x.mul_scalar(10.0);
        let spawn = vec![0.5, 0.5];
        let mut p = Particles::new(5, 4, spawn, 2, vec![[-1.0, 1.0]; 2], 0.0, 1);
        p.step(&outward, 0.5, &device);
        for q in p.positions().chunks(2) {
            assert_eq!(q, &[0.5, 0.5]);
        }
        // The reborn trail collapsed onto the particle: no segment across the view.
        assert!(p.trails().chunks(2).all(|q| q == [0.5, 0.5]));
        p.resize(9);
        assert_eq!(p.count(), 9);
        assert_eq!(p.trails().len(), 9 * 4 * 2);
    }

    #[test]
    fn streamlines_of_a_rotation_are_circles() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let seeds = grid(&[[-1.0, 1.0], [-1.0, 1.0]], 3);
        assert_eq!(seeds.len(), 9 * 2);
        let lines = streamlines(&rotation, &seeds, 2, 0.1, 30, &[[-5.0, 5.0]; 2], &device);
        assert_eq!(lines.len(), 9 * 31 * 2);
        for (i, line) in lines.chunks(31 * 2).enumerate() {
            let r0 = radius(&seeds[i * 2..i * 2 + 2]);
            assert!(line.chunks(2).all(|q| (radius(q) - r0).abs() < 1e-4));
        }
        // A line whose next step would leave the bounds stops at the edge.
        let stuck = streamlines(
            &rotation,
            &[2.0, 0.0],
            2,
            0.5,
            3,
            &[[-2.1, 2.1]; 2],
            &device,
        );
        assert!(
            stuck
                .chunks(2)
                .all(|q| q[0].abs() <= 2.1 && q[1].abs() <= 2.1)
        );
    }
}
