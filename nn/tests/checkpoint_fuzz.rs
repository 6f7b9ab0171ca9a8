//! Fuzzing the checkpoint loader (issue 14): a valid checkpoint's bytes are mutated (bit flips,
//! truncations, appended bytes, byte and text edits of the header, rewritten header fields) and
//! `Checkpoint::load` must never panic: it either refuses the file with an error naming it, or
//! loads exactly the checkpoint that was saved (a change that touched nothing that matters).
//! With the checksums, every change to a tensor's data is refused, naming the tensor.

use proptest::prelude::*;
use proptest::sample::Index;
use saddle_engine::{DType, Device, Rng, Tensor};
use saddle_nn::{Activation, Checkpoint, Linear, Sequential};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What a loaded checkpoint holds, as plain data: each tensor's name, dtype, shape and value
/// bits, and the metadata.
#[derive(Debug, PartialEq)]
struct Snapshot {
    tensors: Vec<(String, DType, Vec<usize>, Vec<u64>)>,
    meta: Vec<(String, String)>,
}

fn snapshot(ck: &Checkpoint) -> Snapshot {
    let tensors = ck
        .names()
        .map(|name| {
            let t = ck.tensor(name).unwrap();
            let bits = match t.dtype() {
                DType::F32 => t
                    .to_vec::<f32>()
                    .unwrap()
                    .iter()
                    .map(|v| u64::from(v.to_bits()))
                    .collect(),
                _ => t
                    .to_vec::<f64>()
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect(),
            };
            (name.to_string(), t.dtype(), t.shape().to_vec(), bits)
        })
        .collect();
    let meta = ck
        .meta_entries()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Snapshot { tensors, meta }
}

/// A small checkpoint with F32 and F64 tensors, an empty one, an RNG state and metadata; its
/// bytes, what it holds, and where each tensor's data lies in the file.
struct Original {
    bytes: Vec<u8>,
    snapshot: Snapshot,
    data: Vec<(String, std::ops::Range<usize>)>,
}

fn original() -> &'static Original {
    static ORIGINAL: OnceLock<Original> = OnceLock::new();
    ORIGINAL.get_or_init(|| {
        let mut rng = Rng::new(3);
        let net = Sequential::new()
            .push(Linear::new(3, 4, true, DType::F32, &mut rng).unwrap())
            .push(Activation::Tanh)
            .push(Linear::new(4, 2, true, DType::F32, &mut rng).unwrap());
        let mut ck = Checkpoint::new();
        ck.add_module("gen", &net);
        let f64s = Tensor::from_vec(vec![0.25f64, -1e300, 3.0], &[3], Device::Cpu).unwrap();
        ck.add_tensor("optim.step", &f64s);
        let empty = Tensor::from_vec(Vec::<f32>::new(), &[0, 3], Device::Cpu).unwrap();
        ck.add_tensor("empty", &empty);
        ck.set_rng("data", &Rng::new(11));
        ck.set_meta("run.step", 1234);
        ck.set_meta("note", "déjà vu \"quoted\"");
        let dir = std::env::temp_dir().join(format!("saddle-fuzz-orig-{}", std::process::id()));
        let path = dir.join("original.safetensors");
        ck.save(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let (header_len, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let data = header
            .offset_keys()
            .into_iter()
            .map(|name| {
                let (s, e) = header.info(&name).unwrap().data_offsets;
                (name, 8 + header_len + s..8 + header_len + e)
            })
            .collect();
        Original {
            bytes,
            snapshot: snapshot(&ck),
            data,
        }
    })
}

/// A file for the mutated bytes, one per test (tests run in parallel threads).
fn scratch(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "saddle-fuzz-{test}-{}.safetensors",
        std::process::id()
    ))
}

/// Loads `bytes` from `path`: an error must name the file, and a success must give back the
/// original checkpoint. Returns the error's text, if any.
fn check_load(path: &Path, bytes: &[u8]) -> Result<Option<String>, TestCaseError> {
    std::fs::write(path, bytes).unwrap();
    let loaded = Checkpoint::load(path);
    std::fs::remove_file(path).unwrap();
    match loaded {
        Err(e) => {
            let text = e.to_string();
            prop_assert_eq!(&e.path, path);
            prop_assert!(text.contains(&*path.to_string_lossy()), "{}", text);
            Ok(Some(text))
        }
        Ok(ck) => {
            // A file left with no checksum entry at all is a file made elsewhere (PyTorch), which
            // loads unchecked by design: edits that strip every entry (e.g. a second, empty
            // `__metadata__` that a header rewrite keeps) are not corruption it can see.
            let checked = bytes.windows(10).any(|w| w == b"__saddle__");
            prop_assert!(
                !checked || snapshot(&ck) == original().snapshot,
                "a changed file loaded other contents"
            );
            Ok(None)
        }
    }
}

