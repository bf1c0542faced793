//! How much the snapshots constrain the dynamics (the paper's consistency table): |cos|
//! between the fields of many models on the same data states, and of each against the truth.

use super::alignment::abs_cosine;
use serde::Serialize;

/// Mean, sample standard deviation, min and max of a set of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stats {
    pub mean: f64,
    pub sd: f64,
    pub min: f64,
    pub max: f64,
    pub count: usize,
}

impl Stats {
    /// None for an empty set. The sd of one value is 0.
    pub fn of(xs: &[f64]) -> Option<Self> {
        if xs.is_empty() {
            return None;
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let sd = if xs.len() < 2 {
            0.0
        } else {
            (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        };
        Some(Self {
            mean,
            sd,
            min: xs.iter().copied().fold(f64::INFINITY, f64::min),
            max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            count: xs.len(),
        })
    }
}

/// |cos| of every unordered pair of distinct fields (each a flattened field on the same states).
pub fn pairwise(fields: &[Vec<f32>]) -> Vec<f64> {
    let mut out = Vec::new();
    for (i, a) in fields.iter().enumerate() {
        for b in &fields[i + 1..] {
            out.push(abs_cosine(a, b));
        }
    }
    out
}

/// |cos| of every pair (a from `xs`, b from `ys`) of two families of fields.
pub fn across(xs: &[Vec<f32>], ys: &[Vec<f32>]) -> Vec<f64> {
    xs.iter()
        .flat_map(|a| ys.iter().map(move |b| abs_cosine(a, b)))
        .collect()
}

/// |cos| of each field against one reference field (e.g. the true dynamics).
pub fn against(fields: &[Vec<f32>], truth: &[f32]) -> Vec<f64> {
    fields.iter().map(|f| abs_cosine(f, truth)).collect()
}

/// Each field as a point in the plane: the fields (each flipped to agree in sign with the
/// first, since v and −v keep the same distribution, and scaled to unit length, since |cos|
/// ignores length) projected on their first two principal axes. Close points are fields
/// that agree; one tight cluster is one solution.
pub fn embedding(fields: &[Vec<f32>]) -> Vec<[f64; 2]> {
    let n = fields.len();
    if n == 0 {
        return Vec::new();
    }
    let first = &fields[0];
    let rows: Vec<Vec<f64>> = fields
        .iter()
        .map(|f| {
            let dot: f64 = f
                .iter()
                .zip(first)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum();
            let norm = f.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
            let s = match (norm > 0.0, dot < 0.0) {
                (false, _) => 0.0,
                (true, false) => 1.0 / norm,
                (true, true) => -1.0 / norm,
            };
            f.iter().map(|a| *a as f64 * s).collect()
        })
        .collect();
    let len = rows[0].len();
    let mean: Vec<f64> = (0..len)
        .map(|c| rows.iter().map(|r| r[c]).sum::<f64>() / n as f64)
        .collect();
    // The Gram matrix of the centred fields: n × n however long the fields are.
    let mut gram = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let g: f64 = (0..len)
                .map(|c| (rows[i][c] - mean[c]) * (rows[j][c] - mean[c]))
                .sum();
            gram[i * n + j] = g;
            gram[j * n + i] = g;
        }
    }
    let mut out = vec![[0.0; 2]; n];
    for (axis, (lambda, v)) in top_eigen(&mut gram, n, 2).into_iter().enumerate() {
        let scale = lambda.max(0.0).sqrt();
        for (o, x) in out.iter_mut().zip(v) {
            o[axis] = scale * x;
        }
    }
    out
}

