use std::process::ExitCode;

use anyhow::Context as _;
use sigwall::stats;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Interface sigwall is attached to.
    #[arg(long, value_parser = sigwall::loader::iface_name)]
    iface: String,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

pub fn main(a: Args) -> anyhow::Result<ExitCode> {
    let snap = stats::of_pins(&a.iface).with_context(|| format!("reading sigwall counters of {}", a.iface))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&snap.to_json())?);
    } else {
        print!("{}", snap.to_table());
    }
    Ok(ExitCode::SUCCESS)
}
