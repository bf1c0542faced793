//! Plain-Rust kernels of the circular k×k convolution (odd k) on host slices, NCHW, f32:
//! each image's channels padded once with the wrap; the forward pass as one matrix product
//! per kernel tap reading the padded planes in place, the weight gradient as im2col + one
//! product per image.
//!
//! Why our own: burn's CPU backend computes a convolution's input gradient with a direct
//! transposed convolution and its weight gradient as a convolution whose kernel is the whole
//! image, and our circular padding costs two concatenations per call on top. Folding the
//! wrap into the padded planes and using gemm for each pass is several times faster on the
//! UNet's shapes (`equiflow bench --images`).
//!
//! The input gradient of a circular convolution is itself a circular convolution of the
//! output gradient, with the kernel flipped in space and its channel axes swapped, so the
//! forward kernel serves both.

use rayon::prelude::*;
use std::mem::MaybeUninit;

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

    /// Width of a padded row: the image's plus the wrap on both sides.
    fn wp(&self) -> usize {
        self.w + 2 * (self.k / 2)
    }
}

/// A piece of work: image `b`, output rows `y0..y1`.
#[derive(Debug, Clone, Copy)]
struct Task {
    b: usize,
    y0: usize,
    y1: usize,
}

impl Task {
    /// Columns of its im2col matrix: every pixel of the padded width on its rows (the last
    /// 2p of each row are computed and dropped).
    fn cols_len(&self, s: &ConvShape) -> usize {
        (self.y1 - self.y0) * s.wp()
    }
}

/// The tasks of a call, in a fixed order (so sums over them do not depend on scheduling):
/// whole images when there are at least as many as threads, else each image cut into bands
/// of rows so every thread has work (the live canvas is one image).
fn tasks(s: &ConvShape) -> Vec<Task> {
    let threads = rayon::current_num_threads().max(1);
    let bands = if s.batch >= threads {
        1
    } else {
        threads.div_ceil(s.batch.max(1)).min(s.h.max(1))
    };
    (0..s.batch)
        .flat_map(|b| {
            (0..bands).map(move |j| Task {
                b,
                y0: s.h * j / bands,
                y1: s.h * (j + 1) / bands,
            })
        })
        .collect()
}

/// One thread's scratch, kept between calls: a fresh allocation of the (tens of MB) im2col
/// matrix on every call costs more in page faults than the copy into it.
#[derive(Default)]
struct Scratch {
    plane: Vec<f32>,
    cols: Vec<f32>,
    wide: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// The first `n` values of a kept buffer, grown when short (never shrunk: callers read only
/// what they wrote).
pub(super) fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

/// The im2col matrix `[c_in·k·k, (y1−y0)·wp]` of rows y0..y1 of one image `[c_in, h, w]`,
/// wrapping at the borders. Each channel's rows y0−p..y1+p are padded once; on the padded
/// width the window of (ky, kx) over all output pixels is one contiguous run of that plane
/// starting at ky·wp + kx, so each row of the matrix is a single copy.
fn im2col(x: &[f32], s: &ConvShape, t: &Task, plane: &mut Vec<f32>, cols: &mut [f32]) {
    let (k, wp) = (s.k, s.wp());
    let len = t.cols_len(s);
    let plane_len = pad_planes(x, s, t, plane);
    for ci in 0..s.c_in {
        let plane = &plane[ci * plane_len..(ci + 1) * plane_len];
        for ky in 0..k {
            for kx in 0..k {
                let r = (ci * k + ky) * k + kx;
                let at = ky * wp + kx;
                cols[r * len..(r + 1) * len].copy_from_slice(&plane[at..at + len]);
            }
        }
    }
}

/// Rows y0−p..y1+p of every channel of one image `[c_in, h, w]`, wrapped at the borders and
/// padded to the width `wp`, one channel after another in `planes`; returns one channel's
/// length. On the padded width the window of kernel tap (ky, kx) over the task's output
/// pixels is the contiguous run of a channel starting at ky·wp + kx.
fn pad_planes(x: &[f32], s: &ConvShape, t: &Task, planes: &mut Vec<f32>) -> usize {
    let (h, w, wp, hw) = (s.h, s.w, s.wp(), s.hw());
    let p = s.k / 2;
    // The last window reads 2p values past the padded rows (dropped columns): keep them 0.
    let plane_len = (t.y1 - t.y0 + 2 * p) * wp + 2 * p;
    let planes = sized(planes, s.c_in * plane_len);
    for (ci, plane) in planes.chunks_mut(plane_len).enumerate() {
        let src = &x[ci * hw..(ci + 1) * hw];
        for (i, py) in (t.y0..t.y1 + 2 * p).enumerate() {
            let sy = (py + h - p) % h;
            let row = &src[sy * w..(sy + 1) * w];
            let dst = &mut plane[i * wp..(i + 1) * wp];
            dst[..p].copy_from_slice(&row[w - p..]);
            dst[p..p + w].copy_from_slice(row);
            dst[p + w..].copy_from_slice(&row[..p]);
        }
        plane[plane_len - 2 * p..].fill(0.0);
    }
    plane_len
}

/// Row-major matrix product `dst = a·b (+ dst when accumulate)` with explicit strides:
/// `a` is m×k (row stride `a_rs`, column stride `a_cs`), `b` k×n likewise, `dst` m×n dense.
pub(super) fn matmul(
    dst: &mut [f32],
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
) {
    assert!(dst.len() >= m * n);
    assert!(m == 0 || k == 0 || a.len() > (m - 1) * a_rs + (k - 1) * a_cs);
    assert!(k == 0 || n == 0 || b.len() > (k - 1) * b_rs + (n - 1) * b_cs);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
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
            gemm::Parallelism::None,
        );
    }
}

