//! The host's side of the `paracle:plugin` WIT contract.
//!
//! The bindings are generated per contract version, in a module of their own
//! (`v0_1` for `0.1.x`); what leaves this crate is the current version's
//! types, under their own names, so the host names no generated path. The
//! one version constant is [`CONTRACT_VERSION`], read from `wit/` by
//! `paracle-contract-version`, which paracle-sdk reads too.

pub mod json;
mod v0_1;

pub use paracle_contract_version::{CONTRACT_PACKAGE, CONTRACT_VERSION};
pub use v0_1::*;

#[cfg(test)]
mod tests {
    /// The bindings module serves the major.minor line the WIT declares: a
    /// version bump that changes it needs a new module (see
    /// docs/architecture.md).
    #[test]
    fn bindings_serve_the_declared_version() {
        assert!(
            super::CONTRACT_VERSION.starts_with("0.1."),
            "wit/ declares {}, but the bindings module is v0_1",
            super::CONTRACT_VERSION
        );
    }
}
