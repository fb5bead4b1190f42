//! `ferry hash-password`: reads a password (twice at a terminal, without
//! echo; one line from a pipe) and prints its argon2id hash.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

/// Read a password from standard input (or a prompt on a terminal) and print
/// its argon2id hash, for `--auth-user NAME:HASH` or `[[users]]` in the config.
#[derive(Debug, clap::Args)]
pub struct HashPasswordArgs {}

pub fn run(_args: HashPasswordArgs) -> anyhow::Result<ExitCode> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            eprintln!("ferry: the passwords differ");
            return Ok(ExitCode::FAILURE);
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        eprintln!("ferry: empty password");
        return Ok(ExitCode::FAILURE);
    }
    println!("{}", ferry_proxy::hash_password(&password)?);
    Ok(ExitCode::SUCCESS)
}
