//! Generated bindings, one module per world (see `build.rs`). Private to the
//! SDK: authors use the traits and the `export!` macro instead.
//!
//! `pub_export_macro` matters for more than visibility: with it, wit-bindgen
//! emits a world's exports only where `export!` is invoked, so a plugin's
//! component describes its own world and not the union of them all.

#![allow(clippy::all, missing_docs, unsafe_op_in_unsafe_fn, unused_imports)]

pub mod adapter {
    include!(concat!(env!("OUT_DIR"), "/adapter.rs"));
}
pub mod provider {
    include!(concat!(env!("OUT_DIR"), "/provider.rs"));
}
pub mod tool {
    include!(concat!(env!("OUT_DIR"), "/tool.rs"));
}
pub mod memory {
    include!(concat!(env!("OUT_DIR"), "/memory.rs"));
}
pub mod observer {
    include!(concat!(env!("OUT_DIR"), "/observer.rs"));
}
pub mod git_workflow {
    include!(concat!(env!("OUT_DIR"), "/git_workflow.rs"));
}
