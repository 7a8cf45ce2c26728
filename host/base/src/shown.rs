//! Text that a plugin chose (its name in an error, its version, a log line,
//! a tool's answer), made safe to show a person on a terminal.
//!
//! A terminal obeys escape sequences in what it prints: a plugin could move
//! the cursor and overwrite the lines that say what it asks for, retitle the
//! window or forge a log line. Control characters (C0 with ESC, DEL, C1) and
//! the Unicode controls that reorder text are shown as `\u{..}` escapes
//! instead. JSON output needs none of this: it is for programs, and stays
//! exact.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach a terminal as it is.
fn is_control(c: char) -> bool {
    c.is_control()
        // Bidirectional overrides and isolates reorder what is displayed.
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escaped(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_control(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_control(c) && !keep(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` on one line: every control character escaped, newlines and tabs
/// too.
pub fn line(text: &str) -> Cow<'_, str> {
    escaped(text, |_| false)
}

/// `text` as lines: newlines and tabs kept, every other control escaped.
pub fn block(text: &str) -> Cow<'_, str> {
    escaped(text, |c| c == '\n' || c == '\t')
}

/// [`line`], cut to at most `max` characters with `…` where it was cut: for
/// a table cell or a summary, where a plugin's long text would push
/// everything else off the screen.
pub fn clipped(text: &str, max: usize) -> String {
    let safe = line(text);
    if safe.chars().count() <= max {
        return safe.into_owned();
    }
    let mut cut: String = safe.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_and_plain_text_is_untouched() {
        assert!(matches!(line("plain — text ✓"), Cow::Borrowed(_)));
        assert_eq!(line("a\x1b[2Kb"), "a\\u{1b}[2Kb");
        assert_eq!(line("a\u{9b}31mb"), "a\\u{9b}31mb");
        assert_eq!(line("x\ny\tz\x7f"), "x\\u{a}y\\u{9}z\\u{7f}");
        assert_eq!(block("x\ny\tz\r"), "x\ny\tz\\u{d}");
        assert_eq!(line("abc\u{202e}cba"), "abc\\u{202e}cba");
        assert_eq!(clipped("abcdef", 4), "abc…");
        assert_eq!(clipped("ab\x1b", 10), "ab\\u{1b}");
    }
}
