//! `paracle audit`: who allowed or refused what, from the project's
//! append-only log.

use std::path::Path;
use std::time::SystemTime;

use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;

use super::output::{print_json, print_table};
use paracle_base::shown;
use paracle_project::{AuditLog, Paths};

#[derive(Args)]
pub(super) struct AuditArgs {
    /// Only records since then: a duration back from now (`2h`, `7days`)
    /// or a time (`2026-12-01T09:00:00Z`).
    #[arg(long)]
    since: Option<String>,
    /// Only records about this plugin.
    #[arg(long)]
    plugin: Option<String>,
    #[arg(long)]
    json: bool,
}

pub(super) fn run(project: &Path, args: AuditArgs) -> Result<()> {
    let paths = Paths::for_project(project);
    let log = AuditLog::new(paths.audit_file());
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let read = log.read()?;
    let records: Vec<_> = read
        .records
        .into_iter()
        .filter(|r| {
            args.plugin
                .as_ref()
                .is_none_or(|p| r.plugin.as_ref() == Some(p))
        })
        .filter(|r| {
            since.is_none_or(|since| {
                humantime::parse_rfc3339_weak(&r.at).is_ok_and(|at| at >= since)
            })
        })
        .collect();
    if args.json {
        print_json(&json!({
            "file": log.file(),
            "records": records,
            "torn": read.torn,
        }));
    } else {
        if records.is_empty() {
            println!(
                "No audit records{}.",
                if args.plugin.is_some() || since.is_some() {
                    " match"
                } else {
                    " yet"
                }
            );
        } else {
            let rows: Vec<Vec<String>> = records
                .iter()
                .map(|r| {
                    vec![
                        r.at.clone(),
                        r.action.as_str().to_string(),
                        shown::line(r.plugin.as_deref().unwrap_or("-")).into_owned(),
                        shown::line(&r.who).into_owned(),
                        shown::line(&r.what).into_owned(),
                        r.outcome.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(
                &["TIME", "ACTION", "PLUGIN", "WHO", "WHAT", "OUTCOME"],
                &rows,
            );
        }
        for torn in &read.torn {
            eprintln!(
                "warning: line {} of {} ({} bytes) is not a record: a write cut short by a crash; it was skipped",
                torn.line,
                log.file().display(),
                torn.bytes
            );
        }
    }
    Ok(())
}

fn parse_since(text: &str) -> Result<SystemTime> {
    if let Ok(ago) = humantime::parse_duration(text) {
        return Ok(SystemTime::now()
            .checked_sub(ago)
            .unwrap_or(SystemTime::UNIX_EPOCH));
    }
    if let Ok(at) = humantime::parse_rfc3339_weak(text) {
        return Ok(at);
    }
    bail!("--since `{text}` is neither a duration (`2h`, `7days`) nor a time (`2026-12-01T09:00:00Z`)")
}
