//! The ACS against this machine's limit, in one run (`cargo bench --bench
//! fleet`; see BENCHMARKS.md). Every server under test is its own process,
//! so its CPU time and peak memory are its own:
//!
//! 1. ceiling: a bare hyper server (this program, re-executed with
//!    `--ceiling-server`) answering the same HTTP exchanges with static
//!    bodies of the ACS's sizes, keep-alive;
//! 2. periodic sessions: Inform (a real 3.3 KB TP-Link EX220 periodic
//!    Inform, one serial per device) → InformResponse, empty POST → 204,
//!    durably stored, over 10k and 100k registered devices, driven by the
//!    same client code as the ceiling;
//! 3. bootstrap + zero-touch provisioning: `cpe-sim fleet --once` against
//!    `erpnext-sim` (ERPNext time reported separately, from the ACS's own
//!    histogram);
//! 4. topology refresh of a Deco with 3 nodes and 60 clients through the
//!    API (connection request, host tables re-read, topology built);
//! 5. 1M registered devices (synthetic records written through the store):
//!    the ACS's memory and its restart time until it answers;
//! 6. periodic sessions on the embedded store, on PostgreSQL with one
//!    node and with two nodes (a server the bench starts itself), with
//!    PostgreSQL's own CPU per session.
//!
//! Output: a table, and JSON with `--json FILE`. `--quick` shortens every
//! run (a smoke test, not numbers to quote).
//!
//! `--compare N` runs only the ceiling and the ACS's periodic sessions, in
//! turn, N times per fleet size, and prints each round's ratio, their
//! median and spread: a ratio is worth quoting when the spread is small
//! next to it (one run of each, minutes apart, is not).

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BytesMut};
use serde_json::{Value, json};
use support::{dir_size_mib, free_port, memory_mib, sibling_bin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `gigafibre-acs` binary's allocator, for the ceiling server and the
/// client too: the ceiling must not be handicapped by a slower allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A real periodic Inform of a TP-Link EX220 (the Deco family's data
/// model), 12 parameters, from the project's quirk corpus.
const INFORM_TEMPLATE: &str = include_str!("../tests/corpus/02-soap-env-ex220-cwmp12-periodic.xml");
const TEMPLATE_SERIAL: &str = "2226469000523";
const TOKEN: &str = "bench-token-0123456789abcdef";

/// The ACS's store backend (`--store`, default the ACS's own default).
static STORE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn store_backend() -> &'static str {
    STORE.get().map_or("sled", String::as_str)
}

fn inform(serial: u32) -> Vec<u8> {
    INFORM_TEMPLATE
        .replace(TEMPLATE_SERIAL, &format!("BENCH{serial:08}"))
        .into_bytes()
}

// ---------------------------------------------------------------- options

struct Options {
    quick: bool,
    seconds: u64,
    concurrency: u32,
    json: Option<PathBuf>,
    fleets: Vec<u32>,
    million: u32,
    bootstrap_devices: u32,
    only: Option<String>,
    soak_minutes: u64,
    /// `--compare N`: the ceiling and the ACS's periodic sessions, taken
    /// in turn N times; the median ratio and its spread.
    compare: Option<u32>,
}

impl Options {
    fn parse() -> Options {
        let mut o = Options {
            quick: false,
            seconds: 15,
            concurrency: 64,
            json: None,
            fleets: vec![10_000, 100_000],
            million: 1_000_000,
            bootstrap_devices: 2_000,
            only: None,
            soak_minutes: 0,
            compare: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .unwrap_or_else(|| panic!("{name} needs a value"))
            };
            match a.as_str() {
                // cargo bench passes --bench to harness-less benches.
                "--bench" => {}
                "--quick" => o.quick = true,
                "--seconds" => o.seconds = value("--seconds").parse().expect("--seconds N"),
                "--concurrency" => {
                    o.concurrency = value("--concurrency").parse().expect("--concurrency N")
                }
                "--json" => o.json = Some(value("--json").into()),
                "--million" => o.million = value("--million").parse().expect("--million N"),
                "--only" => o.only = Some(value("--only")),
                "--compare" => {
                    o.compare = Some(value("--compare").parse().expect("--compare ROUNDS"))
                }
                "--store" => {
                    let v = value("--store");
                    assert!(v == "sled" || v == "redb", "--store sled|redb");
                    let _ = STORE.set(v);
                }
                "--soak-minutes" => {
                    o.soak_minutes = value("--soak-minutes").parse().expect("--soak-minutes N")
                }
                "--ceiling-server" => {
                    ceiling_server();
                    std::process::exit(0);
                }
                other => panic!(
                    "unknown argument {other:?}; use --quick, --seconds N, --concurrency N, \
                     --json FILE, --million N, --soak-minutes N, --store sled|redb, --compare ROUNDS, \
                     --only ceiling|periodic|bootstrap|topology|cluster|million|soak"
                ),
            }
        }
        if o.quick {
            o.seconds = 3;
            o.fleets = vec![2_000];
            o.million = o.million.min(20_000);
            o.bootstrap_devices = 200;
        }
        o
    }

    fn runs(&self, what: &str) -> bool {
        if what == "soak" {
            return self.soak_minutes > 0 && self.only.as_deref().is_none_or(|o| o == "soak");
        }
        self.only
            .as_deref()
            .is_none_or(|o| o == what || (what == "ceiling" && o == "periodic"))
    }
}

// ------------------------------------------------------------ measurements

/// CPU seconds (user + system) of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may hold spaces: state is 3rd.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 here;
    // USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 * p) as usize).min(sorted_us.len() - 1);
    sorted_us[i] as f64 / 1000.0
}

/// One line of the result table.
#[derive(Clone, Debug, Default)]
struct Row {
    scenario: String,
    sessions: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Server CPU seconds per 1,000 sessions.
    cpu_per_1k: f64,
    peak_rss_mib: f64,
    store_mib: Option<f64>,
    ratio: Option<f64>,
    notes: String,
}

impl Row {
    fn rate(&self) -> f64 {
        self.sessions as f64 / self.seconds.max(1e-9)
    }

