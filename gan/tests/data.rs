//! Data layer: MNIST / Fashion-MNIST against independently computed figures, errors that name
//! the bad file, the embedded digits, splits, the loader, image folders and sample grids.

use flate2::write::GzEncoder;
use flate2::Compression;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use saddle_gan::data::idx::{
    read_idx_images, read_idx_images_from, read_idx_images_with, read_idx_labels,
    read_idx_labels_from, read_idx_labels_with,
};
use saddle_gan::data::{
    Channels, DataError, DataLimits, ImageDataset, Loader, LoaderState, Scale, Split,
};
use saddle_gan::plot::save_image_grid;
use saddle_nn::engine::{Device, Tensor};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Counts the bytes allocated by chosen threads, so that tests can check what a reader costs
/// before and after a limit. Only threads that opt in are counted (the pool built by
/// [`alloc_track::peak_of`]), so the other tests of this binary, running alongside, do not
/// disturb the figure.
mod alloc_track {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::sync::atomic::{AtomicIsize, Ordering};
    use std::sync::Mutex;

    pub struct Counting;

    static CURRENT: AtomicIsize = AtomicIsize::new(0);
    static PEAK: AtomicIsize = AtomicIsize::new(0);
    // Serialises the measured sections: the counters are global.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    thread_local! {
        static TRACKED: Cell<bool> = const { Cell::new(false) };
    }

    fn tracked() -> bool {
        TRACKED.try_with(Cell::get).unwrap_or(false)
    }

    fn add(bytes: isize) {
        let now = CURRENT.fetch_add(bytes, Ordering::SeqCst) + bytes;
        PEAK.fetch_max(now, Ordering::SeqCst);
    }

    // SAFETY: every call is forwarded unchanged to the system allocator; only counters change.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let p = System.alloc(layout);
            if !p.is_null() && tracked() {
                add(layout.size() as isize);
            }
            p
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let p = System.alloc_zeroed(layout);
            if !p.is_null() && tracked() {
                add(layout.size() as isize);
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            System.dealloc(ptr, layout);
            if tracked() {
                add(-(layout.size() as isize));
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let p = System.realloc(ptr, layout, new_size);
            if !p.is_null() && tracked() {
                add(new_size as isize - layout.size() as isize);
            }
            p
        }
    }

    /// Runs `f` on a fresh rayon pool of `threads` counted threads (so the loaders' parallel
    /// decoding runs there too) and returns its result with the most bytes that were allocated
    /// at once meanwhile. Memory allocated there and freed elsewhere (the result) only makes the
    /// figure larger, never smaller.
    pub fn peak_of<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> (T, usize) {
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .start_handler(|_| TRACKED.with(|t| t.set(true)))
            .build()
            .unwrap();
        let out = pool.install(|| {
            CURRENT.store(0, Ordering::SeqCst);
            PEAK.store(0, Ordering::SeqCst);
            f()
        });
        (out, PEAK.load(Ordering::SeqCst).max(0) as usize)
    }
}

#[global_allocator]
static ALLOCATOR: alloc_track::Counting = alloc_track::Counting;

const MIB: usize = 1 << 20;

fn shared_dataset(name: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/datasets")
        .join(name);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: {} not found (the shared dataset store is absent)",
            dir.display()
        );
        None
    }
}

/// A fresh, empty folder under Cargo's scratch space for integration tests.
fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("saddle-gan-data")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for word in [0x0803, count, rows, cols] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for word in [0x0801, labels.len() as u32] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(labels);
    out
}

fn pixel_sum_255(ds: &ImageDataset, i: usize) -> f64 {
    ds.image(i).iter().map(|&v| v as f64 * 255.0).sum::<f64>()
}

/// Asserts the error names `path` and contains `needle`, and that Display puts the path first.
fn assert_names(err: DataError, path: &Path, needle: &str) {
    assert_eq!(err.path, path, "{err}");
    assert!(err.problem.contains(needle), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", path.display())),
        "{err}"
    );
}

// Reference figures from the files themselves, independently of this crate:
//   import gzip, numpy as np
//   for d in ["mnist", "fashion-mnist"]:
//       for s in ["train", "t10k"]:
//           img = np.frombuffer(gzip.open(f"{d}/{s}-images-idx3-ubyte.gz").read(), np.uint8,
//                               offset=16).reshape(-1, 28, 28)
//           lab = np.frombuffer(gzip.open(f"{d}/{s}-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
//           print(d, s, img.shape, lab[:10].tolist(), int(img[0].astype(np.int64).sum()),
//                 int(img[-1].astype(np.int64).sum()), np.bincount(lab).tolist())
// mnist train (60000, 28, 28) [5, 0, 4, 1, 9, 2, 1, 3, 1, 4] 27525 20920
//   [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
// mnist t10k (10000, 28, 28) [7, 2, 1, 0, 4, 1, 4, 9, 5, 9] 18454 41833
//   [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
// fashion-mnist train (60000, 28, 28) [9, 0, 0, 3, 0, 2, 7, 2, 5, 5] 76247 16684 [6000] * 10
// fashion-mnist t10k (10000, 28, 28) [9, 2, 1, 1, 6, 1, 4, 6, 5, 7] 33456 24390 [1000] * 10
struct Reference {
    n: usize,
    first_labels: [u8; 10],
    first_sum: f64,
    last_sum: f64,
    counts: [usize; 10],
}

