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

#[cfg(test)]
mod tests {
    use super::*;

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
