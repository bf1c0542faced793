//! Plain-Rust kernels of the circular k×k convolution (odd k) on host slices, NCHW, f32:
//! the forward pass and both backward passes as im2col + one matrix product per image.
//!
//! Why our own: burn's CPU backend computes a convolution's input gradient with a direct
//! transposed convolution and its weight gradient as a convolution whose kernel is the whole
//! image, and our circular padding costs two concatenations per call on top. Folding the
//! wrap into the im2col indexing and using one gemm per image for each pass is several
//! times faster on the UNet's shapes (`equiflow bench --images`).
//!
//! The input gradient of a circular convolution is itself a circular convolution of the
//! output gradient, with the kernel flipped in space and its channel axes swapped, so the
//! forward kernel serves both.

use rayon::prelude::*;

/// Shapes of one call: batch, input and output channels, image side, kernel side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
}

impl ConvShape {
    fn hw(&self) -> usize {
        self.h * self.w
    }

    /// Rows of the im2col matrix: one per (input channel, ky, kx), the weight's layout.
    fn rows(&self) -> usize {
        self.c_in * self.k * self.k
    }

    fn check(&self, x: &[f32], weight: &[f32]) {
        assert!(self.k % 2 == 1, "circular convolutions need an odd kernel");
        assert!(
            self.k / 2 <= self.h && self.k / 2 <= self.w,
            "kernel wider than the image"
        );
        assert_eq!(x.len(), self.batch * self.c_in * self.hw(), "input size");
        assert_eq!(weight.len(), self.c_out * self.rows(), "weight size");
    }
}

impl ConvShape {
    /// Width of a padded row: the image's plus the wrap on both sides.
    fn wp(&self) -> usize {
        self.w + 2 * (self.k / 2)
    }

    /// Columns of the im2col matrix: every pixel of the padded width on the image's rows
    /// (the last 2p of each row are computed and dropped).
    fn cols_len(&self) -> usize {
        self.h * self.wp()
    }

    /// Size of one channel's padded plane, with the 2p values the last window reads past it.
    fn plane_len(&self) -> usize {
        let p = self.k / 2;
        (self.h + 2 * p) * self.wp() + 2 * p
    }
}

/// The im2col matrix `[c_in·k·k, h·wp]` of one image `[c_in, h, w]`, wrapping at the borders.
/// Each channel is padded once; on the padded width, the window of (ky, kx) over all output
/// pixels is one contiguous run of the padded plane starting at ky·wp + kx, so each row of
/// the matrix is a single copy.
fn im2col(x: &[f32], s: &ConvShape, plane: &mut [f32], cols: &mut [f32]) {
    let (h, w, k, wp, hw) = (s.h, s.w, s.k, s.wp(), s.hw());
    let p = k / 2;
    let len = s.cols_len();
    for ci in 0..s.c_in {
        let src = &x[ci * hw..(ci + 1) * hw];
        for py in 0..h + 2 * p {
            let sy = (py + h - p) % h;
            let row = &src[sy * w..(sy + 1) * w];
            let dst = &mut plane[py * wp..(py + 1) * wp];
            dst[..p].copy_from_slice(&row[w - p..]);
            dst[p..p + w].copy_from_slice(row);
            dst[p + w..].copy_from_slice(&row[..p]);
        }
        for ky in 0..k {
            for kx in 0..k {
                let r = (ci * k + ky) * k + kx;
                let at = ky * wp + kx;
                cols[r * len..(r + 1) * len].copy_from_slice(&plane[at..at + len]);
            }
        }
    }
}