fn check_mnist_format(name: &str, split: Split, want: Reference) {
    let Some(dir) = shared_dataset(name) else {
        return;
    };
    let ds = ImageDataset::mnist(&dir, split).unwrap();
    assert_eq!(
        (ds.n, ds.channels, ds.height, ds.width, ds.num_classes),
        (want.n, 1, 28, 28, 10)
    );
    assert_eq!(ds.pixels.len(), want.n * 784);
    let labels = ds.labels.as_ref().unwrap();
    assert_eq!(labels[..10], want.first_labels);
    assert_eq!(ds.label_counts().unwrap(), want.counts);
    assert!((pixel_sum_255(&ds, 0) - want.first_sum).abs() < 1e-2);
    assert!((pixel_sum_255(&ds, ds.n - 1) - want.last_sum).abs() < 1e-2);
    assert!(ds.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn mnist_matches_independent_reference() {
    check_mnist_format(
        "mnist",
        Split::Train,
        Reference {
            n: 60000,
            first_labels: [5, 0, 4, 1, 9, 2, 1, 3, 1, 4],
            first_sum: 27525.0,
            last_sum: 20920.0,
            counts: [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
        },
    );
    check_mnist_format(
        "mnist",
        Split::Test,
        Reference {
            n: 10000,
            first_labels: [7, 2, 1, 0, 4, 1, 4, 9, 5, 9],
            first_sum: 18454.0,
            last_sum: 41833.0,
            counts: [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
        },
    );
}

#[test]
fn fashion_mnist_matches_independent_reference() {
    check_mnist_format(
        "fashion-mnist",
        Split::Train,
        Reference {
            n: 60000,
            first_labels: [9, 0, 0, 3, 0, 2, 7, 2, 5, 5],
            first_sum: 76247.0,
            last_sum: 16684.0,
            counts: [6000; 10],
        },
    );
    check_mnist_format(
        "fashion-mnist",
        Split::Test,
        Reference {
            n: 10000,
            first_labels: [9, 2, 1, 1, 6, 1, 4, 6, 5, 7],
            first_sum: 33456.0,
            last_sum: 24390.0,
            counts: [1000; 10],
        },
    );
}

#[test]
fn idx_gzip_is_detected_by_content_not_name() {
    let dir = temp_dir("idx-detect");
    let pixels: Vec<u8> = (0..2 * 3 * 2).collect();
    // Raw bytes under a .gz name, and gzip bytes under a plain name.
    let raw_named_gz = dir.join("raw.gz");
    std::fs::write(&raw_named_gz, idx_images(2, 3, 2, &pixels)).unwrap();
    let gz_named_raw = dir.join("compressed-idx3-ubyte");
    std::fs::write(&gz_named_raw, gzip(&idx_images(2, 3, 2, &pixels))).unwrap();
    for path in [raw_named_gz, gz_named_raw] {
        let images = read_idx_images(&path).unwrap();
        assert_eq!((images.count, images.rows, images.cols), (2, 3, 2));
        assert_eq!(images.pixels(), &pixels[..]);
    }
    let labels = dir.join("labels");
    std::fs::write(&labels, gzip(&idx_labels(&[3, 1, 4]))).unwrap();
    assert_eq!(read_idx_labels(&labels).unwrap(), vec![3, 1, 4]);
}

#[test]
fn bad_idx_files_give_errors_naming_the_file() {
    let dir = temp_dir("idx-bad");
    let good = idx_images(3, 2, 2, &[7; 12]);

    let missing = dir.join("missing-idx3-ubyte.gz");
    assert_names(
        read_idx_images(&missing).unwrap_err(),
        &missing,
        "not found",
    );

    let labels_file = dir.join("labels-as-images");
    std::fs::write(&labels_file, idx_labels(&[1, 2, 3])).unwrap();
    let err = read_idx_images(&labels_file).unwrap_err();
    assert_names(
        err.clone(),
        &labels_file,
        "wrong magic number 0x0801 (this is an IDX labels file); expected 0x0803 (IDX images)",
    );

    let text_file = dir.join("notes.gz");
    std::fs::write(&text_file, b"hello, world: not an IDX file").unwrap();
    assert_names(
        read_idx_labels(&text_file).unwrap_err(),
        &text_file,
        "wrong magic number 0x68656c6c; expected 0x0801 (IDX labels)",
    );

    let tiny = dir.join("tiny");
    std::fs::write(&tiny, &good[..10]).unwrap();
    assert_names(
        read_idx_images(&tiny).unwrap_err(),
        &tiny,
        "holds 10 bytes, too few for the 16-byte header",
    );

    let truncated = dir.join("truncated.gz");
    std::fs::write(&truncated, gzip(&good[..good.len() - 5])).unwrap();
    assert_names(
        read_idx_images(&truncated).unwrap_err(),
        &truncated,
        "header says 3 images of 2x2 (28 bytes with the 16-byte header) but the gunzipped file holds 23 bytes",
    );

    let trailing = dir.join("trailing");
    let mut long = good.clone();
    long.extend_from_slice(&[0; 4]);
    std::fs::write(&trailing, &long).unwrap();
    assert_names(
        read_idx_images(&trailing).unwrap_err(),
        &trailing,
        "but the file holds 32 bytes, more than that",
    );

    // A header claiming more labels than the file holds (the classic count mismatch).
    let short_labels = dir.join("short-labels");
    let mut bytes = idx_labels(&[1, 2, 3]);
    bytes[4..8].copy_from_slice(&60000u32.to_be_bytes());
    std::fs::write(&short_labels, &bytes).unwrap();
    assert_names(
        read_idx_labels(&short_labels).unwrap_err(),
        &short_labels,
        "header says 60000 labels (60008 bytes with the 8-byte header) but the file holds 11 bytes",
    );

    // Sizes whose product overflows must not wrap around into a plausible length.
    let huge = dir.join("huge");
    std::fs::write(&huge, idx_images(u32::MAX, u32::MAX, u32::MAX, &[0; 12])).unwrap();
    assert_names(
        read_idx_images(&huge).unwrap_err(),
        &huge,
        "header says 4294967295 images of 4294967295x4294967295",
    );

    // A damaged checksum in the gzip trailer: the data decodes, and the reader still reads to
    // the end of the stream, where the damage shows.
    let mut corrupt = gzip(&good);
    let crc_at = corrupt.len() - 8;
    corrupt[crc_at] ^= 0xff;
    let corrupt_path = dir.join("corrupt.gz");
    std::fs::write(&corrupt_path, &corrupt).unwrap();
    assert_names(
        read_idx_images(&corrupt_path).unwrap_err(),
        &corrupt_path,
        "corrupt or truncated gzip data",
    );
    // Damage in the middle may garble the header before the decoder notices: then the header's
    // sizes are what is refused. Either way the error names the file.
    let mut garbled = gzip(&good);
    let mid = garbled.len() / 2;
    garbled[mid] ^= 0xff;
    garbled[mid + 1] ^= 0x55;
    std::fs::write(&corrupt_path, &garbled).unwrap();
    assert_eq!(
        read_idx_images(&corrupt_path).unwrap_err().path,
        corrupt_path
    );

    let cut_gzip = dir.join("cut.gz");
    let gz = gzip(&good);
    std::fs::write(&cut_gzip, &gz[..gz.len() / 2]).unwrap();
    assert_names(
        read_idx_images(&cut_gzip).unwrap_err(),
        &cut_gzip,
        "corrupt or truncated gzip data",
    );
}

#[test]
fn mnist_folder_checks_files_against_each_other() {
    let dir = temp_dir("mnist-folder");
    let pixels: Vec<u8> = (0..3 * 4 * 5).map(|v| v as u8).collect();
    // One file raw, one gzipped: both spellings are accepted.
    std::fs::write(
        dir.join("train-images-idx3-ubyte"),
        idx_images(3, 4, 5, &pixels),
    )
    .unwrap();
    let labels_path = dir.join("train-labels-idx1-ubyte.gz");
    std::fs::write(&labels_path, gzip(&idx_labels(&[2, 0, 9]))).unwrap();
    let ds = ImageDataset::mnist(&dir, Split::Train).unwrap();
    assert_eq!((ds.n, ds.channels, ds.height, ds.width), (3, 1, 4, 5));
    assert_eq!(ds.labels, Some(vec![2, 0, 9]));
    assert_eq!(ds.image(1)[0], 20.0 / 255.0);
    assert_eq!(ds.image(2)[19], 59.0 / 255.0);

    assert_names(
        ImageDataset::mnist(&dir, Split::Test).unwrap_err(),
        &dir.join("t10k-images-idx3-ubyte.gz"),
        "file not found",
    );

    std::fs::write(&labels_path, gzip(&idx_labels(&[2, 0]))).unwrap();
    assert_names(
        ImageDataset::mnist(&dir, Split::Train).unwrap_err(),
        &labels_path,
        "holds 2 labels but",
    );
    std::fs::write(&labels_path, gzip(&idx_labels(&[2, 10, 1]))).unwrap();
    assert_names(
        ImageDataset::mnist(&dir, Split::Train).unwrap_err(),
        &labels_path,
        "label 10 at index 1",
    );
}

// Reference figures:
//   a = np.loadtxt(gzip.open("gan/data/digits/digits.csv.gz"), delimiter=",", dtype=np.int64)
//   a.shape, np.bincount(a[:, -1]), a[0, -1], a[0, :64].sum(), a[-1, -1], a[-1, :64].sum()
//   -> (1797, 65) [178, 182, 177, 183, 181, 182, 181, 179, 174, 180] 0 294 8 392
#[test]
fn embedded_digits() {
    let ds = ImageDataset::digits().unwrap();
    assert_eq!((ds.n, ds.channels, ds.height, ds.width), (1797, 1, 8, 8));
    assert_eq!(
        ds.label_counts().unwrap(),
        [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    );
    let labels = ds.labels.as_ref().unwrap();
    assert_eq!((labels[0], labels[1796]), (0, 8));
    let sum16 = |i: usize| ds.image(i).iter().map(|v| v * 16.0).sum::<f32>();
    assert_eq!((sum16(0), sum16(1796)), (294.0, 392.0));
    assert_eq!(ds.pixels.iter().cloned().fold(0.0, f32::max), 1.0);
}

#[test]
fn pad_to_centres_on_zeros() {
    let ds = ImageDataset::digits().unwrap().subset(&[0, 5]).unwrap();
    let padded = ds.pad_to(12).unwrap();
    assert_eq!((padded.n, padded.height, padded.width), (2, 12, 12));
    assert_eq!(padded.labels, ds.labels);
    for i in 0..2 {
        let (src, dst) = (ds.image(i), padded.image(i));
        for y in 0..12 {
            for x in 0..12 {
                let inside = (2..10).contains(&y) && (2..10).contains(&x);
                let want = if inside {
                    src[(y - 2) * 8 + x - 2]
                } else {
                    0.0
                };
                assert_eq!(dst[y * 12 + x], want, "image {i} at ({y}, {x})");
            }
        }
    }
    assert!(ds.pad_to(7).is_err());
}

#[test]
fn upscale_nearest_repeats_each_pixel() {
    let ds = ImageDataset::digits().unwrap().subset(&[3]).unwrap();
    let up = ds.upscale_nearest(2).unwrap();
    assert_eq!((up.n, up.height, up.width), (1, 16, 16));
    for y in 0..16 {
        for x in 0..16 {
            assert_eq!(up.image(0)[y * 16 + x], ds.image(0)[(y / 2) * 8 + x / 2]);
        }
    }
    assert!(ds.upscale_nearest(0).is_err());
}

/// `n` one-pixel images whose value encodes their index (exact in f32), labelled `i % 3`.
fn numbered(n: usize) -> ImageDataset {
    ImageDataset {
        n,
        channels: 1,
        height: 1,
        width: 1,
        pixels: (0..n).map(|i| i as f32 / 1024.0).collect(),
        labels: Some((0..n).map(|i| (i % 3) as u8).collect()),
        num_classes: 3,
        source: "numbered".into(),
    }
}

fn ids(ds: &ImageDataset) -> Vec<usize> {
    ds.pixels.iter().map(|v| (v * 1024.0) as usize).collect()
}

#[test]
fn subset_and_splits() {
    let ds = numbered(30);
    let sub = ds.subset(&[4, 0, 4]).unwrap();
    assert_eq!(
        (ids(&sub), sub.labels.clone()),
        (vec![4, 0, 4], Some(vec![1, 0, 1]))
    );
    assert_names(
        ds.subset(&[30]).unwrap_err(),
        Path::new("numbered"),
        "index 30",
    );

    let (labelled, unlabelled) = ds.labelled_split(4, 11).unwrap();
    assert_eq!((labelled.n, unlabelled.n), (12, 18));
    assert_eq!(labelled.label_counts().unwrap(), [4, 4, 4]);
    assert_eq!(unlabelled.labels, None);
    let (a, b) = (ids(&labelled), ids(&unlabelled));
    assert!(a.windows(2).all(|w| w[0] < w[1]) && b.windows(2).all(|w| w[0] < w[1]));
    let mut all = [a.clone(), b].concat();
    all.sort();
    assert_eq!(all, (0..30).collect::<Vec<_>>());
    for (id, label) in a.iter().zip(labelled.labels.as_ref().unwrap()) {
        assert_eq!(id % 3, *label as usize);
    }
    assert_eq!(ds.labelled_split(4, 11).unwrap().0, labelled, "same seed");
    assert_ne!(ids(&ds.labelled_split(4, 12).unwrap().0), a, "other seed");

    let digits = ImageDataset::digits().unwrap();
    let (labelled, unlabelled) = digits.labelled_split(10, 0).unwrap();
    assert_eq!((labelled.n, unlabelled.n), (100, 1697));
    assert_eq!(labelled.label_counts().unwrap(), [10; 10]);
    // Class 8 is the smallest (174 images).
    assert_names(
        digits.labelled_split(175, 0).unwrap_err(),
        Path::new(&digits.source),
        "class 8 has 174 images, fewer than the 175 per class",
    );
    let unlabelled_err = unlabelled.labelled_split(1, 0).unwrap_err();
    assert!(
        unlabelled_err.problem.contains("labelled dataset"),
        "{unlabelled_err}"
    );

    let mut train = numbered(30);
    let val = train.split_off_validation(7, 3).unwrap();
    assert_eq!((train.n, val.n), (23, 7));
    let mut all = [ids(&train), ids(&val)].concat();
    all.sort();
    assert_eq!(all, (0..30).collect::<Vec<_>>());
    assert!(train.split_off_validation(24, 3).is_err());
}

fn batch_ids(loader: &mut Loader) -> Vec<usize> {
    let batch = loader.next_batch().unwrap();
    let values = batch.images.to_vec::<f32>().unwrap();
    let ids: Vec<usize> = values.iter().map(|v| (v * 1024.0) as usize).collect();
    let labels = batch.labels.unwrap();
    assert_eq!(labels, ids.iter().map(|i| i % 3).collect::<Vec<_>>());
    ids
}

#[test]
fn loader_shuffles_deterministically_and_covers_each_epoch() {
    let ds = numbered(10);
    let mut a = Loader::new(&ds, 3, 7, Scale::ZeroToOne).unwrap();
    let mut b = Loader::new(&ds, 3, 7, Scale::ZeroToOne).unwrap();
    let mut c = Loader::new(&ds, 3, 8, Scale::ZeroToOne).unwrap();
    assert_eq!(a.batches_per_epoch(), 3);
    let mut epochs = Vec::new();
    for epoch in 0..4 {
        assert_eq!(a.epoch(), epoch);
        let mut seen = Vec::new();
        for _ in 0..3 {
            let ids = batch_ids(&mut a);
            assert_eq!(ids.len(), 3, "drop_last: full batches only");
            assert_eq!(ids, batch_ids(&mut b));
            seen.extend(ids);
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 9, "no repeats within an epoch: {seen:?}");
        epochs.push(seen);
    }
    assert_ne!(epochs[0], epochs[1], "a new order each epoch");
    let c_first: Vec<usize> = (0..3).flat_map(|_| batch_ids(&mut c)).collect();
    assert_ne!(c_first, epochs[0], "another seed, another order");

    let mut keep = Loader::new(&ds, 3, 7, Scale::ZeroToOne)
        .unwrap()
        .with_drop_last(false);
    assert_eq!(keep.batches_per_epoch(), 4);
    let sizes: Vec<usize> = (0..4).map(|_| batch_ids(&mut keep).len()).collect();
    assert_eq!((sizes, keep.epoch()), (vec![3, 3, 3, 1], 1));

    let mut ordered = Loader::new(&ds, 4, 7, Scale::MinusOneToOne)
        .unwrap()
        .with_shuffle(false);
    let batch = ordered.next_batch().unwrap();
    assert_eq!(batch.images.shape(), &[4, 1, 1, 1]);
    let want: Vec<f32> = (0..4).map(|i| 2.0 * (i as f32 / 1024.0) - 1.0).collect();
    assert_eq!(batch.images.to_vec::<f32>().unwrap(), want);

    assert!(Loader::new(&ds, 0, 7, Scale::ZeroToOne).is_err());
    assert!(Loader::new(&ds, 11, 7, Scale::ZeroToOne).is_err());
}

#[test]
fn loader_resumes_from_its_state() {
    let ds = numbered(10);
    let mut a = Loader::new(&ds, 3, 5, Scale::ZeroToOne).unwrap();
    for _ in 0..4 {
        batch_ids(&mut a);
    }
    let state = a.state();
    assert_eq!(
        state,
        LoaderState {
            epoch: 1,
            position: 3
        }
    );
    let rest: Vec<Vec<usize>> = (0..5).map(|_| batch_ids(&mut a)).collect();
    let mut b = Loader::new(&ds, 3, 5, Scale::ZeroToOne).unwrap();
    b.restore(state).unwrap();
    let resumed: Vec<Vec<usize>> = (0..5).map(|_| batch_ids(&mut b)).collect();
    assert_eq!(rest, resumed);
    assert!(b
        .restore(LoaderState {
            epoch: 0,
            position: 11
        })
        .is_err());
}

#[test]
#[cfg(feature = "image-formats")]
fn image_folder_resizes_crops_and_reports_bad_files() {
    let dir = temp_dir("folder");
    // 40x20: red | green | blue columns; the centre crop after resizing to 32x16 keeps the
    // source columns 10..30, all green.
    let wide = image::RgbImage::from_fn(40, 20, |x, _| match x {
        0..8 => image::Rgb([255, 0, 0]),
        8..32 => image::Rgb([0, 255, 0]),
        _ => image::Rgb([0, 0, 255]),
    });
    wide.save(dir.join("a.png")).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    image::RgbImage::from_pixel(24, 48, image::Rgb([128, 128, 128]))
        .save(dir.join("sub/b.jpg"))
        .unwrap();
    std::fs::write(dir.join("notes.txt"), "not an image, skipped").unwrap();
    std::fs::write(dir.join(".hidden.png"), "hidden, skipped").unwrap();

    let rgb = ImageDataset::image_folder(&dir, 16, Channels::Rgb).unwrap();
    assert_eq!((rgb.n, rgb.channels, rgb.height, rgb.width), (2, 3, 16, 16));
    assert_eq!(rgb.labels, None);
    let plane = 16 * 16;
    let a = rgb.image(0);
    assert!(a[..plane].iter().all(|&v| v < 1.0 / 255.0), "red plane");
    assert!(
        a[plane..2 * plane].iter().all(|&v| v > 254.0 / 255.0),
        "green plane"
    );
    assert!(
        a[2 * plane..].iter().all(|&v| v < 1.0 / 255.0),
        "blue plane"
    );
    // JPEG is lossy: a flat grey comes back within a few levels.
    assert!(rgb
        .image(1)
        .iter()
        .all(|&v| (v - 128.0 / 255.0).abs() < 4.0 / 255.0));

    let grey = ImageDataset::image_folder(&dir, 10, Channels::Grey).unwrap();
    assert_eq!(
        (grey.n, grey.channels, grey.height, grey.width),
        (2, 1, 10, 10)
    );
    let luma_green = image::Pixel::to_luma(&image::Rgb([0u8, 255, 0])).0[0] as f32 / 255.0;
    assert!(grey
        .image(0)
        .iter()
        .all(|&v| (v - luma_green).abs() < 1.5 / 255.0));

    let broken = dir.join("sub/broken.png");
    std::fs::write(&broken, b"\x89PNG but not really").unwrap();
    assert_names(
        ImageDataset::image_folder(&dir, 16, Channels::Rgb).unwrap_err(),
        &broken,
        "cannot decode the image",
    );

    let empty = temp_dir("folder-empty");
    std::fs::write(empty.join("readme.txt"), "no images here").unwrap();
    assert_names(
        ImageDataset::image_folder(&empty, 16, Channels::Rgb).unwrap_err(),
        &empty,
        "no image files",
    );
    let missing = empty.join("nope");
    assert_names(
        ImageDataset::image_folder(&missing, 16, Channels::Rgb).unwrap_err(),
        &missing,
        "cannot list",
    );
}

#[test]
fn image_grid_round_trip() {
    let dir = temp_dir("grid");
    // Three 2x2 grey images, 2 per row, each pixel drawn 2x2: an 11x11 PNG.
    let values: Vec<f32> = vec![
        -1.0,
        0.0,
        0.5,
        1.0, //
        1.0,
        1.0,
        1.0,
        1.0, //
        -1.0,
        -1.0,
        9.0,
        f32::NAN,
    ];
    let images = Tensor::from_vec(values, &[3, 1, 2, 2], Device::Cpu).unwrap();
    let path = dir.join("nested/grid.png");
    save_image_grid(&path, &images, 2, (-1.0, 1.0), 2).unwrap();
    let grid = image::open(&path).unwrap();
    assert_eq!(grid.color(), image::ColorType::L8);
    let grid = grid.to_luma8();
    assert_eq!(grid.dimensions(), (11, 11));
    let at = |x: u32, y: u32| grid.get_pixel(x, y).0[0];
    assert_eq!(at(0, 0), 128, "padding");
    // Image 0 starts at (1, 1): -1 -> 0, 0 -> 128 (127.5 rounded), 0.5 -> 191, 1 -> 255.
    assert_eq!(
        [at(1, 1), at(2, 2), at(3, 1), at(1, 3), at(4, 4)],
        [0, 0, 128, 191, 255]
    );
    assert_eq!(at(5, 1), 128, "padding between cells");
    assert_eq!(at(6, 1), 255, "image 1");
    // Image 2 on the second row: out-of-range values clamp, NaN is black.
    assert_eq!([at(1, 8), at(4, 9)], [255, 0]);
    assert_eq!(at(7, 7), 128, "the empty fourth cell");

    let rgb = Tensor::from_vec(vec![1.0f32, -1.0, 0.0], &[1, 3, 1, 1], Device::Cpu).unwrap();
    let rgb_path = dir.join("rgb.png");
    save_image_grid(&rgb_path, &rgb, 8, (-1.0, 1.0), 1).unwrap();
    let back = image::open(&rgb_path).unwrap().to_rgb8();
    assert_eq!(back.dimensions(), (3, 3));
    assert_eq!(back.get_pixel(1, 1).0, [255, 0, 128]);

    let flat = Tensor::from_vec(vec![0.0f32; 12], &[3, 2, 2], Device::Cpu).unwrap();
    assert_names(
        save_image_grid(&path, &flat, 2, (0.0, 1.0), 1).unwrap_err(),
        &path,
        "needs a [N, C, H, W] tensor; got shape [3, 2, 2]",
    );
    let two_channels = Tensor::from_vec(vec![0.0f32; 8], &[1, 2, 2, 2], Device::Cpu).unwrap();
    assert_names(
        save_image_grid(&path, &two_channels, 2, (0.0, 1.0), 1).unwrap_err(),
        &path,
        "1 (grey) or 3 (RGB) channels",
    );
    assert!(save_image_grid(&path, &images, 0, (0.0, 1.0), 1).is_err());
    assert!(save_image_grid(&path, &images, 2, (1.0, 1.0), 1).is_err());
}

// ---- Symlink loops (issue 14, item 8) ----

#[cfg(unix)]
#[test]
fn symlinks_in_an_image_folder_reach_each_image_once() {
    use std::os::unix::fs::symlink;
    // Five images and a loop to the folder itself: they made 205 (the walk went round until
    // the system's limit on nested links). Then a subfolder with a sixth image, reached by its
    // own name, through a second link and through a link back up, and a link to a file (these
    // made the old walk branch at every level): each image counts once.
    let dir = temp_dir("symlinks");
    for (i, name) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        image::GrayImage::from_pixel(2, 2, image::Luma([10 * (i as u8 + 1)]))
            .save(dir.join(format!("{name}.png")))
            .unwrap();
    }
    symlink(".", dir.join("self")).unwrap();
    let ds = ImageDataset::image_folder(&dir, 2, Channels::Grey).unwrap();
    assert_eq!(ds.n, 5);

    std::fs::create_dir(dir.join("sub")).unwrap();
    image::GrayImage::from_pixel(2, 2, image::Luma([60]))
        .save(dir.join("sub/f.png"))
        .unwrap();
    symlink("..", dir.join("sub/up")).unwrap();
    symlink("sub", dir.join("alias")).unwrap();
    symlink("a.png", dir.join("again.png")).unwrap();

    let ds = ImageDataset::image_folder(&dir, 2, Channels::Grey).unwrap();
    let mut values: Vec<u32> = (0..ds.n)
        .map(|i| (ds.image(i)[0] * 255.0).round() as u32)
        .collect();
    values.sort();
    assert_eq!(values, [10, 20, 30, 40, 50, 60]);

    // The same again, so that the order (path order) does not depend on the directory listing.
    let again = ImageDataset::image_folder(&dir, 2, Channels::Grey).unwrap();
    assert_eq!(again, ds);
}

// ---- IDX memory bombs (issue 14, item 2) ----

fn gzip_of(parts: &[&[u8]], zeros: usize) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    for part in parts {
        enc.write_all(part).unwrap();
    }
    let block = vec![0u8; MIB];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(MIB);
        enc.write_all(&block[..n]).unwrap();
        left -= n;
    }
    enc.finish().unwrap()
}

#[test]
fn an_idx_header_beyond_the_limit_is_refused_before_inflating() {
    // 2048 images of 1024x1024 (2 GiB) declared, 32 MiB of zeros present: the whole stream was
    // inflated before the header was looked at.
    let dir = temp_dir("idx-bomb");
    let header = idx_images(2048, 1024, 1024, &[]);
    let gz = dir.join("bomb-idx3-ubyte.gz");
    std::fs::write(&gz, gzip_of(&[&header], 32 * MIB)).unwrap();
    let raw = dir.join("bomb-idx3-ubyte");
    std::fs::write(&raw, idx_images(2048, 1024, 1024, &[0; 64])).unwrap();
    for path in [gz, raw] {
        let started = Instant::now();
        let (result, peak) = alloc_track::peak_of(1, || read_idx_images(&path));
        let err = result.unwrap_err();
        assert_names(
            err.clone(),
            &path,
            "header says 2048 images of 1024x1024 (2147483648 bytes)",
        );
        assert!(err.problem.contains("idx_max_bytes"), "{err}");
        assert!(peak < MIB, "peak allocation {peak} bytes");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}

#[test]
fn a_gzip_idx_is_read_only_up_to_the_declared_size() {
    // A valid header and data for 10 images of 28x28, then 32 MiB more: the reader stops one
    // byte past the declared 7,840 bytes, calls the rest trailing data, and never holds it.
    let dir = temp_dir("idx-trailing");
    let pixels = vec![9u8; 10 * 28 * 28];
    let path = dir.join("long-idx3-ubyte.gz");
    std::fs::write(
        &path,
        gzip_of(&[&idx_images(10, 28, 28, &pixels)], 32 * MIB),
    )
    .unwrap();
    let started = Instant::now();
    let (result, peak) = alloc_track::peak_of(1, || read_idx_images(&path));
    assert_names(result.unwrap_err(), &path, "trailing data");
    assert!(peak < MIB, "peak allocation {peak} bytes");
    assert!(started.elapsed() < Duration::from_secs(2));

    // The other way round: 100,000 images declared (78 MB, within the limit), 10 present. The
    // buffer grows with the data that arrives, not with the header's claim.
    let short = dir.join("short-idx3-ubyte.gz");
    std::fs::write(&short, gzip(&idx_images(100_000, 28, 28, &pixels))).unwrap();
    let (result, peak) = alloc_track::peak_of(1, || read_idx_images(&short));
    assert_names(
        result.unwrap_err(),
        &short,
        "header says 100000 images of 28x28 (78400016 bytes with the 16-byte header) but the \
         gunzipped file holds 7856 bytes, fewer (truncated file?)",
    );
    assert!(peak < 2 * MIB, "peak allocation {peak} bytes");
}

#[test]
fn mnist_pair_counts_are_compared_before_the_data_is_read() {
    // 3 images, and a labels file declaring 50 million labels with 50 MB of zeros behind its
    // header: the mismatch is in the headers, so neither file's data needs reading.
    let dir = temp_dir("mnist-pair-bomb");
    std::fs::write(
        dir.join("train-images-idx3-ubyte"),
        idx_images(3, 2, 2, &[1; 12]),
    )
    .unwrap();
    let labels = dir.join("train-labels-idx1-ubyte.gz");
    let mut header = 0x0801u32.to_be_bytes().to_vec();
    header.extend_from_slice(&50_000_000u32.to_be_bytes());
    std::fs::write(&labels, gzip_of(&[&header], 50_000_000)).unwrap();
    let (result, peak) = alloc_track::peak_of(1, || ImageDataset::mnist(&dir, Split::Train));
    assert_names(result.unwrap_err(), &labels, "holds 50000000 labels but");
    assert!(peak < MIB, "peak allocation {peak} bytes");
}

#[test]
fn idx_limits_can_be_raised_or_lowered() {
    let dir = temp_dir("limits-idx");
    std::fs::write(
        dir.join("train-images-idx3-ubyte"),
        idx_images(3, 6, 6, &[0; 108]),
    )
    .unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), idx_labels(&[1, 2, 3])).unwrap();
    let small = DataLimits {
        idx_max_bytes: 100,
        ..DataLimits::default()
    };
    assert_names(
        ImageDataset::mnist_with(&dir, Split::Train, &small).unwrap_err(),
        &dir.join("train-images-idx3-ubyte"),
        "header says 3 images of 6x6 (108 bytes), more than the limit of 100 bytes \
         (DataLimits::idx_max_bytes, saddle's --max-idx-bytes)",
    );
    let labels = dir.join("train-labels-idx1-ubyte");
    let tiny = DataLimits {
        idx_max_bytes: 2,
        ..DataLimits::default()
    };
    assert_names(
        read_idx_labels_with(&labels, &tiny).unwrap_err(),
        &labels,
        "header says 3 labels (3 bytes), more than the limit of 2 bytes",
    );
    let roomy = DataLimits {
        idx_max_bytes: 108,
        ..DataLimits::default()
    };
    assert_eq!(
        ImageDataset::mnist_with(&dir, Split::Train, &roomy)
            .unwrap()
            .n,
        3
    );
    // An empty file's images are checked on their own.
    let empty = dir.join("empty-idx3-ubyte");
    std::fs::write(&empty, idx_images(0, 20, 20, &[])).unwrap();
    assert_names(
        read_idx_images_with(&empty, &small).unwrap_err(),
        &empty,
        "header says images of 20x20 (400 bytes each), more than the limit of 100 bytes",
    );
}

// ---- Image memory bombs (issue 14, item 2) ----

/// A PNG chunk: length, type, data and the CRC-32 of type and data.
fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// A PNG whose header declares `width x height` 8-bit greyscale pixels but whose data stops
/// after the first row: a few dozen bytes that a careless reader turns into `width * height`
/// bytes of buffer before noticing.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8 bits, greyscale, deflate, no filter, no interlace
    png_chunk(&mut out, b"IHDR", &ihdr);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(&[0; 64]).unwrap();
    png_chunk(&mut out, b"IDAT", &z.finish().unwrap());
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A valid black greyscale PNG of 1 x `height` pixels, compressed hard: a few hundred bytes.
fn thin_png(height: u32) -> Vec<u8> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::ImageEncoder;
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::NoFilter)
        .write_image(
            &vec![0; height as usize],
            1,
            height,
            image::ExtendedColorType::L8,
        )
        .unwrap();
    out
}