    fn json(&self) -> Value {
        json!({
            "scenario": self.scenario,
            "sessions": self.sessions,
            "seconds": round(self.seconds, 3),
            "sessions_per_s": round(self.rate(), 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "server_cpu_s_per_1000_sessions": round(self.cpu_per_1k, 4),
            "server_peak_rss_mib": round(self.peak_rss_mib, 1),
            "store_mib": self.store_mib.map(|v| round(v, 1)),
            "ratio_to_ceiling": self.ratio.map(|v| round(v, 3)),
            "notes": self.notes,
        })
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

fn print_header() {
    println!(
        "{:<44} {:>9} {:>11} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>6}",
        "scenario",
        "sessions",
        "sessions/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "CPU s/1k",
        "peak MiB",
        "store",
        "ratio"
    );
}

fn print_row(r: &Row) {
    println!(
        "{:<44} {:>9} {:>11.0} {:>8.2} {:>8.2} {:>8.2} {:>9.3} {:>9.1} {:>8} {:>6}",
        r.scenario,
        r.sessions,
        r.rate(),
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.cpu_per_1k,
        r.peak_rss_mib,
        r.store_mib.map_or("-".into(), |v| format!("{v:.0} MiB")),
        r.ratio.map_or("-".into(), |v| format!("{v:.2}")),
    );
    if !r.notes.is_empty() {
        println!("    {}", r.notes);
    }
}

// ------------------------------------------------------------- processes

/// A child process killed when dropped.
struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct AcsProc {
    proc_: Proc,
    cwmp: SocketAddr,
    api: SocketAddr,
    /// From spawn to the first answer on /healthz.
    ready_after: Duration,
}

fn start_acs(data_dir: &Path, env: &[(&str, String)]) -> AcsProc {
    let cwmp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let t = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gigafibre-acs"));
    cmd.arg("serve")
        .env_clear()
        .env("ACS_DATA_DIR", data_dir)
        .env("ACS_CWMP_LISTEN", cwmp.to_string())
        .env("ACS_API_LISTEN", api.to_string())
        .env("ACS_API_TOKEN", TOKEN)
        .env("ACS_STORE_BACKEND", store_backend())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // `BENCH_ACS_LOG=info` runs the ACS at its production log level (its
    // log discarded, the cost of writing it kept); warn by default.
    match std::env::var("BENCH_ACS_LOG") {
        Ok(level) => cmd.env("RUST_LOG", level).stderr(Stdio::null()),
        Err(_) => cmd.env("RUST_LOG", "warn").stderr(Stdio::inherit()),
    };
    // The allocator's own knobs (`MIMALLOC_…`) pass through, for tuning runs.
    for (k, v) in std::env::vars().filter(|(k, _)| k.starts_with("MIMALLOC_")) {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("start gigafibre-acs");
    let proc_ = Proc {
        child,
        name: "gigafibre-acs",
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Ok((200, _)) = http_get(api, "/healthz") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not become ready",
            proc_.name
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    AcsProc {
        proc_,
        cwmp,
        api,
        ready_after: t.elapsed(),
    }
}

/// A blocking HTTP GET on the API (Connection: close).
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = StdStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: acs\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let mut body = raw[end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok((status, body))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < i + 2 + size {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + size]);
        b = &b[(i + 4 + size).min(b.len())..];
    }
    out
}

/// Every device record, through the API's cursor pagination.
fn all_devices(api: SocketAddr) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/devices?limit=1000&cursor={c}"),
            None => "/api/v1/devices?limit=1000".into(),
        };
        let (_, body) = http_get(api, &path).unwrap();
        let mut v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if let Some(page) = v["devices"].as_array_mut() {
            all.append(page);
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
}

/// `10k`, `1M`: device counts in scenario names.
fn count_label(n: u32) -> String {
    match n {
        1_000_000.. => format!("{}M", n / 1_000_000),
        1_000.. => format!("{}k", n / 1000),
        _ => n.to_string(),
    }
}

/// Scrapes one Prometheus sample (`name` with optional labels, exact).
fn metric(api: SocketAddr, sample: &str) -> f64 {
    let (_, body) = http_get(api, "/metrics").unwrap_or((0, Vec::new()));
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| {
            l.strip_prefix(sample)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// The ACS's own time per completed session (ERPNext waits excluded),
/// from its `acs_session_busy_seconds` histogram: mean, the share done
/// within 50 ms, and the bucket holding the 99th percentile.
fn busy_summary(api: SocketAddr) -> String {
    let count = metric(api, "acs_session_busy_seconds_count");
    if count == 0.0 {
        return "ACS time per session: no completed session".into();
    }
    let mean_ms = metric(api, "acs_session_busy_seconds_sum") * 1000.0 / count;
    let within = |le: &str| {
        metric(
            api,
            &format!("acs_session_busy_seconds_bucket{{le=\"{le}\"}}"),
        )
    };
    let bounds = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
    ];
    let p99 = bounds
        .iter()
        .find(|b| within(b) >= 0.99 * count)
        .map_or("> 5 s".to_string(), |b| {
            format!("≤ {} ms", b.parse::<f64>().unwrap_or(0.0) * 1000.0)
        });
    format!(
        "ACS time per session excluding ERPNext: mean {mean_ms:.1} ms, {:.1} % within 50 ms, p99 {p99}",
        100.0 * within("0.05") / count
    )
}

// ---------------------------------------------------------------- client

/// A CPE's HTTP/1.1 keep-alive connection, as lean as a client can be so
/// the measurement is the server's. Used for the ceiling and the ACS.
struct Client {
    stream: TcpStream,
    buf: BytesMut,
    out: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
            out: Vec::with_capacity(8 * 1024),
        }
    }

    /// POSTs a body; returns the status and the session cookie, if set.
    async fn post(&mut self, body: &[u8], cookie: Option<&str>) -> (u16, Option<String>) {
        self.out.clear();
        write!(
            self.out,
            "POST / HTTP/1.1\r\nHost: acs\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nSOAPAction: \r\nContent-Length: {}\r\n",
            body.len()
        )
        .unwrap();
        if let Some(c) = cookie {
            self.out.extend_from_slice(b"Cookie: ");
            self.out.extend_from_slice(c.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(body);
        self.stream.write_all(&self.out).await.expect("write");
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).expect("ASCII head");
                let status: u16 = head[9..12].parse().expect("status");
                let mut len = 0usize;
                let mut set_cookie = None;
                for line in head.lines().skip(1) {
                    let Some((k, v)) = line.split_once(':') else {
                        continue;
                    };
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().expect("length");
                    } else if k.eq_ignore_ascii_case("set-cookie") {
                        set_cookie = v.trim().split(';').next().map(str::to_owned);
                    }
                }
                while self.buf.len() < end + 4 + len {
                    self.read_more().await;
                }
                self.buf.advance(end + 4 + len);
                return (status, set_cookie);
            }
            self.read_more().await;
        }
    }

    async fn read_more(&mut self) {
        let n = self.stream.read_buf(&mut self.buf).await.expect("read");
        assert!(n > 0, "server closed the connection");
    }
}