/// The header's byte range in `bytes` as its length field declares it, clipped to the file.
fn header_range(bytes: &[u8]) -> std::ops::Range<usize> {
    let declared = bytes
        .get(..8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
    8.min(bytes.len())
        ..usize::try_from(declared.saturating_add(8))
            .map_or(bytes.len(), |end| end.min(bytes.len()))
}

/// Text spliced into the header: numbers at the edges of what parses, JSON punctuation,
/// dtypes, shapes and keys that mean something to the loader.
const SPLICES: &[&str] = &[
    "0",
    "-1",
    "1e400",
    "18446744073709551615",
    "18446744073709551616",
    "1099511627776",
    "[]",
    "{}",
    ",",
    ":",
    "\"",
    "\\",
    "\\u0000",
    "null",
    "\"F64\"",
    "\"BF16\"",
    "[0,1099511627776,1099511627776]",
    "\"__metadata__\":{},",
    "\"__saddle__.crc32.tensor.x\":\"00000000\",",
    "\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},",
    " ",
    "\n",
];

/// One change to a file's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    /// Flip one bit anywhere.
    Flip(Index, u8),
    /// Overwrite one byte anywhere.
    Set(Index, u8),
    /// Cut the file short.
    Truncate(Index),
    /// Add bytes at the end.
    Append(Vec<u8>),
    /// Overwrite the header's length field.
    HeaderLen(u64),
    /// Insert text into the header, with or without fixing its length field.
    Splice(Index, usize, bool),
    /// Rewrite one field of one tensor in the header (fixing the length field): its shape,
    /// data offsets or dtype.
    Field(Index, Field),
    /// Set a metadata entry (fixing the length field).
    Meta(Index, String),
}

#[derive(Debug, Clone)]
enum Field {
    Shape(Vec<u64>),
    Offsets(u64, u64),
    Dtype(&'static str),
}

fn dims() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..6, Just(1 << 40), Just(u64::MAX), any::<u64>()]
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        prop::collection::vec(dims(), 0..4).prop_map(Field::Shape),
        (0u64..200, 0u64..200).prop_map(|(s, e)| Field::Offsets(s, e)),
        (dims(), dims()).prop_map(|(s, e)| Field::Offsets(s, e)),
        prop::sample::select(vec![
            "F32", "F64", "F16", "BF16", "I64", "U8", "BOOL", "F8_E4M3", "X"
        ])
        .prop_map(Field::Dtype),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Append),
        1 => prop_oneof![0u64..2000, Just(100_000_000), any::<u64>()].prop_map(Mutation::HeaderLen),
        2 => (any::<Index>(), 0..SPLICES.len(), any::<bool>())
            .prop_map(|(i, s, fix)| Mutation::Splice(i, s, fix)),
        3 => (any::<Index>(), field()).prop_map(|(i, f)| Mutation::Field(i, f)),
        2 => (any::<Index>(), "[a-z.]{0,8}").prop_map(|(i, v)| Mutation::Meta(i, v)),
    ]
}

