//! The version of the `paracle:plugin` WIT package, as `wit/` declares it.
//!
//! The host checks a component's exports against it and paracle-sdk builds
//! its bindings for it; both read this one constant, and this crate reads it
//! from the WIT files at build time, so a version bump is an edit of `wit/`
//! alone. No dependencies: it builds for the host and for `wasm32-wasip2`.
#![no_std]

/// The WIT package every plugin is written against.
pub const CONTRACT_PACKAGE: &str = "paracle:plugin";

/// Its version, `MAJOR.MINOR.PATCH`, as in `package paracle:plugin@…;`.
pub const CONTRACT_VERSION: &str = env!("PARACLE_CONTRACT_VERSION");

#[cfg(test)]
mod tests {
    extern crate std;

    #[test]
    fn the_version_is_three_numbers() {
        let parts: std::vec::Vec<&str> = super::CONTRACT_VERSION.split('.').collect();
        assert_eq!(parts.len(), 3, "{}", super::CONTRACT_VERSION);
        assert!(parts.iter().all(|p| p.parse::<u32>().is_ok()));
    }
}
