//! Image snapshots from the user's files: a folder of PNG/JPEG snapshots, or random square
//! crops of one large picture (an animal coat, a micrograph, a frame of a simulation).
//! Grey pictures give one channel, colour ones three (alpha composited on white, the canvas
//! colour of the image views); values are scaled to [-1, 1] like every image set.

use super::image_set::ImageSet;
use rand::rngs::StdRng;
use rand::seq::index;
use rand::{RngExt, SeedableRng};
use std::path::{Path, PathBuf};

/// The picture formats read (by extension, lower case).
pub const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

const GIB: f64 = (1u64 << 30) as f64;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImageFileError {
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    #[error("{path} holds no PNG or JPEG pictures")]
    NoImages { path: String },
    #[error("{path} is not a PNG or JPEG picture (nor a folder of them)")]
    NotAnImage { path: String },
    #[error("{path} is not a picture equiflow can read (damaged or truncated?): {reason}")]
    Decode { path: String, reason: String },
    #[error(
        "the pictures in {folder} are of mixed sizes ({first} is {w0}×{h0}, {other} is \
         {w1}×{h1}); set dataset.resize to the side every snapshot should be fitted to"
    )]
    MixedSizes {
        folder: String,
        first: String,
        w0: u32,
        h0: u32,
        other: String,
        w1: u32,
        h1: u32,
    },
    #[error(
        "a crop of {size}×{size} is larger than the picture {path} ({w}×{h}); set dataset.size \
         to at most {max}"
    )]
    CropTooLarge {
        path: String,
        size: usize,
        w: u32,
        h: u32,
        max: usize,
    },
    #[error(
        "{path} is {w}×{h}: decoding it needs {needed:.2} GiB, and equiflow may use at most \
         {budget:.2} GiB for data here; use a smaller picture"
    )]
    TooLarge {
        path: String,
        w: u32,
        h: u32,
        needed: f64,
        budget: f64,
    },
    #[error(
        "{n} snapshots of {size}² with {channels} channel(s) from {path} need {needed:.2} GiB, \
         and equiflow may use at most {budget:.2} GiB for data here; use fewer (dataset.n or \
         dataset.crops) or smaller ones"
    )]
    SetTooLarge {
        path: String,
        n: usize,
        size: usize,
        channels: usize,
        needed: f64,
        budget: f64,
    },
    #[error("dataset.n asks for {wanted} images, and {path} holds {found}")]
    TooFew {
        path: String,
        wanted: usize,
        found: usize,
    },
}

/// Where a user's image snapshots come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageLayout {
    /// A folder of pictures, one snapshot each (fitted to `size`² when theirs differs:
    /// the centre square, area-averaged).
    Folder,
    /// One large picture: `n` random crops of `size`², wrapping around its edges when
    /// `periodic` (a pattern on a torus), else inside it.
    Picture { periodic: bool },
}

/// What to read: the pictures at `path`, as snapshots of `size`² with `channels`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec<'a> {
    pub path: &'a str,
    pub layout: ImageLayout,
    pub size: usize,
    pub channels: usize,
}

/// What a path holds, read from the pictures' headers only.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// One picture (to crop), not a folder.
    pub picture: bool,
    /// Pictures found (1 for a picture).
    pub count: usize,
    /// The first picture's width and height.
    pub w: u32,
    pub h: u32,
    /// Every picture has the first one's size.
    pub same_size: bool,
    /// 3 when any picture has colour, else 1.
    pub channels: usize,
}

impl Probe {
    /// The largest snapshot side (a multiple of 4, at least 8) inside the first picture.
    pub fn fitted_side(&self) -> usize {
        let side = self.w.min(self.h) as usize;
        (side - side % 4).max(8)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImageFileError + '_ {
    move |e| ImageFileError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Whether `path` names a picture equiflow reads (by its extension).
pub fn is_picture(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .is_some_and(|e| EXTENSIONS.contains(&e.as_str()))
}

/// The pictures in `folder`, sorted by name (a fixed order, so a seed picks the same ones).
pub fn list(folder: &Path) -> Result<Vec<PathBuf>, ImageFileError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(io(folder))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_picture(p))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ImageFileError::NoImages {
            path: folder.display().to_string(),
        });
    }
    Ok(files)
}

