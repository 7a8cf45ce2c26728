//! The names plugin tools go by over MCP.
//!
//! A name is `PLUGIN__TOOL`. Clients disagree on what a tool name may hold:
//! the MCP spec allows 128 characters and dots, while Claude's API takes
//! only `[A-Za-z0-9_-]{1,64}`. Plugin and tool names are already made of
//! those characters, so only the length and the separator need care.
//!
//! A name depends on nothing but its plugin's and its tool's names, so it
//! stays the same from session to session and machine to machine.

use sha2::{Digest, Sha256};

/// The longest name every client we know of accepts.
pub const MAX_NAME: usize = 64;

const SEPARATOR: &str = "__";

/// The MCP name of `tool` of `plugin`.
///
/// `PLUGIN__TOOL` can be split at its first `__` when the plugin's name has
/// no `__` and does not end in `_`. Any other name, and any name too long,
/// is shortened and given a hash of both names, so that two tools never
/// share one.
pub fn tool_name(plugin: &str, tool: &str) -> String {
    let plain = format!("{plugin}{SEPARATOR}{tool}");
    let splits_cleanly = !plugin.contains(SEPARATOR) && !plugin.ends_with('_');
    if splits_cleanly && plain.len() <= MAX_NAME {
        return plain;
    }
    let digest = Sha256::digest(format!("{plugin}/{tool}").as_bytes());
    let suffix = format!("_{}", &hex::encode(digest)[..10]);
    let keep = MAX_NAME - suffix.len();
    // Names are ASCII (checked when plugins load), so bytes are characters.
    let stem: String = plain.chars().take(keep).collect();
    format!("{stem}{suffix}")
}

/// Whether `name` is one that [`tool_name`] could have made, or a built-in
/// tool's: at most 64 letters, digits, `_` or `-`.
pub fn is_portable(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_name_is_plugin_and_tool() {
        assert_eq!(
            tool_name("text-tools", "word_count"),
            "text-tools__word_count"
        );
    }

    #[test]
    fn names_that_would_split_two_ways_get_a_hash() {
        // `a_` + `b` and `a` + `_b` would both read `a___b`.
        let one = tool_name("a_", "b");
        let other = tool_name("a", "_b");
        assert_ne!(one, other);
        assert_eq!(other, "a___b");
        assert!(one.starts_with("a___b_") && is_portable(&one), "{one}");
        let doubled = tool_name("x__y", "z");
        assert_ne!(doubled, tool_name("x", "y__z"));
    }

    #[test]
    fn long_names_are_cut_to_64_and_stay_distinct() {
        let plugin = "p".repeat(60);
        let one = tool_name(&plugin, "first_tool_with_a_long_name");
        let other = tool_name(&plugin, "first_tool_with_a_long_name_too");
        assert_eq!(one.len(), MAX_NAME);
        assert_eq!(other.len(), MAX_NAME);
        assert_ne!(one, other);
        assert!(is_portable(&one) && is_portable(&other));
    }

    #[test]
    fn names_are_stable() {
        // A fixed value (sha256 of `a_/b`, from Python's hashlib) guards
        // against a change that would rename tools for every client.
        assert_eq!(tool_name("a_", "b"), "a___b_4ba7030a8c");
    }

    #[test]
    fn what_is_portable() {
        assert!(is_portable("workflow_run"));
        assert!(!is_portable("a.b"));
        assert!(!is_portable(""));
        assert!(!is_portable(&"x".repeat(65)));
    }
}
