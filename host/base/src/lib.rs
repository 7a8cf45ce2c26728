//! What every layer of Paracle needs and that knows nothing of plugins.
//!
//! - [`atomic`]: state files written whole or not at all (temporary file,
//!   fsync, rename).
//! - [`beneath`]: files below a directory plugins write into, opened one
//!   component at a time without following links.
//! - [`shown`]: text a plugin produced, made safe to show on a terminal.
//! - [`strict_toml`]: TOML that refuses unknown keys and says on which line.

pub mod atomic;
pub mod beneath;
pub mod shown;
pub mod strict_toml;