#[test]
fn an_image_of_extreme_aspect_is_refused_before_decoding() {
    // The 467-byte PNG: 1x200,000 valid greyscale pixels. Resized before cropping, it
    // became 64 x 12.8M RGB pixels (2.4 GB) for `--image-size 64`; 38 MB here at size 8.
    let dir = temp_dir("bomb-aspect");
    let path = dir.join("thin.png");
    std::fs::write(&path, thin_png(200_000)).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() < 1000);
    let started = Instant::now();
    let (result, peak) =
        alloc_track::peak_of(2, || ImageDataset::image_folder(&dir, 8, Channels::Rgb));
    let elapsed = started.elapsed();
    let err = result.unwrap_err();
    assert_names(err.clone(), &path, "is 1x200000 pixels");
    assert!(err.problem.contains("image_max_side"), "{err}");
    assert!(peak < MIB, "peak allocation {peak} bytes");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");

    // Within the side limit, the aspect ratio is what is refused.
    std::fs::write(&path, thin_png(10_000)).unwrap();
    let (result, peak) =
        alloc_track::peak_of(2, || ImageDataset::image_folder(&dir, 8, Channels::Rgb));
    assert_names(
        result.unwrap_err(),
        &path,
        "is 1x10000 pixels, an aspect ratio of 10000:1, over the limit of 16:1 \
         (DataLimits::image_max_aspect, saddle's --max-image-aspect)",
    );
    assert!(peak < MIB, "peak allocation {peak} bytes");
}