/// `bytes` with its header replaced by `header` (as JSON, padded like the format) and the
/// length field fixed; `None` if the header does not parse as JSON.
fn with_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Option<Vec<u8>> {
    let range = header_range(bytes);
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[range.clone()]).ok()?;
    edit(&mut header);
    let mut text = header.to_string().into_bytes();
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[range.end..]);
    Some(out)
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let header = header_range(bytes);
    match m {
        Mutation::Flip(i, bit) if !bytes.is_empty() => {
            let at = i.index(bytes.len());
            bytes[at] ^= 1 << bit;
        }
        Mutation::Set(i, b) if !bytes.is_empty() => {
            let at = i.index(bytes.len());
            bytes[at] = *b;
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len() + 1)),
        Mutation::Append(extra) => bytes.extend_from_slice(extra),
        Mutation::HeaderLen(n) if bytes.len() >= 8 => bytes[..8].copy_from_slice(&n.to_le_bytes()),
        Mutation::Splice(i, s, fix) if !header.is_empty() => {
            let at = header.start + i.index(header.len() + 1);
            let text = SPLICES[*s].as_bytes();
            bytes.splice(at..at, text.iter().copied());
            if *fix {
                let n = (header.len() + text.len()) as u64;
                bytes[..8].copy_from_slice(&n.to_le_bytes());
            }
        }
        Mutation::Field(i, field) => {
            let edited = with_header(bytes, |h| {
                let Some(map) = h.as_object_mut() else { return };
                let names: Vec<String> = map
                    .keys()
                    .filter(|k| *k != "__metadata__")
                    .cloned()
                    .collect();
                if names.is_empty() {
                    return;
                }
                let info = &mut map[&names[i.index(names.len())]];
                let (key, value) = match field {
                    Field::Shape(s) => ("shape", serde_json::json!(s)),
                    Field::Offsets(s, e) => ("data_offsets", serde_json::json!([s, e])),
                    Field::Dtype(d) => ("dtype", serde_json::json!(d)),
                };
                if let Some(info) = info.as_object_mut() {
                    info.insert(key.to_string(), value);
                }
            });
            if let Some(edited) = edited {
                *bytes = edited;
            }
        }
        Mutation::Meta(i, value) => {
            let edited = with_header(bytes, |h| {
                let Some(meta) = h.get_mut("__metadata__").and_then(|m| m.as_object_mut()) else {
                    return;
                };
                let keys: Vec<String> = meta.keys().cloned().collect();
                let key = keys
                    .get(i.index(keys.len() + 1))
                    .cloned()
                    .unwrap_or_else(|| "added".to_string());
                meta.insert(key, serde_json::json!(value));
            });
            if let Some(edited) = edited {
                *bytes = edited;
            }
        }
        _ => {}
    }
}

/// The tensor whose data holds byte `at` of the original file, if any.
fn tensor_at(at: usize) -> Option<&'static str> {
    original()
        .data
        .iter()
        .find(|(_, range)| range.contains(&at))
        .map(|(name, _)| name.as_str())
}

/// Cases per run: `scripts/fuzz.sh` raises it with SADDLE_FUZZ_CASES.
fn fuzz_cases(default: u32) -> u32 {
    std::env::var("SADDLE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: fuzz_cases(500), ..ProptestConfig::default() })]

    /// One to four mutations: never a panic; an error naming the file or the same contents.
    #[test]
    fn mutated_checkpoints_are_refused_or_load_unchanged(
        mutations in prop::collection::vec(mutation(), 1..5)
    ) {
        let path = scratch("mutated");
        let mut bytes = original().bytes.clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let error = check_load(&path, &bytes)?;
        // A change confined to the tensors' data is always caught by their checksums (CRC-32
        // catches every change of up to 4 bits in messages this short, and others but for a
        // 2^-32 chance).
        let orig = &original().bytes;
        if bytes.len() == orig.len() && bytes != *orig {
            let changed: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] != orig[i]).collect();
            if let Some(tensors) = changed.iter().map(|&i| tensor_at(i)).collect::<Option<Vec<_>>>() {
                let text = error.unwrap_or_default();
                prop_assert!(
                    tensors.iter().any(|t| text.contains(&format!("`{t}` does not match its checksum"))),
                    "{}", text
                );
            }
        }
    }
}

/// Every single-bit flip anywhere in the file, and every truncation, is refused with an error
/// naming the file (no byte of a checkpoint is padding a flip could hide in: the header's
/// padding spaces never flip into other whitespace); a flip in a tensor's data names the tensor.
#[test]
fn every_bit_flip_and_every_truncation_is_refused() {
    let path = scratch("exhaustive");
    let orig = &original().bytes;
    let mut loaded = 0;
    for at in 0..orig.len() {
        for bit in 0..8 {
            let mut bytes = orig.clone();
            bytes[at] ^= 1 << bit;
            match check_load(&path, &bytes).unwrap() {
                Some(text) => {
                    if let Some(tensor) = tensor_at(at) {
                        assert!(
                            text.contains(&format!("`{tensor}` does not match its checksum")),
                            "byte {at} bit {bit}: {text}"
                        );
                    }
                }
                None => loaded += 1,
            }
        }
    }
    assert_eq!(loaded, 0, "flips that loaded (unchanged contents)");
    for len in 0..orig.len() {
        assert!(
            check_load(&path, &orig[..len]).unwrap().is_some(),
            "truncated to {len} bytes"
        );
    }
    assert!(check_load(&path, orig).unwrap().is_none());
}
