//! What the registry commands share: how to log in, and the user's
//! registry settings.

use std::io::{BufRead, IsTerminal};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;

use paracle_base::shown;
use paracle_distribution::{Access, Credentials, Progress, UserConfig};
use paracle_project::Paths;

#[derive(Args, Clone, Default)]
pub(super) struct RegistryArgs {
    /// Log in to the registry as this user, with the password read from
    /// standard input (--password-stdin). Without it, the credentials of the
    /// docker config (~/.docker/config.json) are used, if it has any.
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the registry password from the first line of standard input.
    #[arg(long, requires = "username")]
    password_stdin: bool,
}

/// The registry a command's `--username` logs in to.
pub(super) enum LoginTo<'a> {
    /// The registry of a reference the command was given.
    Host(&'a str),
    /// A registry of the user's config, by name; None: the only one.
    Configured(Option<&'a str>),
}

/// The user's registry settings, and the credentials to use. Credentials
/// given on the command line go only to the registry the command names.
pub(super) fn access(paths: &Paths, args: &RegistryArgs, login_to: LoginTo<'_>) -> Result<Access> {
    let config = UserConfig::load(&paths.user_config)?;
    let credentials = match &args.username {
        Some(username) => {
            if !args.password_stdin {
                bail!("--username needs --password-stdin");
            }
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            if password.is_empty() {
                bail!("--password-stdin read an empty password");
            }
            let registry = match login_to {
                LoginTo::Host(host) => host.to_string(),
                LoginTo::Configured(Some(name)) => match config.registries.get(name) {
                    Some(decl) => decl.split().0.to_string(),
                    None => bail!("no registry `{name}` in {}", config.file.display()),
                },
                LoginTo::Configured(None) if config.registries.len() == 1 => {
                    let decl = config.registries.values().next().expect("one registry");
                    decl.split().0.to_string()
                }
                LoginTo::Configured(None) => bail!(
                    "--username needs to know which registry to log in to: name one of your config with --registry, or give an oci:// reference"
                ),
            };
            Credentials::Given {
                registry,
                username: username.clone(),
                password,
            }
        }
        None => Credentials::DockerConfig,
    };
    Ok(Access {
        config,
        credentials,
        progress: progress_on_terminal(),
    })
}

/// On a terminal, a live line for each blob over 1 MB as it arrives: how
/// much has come, of how much, and for how long. Nothing otherwise.
fn progress_on_terminal() -> Progress {
    if !std::io::stderr().is_terminal() {
        return Progress::default();
    }
    let started = Instant::now();
    let last = Mutex::new(None::<Instant>);
    Progress::new(move |what, received, total| {
        if total < 1 << 20 {
            return;
        }
        let done = received >= total;
        let mut last = last.lock().unwrap();
        if !done && last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
            return;
        }
        *last = Some(Instant::now());
        let mb = |bytes: u64| bytes as f64 / 1e6;
        eprint!(
            "\r\x1b[Kpulling {} {:.1}/{:.1} MB ({:.1} s){}",
            shown::clipped(what, 60),
            mb(received),
            mb(total),
            started.elapsed().as_secs_f64(),
            if done { "\n" } else { "" }
        );
    })
}
