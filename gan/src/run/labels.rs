//! Class labels for sampling a conditional model: balanced, shuffled draws for evaluation and the
//! fixed one-row-per-class labels of the training loop's sample grid.

use saddle_nn::engine::Rng;

/// `n` labels over `k` classes drawn uniformly and shuffled: every class appears `n / k` or
/// `n / k + 1` times (the classes that get the extra one are chosen at random), in random order.
///
/// Evaluation samples a conditional model with these: an Inception-style score splits its
/// samples into contiguous parts, so class-sorted samples would give parts of one class each and
/// a score far below the model's. Exact balance (rather than independent draws) keeps the class
/// mix of a small sample the data's. Panics when `k` is 0.
pub fn uniform_shuffled_labels(n: usize, k: usize, rng: &mut Rng) -> Vec<usize> {
    assert!(k > 0, "uniform_shuffled_labels: no classes");
    let mut extra: Vec<usize> = (0..k).collect();
    rng.shuffle(&mut extra);
    let mut labels: Vec<usize> = (0..n / k)
        .flat_map(|_| 0..k)
        .chain(extra.into_iter().take(n % k))
        .collect();
    rng.shuffle(&mut labels);
    labels
}

/// The labels of a conditional model's sample grid of `count` images laid out `per_row` to a
/// row: one class per row, class `r` in row `r`, as many rows as there are classes or as fit in
/// `count` images, whichever is fewer. Returns the labels (row by row); their count is how many
/// of the grid's images are drawn (`count` when the classes fill every row).
pub fn grid_labels(count: usize, per_row: usize, classes: usize) -> Vec<usize> {
    let per_row = per_row.clamp(1, count.max(1));
    let rows = count.div_ceil(per_row).min(classes);
    (0..rows)
        .flat_map(|r| std::iter::repeat_n(r, per_row))
        .take(count)
        .collect()
}
