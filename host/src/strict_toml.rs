//! Reading the TOML files an operator edits (paracle.toml, the registry, the
//! trust list) so that every error points at its line.

use serde::de::DeserializeOwned;

/// Parse `text`; an error is one line that starts with `line N:`.
pub(crate) fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|error: toml::de::Error| {
        let message = error.message();
        match error.span() {
            Some(span) => format!("line {}: {message}", line_of(text, span.start)),
            None => message.to_string(),
        }
    })
}

/// The 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
