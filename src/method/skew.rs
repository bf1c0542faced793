//! The training-free flow (METHOD §4): for any skew-symmetric D, v = D s satisfies
//! div(p D ∇log p) = div(D ∇p) = Σ D_ij ∂i∂j p = 0, because D is antisymmetric and the Hessian
//! symmetric. No second network, no training: only a score and a random D.
//!
//! On images the same holds for a convolution v = K * s over the channels (circular
//! padding) whose kernel is skew: K[o][i](d) = −K[i][o](−d) makes K antisymmetric as a linear
//! map on the torus.

use crate::nn::circular::pad_circular;
use crate::preset::{KernelKind, MixerAxis, SdeSettings};
use crate::tensor_util::from_rows;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

/// A seeded random antisymmetric `d × d` matrix with unit Frobenius norm, row-major.
pub fn random_antisymmetric(d: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5CE3_D00D);
    let mut m = vec![0f64; d * d];
    for i in 0..d {
        for j in (i + 1)..d {
            let g: f64 = StandardNormal.sample(&mut rng);
            m[i * d + j] = g;
            m[j * d + i] = -g;
        }
    }
    let norm = m.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    m.iter().map(|x| (x / norm) as f32).collect()
}

/// v = D s for row vectors: v = s Dᵀ.
pub fn apply(d_matrix: &[f32], s: Tensor<2>, device: &Device) -> Tensor<2> {
    let [_, d] = s.dims();
    let dt = from_rows(d_matrix, d, device).transpose();
    s.matmul(dt)
}

/// The colours a target paints with, for choosing the axis of a three-channel mixer.
///
/// The mixer K x = ω × x turns a colour about ω, and a colour along ω is not turned at all:
/// an icon whose ink lies near the axis hardly moves (`alife-dot` with mixer seed 0: its blue
/// kept 0.40 of its length under K and moved 1.03× its still speed; seed 1, 0.65 and 3.0×).
/// Held as the coverage-weighted second moment M of the unit directions d̂ from the white
/// background to each painted pixel's colour, so that uᵀMu / tr M is the mean cos² between
/// an axis u and the ink.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inks([[f64; 3]; 3]);

impl Inks {
    /// Candidate axes drawn per seed; the first within `NEAR_BEST` of the best is taken, so
    /// another seed gives another axis wherever the ink leaves a choice (one ink colour: any
    /// axis across it) and about the same where it does not (two inks: their cross product).
    const CANDIDATES: usize = 256;
    const NEAR_BEST: f64 = 0.9;

    /// From a premultiplied RGBA icon in [0, 1] (composited on white, a pixel's offset from
    /// white is rgb − alpha); None when nothing is painted.
    pub fn from_premultiplied(rgba: &[f32]) -> Option<Self> {
        let mut m = [[0f64; 3]; 3];
        let mut total = 0.0;
        for px in rgba.chunks_exact(4) {
            let a = f64::from(px[3]);
            let d = [0, 1, 2].map(|i| f64::from(px[i]) - a);
            let len = d.iter().map(|x| x * x).sum::<f64>().sqrt();
            // Near-white paint does not show, so it cannot move visibly either.
            if len < 0.05 {
                continue;
            }
            for i in 0..3 {
                for j in 0..3 {
                    m[i][j] += a * d[i] * d[j] / (len * len);
                }
            }
            total += a;
        }
        (total > 0.0).then_some(Self(m))
    }

    /// The share of the ink a turn about `u` moves: the mean sin² between `u` and the ink
    /// directions, 0 (every ink along u) to 1 (every ink across it).
    pub fn moved(&self, u: [f64; 3]) -> f64 {
        let uu: f64 = u.iter().map(|x| x * x).sum::<f64>().max(1e-300);
        let trace = self.0[0][0] + self.0[1][1] + self.0[2][2];
        let umu: f64 = (0..3)
            .flat_map(|i| (0..3).map(move |j| (i, j)))
            .map(|(i, j)| u[i] * self.0[i][j] * u[j])
            .sum();
        1.0 - umu / (uu * trace)
    }

    /// A seeded axis across the ink: of `CANDIDATES` random directions, the first that moves
    /// at least `NEAR_BEST` of what the best of them moves.
    pub fn axis(&self, seed: u64) -> [f64; 3] {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x14C5_A715);
        let candidates: Vec<([f64; 3], f64)> = (0..Self::CANDIDATES)
            .map(|_| {
                let u = [0; 3].map(|_| StandardNormal.sample(&mut rng));
                (u, self.moved(u))
            })
            .collect();
        let best = candidates
            .iter()
            .map(|&(_, moved)| moved)
            .fold(f64::NEG_INFINITY, f64::max);
        candidates
            .iter()
            .find(|&&(_, moved)| moved >= Self::NEAR_BEST * best)
            .expect("the best candidate qualifies")
            .0
    }
}

