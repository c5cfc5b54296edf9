//! Downloads for real: `cpe-sim` processes talking to a scripted ACS (in
//! this test, over loopback HTTP with the workspace's CWMP codec) fetch
//! images from a file server in this test, check them, install firmware
//! and report what a real CPE reports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gigafibre_acs::cwmp::rpc::{
    Download, InformResponse, Password, TransferComplete, TransferCompleteResponse,
};
use gigafibre_acs::cwmp::{Body, Envelope};

// ---- a scripted ACS ---------------------------------------------------------

/// What the ACS saw, in order.
#[derive(Clone, Debug)]
enum Seen {
    Inform {
        serial: String,
        events: Vec<String>,
        /// `M …` events with their CommandKey.
        keys: Vec<(String, String)>,
        params: BTreeMap<String, String>,
        at: Instant,
    },
    TransferComplete {
        serial: String,
        tc: TransferComplete,
    },
    /// A request the ACS sent.
    Sent { serial: String, at: Instant },
    /// The CPE's answer to it.
    Answer {
        serial: String,
        body: Box<Body>,
        at: Instant,
    },
}

#[derive(Clone, Default)]
struct Script {
    seen: Arc<Mutex<Vec<Seen>>>,
    queue: Arc<Mutex<HashMap<String, VecDeque<Body>>>>,
}

struct Acs {
    url: String,
    script: Script,
}

impl Acs {
    fn start() -> Acs {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/acs", listener.local_addr().unwrap());
        let script = Script::default();
        let s = script.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || acs_connection(stream, &s));
            }
        });
        Acs { url, script }
    }

    fn queue(&self, serial: &str, body: Body) {
        self.script
            .queue
            .lock()
            .unwrap()
            .entry(serial.to_owned())
            .or_default()
            .push_back(body);
    }

    fn seen(&self) -> Vec<Seen> {
        self.script.seen.lock().unwrap().clone()
    }

    /// The Informs of `serial`: (events, parameters).
    fn informs(&self, serial: &str) -> Vec<(Vec<String>, BTreeMap<String, String>)> {
        self.seen()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Inform {
                    serial: s,
                    events,
                    params,
                    ..
                } if s == serial => Some((events, params)),
                _ => None,
            })
            .collect()
    }

    fn transfer_completes(&self, serial: &str) -> Vec<TransferComplete> {
        self.seen()
            .into_iter()
            .filter_map(|s| match s {
                Seen::TransferComplete { serial: s, tc } if s == serial => Some(tc),
                _ => None,
            })
            .collect()
    }

    /// Waits for the `n`th TransferComplete of `serial`.
    fn wait_tc(&self, serial: &str, n: usize, sim: &Sim) -> TransferComplete {
        wait_until(
            &format!("TransferComplete {n} of {serial}"),
            20,
            sim,
            || self.transfer_completes(serial).get(n - 1).cloned(),
        )
    }
}

/// Request line, headers (names in lower case), body.
type HttpRequest = (String, Vec<(String, String)>, Vec<u8>);

/// Reads one HTTP/1.1 request. None at EOF.
fn read_request(r: &mut impl BufRead) -> Option<HttpRequest> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let request_line = line.trim_end().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some((request_line, headers, body))
}

