//! Checkpoints in the safetensors format: modules' parameters and buffers, optimiser state,
//! step counters and RNG states, so a run resumes exactly where it stopped.
//!
//! Names follow PyTorch's `state_dict` (`weight`, `bias`, `running_mean`, OIHW conv weights), so
//! a module's tensors load into PyTorch and back. Files are written atomically: the data goes
//! to a temporary file in the same folder, is flushed to disk, and only then renamed over the
//! old checkpoint, so a crash while saving never damages the previous one. The same checkpoint
//! always gives the same bytes (the header lists the metadata sorted by key).
//!
//! # Checksums
//!
//! A saved file carries CRC-32 checksums (IEEE, as zlib's `crc32`) in its safetensors metadata,
//! as 8 lowercase hex digits, under the prefix [`RESERVED_META_PREFIX`] (`__saddle__.`):
//!
//! - `__saddle__.crc32.tensor.<name>`: of tensor `<name>`'s data bytes as stored;
//! - `__saddle__.crc32.header`: of the rest of the header but the data offsets (which the format
//!   checks itself), as a sequence of fields, each its length in bytes (u64, little-endian) then
//!   its bytes: the number of the other metadata entries (8 bytes, little-endian), each entry's
//!   key and value in key order, the number of tensors, and each tensor's name, dtype (as the
//!   header spells it: `F32`) and shape (decimal dimensions joined by commas: `8,3`) in name
//!   order.
//!
//! [`Checkpoint::load`] checks them, so a flipped bit anywhere in a tensor, in the metadata or in
//! a tensor's dtype or shape is an error naming the file (and the tensor). A file with no entry
//! under the prefix (one written by PyTorch or another tool) loads unchecked. A file with any
//! entry under it must have exactly the header's and one per tensor: a tensor without its entry,
//! an entry for a tensor the file does not hold, an unknown key under the prefix or a malformed
//! value is an error (a damaged header, or a file edited by hand without dropping the
//! checksums). The prefix is saddle's alone: [`Checkpoint::set_meta`] refuses it, and
//! [`Checkpoint::meta`] and [`Checkpoint::meta_entries`] never show it.

use crate::optim::Optimizer;
use crate::Module;
use saddle_engine::{DType, Device, Rng, Tensor};
use safetensors::tensor::{Dtype, Metadata, SafeTensors, TensorInfo, View};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A checkpoint problem, naming the file.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointError {
    /// The file read or written (empty for a checkpoint that was never loaded).
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "checkpoint {}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for CheckpointError {}

/// Named tensors plus string metadata, as stored in one safetensors file.
///
/// Tensors are held as detached handles sharing storage with the ones added, so a save writes
/// their values at the time of saving. Files hold F32 and F64 tensors.
///
/// ```
/// use saddle_nn::engine::{DType, Device, Rng, Tensor};
/// use saddle_nn::optim::{Adam, AdamConfig, Optimizer};
/// use saddle_nn::{Checkpoint, Linear, Module, ModuleExt};
///
/// let mut rng = Rng::new(0);
/// let model = Linear::new(3, 2, true, DType::F32, &mut rng)?;
/// let mut opt = Adam::with_lr(model.named_parameters(), 1e-3, AdamConfig::default());
/// let x = Tensor::ones(&[1, 3], DType::F32, Device::Cpu)?;
/// opt.step(&model.forward(&x)?.sum_all()?.backward()?)?; // creates Adam's moments
///
/// let mut ck = Checkpoint::new();
/// ck.add_module("model", &model);
/// ck.add_optimizer("opt", &opt);
/// ck.set_meta("step", 100);
/// ck.set_rng("init", &rng);
/// let name = format!("saddle-doc-ck-{}.safetensors", std::process::id());
/// let path = std::env::temp_dir().join(name);
/// ck.save(&path)?;
///
/// // A fresh model (other weights) takes the saved ones back.
/// let restored = Linear::new(3, 2, true, DType::F32, &mut Rng::new(1))?;
/// let loaded = Checkpoint::load(&path)?;
/// loaded.restore_module("model", &restored)?;
/// assert_eq!(restored.weight.to_vec::<f32>()?, model.weight.to_vec::<f32>()?);
/// assert_eq!(loaded.meta("step"), Some("100"));
/// assert_eq!(loaded.rng("init")?.state(), rng.state());
/// // The optimiser's moments (`<param>.exp_avg`, ...) resume too.
/// assert!(loaded.tensor("opt.weight.exp_avg").is_some());
/// let mut resumed = Adam::with_lr(restored.named_parameters(), 1e-3, AdamConfig::default());
/// loaded.restore_optimizer("opt", &mut resumed)?;
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default, Clone)]
pub struct Checkpoint {
    tensors: BTreeMap<String, Tensor>,
    metadata: BTreeMap<String, String>,
    /// Where it was loaded from (for error messages); empty for a new checkpoint.
    path: PathBuf,
}

