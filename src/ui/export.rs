//! Exports of the live view that need an encoder (run off the UI thread).

use crate::data::part_path;
use crossbeam_channel::{Sender, TrySendError, bounded};
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, RgbaImage};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;

/// Frames per second of exported animations (the GIF's 50 ms per frame).
const FPS: usize = 20;
/// Recorded videos are scaled up (nearest neighbour, so pixels stay crisp) to about this size.
const VIDEO_SIDE: usize = 512;
/// Frames waiting for the encoder; beyond this a frame is dropped rather than block the UI.
const QUEUE: usize = 64;

/// `ffmpeg` on PATH, if there is one.
pub fn find_ffmpeg() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("ffmpeg"))
        .find(|p| p.is_file())
}

/// A live recording: frames stream to an `ffmpeg` child as raw RGBA while the view plays,
/// so memory stays flat however long it records. The MP4 is written beside its final name
/// and renamed there only once ffmpeg has finished it.
pub struct Recorder {
    frames: Option<Sender<Vec<u8>>>,
    size: (usize, usize),
    sent: usize,
    dropped: usize,
    encoder: Option<JoinHandle<Result<(), String>>>,
    path: PathBuf,
}

impl Recorder {
    /// Start `ffmpeg` (the program at `ffmpeg`) encoding `w`×`h` frames into `path` (H.264).
    pub fn start(ffmpeg: &Path, path: &Path, w: usize, h: usize) -> Result<Self, String> {
        if w == 0 || h == 0 {
            return Err("nothing to record: the frame is empty".into());
        }
        crate::data::create_parent(path)
            .map_err(|e| format!("cannot create the folder of {}: {e}", path.display()))?;
        let part = part_path(path);
        // H.264 in yuv420p wants even sides: an odd side gets an even scale factor.
        let mut k = VIDEO_SIDE.div_ceil(w.max(h)).max(1);
        if (w * k) % 2 == 1 || (h * k) % 2 == 1 {
            k += 1;
        }
        let mut child = Command::new(ffmpeg)
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgba"])
            .args(["-s", &format!("{w}x{h}"), "-r", &FPS.to_string(), "-i", "-"])
            .args(["-vf", &format!("scale={}:{}:flags=neighbor", w * k, h * k)])
            .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18"])
            .args(["-movflags", "+faststart", "-f", "mp4"])
            .arg(&part)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", ffmpeg.display()))?;
        let mut stdin = child.stdin.take().expect("piped");
        let (tx, rx) = bounded::<Vec<u8>>(QUEUE);
        let (final_path, part_clone) = (path.to_path_buf(), part.clone());
        let encoder = std::thread::spawn(move || {
            let mut broken = None;
            for frame in rx {
                if broken.is_none()
                    && let Err(e) = stdin.write_all(&frame)
                {
                    broken = Some(e);
                }
            }
            drop(stdin);
            let out = child
                .wait_with_output()
                .map_err(|e| format!("ffmpeg did not finish: {e}"))?;
            if !out.status.success() || broken.is_some() {
                let _ = std::fs::remove_file(&part_clone);
                let said = String::from_utf8_lossy(&out.stderr);
                let said = said.trim();
                return Err(format!(
                    "ffmpeg failed ({}){}{}",
                    out.status,
                    if said.is_empty() { "" } else { ": " },
                    said.lines().last().unwrap_or("")
                ));
            }
            std::fs::rename(&part_clone, &final_path)
                .map_err(|e| format!("cannot write {}: {e}", final_path.display()))
        });
        Ok(Self {
            frames: Some(tx),
            size: (w, h),
            sent: 0,
            dropped: 0,
            encoder: Some(encoder),
            path: path.to_path_buf(),
        })
    }

    /// Queue one frame `(w, h, rgba)`; a frame of another size (the canvas changed) or one
    /// the encoder cannot take yet is dropped, never waited for.
    pub fn push(&mut self, (w, h, px): &(usize, usize, Vec<u8>)) {
        let Some(tx) = &self.frames else { return };
        if (*w, *h) != self.size || px.len() != w * h * 4 {
            self.dropped += 1;
            return;
        }
        match tx.try_send(px.clone()) {
            Ok(()) => self.sent += 1,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.dropped += 1,
        }
    }

    /// Frames recorded so far.
    pub fn frames(&self) -> usize {
        self.sent
    }

    /// Stop: let ffmpeg finish the file, then say what was written.
    pub fn finish(mut self) -> Result<String, String> {
        let (sent, dropped) = (self.sent, self.dropped);
        self.close()?;
        let skipped = if dropped > 0 {
            format!(", {dropped} skipped")
        } else {
            String::new()
        };
        Ok(format!(
            "Saved {} ({sent} frames at {FPS} per second{skipped}).",
            self.path.display()
        ))
    }

    fn close(&mut self) -> Result<(), String> {
        self.frames = None;
        match self.encoder.take() {
            Some(h) => h
                .join()
                .map_err(|_| "the video encoder crashed".to_string())?,
            None => Ok(()),
        }
    }
}

