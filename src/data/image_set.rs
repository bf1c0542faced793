//! A set of images `[n, channels, h, w]`: Turing snapshots or artificial-life tilings.

/// Images `[n, channels, h, w]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    pub n: usize,
    pub channels: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl ImageSet {
    /// Values in one image.
    pub fn image_len(&self) -> usize {
        self.channels * self.h * self.w
    }

    pub fn image(&self, i: usize) -> &[f32] {
        let l = self.image_len();
        &self.data[i * l..(i + 1) * l]
    }

    /// The share of Gray–Scott images whose pattern is alive (v above 0.05 somewhere).
    pub fn alive_fraction(&self) -> f64 {
        let plane = self.h * self.w;
        let alive = (0..self.n)
            .filter(|&i| {
                self.image(i)[plane..]
                    .iter()
                    .any(|&v| (v + 1.0) / 2.0 > 0.05)
            })
            .count();
        alive as f64 / self.n.max(1) as f64
    }

    /// The images at `idx`, one after the other.
    pub fn gather(&self, idx: &[usize]) -> Vec<f32> {
        idx.iter()
            .flat_map(|&i| self.image(i).iter().copied())
            .collect()
    }
}