struct Drive {
    sessions: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

/// `concurrency` CPEs, each cycling over its share of `devices`, doing
/// periodic sessions back to back for `duration` (or, with `once`, one
/// session per device).
async fn drive(
    addr: SocketAddr,
    concurrency: u32,
    duration: Duration,
    devices: u32,
    once: bool,
) -> Drive {
    drive_range(addr, concurrency, duration, 0..devices, once).await
}

/// [`drive`] over the devices numbered `devices` only.
async fn drive_range(
    addr: SocketAddr,
    concurrency: u32,
    duration: Duration,
    devices: std::ops::Range<u32>,
    once: bool,
) -> Drive {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut handles = Vec::new();
    let per_worker = devices.len().div_ceil(concurrency as usize).max(1) as u32;
    for worker in 0..concurrency {
        let stop = stop.clone();
        let devices = devices.clone();
        handles.push(tokio::spawn(async move {
            let first = devices.start + worker * per_worker;
            let last = (first + per_worker).min(devices.end);
            let mut client = Client::connect(addr).await;
            let mut lat = Vec::new();
            let mut serial = first;
            while first < last && !stop.load(Ordering::Relaxed) {
                let body = inform(serial);
                let t = Instant::now();
                let (status, cookie) = client.post(&body, None).await;
                assert_eq!(status, 200, "Inform answered {status}");
                let (status, _) = client.post(b"", cookie.as_deref()).await;
                assert_eq!(status, 204, "empty POST answered {status}");
                lat.push(t.elapsed().as_micros() as u64);
                serial += 1;
                if serial == last {
                    if once {
                        break;
                    }
                    serial = first;
                }
            }
            lat
        }));
    }
    if !once {
        tokio::time::sleep(duration).await;
        stop.store(true, Ordering::Relaxed);
    }
    let mut latencies_us = Vec::new();
    for h in handles {
        latencies_us.extend(h.await.expect("client worker"));
    }
    let elapsed = start.elapsed();
    latencies_us.sort_unstable();
    Drive {
        sessions: latencies_us.len() as u64,
        elapsed,
        latencies_us,
    }
}

fn row_from(scenario: &str, d: &Drive, pid: u32, cpu_before: f64) -> Row {
    let cpu = cpu_seconds(pid) - cpu_before;
    Row {
        scenario: scenario.into(),
        sessions: d.sessions,
        seconds: d.elapsed.as_secs_f64(),
        p50_ms: percentile_ms(&d.latencies_us, 0.50),
        p99_ms: percentile_ms(&d.latencies_us, 0.99),
        max_ms: d.latencies_us.last().map_or(0.0, |v| *v as f64 / 1000.0),
        cpu_per_1k: cpu * 1000.0 / (d.sessions.max(1) as f64),
        peak_rss_mib: memory_mib(pid).0,
        ..Row::default()
    }
}

// --------------------------------------------------------------- ceiling

/// Runs in the child: hyper answering an Inform with the ACS's
/// InformResponse and a session cookie, an empty POST with 204.
fn ceiling_server() {
    use http_body_util::Full;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("READY {}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        let envelope = gigafibre_acs::cwmp::Envelope::decode(&inform(0)).expect("the Inform decodes");
        let response = bytes::Bytes::from(gigafibre_acs::session::inform_response(&envelope).encode().into_bytes());
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let response = response.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let response = response.clone();
                    async move {
                        use http_body_util::BodyExt;
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let mut r = if body.is_empty() {
                            let mut r = hyper::Response::new(Full::new(bytes::Bytes::new()));
                            *r.status_mut() = hyper::StatusCode::NO_CONTENT;
                            r
                        } else {
                            let mut r = hyper::Response::new(Full::new(response));
                            r.headers_mut().insert(
                                "set-cookie",
                                hyper::header::HeaderValue::from_static(
                                    "gacs_session=0123456789abcdef0123456789abcdef; Path=/; HttpOnly",
                                ),
                            );
                            r
                        };
                        r.headers_mut().insert(
                            "content-type",
                            hyper::header::HeaderValue::from_static("text/xml; charset=\"utf-8\""),
                        );
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}

fn start_ceiling() -> (Proc, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--ceiling-server")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the ceiling server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("READY ")
        .expect("READY line")
        .parse()
        .unwrap();
    (
        Proc {
            child,
            name: "ceiling",
        },
        addr,
    )
}

// -------------------------------------------------------------- scenarios

fn scenario_ceiling(rt: &tokio::runtime::Runtime, o: &Options) -> Row {
    let (p, addr) = start_ceiling();
    let cpu0 = cpu_seconds(p.pid());
    let d = rt.block_on(drive(
        addr,
        o.concurrency,
        Duration::from_secs(o.seconds),
        10_000,
        false,
    ));
    let mut row = row_from("1. ceiling: bare hyper, static bodies", &d, p.pid(), cpu0);
    row.ratio = Some(1.0);
    row
}

/// The ACS the periodic rows and `--compare` measure: no provisioning, no
/// host collection, a session table large enough for every device.
fn start_periodic_acs(data_dir: &Path) -> AcsProc {
    start_acs(
        data_dir,
        &[
            ("ACS_PROVISIONING", "off".into()),
            ("ACS_HOSTS_COLLECT", "off".into()),
            ("ACS_MAX_SESSIONS", "1000000".into()),
        ],
    )
}

/// Periodic sessions over `devices` registered devices (each registered
/// by a first session, which is measured too).
fn scenario_periodic(
    rt: &tokio::runtime::Runtime,
    o: &Options,
    devices: u32,
    ceiling: Option<f64>,
) -> Vec<Row> {
    let dir = tempfile::tempdir().unwrap();
    let acs = start_periodic_acs(dir.path());
    let pid = acs.proc_.pid();

    let cpu0 = cpu_seconds(pid);
    let reg = rt.block_on(drive(
        acs.cwmp,
        o.concurrency,
        Duration::ZERO,
        devices,
        true,
    ));
    let mut first = row_from(
        &format!("2a. first contact, {} new devices", count_label(devices)),
        &reg,
        pid,
        cpu0,
    );
    first.store_mib = Some(dir_size_mib(dir.path()));
    first.ratio = ceiling.map(|c| first.rate() / c);

    let cpu1 = cpu_seconds(pid);
    let d = rt.block_on(drive(
        acs.cwmp,
        o.concurrency,
        Duration::from_secs(o.seconds),
        devices,
        false,
    ));
    let mut row = row_from(
        &format!("2b. periodic, {} registered", count_label(devices)),
        &d,
        pid,
        cpu1,
    );
    row.store_mib = Some(dir_size_mib(dir.path()));
    row.ratio = ceiling.map(|c| row.rate() / c);
    let informs = metric(acs.api, "acs_informs_total");
    row.notes = format!(
        "{} concurrent CPEs; every Inform durably stored before its answer; {} Informs accepted in all",
        o.concurrency, informs
    );
    vec![first, row]
}

fn scenario_bootstrap(concurrency: u32, n: u32, label: &str) -> Option<Row> {
    let (Some(cpe_sim), Some(erp_sim)) = (sibling_bin("cpe-sim"), sibling_bin("erpnext-sim"))
    else {
        println!(
            "3. bootstrap: skipped — build the simulators first: cargo build --release --workspace"
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("fixture.json");
    let out = Command::new(&cpe_sim)
        .args([
            "fixture",
            "--model",
            "mixed",
            "--count",
            &n.to_string(),
            "--serial-prefix",
            "BOOT",
        ])
        .output()
        .expect("cpe-sim fixture");
    assert!(out.status.success(), "cpe-sim fixture failed");
    std::fs::write(&fixture, &out.stdout).unwrap();
    let erp_port = free_port();
    let erp = Proc {
        child: Command::new(&erp_sim)
            .args([
                "--listen",
                &format!("127.0.0.1:{erp_port}"),
                "--api-key",
                "bench-key",
                "--api-secret",
                "bench-secret",
            ])
            .arg("--fixture")
            .arg(&fixture)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start erpnext-sim"),
        name: "erpnext-sim",
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while StdStream::connect(("127.0.0.1", erp_port)).is_err() {
        assert!(Instant::now() < deadline, "erpnext-sim did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let data = dir.path().join("acs");
    let acs = start_acs(
        &data,
        &[
            ("ERPNEXT_URL", format!("http://127.0.0.1:{erp_port}")),
            ("ERPNEXT_API_KEY", "bench-key".into()),
            ("ERPNEXT_API_SECRET", "bench-secret".into()),
            ("ACS_SIP_REGISTRAR", "sip.example.net".into()),
        ],
    );
    let pid = acs.proc_.pid();
    let cpu0 = cpu_seconds(pid);
    let out = Command::new(&cpe_sim)
        .args([
            "fleet",
            "--acs",
            &format!("http://{}/", acs.cwmp),
            "--model",
            "mixed",
            "--count",
            &n.to_string(),
            "--serial-prefix",
            "BOOT",
            "--concurrency",
            &concurrency.to_string(),
            "--once",
            "--duration",
            "600",
            "--inform-interval",
            "0",
            "--json",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("cpe-sim fleet");
    let report: Value = serde_json::from_slice(&out.stdout).expect("fleet JSON report");
    let sessions = report["sessions"].as_u64().unwrap_or(0);
    let cpu = cpu_seconds(pid) - cpu0;
    let wait_sum = metric(acs.api, "acs_erpnext_wait_seconds_sum");
    let wait_count = metric(acs.api, "acs_erpnext_wait_seconds_count");
    // Every device provisioned?
    let provisioned = all_devices(acs.api)
        .iter()
        .filter(|d| d["provisioning"]["status"] == "provisioned")
        .count();
    let rpcs = report["rpcs"].as_u64().unwrap_or(0);
    let busy = busy_summary(acs.api);
    drop(erp);
    Some(Row {
        scenario: format!("{label}. bootstrap + provisioning, {n} devices, {concurrency} at once"),
        sessions,
        seconds: report["duration_s"].as_f64().unwrap_or(1.0),
        p50_ms: report["p50_ms"].as_f64().unwrap_or(0.0),
        p99_ms: report["p99_ms"].as_f64().unwrap_or(0.0),
        max_ms: report["max_ms"].as_f64().unwrap_or(0.0),
        cpu_per_1k: cpu * 1000.0 / sessions.max(1) as f64,
        peak_rss_mib: memory_mib(pid).0,
        store_mib: Some(dir_size_mib(&data)),
        ratio: None,
        notes: format!(
            "cpe-sim mixed fleet (Deco, RCMG, TPLG), {provisioned}/{n} provisioned, {:.1} HTTP exchanges per session \
             ({:.2} ACS requests), ERPNext wait {:.2} ms per session on average ({} waits); {busy}; errors {}",
            2.0 + rpcs as f64 / sessions.max(1) as f64,
            rpcs as f64 / sessions.max(1) as f64,
            wait_sum * 1000.0 / sessions.max(1) as f64,
            wait_count,
            report["errors"]
        ),
    })
}

fn scenario_topology(o: &Options) -> Option<Row> {
    let Some(cpe_sim) = sibling_bin("cpe-sim") else {
        println!(
            "4. topology: skipped — build the simulators first: cargo build --release --workspace"
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let acs = start_acs(
        dir.path(),
        &[
            ("ACS_PROVISIONING", "off".into()),
            ("ACS_HOSTS_COLLECT", "on".into()),
            ("ACS_CR_MIN_INTERVAL_S", "0".into()),
            ("ACS_CR_USERNAME", "TOPO0001".into()),
            ("ACS_CR_PASSWORD", "topology-secret".into()),
        ],
    );
    let mut child = Command::new(&cpe_sim)
        .args([
            "run",
            "--acs",
            &format!("http://{}/", acs.cwmp),
            "--model",
            "deco",
            "--serial",
            "TOPO0001",
            "--satellites",
            "2",
            "--clients",
            "60",
            "--periodic-interval",
            "0",
            "--cr-username",
            "TOPO0001",
            "--cr-password",
            "topology-secret",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cpe-sim run");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _sim = Proc {
        child,
        name: "cpe-sim",
    };
    let id = line
        .split_whitespace()
        .nth(2)
        .expect("device id")
        .to_owned();
    let path_id: String = id
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    // Wait for the bootstrap session (and its first collection).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = http_get(acs.api, &format!("/api/v1/devices/{path_id}")).unwrap();
        if status == 200
            && serde_json::from_slice::<Value>(&body).is_ok_and(|v| {
                v["hosts_collected_at"].is_string()
                    && !v["session_active"].as_bool().unwrap_or(true)
            })
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Deco never finished its first session"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let refreshes = if o.quick { 5 } else { 40 };
    let pid = acs.proc_.pid();
    let cpu0 = cpu_seconds(pid);
    let mut lat = Vec::new();
    let mut clients = 0;
    let mut nodes = 0;
    let start = Instant::now();
    for _ in 0..refreshes {
        let t = Instant::now();
        let (status, body) = http_get(
            acs.api,
            &format!("/api/v1/devices/{path_id}/hosts?refresh=true&wait=30"),
        )
        .unwrap();
        lat.push(t.elapsed().as_micros() as u64);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["refresh"]["task"]["status"], "done",
            "refresh not done: {}",
            v["refresh"]
        );
        nodes = v["nodes"].as_array().map_or(0, Vec::len);
        clients = v["totals"]["all"].as_u64().unwrap_or(0);
    }
    let elapsed = start.elapsed();
    lat.sort_unstable();
    let d = Drive {
        sessions: refreshes,
        elapsed,
        latencies_us: lat,
    };
    let mut row = row_from(
        "4. topology refresh, Deco 3 nodes / 60 clients",
        &d,
        pid,
        cpu0,
    );
    row.store_mib = Some(dir_size_mib(dir.path()));
    row.notes = format!(
        "one at a time: API call → connection request (Digest) → session → host tables read → topology ({nodes} nodes, {clients} clients)"
    );
    Some(row)
}

// ---------------------------------------------------------------- cluster

/// A PostgreSQL server of the bench's own (the tests' harness).
#[path = "../src/store/pg_test.rs"]
mod postgres;

/// CPU seconds of every PostgreSQL process (the postmaster and its
/// backends) by pid.
fn postgres_cpu() -> std::collections::BTreeMap<u32, f64> {
    let mut cpu = std::collections::BTreeMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "postgres" {
            cpu.insert(pid, cpu_seconds(pid));
        }
    }
    cpu
}

/// CPU the PostgreSQL processes used since `before`.
fn postgres_cpu_since(before: &std::collections::BTreeMap<u32, f64>) -> f64 {
    postgres_cpu()
        .iter()
        .map(|(pid, now)| now - before.get(pid).copied().unwrap_or(0.0))
        .sum()
}

/// Periodic sessions over `devices` devices on the embedded store, then
/// on PostgreSQL with one node and with two nodes (each node driven by
/// half the CPEs, over its half of the devices, as a TCP balancer keeping
/// a CPE's connection on one node would; the balancer's own cost is not
/// measured). Every server shares this machine's cores with the client.
fn scenario_cluster(rt: &tokio::runtime::Runtime, o: &Options, devices: u32) -> Vec<Row> {
    let Some(pg) = postgres::PgServer::start() else {
        println!("    cluster scenario skipped: no PostgreSQL (Debian's postgresql package)");
        return Vec::new();
    };
    let mut rows = Vec::new();
    for (label, nodes, database) in [
        ("embedded store (sled), 1 node", 1usize, None),
        ("PostgreSQL, 1 node", 1, Some("bench1")),
        ("PostgreSQL, 2 nodes", 2, Some("bench2")),
    ] {
        let url = database.map(|d| pg.create(d));
        let dirs: Vec<tempfile::TempDir> =
            (0..nodes).map(|_| tempfile::tempdir().unwrap()).collect();
        let acs: Vec<AcsProc> = dirs
            .iter()
            .enumerate()
            .map(|(i, dir)| {
                let mut env = vec![
                    ("ACS_PROVISIONING", "off".to_owned()),
                    ("ACS_HOSTS_COLLECT", "off".into()),
                    ("ACS_MAX_SESSIONS", "1000000".into()),
                    ("ACS_NODE_NAME", format!("bench-{i}")),
                ];
                if let Some(u) = &url {
                    env.push(("ACS_STORE_URL", u.clone()));
                }
                start_acs(dir.path(), &env)
            })
            .collect();
        let per_node = o.concurrency / nodes as u32;
        let run = |duration: Duration, once: bool| {
            rt.block_on(async {
                let handles: Vec<_> = acs
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        let share = devices / nodes as u32;
                        let range = share * i as u32..share * (i as u32 + 1);
                        tokio::spawn(drive_range(a.cwmp, per_node, duration, range, once))
                    })
                    .collect();
                let mut all = Drive {
                    sessions: 0,
                    elapsed: Duration::ZERO,
                    latencies_us: Vec::new(),
                };
                for h in handles {
                    let d = h.await.expect("drive");
                    all.sessions += d.sessions;
                    all.elapsed = all.elapsed.max(d.elapsed);
                    all.latencies_us.extend(d.latencies_us);
                }
                all.latencies_us.sort_unstable();
                all
            })
        };
        let acs_cpu = || acs.iter().map(|a| cpu_seconds(a.proc_.pid())).sum::<f64>();
        // Registration (first contact), not shown: the periodic rows are
        // what compares.
        run(Duration::ZERO, true);
        let (cpu0, pg0) = (acs_cpu(), postgres_cpu());
        // Bytes of write-ahead log written so far (the server's, all databases).
        let wal_bytes = || {
            database.and_then(|d| pg_number(&pg, d, "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"))
        };
        let wal0 = wal_bytes();
        let d = run(Duration::from_secs(o.seconds), false);
        let cpu = acs_cpu() - cpu0;
        let wal = wal_bytes().zip(wal0).map(|(after, before)| after - before);
        let pg_cpu = if url.is_some() {
            Some(postgres_cpu_since(&pg0))
        } else {
            None
        };
        let mut row = row_from(
            &format!("6. periodic, {}, {label}", count_label(devices)),
            &d,
            acs[0].proc_.pid(),
            0.0,
        );
        row.cpu_per_1k = cpu * 1000.0 / d.sessions.max(1) as f64;
        row.peak_rss_mib = acs
            .iter()
            .map(|a| memory_mib(a.proc_.pid()).0)
            .fold(0.0, f64::max);
        row.store_mib = match database {
            None => Some(dir_size_mib(dirs[0].path())),
            Some(d) => pg_number(
                &pg,
                d,
                "SELECT pg_database_size(current_database()) / 1048576.0",
            ),
        };
        row.notes = match pg_cpu {
            None => format!(
                "{} concurrent CPEs; ACS CPU summed over the nodes",
                o.concurrency
            ),
            Some(p) => {
                let per_1k = p * 1000.0 / d.sessions.max(1) as f64;
                let wal_kib = wal.unwrap_or(0.0) / 1024.0 / d.sessions.max(1) as f64;
                format!(
                    "{} concurrent CPEs; PostgreSQL CPU {:.3} s/1k sessions (≈ {:.0} sessions/s per PostgreSQL core), WAL {:.1} KiB/session; ACS CPU summed over the nodes",
                    o.concurrency,
                    per_1k,
                    1000.0 / per_1k.max(1e-9),
                    wal_kib
                )
            }
        };
        rows.push(row);
    }
    rows
}

/// A number PostgreSQL answers about database `name`.
fn pg_number(pg: &postgres::PgServer, name: &str, query: &str) -> Option<f64> {
    pg.column(name, query).first()?.parse().ok()
}

/// 1M registered devices: synthetic records (a device record and its
/// Inform's parameters each, as a periodic Inform leaves them) written
/// through the store, then the ACS started on them.
fn scenario_million(rt: &tokio::runtime::Runtime, o: &Options) -> Vec<Value> {
    use gigafibre_acs::store::{RedbStore, SledStore, Store};
    let n = o.million;
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    {
        let store: Box<dyn Store> = match store_backend() {
            "redb" => Box::new(RedbStore::open(dir.path(), 256 << 20).expect("open store")),
            _ => Box::new(SledStore::open(&dir.path().join("db"), 256 << 20).expect("open store")),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let models = discovered_models();
        let catalog = gigafibre_acs::catalog::Catalog::new();
        // What the catalog answered for a device with exactly its model's
        // tree, per model: every such device gets the same (checked).
        let mut shared: Vec<Option<gigafibre_acs::store::DataModelInfo>> = vec![None; models.len()];
        for i in 0..n {
            let body = inform(i);
            let env = gigafibre_acs::cwmp::Envelope::decode(&body).unwrap();
            let gigafibre_acs::cwmp::Body::Inform(inf) = &env.body else {
                panic!("not an Inform")
            };
            let mut out = gigafibre_acs::session::apply_inform(
                None,
                inf,
                &env.header,
                env.version,
                Some("127.0.0.1".into()),
                now,
            );
            // Discovery data, as a first contact leaves it: four models
            // (two real exports, two firmware each); one device in a
            // hundred has a port mapping of its own (a delta on its base).
            let m = &models[i as usize % models.len()];
            let d = &mut out.device;
            d.model_name = Some(m.model.clone());
            d.software_version = Some(m.firmware.clone());
            let own = i % 100 == 7;
            let info = match (&shared[i as usize % models.len()], own) {
                (Some(info), false) if i % 10_000 != 0 => info.clone(),
                _ => {
                    let tree = if own {
                        m.with_port_mapping(i)
                    } else {
                        m.tree.clone()
                    };
                    let info = catalog.store(store.as_ref(), d, &tree, now).unwrap();
                    if !own {
                        let known = shared[i as usize % models.len()].get_or_insert(info.clone());
                        assert_eq!(known.base, info.base, "one base per model and firmware");
                    }
                    info
                }
            };
            d.data_model = Some(info);
            store.put_device(&out.device).unwrap();
            store
                .put_inform_values(&out.device.id, &out.parameters)
                .unwrap();
        }
        store.flush_blocking().unwrap();
    }
    let seeded = t.elapsed();
    let store_mib = dir_size_mib(dir.path());
    let acs = start_acs(
        dir.path(),
        &[
            ("ACS_PROVISIONING", "off".into()),
            ("ACS_HOSTS_COLLECT", "off".into()),
        ],
    );
    let ready = acs.ready_after;
    let (_, rss_idle) = memory_mib(acs.proc_.pid());
    // Touch it: 10 s of periodic sessions over all of them.
    let d = rt.block_on(drive(
        acs.cwmp,
        o.concurrency,
        Duration::from_secs(o.seconds.min(10)),
        n,
        false,
    ));
    let (peak, rss) = memory_mib(acs.proc_.pid());
    let (status, body) = http_get(acs.api, "/api/v1/devices?q=BENCH00000042").unwrap();
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&body).contains("BENCH00000042"),
        "a seeded device is not found"
    );
    drop(acs);
    // Restart on the same data (the store's files now warm in the page cache).
    let again = start_acs(
        dir.path(),
        &[
            ("ACS_PROVISIONING", "off".into()),
            ("ACS_HOSTS_COLLECT", "off".into()),
        ],
    );
    let (_, rss_restart) = memory_mib(again.proc_.pid());
    println!(
        "5. {} registered devices with discovery data (4 shared trees, 1 % with a delta of their own): seeded in {:.1} s, store {:.0} MiB; ACS ready {:.2} s after start (RSS {:.0} MiB), \
         after {} periodic sessions ({:.0}/s, p99 {:.1} ms) RSS {:.0} MiB, peak {:.0} MiB; \
         ready {:.2} s after a restart (RSS {:.0} MiB)",
        count_label(n),
        seeded.as_secs_f64(),
        store_mib,
        ready.as_secs_f64(),
        rss_idle,
        d.sessions,
        d.sessions as f64 / d.elapsed.as_secs_f64(),
        percentile_ms(&d.latencies_us, 0.99),
        rss,
        peak,
        again.ready_after.as_secs_f64(),
        rss_restart
    );
    vec![json!({
        "scenario": format!("5. {} registered devices with discovery data", count_label(n)),
        "devices": n,
        "seed_seconds": round(seeded.as_secs_f64(), 2),
        "store_mib": round(store_mib, 1),
        "ready_seconds": round(ready.as_secs_f64(), 3),
        "rss_ready_mib": round(rss_idle, 1),
        "periodic_sessions": d.sessions,
        "periodic_sessions_per_s": round(d.sessions as f64 / d.elapsed.as_secs_f64(), 1),
        "periodic_p99_ms": round(percentile_ms(&d.latencies_us, 0.99), 3),
        "rss_after_sessions_mib": round(rss, 1),
        "peak_rss_mib": round(peak, 1),
        "restart_ready_seconds": round(again.ready_after.as_secs_f64(), 3),
        "rss_after_restart_mib": round(rss_restart, 1),
    })]
}

/// A model and firmware whose data model the 1M scenario stores.
struct DiscoveredModel {
    model: String,
    firmware: String,
    tree: gigafibre_acs::provision::datamodel::DataModelTree,
}

impl DiscoveredModel {
    /// This model's tree plus one port-mapping entry only device `i` has.
    fn with_port_mapping(&self, i: u32) -> gigafibre_acs::provision::datamodel::DataModelTree {
        let extra = format!("Device.NAT.PortMapping.{}.Description", 1000 + i % 50);
        gigafibre_acs::provision::datamodel::DataModelTree::from_names(
            self.tree
                .iter()
                .map(|(n, w)| (n.to_owned(), w))
                .chain([(extra, true)]),
        )
    }
}

/// The two real exports (`tests/data/device-models`), each on two firmware
/// versions whose trees differ by a name: four shared trees.
fn discovered_models() -> Vec<DiscoveredModel> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for (model, file) in [
        ("EX220", "tplink-ex220-tr181-mesh.csv"),
        ("XX230v", "tplink-xx230v-gpon-ont.csv"),
    ] {
        let text = std::fs::read_to_string(repo.join("tests/data/device-models").join(file))
            .expect("read a device export");
        let (tree, _) = gigafibre_acs::provision::export::parse(&text).expect("parse the export");
        let newer = gigafibre_acs::provision::datamodel::DataModelTree::from_names(
            tree.iter()
                .map(|(n, w)| (n.to_owned(), w))
                .chain([("Device.DeviceInfo.X_TP_NewFeature".to_owned(), false)]),
        );
        out.push(DiscoveredModel {
            model: model.into(),
            firmware: "1.0.0".into(),
            tree,
        });
        out.push(DiscoveredModel {
            model: model.into(),
            firmware: "1.1.0".into(),
            tree: newer,
        });
    }
    out
}

/// Storage soak: periodic sessions over 10k devices for `minutes`,
/// sampling the store's size on disk and the ACS's memory every 30 s; at
/// the end every device's Inform count is checked against the sessions
/// the ACS acknowledged (nothing acknowledged may be lost).
fn scenario_soak(rt: &tokio::runtime::Runtime, o: &Options) -> Value {
    let devices = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let acs = start_acs(
        dir.path(),
        &[
            ("ACS_PROVISIONING", "off".into()),
            ("ACS_HOSTS_COLLECT", "off".into()),
        ],
    );
    let pid = acs.proc_.pid();
    let mut samples = Vec::new();
    let mut total = 0u64;
    let start = Instant::now();
    println!(
        "soak: {devices} devices, {} min, 30 s samples",
        o.soak_minutes
    );
    println!(
        "{:>7} {:>10} {:>11} {:>10} {:>9}",
        "minutes", "sessions", "sessions/s", "store MiB", "RSS MiB"
    );
    while start.elapsed() < Duration::from_secs(o.soak_minutes * 60) {
        let d = rt.block_on(drive(
            acs.cwmp,
            o.concurrency,
            Duration::from_secs(30),
            devices,
            false,
        ));
        total += d.sessions;
        let store = dir_size_mib(dir.path());
        let (_, rss) = memory_mib(pid);
        let minutes = start.elapsed().as_secs_f64() / 60.0;
        println!(
            "{minutes:>7.1} {total:>10} {:>11.0} {store:>10.0} {rss:>9.0}",
            d.sessions as f64 / d.elapsed.as_secs_f64()
        );
        samples.push(json!({
            "minutes": round(minutes, 2),
            "sessions": total,
            "sessions_per_s": round(d.sessions as f64 / d.elapsed.as_secs_f64(), 1),
            "store_mib": round(store, 1),
            "rss_mib": round(rss, 1),
        }));
    }
    // Every acknowledged Inform is in the device records.
    let listed = all_devices(acs.api);
    let records = listed.len() as u64;
    let informs: u64 = listed
        .iter()
        .map(|d| d["inform_count"].as_u64().unwrap_or(0))
        .sum();
    println!(
        "soak: {total} sessions acknowledged, {informs} Informs in {records} device records ({})",
        if informs == total && records == u64::from(devices) {
            "none lost"
        } else {
            "MISMATCH"
        }
    );
    json!({
        "devices": devices,
        "minutes": o.soak_minutes,
        "samples": samples,
        "sessions_acknowledged": total,
        "informs_recorded": informs,
        "device_records": records,
    })
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(0.0)
        / (1024.0 * 1024.0);
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu_model": model,
        "memory_gib": round(mem_gib, 1),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
    })
}

/// `--compare N`: for each fleet size, one ACS (its devices registered
/// first), then N rounds of the ceiling and the ACS's periodic sessions
/// taken in turn, so both see the same machine load; the median of the
/// rounds' ratios and their spread (max − min). A ratio is worth quoting
/// only when the spread is small next to it.
fn compare(rt: &tokio::runtime::Runtime, o: &Options, rounds: u32) -> Value {
    let mut out = Vec::new();
    for &n in &o.fleets {
        let dir = tempfile::tempdir().unwrap();
        let acs = start_periodic_acs(dir.path());
        rt.block_on(drive(acs.cwmp, o.concurrency, Duration::ZERO, n, true));
        let (ceiling, ceiling_addr) = start_ceiling();
        let run = Duration::from_secs(o.seconds);
        let mut pairs = Vec::new();
        for round in 1..=rounds {
            let c = rt.block_on(drive(ceiling_addr, o.concurrency, run, 10_000, false));
            let a = rt.block_on(drive(acs.cwmp, o.concurrency, run, n, false));
            let c_row = row_from("ceiling", &c, ceiling.pid(), 0.0);
            let a_row = row_from("acs", &a, acs.proc_.pid(), 0.0);
            let ratio = a_row.rate() / c_row.rate().max(1e-9);
            println!(
                "  {} devices, round {round}: ceiling {:.0}/s, ACS {:.0}/s, ratio {ratio:.3}",
                count_label(n),
                c_row.rate(),
                a_row.rate()
            );
            pairs.push((c_row.rate(), a_row.rate(), ratio));
        }
        let mut ratios: Vec<f64> = pairs.iter().map(|p| p.2).collect();
        ratios.sort_by(f64::total_cmp);
        let median = ratios[ratios.len() / 2];
        let spread = ratios[ratios.len() - 1] - ratios[0];
        println!(
            "ratio to the ceiling, {} devices: median {median:.3}, spread {spread:.3} over {rounds} rounds",
            count_label(n)
        );
        out.push(json!({
            "devices": n,
            "median_ratio": round(median, 3),
            "spread": round(spread, 3),
            "rounds": pairs.iter().map(|(c, a, r)| json!({"ceiling_per_s": round(*c, 1), "acs_per_s": round(*a, 1), "ratio": round(*r, 3)})).collect::<Vec<_>>(),
        }));
    }
    Value::Array(out)
}

fn main() {
    let o = Options::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(rounds) = o.compare {
        let m = machine();
        println!(
            "gigafibre-acs --compare: ceiling and ACS periodic sessions in turn, {rounds} rounds of {} s, {} concurrent CPEs, {} CPUs ({})",
            o.seconds,
            o.concurrency,
            m["cpus"],
            m["cpu_model"].as_str().unwrap_or("?")
        );
        let result = compare(&rt, &o, rounds.max(1));
        if let Some(path) = &o.json {
            let doc = json!({"machine": m, "seconds_per_run": o.seconds, "concurrency": o.concurrency, "compare": result});
            std::fs::write(path, serde_json::to_vec_pretty(&doc).unwrap())
                .expect("write the JSON report");
            println!("JSON written to {}", path.display());
        }
        return;
    }
    let m = machine();
    println!(
        "gigafibre-acs benchmark — {} CPUs ({}), {} GiB; client and servers share the machine; {} s per timed run, {} concurrent CPEs",
        m["cpus"],
        m["cpu_model"].as_str().unwrap_or("?"),
        m["memory_gib"],
        o.seconds,
        o.concurrency
    );
    print_header();
    let mut rows = Vec::new();
    let mut ceiling = None;
    if o.runs("ceiling") {
        let r = scenario_ceiling(&rt, &o);
        print_row(&r);
        ceiling = Some(r.rate());
        rows.push(r);
    }
    if o.runs("periodic") {
        for &n in &o.fleets {
            for r in scenario_periodic(&rt, &o, n, ceiling) {
                print_row(&r);
                rows.push(r);
            }
        }
    }
    if o.runs("bootstrap") {
        // Throughput (a wave of 64 at once: latency is mostly queueing on
        // two shared cores), then latency with 4 at a time.
        let waves = [
            (o.concurrency.min(64), o.bootstrap_devices, "3a"),
            (4, (o.bootstrap_devices / 4).max(50), "3b"),
        ];
        for (concurrency, n, label) in waves {
            if let Some(r) = scenario_bootstrap(concurrency, n, label) {
                print_row(&r);
                rows.push(r);
            }
        }
    }
    if o.runs("topology") {
        if let Some(r) = scenario_topology(&o) {
            print_row(&r);
            rows.push(r);
        }
    }
    if o.runs("cluster") {
        let devices = if o.quick { 2_000 } else { 10_000 };
        for r in scenario_cluster(&rt, &o, devices) {
            print_row(&r);
            rows.push(r);
        }
    }
    let million = if o.runs("million") {
        scenario_million(&rt, &o)
    } else {
        Vec::new()
    };
    let soak = if o.runs("soak") {
        scenario_soak(&rt, &o)
    } else {
        Value::Null
    };
    if let Some(path) = &o.json {
        let doc = json!({
            "machine": m,
            "seconds_per_run": o.seconds,
            "concurrency": o.concurrency,
            "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
            "registered_devices": million,
            "soak": soak,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&doc).unwrap())
            .expect("write the JSON report");
        println!("JSON written to {}", path.display());
    }
}