fn decode_err(path: &Path, e: impl std::fmt::Display) -> ImageFileError {
    ImageFileError::Decode {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// A picture's size and channel count, from its header.
fn header(path: &Path) -> Result<(u32, u32, usize), ImageFileError> {
    use image::ImageDecoder;
    let reader = image::ImageReader::open(path)
        .map_err(io(path))?
        .with_guessed_format()
        .map_err(io(path))?;
    let decoder = reader.into_decoder().map_err(|e| decode_err(path, e))?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(decode_err(path, "it has no pixels"));
    }
    let channels = if decoder.color_type().has_color() {
        3
    } else {
        1
    };
    Ok((w, h, channels))
}

/// Read the headers of the picture or of every picture in the folder at `path`.
pub fn probe(path: &Path) -> Result<Probe, ImageFileError> {
    if path.is_dir() {
        let files = list(path)?;
        let (w, h, mut channels) = header(&files[0])?;
        let mut same_size = true;
        for f in &files[1..] {
            let (fw, fh, c) = header(f)?;
            same_size &= (fw, fh) == (w, h);
            channels = channels.max(c);
        }
        return Ok(Probe {
            picture: false,
            count: files.len(),
            w,
            h,
            same_size,
            channels,
        });
    }
    if !path.exists() {
        return Err(ImageFileError::Io {
            path: path.display().to_string(),
            message: "no such file or folder".into(),
        });
    }
    if !is_picture(path) {
        return Err(ImageFileError::NotAnImage {
            path: path.display().to_string(),
        });
    }
    let (w, h, channels) = header(path)?;
    Ok(Probe {
        picture: true,
        count: 1,
        w,
        h,
        same_size: true,
        channels,
    })
}

/// Every snapshot of a folder must have one size unless they are fitted to `resize`.
pub fn check_sizes(folder: &Path) -> Result<(), ImageFileError> {
    let files = list(folder)?;
    let (w0, h0, _) = header(&files[0])?;
    for f in &files[1..] {
        let (w1, h1, _) = header(f)?;
        if (w1, h1) != (w0, h0) {
            return Err(ImageFileError::MixedSizes {
                folder: folder.display().to_string(),
                first: name(&files[0]),
                w0,
                h0,
                other: name(f),
                w1,
                h1,
            });
        }
    }
    Ok(())
}

fn name(p: &Path) -> String {
    p.file_name()
        .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
}

/// A decoded picture, planar `[channels][h][w]`, in [-1, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    pub channels: usize,
    pub w: usize,
    pub h: usize,
    pub data: Vec<f32>,
}

/// Decode `path` into `channels` planes (colour read as grey by luminance, grey repeated
/// into colour), alpha composited on white; refused before decoding when it would take more
/// than `budget` bytes.
pub fn decode(path: &Path, channels: usize, budget: usize) -> Result<Plane, ImageFileError> {
    let (w, h, _) = header(path)?;
    // The decoder's buffer, its f32 RGBA copy and the planes.
    let needed = w as f64 * h as f64 * (4.0 + 16.0 + 4.0 * channels as f64);
    if needed > budget as f64 {
        return Err(ImageFileError::TooLarge {
            path: path.display().to_string(),
            w,
            h,
            needed: needed / GIB,
            budget: budget as f64 / GIB,
        });
    }
    let mut reader = image::ImageReader::open(path)
        .map_err(io(path))?
        .with_guessed_format()
        .map_err(io(path))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(budget as u64);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| decode_err(path, e))?;
    let rgba = img.to_rgba32f();
    let (w, h) = (w as usize, h as usize);
    let plane = w * h;
    let mut data = vec![0.0f32; channels * plane];
    for (i, px) in rgba.as_raw().chunks_exact(4).enumerate() {
        let a = px[3].clamp(0.0, 1.0);
        let on_white = |c: f32| c.clamp(0.0, 1.0) * a + (1.0 - a);
        let (r, g, b) = (on_white(px[0]), on_white(px[1]), on_white(px[2]));
        if channels == 1 {
            data[i] = (0.299 * r + 0.587 * g + 0.114 * b) * 2.0 - 1.0;
        } else {
            for (c, v) in [r, g, b].into_iter().enumerate().take(channels) {
                data[c * plane + i] = v * 2.0 - 1.0;
            }
        }
    }
    Ok(Plane {
        channels,
        w,
        h,
        data,
    })
}

