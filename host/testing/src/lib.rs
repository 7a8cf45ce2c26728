//! Dev-only: what the tests of several crates share, and nothing that
//! depends on Paracle's own crates (so no crate's tests depend on a crate
//! that depends on it).
//!
//! - [`http`]: a real HTTP/1.1 server on loopback, on a free port.
//! - [`oci`]: a real OCI registry (Debian's `docker-registry`) on loopback.
//! - [`nats`]: a real NATS server with JetStream (Debian's `nats-server`)
//!   on loopback.

pub mod http;
pub mod nats;
pub mod oci;
