//! The paint canvas for artificial-life targets: an RGBA icon edited with a soft brush, an
//! eraser and a fill, with undo and redo. Strokes are drawn against the picture as it was
//! when the stroke began, with each pixel's coverage the most any dab gave it: a slow drag
//! does not darken where dabs overlap, and a fast drag, interpolated between the pointer
//! positions of two frames, draws a line rather than dots.

use crate::data::icon::Icon;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Brush,
    Eraser,
    Fill,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Brush {
    pub tool: Tool,
    /// Radius in icon pixels.
    pub radius: f32,
    /// 0 = hard edge, 1 = coverage falls off from the centre.
    pub softness: f32,
    /// Straight RGBA in [0, 1].
    pub colour: [f32; 4],
}

impl Default for Brush {
    fn default() -> Self {
        Self {
            tool: Tool::Brush,
            radius: 6.0,
            softness: 0.5,
            colour: [0.13, 0.33, 0.85, 1.0],
        }
    }
}

impl Brush {
    /// Coverage at distance `d` from the dab's centre.
    fn coverage(&self, d: f32) -> f32 {
        let r = self.radius.max(0.5);
        let hard = (r + 0.5 - d).clamp(0.0, 1.0);
        if self.softness <= 0.0 {
            return hard;
        }
        let inner = r * (1.0 - self.softness);
        let soft = if d <= inner {
            1.0
        } else {
            let t = ((d - inner) / (r - inner).max(1e-3)).clamp(0.0, 1.0);
            // Smoothstep down to zero at the rim.
            1.0 - t * t * (3.0 - 2.0 * t)
        };
        soft.min(hard)
    }
}

/// The picture being painted, with its history.
#[derive(Debug, Clone)]
pub struct PaintCanvas {
    pub icon: Icon,
    undo: Vec<Vec<f32>>,
    redo: Vec<Vec<f32>>,
    /// While a stroke runs: the last pointer position and each pixel's coverage so far.
    stroke: Option<Stroke>,
    /// Bumped on every change (the view re-uploads its texture then).
    pub revision: u64,
}

#[derive(Debug, Clone)]
struct Stroke {
    last: (f32, f32),
    brush: Brush,
    coverage: Vec<f32>,
}

/// Steps at most this fraction of the radius between interpolated dabs.
const SPACING: f32 = 0.25;
/// Undo steps kept.
const HISTORY: usize = 64;

impl PaintCanvas {
    pub fn new(icon: Icon) -> Self {
        Self {
            icon,
            undo: Vec::new(),
            redo: Vec::new(),
            stroke: None,
            revision: 0,
        }
    }