/// Row-major matrix product `dst = a·b (+ dst when accumulate)` with explicit strides:
/// `a` is m×k (row stride `a_rs`, column stride `a_cs`), `b` k×n likewise, `dst` m×n dense.
#[allow(clippy::too_many_arguments)]
fn matmul(
    dst: &mut [f32],
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
    threads: usize,
) {
    assert!(dst.len() >= m * n);
    assert!(m == 0 || k == 0 || a.len() > (m - 1) * a_rs + (k - 1) * a_cs);
    assert!(k == 0 || n == 0 || b.len() > (k - 1) * b_rs + (n - 1) * b_cs);
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every index the strides reach inside the slices, and
    // `dst` does not alias `a` or `b` (it is borrowed mutably).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// One task's scratch: a padded plane, the im2col matrix and an output on the padded width.
struct Buffers {
    plane: Vec<f32>,
    cols: Vec<f32>,
    wide: Vec<f32>,
}

impl Buffers {
    fn new(s: &ConvShape) -> Self {
        if s.k == 1 {
            return Self {
                plane: Vec::new(),
                cols: Vec::new(),
                wide: Vec::new(),
            };
        }
        Self {
            plane: vec![0f32; s.plane_len()],
            cols: vec![0f32; s.rows() * s.cols_len()],
            wide: vec![0f32; s.c_out.max(s.c_in) * s.cols_len()],
        }
    }
}

/// How to spread a batch over the threads: images per task (one task per thread when there
/// are enough images), and the threads each matrix product may use (all of them when the
/// images are too few to share out).
fn split(batch: usize) -> (usize, usize) {
    let threads = rayon::current_num_threads().max(1);
    if batch >= threads && threads > 1 {
        (batch.div_ceil(threads), 1)
    } else {
        (batch.max(1), threads)
    }
}

/// The convolution of `x` `[B, c_in, h, w]` with `weight` `[c_out, c_in, k, k]` and an
/// optional `bias` `[c_out]`, wrapping at the borders; returns `[B, c_out, h, w]`.
pub fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, s: &ConvShape) -> Vec<f32> {
    s.check(x, weight);
    let (hw, rows) = (s.hw(), s.rows());
    let mut out = vec![0f32; s.batch * s.c_out * hw];
    if s.batch == 0 || hw == 0 {
        return out;
    }
    let (len, wp) = (s.cols_len(), s.wp());
    let one = |x_b: &[f32], out_b: &mut [f32], buf: &mut Buffers, threads: usize| {
        if s.k == 1 {
            matmul(
                out_b,
                weight,
                (rows, 1),
                x_b,
                (hw, 1),
                (s.c_out, rows, hw),
                false,
                threads,
            );
        } else {
            im2col(x_b, s, &mut buf.plane, &mut buf.cols);
            let (cols, wide) = (&buf.cols, &mut buf.wide);
            matmul(
                wide,
                weight,
                (rows, 1),
                cols,
                (len, 1),
                (s.c_out, rows, len),
                false,
                threads,
            );
            // Drop the padded columns.
            for (o, w) in out_b.chunks_mut(s.w).zip(wide.chunks(wp)) {
                o.copy_from_slice(&w[..s.w]);
            }
        }
        if let Some(bias) = bias {
            for (row, b) in out_b.chunks_mut(hw).zip(bias) {
                row.iter_mut().for_each(|v| *v += b);
            }
        }
    };
    let (per_task, threads) = split(s.batch);
    // One task per thread, each with its own buffers for its images.
    x.par_chunks(s.c_in * hw * per_task)
        .zip(out.par_chunks_mut(s.c_out * hw * per_task))
        .for_each(|(xs, outs)| {
            let mut buf = Buffers::new(s);
            for (x_b, out_b) in xs.chunks(s.c_in * hw).zip(outs.chunks_mut(s.c_out * hw)) {
                one(x_b, out_b, &mut buf, threads);
            }
        });
    out
}

/// The kernel that maps the output gradient to the input gradient: flipped in space, its
/// channel axes swapped (`[c_in, c_out, k, k]`).
pub fn adjoint_weight(weight: &[f32], s: &ConvShape) -> Vec<f32> {
    let k = s.k;
    let mut out = vec![0f32; weight.len()];
    for co in 0..s.c_out {
        for ci in 0..s.c_in {
            for ky in 0..k {
                for kx in 0..k {
                    let src = ((co * s.c_in + ci) * k + ky) * k + kx;
                    let dst = ((ci * s.c_out + co) * k + (k - 1 - ky)) * k + (k - 1 - kx);
                    out[dst] = weight[src];
                }
            }
        }
    }
    out
}