fn acs_connection(stream: TcpStream, s: &Script) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    let mut serial = String::new();
    let mut version = gigafibre_acs::cwmp::CwmpVersion::V1_0;
    while let Some((_, _, body)) = read_request(&mut reader) {
        let reply: Option<Envelope> = if body.is_empty() {
            None
        } else {
            let env = Envelope::decode(&body).unwrap();
            version = env.version;
            match env.body {
                Body::Inform(i) => {
                    serial = i.device_id.serial_number.clone();
                    s.seen.lock().unwrap().push(Seen::Inform {
                        serial: serial.clone(),
                        events: i.events.iter().map(|e| e.event_code.clone()).collect(),
                        keys: i
                            .events
                            .iter()
                            .filter(|e| e.event_code.starts_with("M "))
                            .map(|e| (e.event_code.clone(), e.command_key.clone()))
                            .collect(),
                        params: i
                            .parameters
                            .into_iter()
                            .map(|p| (p.name, p.value))
                            .collect(),
                        at: Instant::now(),
                    });
                    Some(Envelope::new(
                        version,
                        env.header.id,
                        InformResponse { max_envelopes: 1 },
                    ))
                }
                Body::TransferComplete(tc) => {
                    s.seen.lock().unwrap().push(Seen::TransferComplete {
                        serial: serial.clone(),
                        tc,
                    });
                    Some(Envelope::new(
                        version,
                        env.header.id,
                        TransferCompleteResponse {},
                    ))
                }
                other => {
                    s.seen.lock().unwrap().push(Seen::Answer {
                        serial: serial.clone(),
                        body: Box::new(other),
                        at: Instant::now(),
                    });
                    None
                }
            }
        };
        // Nothing to answer: the next queued request, or the end (204).
        let reply = reply.or_else(|| {
            let next = s
                .queue
                .lock()
                .unwrap()
                .get_mut(&serial)
                .and_then(VecDeque::pop_front)?;
            s.seen.lock().unwrap().push(Seen::Sent {
                serial: serial.clone(),
                at: Instant::now(),
            });
            Some(Envelope::new(version, Some(format!("acs-{serial}")), next))
        });
        let written = match reply {
            Some(env) => {
                let xml = env.encode();
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nContent-Length: {}\r\n\r\n{xml}",
                    xml.len()
                )
            }
            None => write!(out, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"),
        };
        if written.is_err() {
            return;
        }
    }
}

// ---- a file server ----------------------------------------------------------

#[derive(Clone)]
struct Route {
    status: u16,
    body: Vec<u8>,
    /// Basic credentials the route wants.
    basic: Option<(String, String)>,
    /// Wait before answering.
    delay: Duration,
}

/// A request the file server got: (path, Authorization header, when).
type Hit = (String, Option<String>, Instant);

#[derive(Clone, Default)]
struct FileState {
    routes: Arc<Mutex<HashMap<String, Route>>>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

struct Files {
    addr: SocketAddr,
    state: FileState,
    scheme: &'static str,
}

/// The workspace's test certificates (CN localhost, SAN 127.0.0.1).
fn test_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

impl Files {
    fn start() -> Files {
        Files::start_with(None)
    }

    /// Over TLS, with the workspace's test certificate.
    fn start_tls() -> Files {
        use rustls_pki_types::pem::PemObject;
        let certs: Vec<_> =
            rustls_pki_types::CertificateDer::pem_file_iter(test_data("test-cert.pem"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key =
            rustls_pki_types::PrivateKeyDer::from_pem_file(test_data("test-key.pem")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        Files::start_with(Some(Arc::new(config)))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Files {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = FileState::default();
        let st = state.clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let st = st.clone();
                let tls = tls.clone();
                std::thread::spawn(move || match tls {
                    None => serve_file(stream, &st),
                    Some(config) => {
                        let conn = rustls::ServerConnection::new(config).unwrap();
                        let mut tls = rustls::StreamOwned::new(conn, stream);
                        serve_file(&mut tls, &st);
                        tls.conn.send_close_notify();
                        let _ = tls.flush();
                    }
                });
            }
        });
        Files {
            addr,
            state,
            scheme,
        }
    }

    fn add(&self, path: &str, body: Vec<u8>) -> String {
        self.add_route(
            path,
            Route {
                status: 200,
                body,
                basic: None,
                delay: Duration::ZERO,
            },
        )
    }

    fn add_route(&self, path: &str, route: Route) -> String {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_owned(), route);
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    fn hits(&self, path: &str) -> Vec<(Option<String>, Instant)> {
        self.state
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, a, t)| (a.clone(), *t))
            .collect()
    }
}