/// The output rows y0..y1 of one image, `[c_out, (y1−y0)·wp]` on the padded width, into
/// `wide`.
fn forward_task(x: &[f32], weight: &[f32], s: &ConvShape, t: &Task, wide: &mut [f32]) {
    let (hw, rows) = (s.hw(), s.rows());
    let x_b = &x[t.b * s.c_in * hw..(t.b + 1) * s.c_in * hw];
    let len = t.cols_len(s);
    if s.k == 1 {
        let x_t = &x_b[t.y0 * s.w..];
        matmul(
            wide,
            weight,
            (rows, 1),
            x_t,
            (hw, 1),
            (s.c_out, rows, len),
            false,
        );
        return;
    }
    SCRATCH.with_borrow_mut(|sc| {
        // One product per kernel tap, each reading its window of the padded planes in
        // place: no im2col copy (the product packs its operand anyway).
        let plane_len = pad_planes(x_b, s, t, &mut sc.plane);
        let kk = s.k * s.k;
        for ky in 0..s.k {
            for kx in 0..s.k {
                let tap = ky * s.k + kx;
                matmul(
                    wide,
                    &weight[tap..],
                    (rows, kk),
                    &sc.plane[ky * s.wp() + kx..],
                    (plane_len, 1),
                    (s.c_out, s.c_in, len),
                    tap > 0,
                );
            }
        }
    });
}

/// A vector of `n` values written by `fill`, with no zeroing pass before it (on the
/// training step's tensors that pass was a few per cent of the step, on one thread).
///
/// # Safety
/// `fill` must write every element of the slice it is given.
pub(super) unsafe fn written(n: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut v = Vec::with_capacity(n);
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: the caller's `fill` initialised all `n` elements.
    unsafe { v.set_len(n) };
    v
}

