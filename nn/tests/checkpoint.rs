//! Checkpoints: exact resume, atomic writes, clear errors, and PyTorch interchange.

use saddle_engine::{DType, Device, Rng, Tensor};
use saddle_nn::optim::{Adam, AdamConfig, Optimizer};
use saddle_nn::{Activation, Checkpoint, Linear, Module, ModuleExt, Sequential};
use std::path::PathBuf;

fn mlp(seed: u64) -> Sequential {
    let mut rng = Rng::new(seed);
    Sequential::new()
        .push(Linear::new(3, 8, true, DType::F32, &mut rng).unwrap())
        .push(Activation::Tanh)
        .push(Linear::new(8, 1, true, DType::F32, &mut rng).unwrap())
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("saddle-ckpt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One regression step on a random batch drawn from `data_rng`.
fn train_step(net: &Sequential, opt: &mut Adam, data_rng: &mut Rng) {
    let x = Tensor::randn(&[16, 3], 0.0, 1.0, DType::F32, Device::Cpu, data_rng).unwrap();
    let target = x.sum(&[1], true).unwrap().tanh().unwrap();
    let loss = net
        .forward(&x)
        .unwrap()
        .sub(&target)
        .unwrap()
        .square()
        .unwrap()
        .mean_all()
        .unwrap();
    opt.step(&loss.backward().unwrap()).unwrap();
}

fn bits(net: &Sequential) -> Vec<u32> {
    net.named_parameters()
        .iter()
        .flat_map(|(_, p)| p.to_vec::<f32>().unwrap())
        .map(f32::to_bits)
        .collect()
}

#[test]
fn resume_is_bit_identical() {
    let dir = temp_dir("resume");
    // 10 uninterrupted steps.
    let net = mlp(1);
    let mut opt = Adam::with_lr(net.named_parameters(), 1e-2, AdamConfig::default());
    let mut data = Rng::new(99);
    for _ in 0..10 {
        train_step(&net, &mut opt, &mut data);
    }
    // 5 steps, save, restore into fresh objects (different init), 5 more.
    let net_a = mlp(1);
    let mut opt_a = Adam::with_lr(net_a.named_parameters(), 1e-2, AdamConfig::default());
    let mut data_a = Rng::new(99);
    for _ in 0..5 {
        train_step(&net_a, &mut opt_a, &mut data_a);
    }
    let mut ck = Checkpoint::new();
    ck.add_module("model", &net_a);
    ck.add_optimizer("optim", &opt_a);
    ck.set_rng("data", &data_a);
    ck.set_meta("step", 5);
    let path = dir.join("latest.safetensors");
    ck.save(&path).unwrap();

    let loaded = Checkpoint::load(&path).unwrap();
    let net_b = mlp(2);
    let mut opt_b = Adam::with_lr(net_b.named_parameters(), 1e-2, AdamConfig::default());
    loaded.restore_module("model", &net_b).unwrap();
    loaded.restore_optimizer("optim", &mut opt_b).unwrap();
    let mut data_b = loaded.rng("data").unwrap();
    assert_eq!(loaded.meta("step"), Some("5"));
    for _ in 0..5 {
        train_step(&net_b, &mut opt_b, &mut data_b);
    }
    assert_eq!(bits(&net), bits(&net_b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failed_save_keeps_the_previous_checkpoint() {
    let dir = temp_dir("atomic");
    let net = mlp(3);
    let path = dir.join("ckpt.safetensors");
    let mut ck = Checkpoint::new();
    ck.add_module("", &net);
    ck.save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    // A save that fails at the rename (the target is a folder) must leave the old file alone
    // and no temporary file behind.
    let mut newer = ck.clone();
    newer.set_meta("step", 2);
    std::fs::create_dir_all(dir.join("blocked.safetensors")).unwrap();
    assert!(newer.save(dir.join("blocked.safetensors")).is_err());
    newer.save(&path).unwrap();
    assert_ne!(
        std::fs::read(&path).unwrap(),
        before,
        "a successful save replaces the file"
    );
    ck.save(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corrupt_or_mismatched_files_name_the_file_and_tensor() {
    let dir = temp_dir("errors");
    let net = mlp(4);
    let path = dir.join("ckpt.safetensors");
    let mut ck = Checkpoint::new();
    ck.add_module("", &net);
    ck.save(&path).unwrap();

    let bytes = std::fs::read(&path).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let e = Checkpoint::load(&truncated).err().unwrap().to_string();
    assert!(e.contains("truncated.safetensors"), "{e}");

    let mut rng = Rng::new(0);
    let wider = Sequential::new().push(Linear::new(3, 9, true, DType::F32, &mut rng).unwrap());
    let e = Checkpoint::load(&path)
        .unwrap()
        .restore_module("", &wider)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ckpt.safetensors")
            && e.contains("`0.weight`")
            && e.contains("[8, 3]")
            && e.contains("[9, 3]"),
        "{e}"
    );

    let e = Checkpoint::load(&path)
        .unwrap()
        .restore_module("gen", &net)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing tensor `gen.0.weight`"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `tests/data/torch_mlp.safetensors` was written by PyTorch (tests/data/make_torch_mlp.py):
/// Sequential(Linear(4, 3), LeakyReLU(0.2), Linear(3, 2)) with torch.manual_seed(0); the
/// expected output below is what that script printed for the same input.
#[test]
fn loads_weights_saved_by_pytorch() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/torch_mlp.safetensors");
    let mut rng = Rng::new(0);
    let net = Sequential::new()
        .push(Linear::new(4, 3, true, DType::F32, &mut rng).unwrap())
        .push(Activation::LeakyRelu(0.2))
        .push(Linear::new(3, 2, true, DType::F32, &mut rng).unwrap());
    Checkpoint::load(&path)
        .unwrap()
        .restore_module("", &net)
        .unwrap();
    let x = Tensor::from_vec(
        vec![0.5f32, -1.0, 2.0, 0.25, -0.3, 0.8, 0.0, -1.5],
        &[2, 4],
        Device::Cpu,
    )
    .unwrap();
    let y = net.forward(&x).unwrap().to_vec::<f32>().unwrap();
    let want = [0.402674f32, 0.006766, 0.471846, -0.181385];
    for (a, b) in y.iter().zip(want) {
        assert!((a - b).abs() < 2e-6, "{y:?} vs {want:?}");
    }
}

/// `tests/data/torch_conv.safetensors` (made by tests/data/make_torch_mlp.py): a PyTorch Conv2d
/// and ConvTranspose2d; their OIHW / [in, out, kH, kW] weights load as they are.
#[test]
fn loads_pytorch_conv_weights_in_their_layouts() {
    use saddle_engine::{Conv2dParams, ConvTranspose2dParams};
    use saddle_nn::{Conv2d, ConvTranspose2d};
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/torch_conv.safetensors");
    let mut rng = Rng::new(0);
    let conv = Conv2d::new(
        2,
        3,
        3,
        Conv2dParams::default().with_stride(2).with_padding(1),
        true,
        DType::F32,
        &mut rng,
    )
    .unwrap();
    let convt = ConvTranspose2d::new(
        3,
        2,
        4,
        ConvTranspose2dParams::default()
            .with_stride(2)
            .with_padding(1),
        true,
        DType::F32,
        &mut rng,
    )
    .unwrap();
    let ck = Checkpoint::load(&path).unwrap();
    ck.restore_module("conv", &conv).unwrap();
    ck.restore_module("convt", &convt).unwrap();
    let x: Vec<f32> = (0..100).map(|i| i as f32 * 0.05 - 1.0).collect();
    let x = Tensor::from_vec(x, &[2, 2, 5, 5], Device::Cpu).unwrap();
    let y = convt
        .forward(&conv.forward(&x).unwrap().relu().unwrap())
        .unwrap();
    assert_eq!(y.shape(), &[2, 2, 6, 6]);
    let v = y.to_vec::<f32>().unwrap();
    let want = [
        0.06063f32, 0.02396, 0.02942, 0.06042, 0.0616, 0.08927, 0.02807, 0.05471, -0.07064,
        0.12792, -0.0426, 0.13614,
    ];
    for (a, b) in v.iter().zip(want) {
        assert!((a - b).abs() < 1e-5, "{:?} vs {want:?}", &v[..12]);
    }
    assert!((v.iter().sum::<f32>() - 8.8039).abs() < 1e-3);
}

/// A checkpoint with a module, an RNG state and many metadata keys (many keys so that a
/// hash-ordered header would almost surely list them in a different order each time).
fn busy_checkpoint() -> Checkpoint {
    let mut ck = Checkpoint::new();
    ck.add_module("model", &mlp(5));
    ck.set_rng("data", &Rng::new(7));
    for i in 0..64 {
        ck.set_meta(format!("key{i:02}"), format!("value {i}"));
    }
    ck
}

/// Issue 14 item 10: the safetensors crate writes the metadata from a `HashMap`, whose order
/// changes from one map to the next (each has its own random seed), so two saves of the same
/// checkpoint gave different bytes. Every save must give the same bytes, which still load in the
/// `safetensors` crate and round-trip through `Checkpoint::load`.
#[test]
fn saves_of_the_same_checkpoint_are_byte_identical() {
    let dir = temp_dir("reproducible");
    let (a, b) = (busy_checkpoint(), busy_checkpoint());
    a.save(dir.join("a.safetensors")).unwrap();
    b.save(dir.join("b.safetensors")).unwrap();
    a.save(dir.join("a2.safetensors")).unwrap();
    let bytes = std::fs::read(dir.join("a.safetensors")).unwrap();
    for other in ["b.safetensors", "a2.safetensors"] {
        assert!(
            std::fs::read(dir.join(other)).unwrap() == bytes,
            "{other} differs from a.safetensors"
        );
    }

    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().as_ref().unwrap();
    for i in 0..64 {
        assert_eq!(meta[&format!("key{i:02}")], format!("value {i}"));
    }
    let loaded = Checkpoint::load(dir.join("a.safetensors")).unwrap();
    let mut names: Vec<&str> = a.names().collect();
    assert_eq!(loaded.names().collect::<Vec<_>>(), names);
    names.sort_unstable();
    assert_eq!(st.names().len(), names.len());
    for name in names {
        let want = a.tensor(name).unwrap().to_vec::<f32>().unwrap();
        let stored: Vec<f32> = st
            .tensor(name)
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(stored, want, "{name} in the safetensors crate");
        assert_eq!(loaded.tensor(name).unwrap().to_vec::<f32>().unwrap(), want);
    }
    assert_eq!(
        loaded.meta_entries().collect::<Vec<_>>(),
        a.meta_entries().collect::<Vec<_>>()
    );
    // A loaded checkpoint saves back to the very same bytes.
    loaded.save(dir.join("c.safetensors")).unwrap();
    assert!(std::fs::read(dir.join("c.safetensors")).unwrap() == bytes);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A safetensors file from its header JSON (padded as the format pads) and data bytes.
fn safetensors_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut header = header.as_bytes().to_vec();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(data);
    bytes
}

fn load_error(path: &std::path::Path) -> String {
    let e = Checkpoint::load(path).err().expect("the load must fail");
    assert_eq!(e.path, path);
    e.to_string()
}

/// Issue 14 (hostile files): the loader read the whole file before looking at its header, so a
/// huge file cost its size in memory before being refused. The header's length and the data size
/// it declares are now checked against the file's length first. The 1 TiB file is sparse (it
/// takes no disk space); before the fix the load failed on the 1 TiB allocation instead.
#[test]
fn sizes_are_checked_against_the_file_before_reading_it() {
    let dir = temp_dir("sizes");
    let one = f32::to_le_bytes(1.5);
    let valid = safetensors_file(
        r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
        &one,
    );

    let huge = dir.join("huge.safetensors");
    std::fs::write(&huge, &valid).unwrap();
    let grown = std::fs::OpenOptions::new()
        .write(true)
        .open(&huge)
        .unwrap()
        .set_len(1 << 40);
    if grown.is_ok() {
        let start = std::time::Instant::now();
        let e = load_error(&huge);
        assert!(
            e.contains("huge.safetensors") && e.contains("declares 4 bytes of tensor data"),
            "{e}"
        );
        assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
    } else {
        eprintln!("skipped the 1 TiB sparse file: {grown:?}");
    }

    // A header claiming 2^40 floats in a 100-byte file; a header length past the file's end or
    // past the format's limit; a file too short to hold the length itself.
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "claims.safetensors",
            safetensors_file(
                r#"{"x":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4398046511104]}}"#,
                &one,
            ),
        ),
        ("long-header.safetensors", {
            let mut b = valid.clone();
            b[..8].copy_from_slice(&99_999_992u64.to_le_bytes());
            b
        }),
        ("limit.safetensors", {
            let mut b = valid.clone();
            b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
            b
        }),
        ("short.safetensors", vec![8, 0, 0]),
    ];
    for (name, bytes) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let e = load_error(&path);
        assert!(e.contains(name), "{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A header may declare an empty tensor of shape [0, 2^40, 2^40]: it holds no data, so the
/// safetensors crate accepts it, but its row stride (2^80 elements) overflows. Before the fix the
/// load panicked on that multiplication; it must be an error naming the file and the tensor.
#[test]
fn an_empty_tensor_with_unaddressable_strides_is_an_error() {
    let dir = temp_dir("strides");
    let path = dir.join("strides.safetensors");
    // The second shape (2^40 rows of nothing) can be addressed, and loads.
    for (shape, loads) in [
        ("[0,1099511627776,1099511627776]", false),
        ("[0,1099511627776]", true),
    ] {
        let header =
            format!(r#"{{"empty":{{"dtype":"F32","shape":{shape},"data_offsets":[0,0]}}}}"#);
        std::fs::write(&path, safetensors_file(&header, &[])).unwrap();
        if loads {
            let ck = Checkpoint::load(&path).unwrap();
            assert_eq!(ck.tensor("empty").unwrap().shape(), &[0, 1 << 40]);
        } else {
            let e = load_error(&path);
            assert!(
                e.contains("strides.safetensors") && e.contains("`empty`"),
                "{e}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A checkpoint of `mlp(seed)` at step 5, saved as `dir/file`.
fn saved_mlp(dir: &std::path::Path, file: &str, seed: u64) -> (Checkpoint, PathBuf) {
    let mut ck = Checkpoint::new();
    ck.add_module("", &mlp(seed));
    ck.set_meta("step", 5);
    let path = dir.join(file);
    ck.save(&path).unwrap();
    (ck, path)
}

/// Where tensor `name`'s data lies in the safetensors file `bytes`.
fn data_range(bytes: &[u8], name: &str) -> std::ops::Range<usize> {
    let (header_len, header) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let (start, end) = header.info(name).unwrap().data_offsets;
    8 + header_len + start..8 + header_len + end
}

/// Issue 14 item 6: a flipped bit in a weight was loaded (and sampled from, trained on) without
/// a word. Each tensor's data now carries a CRC-32, checked on load.
#[test]
fn a_flipped_bit_in_a_tensor_is_an_error_naming_the_file_and_the_tensor() {
    let dir = temp_dir("bitflip");
    let (_, path) = saved_mlp(&dir, "flipped.safetensors", 6);
    let mut bytes = std::fs::read(&path).unwrap();
    let range = data_range(&bytes, "2.weight");
    bytes[range.start + 13] ^= 1 << 3;
    std::fs::write(&path, &bytes).unwrap();
    let e = load_error(&path);
    assert!(
        e.contains("flipped.safetensors") && e.contains("`2.weight`") && e.contains("checksum"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The checksums live in the metadata under the reserved prefix `__saddle__.`: one CRC-32 (8 hex
/// digits) per tensor of its data bytes, readable by any safetensors reader (Python's
/// `zlib.crc32` gives the same number), and one of the rest of the header, laid out as the
/// module docs of `saddle_nn::checkpoint` say. A loaded checkpoint shows neither: `meta`,
/// `meta_entries` and `names` list what the caller stored.
#[test]
fn checksums_sit_under_a_reserved_prefix_out_of_the_callers_view() {
    let dir = temp_dir("layout");
    let (ck, path) = saved_mlp(&dir, "ckpt.safetensors", 7);

    let bytes = std::fs::read(&path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap();
    let mut keys: Vec<&str> = meta.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "__saddle__.crc32.header",
            "__saddle__.crc32.tensor.0.bias",
            "__saddle__.crc32.tensor.0.weight",
            "__saddle__.crc32.tensor.2.bias",
            "__saddle__.crc32.tensor.2.weight",
            "step"
        ]
    );
    for name in ck.names() {
        let crc = crc32fast::hash(&bytes[data_range(&bytes, name)]);
        assert_eq!(
            meta[&format!("__saddle__.crc32.tensor.{name}")],
            format!("{crc:08x}")
        );
    }
    // The header's: the metadata without the checksums, then each tensor's name, dtype and
    // shape, in name order, as length-prefixed fields (counts as 8-byte fields).
    let mut hasher = crc32fast::Hasher::new();
    let mut field = |bytes: &[u8]| {
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(&1u64.to_le_bytes());
    for text in ["step", "5"] {
        field(text.as_bytes());
    }
    field(&4u64.to_le_bytes());
    for (name, shape) in [
        ("0.bias", "8"),
        ("0.weight", "8,3"),
        ("2.bias", "1"),
        ("2.weight", "1,8"),
    ] {
        for text in [name, "F32", shape] {
            field(text.as_bytes());
        }
    }
    assert_eq!(
        meta["__saddle__.crc32.header"],
        format!("{:08x}", hasher.finalize())
    );

    let loaded = Checkpoint::load(&path).unwrap();
    assert_eq!(loaded.meta_entries().collect::<Vec<_>>(), [("step", "5")]);
    assert_eq!(loaded.meta("__saddle__.crc32.tensor.0.bias"), None);
    assert_eq!(
        loaded.names().collect::<Vec<_>>(),
        ck.names().collect::<Vec<_>>()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A caller cannot store a value under the reserved prefix (it would collide with the
/// checksums, or be taken for a damaged one on load).
#[test]
#[should_panic(expected = "reserved")]
fn set_meta_refuses_the_reserved_prefix() {
    Checkpoint::new().set_meta("__saddle__.crc32.tensor.x", "00000000");
}

/// The rules for the checksum entries, on headers rewritten with the safetensors crate:
/// a file with none loads unchecked (PyTorch-made files have none); a file with any must have
/// one for the header and one for each tensor, and nothing else under the prefix.
#[test]
fn checksum_entries_follow_their_rules() {
    type Meta = std::collections::HashMap<String, String>;
    /// A file name, an edit of the saved metadata, and what the load error must say.
    type Case = (&'static str, fn(&mut Meta), &'static str);
    let dir = temp_dir("entries");
    let (ck, path) = saved_mlp(&dir, "ckpt.safetensors", 8);
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let saved = header.metadata().clone().unwrap();
    let rewrite = |name: &str, edit: fn(&mut Meta)| {
        let mut meta = saved.clone();
        edit(&mut meta);
        let path = dir.join(name);
        std::fs::write(
            &path,
            safetensors::serialize(st.tensors(), Some(meta)).unwrap(),
        )
        .unwrap();
        path
    };

    let cases: [Case; 6] = [
        (
            "step.safetensors",
            |m| {
                m.insert("step".into(), "6".into());
            },
            "header (metadata, tensors' dtypes and shapes) does not match its checksum",
        ),
        (
            "no-entry.safetensors",
            |m| {
                m.remove("__saddle__.crc32.tensor.0.bias");
            },
            "tensor `0.bias` has no checksum",
        ),
        (
            "ghost.safetensors",
            |m| {
                m.insert("__saddle__.crc32.tensor.ghost".into(), "00000000".into());
            },
            "`ghost`, which the file does not hold",
        ),
        (
            "unknown.safetensors",
            |m| {
                m.insert("__saddle__.sha256.tensor.0.bias".into(), "00".into());
            },
            "`__saddle__.sha256.tensor.0.bias`",
        ),
        (
            "malformed.safetensors",
            |m| {
                m.insert("__saddle__.crc32.tensor.0.bias".into(), "xyz".into());
            },
            "malformed checksum `__saddle__.crc32.tensor.0.bias` = \"xyz\"",
        ),
        (
            "no-meta-entry.safetensors",
            |m| {
                m.remove("__saddle__.crc32.header");
            },
            "no checksum for the header",
        ),
    ];
    for (name, edit, want) in cases {
        let e = load_error(&rewrite(name, edit));
        assert!(e.contains(name) && e.contains(want), "{e}");
    }

    // With no entry at all, the file loads as written elsewhere, unchecked: a flipped bit goes
    // through (the data is all a foreign file has).
    let foreign = rewrite("foreign.safetensors", |m: &mut Meta| {
        m.retain(|k, _| !k.starts_with("__saddle__."))
    });
    let mut bytes = std::fs::read(&foreign).unwrap();
    let range = data_range(&bytes, "0.bias");
    bytes[range.start] ^= 1;
    std::fs::write(&foreign, &bytes).unwrap();
    let loaded = Checkpoint::load(&foreign).unwrap();
    assert_eq!(loaded.meta_entries().collect::<Vec<_>>(), [("step", "5")]);
    assert_ne!(
        loaded.tensor("0.bias").unwrap().to_vec::<f32>().unwrap(),
        ck.tensor("0.bias").unwrap().to_vec::<f32>().unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Found by tests/checkpoint_fuzz.rs: the checksums covered the tensors' data and the metadata
/// but not the tensors' shapes, so one flipped bit turning an empty tensor's shape [0, 3] into
/// [0, 2], or a header edit transposing [3, 4] into [4, 3], loaded a different checkpoint. The
/// header's checksum now covers each tensor's name, dtype and shape too.
#[test]
fn a_changed_shape_is_an_error() {
    let dir = temp_dir("shape");
    let path = dir.join("shape.safetensors");
    let mut ck = Checkpoint::new();
    let w: Vec<f32> = (0..12).map(|i| i as f32).collect();
    ck.add_tensor("w", &Tensor::from_vec(w, &[3, 4], Device::Cpu).unwrap());
    let empty = Tensor::from_vec(Vec::<f32>::new(), &[0, 3], Device::Cpu).unwrap();
    ck.add_tensor("empty", &empty);
    ck.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for (from, to) in [("[0,3]", "[0,2]"), ("[3,4]", "[4,3]")] {
        let at = 8 + bytes[8..8 + header_len]
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .unwrap();
        let mut edited = bytes.clone();
        edited[at..at + to.len()].copy_from_slice(to.as_bytes());
        std::fs::write(&path, edited).unwrap();
        let e = load_error(&path);
        assert!(
            e.contains("shape.safetensors") && e.contains("checksum"),
            "{from} -> {to}: {e}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A header that names `__metadata__` (or a tensor) twice is ambiguous: JSON readers keep the
/// last, so a second, checksum-free `__metadata__` would make a saddle file pass for one made
/// elsewhere and load unchecked (found by scripts/fuzz.sh). It is refused.
#[test]
fn a_header_naming_a_key_twice_is_refused() {
    let dir = temp_dir("dup-key");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dup.safetensors");
    let mut ck = Checkpoint::new();
    ck.add_tensor(
        "w",
        &Tensor::from_vec(vec![1.0f32, 2.0], &[2], Device::Cpu).unwrap(),
    );
    ck.set_meta("step", 3);
    ck.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap().trim_end();
    let edits = [
        header.replacen('{', r#"{"__metadata__":{},"#, 1),
        header.replacen(r#""__metadata__":{"#, r#""__metadata__":{"step":"9","#, 1),
        header.replacen(
            '{',
            r#"{"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"#,
            1,
        ),
    ];
    for edit in edits {
        assert_ne!(edit, header);
        let mut text = edit.into_bytes();
        text.resize(text.len().next_multiple_of(8), b' ');
        let mut edited = (text.len() as u64).to_le_bytes().to_vec();
        edited.extend_from_slice(&text);
        edited.extend_from_slice(&bytes[8 + n..]);
        std::fs::write(&path, &edited).unwrap();
        let err = Checkpoint::load(&path).err().expect("refused").to_string();
        assert!(
            err.contains("dup.safetensors") && (err.contains("twice") || err.contains("duplicate")),
            "{err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