#[test]
fn huge_declared_image_sizes_are_refused_before_decoding() {
    // 20000x20000 greyscale: over the side limit (its decoder alone would want 400 MB, and the
    // conversion to RGB three times that). 9000x9000: every side allowed, 81 Mpixel too many.
    for (name, width, height, limit) in [
        ("side", 20_000, 20_000, "image_max_side"),
        ("tall", 100, 20_000, "image_max_side"),
        ("pixels", 9_000, 9_000, "image_max_pixels"),
    ] {
        let dir = temp_dir(&format!("bomb-{name}"));
        let path = dir.join("big.png");
        std::fs::write(&path, png_declaring(width, height)).unwrap();
        let (result, peak) =
            alloc_track::peak_of(2, || ImageDataset::image_folder(&dir, 64, Channels::Rgb));
        let err = result.unwrap_err();
        assert_names(err.clone(), &path, &format!("{width}x{height}"));
        assert!(err.problem.contains(limit), "{err}");
        assert!(peak < MIB, "{name}: peak allocation {peak} bytes");
    }
}

#[test]
fn greyscale_images_are_not_widened_to_rgb_at_full_size() {
    // 2048x2048 greyscale is 4 MiB decoded; converting it to RGB before resizing took 12 MiB
    // more. Resizing first in the file's own colour type keeps the peak near the decoded size.
    let dir = temp_dir("grey-to-rgb");
    image::GrayImage::from_fn(2048, 2048, |x, y| image::Luma([((x ^ y) & 0xff) as u8]))
        .save(dir.join("grey.png"))
        .unwrap();
    let (result, peak) =
        alloc_track::peak_of(1, || ImageDataset::image_folder(&dir, 16, Channels::Rgb));
    let ds = result.unwrap();
    assert_eq!((ds.n, ds.channels, ds.height, ds.width), (1, 3, 16, 16));
    assert!(peak < 6 * MIB, "peak allocation {peak} bytes");
}

