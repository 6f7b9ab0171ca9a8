//! IDX files, the format of MNIST and Fashion-MNIST: a big-endian header (magic number, then one
//! u32 per dimension) followed by raw bytes. Files may be gzip-compressed; that is detected from
//! the gzip magic bytes, not the file name, so a renamed file still loads.
//!
//! The readers stream: the header is read and its sizes checked against
//! [`DataLimits::idx_max_bytes`] before any data is read, then exactly the declared number of
//! bytes is read (the buffer growing with the data that arrives, never with the header's claim
//! alone), and one byte more tells trailing data apart. A gzip bomb is therefore never inflated
//! beyond what its header declares, and a header declaring too much is refused at once.

use super::{DataError, DataLimits};
use flate2::read::MultiGzDecoder;
use std::io::{BufReader, Cursor, Read};
use std::path::Path;

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IDX_IMAGES_MAGIC: u32 = 0x0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const IDX_LABELS_MAGIC: u32 = 0x0801;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The data buffer starts at this size (or the declared size if smaller) and doubles.
const FIRST_CHUNK: usize = 1 << 20;

/// An IDX image file: `count` images of `rows × cols` bytes, row-major, one after another.
#[derive(Clone, Debug)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    pixels: Vec<u8>,
}

impl IdxImages {
    /// All pixels, `count * rows * cols` bytes.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }
}

/// Reads an IDX image file (magic 0x0803), gzip-compressed or raw, under the default limits.
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages, DataError> {
    read_idx_images_with(path, &DataLimits::default())
}

/// [`read_idx_images`] under the given limits.
pub fn read_idx_images_with(
    path: impl AsRef<Path>,
    limits: &DataLimits,
) -> Result<IdxImages, DataError> {
    images(Stream::open(path.as_ref())?, limits)
}

/// Reads IDX images from `reader` (gzip or raw, told apart by content); `path` names the source
/// in errors only. The entry point for fuzzing: no file needed.
pub fn read_idx_images_from<'a>(
    reader: impl Read + 'a,
    path: &'a Path,
    limits: &DataLimits,
) -> Result<IdxImages, DataError> {
    images(Stream::new(reader, path, None)?, limits)
}

/// Reads an IDX label file (magic 0x0801), gzip-compressed or raw, under the default limits.
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>, DataError> {
    read_idx_labels_with(path, &DataLimits::default())
}

/// [`read_idx_labels`] under the given limits.
pub fn read_idx_labels_with(
    path: impl AsRef<Path>,
    limits: &DataLimits,
) -> Result<Vec<u8>, DataError> {
    labels(Stream::open(path.as_ref())?, limits)
}

/// Reads IDX labels from `reader`, as [`read_idx_images_from`] does images.
pub fn read_idx_labels_from<'a>(
    reader: impl Read + 'a,
    path: &'a Path,
    limits: &DataLimits,
) -> Result<Vec<u8>, DataError> {
    labels(Stream::new(reader, path, None)?, limits)
}

/// An images file and its labels file, their counts compared from the headers before either
/// file's data is read: a labels file that does not belong costs nothing to refuse.
pub(crate) fn read_idx_pair(
    images_path: &Path,
    labels_path: &Path,
    limits: &DataLimits,
) -> Result<(IdxImages, Vec<u8>), DataError> {
    let mut images = Stream::open(images_path)?;
    let header = images_header(&mut images, limits)?;
    let mut labels = Stream::open(labels_path)?;
    let count = labels_header(&mut labels, limits)?;
    if count != header.count {
        return Err(DataError::new(
            labels_path,
            format!(
                "holds {count} labels but {} holds {} images (by their headers)",
                images_path.display(),
                header.count
            ),
        ));
    }
    Ok((
        images_data(&mut images, header)?,
        labels_data(&mut labels, count)?,
    ))
}

fn images(mut stream: Stream, limits: &DataLimits) -> Result<IdxImages, DataError> {
    let header = images_header(&mut stream, limits)?;
    images_data(&mut stream, header)
}