impl Drop for Recorder {
    /// Closing the app while recording still finishes the video.
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Write 8-bit RGBA frames `(w, h, pixels)` as an endlessly looping GIF at 20 frames per
/// second; returns how many frames were written.
pub fn write_gif<F: std::borrow::Borrow<(usize, usize, Vec<u8>)>>(
    path: &Path,
    frames: &[F],
) -> Result<usize, String> {
    crate::data::write_atomically(path, |file| {
        let mut enc = GifEncoder::new_with_speed(file, 10);
        enc.set_repeat(Repeat::Infinite)
            .map_err(std::io::Error::other)?;
        let mut written = 0;
        for (w, h, px) in frames.iter().map(|f| f.borrow()) {
            let Some(img) = RgbaImage::from_raw(*w as u32, *h as u32, px.clone()) else {
                continue;
            };
            let delay = Delay::from_numer_denom_ms(1000 / FPS as u32, 1);
            enc.encode_frame(Frame::from_parts(img, 0, 0, delay))
                .map_err(std::io::Error::other)?;
            written += 1;
        }
        Ok(written)
    })
    .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for ffmpeg: records its arguments, then writes what it reads to the
    /// output file (its last argument), or fails as an ffmpeg without H.264 would.
    fn fake_ffmpeg(dir: &Path, fail: bool) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("ffmpeg");
        let body = if fail {
            "cat >/dev/null; echo \"Unknown encoder 'libx264'\" >&2; exit 1".to_string()
        } else {
            format!(
                "echo \"$@\" > {}/args; for last; do :; done; cat > \"$last\"",
                dir.display()
            )
        };
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn frame(w: usize, h: usize, k: u8) -> (usize, usize, Vec<u8>) {
        (w, h, vec![k; w * h * 4])
    }

    #[test]
    fn a_recording_streams_every_frame_to_ffmpeg_and_lands_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let ffmpeg = fake_ffmpeg(dir.path(), false);
        let out = dir.path().join("exports/live.mp4");
        let mut r = Recorder::start(&ffmpeg, &out, 96, 48).unwrap();
        for k in 0..30 {
            r.push(&frame(96, 48, k));
        }
        // A frame of another size (the canvas changed) is skipped, not sent.
        r.push(&frame(48, 48, 0));
        assert_eq!(r.frames(), 30);
        let said = r.finish().unwrap();
        assert!(
            said.contains("30 frames") && said.contains("1 skipped"),
            "{said}"
        );
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(bytes.len(), 30 * 96 * 48 * 4);
        // Frames arrive whole and in order.
        assert!(bytes[..96 * 48 * 4].iter().all(|&b| b == 0));
        assert!(bytes[29 * 96 * 48 * 4..].iter().all(|&b| b == 29));
        assert!(!part_path(&out).exists());
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert!(args.contains("-s 96x48") && args.contains("rgba"), "{args}");
        // Scaled up by a whole factor to about 512 px, even sides for H.264.
        assert!(args.contains("scale=576:288:flags=neighbor"), "{args}");
    }

    #[test]
    fn an_odd_canvas_is_scaled_to_even_sides() {
        let dir = tempfile::tempdir().unwrap();
        let ffmpeg = fake_ffmpeg(dir.path(), false);
        // 512/31 rounds up to 17, and 31·17 is odd: the factor becomes 18.
        let r = Recorder::start(&ffmpeg, &dir.path().join("a.mp4"), 31, 31).unwrap();
        r.finish().unwrap();
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert!(args.contains("scale=558:558:"), "{args}");
    }

    #[test]
    fn a_failing_ffmpeg_says_why_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let ffmpeg = fake_ffmpeg(dir.path(), true);
        let out = dir.path().join("live.mp4");
        let mut r = Recorder::start(&ffmpeg, &out, 16, 16).unwrap();
        r.push(&frame(16, 16, 1));
        let e = r.finish().unwrap_err();
        assert!(e.contains("libx264"), "{e}");
        assert!(!out.exists() && !part_path(&out).exists());
        let missing = Recorder::start(&dir.path().join("nope"), &out, 16, 16);
        assert!(missing.is_err_and(|e| e.contains("cannot start")));
    }

    /// With a real ffmpeg on PATH (not on every machine): the file is a playable MP4.
    #[test]
    fn a_real_ffmpeg_writes_an_mp4() {
        let Some(ffmpeg) = find_ffmpeg() else {
            eprintln!("ffmpeg is not on PATH: the real encoder is not exercised here");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("live.mp4");
        let mut r = Recorder::start(&ffmpeg, &out, 32, 32).unwrap();
        for k in 0..10 {
            r.push(&frame(32, 32, 20 * k));
        }
        r.finish().unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(&bytes[4..8], b"ftyp", "an MP4 starts with its ftyp box");
    }

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