#[test]
fn image_limits_can_be_raised_or_lowered() {
    // Raised: the thin PNG loads, and as it is cropped (to its 1x1 centre) before it is resized,
    // the work is bounded by the output: 64x64 here, where resizing first made 64 x 12.8M.
    let dir = temp_dir("limits-raised");
    std::fs::write(dir.join("thin.png"), thin_png(200_000)).unwrap();
    let wide = DataLimits {
        image_max_side: 200_000,
        image_max_aspect: 200_000,
        ..DataLimits::default()
    };
    let (result, peak) = alloc_track::peak_of(2, || {
        ImageDataset::image_folder_with(&dir, 64, Channels::Rgb, &wide)
    });
    let ds = result.unwrap();
    assert_eq!((ds.n, ds.channels, ds.height, ds.width), (1, 3, 64, 64));
    assert!(peak < 2 * MIB, "peak allocation {peak} bytes");

    // Lowered: every limit is the one named in the error.
    let small = DataLimits {
        image_max_side: 32,
        image_max_pixels: 500,
        image_max_aspect: 2,
        ..DataLimits::default()
    };
    let cases: [(u32, u32, &str); 3] = [
        (
            40,
            30,
            ", over the limit of 32 pixels a side (DataLimits::image_max_side, saddle's --max-image-side)",
        ),
        (
            30,
            20,
            " (600 in all), over the limit of 500 pixels (DataLimits::image_max_pixels, saddle's --max-image-pixels)",
        ),
        (
            30,
            10,
            ", an aspect ratio of 3:1, over the limit of 2:1 (DataLimits::image_max_aspect, saddle's --max-image-aspect)",
        ),
    ];
    for (w, h, rest) in cases {
        let dir = temp_dir("limits-lowered");
        let path = dir.join("image.png");
        image::GrayImage::new(w, h).save(&path).unwrap();
        let err = ImageDataset::image_folder_with(&dir, 8, Channels::Grey, &small).unwrap_err();
        assert_names(err, &path, &format!("is {w}x{h} pixels{rest}"));
    }
    assert_names(
        ImageDataset::image_folder_with(&dir, 33, Channels::Grey, &small).unwrap_err(),
        &dir,
        "image size 33 is over the limit of 32 pixels a side (DataLimits::image_max_side, saddle's --max-image-side)",
    );
}

