//! What a plugin may reach and the limits it runs under, as an operator
//! writes them: the types, their parsing and their checks. No wasmtime here:
//! the registry, the CLI and a later approval prompt read and write policy
//! without linking the engine that enforces it (the runtime does).

mod approvals;
mod error;
mod grants;
mod limits;
mod network;

pub use approvals::{Approvals, Approve};
pub use error::PolicyError;
pub use grants::{valid_variable_name, DirGrant, Grant, Grants, GRANT_FORMS};
pub use limits::{Limit, Limits, MAX_MEMORY_BYTES};
pub use network::{restricted, BadNetGrant, NetGrant};
