//! Wall-clock times as runs record them: RFC 3339 in UTC for state and
//! reports, `YYYYMMDD_HHMMSS` for names of files and branches.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

pub(crate) fn now_rfc3339() -> String {
    rfc3339(now_ms())
}

/// `YYYYMMDD_HHMMSS` in UTC.
pub(crate) fn stamp(ms: u64) -> String {
    // 2026-11-21T14:30:05Z -> 20261121_143005
    let text = rfc3339(ms);
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    format!("{}_{}", &digits[..8], &digits[8..14])
}

/// `YYYYMMDD_HHMMSS_mmm`: for files written once per action, so that two
/// actions in one second do not overwrite each other.
pub(crate) fn stamp_ms(ms: u64) -> String {
    format!("{}_{:03}", stamp(ms), ms % 1000)
}

/// (year, month, day, hour, minute, second) in UTC.
pub(crate) fn parts(ms: u64) -> (u16, u8, u8, u8, u8, u8) {
    let digits: Vec<u32> = stamp(ms).chars().filter_map(|c| c.to_digit(10)).collect();
    let n = |range: std::ops::Range<usize>| digits[range].iter().fold(0, |acc, d| acc * 10 + d);
    (
        n(0..4) as u16,
        n(4..6) as u8,
        n(6..8) as u8,
        n(8..10) as u8,
        n(10..12) as u8,
        n(12..14) as u8,
    )
}

/// Milliseconds since the epoch of an RFC 3339 time written by [`rfc3339`].
pub(crate) fn parse_ms(text: &str) -> Option<u64> {
    humantime::parse_rfc3339(text)
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_digits() {
        // 2026-11-21T14:30:05.123Z
        let ms = 1_795_271_405_123;
        assert_eq!(rfc3339(ms), "2026-11-21T14:30:05Z");
        assert_eq!(stamp(ms), "20261121_143005");
        assert_eq!(stamp_ms(ms), "20261121_143005_123");
        assert_eq!(parts(ms), (2026, 11, 21, 14, 30, 5));
        assert_eq!(parse_ms("2026-11-21T14:30:05Z"), Some(ms - 123));
    }
}