fn labels(mut stream: Stream, limits: &DataLimits) -> Result<Vec<u8>, DataError> {
    let count = labels_header(&mut stream, limits)?;
    labels_data(&mut stream, count)
}

#[derive(Clone, Copy)]
struct ImagesHeader {
    count: usize,
    rows: usize,
    cols: usize,
    len: u64,
}

fn images_header(stream: &mut Stream, limits: &DataLimits) -> Result<ImagesHeader, DataError> {
    let [count, rows, cols] = stream.header::<3>(IDX_IMAGES_MAGIC, "IDX images")?;
    if rows == 0 || cols == 0 {
        return Err(stream.error(format!(
            "header says images of {rows}x{cols}; both sides must be positive"
        )));
    }
    let len = stream.check_size(
        count as u128 * rows as u128 * cols as u128,
        &format!("{count} images of {rows}x{cols}"),
        "",
        limits,
    )?;
    // Each image on its own too (it matters when the count is 0), so that a dataset's image
    // size stays within reason whatever the count.
    stream.check_size(
        rows as u128 * cols as u128,
        &format!("images of {rows}x{cols}"),
        " each",
        limits,
    )?;
    Ok(ImagesHeader {
        count,
        rows,
        cols,
        len,
    })
}

fn images_data(stream: &mut Stream, h: ImagesHeader) -> Result<IdxImages, DataError> {
    let described = format!("{} images of {}x{}", h.count, h.rows, h.cols);
    let pixels = stream.data(16, h.len, &described)?;
    Ok(IdxImages {
        count: h.count,
        rows: h.rows,
        cols: h.cols,
        pixels,
    })
}

fn labels_header(stream: &mut Stream, limits: &DataLimits) -> Result<usize, DataError> {
    let [count] = stream.header::<1>(IDX_LABELS_MAGIC, "IDX labels")?;
    stream.check_size(count as u128, &format!("{count} labels"), "", limits)?;
    Ok(count)
}

fn labels_data(stream: &mut Stream, count: usize) -> Result<Vec<u8>, DataError> {
    stream.data(8, count as u64, &format!("{count} labels"))
}

/// A file's bytes as they come, gunzipped when they start with the gzip magic.
struct Stream<'a> {
    inner: Box<dyn Read + 'a>,
    gz: bool,
    path: &'a Path,
    /// The length of a raw file, known up front: its size is checked before reading the data.
    file_len: Option<u64>,
}

impl<'a> Stream<'a> {
    fn open(path: &'a Path) -> Result<Self, DataError> {
        let cannot = |e: std::io::Error| {
            let problem = match e.kind() {
                std::io::ErrorKind::NotFound => "file not found".to_string(),
                _ => format!("cannot read the file: {e}"),
            };
            DataError::new(path, problem)
        };
        let file = std::fs::File::open(path).map_err(cannot)?;
        let len = file.metadata().map_err(cannot)?.len();
        Stream::new(BufReader::new(file), path, Some(len))
    }

    fn new(
        mut reader: impl Read + 'a,
        path: &'a Path,
        file_len: Option<u64>,
    ) -> Result<Self, DataError> {
        let mut magic = [0u8; 2];
        let n = fill(&mut reader, &mut magic)
            .map_err(|e| DataError::new(path, format!("cannot read the file: {e}")))?;
        let whole = Cursor::new(magic).take(n as u64).chain(reader);
        Ok(if magic[..n] == GZIP_MAGIC {
            Stream {
                inner: Box::new(MultiGzDecoder::new(whole)),
                gz: true,
                path,
                file_len: None,
            }
        } else {
            Stream {
                inner: Box::new(whole),
                gz: false,
                path,
                file_len,
            }
        })
    }

    fn error(&self, problem: impl Into<String>) -> DataError {
        DataError::new(self.path, problem)
    }

