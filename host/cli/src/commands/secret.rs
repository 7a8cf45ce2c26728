//! `paracle secret ...`: the user's secrets, kept outside every project.
//! A value is read from stdin (or typed at a prompt that does not echo),
//! never taken from the command line, which other processes can read.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::json;

use super::output::{print_json, print_table};
use paracle_project::secrets::{check_name, MAX_SECRET_BYTES};
use paracle_project::{AuditAction, AuditLog, AuditRecord, Paths, SecretStore};

#[derive(Subcommand)]
pub(super) enum SecretCommand {
    /// Set secret NAME. The value is read from stdin, or typed at a prompt
    /// that does not echo; one trailing newline is dropped. Grant it to a
    /// plugin with `paracle plugin grant PLUGIN secret:NAME`, which sees it
    /// as the environment variable NAME.
    Set {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// The names of your secrets (never their values).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Forget secret NAME. Plugins granted it no longer load until the
    /// grant is revoked or the secret set again.
    Rm {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(project: &Path, command: SecretCommand) -> Result<()> {
    let paths = Paths::for_project(project);
    let store = SecretStore::open(&paths.secrets)?;
    let audit = AuditLog::new(paths.audit_file());
    let record = |action: AuditAction, name: &str, outcome: &str| {
        // Only where a project is: a secret is the user's, not the project's.
        if paths.state.is_dir() {
            let record =
                AuditRecord::new(action, "operator", format!("secret:{name}")).outcome(outcome);
            if let Err(error) = audit.append(&record) {
                eprintln!("warning: {error}");
            }
        }
    };
    match command {
        SecretCommand::Set { name, json } => {
            check_name(&name)?;
            let value = read_value(&name)?;
            let replaced = store.set(&name, &value)?;
            record(
                AuditAction::Grant,
                &name,
                if replaced { "replaced" } else { "set" },
            );
            if json {
                print_json(&json!({ "name": name, "replaced": replaced }));
            } else {
                println!(
                    "{} secret `{name}`; grant it with `paracle plugin grant PLUGIN secret:{name}`",
                    if replaced { "Replaced" } else { "Set" }
                );
            }
        }
        SecretCommand::List { json } => {
            let names = store.names();
            if json {
                print_json(&json!({ "secrets": names, "file": paths.secrets }));
            } else if names.is_empty() {
                println!(
                    "No secrets. Set one with `paracle secret set NAME` (the value from stdin)."
                );
            } else {
                let rows: Vec<Vec<String>> = names.into_iter().map(|n| vec![n]).collect();
                print_table(&["NAME"], &rows);
            }
        }
        SecretCommand::Rm { name, json } => {
            store.remove(&name)?;
            record(AuditAction::Revoke, &name, "removed");
            if json {
                print_json(&json!({ "removed": name }));
            } else {
                println!("Removed secret `{name}`.");
            }
        }
    }
    Ok(())
}

fn read_value(name: &str) -> Result<String> {
    let mut value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Value of {name} (not shown): "))
            .context("cannot read the value from the terminal")?
    } else {
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(MAX_SECRET_BYTES as u64 + 2)
            .read_to_end(&mut bytes)
            .context("cannot read the value from stdin")?;
        String::from_utf8(bytes).context("the value is not UTF-8 text")?
    };
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        bail!(
            "no value given: pipe it in, like `printf %s \"$TOKEN\" | paracle secret set {name}`"
        );
    }
    Ok(value)
}
