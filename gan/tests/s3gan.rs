//! The fewer-labels building blocks (issue 15): the k% labelled split, k-means, and rotation
//! self-supervision (rotated batch, 4-way head, weighted rotation loss).

use saddle_gan::data::ImageDataset;

/// `n` one-pixel images whose pixel is the image's index, labelled by `label(i)` over
/// `classes` classes, so a split's images name where they came from.
fn indexed(n: usize, classes: usize, label: impl Fn(usize) -> u8) -> ImageDataset {
    ImageDataset {
        n,
        channels: 1,
        height: 1,
        width: 1,
        pixels: (0..n).map(|i| i as f32).collect(),
        labels: Some((0..n).map(label).collect()),
        num_classes: classes,
        source: "indexed test images".into(),
    }
}

/// Unbalanced classes: 50 of class 0, 40 of class 1, 13 of class 2, interleaved.
fn unbalanced() -> ImageDataset {
    let labels: Vec<u8> = (0..103)
        .map(|i| match i {
            0..50 => 0,
            50..90 => 1,
            _ => 2,
        })
        .collect();
    let mut order: Vec<usize> = (0..103).collect();
    saddle_nn::engine::Rng::new(5).shuffle(&mut order);
    indexed(103, 3, |i| labels[order[i]])
}

#[test]
fn percent_split_has_the_rounded_size_and_proportional_classes() {
    let ds = unbalanced();
    // (percent, labelled total, per class): 10% of 103 = 10.3 -> 10, quotas 4.85 / 3.88 / 1.26
    // -> floors 4 / 3 / 1, the 2 missing to the largest remainders (class 1: .88, class 0: .85).
    // 5% = 5.15 -> 5: 2.43 / 1.94 / 0.63 -> 2 / 1 / 0 + 2 to classes 1 and 2.
    // 50% = 51.5 -> 52 (half away from zero): 25.24 / 20.19 / 6.56 -> 25 / 20 / 6 + 1 to class 2.
    for (percent, total, per_class) in [
        (10.0, 10, [5, 4, 1]),
        (5.0, 5, [2, 2, 1]),
        (50.0, 52, [25, 20, 7]),
        (0.0, 0, [0, 0, 0]),
        (100.0, 103, [50, 40, 13]),
    ] {
        let (labelled, unlabelled) = ds.percent_split(percent, 3).unwrap();
        assert_eq!(labelled.n, total, "{percent}%");
        assert_eq!(unlabelled.n, 103 - total, "{percent}%");
        assert_eq!(labelled.label_counts().unwrap(), per_class, "{percent}%");
        assert_eq!(unlabelled.labels, None, "the rest is unlabelled");
    }
}

#[test]
fn percent_split_is_disjoint_complete_ordered_and_keeps_the_labels() {
    let ds = unbalanced();
    let (li, ui) = ds.percent_split_indices(20.0, 9).unwrap();
    let mut all: Vec<usize> = li.iter().chain(&ui).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..103).collect::<Vec<_>>(),
        "every image exactly once"
    );
    assert!(li.windows(2).all(|w| w[0] < w[1]) && ui.windows(2).all(|w| w[0] < w[1]));
    let (labelled, unlabelled) = ds.percent_split(20.0, 9).unwrap();
    let ids = |d: &ImageDataset| d.pixels.iter().map(|&p| p as usize).collect::<Vec<_>>();
    assert_eq!(
        ids(&labelled),
        li,
        "the labelled images are the indexed ones"
    );
    assert_eq!(ids(&unlabelled), ui);
    let truth = ds.labels.as_ref().unwrap();
    let kept: Vec<u8> = li.iter().map(|&i| truth[i]).collect();
    assert_eq!(
        labelled.labels.unwrap(),
        kept,
        "labels travel with their images"
    );
}

