//! Kept in its own file so that the host's benchmark compiles this very
//! function natively, as the baseline for the plugin call.

pub fn count_vowels(text: &str) -> usize {
    text.bytes()
        .filter(|b| matches!(b.to_ascii_lowercase(), b'a' | b'e' | b'i' | b'o' | b'u'))
        .count()
}
