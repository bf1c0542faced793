//! Mini-batch epochs walked one batch at a time: what a training phase of a point job (and
//! each model of a sweep's stack) steps through.

use super::event::ProgressInfo;
use crate::train::job::{LossPoint, Phase, batches_per_epoch};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::time::Instant;

/// Mini-batch epochs walked one batch at a time.
pub(super) struct Epochs {
    phase: Phase,
    pub(super) epochs: usize,
    batch: usize,
    per_epoch: usize,
    order: Vec<usize>,
    pub(super) epoch: usize,
    k: usize,
    sum: f64,
    count: usize,
    started: Instant,
}

impl Epochs {
    pub(super) fn new(phase: Phase, n: usize, batch: usize, epochs: usize) -> Self {
        Self {
            phase,
            epochs,
            batch,
            per_epoch: batches_per_epoch(n, batch),
            order: (0..n).collect(),
            epoch: 0,
            k: 0,
            sum: 0.0,
            count: 0,
            started: Instant::now(),
        }
    }

    pub(super) fn total(&self) -> usize {
        self.epochs * self.per_epoch
    }

    pub(super) fn done(&self) -> usize {
        self.epoch * self.per_epoch + self.k
    }

    pub(super) fn at_epoch_start(&self) -> bool {
        self.k == 0
    }

    /// The next batch's indices, or `None` when every epoch is done.
    pub(super) fn next_batch(&mut self, rng: &mut StdRng) -> Option<Vec<usize>> {
        if self.epoch >= self.epochs || self.per_epoch == 0 {
            return None;
        }
        if self.k == 0 {
            self.order.shuffle(rng);
        }
        let start = self.k * self.batch;
        let end = (start + self.batch).min(self.order.len());
        Some(self.order[start..end].to_vec())
    }

    /// Count one batch's loss; at the end of an epoch returns its mean loss.
    pub(super) fn record(&mut self, loss: f64) -> Option<LossPoint> {
        self.sum += loss;
        self.count += 1;
        self.k += 1;
        if self.k < self.per_epoch {
            return None;
        }
        let point = LossPoint {
            phase: self.phase,
            epoch: self.epoch,
            loss: self.sum / self.count.max(1) as f64,
        };
        (self.epoch, self.k, self.sum, self.count) = (self.epoch + 1, 0, 0.0, 0);
        Some(point)
    }

    pub(super) fn progress(&self) -> ProgressInfo {
        let (done, total) = (self.done(), self.total());
        let elapsed = self.started.elapsed().as_secs_f64();
        ProgressInfo {
            phase: self.phase,
            epoch: (self.epoch + 1).min(self.epochs),
            epochs: self.epochs,
            done,
            total,
            eta_seconds: (done > 0).then(|| elapsed / done as f64 * (total - done) as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn epochs_walk_every_batch_and_report_each_epoch_once() {
        let mut rng = StdRng::seed_from_u64(3);
        // 10 points in batches of 4: 4, 4 and a last batch of 2.
        let mut e = Epochs::new(Phase::Score, 10, 4, 2);
        assert_eq!(e.total(), 6);
        let mut seen = Vec::new();
        let mut points = Vec::new();
        while let Some(idx) = e.next_batch(&mut rng) {
            seen.extend(idx.iter().copied());
            if let Some(p) = e.record(idx.len() as f64) {
                points.push(p);
            }
            let pr = e.progress();
            assert!(pr.done <= pr.total && pr.eta_seconds.is_some());
        }
        assert_eq!(e.done(), 6);
        // Each epoch covers every point once, in a new order.
        let (a, b) = seen.split_at(10);
        let sorted = |s: &[usize]| {
            let mut v = s.to_vec();
            v.sort();
            v
        };
        assert_eq!(sorted(a), (0..10).collect::<Vec<_>>());
        assert_eq!(sorted(b), (0..10).collect::<Vec<_>>());
        assert_eq!(points.len(), 2);
        assert_eq!((points[0].epoch, points[1].epoch), (0, 1));
        // The mean of the batch "losses" 4, 4, 2.
        assert!((points[0].loss - 10.0 / 3.0).abs() < 1e-12);
        assert_eq!(e.progress().eta_seconds, Some(0.0));
    }
}
