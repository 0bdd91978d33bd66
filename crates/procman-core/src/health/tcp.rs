//! TCP check: a connection to `host:port` is accepted. The connection is
//! closed at once; nothing is sent.

use super::probe::describe;

/// One connection attempt; the caller bounds it by the timeout.
pub(super) async fn check(addr: &str) -> (bool, String) {
    match tokio::net::TcpStream::connect(addr).await {
        Ok(stream) => {
            let peer = stream
                .peer_addr()
                .map_or_else(|_| addr.to_string(), |a| a.to_string());
            (true, format!("connected to {peer}"))
        }
        Err(e) => (false, describe(&e)),
    }
}

#[cfg(test)]
#[path = "tests/tcp.rs"]
mod tests;
