//! `ferry policy test`: which group a client is in and what would happen
//! to a URL for it, and why (`ferry_proxy::explain_policy` does the work,
//! with the same configuration `ferry proxy` would run with).

use std::net::IpAddr;
use std::process::ExitCode;

use super::proxy::ProxyArgs;

#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Print which group applies to a client and what would happen to URL,
    /// and why. Exits 0 when the request would be allowed, 2 when refused.
    ///
    /// Example: `ferry policy test --config ferry.toml --client 10.1.2.3
    /// --at "Tue 09:00" https://games.example/`
    Test(Box<TestArgs>),
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The client's address.
    #[arg(long, value_name = "IP")]
    pub client: IpAddr,
    /// The proxy user it signs in as, if any.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// A local day and time to ask about (`Tue 09:00`). [default: now]
    #[arg(long, value_name = "DAY HH:MM")]
    pub at: Option<String>,
    /// The URL it would ask for.
    pub url: String,
    /// The proxy's configuration: the same flags as `ferry proxy`.
    #[command(flatten)]
    pub proxy: ProxyArgs,
}

pub fn run(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    let PolicyCommand::Test(test) = args.command;
    let config = test.proxy.config()?;
    let query = ferry_proxy::PolicyQuery {
        client: test.client,
        user: test.user,
        at: test.at,
        url: test.url,
    };
    let (answer, allowed) = ferry_proxy::explain_policy(&config, &query)?;
    print!("{answer}");
    Ok(if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
