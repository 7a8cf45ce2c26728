//! `paracle trust ...`, `paracle plugin keygen` and `paracle plugin sign`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Subcommand;
use serde_json::json;

use super::output::{print_json, print_table};
use paracle_project::signing::{self, Policy, PublicKey, TrustList};
use paracle_project::Paths;

#[derive(Subcommand)]
pub(super) enum TrustCommand {
    /// Trust plugins signed by KEY (`ed25519:` and 64 hex digits), under NAME.
    Add {
        name: String,
        key: String,
        #[arg(long)]
        json: bool,
    },
    /// Stop trusting the key called NAME.
    Remove {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// The trusted keys and the policy.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show the policy, or set it: `require-signed` refuses plugins not
    /// signed by a trusted key; `allow-unsigned` (the default) runs them, but
    /// still refuses a signature that does not verify.
    Policy {
        #[arg(value_parser = ["require-signed", "allow-unsigned"])]
        policy: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(project: &Path, command: TrustCommand) -> Result<()> {
    let file = Paths::for_project(project).trust;
    let mut list = TrustList::load(&file)?;
    match command {
        TrustCommand::Add { name, key, json } => {
            if name.is_empty() || name.contains(char::is_whitespace) {
                bail!("a key's name is one word, like `acme-team`");
            }
            let key = PublicKey::parse(&key)?.to_string();
            if let Some((other, _)) = list.keys.iter().find(|(n, k)| **k == key && **n != name) {
                bail!("that key is already trusted as `{other}`");
            }
            list.keys.insert(name.clone(), key.clone());
            list.save(&file)?;
            report(json, &list, &format!("Trusted `{name}`: {key}"));
        }
        TrustCommand::Remove { name, json } => {
            if list.keys.remove(&name).is_none() {
                bail!("no trusted key is called `{name}`; see `paracle trust list`");
            }
            list.save(&file)?;
            report(json, &list, &format!("No longer trusted: `{name}`"));
        }
        TrustCommand::List { json } => {
            if json {
                print_json(&json!(list));
            } else {
                println!("policy: {}", list.policy);
                let rows: Vec<Vec<String>> = list
                    .keys
                    .iter()
                    .map(|(name, key)| vec![name.clone(), key.clone()])
                    .collect();
                if rows.is_empty() {
                    println!("no trusted keys; add one with `paracle trust add NAME KEY`");
                } else {
                    print_table(&["name", "key"], &rows);
                }
            }
        }
        TrustCommand::Policy { policy, json } => {
            if let Some(policy) = policy {
                list.policy = if policy == "require-signed" {
                    Policy::RequireSigned
                } else {
                    Policy::AllowUnsigned
                };
                list.save(&file)?;
            }
            report(json, &list, &format!("policy: {}", list.policy));
        }
    }
    Ok(())
}

fn report(json: bool, list: &TrustList, line: &str) {
    if json {
        print_json(&json!(list));
    } else {
        println!("{line}");
    }
}

pub(super) fn keygen(out: &PathBuf, json: bool) -> Result<()> {
    let key = signing::generate_key(out)?;
    if json {
        print_json(&json!({"secret_key_file": out, "public_key": key.to_string()}));
    } else {
        println!(
            "Wrote the secret key to {} (keep it private)",
            out.display()
        );
        println!("  public key {key}");
        println!("  operators trust it with `paracle trust add NAME {key}`");
    }
    Ok(())
}

pub(super) fn sign(plugin: &Path, key: &Path, json: bool) -> Result<()> {
    let signed = signing::sign(plugin, key)?;
    if json {
        print_json(&json!(signed));
    } else {
        println!("Signed {} ({})", plugin.display(), signed.digest);
        println!("  signature {}", signed.signature.display());
        println!("  key {}", signed.key);
    }
    Ok(())
}