/// The `k` largest eigenpairs of a symmetric `n × n` matrix (overwritten), by cyclic
/// Jacobi rotations: exact to rounding even where eigenvalues are close, which power
/// iteration is not; n is the number of models (hundreds at most).
fn top_eigen(a: &mut [f64], n: usize, k: usize) -> Vec<(f64, Vec<f64>)> {
    let mut v = vec![0.0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum();
    for _ in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off <= 1e-24 * scale || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for r in 0..n {
                    let (x, y) = (a[r * n + p], a[r * n + q]);
                    a[r * n + p] = c * x - s * y;
                    a[r * n + q] = s * x + c * y;
                }
                for r in 0..n {
                    let (x, y) = (a[p * n + r], a[q * n + r]);
                    a[p * n + r] = c * x - s * y;
                    a[q * n + r] = s * x + c * y;
                }
                for r in 0..n {
                    let (x, y) = (v[r * n + p], v[r * n + q]);
                    v[r * n + p] = c * x - s * y;
                    v[r * n + q] = s * x + c * y;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[j * n + j].total_cmp(&a[i * n + i]));
    order
        .into_iter()
        .take(k)
        .map(|c| (a[c * n + c], (0..n).map(|r| v[r * n + c]).collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fields that lie in one plane keep their distances in the embedding (after the
    /// unit-length and sign normalisation), and a negated field lands on its original.
    #[test]
    fn the_embedding_of_planar_fields_keeps_their_distances() {
        let (e1, e2) = ([1.0f32, 2.0, 0.0, -1.0], [0.0f32, 1.0, 3.0, 2.0]);
        // Orthonormal basis of the plane.
        let n1 = e1.iter().map(|x| x * x).sum::<f32>().sqrt();
        let u: Vec<f32> = e1.iter().map(|x| x / n1).collect();
        let d: f32 = u.iter().zip(&e2).map(|(a, b)| a * b).sum();
        let w: Vec<f32> = e2.iter().zip(&u).map(|(b, a)| b - d * a).collect();
        let nw = w.iter().map(|x| x * x).sum::<f32>().sqrt();
        let w: Vec<f32> = w.iter().map(|x| x / nw).collect();
        // Within a quarter turn of the first, so no sign is flipped.
        let angles = [-0.6f32, -0.2, 0.0, 0.5, 0.9];
        let mut fields: Vec<Vec<f32>> = angles
            .iter()
            .map(|a| {
                u.iter()
                    .zip(&w)
                    .map(|(x, y)| a.cos() * x + a.sin() * y)
                    .collect()
            })
            .collect();
        // The third again, negated and three times as long.
        fields.push(fields[2].iter().map(|x| -3.0 * x).collect());
        let e = embedding(&fields);
        assert_eq!(e.len(), 6);
        for i in 0..5 {
            for j in 0..5 {
                let truth = 2.0 * ((angles[i] - angles[j]) / 2.0).sin().abs() as f64;
                let got = ((e[i][0] - e[j][0]).powi(2) + (e[i][1] - e[j][1]).powi(2)).sqrt();
                assert!((got - truth).abs() < 1e-4, "{i},{j}: {got} vs {truth}");
            }
        }
        let same = ((e[5][0] - e[2][0]).powi(2) + (e[5][1] - e[2][1]).powi(2)).sqrt();
        assert!(same < 1e-4, "{same}");
        assert_eq!(embedding(&[]).len(), 0);
        assert_eq!(embedding(&[vec![1.0, 0.0]]), vec![[0.0, 0.0]]);
    }

    #[test]
    fn stats_pairs_and_families() {
        let s = Stats::of(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(
            (s.mean, s.sd, s.min, s.max, s.count),
            (2.0, 1.0, 1.0, 3.0, 3)
        );
        assert_eq!(Stats::of(&[0.5]).unwrap().sd, 0.0);
        assert!(Stats::of(&[]).is_none());
        // Three fields: two equal up to sign and scale, one orthogonal to both.
        let f = vec![vec![1.0f32, 0.0], vec![-2.0, 0.0], vec![0.0, 3.0]];
        let p = pairwise(&f);
        assert_eq!(p.len(), 3);
        assert!((p[0] - 1.0).abs() < 1e-12 && p[1].abs() < 1e-12 && p[2].abs() < 1e-12);
        assert_eq!(across(&f[..2], &f[2..]).len(), 2);
        let t = against(&f, &[1.0, 1.0]);
        assert!(t.iter().all(|c| (c - 0.5f64.sqrt()).abs() < 1e-9));
    }
}