#[test]
fn parallel_decoding_stays_within_the_pixel_budget() {
    // Six 1024x1024 greyscale images (1 MiB each decoded) on four threads, with room for 1.5
    // Mpixel: they decode one at a time, so the peak stays near one image's cost (without the
    // budget, four at once cost four times that).
    let dir = temp_dir("pixel-budget");
    for i in 0..6u32 {
        image::GrayImage::from_fn(1024, 1024, |x, y| image::Luma([(x ^ y ^ i) as u8]))
            .save(dir.join(format!("{i}.png")))
            .unwrap();
    }
    let limits = DataLimits {
        image_max_pixels: 1_500_000,
        ..DataLimits::default()
    };
    let (result, peak) = alloc_track::peak_of(4, || {
        ImageDataset::image_folder_with(&dir, 16, Channels::Grey, &limits)
    });
    assert_eq!(result.unwrap().n, 6);
    assert!(peak < 5 * MIB / 2, "peak allocation {peak} bytes");
}

// ---- Fuzzing: mutated and arbitrary bytes into the IDX readers and the image-folder loader ----
//
// Each case must end in Ok or in an error naming the file, without a panic, and the reader must
// allocate no more than the (lowered) limits allow plus a fixed allowance for its buffers. The
// seeds are the committed files under gan/tests/corpus/; the entry points are the library's
// public readers, so a coverage-guided fuzzer can call the same functions.

