//! The low-dimensional denoiser's loss mean ‖mlp([x, t]) + x − target‖² and its gradient,
//! by hand on the host (the CPU's path for [`super::score_mlp::ScoreMlp`]; see
//! [`super::flow_grad`] for why: burn's small operations on `[2048, 64]` tensors cost more
//! in memory traffic than in arithmetic). Blocks of rows in cache, one matrix product per
//! layer, the parameters' gradient summed in block order (the same batch, the same bits).

use super::circ_kernels::{matmul, sized};
use rayon::prelude::*;

const ROWS: usize = 128;

/// Sizes and the flat parameter layout `[W₁ ((d+1)×h), b₁, W₂ (h×h), b₂, W₃ (h×d), b₃]`,
/// weights as burn's `Linear` (`[in, out]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub dim: usize,
    pub hidden: usize,
}

impl Layout {
    pub fn offsets(&self) -> [usize; 7] {
        let (d, h) = (self.dim, self.hidden);
        let sizes = [(d + 1) * h, h, h * h, h, h * d, d];
        let mut o = [0; 7];
        for (i, s) in sizes.iter().enumerate() {
            o[i + 1] = o[i] + s;
        }
        o
    }

    pub fn params(&self) -> usize {
        self.offsets()[6]
    }
}

#[derive(Default)]
struct Block {
    n: usize,
    input: Vec<f32>,
    a: [Vec<f32>; 2],
    out: Vec<f32>,
    da: Vec<f32>,
    dh: Vec<f32>,
    grad: Vec<f32>,
    sq: f64,
}

/// Reusable buffers for [`loss_and_grad`].
#[derive(Default)]
pub struct Workspace {
    blocks: Vec<Block>,
}

/// The loss at noised points `xt` (rows of d) with time inputs `t` (one per row) against
/// `target` (rows of d), and its gradient laid out as the parameters.
pub fn loss_and_grad(
    params: &[f32],
    l: &Layout,
    xt: &[f32],
    t: &[f32],
    target: &[f32],
    ws: &mut Workspace,
) -> (f64, Vec<f32>) {
    let d = l.dim;
    assert_eq!(params.len(), l.params());
    let rows = t.len();
    assert!(rows > 0 && xt.len() == rows * d && target.len() == rows * d);
    ws.blocks.resize_with(rows.div_ceil(ROWS), Block::default);
    let values = rows * d;
    let o = l.offsets();
    let p = |i: usize| &params[o[i]..o[i + 1]];
    let (w, b) = ([p(0), p(2), p(4)], [p(1), p(3), p(5)]);
    ws.blocks
        .par_iter_mut()
        .zip(xt.par_chunks(ROWS * d))
        .zip(t.par_chunks(ROWS).zip(target.par_chunks(ROWS * d)))
        .for_each(|((blk, x), (tb, tg))| {
            let n = tb.len();
            blk.n = n;
            let widths = [d + 1, l.hidden, l.hidden, d];
            let input = sized(&mut blk.input, n * (d + 1));
            for r in 0..n {
                input[r * (d + 1)..r * (d + 1) + d].copy_from_slice(&x[r * d..(r + 1) * d]);
                input[r * (d + 1) + d] = tb[r];
            }
            for layer in 0..3 {
                let (k, m) = (widths[layer], widths[layer + 1]);
                let (below, above) = blk.a.split_at_mut(layer.min(2));
                let src: &[f32] = if layer == 0 {
                    &blk.input
                } else {
                    &below[layer - 1]
                };
                let dst = if layer == 2 {
                    sized(&mut blk.out, n * m)
                } else {
                    sized(&mut above[0], n * m)
                };
                matmul(dst, src, (k, 1), w[layer], (m, 1), (n, k, m), false);
                for row in dst.chunks_mut(m) {
                    row.iter_mut().zip(b[layer]).for_each(|(v, b)| *v += b);
                    if layer < 2 {
                        row.iter_mut().for_each(|v| *v = v.max(0.0));
                    }
                }
            }
            // out + x − target, then d loss / d out = 2 (·) / (B·d) in place.
            let scale = 2.0 / values as f32;
            let mut sq = 0f64;
            for ((o, &xv), &tv) in blk.out.iter_mut().zip(x).zip(tg) {
                let e = *o + xv - tv;
                sq += (e as f64) * (e as f64);
                *o = e * scale;
            }
            blk.sq = sq;
            backward(blk, &w, l);
        });
    let mut grad = vec![0f32; l.params()];
    let mut sq = 0f64;
    for blk in &ws.blocks {
        grad.iter_mut().zip(&blk.grad).for_each(|(g, v)| *g += v);
        sq += blk.sq;
    }
    (sq / values as f64, grad)
}

fn backward(blk: &mut Block, w: &[&[f32]; 3], l: &Layout) {
    let (d, h, n) = (l.dim, l.hidden, blk.n);
    let o = l.offsets();
    let widths = [d + 1, h, h, d];
    let grad = sized(&mut blk.grad, l.params());
    // The gradient w.r.t. the current layer's output: `out` for the last layer, then `dh`.
    let mut from_out = true;
    for layer in (0..3).rev() {
        let (k, m) = (widths[layer], widths[layer + 1]);
        let src: &[f32] = if layer == 0 {
            &blk.input
        } else {
            &blk.a[layer - 1]
        };
        let dy: &[f32] = if from_out { &blk.out } else { &blk.dh };
        let gw = &mut grad[o[2 * layer]..o[2 * layer + 1]];
        matmul(gw, src, (1, k), dy, (m, 1), (k, n, m), false);
        let gb = &mut grad[o[2 * layer + 1]..o[2 * layer + 2]];
        gb.fill(0.0);
        for row in dy[..n * m].chunks(m) {
            gb.iter_mut().zip(row).for_each(|(g, v)| *g += v);
        }
        if layer == 0 {
            break;
        }
        let da = sized(&mut blk.da, n * k);
        matmul(da, dy, (m, 1), w[layer], (1, m), (n, m, k), false);
        // Through the ReLU: its output is positive exactly where it passes gradient.
        let dh = sized(&mut blk.dh, n * k);
        for ((g, &a), &act) in dh.iter_mut().zip(da.iter()).zip(&blk.a[layer - 1][..n * k]) {
            *g = if act > 0.0 { a } else { 0.0 };
        }
        from_out = false;
    }
}
