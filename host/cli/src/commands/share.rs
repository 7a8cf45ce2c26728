//! What the registry commands share: how to log in, and the user's
//! registry settings.

use std::io::BufRead;

use anyhow::{bail, Context, Result};
use clap::Args;

use paracle_distribution::{Access, Credentials, UserConfig};
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

/// The user's registry settings, and the credentials to use.
pub(super) fn access(paths: &Paths, args: &RegistryArgs) -> Result<Access> {
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
            Credentials::Given {
                username: username.clone(),
                password,
            }
        }
        None => Credentials::DockerConfig,
    };
    Ok(Access {
        config,
        credentials,
    })
}