/// The gradient with respect to the input, for the output gradient `grad` `[B, c_out, h, w]`.
pub fn input_grad(grad: &[f32], weight: &[f32], s: &ConvShape) -> Vec<f32> {
    let adjoint = ConvShape {
        c_in: s.c_out,
        c_out: s.c_in,
        ..*s
    };
    forward(grad, &adjoint_weight(weight, s), None, &adjoint)
}

/// The gradient with respect to the weight `[c_out, c_in, k, k]`: Σ over images of
/// grad_b · im2col(x_b)ᵀ.
pub fn weight_grad(x: &[f32], grad: &[f32], s: &ConvShape) -> Vec<f32> {
    let (hw, rows) = (s.hw(), s.rows());
    assert_eq!(x.len(), s.batch * s.c_in * hw, "input size");
    assert_eq!(grad.len(), s.batch * s.c_out * hw, "gradient size");
    let size = s.c_out * rows;
    if s.batch == 0 || hw == 0 {
        return vec![0f32; size];
    }
    let (len, wp) = (s.cols_len(), s.wp());
    let one = |x_b: &[f32], g_b: &[f32], acc: &mut [f32], buf: &mut Buffers, threads| {
        if s.k == 1 {
            // x_bᵀ is hw×rows: row stride 1, column stride hw.
            matmul(
                acc,
                g_b,
                (hw, 1),
                x_b,
                (1, hw),
                (s.c_out, hw, rows),
                true,
                threads,
            );
            return;
        }
        im2col(x_b, s, &mut buf.plane, &mut buf.cols);
        // The gradient on the padded width, zero in the dropped columns.
        for (w, g) in buf.wide.chunks_mut(wp).zip(g_b.chunks(s.w)) {
            w[..s.w].copy_from_slice(g);
            w[s.w..].fill(0.0);
        }
        let (wide, cols) = (&buf.wide, &buf.cols);
        matmul(
            acc,
            wide,
            (len, 1),
            cols,
            (1, len),
            (s.c_out, len, rows),
            true,
            threads,
        );
    };
    let (per_task, threads) = split(s.batch);
    let partials: Vec<Vec<f32>> = x
        .par_chunks(s.c_in * hw * per_task)
        .zip(grad.par_chunks(s.c_out * hw * per_task))
        .map(|(xs, gs)| {
            let mut acc = vec![0f32; size];
            let mut buf = Buffers::new(s);
            for (x_b, g_b) in xs.chunks(s.c_in * hw).zip(gs.chunks(s.c_out * hw)) {
                one(x_b, g_b, &mut acc, &mut buf, threads);
            }
            acc
        })
        .collect();
    let mut total = vec![0f32; size];
    for p in &partials {
        total.iter_mut().zip(p).for_each(|(t, v)| *t += v);
    }
    total
}

