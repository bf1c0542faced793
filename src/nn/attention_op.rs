//! Self-attention for inference on the CPU without the n × n weight matrix: the live
//! artificial-life canvas at 256² attends over 4096 pixels at the residual UNet's lowest
//! level, and burn's composed version writes, reads and frees a 64 MB matrix several times
//! per score call (fresh pages from the kernel each time). Here each block of queries
//! computes its scores against every key, its softmax and its share of the output in a
//! buffer that stays in cache, blocks spread over the threads. Training (autodiff tensors)
//! and other backends keep the composed version, which burn differentiates.

use super::circ_kernels::{lane_max, lane_sum, matmul};
use burn::backend::DispatchDevice;
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

/// Queries per block: their scores (`BLOCK` × n floats) stay in a core's cache.
const BLOCK: usize = 16;

/// Whether [`attention`] takes the fused path for tensors on `device`: the CPU backend
/// without autodiff, our kernels on.
pub fn fused_on(device: &Device) -> bool {
    super::circ_conv_op::own_kernels() && matches!(device.as_dispatch(), DispatchDevice::Flex(_))
}

/// softmax(q kᵀ / √c) v for `qkv` `[b, n, 3c]` (q, k, v side by side on the last axis, as
/// one linear layer makes them); `[b, n, c]`. Only where [`fused_on`] says so.
pub fn attention(qkv: Tensor<3>) -> Tensor<3> {
    let [b, n, c3] = qkv.dims();
    let c = c3 / 3;
    let device = qkv.device();
    let out = attention_host(&crate::tensor_util::to_vec(qkv), b, n, c);
    Tensor::from_data(TensorData::new(out, [b, n, c]), &device)
}

fn attention_host(qkv: &[f32], b: usize, n: usize, c: usize) -> Vec<f32> {
    let (row, scale) = (3 * c, 1.0 / (c as f32).sqrt());
    let mut out = vec![0f32; b * n * c];
    out.par_chunks_mut(n * c)
        .enumerate()
        .flat_map(|(img, o)| {
            o.par_chunks_mut(BLOCK * c)
                .enumerate()
                .map(move |(blk, o)| (img, blk * BLOCK, o))
        })
        .for_each_init(
            || vec![0f32; BLOCK * n],
            |scores, (img, q0, o)| {
                let rows = o.len() / c;
                let base = &qkv[img * n * row..(img + 1) * n * row];
                let s = &mut scores[..rows * n];
                // scores = q kᵀ: q rows at offset 0, kᵀ read column-wise from k's rows.
                matmul(
                    s,
                    &base[q0 * row..],
                    (row, 1),
                    &base[c..],
                    (1, row),
                    (rows, c, n),
                    false,
                );
                let mut sums = [0f32; BLOCK];
                for (r, sr) in s.chunks_mut(n).enumerate() {
                    let max = lane_max(sr);
                    sr.iter_mut()
                        .for_each(|v| *v = super::silu_op::exp((*v - max) * scale));
                    sums[r] = lane_sum(sr, |v| v) as f32;
                }
                matmul(
                    &mut o[..rows * c],
                    s,
                    (n, 1),
                    &base[2 * c..],
                    (row, 1),
                    (rows, n, c),
                    false,
                );
                for (r, or) in o[..rows * c].chunks_mut(c).enumerate() {
                    let inv = 1.0 / sums[r];
                    or.iter_mut().for_each(|v| *v *= inv);
                }
            },
        );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::to_vec;
    use burn::tensor::Distribution;
    use burn::tensor::activation::softmax;

    #[test]
    fn matches_the_composed_attention() {
        let _rng = crate::tensor_util::rng_lock();
        let device = Device::flex();
        device.seed(8);
        assert!(fused_on(&device) && !fused_on(&device.clone().autodiff()));
        // n a multiple of the block and not; large logits.
        for [b, n, c] in [[2usize, 64, 8], [3, 37, 5]] {
            let qkv = Tensor::<3>::random([b, n, 3 * c], Distribution::Normal(0.0, 4.0), &device);
            let q = qkv.clone().narrow(2, 0, c);
            let k = qkv.clone().narrow(2, c, c);
            let v = qkv.clone().narrow(2, 2 * c, c);
            let w = softmax(q.matmul(k.swap_dims(1, 2)).div_scalar((c as f64).sqrt()), 2);
            let want = to_vec(w.matmul(v));
            let got = to_vec(attention(qkv));
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
            }
        }
    }
}
