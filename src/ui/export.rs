//! Exports of the live view that need an encoder (run off the UI thread).

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, RgbaImage};
use std::path::Path;

/// Write 8-bit RGBA frames `(w, h, pixels)` as an endlessly looping GIF at 20 frames per
/// second; returns how many frames were written.
pub fn write_gif(path: &Path, frames: &[(usize, usize, Vec<u8>)]) -> Result<usize, String> {
    crate::data::create_parent(path)
        .map_err(|e| format!("cannot create the folder of {}: {e}", path.display()))?;
    let file =
        std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut enc = GifEncoder::new_with_speed(std::io::BufWriter::new(file), 10);
    enc.set_repeat(Repeat::Infinite)
        .map_err(|e| e.to_string())?;
    let mut written = 0;
    for (w, h, px) in frames {
        let Some(img) = RgbaImage::from_raw(*w as u32, *h as u32, px.clone()) else {
            continue;
        };
        let frame = Frame::from_parts(img, 0, 0, Delay::from_numer_denom_ms(50, 1));
        enc.encode_frame(frame).map_err(|e| e.to_string())?;
        written += 1;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gif_of_frames_plays_back_the_same_frames() {
        use image::AnimationDecoder;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/anim.gif");
        // A dark square walking right over white.
        let frames: Vec<_> = (0..5)
            .map(|k| {
                let mut px = vec![255u8; 16 * 8 * 4];
                for y in 2..6 {
                    for x in 2 * k..2 * k + 4 {
                        px[(y * 16 + x) * 4..][..3].copy_from_slice(&[20, 40, 200]);
                    }
                }
                (16, 8, px)
            })
            .collect();
        assert_eq!(write_gif(&path, &frames).unwrap(), 5);
        let file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
        let decoded = image::codecs::gif::GifDecoder::new(file)
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap();
        assert_eq!(decoded.len(), 5);
        for (k, f) in decoded.iter().enumerate() {
            let img = f.buffer();
            assert_eq!(img.dimensions(), (16, 8));
            // The square is where it was drawn, the rest stays white.
            assert!(img.get_pixel(2 * k as u32 + 1, 3)[2] > 150);
            assert!(img.get_pixel(2 * k as u32 + 1, 3)[0] < 60);
            assert!(img.get_pixel(15, 0)[0] > 240);
        }
    }
}
