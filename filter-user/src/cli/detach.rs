use std::{process::ExitCode, time::Duration};

use sigwall::{control, loader};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Interface to remove sigwall from.
    #[arg(long, value_parser = sigwall::loader::iface_name)]
    iface: String,
    /// Control socket path, if not the default for the interface.
    #[arg(long)]
    socket: Option<std::path::PathBuf>,
}

/// Ask a running daemon to detach and exit; if none answers, detach the pinned link directly.
pub fn main(a: Args) -> anyhow::Result<ExitCode> {
    let socket = a.socket.unwrap_or_else(|| control::socket_path(&a.iface));
    if control::call(&socket, control::Command::Detach, Duration::from_secs(10)).is_ok() {
        // The daemon detaches as it exits; wait for its pins to go.
        for _ in 0..100 {
            if !loader::pins_present(&a.iface) {
                println!("sigwall detached from {}", a.iface);
                return Ok(ExitCode::SUCCESS);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Nobody answered on `socket`. A daemon that still holds the interface (started with
    // another --run-dir or --control-socket, or hung) would keep running with its filter gone,
    // and on exit detach whatever a later daemon attached: leave it alone.
    if loader::daemon_running(&a.iface) {
        eprintln!(
            "sigwall: a daemon holds {} but did not answer on {}: detach through its socket (--socket), or stop it",
            loader::pin_dir(&a.iface).display(),
            socket.display()
        );
        return Ok(ExitCode::from(1));
    }
    let had = loader::force_detach(&a.iface)?;
    let _ = std::fs::remove_file(&socket);
    if had {
        println!("sigwall detached from {}", a.iface);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "sigwall: nothing attached on {} (no pinned link under {})",
            a.iface,
            loader::pin_dir(&a.iface).display()
        );
        Ok(ExitCode::from(1))
    }
}
