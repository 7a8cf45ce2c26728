//! Why the cluster could not do what was asked.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "cannot reach NATS at {url}: {message}; is a server running there (`nats-server -js`)?"
    )]
    Unreachable { url: String, message: String },

    #[error("NATS at {url}: cannot set up `{what}`: {message}")]
    Setup {
        url: String,
        what: String,
        message: String,
    },

    #[error("NATS at {url}: {message}")]
    Nats { url: String, message: String },

    /// A component that could not be sent to the workers.
    #[error("plugin `{plugin}`: {message}")]
    Component { plugin: String, message: String },

    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{0}")]
    Worker(String),
}