/// A convolution kernel over image channels, `[c_out = c, c_in = c, k, k]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageKernel {
    pub c: usize,
    pub k: usize,
    pub w: Vec<f32>,
}

impl ImageKernel {
    /// The kernel the simulation settings ask for, on `c` channels; `inks` are the colours
    /// of the target, where there is one (artificial life), for `sde.axis = "inks"`.
    pub fn from_settings(sde: &SdeSettings, c: usize, inks: Option<&Inks>) -> Self {
        let g = (sde.sign * sde.gain) as f32;
        match (sde.kernel, sde.axis, inks) {
            (KernelKind::Mix, MixerAxis::Inks, Some(inks)) if c == 3 => {
                Self::mix_about(g, inks.axis(sde.kernel_seed))
            }
            (KernelKind::Mix, ..) => Self::mix(c, g, sde.kernel_seed),
            (KernelKind::Spatial, ..) => Self::spatial(c, sde.kernel_size, g, sde.kernel_seed),
            (KernelKind::Shared, ..) => Self::shared(c, sde.kernel_size, g, sde.kernel_seed),
        }
    }

    /// Why `sde.axis = "inks"` does not apply to these settings, so the run can say so
    /// (`None` where it applies or was not asked for).
    pub fn inks_unused(sde: &SdeSettings, c: usize, inks: Option<&Inks>) -> Option<&'static str> {
        if sde.axis != MixerAxis::Inks {
            return None;
        }
        if sde.kernel != KernelKind::Mix {
            return Some(
                "sde.axis = \"inks\" turns the 1×1 colour mixer only (sde.kernel = \"mix\"); \
                 this kernel ignores it",
            );
        }
        if c != 3 {
            return Some("sde.axis = \"inks\" needs three colour channels; it is ignored here");
        }
        if inks.is_none() {
            return Some(
                "the target shows no ink (every pixel near white or transparent), so the \
                 mixer's axis is drawn at random instead of across the inks",
            );
        }
        None
    }

    /// The skew 1×1 channel mixer with sign `g`: for two channels g·[[0, 1], [−1, 0]]/√2,
    /// for more a seeded random antisymmetric matrix of unit norm.
    pub fn mix(c: usize, g: f32, seed: u64) -> Self {
        let w = if c == 2 {
            let a = g / 2f32.sqrt();
            vec![0.0, a, -a, 0.0]
        } else {
            random_antisymmetric(c, seed)
                .into_iter()
                .map(|x| g * x)
                .collect()
        };
        Self { c, k: 1, w }
    }

    /// The three-channel skew mixer K x = g ω × x about `axis` (any length), unit norm.
    pub fn mix_about(g: f32, axis: [f64; 3]) -> Self {
        let len = axis.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-12);
        // |[ω]×|_F = √2 |ω|: unit norm for |ω| = 1/√2.
        let [x, y, z] = axis.map(|a| (f64::from(g) * a / (len * 2f64.sqrt())) as f32);
        Self {
            c: 3,
            k: 1,
            w: vec![0.0, -z, y, z, 0.0, -x, -y, x, 0.0],
        }
    }

    /// A seeded random skew k×k kernel of unit norm: W minus its flipped transpose.
    pub fn spatial(c: usize, k: usize, g: f32, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5EE_C0DE);
        let raw: Vec<f64> = (0..c * c * k * k)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let idx = |o: usize, i: usize, a: usize, b: usize| ((o * c + i) * k + a) * k + b;
        let mut w = vec![0f64; raw.len()];
        for o in 0..c {
            for i in 0..c {
                for a in 0..k {
                    for b in 0..k {
                        w[idx(o, i, a, b)] =
                            raw[idx(o, i, a, b)] - raw[idx(i, o, k - 1 - a, k - 1 - b)];
                    }
                }
            }
        }
        let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        let w = w.iter().map(|x| g * (x / norm) as f32).collect();
        Self { c, k, w }
    }

    /// One seeded random odd k×k stencil a(d) = −a(−d) applied to every channel alike
    /// (K[o][i](d) = δ_oi a(d), skew because a is odd): colours stay together, so an icon
    /// moves as one rather than tearing into its channels. Unit norm per channel.
    pub fn shared(c: usize, k: usize, g: f32, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5_4A2E);
        let raw: Vec<f64> = (0..k * k)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let odd: Vec<f64> = (0..k * k).map(|j| raw[j] - raw[k * k - 1 - j]).collect();
        let norm = odd.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        let mut w = vec![0f32; c * c * k * k];
        for ch in 0..c {
            for j in 0..k * k {
                w[(ch * c + ch) * k * k + j] = g * (odd[j] / norm) as f32;
            }
        }
        Self { c, k, w }
    }

    /// A random 1×1 mixer that is not skew (Gaussian entries, unit norm): the baseline
    /// a skew kernel must beat.
    pub fn random_mix(c: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0xBA5E_11E5);
        let raw: Vec<f64> = (0..c * c)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        Self {
            c,
            k: 1,
            w: raw.iter().map(|x| (x / norm) as f32).collect(),
        }
    }

    /// The axis ω of a three-channel skew mixer K x = ω × x; None for any other kernel.
    pub fn mixer_axis(&self) -> Option<[f64; 3]> {
        let w = |o: usize, i: usize| f64::from(self.at(o, i, 0, 0));
        let skew = (0..3).all(|o| (0..3).all(|i| self.at(o, i, 0, 0) == -self.at(i, o, 0, 0)));
        (self.c == 3 && self.k == 1 && skew).then(|| [w(2, 1), w(0, 2), w(1, 0)])
    }

    /// Weight of output `o` from input `i` at kernel cell (`a`, `b`) (offset a − k/2, b − k/2).
    pub fn at(&self, o: usize, i: usize, a: usize, b: usize) -> f32 {
        self.w[((o * self.c + i) * self.k + a) * self.k + b]
    }

    /// v = K * s on images `[B, c, H, W]`, wrapping at the borders.
    pub fn apply(&self, s: Tensor<4>) -> Tensor<4> {
        let device = s.device();
        let weight = Tensor::<4>::from_data(
            TensorData::new(self.w.clone(), [self.c, self.c, self.k, self.k]),
            &device,
        );
        let opts = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        conv2d(pad_circular(s, self.k / 2), weight, None, opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::to_vec;

    /// Score of an isotropic Gaussian mixture with the given means and std.
    fn mixture_score(x: [f64; 2], means: &[[f64; 2]], std: f64) -> [f64; 2] {
        let (mut w, mut g) = (0.0, [0.0, 0.0]);
        for m in means {
            let d = [x[0] - m[0], x[1] - m[1]];
            let e = (-(d[0] * d[0] + d[1] * d[1]) / (2.0 * std * std)).exp();
            w += e;
            g[0] -= e * d[0] / (std * std);
            g[1] -= e * d[1] / (std * std);
        }
        [g[0] / w, g[1] / w]
    }

    #[test]
    fn antisymmetric_and_normalised() {
        let d = random_antisymmetric(4, 9);
        for i in 0..4 {
            for j in 0..4 {
                assert_eq!(d[i * 4 + j], -d[j * 4 + i]);
            }
        }
        let n: f32 = d.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-5);
        assert_ne!(d, random_antisymmetric(4, 10));
    }

    /// div(p v) / p = div v + v·s vanishes for v = D s on a two-Gaussian mixture, while a
    /// non-skew D (the identity) clearly does not keep p.
    #[test]
    fn skew_flow_keeps_a_gaussian_mixture() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let means = [[-1.0, -1.0], [1.0, 0.5]];
        let dm = random_antisymmetric(2, 1);
        let field = |x: [f64; 2], mat: &[f32]| -> [f64; 2] {
            let s = mixture_score(x, &means, 0.6);
            let s_t = from_rows(&[s[0] as f32, s[1] as f32], 2, &device);
            let v = to_vec(apply(mat, s_t, &device));
            [v[0] as f64, v[1] as f64]
        };
        let residual = |x: [f64; 2], mat: &[f32]| -> f64 {
            let h = 1e-3;
            let dvx =
                (field([x[0] + h, x[1]], mat)[0] - field([x[0] - h, x[1]], mat)[0]) / (2.0 * h);
            let dvy =
                (field([x[0], x[1] + h], mat)[1] - field([x[0], x[1] - h], mat)[1]) / (2.0 * h);
            let v = field(x, mat);
            let s = mixture_score(x, &means, 0.6);
            dvx + dvy + v[0] * s[0] + v[1] * s[1]
        };
        let identity = [1.0f32, 0.0, 0.0, 1.0];
        let points = [
            [0.3, -0.2],
            [-1.2, -0.7],
            [0.9, 0.9],
            [0.0, 0.4],
            [1.5, -0.5],
        ];
        for x in points {
            let r = residual(x, &dm);
            assert!(r.abs() < 2e-2, "skew residual {r} at {x:?}");
        }
        let worst = points
            .iter()
            .map(|&x| residual(x, &identity).abs())
            .fold(0.0, f64::max);
        assert!(worst > 0.5, "identity should break equilibrium: {worst}");
    }

    #[test]
    fn the_1x1_mixer_is_orthogonal_to_the_score_pixel_by_pixel() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        let s = Tensor::<4>::random(
            [2, 2, 6, 7],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        for g in [1.0, -1.0] {
            let k = ImageKernel::mix(2, g, 0);
            let v = to_vec(k.apply(s.clone()));
            let sv = to_vec(s.clone());
            let plane = 6 * 7;
            for b in 0..2 {
                for p in 0..plane {
                    let (i0, i1) = (b * 2 * plane + p, b * 2 * plane + plane + p);
                    // Zero up to the rounding of the products themselves.
                    let dot = v[i0] * sv[i0] + v[i1] * sv[i1];
                    let scale = (v[i0] * sv[i0]).abs() + (v[i1] * sv[i1]).abs();
                    assert!(dot.abs() <= 4.0 * f32::EPSILON * scale, "v·s at pixel {p}");
                }
            }
        }
        // The non-skew baseline is not orthogonal.
        let r = ImageKernel::random_mix(2, 3);
        let v = to_vec(r.apply(s.clone()));
        let dot: f32 = v.iter().zip(to_vec(s)).map(|(a, b)| a * b).sum();
        assert!(dot.abs() > 1.0, "{dot}");
    }

    /// One premultiplied RGBA pixel of colour `rgb` at full coverage.
    fn painted(colours: &[[f32; 3]]) -> Vec<f32> {
        colours
            .iter()
            .flat_map(|c| [c[0], c[1], c[2], 1.0])
            .chain([0.0; 4]) // a transparent pixel counts for nothing
            .collect()
    }

    /// K d for a colour offset d, with the kernel's 1×1 weights.
    fn turned(k: &ImageKernel, d: [f64; 3]) -> [f64; 3] {
        [0, 1, 2].map(|o| (0..3).map(|i| f64::from(k.at(o, i, 0, 0)) * d[i]).sum())
    }

    #[test]
    fn a_mixer_about_an_axis_is_skew_leaves_the_axis_and_turns_what_is_across_it() {
        let axis = [0.3, -1.2, 0.5];
        let k = ImageKernel::mix_about(1.0, axis);
        for o in 0..3 {
            for i in 0..3 {
                assert_eq!(k.at(o, i, 0, 0), -k.at(i, o, 0, 0));
            }
        }
        let norm: f32 = k.w.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        let back_axis = k.mixer_axis().unwrap();
        let len = axis.iter().map(|a| a * a).sum::<f64>().sqrt();
        assert!((0..3).all(|i| (back_axis[i] * 2f64.sqrt() * len - axis[i]).abs() < 1e-5));
        assert_eq!(ImageKernel::random_mix(3, 1).mixer_axis(), None);
        let along = turned(&k, axis);
        assert!(along.iter().all(|x| x.abs() < 1e-6), "{along:?}");
        let across = turned(&k, [1.2, 0.3, 0.0]);
        assert!(across.iter().map(|x| x * x).sum::<f64>() > 0.5);
        // The sign reverses the turn.
        let back = ImageKernel::mix_about(-1.0, axis);
        assert!(k.w.iter().zip(&back.w).all(|(a, b)| *a == -*b));
    }

    #[test]
    fn the_axis_goes_across_the_inks_and_the_seed_chooses_where_there_is_a_choice() {
        assert_eq!(Inks::from_premultiplied(&[0.0; 8]), None, "nothing painted");
        // The dot's blue: offset from white (−1, −1, 0) up to scale.
        let blue = Inks::from_premultiplied(&painted(&[[0.1, 0.1, 1.0]])).unwrap();
        let ink = [-1.0, -1.0, 0.0];
        let axes: Vec<[f64; 3]> = (0..4).map(|seed| blue.axis(seed)).collect();
        for u in &axes {
            assert!(blue.moved(*u) >= 0.9, "{u:?} moves {}", blue.moved(*u));
            // The mixer about it turns the ink by at least 0.9 of the most any axis can.
            let k = ImageKernel::mix_about(1.0, *u);
            let t = turned(&k, ink);
            let len = t.iter().map(|x| x * x).sum::<f64>().sqrt() / 2f64.sqrt();
            assert!(len >= 0.9f64.sqrt() / 2f64.sqrt(), "{len}");
        }
        let cos = |a: [f64; 3], b: [f64; 3]| {
            let dot: f64 = (0..3).map(|i| a[i] * b[i]).sum();
            let n = |v: [f64; 3]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
            (dot / (n(a) * n(b))).abs()
        };
        assert!(
            cos(axes[0], axes[1]) < 0.99 || cos(axes[0], axes[2]) < 0.99,
            "one ink leaves a circle of axes, and seeds should spread over it: {axes:?}"
        );
        // An axis along the ink moves none of it; one across, all of it.
        assert!(blue.moved(ink) < 1e-9 && (blue.moved([1.0, -1.0, 0.0]) - 1.0).abs() < 1e-9);
        // Two inks (the dots' blue and red, as much of each): near the one axis across both,
        // and each ink on its own is turned, not only their mean.
        let two = Inks::from_premultiplied(&painted(&[[0.1, 0.1, 1.0], [1.0, 0.1, 0.1]])).unwrap();
        let across_both = [1.0, -1.0, 1.0]; // (−1, −1, 0) × (0, −1, −1) up to scale
        let red = [0.0, -1.0, -1.0];
        for seed in 0..4 {
            let u = two.axis(seed);
            assert!(cos(u, across_both) > 0.75, "seed {seed}: {u:?}");
            for d in [ink, red] {
                let sin2 = 1.0 - cos(u, d).powi(2);
                assert!(sin2 > 0.8, "seed {seed}: {u:?} turns {d:?} by sin² {sin2}");
            }
        }
        // Settings pick it only when asked, for three channels, with inks known.
        let mut sde = SdeSettings::default();
        let random = ImageKernel::from_settings(&sde, 3, Some(&two));
        assert_eq!(random, ImageKernel::mix(3, 1.0, 0));
        sde.axis = MixerAxis::Inks;
        let chosen = ImageKernel::from_settings(&sde, 3, Some(&two));
        assert_eq!(chosen, ImageKernel::mix_about(1.0, two.axis(0)));
        assert_eq!(ImageKernel::from_settings(&sde, 3, None), random);
        assert_eq!(
            ImageKernel::from_settings(&sde, 2, Some(&two)),
            ImageKernel::mix(2, 1.0, 0)
        );
        // Where it falls back, the run is told why.
        assert_eq!(ImageKernel::inks_unused(&sde, 3, Some(&two)), None);
        assert!(
            ImageKernel::inks_unused(&sde, 3, None)
                .unwrap()
                .contains("no ink")
        );
        assert!(
            ImageKernel::inks_unused(&sde, 2, Some(&two))
                .unwrap()
                .contains("three")
        );
        sde.kernel = KernelKind::Spatial;
        assert!(
            ImageKernel::inks_unused(&sde, 3, Some(&two))
                .unwrap()
                .contains("mixer")
        );
        sde.axis = MixerAxis::Random;
        assert_eq!(ImageKernel::inks_unused(&sde, 3, None), None);
    }

    #[test]
    fn the_spatial_kernel_is_skew_and_antisymmetric_on_the_torus() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        for (k, other) in [
            (
                ImageKernel::spatial(3, 3, 1.0, 7),
                ImageKernel::spatial(3, 3, 1.0, 8),
            ),
            (
                ImageKernel::shared(3, 3, 1.0, 7),
                ImageKernel::shared(3, 3, 1.0, 8),
            ),
        ] {
            skew_on_the_torus(&k, &device);
            assert_ne!(k.w, other.w);
        }
        // The shared kernel moves every channel alike and mixes none.
        let k = ImageKernel::shared(3, 3, 1.0, 7);
        for a in 0..3 {
            for b in 0..3 {
                assert_eq!(k.at(0, 0, a, b), k.at(2, 2, a, b));
                assert_eq!(k.at(0, 1, a, b), 0.0);
            }
        }
        assert!(k.w.iter().any(|&x| x != 0.0));
    }

    fn skew_on_the_torus(k: &ImageKernel, device: &Device) {
        for o in 0..3 {
            for i in 0..3 {
                for a in 0..3 {
                    for b in 0..3 {
                        assert_eq!(k.at(o, i, a, b), -k.at(i, o, 2 - a, 2 - b));
                    }
                }
            }
        }
        // As a linear map: <K s, s> = 0 summed over the torus, borders included.
        let s = Tensor::<4>::random(
            [1, 3, 5, 6],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            device,
        );
        let v = to_vec(k.apply(s.clone()));
        let sv = to_vec(s);
        let dot: f32 = v.iter().zip(&sv).map(|(a, b)| a * b).sum();
        let scale: f32 = v.iter().map(|x| x.abs()).sum::<f32>();
        assert!(dot.abs() < 1e-5 * scale, "<Ks, s> = {dot}");
    }
}