    fn holder(&self) -> &'static str {
        if self.gz {
            "the gunzipped file"
        } else {
            "the file"
        }
    }

    /// Fills `buf` from the stream; fewer bytes only at its end.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, DataError> {
        fill(&mut self.inner, buf).map_err(|e| {
            if self.gz {
                self.error(format!("corrupt or truncated gzip data ({e})"))
            } else {
                self.error(format!("cannot read the file: {e}"))
            }
        })
    }

    /// Checks the magic number and returns the `D` dimension sizes that follow it.
    fn header<const D: usize>(&mut self, magic: u32, what: &str) -> Result<[usize; D], DataError> {
        let header_len = 4 + 4 * D;
        let too_short = |s: &Self, len: usize| {
            s.error(format!(
                "{} holds {len} bytes, too few for the {header_len}-byte header of {what}",
                s.holder()
            ))
        };
        let mut head = [0u8; 16];
        let word = |head: &[u8], i: usize| {
            u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]])
        };
        // The magic first: a wrong kind of file is the likelier mistake and the clearer message.
        let got = self.fill(&mut head[..4])?;
        if got < 4 {
            return Err(too_short(self, got));
        }
        let found = word(&head, 0);
        if found != magic {
            let hint = match found {
                IDX_IMAGES_MAGIC => " (this is an IDX images file)",
                IDX_LABELS_MAGIC => " (this is an IDX labels file)",
                _ => "",
            };
            return Err(self.error(format!(
                "wrong magic number {found:#06x}{hint}; expected {magic:#06x} ({what})"
            )));
        }
        let got = self.fill(&mut head[4..header_len])?;
        if got < header_len - 4 {
            return Err(too_short(self, 4 + got));
        }
        Ok(std::array::from_fn(|d| word(&head, 4 + 4 * d) as usize))
    }

    /// The declared data size (a product of u32 sizes: at most 2^96, exact in u128) against
    /// the limit.
    fn check_size(
        &self,
        bytes: u128,
        described: &str,
        each: &str,
        limits: &DataLimits,
    ) -> Result<u64, DataError> {
        if bytes > limits.idx_max_bytes as u128 {
            return Err(self.error(format!(
                "header says {described} ({bytes} bytes{each}), more than the limit of {} bytes \
                 (DataLimits::idx_max_bytes, saddle's --max-idx-bytes)",
                limits.idx_max_bytes
            )));
        }
        Ok(bytes as u64)
    }

    /// Exactly `len` bytes of data after a `header_len`-byte header, and the end of the stream.
    fn data(&mut self, header_len: u64, len: u64, described: &str) -> Result<Vec<u8>, DataError> {
        let want = header_len + len;
        let mismatch = |s: &Self, holds: &str| {
            s.error(format!(
                "header says {described} ({want} bytes with the {header_len}-byte header) but {} \
                 holds {holds}",
                s.holder()
            ))
        };
        let fewer = |n: u64| format!("{n} bytes, fewer (truncated file?)");
        if let Some(file_len) = self.file_len {
            if file_len < want {
                return Err(mismatch(self, &fewer(file_len)));
            }
            if file_len > want {
                let more = format!("{file_len} bytes, more than that (trailing data)");
                return Err(mismatch(self, &more));
            }
        }
        let len = usize::try_from(len).map_err(|_| {
            self.error(format!(
                "header says {described}, too large for this machine"
            ))
        })?;
        let mut data = Vec::new();
        while data.len() < len {
            let at = data.len();
            let step = (len - at).min(at.max(FIRST_CHUNK));
            data.reserve_exact(step);
            data.resize(at + step, 0);
            let got = self.fill(&mut data[at..])?;
            if got < step {
                return Err(mismatch(self, &fewer(header_len + (at + got) as u64)));
            }
        }
        // One byte more tells trailing data apart, and makes the gzip decoder reach the end of
        // the stream, where it checks the CRC-32 and length in the gzip trailer.
        if self.fill(&mut [0u8; 1])? > 0 {
            return Err(mismatch(self, "more than that (trailing data)"));
        }
        Ok(data)
    }
}

/// Reads until `buf` is full or the reader ends; the count read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
