//! The limits a plugin runs under, and the names of the limits the host
//! enforces.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::PolicyError;

/// The most linear memory an instance may be given: the engine reserves
/// address space for this much per instance.
pub const MAX_MEMORY_BYTES: u64 = 4 << 30;

/// Per-plugin limits. The defaults are safe for a stranger's code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory per instance, in MiB.
    pub memory_mib: u64,
    /// Wall-clock time per call, in milliseconds.
    pub timeout_ms: u64,
    /// Instances of this plugin that may exist at once.
    pub max_instances: u32,
    /// Bytes one call may return, in KiB.
    pub max_output_kib: u64,
    /// Bytes one call may log, in KiB.
    pub max_log_kib: u64,
    /// Bytes of one HTTP response body, in KiB.
    pub max_response_kib: u64,
    /// Fuel per call: a deterministic budget of wasm work, roughly one unit
    /// per instruction. None for no fuel limit (the default).
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 64,
            timeout_ms: 10_000,
            max_instances: 4,
            max_output_kib: 1024,
            max_log_kib: 64,
            max_response_kib: 4096,
            fuel: None,
        }
    }
}

impl Limits {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib.saturating_mul(1 << 20)
    }

    pub fn output_bytes(&self) -> usize {
        self.max_output_kib.saturating_mul(1024) as usize
    }

    /// The names `set` takes.
    pub const NAMES: &'static str =
        "memory_mib, timeout_ms, fuel, max_instances, max_output_kib, max_log_kib, max_response_kib";

    /// Set one limit from `NAME=VALUE`; `fuel=none` removes the fuel limit.
    /// The result is validated as a whole.
    pub fn set(&mut self, assignment: &str) -> Result<(), PolicyError> {
        self.assign(assignment).map_err(PolicyError::BadLimit)
    }

    fn assign(&mut self, assignment: &str) -> Result<(), String> {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("write `{assignment}` as NAME=VALUE, one of {}", Self::NAMES))?;
        let number = || {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("`{value}` is not a whole number"))
        };
        match name.trim() {
            "memory_mib" => self.memory_mib = number()?,
            "timeout_ms" => self.timeout_ms = number()?,
            "fuel" if value.trim() == "none" => self.fuel = None,
            "fuel" => self.fuel = Some(number()?),
            "max_instances" => {
                self.max_instances = u32::try_from(number()?)
                    .map_err(|_| "max_instances is too large".to_string())?
            }
            "max_output_kib" => self.max_output_kib = number()?,
            "max_log_kib" => self.max_log_kib = number()?,
            "max_response_kib" => self.max_response_kib = number()?,
            other => {
                return Err(format!(
                    "no limit `{other}`; the limits are {}",
                    Self::NAMES
                ))
            }
        }
        self.check()
    }

    /// Every limit on one line.
    pub fn describe(&self) -> String {
        let fuel = match self.fuel {
            Some(fuel) => format!("{fuel} fuel"),
            None => "no fuel limit".into(),
        };
        format!(
            "memory {} MiB, {} ms per call, {fuel}, {} instances, output {} KiB, logs {} KiB, HTTP responses {} KiB",
            self.memory_mib,
            self.timeout_ms,
            self.max_instances,
            self.max_output_kib,
            self.max_log_kib,
            self.max_response_kib
        )
    }

    /// Whether the limits can be run under, as a whole.
    pub fn validate(&self) -> Result<(), PolicyError> {
        self.check().map_err(PolicyError::BadLimit)
    }

    fn check(&self) -> Result<(), String> {
        if self.memory_mib == 0 || self.memory_bytes() > MAX_MEMORY_BYTES {
            return Err(format!(
                "memory_mib must be between 1 and {}",
                MAX_MEMORY_BYTES >> 20
            ));
        }
        if self.timeout_ms == 0 {
            return Err("timeout_ms must be at least 1".into());
        }
        if self.max_instances == 0 {
            return Err("max_instances must be at least 1".into());
        }
        if self.fuel == Some(0) {
            return Err("fuel must be at least 1; leave it out for no fuel limit".into());
        }
        Ok(())
    }
}

/// A resource limit the host enforces on every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Limit {
    /// Wall-clock time per call.
    Time,
    /// Linear memory.
    Memory,
    /// The fuel budget.
    Fuel,
    /// Bytes returned by one call.
    Output,
    /// Bytes logged during one call.
    Logs,
    /// The wasm stack (deep recursion).
    Stack,
    /// Host resources (files, streams, pollables) one instance holds at once.
    Handles,
    /// Bytes of one HTTP response body.
    Response,
    /// How deep returned JSON nests.
    Depth,
    /// Provider calls in one agent run, past its `max_steps`.
    Steps,
    /// A value the plugin returned (a name, a description, a list) that is
    /// larger than the host keeps.
    Value,
}

impl Limit {
    /// How an operator changes this limit for `plugin`: every limit is the
    /// host's, and a plugin that hits one is told apart from a broken one.
    pub fn how_to_raise(&self, plugin: &str) -> String {
        let setting = match self {
            Limit::Time => "timeout_ms",
            Limit::Memory => "memory_mib",
            Limit::Fuel => "fuel",
            Limit::Output => "max_output_kib",
            Limit::Logs => "max_log_kib",
            Limit::Response => "max_response_kib",
            Limit::Steps => {
                return "the host's limit on an agent's provider calls; raise `max_steps` in the agent's spec".into()
            }
            Limit::Stack | Limit::Handles | Limit::Depth | Limit::Value => {
                return "a fixed limit of the host, the same for every plugin".into()
            }
        };
        format!(
            "the host's `{setting}` limit; change it with `paracle plugin limit {plugin} {setting}=N` (in `[plugins.{plugin}.limits]` for a plugin of paracle.toml), or `--{}` when loading",
            setting.replace('_', "-")
        )
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Time => "time",
            Limit::Memory => "memory",
            Limit::Fuel => "fuel",
            Limit::Output => "output size",
            Limit::Logs => "log volume",
            Limit::Stack => "stack",
            Limit::Handles => "open handles",
            Limit::Response => "HTTP response size",
            Limit::Depth => "JSON depth",
            Limit::Steps => "agent steps",
            Limit::Value => "returned value size",
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn limits_are_set_by_name_and_validated() {
        let mut limits = super::Limits::default();
        limits.set("memory_mib=128").unwrap();
        limits.set("fuel=1000").unwrap();
        assert_eq!((limits.memory_mib, limits.fuel), (128, Some(1000)));
        limits.set("fuel=none").unwrap();
        assert_eq!(limits.fuel, None);
        for bad in [
            "memory_mib",
            "memory_mib=lots",
            "speed=9",
            "timeout_ms=0",
            "fuel=0",
        ] {
            assert!(limits.set(bad).is_err(), "{bad}");
        }
    }
}
