//! `ferry ca`: the local certificate authority for TLS interception
//! (`ferry_proxy::intercept::ca` does the work).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ferry_proxy::intercept::ca::{self, LocalCa};

#[derive(Debug, clap::Args)]
pub struct CaArgs {
    /// Where the CA's certificate and key live. [default: the platform config
    /// dir, e.g. ~/.config/ferry]
    #[arg(long, value_name = "DIR", global = true)]
    pub ca_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: CaCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// Create the CA: a P-256 key (file mode 0600) and a certificate valid
    /// for 10 years.
    Init {
        /// Replace an existing CA (clients must then install the new one).
        #[arg(long)]
        force: bool,
    },
    /// Print the certificate's path, SHA-256 fingerprint and expiry.
    Show,
    /// Write the certificate (never the key) as PREFIX.pem and PREFIX.der,
    /// or with --bundle one PEM file of the system's trusted roots plus this
    /// CA, for clients that take a single CA file (pip, npm, cargo, git).
    Export {
        #[arg(long, value_name = "PREFIX", default_value = "ferry-ca")]
        out: PathBuf,
        /// Write the system's roots and this CA as one PEM file here instead.
        #[arg(long, value_name = "FILE", conflicts_with = "out")]
        bundle: Option<PathBuf>,
    },
}

pub fn run(args: CaArgs) -> anyhow::Result<ExitCode> {
    let dir = args.ca_dir.unwrap_or_else(ca::default_dir);
    match args.command {
        CaCommand::Init { force } => {
            let ca = LocalCa::init(&dir, force)?;
            println!("created a CA in {}", dir.display());
            print_summary(&ca);
            println!(
                "install it in your browsers: `ferry ca export`, then see the proxy's /ca page"
            );
        }
        CaCommand::Show => print_summary(&LocalCa::load(&dir)?),
        CaCommand::Export { out, bundle } => {
            let ca = LocalCa::load(&dir)?;
            match bundle {
                Some(file) => {
                    let system = ca.export_bundle(&file).context("writing the CA bundle")?;
                    println!(
                        "{}: {system} certificates from the system's store and Ferry's CA",
                        file.display()
                    );
                }
                None => {
                    let (pem, der) = ca.export(&out).context("exporting the CA certificate")?;
                    println!("{}\n{}", pem.display(), der.display());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(ca: &LocalCa) {
    let expires = ca
        .not_after()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| ca.not_after().to_string());
    println!("certificate: {}", ca.cert_path().display());
    println!("sha256:      {}", ca.fingerprint());
    println!("expires:     {expires}");
}
