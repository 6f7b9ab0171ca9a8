//! IDX files, the format of MNIST and Fashion-MNIST: a big-endian header (magic number, then one
//! u32 per dimension) followed by raw bytes. Files may be gzip-compressed; that is detected from
//! the gzip magic bytes, not the file name, so a renamed file still loads.

use super::DataError;
use flate2::read::MultiGzDecoder;
use std::io::Read;
use std::path::Path;

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IDX_IMAGES_MAGIC: u32 = 0x0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const IDX_LABELS_MAGIC: u32 = 0x0801;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An IDX image file: `count` images of `rows × cols` bytes, row-major, one after another.
#[derive(Clone, Debug)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    // The whole decompressed file; the pixels start after the 16-byte header. Keeping the
    // header in place avoids copying tens of megabytes.
    bytes: Vec<u8>,
}

impl IdxImages {
    /// All pixels, `count * rows * cols` bytes.
    pub fn pixels(&self) -> &[u8] {
        &self.bytes[16..]
    }
}

/// Reads an IDX image file (magic 0x0803), gzip-compressed or raw.
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages, DataError> {
    let path = path.as_ref();
    let (bytes, gz) = read_maybe_gzip(path)?;
    let [count, rows, cols] = header::<3>(&bytes, gz, IDX_IMAGES_MAGIC, "IDX images", path)?;
    if rows == 0 || cols == 0 {
        return Err(DataError::new(
            path,
            format!("header says images of {rows}x{cols}; both sides must be positive"),
        ));
    }
    check_len(
        &bytes,
        gz,
        16,
        [count, rows, cols],
        &format!("{count} images of {rows}x{cols}"),
        path,
    )?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        bytes,
    })
}

/// Reads an IDX label file (magic 0x0801), gzip-compressed or raw.
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>, DataError> {
    let path = path.as_ref();
    let (mut bytes, gz) = read_maybe_gzip(path)?;
    let [count] = header::<1>(&bytes, gz, IDX_LABELS_MAGIC, "IDX labels", path)?;
    check_len(&bytes, gz, 8, [count], &format!("{count} labels"), path)?;
    bytes.drain(..8);
    Ok(bytes)
}

/// The file's bytes, gunzipped when they start with the gzip magic; the flag says whether they were.
fn read_maybe_gzip(path: &Path) -> Result<(Vec<u8>, bool), DataError> {
    let raw = std::fs::read(path).map_err(|e| {
        let problem = match e.kind() {
            std::io::ErrorKind::NotFound => "file not found".to_string(),
            _ => format!("cannot read the file: {e}"),
        };
        DataError::new(path, problem)
    })?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok((raw, false));
    }
    // The gzip trailer's last 4 bytes hold the uncompressed size mod 2^32: a good capacity hint,
    // capped so a corrupt trailer cannot make us reserve absurd amounts up front.
    let hint = raw
        .len()
        .checked_sub(4)
        .map(|at| u32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]) as usize)
        .unwrap_or(0)
        .min(raw.len().saturating_mul(64));
    let mut out = Vec::with_capacity(hint);
    MultiGzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .map_err(|e| DataError::new(path, format!("corrupt or truncated gzip data ({e})")))?;
    Ok((out, true))
}

/// Checks the magic number and returns the `D` dimension sizes that follow it.
fn header<const D: usize>(
    bytes: &[u8],
    gz: bool,
    magic: u32,
    what: &str,
    path: &Path,
) -> Result<[usize; D], DataError> {
    let header_len = 4 + 4 * D;
    let too_short = |len: usize| {
        DataError::new(
            path,
            format!(
                "{} holds {len} bytes, too few for the {header_len}-byte header of {what}",
                holder(gz)
            ),
        )
    };
    let word = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    // The magic first: a wrong kind of file is the likelier mistake and the clearer message.
    if bytes.len() < 4 {
        return Err(too_short(bytes.len()));
    }
    let found = word(0);
    if found != magic {
        let hint = match found {
            IDX_IMAGES_MAGIC => " (this is an IDX images file)",
            IDX_LABELS_MAGIC => " (this is an IDX labels file)",
            _ => "",
        };
        return Err(DataError::new(
            path,
            format!("wrong magic number {found:#06x}{hint}; expected {magic:#06x} ({what})"),
        ));
    }
    if bytes.len() < header_len {
        return Err(too_short(bytes.len()));
    }
    Ok(std::array::from_fn(|d| word(4 + 4 * d) as usize))
}

/// Checks that the data after the header is exactly the product of the dimensions.
fn check_len<const D: usize>(
    bytes: &[u8],
    gz: bool,
    header_len: usize,
    dims: [usize; D],
    described: &str,
    path: &Path,
) -> Result<(), DataError> {
    // u64 with checked arithmetic: a corrupt header can claim sizes whose product overflows.
    let want = dims
        .iter()
        .try_fold(1u64, |p, &d| p.checked_mul(d as u64))
        .and_then(|p| p.checked_add(header_len as u64))
        .unwrap_or(u64::MAX);
    if bytes.len() as u64 != want {
        let problem = if bytes.len() as u64 > want {
            "more than that (trailing data)"
        } else {
            "fewer (truncated file?)"
        };
        return Err(DataError::new(
            path,
            format!(
                "header says {described} ({want} bytes with the {header_len}-byte header) but {} holds {} bytes, {problem}",
                holder(gz),
                bytes.len(),
            ),
        ));
    }
    Ok(())
}

fn holder(gz: bool) -> &'static str {
    if gz {
        "the gunzipped file"
    } else {
        "the file"
    }
}
