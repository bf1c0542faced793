//! Mapping data coordinates onto a screen rectangle, and the colours the views share.

use egui::{Color32, Pos2, Rect, pos2};

/// Two data axes shown in a rectangle with equal scale on both (circles stay round).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plane {
    pub rect: Rect,
    /// Data coordinates at the rectangle's centre and pixels per data unit.
    centre: [f32; 2],
    scale: f32,
    pub axes: (usize, usize),
}

impl Plane {
    /// Fit the bounds of `axes` into `rect`, keeping the aspect ratio.
    pub fn fit(rect: Rect, bounds: &[[f32; 2]], axes: (usize, usize)) -> Self {
        let (bx, by) = (bounds[axes.0], bounds[axes.1]);
        let (w, h) = ((bx[1] - bx[0]).max(1e-6), (by[1] - by[0]).max(1e-6));
        Self {
            rect,
            centre: [(bx[0] + bx[1]) / 2.0, (by[0] + by[1]) / 2.0],
            scale: (rect.width() / w).min(rect.height() / h),
            axes,
        }
    }

    /// The axes a view of `dim`-dimensional data shows: (x, y) in the plane; above, the
    /// data axes the user picked for x and z (`picked`, [x, y, z]; Lorenz shows x against z).
    pub fn axes_for(dim: usize, picked: [usize; 3]) -> (usize, usize) {
        if dim >= 3 {
            (picked[0].min(dim - 1), picked[2].min(dim - 1))
        } else {
            (0, 1)
        }
    }

    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// A data row (any dimension) to the screen; y grows upwards in data space.
    pub fn to_screen(&self, p: &[f32]) -> Pos2 {
        let c = self.rect.center();
        pos2(
            c.x + (p[self.axes.0] - self.centre[0]) * self.scale,
            c.y - (p[self.axes.1] - self.centre[1]) * self.scale,
        )
    }

    /// A data vector to a screen offset.
    pub fn vec_to_screen(&self, v: &[f32]) -> egui::Vec2 {
        egui::vec2(v[self.axes.0] * self.scale, -v[self.axes.1] * self.scale)
    }
}

/// Many small square dots as one mesh: one shape instead of thousands of circles keeps
/// software-rendered frames fast.
pub fn dots(
    painter: &egui::Painter,
    points: impl Iterator<Item = Pos2>,
    size: f32,
    colour: Color32,
) {
    let mut mesh = egui::Mesh::default();
    let half = egui::vec2(size, size) / 2.0;
    for p in points {
        mesh.add_colored_rect(Rect::from_min_max(p - half, p + half), colour);
    }
    painter.add(egui::Shape::mesh(mesh));
}

/// Line segments, each end with its own colour, gathered into one mesh. Trails are thousands
/// of short segments; as separate shapes they cost a software-rendered frame its rate.
#[derive(Default)]
pub struct Segments {
    mesh: egui::Mesh,
}

impl Segments {
    pub fn add(&mut self, a: Pos2, b: Pos2, width: f32, from: Color32, to: Color32) {
        let d = b - a;
        let len = d.length();
        if !(len > 1e-3 && len.is_finite()) {
            return;
        }
        let n = egui::vec2(-d.y, d.x) * (width / 2.0 / len);
        let i = self.mesh.vertices.len() as u32;
        self.mesh.colored_vertex(a + n, from);
        self.mesh.colored_vertex(a - n, from);
        self.mesh.colored_vertex(b + n, to);
        self.mesh.colored_vertex(b - n, to);
        self.mesh.add_triangle(i, i + 1, i + 2);
        self.mesh.add_triangle(i + 1, i + 3, i + 2);
    }

    /// A square dot of side `size`.
    pub fn dot(&mut self, p: Pos2, size: f32, colour: Color32) {
        let half = egui::vec2(size, size) / 2.0;
        self.mesh
            .add_colored_rect(Rect::from_min_max(p - half, p + half), colour);
    }

    pub fn paint(self, painter: &egui::Painter) {
        painter.add(egui::Shape::mesh(self.mesh));
    }
}

/// A perceptually ordered colour ramp (dark blue → teal → yellow), `t` in [0, 1].
pub fn ramp(t: f32) -> Color32 {
    const STOPS: [[f32; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f32;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f32;
    let c: [u8; 3] = std::array::from_fn(|k| (STOPS[i][k] * (1.0 - f) + STOPS[i + 1][k] * f) as u8);
    Color32::from_rgb(c[0], c[1], c[2])
}

/// The colour of the data points and of the samples, chosen to read on both themes.
pub const DATA: Color32 = Color32::from_rgb(90, 150, 230);
pub const SAMPLES: Color32 = Color32::from_rgb(240, 140, 60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plane_keeps_circles_round_and_centres_the_bounds() {
        let rect = Rect::from_min_max(pos2(0.0, 0.0), pos2(400.0, 200.0));
        let p = Plane::fit(rect, &[[-2.0, 2.0], [-1.0, 1.0]], (0, 1));
        assert_eq!(p.to_screen(&[0.0, 0.0]), pos2(200.0, 100.0));
        // The y range (2 units) fills the 200 px height; x uses the same scale.
        assert_eq!(p.to_screen(&[0.0, 1.0]), pos2(200.0, 0.0));
        assert_eq!(p.to_screen(&[1.0, 0.0]), pos2(300.0, 100.0));
        let v = p.vec_to_screen(&[1.0, 1.0]);
        assert_eq!((v.x, v.y), (100.0, -100.0));
        // Lorenz shows x against z.
        let q = Plane::fit(
            rect,
            &[[-1.0, 1.0], [-9.0, 9.0], [-1.0, 1.0]],
            Plane::axes_for(3, [0, 1, 2]),
        );
        assert_eq!(q.to_screen(&[0.0, 5.0, 1.0]), pos2(200.0, 0.0));
    }

    #[test]
    fn the_ramp_runs_from_dark_to_bright_and_ignores_nan() {
        let lum = |c: Color32| c.r() as u32 + c.g() as u32 + c.b() as u32;
        assert!(lum(ramp(0.0)) < lum(ramp(0.5)) && lum(ramp(0.5)) < lum(ramp(1.0)));
        assert_eq!(ramp(f32::NAN), ramp(0.0));
        assert_eq!(ramp(7.0), ramp(1.0));
    }
}
