//! Why a grant or a limit was refused.

/// A grant or a limit an operator wrote that cannot be used. The message
/// says how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid grant `{grant}`: {reason}")]
    BadGrant { grant: String, reason: String },

    #[error("{0}")]
    BadLimit(String),
}
