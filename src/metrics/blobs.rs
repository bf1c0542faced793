//! Motion made visible: find the icons (blobs) in a frame and follow them over time.
//! Blobs are connected components of "ink" (how far a pixel is from white) above a
//! threshold, on the torus; tracks link each blob to the nearest one in the next frame within
//! a maximum move, and survive a few missed frames (a blob that fades for a moment).

/// How dark an RGB pixel is, 0 (white) to 1: the darkest channel's distance from white.
/// `rgb` is `[3, h, w]` in [-1, 1].
pub fn ink(rgb: &[f32], h: usize, w: usize) -> Vec<f32> {
    let plane = h * w;
    (0..plane)
        .map(|i| {
            (0..3)
                .map(|c| (1.0 - rgb[c * plane + i]) / 2.0)
                .fold(0.0f32, f32::max)
                .clamp(0.0, 1.0)
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Blob {
    /// Ink-weighted centre in pixels, in [0, w) × [0, h).
    pub x: f32,
    pub y: f32,
    /// Pixels above the threshold.
    pub area: usize,
}

/// Connected components (4-neighbours, wrapping at the borders) of `ink > threshold` with
/// at least `min_area` pixels. Centres are circular means, so a blob cut by the border has
/// its centre where the blob is, not in the middle of the canvas.
pub fn detect(ink: &[f32], h: usize, w: usize, threshold: f32, min_area: usize) -> Vec<Blob> {
    detect_joined(ink, h, w, threshold, min_area, 0)
}

/// As [`detect`], but ink pixels up to `join` pixels apart (in x and in y) belong to one
/// blob: an icon of separate parts (two discs side by side) is one blob, however far its
/// parts drift within that gap. `join = 0` is plain 4-neighbour connectivity.
pub fn detect_joined(
    ink: &[f32],
    h: usize,
    w: usize,
    threshold: f32,
    min_area: usize,
    join: usize,
) -> Vec<Blob> {
    let four: &[(isize, isize)] = &[(-1, 0), (1, 0), (0, -1), (0, 1)];
    let j = join.min(h.min(w) / 2) as isize;
    let window: Vec<(isize, isize)> = (-j..=j)
        .flat_map(|dy| (-j..=j).map(move |dx| (dy, dx)))
        .filter(|&d| d != (0, 0))
        .collect();
    let near = if join == 0 { four } else { &window[..] };
    let mut label = vec![usize::MAX; h * w];
    let mut blobs = Vec::new();
    let mut stack = Vec::new();
    let tau = std::f32::consts::TAU;
    for start in 0..h * w {
        if ink[start] <= threshold || label[start] != usize::MAX {
            continue;
        }
        let id = blobs.len();
        label[start] = id;
        stack.push(start);
        let (mut area, mut sum) = (0usize, [0.0f32; 4]);
        while let Some(i) = stack.pop() {
            let (y, x) = (i / w, i % w);
            let m = ink[i];
            area += 1;
            // Pixel centres, so a disc centred at c is found at c.
            let ax = tau * (x as f32 + 0.5) / w as f32;
            let ay = tau * (y as f32 + 0.5) / h as f32;
            sum[0] += m * ax.cos();
            sum[1] += m * ax.sin();
            sum[2] += m * ay.cos();
            sum[3] += m * ay.sin();
            for &(dy, dx) in near {
                let ny = (y as isize + dy).rem_euclid(h as isize) as usize;
                let nx = (x as isize + dx).rem_euclid(w as isize) as usize;
                let j = ny * w + nx;
                if ink[j] > threshold && label[j] == usize::MAX {
                    label[j] = id;
                    stack.push(j);
                }
            }
        }
        let angle = |c: f32, s: f32, n: usize| s.atan2(c).rem_euclid(tau) / tau * n as f32;
        blobs.push(Blob {
            x: angle(sum[0], sum[1], w),
            y: angle(sum[2], sum[3], h),
            area,
        });
    }
    blobs.retain(|b| b.area >= min_area);
    blobs
}

/// The shortest displacement from `a` to `b` on a ring of length `n`.
pub fn wrap_delta(a: f32, b: f32, n: usize) -> f32 {
    let n = n as f32;
    (b - a + n / 2.0).rem_euclid(n) - n / 2.0
}

#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub id: usize,
    /// `(time, x, y)`, positions on the torus.
    pub points: Vec<(f64, f32, f32)>,
    misses: usize,
    pub ended: bool,
}

impl Track {
    /// Positions unwrapped across borders: a continuous path.
    pub fn unwrapped(&self, h: usize, w: usize) -> Vec<(f64, f32, f32)> {
        let mut out: Vec<(f64, f32, f32)> = Vec::with_capacity(self.points.len());
        for &(t, x, y) in &self.points {
            match out.last() {
                None => out.push((t, x, y)),
                Some(&(_, px, py)) => {
                    let (lx, ly) = (px.rem_euclid(w as f32), py.rem_euclid(h as f32));
                    out.push((t, px + wrap_delta(lx, x, w), py + wrap_delta(ly, y, h)));
                }
            }
        }
        out
    }

    /// Net velocity (pixels per time unit) from the first to the last point.
    pub fn velocity(&self, h: usize, w: usize) -> Option<(f32, f32)> {
        let p = self.unwrapped(h, w);
        let (&(t0, x0, y0), &(t1, x1, y1)) = (p.first()?, p.last()?);
        let dt = (t1 - t0) as f32;
        (dt > 0.0).then(|| ((x1 - x0) / dt, (y1 - y0) / dt))
    }

    /// Path length and the time it took.
    pub fn path(&self, h: usize, w: usize) -> (f64, f64) {
        self.path_since(h, w, f64::NEG_INFINITY)
    }

    /// Path length and time over the points seen at `since` or later.
    pub fn path_since(&self, h: usize, w: usize, since: f64) -> (f64, f64) {
        let recent: Vec<_> = self.points.iter().filter(|p| p.0 >= since).collect();
        let length = recent
            .windows(2)
            .map(|s| wrap_delta(s[0].1, s[1].1, w).hypot(wrap_delta(s[0].2, s[1].2, h)) as f64)
            .sum();
        let time = match (recent.first(), recent.last()) {
            (Some(a), Some(b)) => b.0 - a.0,
            _ => 0.0,
        };
        (length, time)
    }
}

/// Mean speed of `tracks` since time `since`: total path length over total tracked time
/// (pixels per time unit). Tracks seen once add nothing.
pub fn mean_speed<'a>(
    tracks: impl IntoIterator<Item = &'a Track>,
    h: usize,
    w: usize,
    since: f64,
) -> f64 {
    let (mut length, mut time) = (0.0, 0.0);
    for tr in tracks {
        let (l, t) = tr.path_since(h, w, since);
        length += l;
        time += t;
    }
    if time > 0.0 { length / time } else { 0.0 }
}

/// Nearest-neighbour linking of blobs across frames.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub h: usize,
    pub w: usize,
    /// A blob further than this (pixels) from every live track starts a new track.
    pub max_move: f32,
    /// Frames a track may go unseen before it ends.
    pub miss_budget: usize,
    pub tracks: Vec<Track>,
}