/// The files of `gan/tests/corpus/<kind>`, in name order.
fn corpus(kind: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// One change to a seed file. Positions wrap around the file's length.
#[derive(Clone, Debug)]
enum Edit {
    Flip {
        at: usize,
        mask: u8,
    },
    /// A 32-bit word written over the bytes at `at`: where headers keep their sizes.
    Word {
        at: usize,
        value: u32,
        big_endian: bool,
    },
    Cut {
        at: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
}

/// Sizes a header might declare: small, powers of two, extremes and anything.
fn word() -> impl Strategy<Value = u32> {
    prop_oneof![
        0..64u32,
        (0..32u32).prop_map(|bit| 1 << bit),
        Just(u32::MAX),
        any::<u32>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    // Most headers fit in the first 32 bytes: aim word edits there half the time.
    let near_start = prop_oneof![0..32usize, any::<usize>()];
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Edit::Flip { at, mask }),
        (near_start, word(), any::<bool>()).prop_map(|(at, value, big_endian)| Edit::Word {
            at,
            value,
            big_endian
        }),
        any::<usize>().prop_map(|at| Edit::Cut { at }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..48))
            .prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
    ]
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for e in edits {
        let len = out.len().max(1);
        match e {
            Edit::Flip { at, mask } => {
                if let Some(b) = out.get_mut(at % len) {
                    *b ^= mask;
                }
            }
            Edit::Word {
                at,
                value,
                big_endian,
            } => {
                let bytes = if *big_endian {
                    value.to_be_bytes()
                } else {
                    value.to_le_bytes()
                };
                for (i, b) in bytes.into_iter().enumerate() {
                    if let Some(slot) = out.get_mut(at % len + i) {
                        *slot = b;
                    }
                }
            }
            Edit::Cut { at } => out.truncate(at % len),
            Edit::Insert { at, bytes } => {
                let at = at % (out.len() + 1);
                out.splice(at..at, bytes.iter().copied());
            }
        }
    }
    out
}

/// Rewrites the CRC of every whole chunk of a PNG, so that edited headers reach the decoder
/// instead of failing their checksum.
fn fix_png_crcs(bytes: &mut [u8]) {
    let mut at = 8;
    while at + 12 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|&e| e + 4 <= bytes.len()) else {
            break;
        };
        let mut crc = flate2::Crc::new();
        crc.update(&bytes[at + 4..end]);
        bytes[end..end + 4].copy_from_slice(&crc.sum().to_be_bytes());
        at = end + 4;
    }
}

/// How the fuzzed bytes of an IDX case are packaged.
#[derive(Clone, Copy, Debug)]
enum Packing {
    Raw,
    /// Edited, then gzipped: a valid gzip stream of bad content.
    GzipAfter,
    /// Gzipped, then edited: a damaged gzip stream.
    GzipBefore,
}

const FUZZ_IDX_LIMIT: u64 = 4096;
/// The readers' own buffers, whatever the input: the file reader's, the gzip decoder's window
/// and state, and the gzip header's optional fields (flate2 caps extra, name and comment at
/// 64 KiB each).
const READER_ALLOWANCE: usize = 384 << 10;

/// The IDX fuzz target: `bytes` through every IDX reader, from a file at `path` and from
/// memory. Checks the properties above; returns nothing, panics on a violation.
fn fuzz_idx(bytes: &[u8], path: &Path) {
    let limits = DataLimits {
        idx_max_bytes: FUZZ_IDX_LIMIT,
        ..DataLimits::default()
    };
    std::fs::write(path, bytes).unwrap();
    let bound = FUZZ_IDX_LIMIT as usize + READER_ALLOWANCE;
    let check = |what: &str, result: Result<usize, DataError>, peak: usize| {
        match result {
            Ok(len) => assert!(len as u64 <= FUZZ_IDX_LIMIT, "{what}: {len} bytes"),
            Err(e) => assert_eq!(e.path, path, "{what}: {e}"),
        }
        assert!(peak <= bound, "{what}: peak allocation {peak} bytes");
    };
    let (r, peak) = alloc_track::peak_of(1, || {
        read_idx_images_with(path, &limits).map(|i| {
            assert_eq!(i.pixels().len(), i.count * i.rows * i.cols);
            i.pixels().len()
        })
    });
    check("images from the file", r, peak);
    let (r, peak) = alloc_track::peak_of(1, || {
        read_idx_images_from(bytes, path, &limits).map(|i| i.pixels().len())
    });
    check("images from memory", r, peak);
    let (r, peak) =
        alloc_track::peak_of(1, || read_idx_labels_with(path, &limits).map(|l| l.len()));
    check("labels from the file", r, peak);
    let (r, peak) = alloc_track::peak_of(1, || {
        read_idx_labels_from(bytes, path, &limits).map(|l| l.len())
    });
    check("labels from memory", r, peak);
}

