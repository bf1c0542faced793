//! A table of numbers from the user's file: CSV, TSV, whitespace-separated text or NumPy
//! `.npy`. Every way a file can be wrong is a [`DataError`] that says where (line and
//! column) and what; no input makes the reader abort on an allocation.

use std::io::{BufRead, Read};
use std::path::Path;

/// Row-major numbers with the header's column names, if the file had a header.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub rows: usize,
    pub cols: usize,
    pub names: Option<Vec<String>>,
    pub values: Vec<f64>,
}

impl Table {
    /// Bytes its numbers take in memory.
    pub fn bytes(&self) -> usize {
        self.values.len() * std::mem::size_of::<f64>()
    }
}

/// How a file's cells are separated, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Delimited(u8),
    /// Runs of spaces or tabs (`.txt`, `.dat`).
    Whitespace,
    Npy,
}

impl Format {
    pub const EXTENSIONS: &[&str] = &["csv", "tsv", "tab", "txt", "dat", "npy"];

    pub fn of(path: &Path) -> Result<Self, DataError> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        Ok(match ext.as_str() {
            "csv" => Format::Delimited(b','),
            "tsv" | "tab" => Format::Delimited(b'\t'),
            "txt" | "dat" => Format::Whitespace,
            "npy" => Format::Npy,
            _ => {
                return Err(DataError::Format {
                    path: path.display().to_string(),
                    ext,
                });
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataError {
    #[error(
        "{path}: cannot tell the format from the extension '{ext}'; equiflow reads .csv, .tsv, \
         .txt (numbers separated by spaces) and .npy files"
    )]
    Format { path: String, ext: String },
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}, line {line}, column {column}: '{cell}' is not a number")]
    NotANumber {
        path: String,
        line: usize,
        column: String,
        cell: String,
    },
    #[error(
        "{path}, line {line}, column {column}: {what}; every value must be a finite number \
         (remove or fill the row)"
    )]
    NotFinite {
        path: String,
        line: usize,
        column: String,
        what: &'static str,
    },
    #[error("{path}, line {line}: {found} cells where {expected_from} has {expected}")]
    Ragged {
        path: String,
        line: usize,
        found: usize,
        expected: usize,
        expected_from: String,
    },
    #[error("{path} holds no numbers (only a header, comments or blank lines)")]
    Empty { path: String },
    #[error(
        "{path} is too large to load: {needed:.2} GiB of numbers by line {line} (about \
         {estimate:.2} GiB for the whole file), and equiflow may use at most {budget:.2} GiB for \
         data here; take a subsample of the rows"
    )]
    TooLarge {
        path: String,
        line: usize,
        needed: f64,
        estimate: f64,
        budget: f64,
    },
    #[error(
        "{path} is too large to load: its array needs {needed:.2} GiB of numbers, and equiflow \
         may use at most {budget:.2} GiB for data here; take a subsample of the rows"
    )]
    NpyTooLarge {
        path: String,
        needed: f64,
        budget: f64,
    },
    #[error(
        "{path}, row {row}, column {column} (both from 0): {what}; every value must be a \
         finite number (remove or fill the row)"
    )]
    NpyNotFinite {
        path: String,
        row: usize,
        column: usize,
        what: &'static str,
    },
    #[error("{path} is not a NumPy array file: {message}")]
    NotNpy { path: String, message: String },
    #[error(
        "{path} holds an array of shape {shape:?}; equiflow needs a 2-D array, one row per \
         snapshot and one column per axis"
    )]
    NpyShape { path: String, shape: Vec<u64> },
    #[error(
        "{path} holds {dtype} numbers; equiflow reads float32 and float64 arrays (convert it \
         with array.astype('float64'))"
    )]
    NpyType { path: String, dtype: String },
    #[error(
        "{path} ends early (truncated?): its header promises {expected} numbers, the file \
         holds {found}"
    )]
    Truncated {
        path: String,
        expected: u64,
        found: u64,
    },
    /// A table that is readable but cannot be used as snapshots.
    #[error("{0}")]
    Unusable(String),
}

/// The most memory a loaded table may take: 8 GiB, or half of what the machine has free if
/// that is less (so a huge file is refused with numbers rather than ending in an abort).
pub fn memory_budget() -> usize {
    let cap = 8usize << 30;
    available_memory().map_or(cap, |free| cap.min(free / 2))
}