impl Tracker {
    pub fn new(h: usize, w: usize, max_move: f32, miss_budget: usize) -> Self {
        Self {
            h,
            w,
            max_move,
            miss_budget,
            tracks: Vec::new(),
        }
    }

    /// Link this frame's blobs to the live tracks: closest pairs first, each used once.
    pub fn update(&mut self, t: f64, blobs: &[Blob]) {
        let live: Vec<usize> = (0..self.tracks.len())
            .filter(|&i| !self.tracks[i].ended)
            .collect();
        let mut pairs = Vec::new();
        for &ti in &live {
            let &(_, x, y) = self.tracks[ti]
                .points
                .last()
                .expect("tracks start with a point");
            for (bi, b) in blobs.iter().enumerate() {
                let d = wrap_delta(x, b.x, self.w).hypot(wrap_delta(y, b.y, self.h));
                if d <= self.max_move {
                    pairs.push((d, ti, bi));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut track_used = vec![false; self.tracks.len()];
        let mut blob_used = vec![false; blobs.len()];
        for (_, ti, bi) in pairs {
            if track_used[ti] || blob_used[bi] {
                continue;
            }
            track_used[ti] = true;
            blob_used[bi] = true;
            let tr = &mut self.tracks[ti];
            tr.points.push((t, blobs[bi].x, blobs[bi].y));
            tr.misses = 0;
        }
        for ti in live {
            if !track_used[ti] {
                let tr = &mut self.tracks[ti];
                tr.misses += 1;
                tr.ended = tr.misses > self.miss_budget;
            }
        }
        for (bi, b) in blobs.iter().enumerate() {
            if !blob_used[bi] {
                let id = self.tracks.len();
                self.tracks.push(Track {
                    id,
                    points: vec![(t, b.x, b.y)],
                    misses: 0,
                    ended: false,
                });
            }
        }
    }

    /// Keep at most the newest `n` positions of each track (a live canvas runs for as long as
    /// the app is open; its tracks must not grow without end).
    pub fn keep_last(&mut self, n: usize) {
        for tr in &mut self.tracks {
            let extra = tr.points.len().saturating_sub(n.max(1));
            tr.points.drain(..extra);
        }
    }

    /// Mean speed over all tracks (see [`mean_speed`]).
    pub fn mean_speed(&self) -> f64 {
        mean_speed(&self.tracks, self.h, self.w, f64::NEG_INFINITY)
    }

    /// `track,t,x,y` rows with a header, positions on the torus.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("track,t,x,y\n");
        for tr in &self.tracks {
            for (t, x, y) in &tr.points {
                s.push_str(&format!("{},{t},{x},{y}\n", tr.id));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Soft discs of radius 4 at the given centres on a `n`² torus, as RGB in [-1, 1].
    fn frame(centres: &[(f32, f32)], n: usize) -> Vec<f32> {
        let mut rgb = vec![1.0f32; 3 * n * n];
        for y in 0..n {
            for x in 0..n {
                for &(cx, cy) in centres {
                    let dx = wrap_delta(cx, x as f32 + 0.5, n);
                    let dy = wrap_delta(cy, y as f32 + 0.5, n);
                    let cover = (4.5 - dx.hypot(dy)).clamp(0.0, 1.0);
                    // A blue disc: red and green fall to -1, blue stays.
                    for c in 0..2 {
                        rgb[c * n * n + y * n + x] -= 2.0 * cover;
                    }
                }
            }
        }
        rgb
    }

    #[test]
    fn ink_is_zero_on_white_and_one_on_black() {
        let rgb = [1.0, -1.0, 1.0, -1.0, 1.0, 1.0];
        assert_eq!(ink(&rgb, 1, 2), vec![0.0, 1.0]);
    }

    /// Discs whose ink (above 0.5) reaches 4 pixels from their centres: 9 apart, their
    /// nearest ink pixels are 2 apart; 12 apart, 5. Within the join distance they are one
    /// blob (also across the border), beyond it two.
    #[test]
    fn ink_within_the_join_distance_is_one_blob() {
        let n = 40;
        let count = |d: f32, join: usize, x0: f32| {
            let img = frame(&[(x0, 20.0), ((x0 + d).rem_euclid(n as f32), 20.0)], n);
            detect_joined(&ink(&img, n, n), n, n, 0.5, 3, join).len()
        };
        for x0 in [10.0, 36.0] {
            assert_eq!(count(9.0, 0, x0), 2, "2 px apart parts touching-only blobs");
            assert_eq!(count(9.0, 2, x0), 1, "2 px apart is within join 2");
            assert_eq!(count(9.0, 3, x0), 1);
            assert_eq!(count(12.0, 2, x0), 2, "5 px apart is beyond join 2");
            assert_eq!(count(12.0, 5, x0), 1);
        }
        let joined = detect_joined(
            &ink(&frame(&[(10.0, 20.0), (19.0, 20.0)], n), n, n),
            n,
            n,
            0.5,
            3,
            2,
        );
        assert!(
            (joined[0].x - 14.5).abs() < 0.3,
            "the centre lies between: {joined:?}"
        );
    }

    #[test]
    fn a_blob_cut_by_the_border_is_one_blob_centred_on_the_border() {
        let n = 32;
        let img = frame(&[(0.5, 16.0), (16.0, 31.8)], n);
        let blobs = detect(&ink(&img, n, n), n, n, 0.5, 3);
        assert_eq!(blobs.len(), 2, "{blobs:?}");
        let near = |a: f32, b: f32| wrap_delta(a, b, n).abs() < 0.3;
        assert!(blobs.iter().any(|b| near(b.x, 0.5) && near(b.y, 16.0)));
        assert!(blobs.iter().any(|b| near(b.x, 16.0) && near(b.y, 31.8)));
    }

    #[test]
    fn the_tracker_recovers_the_velocities_of_discs_moving_on_a_torus() {
        let n = 48;
        // Three discs, one crossing the left border, one the top, one nearly still.
        let starts = [(3.0, 10.0), (30.0, 6.0), (20.0, 24.0)];
        let velocity = [(-0.8, 0.1), (0.2, -0.7), (0.05, -0.02)];
        let mut tracker = Tracker::new(n, n, 3.0, 2);
        for f in 0..40 {
            let t = f as f64 * 0.5;
            let centres: Vec<(f32, f32)> = starts
                .iter()
                .zip(&velocity)
                .map(|(&(x, y), &(vx, vy))| {
                    (
                        (x + vx * t as f32).rem_euclid(n as f32),
                        (y + vy * t as f32).rem_euclid(n as f32),
                    )
                })
                .collect();
            // Every seventh frame the second disc is missed: the track must bridge it.
            let shown: Vec<_> = centres
                .iter()
                .enumerate()
                .filter(|&(i, _)| !(i == 1 && f % 7 == 3))
                .map(|(_, c)| *c)
                .collect();
            let img = frame(&shown, n);
            tracker.update(t, &detect(&ink(&img, n, n), n, n, 0.5, 3));
        }
        assert_eq!(tracker.tracks.len(), 3, "{:?}", tracker.tracks);
        // Tracks are numbered in the order blobs are found; match them by velocity.
        let found: Vec<(f32, f32)> = tracker
            .tracks
            .iter()
            .map(|tr| tr.velocity(n, n).unwrap())
            .collect();
        for &(vx, vy) in &velocity {
            assert!(
                found
                    .iter()
                    .any(|(ux, uy)| (ux - vx).abs() < 0.03 && (uy - vy).abs() < 0.03),
                "{vx},{vy} not in {found:?}"
            );
        }
        let truth = velocity
            .iter()
            .map(|(x, y)| x.hypot(*y) as f64)
            .sum::<f64>()
            / 3.0;
        let speed = tracker.mean_speed();
        assert!(
            (speed - truth).abs() < 0.05 * truth + 0.03,
            "{speed} vs {truth}"
        );
        let csv = tracker.to_csv();
        assert!(csv.starts_with("track,t,x,y\n0,0,"));
        assert_eq!(csv.lines().count(), 1 + 40 + (40 - 6) + 40);
    }

    #[test]
    fn a_track_ends_after_its_miss_budget() {
        let mut tracker = Tracker::new(32, 32, 3.0, 1);
        let b = Blob {
            x: 5.0,
            y: 5.0,
            area: 9,
        };
        tracker.update(0.0, &[b]);
        tracker.update(1.0, &[]);
        assert!(!tracker.tracks[0].ended);
        tracker.update(2.0, &[]);
        assert!(tracker.tracks[0].ended);
        tracker.update(3.0, &[b]);
        assert_eq!(tracker.tracks.len(), 2);
    }

    #[test]
    fn a_long_lived_track_keeps_only_its_newest_positions() {
        let mut tracker = Tracker::new(32, 32, 3.0, 1);
        for i in 0..100 {
            let b = Blob {
                x: (i % 32) as f32,
                y: 5.0,
                area: 9,
            };
            tracker.update(i as f64, &[b]);
            tracker.keep_last(10);
        }
        assert_eq!(tracker.tracks.len(), 1, "one blob, one track");
        let pts = &tracker.tracks[0].points;
        assert_eq!(pts.len(), 10);
        assert_eq!((pts[0].0, pts[9].0), (90.0, 99.0));
        // Its speed is still measured over the kept window (1 px per unit of time).
        assert!((tracker.mean_speed() - 1.0).abs() < 1e-6);
    }
}
