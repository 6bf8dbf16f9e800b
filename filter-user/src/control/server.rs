//! The control socket's server side: accept connections, read one request line at a time
//! (bounded in size and time), run it against the daemon's state, write the reply line.

use std::sync::Arc;

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::{UnixListener, UnixStream},
    sync::{Mutex, Notify},
};

use super::{MAX_REQUEST_BYTES, REQUEST_TIMEOUT, Reply};
use crate::daemon::state::State;
pub use crate::daemon::state::write_atomic;

/// Who sent a request (SO_PEERCRED).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub pid: i32,
}

/// Serve the control socket until the task is dropped. `exit` is notified when a request
/// asked the daemon to detach.
pub async fn serve(listener: UnixListener, state: Arc<Mutex<State>>, exit: Arc<Notify>) {
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            let (state, exit) = (state.clone(), exit.clone());
            tokio::spawn(async move { connection(stream, state, exit).await });
        }
    }
}

async fn connection(stream: UnixStream, state: Arc<Mutex<State>>, exit: Arc<Notify>) {
    let caller = stream.peer_cred().map(|c| Caller { uid: c.uid(), pid: c.pid().unwrap_or(0) }).unwrap_or_default();
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r.take(u64::MAX));
    loop {
        let mut line = Vec::new();
        reader.get_mut().set_limit(MAX_REQUEST_BYTES as u64 + 1);
        let read = tokio::time::timeout(REQUEST_TIMEOUT, reader.read_until(b'\n', &mut line)).await;
        let reply = match read {
            Err(_) => Some(Reply::err("timed out waiting for a request line")),
            Ok(Err(_)) | Ok(Ok(0)) => None,
            Ok(Ok(_)) if line.len() > MAX_REQUEST_BYTES => {
                Some(Reply::err(format!("request larger than {MAX_REQUEST_BYTES} bytes")))
            }
            Ok(Ok(_)) if !line.ends_with(b"\n") => None, // hung up mid-request
            Ok(Ok(_)) => Some(answer(&line, caller, &state, &exit).await),
        };
        let Some(reply) = reply else { return };
        let close = !reply.ok
            && reply.error.as_deref().is_some_and(|e| e.starts_with("timed out") || e.starts_with("request larger"));
        let mut out = serde_json::to_vec(&reply).unwrap_or_default();
        out.push(b'\n');
        if w.write_all(&out).await.is_err() || close {
            return;
        }
    }
}

async fn answer(line: &[u8], caller: Caller, state: &Arc<Mutex<State>>, exit: &Arc<Notify>) -> Reply {
    let req = match super::parse_request(line) {
        Ok(r) => r,
        Err(e) => {
            // An attempted change that does not parse (e.g. `"mode": "off"`) is still a change
            // someone tried: audit it as rejected, like one the policy parser refuses.
            let raw: Value = serde_json::from_slice(line).unwrap_or(Value::Null);
            if raw["cmd"].as_str().is_some_and(|c| super::CHANGE_COMMANDS.contains(&c)) {
                state.lock().await.audit_rejected(caller, &raw, &e);
            }
            return Reply::err(e);
        }
    };
    let raw: Value = serde_json::from_slice(line).unwrap_or(Value::Null);
    let mut st = state.lock().await;
    // Map and file writes are blocking; keep them off the async workers' critical path.
    let result = tokio::task::block_in_place(|| st.handle(req.cmd, caller, &raw));
    if st.detach_requested {
        exit.notify_one();
    }
    match result {
        Ok(v) => Reply::ok(v),
        Err(e) => Reply::err(e.to_string()),
    }
}
