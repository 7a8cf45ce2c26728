//! The capabilities the host offers plugins, one module each. Each owns its
//! context, the view a store gives it and its `add_to_linker`; none names
//! another's types, and the store (`crate::store`) composes them.

pub(crate) mod agent;
pub(crate) mod files;
pub(crate) mod git;
pub(crate) mod host;
pub(crate) mod network;