fn serve_file(mut out: impl Read + Write, st: &FileState) {
    let Some((line, headers, _)) = read_request(&mut BufReader::new(&mut out)) else {
        return;
    };
    let path = line.split(' ').nth(1).unwrap_or("").to_owned();
    let auth = headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    st.hits
        .lock()
        .unwrap()
        .push((path.clone(), auth.clone(), Instant::now()));
    let route = st.routes.lock().unwrap().get(&path).cloned();
    let Some(route) = route else {
        let _ = write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    };
    std::thread::sleep(route.delay);
    if let Some((u, p)) = &route.basic {
        use base64::Engine as _;
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        );
        if auth.as_deref() != Some(expected.as_str()) {
            let _ = write!(
                out,
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"fw\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return;
        }
    }
    let _ = write!(
        out,
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        route.status,
        route.body.len()
    );
    let _ = out.write_all(&route.body);
}

/// A firmware image of `size` bytes: the header line, then filler.
fn image(header: &str, size: usize) -> Vec<u8> {
    let mut v = format!("CPESIM-FIRMWARE {header}\n").into_bytes();
    let mut x = 0x2545_f491_u32;
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push(x as u8);
    }
    v
}

fn sha256_hex(b: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn download(key: &str, url: &str, file_size: u64) -> Body {
    Body::Download(Download {
        command_key: key.into(),
        file_type: "1 Firmware Upgrade Image".into(),
        url: url.into(),
        file_size,
        ..Download::default()
    })
}

// ---- the simulator ----------------------------------------------------------

/// A running `cpe-sim`, killed when dropped; its log in `log`.
struct Sim {
    child: Child,
    log: PathBuf,
}

impl Sim {
    fn start(dir: &Path, name: &str, args: &[&str]) -> Sim {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Sim { child, log }
    }

    /// `cpe-sim run` of one tplg-ont with its state in `dir`.
    fn run(acs: &Acs, dir: &Path, serial: &str, extra: &[&str]) -> Sim {
        let state = dir.to_str().unwrap();
        let mut args = vec![
            "run",
            "--acs",
            &acs.url,
            "--model",
            "tplg-ont",
            "--serial",
            serial,
            "--state-dir",
            state,
            "--periodic-interval",
            "0",
            "--boot-delay-ms",
            "50",
            "--retry-base-ms",
            "100",
            "--timeout",
            "5",
        ];
        args.extend_from_slice(extra);
        Sim::start(dir, serial, &args)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_until<T>(what: &str, secs: u64, sim: &Sim, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {what}; cpe-sim log:\n{}",
            sim.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const SW: &str = "Device.DeviceInfo.SoftwareVersion";
const HW: &str = "Device.DeviceInfo.HardwareVersion";
/// The tplg-ont model's.
const OLD_SW: &str = "0.6.0 3.0.0 v6066.0 Build 220630 Rel.56119n";
const TPLG_HW: &str = "XX230v v1.0 00000000";

fn real_time(t: &str) {
    assert!(
        t.len() >= 20 && !t.starts_with("0001-") && t.starts_with("20"),
        "not a real time: {t:?}"
    );
}

// ---- the tests --------------------------------------------------------------

#[test]
fn a_firmware_upgrade_changes_the_version_and_survives_a_restart() {
    let acs = Acs::start();
    let files = Files::start();
    let dir = tempfile::tempdir().unwrap();
    let fw = image(
        &format!("version=2.0.0_build20261201 hardware=\"{TPLG_HW},Other HW\""),
        300_000,
    );
    let url = files.add_route(
        "/fw/xx230v-2.0.0.bin",
        Route {
            status: 200,
            body: fw.clone(),
            basic: Some(("fwuser".into(), "fwpass".into())),
            delay: Duration::ZERO,
        },
    );
    let Body::Download(mut dl) = download("fw-1", &url, fw.len() as u64) else {
        unreachable!()
    };
    dl.username = "fwuser".into();
    dl.password = Password("fwpass".into());
    acs.queue("UP1", Body::Download(dl));
    let sha = sha256_hex(&fw);
    let mut sim = Sim::run(&acs, dir.path(), "UP1", &["--download-sha256", &sha]);

    let tc = acs.wait_tc("UP1", 1, &sim);
    assert_eq!(tc.command_key, "fw-1");
    assert_eq!(tc.fault.fault_code, 0, "{tc:?}\n{}", sim.log());
    real_time(&tc.start_time);
    real_time(&tc.complete_time);
    assert!(tc.start_time <= tc.complete_time);

    // The DownloadResponse said "later" (1).
    let answered = acs.seen().into_iter().find_map(|s| match s {
        Seen::Answer { serial, body, .. } if serial == "UP1" => Some(body),
        _ => None,
    });
    match answered.as_deref() {
        Some(Body::DownloadResponse(r)) => assert_eq!(r.0.status, 1),
        other => panic!("{other:?}"),
    }
    // Basic credentials after the server's 401.
    let hits = files.hits("/fw/xx230v-2.0.0.bin");
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(hits[0].0.is_none() && hits[1].0.as_deref().unwrap().starts_with("Basic "));

    let informs = acs.informs("UP1");
    assert_eq!(informs[0].0, ["0 BOOTSTRAP", "1 BOOT"]);
    assert_eq!(informs[0].1[SW], OLD_SW);
    let (events, params) = &informs[1];
    assert_eq!(events, &["1 BOOT", "7 TRANSFER COMPLETE", "M Download"]);
    assert_eq!(params[SW], "2.0.0_build20261201");
    let keys = acs.seen().into_iter().find_map(|s| match s {
        Seen::Inform { keys, .. } if !keys.is_empty() => Some(keys),
        _ => None,
    });
    assert_eq!(
        keys.unwrap(),
        [("M Download".to_owned(), "fw-1".to_owned())]
    );

    // The version is in the device's flash: it survives a restart.
    wait_until("the state saved", 5, &sim, || {
        let text = std::fs::read_to_string(dir.path().join("UP1.json")).ok()?;
        let state: serde_json::Value = serde_json::from_str(&text).ok()?;
        (state["model"]["params"][SW]["value"] == "2.0.0_build20261201").then_some(())
    });
    sim.stop();
    let sim = Sim::run(&acs, dir.path(), "UP1", &[]);
    wait_until("the Inform after the restart", 10, &sim, || {
        (acs.informs("UP1").len() >= 3).then_some(())
    });
    let (events, params) = &acs.informs("UP1")[2];
    assert_eq!(events, &["1 BOOT"]);
    assert_eq!(params[SW], "2.0.0_build20261201");
    assert_eq!(acs.transfer_completes("UP1").len(), 1);
}

#[test]
fn failed_downloads_report_their_fault_and_do_not_reboot() {
    let acs = Acs::start();
    let files = Files::start();
    let dir = tempfile::tempdir().unwrap();
    let good = image("version=9.9.9", 50_000);
    let good_url = files.add("/good.bin", good.clone());
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("http://{a}/fw.bin")
    };
    let zeros = "00".repeat(32);
    // (serial, Download, extra flags, expected fault, text in the FaultString)
    let cases: Vec<(&str, Body, Vec<&str>, u32, &str)> = vec![
        (
            "SIZE",
            download("k", &good_url, good.len() as u64 + 1),
            vec![],
            9017,
            "FileSize",
        ),
        (
            "SHA",
            download("k", &good_url, 0),
            vec!["--download-sha256", &zeros],
            9018,
            "SHA-256",
        ),
        (
            "NOTFOUND",
            download("k", &format!("http://{}/missing.bin", files.addr), 0),
            vec![],
            9016,
            "404",
        ),
        (
            "FORBIDDEN",
            download(
                "k",
                &files.add_route(
                    "/forbidden.bin",
                    Route {
                        status: 403,
                        body: Vec::new(),
                        basic: None,
                        delay: Duration::ZERO,
                    },
                ),
                0,
            ),
            vec![],
            9016,
            "403",
        ),
        (
            "REFUSED",
            download("k", &refused, 0),
            vec![],
            9015,
            "contact",
        ),
        (
            "NOTFW",
            download(
                "k",
                &files.add("/junk.bin", b"\x7fELF not an image\n".to_vec()),
                0,
            ),
            vec![],
            9018,
            "not a firmware image",
        ),
        (
            "BOARD",
            download(
                "k",
                &files.add("/other-board.bin", image("version=3 hardware=EX220", 1000)),
                0,
            ),
            vec![],
            9018,
            "image not for hardware XX230v v1.0 00000000",
        ),
        (
            "F9010",
            download(
                "k",
                &files.add("/f9010.bin", image("version=3 behaviour=fail-9010", 1000)),
                0,
            ),
            vec![],
            9010,
            "Download failure",
        ),
        (
            "F9010FLAG",
            download("k", &good_url, 0),
            vec!["--download-behaviour", "fail-9010"],
            9010,
            "Download failure",
        ),
        (
            "FTP",
            download("k", "ftp://127.0.0.1/fw.bin", 0),
            vec![],
            9013,
            "Unsupported",
        ),
    ];
    let mut sims = Vec::new();
    for (serial, dl, extra, _, _) in &cases {
        acs.queue(serial, dl.clone());
        sims.push(Sim::run(&acs, dir.path(), serial, extra));
    }
    for ((serial, _, _, code, text), sim) in cases.iter().zip(&sims) {
        let tc = acs.wait_tc(serial, 1, sim);
        assert_eq!(tc.fault.fault_code, *code, "{serial}: {tc:?}");
        assert!(
            tc.fault.fault_string.contains(text),
            "{serial}: {:?} lacks {text:?}",
            tc.fault.fault_string
        );
        real_time(&tc.start_time);
        let informs = acs.informs(serial);
        let (events, params) = &informs[1];
        assert_eq!(
            events,
            &["7 TRANSFER COMPLETE", "M Download"],
            "{serial}: no reboot"
        );
        assert_eq!(params[SW], OLD_SW, "{serial}");
    }
}

#[test]
fn bad_firmware_boot_loops_keeps_its_old_version_or_vanishes() {
    let acs = Acs::start();
    let files = Files::start();
    let dir = tempfile::tempdir().unwrap();
    let looping = files.add("/loop.bin", image("version=4.0 behaviour=boot-loop", 2000));
    let old = files.add("/old.bin", image("version=4.0 behaviour=old-version", 2000));
    let normal = files.add("/normal.bin", image("version=4.0", 2000));
    acs.queue("LOOP", download("loop", &looping, 0));
    acs.queue("OLD", download("old", &old, 0));
    // The flag wins over the header (boot-loop there).
    acs.queue("OLDFLAG", download("old", &looping, 0));
    acs.queue("VANISH", download("vanish", &normal, 0));
    let loop_sim = Sim::run(&acs, dir.path(), "LOOP", &["--boot-loop-period-ms", "300"]);
    let old_sim = Sim::run(&acs, dir.path(), "OLD", &[]);
    let old_flag_sim = Sim::run(
        &acs,
        dir.path(),
        "OLDFLAG",
        &["--download-behaviour", "old-version"],
    );
    let mut vanish_sim = Sim::run(
        &acs,
        dir.path(),
        "VANISH",
        &["--download-behaviour", "vanish"],
    );

    // old-version: a normal upgrade report, but the same version.
    for (serial, sim) in [("OLD", &old_sim), ("OLDFLAG", &old_flag_sim)] {
        let tc = acs.wait_tc(serial, 1, sim);
        assert_eq!(tc.fault.fault_code, 0, "{serial}");
        let (events, params) = &acs.informs(serial)[1];
        assert_eq!(events, &["1 BOOT", "7 TRANSFER COMPLETE", "M Download"]);
        assert_eq!(params[SW], OLD_SW, "{serial} still runs the old firmware");
    }

    // boot-loop: 1 BOOT after 1 BOOT, every 300 ms, old version, no report.
    wait_until("four boots", 10, &loop_sim, || {
        (acs.informs("LOOP").len() >= 5).then_some(())
    });
    let boots = acs.informs("LOOP");
    for (events, params) in &boots[1..] {
        assert_eq!(events, &["1 BOOT"]);
        assert_eq!(params[SW], OLD_SW);
    }
    assert!(acs.transfer_completes("LOOP").is_empty());
    let at: Vec<Instant> = acs
        .seen()
        .into_iter()
        .filter_map(|s| match s {
            Seen::Inform { serial, at, .. } if serial == "LOOP" => Some(at),
            _ => None,
        })
        .collect();
    for w in at[1..].windows(2) {
        let gap = w[1] - w[0];
        assert!(gap >= Duration::from_millis(250), "{gap:?}");
    }

    // vanish: fetched, then nothing: no Inform, no connection request answer.
    wait_until("the vanishing device's fetch", 10, &vanish_sim, || {
        (!files.hits("/normal.bin").is_empty()).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1500));
    let informs = acs.informs("VANISH");
    assert_eq!(informs.len(), 1, "{informs:?}");
    assert!(acs.transfer_completes("VANISH").is_empty());
    assert!(vanish_sim.alive(), "the process stays up");
    let cr = informs[0].1["Device.ManagementServer.ConnectionRequestURL"].clone();
    let addr = cr
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    for _ in 0..2 {
        if let Ok(mut s) = TcpStream::connect(&addr) {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: cpe\r\n\r\n");
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            assert!(
                !buf.starts_with(b"HTTP/"),
                "a dead device answered: {}",
                String::from_utf8_lossy(&buf)
            );
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(acs.informs("VANISH").len(), 1);
}

#[test]
fn delay_seconds_is_waited_before_fetching() {
    let acs = Acs::start();
    let files = Files::start();
    let dir = tempfile::tempdir().unwrap();
    let fw = image("version=5.0", 1000);
    let url = files.add("/later.bin", fw);
    acs.queue(
        "DELAY",
        Body::Download(Download {
            command_key: "later".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url,
            delay_seconds: 2,
            ..Download::default()
        }),
    );
    let sim = Sim::run(&acs, dir.path(), "DELAY", &[]);
    let tc = acs.wait_tc("DELAY", 1, &sim);
    assert_eq!(tc.fault.fault_code, 0);
    let answered = acs
        .seen()
        .into_iter()
        .find_map(|s| match s {
            Seen::Answer { serial, at, .. } if serial == "DELAY" => Some(at),
            _ => None,
        })
        .unwrap();
    let (_, fetched) = files.hits("/later.bin")[0].clone();
    let waited = fetched - answered;
    assert!(
        waited >= Duration::from_millis(1800) && waited < Duration::from_secs(6),
        "fetched {waited:?} after the DownloadResponse"
    );
    assert_eq!(acs.informs("DELAY")[1].1[SW], "5.0");
}

#[test]
fn a_fleet_upgrades_concurrently_and_its_hardware_variant_needs_its_own_image() {
    let acs = Acs::start();
    let files = Files::start();
    let dir = tempfile::tempdir().unwrap();
    let plain = image(&format!("version=6.0 hardware=\"{TPLG_HW}\""), 20_000);
    let both = image(
        &format!("version=6.1 hardware=\"{TPLG_HW},{TPLG_HW}-B\""),
        20_000,
    );
    let plain_url = files.add("/plain.bin", plain.clone());
    let slow_url = files.add_route(
        "/slow.bin",
        Route {
            status: 200,
            body: plain.clone(),
            basic: None,
            delay: Duration::from_millis(2500),
        },
    );
    let both_url = files.add("/both.bin", both);
    let serials: Vec<String> = (0..6).map(|i| format!("HV{i:07}")).collect();
    for (i, s) in serials.iter().enumerate() {
        let url = if i == 1 { &slow_url } else { &plain_url };
        acs.queue(s, download("plain", url, plain.len() as u64));
    }
    let sim = Sim::start(
        dir.path(),
        "fleet",
        &[
            "fleet",
            "--acs",
            &acs.url,
            "--model",
            "tplg-ont",
            "--count",
            "6",
            "--serial-prefix",
            "HV",
            "--inform-interval",
            "1",
            "--duration",
            "60",
            "--hardware-variant-every",
            "3",
        ],
    );
    // Indexes 2 and 5 are revision B: the plain image is not for them.
    for (i, s) in serials.iter().enumerate() {
        let tc = acs.wait_tc(s, 1, &sim);
        let first = &acs.informs(s)[0].1;
        if i % 3 == 2 {
            assert_eq!(first[HW], format!("{TPLG_HW}-B"));
            assert_eq!(tc.fault.fault_code, 9018, "{s}: {tc:?}");
            assert!(
                tc.fault
                    .fault_string
                    .contains(&format!("image not for hardware {TPLG_HW}-B")),
                "{tc:?}"
            );
            acs.queue(s, download("both", &both_url, 0));
        } else {
            assert_eq!(first[HW], TPLG_HW);
            assert_eq!(tc.fault.fault_code, 0, "{s}: {tc:?}");
            let (events, params) = acs
                .informs(s)
                .into_iter()
                .find(|(e, _)| e.contains(&"7 TRANSFER COMPLETE".to_owned()))
                .unwrap();
            assert_eq!(events, ["1 BOOT", "7 TRANSFER COMPLETE", "M Download"]);
            assert_eq!(params[SW], "6.0");
        }
    }
    // The image listing both revisions installs on B.
    for s in [&serials[2], &serials[5]] {
        let tc = acs.wait_tc(s, 2, &sim);
        assert_eq!(tc.fault.fault_code, 0, "{s}: {tc:?}");
        let (_, params) = acs.informs(s).last().cloned().unwrap();
        assert_eq!(params[SW], "6.1");
    }
    // The slow fetch stalled nobody: the other devices finished before it,
    // and the slow device itself kept informing meanwhile.
    let seen = acs.seen();
    let sent = seen
        .iter()
        .find_map(|x| match x {
            Seen::Sent { serial, at } if *serial == serials[1] => Some(*at),
            _ => None,
        })
        .unwrap();
    let (_, fetched) = files.hits("/slow.bin")[0].clone();
    let periodic_meanwhile = seen.iter().any(|x| match x {
        Seen::Inform {
            serial, events, at, ..
        } => {
            *serial == serials[1]
                && events == &["2 PERIODIC"]
                && *at > sent
                && *at < fetched + Duration::from_millis(2400)
        }
        _ => false,
    });
    assert!(periodic_meanwhile, "{seen:#?}");
}

#[test]
fn https_images_are_checked_against_the_ca_file() {
    let acs = Acs::start();
    let files = Files::start_tls();
    let dir = tempfile::tempdir().unwrap();
    let url = files.add("/secure.bin", image("version=7.0", 5000));
    assert!(url.starts_with("https://127.0.0.1:"));
    acs.queue("TLS", download("tls", &url, 5000));
    acs.queue("NOCA", download("tls", &url, 5000));
    let ca = test_data("test-ca.pem");
    let tls = Sim::run(
        &acs,
        dir.path(),
        "TLS",
        &["--ca-file", ca.to_str().unwrap()],
    );
    let no_ca = Sim::run(&acs, dir.path(), "NOCA", &[]);
    let tc = acs.wait_tc("TLS", 1, &tls);
    assert_eq!(tc.fault.fault_code, 0, "{tc:?}");
    assert_eq!(acs.informs("TLS")[1].1[SW], "7.0");
    let tc = acs.wait_tc("NOCA", 1, &no_ca);
    assert_eq!(tc.fault.fault_code, 9012, "{tc:?}");
}