#[test]
fn percent_split_is_seeded() {
    let ds = unbalanced();
    let a = ds.percent_split_indices(30.0, 1).unwrap();
    assert_eq!(
        ds.percent_split_indices(30.0, 1).unwrap(),
        a,
        "same seed, same split"
    );
    assert_ne!(
        ds.percent_split_indices(30.0, 2).unwrap(),
        a,
        "another seed, another split"
    );
    assert_eq!(
        ds.percent_split(30.0, 1).unwrap(),
        ds.percent_split(30.0, 1).unwrap()
    );
}

#[test]
fn percent_split_rejects_bad_shares_and_unlabelled_data() {
    let ds = unbalanced();
    for bad in [-1.0, 100.5, f64::NAN, f64::INFINITY] {
        let err = ds.percent_split(bad, 0).unwrap_err().to_string();
        assert!(err.contains("percentage"), "{bad}: {err}");
    }
    let mut unlabelled = ds.clone();
    unlabelled.labels = None;
    let err = unlabelled.percent_split(10.0, 0).unwrap_err().to_string();
    assert!(err.contains("labelled dataset"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// k-means

use saddle_gan::metrics::kmeans;

/// `per` points around each of `centres` (2-D), spread ±0.3 (centres are 10 apart), shuffled
/// by a seeded permutation; returns the rows and each row's true blob.
fn blobs(centres: &[[f64; 2]], per: usize, seed: u64) -> (Vec<f64>, Vec<usize>) {
    let mut rng = saddle_nn::engine::Rng::new(seed);
    let mut points: Vec<([f64; 2], usize)> = Vec::new();
    for (b, c) in centres.iter().enumerate() {
        for _ in 0..per {
            let jitter = |rng: &mut saddle_nn::engine::Rng| (rng.uniform_f64() - 0.5) * 0.6;
            points.push(([c[0] + jitter(&mut rng), c[1] + jitter(&mut rng)], b));
        }
    }
    rng.shuffle(&mut points);
    (
        points.iter().flat_map(|(p, _)| *p).collect(),
        points.iter().map(|&(_, b)| b).collect(),
    )
}

#[test]
fn kmeans_recovers_well_separated_blobs_exactly() {
    let centres = [
        [0.0, 0.0],
        [10.0, 0.0],
        [0.0, 10.0],
        [10.0, 10.0],
        [20.0, 5.0],
    ];
    let (data, truth) = blobs(&centres, 30, 4);
    for seed in 0..8 {
        let km = kmeans(&data, 2, centres.len(), 100, seed).unwrap();
        assert!(km.converged, "seed {seed}");
        // Equal up to a permutation: cluster -> blob is a bijection consistent on every row.
        let mut blob_of = vec![None; centres.len()];
        for (&c, &b) in km.assignments.iter().zip(&truth) {
            assert_eq!(
                *blob_of[c].get_or_insert(b),
                b,
                "seed {seed}: cluster {c} mixes blobs"
            );
        }
        let mut seen: Vec<usize> = blob_of.iter().map(|b| b.unwrap()).collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            [0, 1, 2, 3, 4],
            "seed {seed}: every blob has its own cluster"
        );
        for (c, b) in blob_of.iter().enumerate() {
            let [x, y] = centres[b.unwrap()];
            let got = km.centroid(c);
            assert!(
                (got[0] - x).abs() < 0.3 && (got[1] - y).abs() < 0.3,
                "{got:?}"
            );
        }
    }
}

#[test]
fn kmeans_lloyd_matches_a_hand_computed_clustering() {
    // 1-D rows 0, 1, 10, 11 in two clusters: centroids 0.5 and 10.5, inertia 4 * 0.25 = 1.
    let km = kmeans(&[0.0, 1.0, 10.0, 11.0], 1, 2, 50, 3).unwrap();
    let (lo, hi) = if km.centroid(0)[0] < km.centroid(1)[0] {
        (0, 1)
    } else {
        (1, 0)
    };
    assert_eq!(km.assignments, [lo, lo, hi, hi]);
    assert_eq!((km.centroid(lo)[0], km.centroid(hi)[0]), (0.5, 10.5));
    assert_eq!(km.inertia, 1.0);
    assert_eq!(km.k(), 2);
}

#[test]
fn kmeans_is_deterministic_per_seed() {
    // Overlapping blobs, so the seed matters to the answer.
    let (data, _) = blobs(&[[0.0, 0.0], [0.5, 0.0], [0.0, 0.5]], 40, 2);
    let a = kmeans(&data, 2, 4, 100, 7).unwrap();
    assert_eq!(
        kmeans(&data, 2, 4, 100, 7).unwrap(),
        a,
        "same seed, same clustering"
    );
    let others: Vec<_> = (8..12)
        .map(|s| kmeans(&data, 2, 4, 100, s).unwrap())
        .collect();
    assert!(
        others.iter().any(|o| o.centroids != a.centroids),
        "seeds differ"
    );
}

#[test]
fn kmeans_handles_fewer_distinct_rows_than_k() {
    // Three copies of one row and k = 2: the empty cluster is re-seeded on a duplicate, the
    // tie goes to cluster 0, and the clustering converges with cluster 1 empty.
    let km = kmeans(&[1.0, 2.0, 1.0, 2.0, 1.0, 2.0], 2, 2, 10, 0).unwrap();
    assert!(km.converged);
    assert_eq!(km.assignments, [0, 0, 0]);
    assert_eq!(km.centroids, [1.0, 2.0, 1.0, 2.0]);
    assert_eq!(km.inertia, 0.0);
}

#[test]
fn kmeans_rejects_k_out_of_range_and_bad_rows() {
    let data = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
    for k in [0, 4] {
        let err = kmeans(&data, 2, k, 10, 0).unwrap_err().to_string();
        assert!(err.contains("k must be in 1..=3"), "k = {k}: {err}");
    }
    assert!(kmeans(&data[..5], 2, 1, 10, 0).is_err(), "ragged rows");
    assert!(kmeans(&[0.0, f64::NAN], 1, 1, 10, 0).is_err(), "non-finite");
}

// ---------------------------------------------------------------------------------------------
// Rotation self-supervision

use saddle_gan::models::rotation::{
    d_rotation_loss, g_rotation_loss, rotate_batch, rotation_loss, RotationHead, NUM_ROTATIONS,
    ROTATION_WEIGHT_D, ROTATION_WEIGHT_G,
};
use saddle_nn::engine::{DType, Device, Tensor};
use saddle_nn::init::WeightInit;
use saddle_nn::{Module, ModuleExt};

/// One `s x s` plane turned counter-clockwise by a quarter, by hand: `out[i][j] = in[j][s-1-i]`.
fn turn_plane(plane: &[f32], s: usize) -> Vec<f32> {
    (0..s * s)
        .map(|p| plane[(p % s) * s + (s - 1 - p / s)])
        .collect()
}

#[test]
fn rotated_batch_rows_are_the_originals_turned_by_value() {
    // N = 8, divisor 1: m = 2 rotation examples (images 6 and 7), 2 channels of 3x3.
    let (n, c, s) = (8, 2, 3);
    let plane = c * s * s;
    let values: Vec<f32> = (0..n * plane).map(|v| v as f32).collect();
    let x = Tensor::from_vec(values.clone(), &[n, c, s, s], Device::Cpu).unwrap();
    let rb = rotate_batch(&x, 1).unwrap();
    assert_eq!((rb.originals, rb.per_rotation), (8, 2));
    assert_eq!(rb.images.shape(), [14, c, s, s]);
    let got: Vec<f32> = rb
        .images
        .to_vec_f64()
        .unwrap()
        .iter()
        .map(|&v| v as f32)
        .collect();
    assert_eq!(
        got[..n * plane],
        values[..],
        "the originals come first, untouched"
    );
    for k in 1..4 {
        for (e, image) in [6, 7].into_iter().enumerate() {
            let row = n + (k - 1) * 2 + e;
            let mut want = Vec::new();
            for ch in 0..c {
                let start = image * plane + ch * s * s;
                let mut p = values[start..start + s * s].to_vec();
                for _ in 0..k {
                    p = turn_plane(&p, s);
                }
                want.extend(p);
            }
            assert_eq!(
                got[row * plane..(row + 1) * plane],
                want[..],
                "row {row}: image {image} turned {k}x"
            );
        }
    }
    // The documented direction: [[0, 1], [2, 3]] turned once is [[1, 3], [0, 2]].
    assert_eq!(turn_plane(&[0.0, 1.0, 2.0, 3.0], 2), [1.0, 3.0, 0.0, 2.0]);
    assert_eq!(rb.targets, [0, 0, 1, 1, 2, 2, 3, 3]);
    assert_eq!(rb.rotation_start(), 6);
    assert_eq!(
        rb.extend_labels(&[0, 1, 2, 3, 4, 5, 6, 7]).unwrap(),
        [0, 1, 2, 3, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7]
    );
    // The rotation rows of a per-row output are rows 6..14, in the targets' order.
    let ids = Tensor::from_vec((0..14).map(|v| v as f32).collect(), &[14, 1], Device::Cpu).unwrap();
    let rows = rb.rotation_rows_of(&ids).unwrap().to_vec_f64().unwrap();
    assert_eq!(rows, (6..14).map(f64::from).collect::<Vec<_>>());
    assert_eq!(rb.originals_of(&ids).unwrap().shape(), [8, 1]);
}

#[test]
fn a_quarter_of_a_64_batch_carries_the_rotation_loss() {
    let x = Tensor::zeros(&[64, 1, 2, 2], DType::F32, Device::Cpu).unwrap();
    let rb = rotate_batch(&x, 4).unwrap();
    assert_eq!(rb.per_rotation, 4);
    assert_eq!(rb.images.shape()[0], 64 + 12);
    assert_eq!(rb.targets.len(), 16, "a quarter of 64");
    assert_eq!(rb.targets.iter().filter(|&&t| t == 3).count(), 4);
}

#[test]
fn rotate_batch_rejects_what_it_cannot_lay_out() {
    let x = |shape: &[usize]| Tensor::zeros(shape, DType::F32, Device::Cpu).unwrap();
    for (shape, divisor, needle) in [
        (&[8, 1, 2, 3][..], 1, "square"),
        (&[8, 4][..], 1, "[N, C, H, W]"),
        (&[8, 1, 2, 2][..], 0, "multiple"),
        (&[10, 1, 2, 2][..], 4, "multiple"),
        (&[8, 1, 2, 2][..], 4, "no image to rotate"),
    ] {
        let err = rotate_batch(&x(shape), divisor).unwrap_err().to_string();
        assert!(err.contains(needle), "{shape:?} / {divisor}: {err}");
    }
}

#[test]
fn rotation_head_is_a_spectrally_normalised_linear_to_four_logits() {
    let mut rng = saddle_nn::engine::Rng::new(1);
    let head = RotationHead::new(6, WeightInit::Orthogonal, DType::F32, &mut rng).unwrap();
    let h = Tensor::randn(&[5, 6], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
    assert_eq!(head.forward(&h).unwrap().shape(), [5, NUM_ROTATIONS]);
    let names: Vec<String> = head
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["linear.weight_orig", "linear.bias"]);
    assert_eq!(head.num_parameters(), 6 * 4 + 4);
    let sigma = head.linear.sigma().unwrap().to_scalar().unwrap();
    let w = head.linear.normalized_weight().unwrap();
    let top = (w.to_vec_f64().unwrap().iter().map(|v| v * v).sum::<f64>()).sqrt();
    assert!(
        sigma > 0.0 && top >= 0.99,
        "the normalised weight has top singular value ~1"
    );
}

#[test]
fn rotation_losses_match_hand_computed_cross_entropy() {
    // Row 0: logits 1, 2, 3, 4 with target 3: ln(e + e^2 + e^3 + e^4) - 4 = 0.4401896985.
    // Row 1: equal logits, target 1: ln 4 = 1.3862943611. Mean 0.9132420298.
    let logits = Tensor::from_vec(
        vec![1.0f64, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0],
        &[2, 4],
        Device::Cpu,
    )
    .unwrap();
    let targets = [3, 1];
    let e = std::f64::consts::E;
    let row0 = (e + e * e + e.powi(3) + e.powi(4)).ln() - 4.0;
    let want = (row0 + 4f64.ln()) / 2.0;
    assert!((want - 0.9132420298).abs() < 1e-9);
    let got = rotation_loss(&logits, &targets)
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    assert_eq!((ROTATION_WEIGHT_D, ROTATION_WEIGHT_G), (1.0, 0.2));
    let d = d_rotation_loss(&logits, &targets)
        .unwrap()
        .to_scalar()
        .unwrap();
    let g = g_rotation_loss(&logits, &targets)
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(
        (d - want).abs() < 1e-12 && (g - 0.2 * want).abs() < 1e-12,
        "{d} {g}"
    );
}

#[test]
fn rotation_loss_gradients_reach_the_images_of_every_orientation() {
    // No new op is involved (narrow, rot90, concat, cross-entropy each have their own checks);
    // this checks the assembly: d loss / d x is nonzero exactly on the rotation examples.
    let mut rng = saddle_nn::engine::Rng::new(3);
    let x = Tensor::randn(&[4, 1, 2, 2], 0.0, 1.0, DType::F64, Device::Cpu, &mut rng)
        .unwrap()
        .with_requires_grad(true);
    let rb = rotate_batch(&x, 1).unwrap();
    let logits = rb
        .rotation_rows_of(&rb.images.reshape(&[7, 4]).unwrap())
        .unwrap();
    let grads = rotation_loss(&logits, &rb.targets)
        .unwrap()
        .backward()
        .unwrap();
    let g = grads.get(&x).unwrap().to_vec_f64().unwrap();
    assert!(g.iter().all(|v| v.is_finite()));
    assert!(
        g[..12].iter().all(|&v| v == 0.0),
        "images 0..3 carry no rotation loss"
    );
    assert!(g[12..].iter().any(|&v| v != 0.0), "image 3 does");
}

// ---- the pre-trained label sources (S2GAN, S3GAN, CLUSTERING) and co-training's labels ----

mod label_sources {
    use saddle_gan::data::{ImageDataset, UNLABELLED};
    use saddle_gan::models::biggan::BigGanConfig;
    use saddle_gan::models::labeller::{
        accuracy, all_rotations, clustering_labels, hidden_rest_labels, purity, s2l_labels,
        LabellerConfig,
    };
    use saddle_nn::engine::{Device, Tensor};

    #[test]
    fn all_rotations_stacks_the_four_orientations_with_their_targets() {
        let x = Tensor::from_vec(
            (0..2 * 9).map(|v| v as f32).collect::<Vec<_>>(),
            &[2, 1, 3, 3],
            Device::Cpu,
        )
        .unwrap();
        let (turned, targets) = all_rotations(&x).unwrap();
        assert_eq!(turned.shape(), [8, 1, 3, 3]);
        assert_eq!(targets, [0, 0, 1, 1, 2, 2, 3, 3]);
        for k in 0..4 {
            let want = x.rot90(k as i32).unwrap().to_vec_f64().unwrap();
            let got = turned.narrow(0, 2 * k, 2).unwrap().to_vec_f64().unwrap();
            assert_eq!(got, want, "quarter turns {k}");
        }
    }

    #[test]
    fn accuracy_and_purity_match_hand_counts() {
        assert_eq!(accuracy(&[0, 1, 2, 2], &[0, 1, 1, 2]), 0.75);
        assert_eq!(accuracy(&[], &[]), 0.0);
        // Clusters {0,1,2} -> classes 0,0,1 (majority 2), {3,4} -> 1,1 (2), {5} -> 2 (1).
        assert_eq!(purity(&[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 1, 2]), 5.0 / 6.0);
        // Cluster ids need not match class ids: a relabelled perfect clustering is pure.
        assert_eq!(purity(&[2, 2, 0, 0, 1], &[0, 0, 1, 1, 2]), 1.0);
    }

    /// `n` 32x32 grey images of two well-separated classes: class 1 bright in the left half,
    /// class 0 bright in the right half (so the class is not a rotation of the other's image
    /// mean alone but is easy), with a little seeded noise.
    fn halves(n: usize) -> ImageDataset {
        let mut rng = saddle_nn::engine::Rng::new(3);
        let labels: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
        let mut pixels = Vec::with_capacity(n * 1024);
        for &l in &labels {
            for _ in 0..32 {
                for c in 0..32 {
                    let bright = (c < 16) == (l == 1);
                    let base = if bright { 0.9 } else { 0.1 };
                    pixels.push(base + 0.05 * rng.uniform_f32());
                }
            }
        }
        ImageDataset {
            n,
            channels: 1,
            height: 32,
            width: 32,
            pixels,
            labels: Some(labels),
            num_classes: 2,
            source: "two halves".into(),
        }
    }

    fn labeller(steps: u64) -> LabellerConfig {
        LabellerConfig {
            model: BigGanConfig {
                resolution: 32,
                channels: 1,
                ch: 4,
                num_classes: None,
                z_dim: 20,
                shared_dim: 8,
                attention_resolution: None,
                ..BigGanConfig::imagenet128()
            },
            classes: 2,
            steps,
            batch_size: 8,
            lr: 1e-3,
        }
    }

    /// S2GAN's labels keep the labelled share's own labels, give the rest the trained
    /// classifier's (which learns two separable classes), and report its accuracy on the rest
    /// truthfully.
    #[test]
    fn s2l_labels_keep_the_known_labels_and_predict_the_rest() {
        let data = halves(40);
        let (labels, acc) = s2l_labels(&labeller(40), &data, 25.0, 9, |_, l| {
            assert!(l.rotation.is_finite() && l.class.is_some_and(f32::is_finite));
        })
        .unwrap();
        let (known, rest) = data.percent_split_indices(25.0, 9).unwrap();
        let truth = data.labels.as_ref().unwrap();
        for &i in &known {
            assert_eq!(labels[i], truth[i], "a known label changed at {i}");
        }
        let predicted: Vec<usize> = rest.iter().map(|&i| labels[i] as usize).collect();
        let rest_truth: Vec<u8> = rest.iter().map(|&i| truth[i]).collect();
        assert_eq!(acc, accuracy(&predicted, &rest_truth));
        assert!(acc >= 0.9, "accuracy {acc} on two separable classes");
        // No labelled image: refused, not trained on nothing.
        assert!(s2l_labels(&labeller(1), &data, 0.0, 9, |_, _| {}).is_err());
    }

    /// CLUSTERING recovers two well-separated classes (without their labels) and reports the
    /// purity.
    #[test]
    fn clustering_labels_recover_separable_classes() {
        let data = halves(40);
        let (clusters, quality) = clustering_labels(&labeller(10), &data, 4, |_, l| {
            assert!(l.rotation.is_finite() && l.class.is_none());
        })
        .unwrap();
        assert_eq!(clusters.len(), 40);
        let as_usize: Vec<usize> = clusters.iter().map(|&c| c as usize).collect();
        let p = purity(&as_usize, data.labels.as_ref().unwrap());
        assert_eq!(quality, Some(p));
        assert!(p >= 0.95, "purity {p}");
    }

    /// Co-training's labels are the k% split's own labels and UNLABELLED elsewhere.
    #[test]
    fn hidden_rest_labels_hide_exactly_the_unlabelled_share() {
        let data = halves(40);
        let labels = hidden_rest_labels(&data, 20.0, 4).unwrap();
        let (known, _) = data.percent_split_indices(20.0, 4).unwrap();
        assert_eq!(known.len(), 8);
        let truth = data.labels.as_ref().unwrap();
        for (i, &l) in labels.iter().enumerate() {
            if known.contains(&i) {
                assert_eq!(l, truth[i]);
            } else {
                assert_eq!(l, UNLABELLED);
            }
        }
    }
}