fn idx_case() -> impl Strategy<Value = Vec<u8>> {
    let seeds = corpus("idx");
    let raw_seeds: Vec<Vec<u8>> = seeds
        .into_iter()
        .filter(|(p, _)| p.extension().is_none_or(|e| e != "gz"))
        .map(|(_, b)| b)
        .collect();
    let packing = prop_oneof![
        Just(Packing::Raw),
        Just(Packing::GzipAfter),
        Just(Packing::GzipBefore)
    ];
    let mutated = (
        prop::sample::select(raw_seeds),
        prop::collection::vec(edit(), 0..6),
        packing,
    )
        .prop_map(|(seed, edits, packing)| match packing {
            Packing::Raw => apply(&seed, &edits),
            Packing::GzipAfter => gzip(&apply(&seed, &edits)),
            Packing::GzipBefore => apply(&gzip(&seed), &edits),
        });
    let arbitrary = prop::collection::vec(any::<u8>(), 0..256);
    let arbitrary_gz = prop::collection::vec(any::<u8>(), 0..256).prop_map(|b| gzip(&b));
    prop_oneof![6 => mutated, 1 => arbitrary, 1 => arbitrary_gz]
}

/// The image fuzz target: `bytes` as `name` in an otherwise empty folder `dir`, through the
/// folder loader (on two threads) and through the in-memory decoder.
fn fuzz_image(bytes: &[u8], dir: &Path, name: &str, size: usize, channels: Channels) {
    // At most 64x64 a side, 4096 pixels: a decoded image is at most 32 KiB (16-bit RGBA).
    let limits = DataLimits {
        image_max_side: 64,
        image_max_pixels: 4096,
        image_max_aspect: 16,
        ..DataLimits::default()
    };
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let values = channels.count() * size * size;
    assert_eq!(limits.decoder_alloc(), 4096 * 8 * 2);
    let (result, peak) = alloc_track::peak_of(2, || {
        ImageDataset::image_folder_with(dir, size, channels, &limits)
    });
    match result {
        Ok(ds) => {
            assert_eq!((ds.n, ds.pixels.len()), (1, values));
            assert!(ds.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        Err(e) => assert_eq!(e.path, path, "{e}"),
    }
    assert!(
        peak <= FUZZ_IMAGE_BOUND,
        "folder: peak allocation {peak} bytes"
    );
    let (result, peak) = alloc_track::peak_of(1, || {
        saddle_gan::data::decode_square_image(bytes, &path, size, channels, &limits)
    });
    match result {
        Ok(pixels) => assert_eq!(pixels.len(), values),
        Err(e) => assert_eq!(e.path, path, "{e}"),
    }
    assert!(
        peak <= FUZZ_IMAGE_BOUND,
        "memory: peak allocation {peak} bytes"
    );
}

/// What one decoder may allocate under the fuzzing limits, twice (the decoded image and its
/// cropped copy), and an allowance for fixed buffers (file reader, zlib window, thread pool).
const FUZZ_IMAGE_BOUND: usize = 2 * (4096 * 8 * 2) + 512 * 1024;

fn image_case() -> impl Strategy<Value = (String, Vec<u8>)> {
    let seeds: Vec<(String, Vec<u8>)> = corpus("image")
        .into_iter()
        .map(|(p, b)| (p.file_name().unwrap().to_string_lossy().into_owned(), b))
        .collect();
    (
        prop::sample::select(seeds),
        prop::collection::vec(edit(), 0..6),
        any::<bool>(),
    )
        .prop_map(|((name, seed), edits, fix_crcs)| {
            let mut bytes = apply(&seed, &edits);
            if fix_crcs && name.ends_with(".png") {
                fix_png_crcs(&mut bytes);
            }
            (name, bytes)
        })
}

proptest! {
    // 400 cases each by default (about a second); PROPTEST_CASES=N runs N, for longer fuzzing.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(400),
        ..ProptestConfig::default()
    })]

    #[test]
    fn fuzz_idx_readers(bytes in idx_case()) {
        let dir = temp_dir_keep("fuzz-idx");
        fuzz_idx(&bytes, &dir.join("case-idx-ubyte"));
    }

    #[test]
    fn fuzz_image_folder(
        (name, bytes) in image_case(),
        size in 1..=16usize,
        grey in any::<bool>(),
    ) {
        let channels = if grey { Channels::Grey } else { Channels::Rgb };
        fuzz_image(&bytes, &temp_dir_keep("fuzz-image"), &name, size, channels);
    }
}

/// A folder under Cargo's scratch space, created if missing and kept as it is.
fn temp_dir_keep(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("saddle-gan-data")
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_corpus_seeds_load_or_fail_cleanly() {
    // The seeds themselves, under the default limits: the valid ones load, the two crafted
    // bombs are refused by name.
    let dir = temp_dir("corpus-seeds");
    for (path, bytes) in corpus("image") {
        let name = path.file_name().unwrap().to_str().unwrap();
        let got = saddle_gan::data::decode_square_image(
            &bytes,
            &path,
            8,
            Channels::Rgb,
            &DataLimits::default(),
        );
        match name {
            "thin-1x200000.png" | "declares-20000x20000.png" => assert_names(
                got.unwrap_err(),
                &path,
                "(DataLimits::image_max_side, saddle's --max-image-side)",
            ),
            _ => assert_eq!(got.unwrap().len(), 3 * 64, "{name}"),
        }
    }
    for (path, bytes) in corpus("idx") {
        let name = path.file_name().unwrap().to_str().unwrap();
        if name.starts_with("images") {
            let images = read_idx_images(&path).unwrap();
            assert_eq!((images.count, images.rows, images.cols), (3, 4, 5));
        } else {
            assert_eq!(read_idx_labels(&path).unwrap(), [3, 1, 4]);
        }
        fuzz_idx(&bytes, &dir.join(name));
    }
}

/// Without the `image-formats` feature only PNG decodes; a JPEG is refused with the file's name
/// and the feature that would read it (`cargo test -p saddle-gan --no-default-features`).
#[test]
#[cfg(not(feature = "image-formats"))]
fn image_folder_without_formats_names_the_feature() {
    let dir = temp_dir("no-formats");
    image::GrayImage::from_pixel(8, 8, image::Luma([7]))
        .save(dir.join("a.png"))
        .unwrap();
    // The start of a JPEG file: enough for the format to be recognised and refused.
    std::fs::write(dir.join("b.jpg"), [0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).unwrap();
    let err = ImageDataset::image_folder(&dir, 8, Channels::Grey)
        .unwrap_err()
        .to_string();
    assert!(err.contains("b.jpg"), "{err}");
    assert!(err.contains("`image-formats` feature"), "{err}");
    std::fs::remove_file(dir.join("b.jpg")).unwrap();
    let gray = ImageDataset::image_folder(&dir, 8, Channels::Grey).unwrap();
    assert_eq!(gray.n, 1);
}
