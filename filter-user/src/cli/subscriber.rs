//! `sigwall subscriber <imsi>`: what the subscriber state knows about one subscriber (serving
//! nodes and networks by protocol, with times), through the control socket.

use std::process::ExitCode;

use sigwall::control::Command;

use super::{Target, control::call};

#[derive(clap::Args, Debug)]
pub struct SubscriberArgs {
    #[command(flatten)]
    target: Target,
    /// The subscriber's IMSI (digits).
    imsi: String,
}

pub fn subscriber(a: SubscriberArgs) -> anyhow::Result<ExitCode> {
    if a.imsi.is_empty() || a.imsi.len() > 15 || !a.imsi.bytes().all(|b| b.is_ascii_digit()) {
        eprintln!("sigwall subscriber: {:?} is not an IMSI (1 to 15 digits)", a.imsi);
        return Ok(ExitCode::from(2));
    }
    match call(&a.target, Command::Subscriber { imsi: a.imsi }) {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(code) => Ok(code),
    }
}