impl Plane {
    /// The centre square, area-averaged to `side`² (no aliasing when shrinking a photo).
    pub fn fitted(&self, side: usize) -> Vec<f32> {
        let sq = self.w.min(self.h);
        let (ox, oy) = ((self.w - sq) / 2, (self.h - sq) / 2);
        if sq == side {
            return self.crop(ox, oy, side);
        }
        let scale = sq as f64 / side as f64;
        let plane = side * side;
        let mut out = vec![0.0f32; self.channels * plane];
        for py in 0..side {
            let (y0, y1) = (py as f64 * scale, (py + 1) as f64 * scale);
            for px in 0..side {
                let (x0, x1) = (px as f64 * scale, (px + 1) as f64 * scale);
                let mut acc = vec![0.0f64; self.channels];
                let mut area = 0.0;
                for sy in y0.floor() as usize..(y1.ceil() as usize).min(sq) {
                    let wy = (y1.min(sy as f64 + 1.0) - y0.max(sy as f64)).max(0.0);
                    for sx in x0.floor() as usize..(x1.ceil() as usize).min(sq) {
                        let wx = (x1.min(sx as f64 + 1.0) - x0.max(sx as f64)).max(0.0);
                        let wgt = wx * wy;
                        let src = (oy + sy) * self.w + ox + sx;
                        for (c, a) in acc.iter_mut().enumerate() {
                            *a += wgt * f64::from(self.data[c * self.w * self.h + src]);
                        }
                        area += wgt;
                    }
                }
                for (c, a) in acc.iter().enumerate() {
                    out[c * plane + py * side + px] = (a / area.max(1e-12)) as f32;
                }
            }
        }
        out
    }

    /// The `side`² square at (`x0`, `y0`), wrapping around the edges.
    pub fn crop(&self, x0: usize, y0: usize, side: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.channels * side * side);
        for c in 0..self.channels {
            let base = c * self.w * self.h;
            for y in 0..side {
                let row = base + ((y0 + y) % self.h) * self.w;
                out.extend((0..side).map(|x| self.data[row + (x0 + x) % self.w]));
            }
        }
        out
    }
}

/// Pictures decoded per [`FileLoader::step`] (crops are cheap: many per step).
const FILES_PER_STEP: usize = 8;
const CROPS_PER_STEP: usize = 256;

enum From {
    Folder(Vec<PathBuf>),
    Picture {
        plane: Plane,
        periodic: bool,
        rng: Box<StdRng>,
    },
}

/// The snapshots of an [`ImagesData`], read a few at a time (so the app shows progress and
/// can cancel).
pub struct FileLoader {
    from: From,
    n: usize,
    side: usize,
    channels: usize,
    budget: usize,
    data: Vec<f32>,
    done: usize,
}

impl FileLoader {
    /// `n` snapshots: a folder's first `n` pictures by name when it holds exactly `n`, else
    /// `n` of them picked with `seed`; a picture's `n` crops placed with `seed`.
    pub fn new(d: &Spec, n: usize, seed: u64) -> Result<Self, ImageFileError> {
        Self::within(d, n, seed, super::table::memory_budget())
    }

    /// [`FileLoader::new`] taking at most `budget` bytes: refused with the numbers, before
    /// anything is read, when the snapshots would not fit.
    pub fn within(d: &Spec, n: usize, seed: u64, budget: usize) -> Result<Self, ImageFileError> {
        let path = Path::new(&d.path);
        let needed = n as f64 * d.channels as f64 * (d.size * d.size) as f64 * 4.0;
        if needed > budget as f64 {
            return Err(ImageFileError::SetTooLarge {
                path: d.path.into(),
                n,
                size: d.size,
                channels: d.channels,
                needed: needed / GIB,
                budget: budget as f64 / GIB,
            });
        }
        let from = match d.layout {
            ImageLayout::Folder => {
                let files = list(path)?;
                if n > files.len() {
                    return Err(ImageFileError::TooFew {
                        path: d.path.into(),
                        wanted: n,
                        found: files.len(),
                    });
                }
                let picked = if n == files.len() {
                    files
                } else {
                    let mut rng = StdRng::seed_from_u64(seed);
                    let mut idx = index::sample(&mut rng, files.len(), n).into_vec();
                    idx.sort_unstable();
                    idx.into_iter().map(|i| files[i].clone()).collect()
                };
                From::Folder(picked)
            }
            ImageLayout::Picture { periodic } => {
                let plane = decode(path, d.channels, budget)?;
                if d.size > plane.w.min(plane.h) {
                    return Err(ImageFileError::CropTooLarge {
                        path: d.path.into(),
                        size: d.size,
                        w: plane.w as u32,
                        h: plane.h as u32,
                        max: plane.w.min(plane.h),
                    });
                }
                From::Picture {
                    plane,
                    periodic,
                    rng: Box::new(StdRng::seed_from_u64(seed)),
                }
            }
        };
        Ok(Self {
            from,
            n,
            side: d.size,
            channels: d.channels,
            budget,
            data: Vec::new(),
            done: 0,
        })
    }