fn available_memory() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

const GIB: f64 = (1u64 << 30) as f64;

/// Read `path` as a table, its numbers taking at most `budget` bytes.
pub fn read(path: &Path, budget: usize) -> Result<Table, DataError> {
    let format = Format::of(path)?;
    let name = path.display().to_string();
    let io = |e: std::io::Error| DataError::Io {
        path: name.clone(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let reader = std::io::BufReader::with_capacity(1 << 16, file);
    match format {
        Format::Npy => read_npy(reader, &name, budget),
        Format::Delimited(d) => read_text(reader, &name, size, Some(d), budget),
        Format::Whitespace => read_text(reader, &name, size, None, budget),
    }
}

/// Grows `values` by `more` slots without aborting when memory runs out or the budget is hit.
fn reserve(values: &mut Vec<f64>, more: usize, budget: usize) -> Result<(), ()> {
    if values.len() + more <= values.capacity() {
        return Ok(());
    }
    let want = (values.capacity() * 2).max(values.len() + more).max(4096);
    let want = want.min(budget / 8).max(values.len() + more);
    if want * 8 > budget {
        return Err(());
    }
    values
        .try_reserve_exact(want - values.len())
        .map_err(|_| ())
}

/// Cells of one line: `delim` or runs of blanks; surrounding blanks and double quotes removed.
fn split_cells(line: &str, delim: Option<u8>, out: &mut Vec<std::ops::Range<usize>>) {
    out.clear();
    let bytes = line.as_bytes();
    let trim = |mut a: usize, mut b: usize| {
        while a < b && bytes[a].is_ascii_whitespace() {
            a += 1;
        }
        while b > a && bytes[b - 1].is_ascii_whitespace() {
            b -= 1;
        }
        if b >= a + 2 && bytes[a] == b'"' && bytes[b - 1] == b'"' {
            (a + 1)..(b - 1)
        } else {
            a..b
        }
    };
    match delim {
        Some(d) => {
            let mut start = 0;
            let mut quoted = false;
            for (i, &c) in bytes.iter().enumerate() {
                if c == b'"' {
                    quoted = !quoted;
                } else if c == d && !quoted {
                    out.push(trim(start, i));
                    start = i + 1;
                }
            }
            out.push(trim(start, bytes.len()));
        }
        None => {
            let mut start = None;
            for (i, &c) in bytes.iter().enumerate() {
                match (c == b' ' || c == b'\t', start) {
                    (true, Some(s)) => {
                        out.push(s..i);
                        start = None;
                    }
                    (false, None) => start = Some(i),
                    _ => {}
                }
            }
            if let Some(s) = start {
                out.push(s..bytes.len());
            }
        }
    }
}

/// A cell as a number, `None` when it is not one (NaN and infinity are numbers here: the
/// caller names them).
fn number(cell: &str) -> Option<f64> {
    cell.parse::<f64>().ok()
}

/// The separator a file really uses, from its first line with content: the extension's
/// (`delim`, or blanks when `None`) unless that line holds none of it and holds another
/// (a `.csv` written with semicolons or tabs, a `.txt` with commas).
fn sniff(line: &str, delim: Option<u8>) -> Option<u8> {
    let has = |c: u8| line.as_bytes().contains(&c);
    // Blanks separate cells anyway where no delimiter is named, so a tab says nothing there.
    let others: &[u8] = if delim.is_some() { b",;\t" } else { b",;" };
    match delim {
        Some(d) if has(d) => Some(d),
        _ => others.iter().copied().find(|&c| has(c)).or(delim),
    }
}

fn read_text(
    mut reader: impl BufRead,
    path: &str,
    size: u64,
    delim: Option<u8>,
    budget: usize,
) -> Result<Table, DataError> {
    let mut delim = delim;
    let mut line = String::new();
    let mut cells = Vec::new();
    let mut values: Vec<f64> = Vec::new();
    let mut names: Option<Vec<String>> = None;
    let mut cols = 0usize;
    let mut first_line = 0usize;
    let mut rows = 0usize;
    let mut read_bytes = 0u64;
    let mut lineno = 0usize;
    let column_name = |names: &Option<Vec<String>>, c: usize| match names {
        Some(n) if !n[c].is_empty() => format!("{} ('{}')", c + 1, n[c]),
        _ => format!("{}", c + 1),
    };
    loop {
        line.clear();
        let n = match reader.read_line(&mut line) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(DataError::Unusable(format!(
                    "{path}, line {}: not text (a binary file, or not UTF-8); equiflow reads \
                     numbers as text in .csv, .tsv and .txt files, or .npy arrays",
                    lineno + 1
                )));
            }
            Err(e) => {
                return Err(DataError::Io {
                    path: path.into(),
                    message: e.to_string(),
                });
            }
        };
        if n == 0 {
            break;
        }
        lineno += 1;
        read_bytes += n as u64;
        let mut text = line.trim_end_matches(['\n', '\r']);
        if lineno == 1 {
            text = text.trim_start_matches('\u{feff}');
        }
        if text.contains('\0') {
            return Err(DataError::Unusable(format!(
                "{path}, line {lineno}: not text (a binary file?); equiflow reads numbers as \
                 text in .csv, .tsv and .txt files, or .npy arrays"
            )));
        }
        let content = text.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if cols == 0 {
            delim = sniff(text, delim);
        }
        split_cells(text, delim, &mut cells);
        if cols == 0 {
            // The first line with cells: a header unless every cell is a number.
            cols = cells.len();
            first_line = lineno;
            if cells.iter().any(|r| number(&text[r.clone()]).is_none()) {
                names = Some(cells.iter().map(|r| text[r.clone()].to_string()).collect());
                continue;
            }
        }
        if cells.len() != cols {
            return Err(DataError::Ragged {
                path: path.into(),
                line: lineno,
                found: cells.len(),
                expected: cols,
                expected_from: if names.is_some() {
                    format!("the header (line {first_line})")
                } else {
                    format!("line {first_line}")
                },
            });
        }
        if rows == 64 && size > read_bytes {
            // Room for the whole file at once, estimated from the lines so far (a quarter more:
            // pages never written take no memory): one
            // allocation instead of a doubling series that peaks at 1.5 times the table.
            let per_row = read_bytes as f64 / (rows as f64 + 1.0);
            let estimate = (size as f64 / per_row * 1.25) as usize * cols;
            let more = estimate.saturating_sub(values.len());
            let _ = reserve(&mut values, more, budget);
        }
        if reserve(&mut values, cols, budget).is_err() {
            let needed = ((values.len() + cols) * 8) as f64 / GIB;
            let estimate = needed * size as f64 / read_bytes.max(1) as f64;
            return Err(DataError::TooLarge {
                path: path.into(),
                line: lineno,
                needed,
                estimate,
                budget: budget as f64 / GIB,
            });
        }
        for (c, r) in cells.iter().enumerate() {
            let cell = &text[r.clone()];
            let Some(x) = number(cell) else {
                return Err(DataError::NotANumber {
                    path: path.into(),
                    line: lineno,
                    column: column_name(&names, c),
                    cell: if cell.is_empty() {
                        "(empty)".into()
                    } else {
                        cell.chars().take(40).collect()
                    },
                });
            };
            if !x.is_finite() {
                return Err(DataError::NotFinite {
                    path: path.into(),
                    line: lineno,
                    column: column_name(&names, c),
                    what: if x.is_nan() { "NaN" } else { "infinity" },
                });
            }
            values.push(x);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(DataError::Empty { path: path.into() });
    }
    values.shrink_to_fit();
    Ok(Table {
        rows,
        cols,
        names,
        values,
    })
}

fn read_npy(reader: impl Read, path: &str, budget: usize) -> Result<Table, DataError> {
    let file = npyz::NpyFile::new(reader).map_err(|e| DataError::NotNpy {
        path: path.into(),
        message: e.to_string(),
    })?;
    let shape = file.shape().to_vec();
    let &[rows, cols] = shape.as_slice() else {
        return Err(DataError::NpyShape {
            path: path.into(),
            shape,
        });
    };
    let fortran = file.order() == npyz::Order::Fortran;
    let count = rows.saturating_mul(cols);
    let too_large = DataError::NpyTooLarge {
        path: path.into(),
        needed: count.saturating_mul(8) as f64 / GIB,
        budget: budget as f64 / GIB,
    };
    if count.saturating_mul(8) > budget as u64 {
        return Err(too_large);
    }
    let mut values: Vec<f64> = Vec::new();
    values
        .try_reserve_exact(count as usize)
        .map_err(|_| too_large)?;
    let dtype = match file.dtype() {
        npyz::DType::Plain(t) => t.to_string(),
        other => format!("{other:?}"),
    };
    let truncated = |found: u64| DataError::Truncated {
        path: path.into(),
        expected: count,
        found,
    };
    let other = |e: std::io::Error| DataError::Io {
        path: path.into(),
        message: e.to_string(),
    };
    macro_rules! pull {
        ($data:expr) => {
            for (i, x) in $data.enumerate() {
                match x {
                    Ok(x) => values.push(f64::from(x)),
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        return Err(truncated(i as u64));
                    }
                    Err(e) => return Err(other(e)),
                }
            }
        };
    }
    match file.try_data::<f64>() {
        Ok(data) => pull!(data),
        Err(file) => match file.try_data::<f32>() {
            Ok(data) => pull!(data),
            Err(_) => {
                return Err(DataError::NpyType {
                    path: path.into(),
                    dtype,
                });
            }
        },
    }
    let (rows, cols) = (rows as usize, cols as usize);
    if fortran {
        let mut c = vec![0.0; values.len()];
        for r in 0..rows {
            for k in 0..cols {
                c[r * cols + k] = values[k * rows + r];
            }
        }
        values = c;
    }
    for (i, x) in values.iter().enumerate() {
        if !x.is_finite() {
            return Err(DataError::NpyNotFinite {
                path: path.into(),
                row: i / cols,
                column: i % cols,
                what: if x.is_nan() { "NaN" } else { "infinity" },
            });
        }
    }
    if rows == 0 {
        return Err(DataError::Empty { path: path.into() });
    }
    Ok(Table {
        rows,
        cols,
        names: None,
        values,
    })
}