    pub fn size(&self) -> usize {
        self.icon.size
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// Remember the picture before a change.
    fn checkpoint(&mut self) {
        self.undo.push(self.icon.rgba.clone());
        if self.undo.len() > HISTORY {
            self.undo.remove(0);
        }
        self.redo.clear();
    }

    fn changed(&mut self) {
        self.revision += 1;
    }

    pub fn undo(&mut self) {
        self.end_stroke();
        if let Some(prev) = self.undo.pop() {
            self.redo.push(std::mem::replace(&mut self.icon.rgba, prev));
            self.changed();
        }
    }

    pub fn redo(&mut self) {
        self.end_stroke();
        if let Some(next) = self.redo.pop() {
            self.undo.push(std::mem::replace(&mut self.icon.rgba, next));
            self.changed();
        }
    }

    /// Replace the picture (a loaded file or a built-in target), fitted to this canvas.
    pub fn replace(&mut self, icon: &Icon) {
        self.end_stroke();
        self.checkpoint();
        self.icon = icon.resized(self.size());
        self.changed();
    }

    pub fn clear(&mut self) {
        self.end_stroke();
        self.checkpoint();
        self.icon.rgba.iter_mut().for_each(|v| *v = 0.0);
        self.changed();
    }

    /// Pointer down at `(x, y)` (icon pixels): fill, or start a stroke with its first dab.
    pub fn press(&mut self, x: f32, y: f32, brush: Brush) {
        self.end_stroke();
        self.checkpoint();
        if brush.tool == Tool::Fill {
            self.fill(x, y, brush.colour);
            self.changed();
            return;
        }
        let n = self.size();
        self.stroke = Some(Stroke {
            last: (x, y),
            brush,
            coverage: vec![0.0; n * n],
        });
        self.dab(x, y);
        self.render();
    }

    /// Pointer moved to `(x, y)` while pressed: dabs all along the way from the last one.
    pub fn drag(&mut self, x: f32, y: f32) {
        let Some(s) = &self.stroke else { return };
        let (lx, ly) = s.last;
        let step = (s.brush.radius * SPACING).max(0.5);
        let dist = (x - lx).hypot(y - ly);
        let n = (dist / step).ceil().max(1.0) as usize;
        for i in 1..=n {
            let t = i as f32 / n as f32;
            self.dab(lx + (x - lx) * t, ly + (y - ly) * t);
        }
        if let Some(s) = &mut self.stroke {
            s.last = (x, y);
        }
        self.render();
    }

    pub fn end_stroke(&mut self) {
        self.stroke = None;
    }

    pub fn stroking(&self) -> bool {
        self.stroke.is_some()
    }

    fn dab(&mut self, cx: f32, cy: f32) {
        let n = self.size();
        let Some(s) = &mut self.stroke else { return };
        let r = s.brush.radius + 1.0;
        let (x0, x1) = (
            (cx - r).floor().max(0.0) as usize,
            ((cx + r).ceil() as usize).min(n),
        );
        let (y0, y1) = (
            (cy - r).floor().max(0.0) as usize,
            ((cy + r).ceil() as usize).min(n),
        );
        for y in y0..y1 {
            for x in x0..x1 {
                let d = (x as f32 + 0.5 - cx).hypot(y as f32 + 0.5 - cy);
                let c = s.brush.coverage(d);
                let cell = &mut s.coverage[y * n + x];
                *cell = cell.max(c);
            }
        }
    }

    /// The picture at the stroke's start with the stroke laid over it.
    fn render(&mut self) {
        let (Some(s), Some(base)) = (&self.stroke, self.undo.last()) else {
            return;
        };
        for (i, &c) in s.coverage.iter().enumerate() {
            if c <= 0.0 {
                continue;
            }
            let src = &base[i * 4..i * 4 + 4];
            let dst = &mut self.icon.rgba[i * 4..i * 4 + 4];
            match s.brush.tool {
                Tool::Eraser => {
                    dst.copy_from_slice(src);
                    dst[3] = src[3] * (1.0 - c);
                }
                _ => {
                    let a = s.brush.colour[3] * c;
                    let out_a = a + src[3] * (1.0 - a);
                    for k in 0..3 {
                        dst[k] = if out_a > 0.0 {
                            (s.brush.colour[k] * a + src[k] * src[3] * (1.0 - a)) / out_a
                        } else {
                            0.0
                        };
                    }
                    dst[3] = out_a;
                }
            }
        }
        self.changed();
    }

    /// Flood-fill (4-neighbours) the region of pixels that look like the one at `(x, y)`.
    fn fill(&mut self, x: f32, y: f32, colour: [f32; 4]) {
        let n = self.size();
        if x < 0.0 || y < 0.0 || x >= n as f32 || y >= n as f32 {
            return;
        }
        let px = |rgba: &[f32], i: usize| -> [f32; 4] {
            let p = &rgba[i * 4..i * 4 + 4];
            [p[0] * p[3], p[1] * p[3], p[2] * p[3], p[3]]
        };
        let start = y as usize * n + x as usize;
        let seed = px(&self.icon.rgba, start);
        let like = |p: [f32; 4]| p.iter().zip(seed).all(|(a, b)| (a - b).abs() < 0.1);
        let mut seen = vec![false; n * n];
        let mut stack = vec![start];
        seen[start] = true;
        let before = self.icon.rgba.clone();
        while let Some(i) = stack.pop() {
            self.icon.rgba[i * 4..i * 4 + 4].copy_from_slice(&colour);
            let (y, x) = (i / n, i % n);
            let mut visit = |j: usize| {
                if !seen[j] && like(px(&before, j)) {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < n {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - n);
            }
            if y + 1 < n {
                visit(i + n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alpha(c: &PaintCanvas, x: usize, y: usize) -> f32 {
        c.icon.rgba[(y * c.size() + x) * 4 + 3]
    }

    #[test]
    fn a_fast_drag_draws_a_line_not_dots() {
        let mut c = PaintCanvas::new(Icon::blank(64));
        let brush = Brush {
            radius: 2.0,
            softness: 0.0,
            ..Brush::default()
        };
        c.press(4.0, 32.0, brush);
        // One frame later the pointer is 50 px away.
        c.drag(54.0, 32.0);
        c.end_stroke();
        for x in 4..54 {
            assert!(alpha(&c, x, 31) > 0.99, "gap at {x}");
        }
        assert_eq!(alpha(&c, 30, 20), 0.0);
    }

    #[test]
    fn overlapping_dabs_of_one_stroke_do_not_pile_up() {
        let mut c = PaintCanvas::new(Icon::blank(32));
        let brush = Brush {
            colour: [1.0, 0.0, 0.0, 0.5],
            ..Brush::default()
        };
        c.press(16.0, 16.0, brush);
        for _ in 0..10 {
            c.drag(16.5, 16.0);
            c.drag(16.0, 16.0);
        }
        assert!((alpha(&c, 16, 16) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn undo_and_redo_round_trip_strokes_fills_and_clears() {
        let mut c = PaintCanvas::new(Icon::blank(32));
        let blank = c.icon.clone();
        c.press(10.0, 10.0, Brush::default());
        c.drag(20.0, 12.0);
        c.end_stroke();
        let stroked = c.icon.clone();
        assert_ne!(stroked, blank);
        c.press(
            1.0,
            30.0,
            Brush {
                tool: Tool::Fill,
                colour: [1.0, 0.9, 0.0, 1.0],
                ..Brush::default()
            },
        );
        let filled = c.icon.clone();
        // The fill took the transparent background, not the stroke.
        assert_eq!(alpha(&c, 31, 0), 1.0);
        assert!(c.icon.rgba[(11 * 32 + 15) * 4] < 0.5);
        c.press(
            15.0,
            11.0,
            Brush {
                tool: Tool::Eraser,
                radius: 3.0,
                softness: 0.0,
                ..Brush::default()
            },
        );
        c.end_stroke();
        assert_eq!(alpha(&c, 15, 11), 0.0);
        let erased = c.icon.clone();
        c.clear();
        assert!(c.icon.is_blank());
        for expected in [&erased, &filled, &stroked, &blank] {
            c.undo();
            assert_eq!(&c.icon, expected);
        }
        assert!(!c.can_undo());
        c.undo();
        assert_eq!(c.icon, blank);
        for expected in [&stroked, &filled, &erased] {
            c.redo();
            assert_eq!(&c.icon, expected);
        }
        // A new edit after undo drops the redo branch.
        c.undo();
        c.press(5.0, 5.0, Brush::default());
        c.end_stroke();
        assert!(!c.can_redo());
    }

    #[test]
    fn a_loaded_picture_is_fitted_and_undoable() {
        let mut c = PaintCanvas::new(Icon::blank(64));
        c.replace(&Icon::builtin("taiji", 200).unwrap());
        assert_eq!(c.icon.size, 64);
        assert!(!c.icon.is_blank());
        c.undo();
        assert!(c.icon.is_blank());
    }
}