/// Σ f(v) over a run, in 16 f32 lanes (vectorised) summed in f64.
#[inline(always)]
pub(super) fn lane_sum(v: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut lanes = [0f32; 16];
    let mut chunks = v.chunks_exact(16);
    for c in &mut chunks {
        for i in 0..16 {
            lanes[i] += f(c[i]);
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|&x| f(x) as f64).sum();
    tail + lanes.iter().map(|&x| x as f64).sum::<f64>()
}

/// The largest value of a run, in 16 lanes so the loop vectorises (a plain fold over
/// `f32::max` does not).
pub(super) fn lane_max(v: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 16];
    let mut chunks = v.chunks_exact(16);
    for c in &mut chunks {
        for i in 0..16 {
            lanes[i] = if c[i] > lanes[i] { c[i] } else { lanes[i] };
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    lanes.iter().fold(tail, |m, &x| m.max(x))
}

/// Copy a task's rows from the padded width into the image `out_b` `[c_out, h, w]`, adding
/// the bias: writes every value of those rows.
fn place(
    wide: &[f32],
    out_b: &mut [MaybeUninit<f32>],
    bias: Option<&[f32]>,
    s: &ConvShape,
    t: &Task,
) {
    let (hw, wp, len) = (s.hw(), s.wp(), t.cols_len(s));
    for co in 0..s.c_out {
        let b = bias.map_or(0.0, |b| b[co]);
        let src = &wide[co * len..(co + 1) * len];
        let dst = &mut out_b[co * hw + t.y0 * s.w..co * hw + t.y1 * s.w];
        for (d, r) in dst.chunks_mut(s.w).zip(src.chunks(wp)) {
            d.iter_mut().zip(r).for_each(|(d, &v)| {
                d.write(v + b);
            });
        }
    }
}

/// The convolution of `x` `[B, c_in, h, w]` with `weight` `[c_out, c_in, k, k]` and an
/// optional `bias` `[c_out]`, wrapping at the borders; returns `[B, c_out, h, w]`.
pub fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, s: &ConvShape) -> Vec<f32> {
    s.check(x, weight);
    let hw = s.hw();
    if s.batch == 0 || hw == 0 {
        return vec![0f32; s.batch * s.c_out * hw];
    }
    let tasks = tasks(s);
    let fill = |out: &mut [MaybeUninit<f32>]| {
        if tasks.len() == s.batch {
            // Whole images: each writes its own output.
            out.par_chunks_mut(s.c_out * hw)
                .zip(tasks.par_iter())
                .for_each(|(out_b, t)| {
                    let mut wide = SCRATCH.with_borrow_mut(|sc| std::mem::take(&mut sc.wide));
                    forward_task(x, weight, s, t, sized(&mut wide, s.c_out * t.cols_len(s)));
                    place(&wide, out_b, bias, s, t);
                    SCRATCH.with_borrow_mut(|sc| sc.wide = wide);
                });
        } else {
            let bands: Vec<Vec<f32>> = tasks
                .par_iter()
                .map(|t| {
                    let mut wide = vec![0f32; s.c_out * t.cols_len(s)];
                    forward_task(x, weight, s, t, &mut wide);
                    wide
                })
                .collect();
            for (t, wide) in tasks.iter().zip(&bands) {
                let out_b = &mut out[t.b * s.c_out * hw..(t.b + 1) * s.c_out * hw];
                place(wide, out_b, bias, s, t);
            }
        }
    };
    // SAFETY: the tasks cover every row of every image, and `place` writes all of a task's
    // rows in every output channel.
    unsafe { written(s.batch * s.c_out * hw, fill) }
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
/// grad_b · im2col(x_b)ᵀ, summed over the tasks in their fixed order.
pub fn weight_grad(x: &[f32], grad: &[f32], s: &ConvShape) -> Vec<f32> {
    let (hw, rows, wp) = (s.hw(), s.rows(), s.wp());
    assert_eq!(x.len(), s.batch * s.c_in * hw, "input size");
    assert_eq!(grad.len(), s.batch * s.c_out * hw, "gradient size");
    let size = s.c_out * rows;
    let mut total = vec![0f32; size];
    if s.batch == 0 || hw == 0 {
        return total;
    }
    let tasks = tasks(s);
    // Whole images: a few images per partial sum, one partial per thread.
    let threads = rayon::current_num_threads().max(1);
    let per = if tasks.len() == s.batch {
        s.batch.div_ceil(threads)
    } else {
        1
    };
    let partials: Vec<Vec<f32>> = tasks
        .par_chunks(per)
        .map(|group| {
            let mut acc = vec![0f32; size];
            for t in group {
                let x_b = &x[t.b * s.c_in * hw..(t.b + 1) * s.c_in * hw];
                let g_b = &grad[t.b * s.c_out * hw..(t.b + 1) * s.c_out * hw];
                let len = t.cols_len(s);
                if s.k == 1 {
                    // The rows' pixels, transposed: row stride 1, column stride hw.
                    let (x_t, g_t) = (&x_b[t.y0 * s.w..], &g_b[t.y0 * s.w..]);
                    matmul(
                        &mut acc,
                        g_t,
                        (hw, 1),
                        x_t,
                        (1, hw),
                        (s.c_out, len, rows),
                        true,
                    );
                    continue;
                }
                SCRATCH.with_borrow_mut(|sc| {
                    let Scratch { plane, cols, wide } = sc;
                    let cols = sized(cols, rows * len);
                    im2col(x_b, s, t, plane, cols);
                    // The gradient on the padded width, zero in the dropped columns.
                    let wide = sized(wide, s.c_out * len);
                    for co in 0..s.c_out {
                        let g = &g_b[co * hw + t.y0 * s.w..co * hw + t.y1 * s.w];
                        let dst = &mut wide[co * len..(co + 1) * len];
                        for (d, r) in dst.chunks_mut(wp).zip(g.chunks(s.w)) {
                            d[..s.w].copy_from_slice(r);
                            d[s.w..].fill(0.0);
                        }
                    }
                    matmul(
                        &mut acc,
                        wide,
                        (len, 1),
                        cols,
                        (1, len),
                        (s.c_out, len, rows),
                        true,
                    );
                });
            }
            acc
        })
        .collect();
    for p in &partials {
        total.iter_mut().zip(p).for_each(|(t, v)| *t += v);
    }
    total
}

/// The gradient with respect to the bias: the output gradient summed over images and pixels.
/// One channel per task; each plane summed in 16 lanes (vectorised), the planes in f64.
pub fn bias_grad(grad: &[f32], s: &ConvShape) -> Vec<f32> {
    let hw = s.hw();
    assert_eq!(grad.len(), s.batch * s.c_out * hw, "gradient size");
    (0..s.c_out)
        .into_par_iter()
        .map(|co| {
            let total: f64 = (0..s.batch)
                .map(|b| lane_sum(&grad[(b * s.c_out + co) * hw..][..hw], |v| v))
                .sum();
            total as f32
        })
        .collect()
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
        // One image (cut into bands of rows), a batch (images over threads), non-square, 1×1,
        // 5×5, 1×1 on one image.
        vec![
            s(1, 2, 3, 5, 6, 3),
            s(4, 3, 2, 4, 7, 3),
            s(3, 2, 5, 6, 4, 1),
            s(2, 2, 2, 5, 5, 5),
            s(1, 3, 2, 5, 4, 1),
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