    pub fn done(&self) -> usize {
        self.done
    }

    pub fn total(&self) -> usize {
        self.n
    }

    pub fn finished(&self) -> bool {
        self.done >= self.n
    }

    /// Read the next few snapshots.
    pub fn step(&mut self) -> Result<(), ImageFileError> {
        let side = self.side;
        match &mut self.from {
            From::Folder(files) => {
                let end = (self.done + FILES_PER_STEP).min(self.n);
                for f in &files[self.done..end] {
                    let plane = decode(f, self.channels, self.budget)?;
                    self.data.extend(plane.fitted(side));
                }
                self.done = end;
            }
            From::Picture {
                plane,
                periodic,
                rng,
            } => {
                let end = (self.done + CROPS_PER_STEP).min(self.n);
                for _ in self.done..end {
                    let (x, y) = if *periodic {
                        (rng.random_range(0..plane.w), rng.random_range(0..plane.h))
                    } else {
                        (
                            rng.random_range(0..=plane.w - side),
                            rng.random_range(0..=plane.h - side),
                        )
                    };
                    self.data.extend(plane.crop(x, y, side));
                }
                self.done = end;
            }
        }
        Ok(())
    }

    pub fn finish(self) -> ImageSet {
        ImageSet {
            n: self.done,
            channels: self.channels,
            h: self.side,
            w: self.side,
            data: self.data,
        }
    }
}

/// All `n` snapshots at once.
pub fn load(d: &Spec, n: usize, seed: u64) -> Result<ImageSet, ImageFileError> {
    let mut loader = FileLoader::new(d, n, seed)?;
    while !loader.finished() {
        loader.step()?;
    }
    Ok(loader.finish())
}