/// The gradient with respect to the bias: the output gradient summed over images and pixels.
pub fn bias_grad(grad: &[f32], s: &ConvShape) -> Vec<f32> {
    let hw = s.hw();
    let mut out = vec![0f64; s.c_out];
    for g_b in grad.chunks(s.c_out * hw) {
        for (o, row) in out.iter_mut().zip(g_b.chunks(hw)) {
            *o += row.iter().map(|&v| v as f64).sum::<f64>();
        }
    }
    out.into_iter().map(|v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one output at a time.
    fn naive(x: &[f32], weight: &[f32], bias: &[f32], s: &ConvShape) -> Vec<f32> {
        let (h, w, k) = (s.h as isize, s.w as isize, s.k);
        let p = (k / 2) as isize;
        let mut out = vec![0f32; s.batch * s.c_out * s.hw()];
        for b in 0..s.batch {
            for co in 0..s.c_out {
                for y in 0..h {
                    for xx in 0..w {
                        let mut acc = bias[co] as f64;
                        for ci in 0..s.c_in {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let sy = (y + ky as isize - p).rem_euclid(h);
                                    let sx = (xx + kx as isize - p).rem_euclid(w);
                                    let xi = ((b * s.c_in + ci) as isize * h + sy) * w + sx;
                                    let wi = ((co * s.c_in + ci) * k + ky) * k + kx;
                                    acc += (weight[wi] * x[xi as usize]) as f64;
                                }
                            }
                        }
                        out[((b * s.c_out + co) as isize * h + y) as usize * s.w + xx as usize] =
                            acc as f32;
                    }
                }
            }
        }
        out
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let v = (i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed * 97);
                ((v >> 8) % 2000) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (p, q)) in a.iter().zip(b).enumerate() {
            assert!((p - q).abs() <= tol * (1.0 + q.abs()), "[{i}] {p} vs {q}");
        }
    }

    fn shapes() -> Vec<ConvShape> {
        let s = |batch, c_in, c_out, h, w, k| ConvShape {
            batch,
            c_in,
            c_out,
            h,
            w,
            k,
        };
        // One image (threaded product), a batch (images over threads), non-square, 1×1, 5×5.
        vec![
            s(1, 2, 3, 5, 6, 3),
            s(4, 3, 2, 4, 7, 3),
            s(3, 2, 5, 6, 4, 1),
            s(2, 2, 2, 5, 5, 5),
        ]
    }

    #[test]
    fn forward_matches_the_definition() {
        for s in shapes() {
            let x = values(s.batch * s.c_in * s.hw(), 1);
            let wt = values(s.c_out * s.rows(), 2);
            let b = values(s.c_out, 3);
            close(
                &forward(&x, &wt, Some(&b), &s),
                &naive(&x, &wt, &b, &s),
                1e-5,
            );
        }
    }

    /// ⟨conv(x), g⟩ is linear in x and in the weight, so its gradients are exact: compare
    /// them with the change of ⟨conv(x), g⟩ along a random direction.
    #[test]
    fn gradients_are_the_adjoints_of_the_forward_pass() {
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| (p * q) as f64).sum::<f64>();
        for s in shapes() {
            let x = values(s.batch * s.c_in * s.hw(), 4);
            let wt = values(s.c_out * s.rows(), 5);
            let g = values(s.batch * s.c_out * s.hw(), 6);
            let dx = values(x.len(), 7);
            let dw = values(wt.len(), 8);
            let zero = vec![0f32; s.c_out];
            // ⟨conv(dx; w), g⟩ = ⟨dx, input_grad(g)⟩
            let lhs = dot(&naive(&dx, &wt, &zero, &s), &g);
            let rhs = dot(&dx, &input_grad(&g, &wt, &s));
            assert!(
                (lhs - rhs).abs() < 1e-3 * (1.0 + lhs.abs()),
                "{s:?}: {lhs} vs {rhs}"
            );
            // ⟨conv(x; dw), g⟩ = ⟨dw, weight_grad(x, g)⟩
            let lhs = dot(&naive(&x, &dw, &zero, &s), &g);
            let rhs = dot(&dw, &weight_grad(&x, &g, &s));
            assert!(
                (lhs - rhs).abs() < 1e-3 * (1.0 + lhs.abs()),
                "{s:?}: {lhs} vs {rhs}"
            );
            // The bias gradient is the sum of g per output channel.
            for (co, got) in bias_grad(&g, &s).into_iter().enumerate() {
                let want: f64 = (0..s.batch)
                    .flat_map(|b| {
                        let at = (b * s.c_out + co) * s.hw();
                        g[at..at + s.hw()].iter().map(|&v| v as f64)
                    })
                    .sum();
                assert!((got as f64 - want).abs() < 1e-4, "{got} vs {want}");
            }
        }
    }
}
