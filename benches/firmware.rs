//! How many devices download a firmware image at once from the ACS's file
//! server (`cargo bench --bench firmware [-- --mb 30 --devices 100,500,1000]`;
//! results in BENCHMARKS.md).
//!
//! The ACS (release binary) gets a 30 MB image through the API; then N
//! clients fetch it at once over loopback, each with its own signed link
//! (made here from the data dir's key, as the ACS makes them). Reported:
//! wall time, aggregate throughput, per-download times, the ACS's peak
//! memory and CPU. Baseline, in the same process: the same clients
//! reading the same byte count from a bare in-process TCP server that
//! writes a buffer in memory (the loopback's ceiling); the ratio is the
//! ACS's throughput to that.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gigafibre_acs::firmware::link;
use ring::hmac;
use support::{free_port, memory_mib};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "bench-token-0123456789abcdef";

struct Acs {
    child: Child,
    cwmp: SocketAddr,
    api: SocketAddr,
}

impl Drop for Acs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_acs(data_dir: &Path) -> Acs {
    let cwmp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gigafibre-acs"))
        .arg("serve")
        .env_clear()
        .env("ACS_DATA_DIR", data_dir)
        .env("ACS_CWMP_LISTEN", cwmp.to_string())
        .env("ACS_API_LISTEN", api.to_string())
        .env("ACS_API_TOKEN", TOKEN)
        .env("ACS_MAX_CONNECTIONS", "20000")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start gigafibre-acs");
    let acs = Acs { child, cwmp, api };
    let deadline = Instant::now() + Duration::from_secs(60);
    while StdStream::connect(api).is_err() {
        assert!(Instant::now() < deadline, "the ACS did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    acs
}

/// POSTs the image; its id.
fn upload(api: SocketAddr, data: &[u8]) -> String {
    let mut s = StdStream::connect(api).unwrap();
    write!(
        s,
        "POST /api/v1/files?name=fw.bin&version=9.9 HTTP/1.1\r\nHost: acs\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        data.len()
    )
    .unwrap();
    s.write_all(data).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 201"), "{out}");
    let body = &out[out.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// Fetches `path` from `addr`; the body's length.
async fn fetch(addr: SocketAddr, path: String) -> std::io::Result<u64> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: acs\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = vec![0u8; 256 << 10];
    let mut head = Vec::new();
    let mut body = 0u64;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if head.len() < 4 || !head.windows(4).any(|w| w == b"\r\n\r\n") {
            head.extend_from_slice(&buf[..n]);
            if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                assert!(
                    head.starts_with(b"HTTP/1.1 200"),
                    "{}",
                    String::from_utf8_lossy(&head[..i])
                );
                body += (head.len() - i - 4) as u64;
            }
        } else {
            body += n as u64;
        }
    }
    Ok(body)
}

/// N fetches at once; (wall time, per-fetch times sorted).
async fn wave(addr: SocketAddr, paths: Vec<String>, size: u64) -> (Duration, Vec<Duration>) {
    let start = Instant::now();
    let tasks: Vec<_> = paths
        .into_iter()
        .map(|p| {
            tokio::spawn(async move {
                let t = Instant::now();
                let n = fetch(addr, p).await.expect("a fetch");
                assert_eq!(n, size, "a whole file");
                t.elapsed()
            })
        })
        .collect();
    let mut times = Vec::new();
    for t in tasks {
        times.push(t.await.unwrap());
    }
    times.sort();
    (start.elapsed(), times)
}

/// A bare server writing `size` bytes from memory to each connection, on
/// a runtime of its own with as many workers as the ACS's on this machine.
fn bare_server(size: u64) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            serve_bare(l, size).await;
        });
    });
    rx.recv().unwrap()
}

async fn serve_bare(l: TcpListener, size: u64) {
    let chunk = Arc::new(vec![7u8; 64 << 10]);
    {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let chunk = chunk.clone();
            tokio::spawn(async move {
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req).await;
                let _ = s
                    .write_all(
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n").as_bytes(),
                    )
                    .await;
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    if s.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n as u64;
                }
            });
        }
    }
}

fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let t = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (t(11) + t(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| support::flag_value(&args, flag);
    let quick = args.iter().any(|a| a == "--quick");
    let mb: u64 = value("--mb").map_or(if quick { 4 } else { 30 }, |v| v.parse().unwrap());
    let counts: Vec<usize> = value("--devices")
        .unwrap_or_else(|| {
            if quick {
                "20,100".into()
            } else {
                "100,500,1000".into()
            }
        })
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    let size = mb * 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let acs = start_acs(dir.path());
    let data: Vec<u8> = (0..size)
        .map(|i| ((i * 2_654_435_761) >> 13) as u8)
        .collect();
    let id = upload(acs.api, &data);
    drop(data);
    let key_text = std::fs::read_to_string(dir.path().join("provision-key")).unwrap();
    let key = link::derive_key(&hmac::Key::new(
        hmac::HMAC_SHA256,
        key_text.trim().as_bytes(),
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let bare = bare_server(size);
    let pid = acs.child.id();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "firmware downloads from the ACS's file server: a {mb} MB image, {cpus} CPUs, client and server on this machine"
    );
    println!(
        "| devices at once | wall | aggregate | per download p50 / p99 | baseline (bare TCP) aggregate | ratio | ACS CPU | ACS RSS peak |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in counts {
        let expires = 4_000_000_000u64;
        let paths: Vec<String> = (0..n)
            .map(|i| {
                let q = link::query(&key, &id, &format!("BENCH-DEV-{i:06}"), expires);
                format!("/files/{id}/fw.bin?{q}")
            })
            .collect();
        let base_paths: Vec<String> = (0..n).map(|_| "/".to_owned()).collect();
        let (base_wall, _) = rt.block_on(wave(bare, base_paths, size));
        let cpu0 = cpu_s(pid);
        let (wall, times) = rt.block_on(wave(acs.cwmp, paths, size));
        let cpu = cpu_s(pid) - cpu0;
        let (peak, _) = memory_mib(pid);
        let total_mb = (n as u64 * size) as f64 / 1e6;
        let agg = total_mb / wall.as_secs_f64();
        let base_agg = total_mb / base_wall.as_secs_f64();
        let pct =
            |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)].as_secs_f64();
        println!(
            "| {n} | {:.1} s | {agg:.0} MB/s | {:.1} / {:.1} s | {base_agg:.0} MB/s | {:.2} | {cpu:.1} s | {peak:.0} MiB |",
            wall.as_secs_f64(),
            pct(0.5),
            pct(0.99),
            agg / base_agg
        );
    }
}