/// Little-endian bytes of one tensor, the form safetensors writes.
struct RawTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &RawTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Metadata keys starting with this belong to the checkpoint's checksums (see the module docs).
pub const RESERVED_META_PREFIX: &str = "__saddle__.";
const HEADER_CRC_KEY: &str = "__saddle__.crc32.header";
const TENSOR_CRC_PREFIX: &str = "__saddle__.crc32.tensor.";

/// The CRC-32 of a header's `metadata` (without the checksums) and its `tensors`' names, dtypes
/// and shapes, laid out as the module docs say.
fn header_crc<'a>(
    metadata: &BTreeMap<String, String>,
    tensors: impl IntoIterator<Item = (&'a str, Dtype, &'a [usize])>,
) -> u32 {
    let mut tensors: Vec<_> = tensors.into_iter().collect();
    tensors.sort_unstable_by_key(|&(name, ..)| name);
    let mut hasher = crc32fast::Hasher::new();
    let mut field = |bytes: &[u8]| {
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(&(metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        field(key.as_bytes());
        field(value.as_bytes());
    }
    field(&(tensors.len() as u64).to_le_bytes());
    for (name, dtype, shape) in tensors {
        let shape: Vec<String> = shape.iter().map(usize::to_string).collect();
        field(name.as_bytes());
        field(format!("{dtype:?}").as_bytes());
        field(shape.join(",").as_bytes());
    }
    hasher.finalize()
}

/// A checksum as written: exactly 8 lowercase hex digits (so each checksum has one spelling).
fn parse_crc(text: &str) -> Option<u32> {
    let canonical = text.len() == 8
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    canonical.then(|| u32::from_str_radix(text, 16).ok())?
}

/// Takes the checksum entries out of `metadata` (what a file's header holds) and checks them
/// against the header (see the module docs), returning the caller's metadata. Each tensor gets
/// its checksum, to be checked when its data is read; none if the file has no entries at all.
fn split_checksums(
    metadata: BTreeMap<String, String>,
    tensors: &mut [(String, TensorInfo, Option<u32>)],
) -> Result<BTreeMap<String, String>, String> {
    const DAMAGED: &str = "(a damaged header?)";
    let (reserved, user): (BTreeMap<_, _>, BTreeMap<_, _>) = metadata
        .into_iter()
        .partition(|(k, _)| k.starts_with(RESERVED_META_PREFIX));
    if reserved.is_empty() {
        return Ok(user);
    }
    let mut stored_header_crc = None;
    let mut tensor_crcs = BTreeMap::new();
    for (key, value) in &reserved {
        let tensor = match key.strip_prefix(TENSOR_CRC_PREFIX) {
            Some(name) => Some(name),
            None if key == HEADER_CRC_KEY => None,
            None => {
                return Err(format!(
                    "unknown metadata key `{key}` under the reserved prefix \
                     `{RESERVED_META_PREFIX}` {DAMAGED}"
                ))
            }
        };
        let crc = parse_crc(value)
            .ok_or_else(|| format!("malformed checksum `{key}` = {value:?} {DAMAGED}"))?;
        match tensor {
            Some(name) => {
                tensor_crcs.insert(name, crc);
            }
            None => stored_header_crc = Some(crc),
        }
    }
    let stored = stored_header_crc.ok_or_else(|| {
        format!("checksums for tensors but no checksum for the header `{HEADER_CRC_KEY}` {DAMAGED}")
    })?;
    let infos = tensors
        .iter()
        .map(|(n, info, _)| (n.as_str(), info.dtype, &info.shape[..]));
    if stored != header_crc(&user, infos) {
        return Err(format!(
            "the header (metadata, tensors' dtypes and shapes) does not match its checksum \
             `{HEADER_CRC_KEY}` {DAMAGED}"
        ));
    }
    for (name, _, crc) in tensors.iter_mut() {
        *crc = tensor_crcs.remove(name.as_str());
        if crc.is_none() {
            return Err(format!(
                "tensor `{name}` has no checksum `{TENSOR_CRC_PREFIX}{name}`, though the file \
                 has checksums {DAMAGED}"
            ));
        }
    }
    if let Some(name) = tensor_crcs.keys().next() {
        return Err(format!(
            "checksum `{TENSOR_CRC_PREFIX}{name}` for tensor `{name}`, which the file does not \
             hold {DAMAGED}"
        ));
    }
    Ok(user)
}

/// The safetensors limit on the header's length (the crate refuses longer ones).
const MAX_HEADER_LEN: usize = 100_000_000;

/// The safetensors bytes of `tensors` and `metadata`, the same for the same input.
///
/// `safetensors::serialize` takes the metadata as a `HashMap` and writes it in that map's
/// order, which changes from one map to the next, so the same checkpoint gave different files.
/// The crate still lays out the data (its order and offsets); the header is then written again
/// with the metadata sorted by key and the tensors in data order, padded with spaces to a
/// multiple of 8 bytes as the crate does. Data offsets count from the start of the data
/// section, so they hold whatever the header's length.
fn encode(
    tensors: Vec<(String, RawTensor)>,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut bytes = safetensors::serialize(tensors.iter().map(|(n, r)| (n.as_str(), r)), None)?;
    drop(tensors);
    let (header_len, layout) = SafeTensors::read_metadata(&bytes)?;
    let mut header = String::from("{\"__metadata__\":");
    header.push_str(&serde_json::to_string(metadata)?);
    for name in layout.offset_keys() {
        let info = layout.info(&name).ok_or("tensor lost in the layout")?;
        header.push(',');
        header.push_str(&serde_json::to_string(&name)?);
        header.push(':');
        header.push_str(&serde_json::to_string(info)?);
    }
    header.push('}');
    let mut header = header.into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    if header.len() > MAX_HEADER_LEN {
        return Err(format!(
            "the header would take {} bytes, over the format's limit of {MAX_HEADER_LEN}",
            header.len()
        )
        .into());
    }
    let prefix = (header.len() as u64)
        .to_le_bytes()
        .into_iter()
        .chain(header);
    bytes.splice(..8 + header_len, prefix);
    Ok(bytes)
}

/// Reads the header of the safetensors file `file` and checks it against the file's length,
/// leaving the file at the start of the data. Everything that costs memory is checked before it
/// is allocated: the header's length against the format's limit and the file, then the
/// tensors' offsets (contiguous, each the size its dtype and shape give, as the safetensors
/// crate checks them), their dtypes (F32 or F64) and shapes (every stride addressable), and the
/// data size they add up to against what the file holds.
/// The keys of a safetensors header in file order, duplicates kept: the top level's and those of
/// its `__metadata__` object.
#[derive(Default)]
struct HeaderKeys {
    top: Vec<String>,
    metadata: Vec<String>,
}

/// The keys of one JSON object in order, duplicates kept.
struct ObjectKeys(Vec<String>);

impl<'de> serde::Deserialize<'de> for ObjectKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = ObjectKeys;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ObjectKeys, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(ObjectKeys(keys))
            }
            fn visit_unit<E>(self) -> Result<ObjectKeys, E> {
                Ok(ObjectKeys(Vec::new())) // `null`: no keys
            }
        }
        d.deserialize_any(Visit)
    }
}

