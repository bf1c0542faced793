//! An orbit camera for the 3-D views: yaw and pitch around a target, perspective projection.
//! Pure math, so it is tested without a window.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OrbitCamera {
    /// Rotation about the vertical (z) axis, radians.
    pub yaw: f32,
    /// Elevation above the horizontal plane, radians, kept inside ±89°.
    pub pitch: f32,
    /// Distance from the target.
    pub distance: f32,
    pub target: [f32; 3],
    /// Vertical field of view, radians.
    pub fov: f32,
}

impl Default for OrbitCamera {
    fn default() -> Self {
        // Looking along +y, a little from above: the classic butterfly in the x–z plane.
        Self {
            yaw: -1.25,
            pitch: 0.3,
            distance: 10.0,
            target: [0.0; 3],
            fov: 0.7,
        }
    }
}

const MAX_PITCH: f32 = 89.0 * std::f32::consts::PI / 180.0;

/// A projected point: screen position relative to the view's centre (y down, in units of
/// half the view height) and its depth in front of the camera.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projected {
    pub x: f32,
    pub y: f32,
    pub depth: f32,
}

impl OrbitCamera {
    /// Rotate by a mouse drag of (dx, dy) pixels.
    pub fn drag(&mut self, dx: f32, dy: f32) {
        self.yaw -= dx * 0.01;
        self.pitch = (self.pitch + dy * 0.01).clamp(-MAX_PITCH, MAX_PITCH);
    }

    /// Zoom by a scroll of `amount` (positive = closer).
    pub fn zoom(&mut self, amount: f32) {
        self.distance = (self.distance * (-amount * 0.002).exp()).clamp(0.5, 100.0);
    }

    pub fn reset(&mut self) {
        *self = Self {
            target: self.target,
            ..Self::default()
        };
    }

    /// Camera basis: right, up, forward (from the eye towards the target), all unit length.
    fn basis(&self) -> ([f32; 3], [f32; 3], [f32; 3]) {
        let (sy, cy) = self.yaw.sin_cos();
        let (sp, cp) = self.pitch.sin_cos();
        // The eye sits at target - distance * forward.
        let forward = [-cp * cy, -cp * sy, -sp];
        let right = [-sy, cy, 0.0];
        // up = right × forward
        let up = [
            right[1] * forward[2] - right[2] * forward[1],
            right[2] * forward[0] - right[0] * forward[2],
            right[0] * forward[1] - right[1] * forward[0],
        ];
        (right, up, forward)
    }

    pub fn eye(&self) -> [f32; 3] {
        let (_, _, f) = self.basis();
        std::array::from_fn(|i| self.target[i] - self.distance * f[i])
    }

    /// Project a world point; `None` when it is behind (or almost at) the eye.
    pub fn project(&self, p: [f32; 3]) -> Option<Projected> {
        let (r, u, f) = self.basis();
        let eye = self.eye();
        let d: [f32; 3] = std::array::from_fn(|i| p[i] - eye[i]);
        let dot = |a: [f32; 3]| a[0] * d[0] + a[1] * d[1] + a[2] * d[2];
        let depth = dot(f);
        if depth < 1e-3 {
            return None;
        }
        let scale = 1.0 / ((self.fov / 2.0).tan() * depth);
        Some(Projected {
            x: dot(r) * scale,
            y: -dot(u) * scale,
            depth,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn the_target_projects_to_the_centre_at_the_orbit_distance() {
        let c = OrbitCamera {
            target: [1.0, -2.0, 3.0],
            ..OrbitCamera::default()
        };
        let p = c.project(c.target).unwrap();
        assert!(close(p.x, 0.0) && close(p.y, 0.0) && close(p.depth, c.distance));
        // The eye really is `distance` away from the target.
        let e = c.eye();
        let d: f32 = (0..3)
            .map(|i| (e[i] - c.target[i]).powi(2))
            .sum::<f32>()
            .sqrt();
        assert!(close(d, c.distance));
    }

    #[test]
    fn up_is_up_and_right_is_right_from_the_front() {
        // yaw 0, pitch 0: the eye looks along −x at the origin; +z is up, +y is right.
        let c = OrbitCamera {
            yaw: 0.0,
            pitch: 0.0,
            ..OrbitCamera::default()
        };
        let up = c.project([0.0, 0.0, 1.0]).unwrap();
        assert!(close(up.x, 0.0) && up.y < 0.0, "{up:?}");
        let right = c.project([0.0, 1.0, 0.0]).unwrap();
        assert!(right.x > 0.0 && close(right.y, 0.0), "{right:?}");
        // A point nearer the eye along the view axis has smaller depth.
        let near = c.project([1.0, 0.0, 0.0]).unwrap();
        assert!(close(near.depth, c.distance - 1.0));
        // Behind the eye: not drawn.
        assert!(c.project([c.distance + 1.0, 0.0, 0.0]).is_none());
    }

    #[test]
    fn a_quarter_turn_of_yaw_brings_the_side_to_the_front() {
        let mut c = OrbitCamera {
            yaw: 0.0,
            pitch: 0.0,
            ..OrbitCamera::default()
        };
        let before = c.project([0.0, 1.0, 0.0]).unwrap();
        c.yaw = std::f32::consts::FRAC_PI_2;
        let after = c.project([0.0, 1.0, 0.0]).unwrap();
        assert!(before.x > 0.0 && close(before.depth, c.distance));
        // Now +y points at the eye: centred, one unit nearer.
        assert!(
            close(after.x, 0.0) && close(after.depth, c.distance - 1.0),
            "{after:?}"
        );
    }

    #[test]
    fn drag_clamps_pitch_zoom_clamps_distance_and_reset_restores() {
        let mut c = OrbitCamera::default();
        c.drag(0.0, 1e6);
        assert!(close(c.pitch, MAX_PITCH));
        c.drag(0.0, -1e6);
        assert!(close(c.pitch, -MAX_PITCH));
        let d = c.distance;
        c.zoom(100.0);
        assert!(c.distance < d);
        c.zoom(1e9);
        assert!(close(c.distance, 0.5));
        c.zoom(-1e9);
        assert!(close(c.distance, 100.0));
        c.target = [1.0, 2.0, 3.0];
        c.reset();
        assert_eq!(
            c,
            OrbitCamera {
                target: [1.0, 2.0, 3.0],
                ..OrbitCamera::default()
            }
        );
        // Projection stays finite at the pitch limit (no gimbal flip).
        c.drag(0.0, 1e6);
        let p = c.project([0.3, 0.2, 0.1]).unwrap();
        assert!(p.x.is_finite() && p.y.is_finite());
    }
}
