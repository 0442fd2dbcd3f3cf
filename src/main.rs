//! The `passerelle` command: the gateway, the example PKI, the station
//! commands, the auditor's tools and the demo. The command tree, each
//! command's arguments, handler and tests are in [`cli`]; this file only
//! sets up logging and the async runtime and turns the outcome into the
//! exit code.
#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let log = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| cli.default_log_filter().into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format() {
        // One object per line, each event's fields at the top level, as
        // log shippers index them.
        passerelle::config::LogFormat::Json => log
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        passerelle::config::LogFormat::Text => log.init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