/// The SHA-256 of a picture, or of a folder's pictures (each name and its bytes, in order):
/// what a run records to notice a changed original.
pub fn sha256(path: &Path) -> Result<(String, u64), ImageFileError> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut bytes = 0u64;
    let files = if path.is_dir() {
        list(path)?
    } else {
        vec![path.to_path_buf()]
    };
    for f in &files {
        let b = std::fs::read(f).map_err(io(f))?;
        if path.is_dir() {
            h.update(name(f).as_bytes());
            h.update([0]);
        }
        h.update(&b);
        bytes += b.len() as u64;
    }
    Ok((
        h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        bytes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey 8-bit PNG of `w`×`h` whose pixel (x, y) is `f(x, y)`.
    pub fn grey_png(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> u8) {
        let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([f(x, y)]));
        img.save(path).unwrap();
    }

    fn folder_data(path: &Path, size: usize, channels: usize) -> Spec<'_> {
        Spec {
            path: path.to_str().unwrap(),
            layout: ImageLayout::Folder,
            size,
            channels,
        }
    }

    #[test]
    fn a_folder_reads_grey_and_colour_into_the_asked_channels_in_minus_one_to_one() {
        let dir = tempfile::tempdir().unwrap();
        grey_png(&dir.path().join("a.png"), 8, 8, |x, _| (x * 32) as u8);
        let rgba = image::RgbaImage::from_fn(8, 8, |x, _| {
            // Left half: opaque red; right half: fully transparent (white on the canvas).
            if x < 4 {
                image::Rgba([255, 0, 0, 255])
            } else {
                image::Rgba([0, 0, 0, 0])
            }
        });
        rgba.save(dir.path().join("b.png")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a picture").unwrap();
        let p = probe(dir.path()).unwrap();
        assert_eq!(
            (p.picture, p.count, p.w, p.h, p.channels),
            (false, 2, 8, 8, 3)
        );
        let set = load(&folder_data(dir.path(), 8, 3), 2, 0).unwrap();
        assert_eq!((set.n, set.channels, set.h, set.w), (2, 3, 8, 8));
        assert!(set.data.iter().all(|v| (-1.0..=1.0).contains(v)));
        // Grey repeated into each channel: x = 0 is black (-1) in all three.
        let a = set.image(0);
        assert_eq!((a[0], a[64], a[128]), (-1.0, -1.0, -1.0));
        // Red: (1, -1, -1); transparent: white (1, 1, 1).
        let b = set.image(1);
        assert_eq!((b[0], b[64], b[128]), (1.0, -1.0, -1.0));
        assert_eq!((b[7], b[64 + 7], b[128 + 7]), (1.0, 1.0, 1.0));
        // The same folder read as grey: one channel, red by its luminance.
        let grey = load(&folder_data(dir.path(), 8, 1), 2, 0).unwrap();
        assert_eq!(grey.channels, 1);
        assert!((grey.image(1)[0] - (0.299 * 2.0 - 1.0)).abs() < 1e-6);
    }

    #[test]
    fn fitting_averages_the_centre_square_and_a_subset_is_seeded() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            // 12×8: the centre square is x 2..10, black outside it; its one-pixel stripes
            // average to mid-grey (0) two columns at a time.
            grey_png(&dir.path().join(format!("{i}.png")), 12, 8, |x, _| {
                if (2..10).contains(&x) && x % 2 == 0 {
                    255
                } else {
                    0
                }
            });
        }
        let set = load(&folder_data(dir.path(), 4, 1), 5, 0).unwrap();
        assert_eq!((set.n, set.h), (5, 4));
        assert!(
            set.data.iter().all(|v| v.abs() < 1e-5),
            "{:?}",
            set.image(0)
        );
        let a = load(&folder_data(dir.path(), 8, 1), 3, 7).unwrap();
        let b = load(&folder_data(dir.path(), 8, 1), 3, 7).unwrap();
        assert_eq!(a, b);
        let err = load(&folder_data(dir.path(), 8, 1), 6, 7).unwrap_err();
        assert!(err.to_string().contains("holds 5"), "{err}");
    }

    #[test]
    fn crops_stay_inside_or_wrap_and_a_crop_larger_than_the_picture_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coat.png");
        // Each pixel's value names its column: a crop's first row tells where it was cut.
        grey_png(&path, 20, 10, |x, _| (x * 10) as u8);
        let d = |size, periodic| Spec {
            path: path.to_str().unwrap(),
            layout: ImageLayout::Picture { periodic },
            size,
            channels: 1,
        };
        let inside = load(&d(8, false), 300, 3).unwrap();
        let col = |v: f32| (((v + 1.0) / 2.0 * 255.0).round() / 10.0).round() as usize;
        for i in 0..inside.n {
            let row = &inside.image(i)[..8];
            let x0 = col(row[0]);
            assert!(x0 <= 12);
            assert!(row.iter().enumerate().all(|(k, &v)| col(v) == x0 + k));
        }
        let wrapped = load(&d(8, true), 300, 3).unwrap();
        let wraps = (0..wrapped.n).any(|i| col(wrapped.image(i)[7]) < col(wrapped.image(i)[0]));
        assert!(wraps, "some periodic crop crosses the right edge");
        let err = load(&d(12, true), 300, 3).unwrap_err();
        assert!(
            matches!(err, ImageFileError::CropTooLarge { max: 10, .. }),
            "{err}"
        );
    }

    #[test]
    fn mixed_sizes_garbage_and_empty_folders_get_a_sentence() {
        let dir = tempfile::tempdir().unwrap();
        grey_png(&dir.path().join("a.png"), 8, 8, |_, _| 0);
        grey_png(&dir.path().join("b.png"), 12, 8, |_, _| 0);
        let err = check_sizes(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("mixed sizes") && err.contains("b.png is 12×8"),
            "{err}"
        );
        std::fs::write(dir.path().join("c.png"), b"\x89PNG\r\n\x1a\n garbage").unwrap();
        let err = probe(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("c.png") && err.contains("damaged or truncated"),
            "{err}"
        );
        let empty = tempfile::tempdir().unwrap();
        let err = probe(empty.path()).unwrap_err().to_string();
        assert!(err.contains("holds no PNG or JPEG"), "{err}");
        let err = probe(&dir.path().join("missing.png"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such file"), "{err}");
    }

    #[test]
    fn pictures_beyond_the_budget_are_refused_with_numbers_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.png");
        grey_png(&path, 64, 64, |_, _| 0);
        let err = decode(&path, 1, 1000).unwrap_err().to_string();
        assert!(err.contains("64×64") && err.contains("GiB"), "{err}");
        let spec = Spec {
            path: path.to_str().unwrap(),
            layout: ImageLayout::Picture { periodic: true },
            size: 16,
            channels: 1,
        };
        let err = FileLoader::within(&spec, 10, 0, 4000)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("10 snapshots of 16²") && err.contains("GiB"),
            "{err}"
        );
        assert!(FileLoader::within(&spec, 10, 0, 1 << 20).is_ok());
    }
}