impl<'de> serde::Deserialize<'de> for HeaderKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = HeaderKeys;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a safetensors header object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<HeaderKeys, A::Error> {
                let mut keys = HeaderKeys::default();
                while let Some(k) = map.next_key::<String>()? {
                    if k == "__metadata__" {
                        keys.metadata.extend(map.next_value::<ObjectKeys>()?.0);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                    keys.top.push(k);
                }
                Ok(keys)
            }
        }
        d.deserialize_map(Visit)
    }
}

fn read_header(file: &mut File) -> Result<Header, String> {
    const CORRUPT: &str = "not a valid safetensors file (truncated or corrupt?)";
    let file_len = file
        .metadata()
        .map_err(|e| format!("cannot read: {e}"))?
        .len();
    let mut len_bytes = [0u8; 8];
    if file_len < 8 {
        return Err(format!(
            "{CORRUPT}: {file_len} bytes, too short for the header's length"
        ));
    }
    file.read_exact(&mut len_bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_HEADER_LEN as u64 {
        return Err(format!(
            "{CORRUPT}: the header's length {header_len} is over the format's limit of \
             {MAX_HEADER_LEN} bytes"
        ));
    }
    if header_len > file_len - 8 {
        return Err(format!(
            "{CORRUPT}: the header's length {header_len} is past the end of the file \
             ({file_len} bytes)"
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .map_err(|e| format!("cannot read: {e}"))?;
    let header =
        std::str::from_utf8(&header).map_err(|e| format!("{CORRUPT}: header is not UTF-8: {e}"))?;
    let layout: Metadata =
        serde_json::from_str(header).map_err(|e| format!("{CORRUPT}: header: {e}"))?;
    // JSON parsers keep the last of two equal keys: a header naming a tensor or the metadata
    // twice is ambiguous (a second, checksum-free `__metadata__` would pass for a file made
    // elsewhere), so it is refused. The fuzz test found that one.
    let keys: HeaderKeys =
        serde_json::from_str(header).map_err(|e| format!("{CORRUPT}: header: {e}"))?;
    for list in [&keys.top, &keys.metadata] {
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = list.iter().find(|k| !seen.insert(k.as_str())) {
            return Err(format!("{CORRUPT}: the header names `{twice}` twice"));
        }
    }
    let held = file_len - 8 - header_len;
    if layout.data_len() as u64 != held {
        return Err(format!(
            "{CORRUPT}: the header declares {} bytes of tensor data but the file holds {held}",
            layout.data_len()
        ));
    }
    let names = layout.offset_keys();
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let info = layout
            .info(&name)
            .ok_or_else(|| format!("tensor `{name}` lost from the header"))?
            .clone();
        if !matches!(info.dtype, Dtype::F32 | Dtype::F64) {
            return Err(format!(
                "tensor `{name}` has dtype {:?}; only F32 and F64 are supported",
                info.dtype
            ));
        }
        // Every stride is a product of some of the nonzero dimensions.
        let addressable = info
            .shape
            .iter()
            .filter(|&&d| d != 0)
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .is_some();
        if !addressable {
            return Err(format!(
                "{CORRUPT}: tensor `{name}` has shape {:?}, too large to address",
                info.shape
            ));
        }
        tensors.push((name, info, None));
    }
    let metadata = layout.metadata().clone().unwrap_or_default();
    let metadata = split_checksums(metadata.into_iter().collect(), &mut tensors)?;
    Ok(Header { metadata, tensors })
}

/// A checked safetensors header.
struct Header {
    /// Without the checksum entries.
    metadata: BTreeMap<String, String>,
    /// In the order of their data, each with its checksum if the file has them.
    tensors: Vec<(String, TensorInfo, Option<u32>)>,
}

/// Little-endian values of `N` bytes each.
fn from_le<T: FromLe<N>, const N: usize>(bytes: &[u8]) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| T::from_le(c.try_into().expect("chunks of N bytes")))
        .collect()
}

trait FromLe<const N: usize> {
    fn from_le(bytes: [u8; N]) -> Self;
}

impl FromLe<4> for f32 {
    fn from_le(bytes: [u8; 4]) -> Self {
        f32::from_le_bytes(bytes)
    }
}

impl FromLe<8> for f64 {
    fn from_le(bytes: [u8; 8]) -> Self {
        f64::from_le_bytes(bytes)
    }
}

fn join(prefix: &str, name: &str) -> String {
    crate::child_name(prefix, name)
}

impl Checkpoint {
    /// An empty checkpoint.
    pub fn new() -> Self {
        Self::default()
    }

    /// The file this checkpoint was loaded from (empty for a new one).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, reason: impl Into<String>) -> CheckpointError {
        CheckpointError {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// Adds one tensor under `name` (replacing any previous one).
    pub fn add_tensor(&mut self, name: impl Into<String>, t: &Tensor) {
        self.tensors.insert(name.into(), t.detach());
    }

    /// Adds every parameter and buffer of `module` under `prefix`.
    pub fn add_module(&mut self, prefix: &str, module: &dyn Module) {
        module.visit(prefix, &mut |name, t, _| {
            self.tensors.insert(name, t.detach());
        });
    }

    /// Adds an optimiser's state under `prefix`.
    pub fn add_optimizer(&mut self, prefix: &str, opt: &dyn Optimizer) {
        for (name, t) in opt.state_tensors() {
            self.tensors.insert(join(prefix, &name), t.detach());
        }
    }

    /// Stores a string value (a step counter, a config).
    ///
    /// # Panics
    ///
    /// If `key` starts with [`RESERVED_META_PREFIX`], which belongs to the checksums.
    pub fn set_meta(&mut self, key: impl Into<String>, value: impl ToString) {
        let key = key.into();
        assert!(
            !key.starts_with(RESERVED_META_PREFIX),
            "checkpoint metadata key `{key}`: the prefix `{RESERVED_META_PREFIX}` is reserved \
             for the checksums"
        );
        self.metadata.insert(key, value.to_string());
    }

    /// The string value stored under `key`, if any.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// Every stored string value, sorted by key.
    pub fn meta_entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Stores a generator's state under `rng.<key>`.
    pub fn set_rng(&mut self, key: &str, rng: &Rng) {
        let (seed, counter, pos) = rng.state();
        self.set_meta(format!("rng.{key}"), format!("{seed} {counter} {pos}"));
    }

    /// Restores a generator saved by [`Checkpoint::set_rng`].
    pub fn rng(&self, key: &str) -> Result<Rng, CheckpointError> {
        let text = self
            .meta(&format!("rng.{key}"))
            .ok_or_else(|| self.error(format!("no RNG state `rng.{key}`")))?;
        let parts: Vec<u64> = text.split(' ').filter_map(|p| p.parse().ok()).collect();
        match parts.as_slice() {
            &[seed, counter, pos] if pos <= 4 => Ok(Rng::from_state(seed, counter, pos as usize)),
            _ => Err(self.error(format!("malformed RNG state `rng.{key}` = {text:?}"))),
        }
    }

    /// The tensor stored under `name`, if any (on the CPU for a loaded checkpoint).
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// The stored tensors' names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Writes the checkpoint atomically (temporary file, fsync, rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        let path = path.as_ref();
        let err = |reason: String| CheckpointError {
            path: path.to_path_buf(),
            reason,
        };
        let mut raws = Vec::with_capacity(self.tensors.len());
        for (name, t) in &self.tensors {
            let (dtype, bytes) = match t.dtype() {
                DType::F32 => (
                    Dtype::F32,
                    t.to_vec::<f32>()
                        .map_err(|e| err(e.to_string()))?
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect(),
                ),
                DType::F64 => (
                    Dtype::F64,
                    t.to_vec::<f64>()
                        .map_err(|e| err(e.to_string()))?
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect(),
                ),
                other => {
                    return Err(err(format!(
                        "tensor `{name}` has dtype {other}, which checkpoints do not store yet"
                    )))
                }
            };
            raws.push((
                name.clone(),
                RawTensor {
                    dtype,
                    shape: t.shape().to_vec(),
                    bytes,
                },
            ));
        }
        let mut metadata = self.metadata.clone();
        let infos = raws
            .iter()
            .map(|(n, r)| (n.as_str(), r.dtype, &r.shape[..]));
        metadata.insert(
            HEADER_CRC_KEY.to_string(),
            format!("{:08x}", header_crc(&self.metadata, infos)),
        );
        for (name, raw) in &raws {
            metadata.insert(
                format!("{TENSOR_CRC_PREFIX}{name}"),
                format!("{:08x}", crc32fast::hash(&raw.bytes)),
            );
        }
        let bytes = encode(raws, &metadata).map_err(|e| err(format!("cannot encode: {e}")))?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| err(format!("cannot create folder {}: {e}", dir.display())))?;
        let file_name = path
            .file_name()
            .ok_or_else(|| err("not a file path".into()))?
            .to_string_lossy();
        let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            // Make the rename itself durable.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(format!("cannot write: {e}"))
        })
    }

    /// Reads a checkpoint; a truncated or corrupt file gives an error naming it.
    ///
    /// The header is read and checked first (its length against the file's, then the tensors'
    /// dtypes, shapes and offsets, and the data size it declares against what the file holds),
    /// so a hostile header costs no memory; the data is then read one tensor at a time, never
    /// the whole file at once.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CheckpointError> {
        let path = path.as_ref();
        let err = |reason: String| CheckpointError {
            path: path.to_path_buf(),
            reason,
        };
        let mut file = File::open(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let header = read_header(&mut file).map_err(err)?;
        let mut tensors = BTreeMap::new();
        for (name, info, crc) in header.tensors {
            let (start, end) = info.data_offsets;
            let mut data = vec![0u8; end - start];
            file.read_exact(&mut data)
                .map_err(|e| err(format!("cannot read tensor `{name}`: {e}")))?;
            if let Some(stored) = crc {
                let actual = crc32fast::hash(&data);
                if actual != stored {
                    return Err(err(format!(
                        "tensor `{name}` does not match its checksum (stored {stored:08x}, the \
                         data gives {actual:08x}): the file is corrupt"
                    )));
                }
            }
            let t = match info.dtype {
                Dtype::F32 => Tensor::from_vec(from_le::<f32, 4>(&data), &info.shape, Device::Cpu),
                Dtype::F64 => Tensor::from_vec(from_le::<f64, 8>(&data), &info.shape, Device::Cpu),
                other => return Err(err(format!("tensor `{name}` has dtype {other:?}"))),
            }
            .map_err(|e| err(format!("tensor `{name}`: {e}")))?;
            tensors.insert(name, t);
        }
        Ok(Checkpoint {
            tensors,
            metadata: header.metadata,
            path: path.to_path_buf(),
        })
    }

    /// Copies the stored values into `module`'s parameters and buffers (in place), after
    /// checking that every name is present with the right shape; nothing is changed if any is
    /// missing or mismatched. Values stored in another float dtype are converted.
    pub fn restore_module(&self, prefix: &str, module: &dyn Module) -> Result<(), CheckpointError> {
        let mut targets = Vec::new();
        module.visit(prefix, &mut |name, t, _| targets.push((name, t.clone())));
        let mut sources = Vec::with_capacity(targets.len());
        for (name, t) in &targets {
            let stored = self.tensors.get(name).ok_or_else(|| {
                self.error(format!("missing tensor `{name}` (shape {:?})", t.shape()))
            })?;
            if stored.shape() != t.shape() {
                return Err(self.error(format!(
                    "tensor `{name}` has shape {:?} in the file but {:?} in the module",
                    stored.shape(),
                    t.shape()
                )));
            }
            sources.push(
                stored
                    .to_dtype(t.dtype())
                    .map_err(|e| self.error(format!("tensor `{name}`: {e}")))?,
            );
        }
        for ((name, t), src) in targets.iter().zip(&sources) {
            t.assign(src)
                .map_err(|e| self.error(format!("tensor `{name}`: {e}")))?;
        }
        Ok(())
    }

    /// Restores an optimiser's state saved under `prefix`.
    pub fn restore_optimizer(
        &self,
        prefix: &str,
        opt: &mut dyn Optimizer,
    ) -> Result<(), CheckpointError> {
        let want = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}.")
        };
        let state: Vec<(String, Tensor)> = self
            .tensors
            .iter()
            .filter_map(|(n, t)| {
                n.strip_prefix(&want)
                    .map(|rest| (rest.to_string(), t.clone()))
            })
            .collect();
        opt.load_state_tensors(&state)
            .map_err(|e| self.error(e.to_string()))
    }
}
