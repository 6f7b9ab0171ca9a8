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
