//! Reading the TOML files an operator edits (paracle.toml, the registry, the
//! trust list, the orchestrator's specs) so that every error points at its line.

use serde::de::DeserializeOwned;

/// Why a TOML file was refused, and on which line when the parser knows.
#[derive(Debug)]
pub struct TomlError {
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for TomlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for TomlError {}

impl From<TomlError> for String {
    fn from(error: TomlError) -> String {
        error.to_string()
    }
}

pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, TomlError> {
    toml::from_str(text).map_err(|error: toml::de::Error| TomlError {
        line: error.span().map(|span| line_of(text, span.start)),
        message: error.message().to_string(),
    })
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
