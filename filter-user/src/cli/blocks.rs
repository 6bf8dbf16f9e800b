//! `sigwall blocks`: the identity blocks in force in path (calling GT, Origin-Host or
//! Origin-Realm, GTP-C node, IMSI; each within its peer, with what blocked it and the time
//! left), and `--lift PEER IDENTITY` to lift one before its TTL, through the control socket.

use std::process::ExitCode;

use sigwall::control::{Command, Lift};

use super::{Target, control::call};

#[derive(clap::Args, Debug)]
pub struct BlocksArgs {
    #[command(flatten)]
    target: Target,
    /// Lift the blocks of peer PEER on IDENTITY (a GT's digits, an Origin-Host or
    /// Origin-Realm, a GTP-C node's address, an IMSI) before their TTL; audited.
    #[arg(long, num_args = 2, value_names = ["PEER", "IDENTITY"])]
    lift: Option<Vec<String>>,
}

pub fn blocks(a: BlocksArgs) -> anyhow::Result<ExitCode> {
    let lift = match a.lift.as_deref() {
        None => None,
        Some([peer, identity]) if !peer.is_empty() && !identity.is_empty() => {
            Some(Lift { peer: peer.clone(), identity: identity.clone() })
        }
        Some(_) => {
            eprintln!("sigwall blocks: --lift takes a peer name and an identity, both non-empty");
            return Ok(ExitCode::from(2));
        }
    };
    match call(&a.target, Command::Blocks { lift }) {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(code) => Ok(code),
    }
}
