//! The guest components the tests load, built for `wasm32-wasip2` by this
//! crate's build script: one path constant per component (`HOSTILE`,
//! `TEXT_TOOLS`, ...) and [`foreach_fixture!`]. Dev-only: the production
//! build compiles only the embedded samples (in `paracle-project`).
//!
//! A test binary proves that every fixture has tests by naming a module
//! after each one:
//!
//! ```ignore
//! macro_rules! has_tests {
//!     ($fixture:ident) => {
//!         #[allow(unused_imports)]
//!         use self::$fixture as _;
//!     };
//! }
//! paracle_guests::foreach_fixture!(has_tests);
//! ```

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
