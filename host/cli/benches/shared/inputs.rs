//! The inputs the call benchmarks share, so that their figures compare.

/// The sizes of text each case is measured at, with their labels.
pub(crate) const INPUT_SIZES: [(&str, usize); 3] =
    [("16 B", 16), ("1 KiB", 1024), ("64 KiB", 64 * 1024)];

/// English text of `size` bytes.
pub(crate) fn text_of(size: usize) -> String {
    "The quick brown fox jumps over the lazy dog. "
        .chars()
        .cycle()
        .take(size)
        .collect()
}