/// A NumPy `.npy` file (format 1.0, little-endian float64, C order) of a row-major table:
/// the examples and the tests write their arrays with it.
pub fn write_npy(w: &mut impl std::io::Write, values: &[f64], cols: usize) -> std::io::Result<()> {
    let rows = values.len() / cols.max(1);
    let mut header =
        format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    w.write_all(b"\x93NUMPY\x01\x00")?;
    w.write_all(&(header.len() as u16).to_le_bytes())?;
    w.write_all(header.as_bytes())?;
    for x in values {
        w.write_all(&x.to_le_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const BIG: usize = 1 << 30;

    #[test]
    fn headers_comments_quotes_and_separators() {
        let dir = tempfile::tempdir().unwrap();
        let csv = write(
            dir.path(),
            "a.csv",
            b"\xef\xbb\xbf# made by hand\n\"x\", \"y\",z\r\n1,2,3\n\n# between\n4.5,-6e-1, 7\n",
        );
        let t = read(&csv, BIG).unwrap();
        assert_eq!((t.rows, t.cols), (2, 3));
        assert_eq!(t.names, Some(vec!["x".into(), "y".into(), "z".into()]));
        assert_eq!(t.values, vec![1.0, 2.0, 3.0, 4.5, -0.6, 7.0]);
        let tsv = write(dir.path(), "a.tsv", b"1\t2\n3\t4\n");
        let t = read(&tsv, BIG).unwrap();
        assert_eq!((t.rows, t.cols, t.names), (2, 2, None));
        let txt = write(dir.path(), "a.txt", b"  1   2\t3\n4 5 6  \n");
        assert_eq!(
            read(&txt, BIG).unwrap().values,
            vec![1., 2., 3., 4., 5., 6.]
        );
        // The separator the file really uses: semicolons or tabs in a .csv, commas in a .txt.
        for (name, text) in [
            ("s.csv", "a;b\n1;2\n"),
            ("t.csv", "a\tb\n1\t2\n"),
            ("c.txt", "a, b\n1, 2\n"),
        ] {
            let t = read(&write(dir.path(), name, text.as_bytes()), BIG).unwrap();
            assert_eq!((t.cols, t.values.clone()), (2, vec![1.0, 2.0]), "{name}");
        }
    }

    #[test]
    fn every_bad_cell_says_its_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&[u8], &str); 7] = [
            (
                b"x,y\n1,2\n3,abc\n",
                "line 3, column 2 ('y'): 'abc' is not a number",
            ),
            (b"1,2\n3,\n", "line 2, column 2: '(empty)' is not a number"),
            (b"1,2\n3,4,5\n", "line 2: 3 cells where line 1 has 2"),
            (
                b"a,b\n1,2\n3\n",
                "line 3: 1 cells where the header (line 1) has 2",
            ),
            (b"1,2\nNaN,4\n", "line 2, column 1: NaN"),
            (b"1,2\n3,-inf\n", "line 2, column 2: infinity"),
            (b"# nothing\nx,y\n", "holds no numbers"),
        ];
        for (text, want) in cases {
            let p = write(dir.path(), "bad.csv", text);
            let e = read(&p, BIG).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
        let p = write(dir.path(), "bin.csv", b"1,2\n\x00\x01\xff\xfe\n");
        assert!(read(&p, BIG).unwrap_err().to_string().contains("not text"));
        let p = write(dir.path(), "x.json", b"{}");
        assert!(read(&p, BIG).unwrap_err().to_string().contains(".npy"));
    }

    #[test]
    fn a_table_over_the_budget_is_refused_with_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..10_000).map(|i| format!("{i},{i}\n")).collect();
        let p = write(dir.path(), "big.csv", text.as_bytes());
        let e = read(&p, 64 << 10).unwrap_err();
        assert!(matches!(e, DataError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("GiB"), "{e}");
        let t = read(&p, BIG).unwrap();
        assert_eq!(t.rows, 10_000);
    }

    #[test]
    fn npy_reads_float64_float32_and_fortran_order_and_refuses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let values: Vec<f64> = (0..12).map(|i| i as f64 * 0.5).collect();
        let mut bytes = Vec::new();
        write_npy(&mut bytes, &values, 3).unwrap();
        let p = write(dir.path(), "a.npy", &bytes);
        let t = read(&p, BIG).unwrap();
        assert_eq!((t.rows, t.cols), (4, 3));
        assert_eq!(t.values, values);
        // float32, Fortran order, written by hand as NumPy would.
        let header = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }";
        let mut f32s = b"\x93NUMPY\x01\x00".to_vec();
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        f32s.extend((h.len() as u16).to_le_bytes());
        f32s.extend(h.as_bytes());
        for x in [1.0f32, 4.0, 2.0, 5.0, 3.0, 6.0] {
            f32s.extend(x.to_le_bytes());
        }
        let p = write(dir.path(), "f.npy", &f32s);
        assert_eq!(read(&p, BIG).unwrap().values, vec![1., 2., 3., 4., 5., 6.]);
        // Truncated, garbage, wrong rank, wrong type.
        let p = write(dir.path(), "t.npy", &bytes[..bytes.len() - 20]);
        let e = read(&p, BIG).unwrap_err().to_string();
        assert!(e.contains("ends early"), "{e}");
        let p = write(dir.path(), "g.npy", b"not numpy at all, just text");
        let e = read(&p, BIG).unwrap_err().to_string();
        assert!(e.contains("not a NumPy array file"), "{e}");
        let h3 = f32s_header("'<f8'", "(2, 2, 2)");
        let p = write(dir.path(), "r.npy", &h3);
        assert!(read(&p, BIG).unwrap_err().to_string().contains("2-D array"));
        // NaN in an array: its row and column; an array over the budget: the numbers.
        let mut nan = Vec::new();
        write_npy(&mut nan, &[1.0, 2.0, 3.0, f64::NAN], 2).unwrap();
        let p = write(dir.path(), "n.npy", &nan);
        let e = read(&p, BIG).unwrap_err().to_string();
        assert!(e.contains("row 1, column 1 (both from 0): NaN"), "{e}");
        let p = write(dir.path(), "a.npy", &bytes);
        let e = read(&p, 64).unwrap_err().to_string();
        assert!(e.contains("its array needs") && e.contains("GiB"), "{e}");
        let hi = f32s_header("'<i8'", "(2, 2)");
        let p = write(dir.path(), "i.npy", &hi);
        let e = read(&p, BIG).unwrap_err().to_string();
        assert!(e.contains("float32 and float64"), "{e}");
    }

    fn f32s_header(descr: &str, shape: &str) -> Vec<u8> {
        let mut h = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}");
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((h.len() as u16).to_le_bytes());
        b.extend(h.as_bytes());
        b.extend([0u8; 64]);
        b
    }
}
