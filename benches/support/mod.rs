//! What the benchmark programs share: finding the workspace's other
//! binaries and a free loopback port.

use std::net::TcpListener;
use std::path::PathBuf;

/// Where the workspace's other binaries are (`cargo build --release`
/// puts them beside `target/release/deps/`, where a bench runs).
pub fn sibling_bin(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?;
    if dir.ends_with("deps") {
        dir = dir.parent()?;
    }
    let p = dir.join(name);
    p.is_file().then_some(p)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
