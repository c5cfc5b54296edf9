//! Test harness: starts the real `gigafibre-acs` binary on random loopback
//! ports with a temporary data dir, and talks to it over real sockets with
//! a small HTTP/1.1 client that gives the tests control over connections.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A binary of another workspace member (`cpe-sim`, `erpnext-sim`), built
/// into the same target dir by `cargo test --workspace`.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo test --workspace`",
        path.display()
    );
    path
}

/// A running erpnext-sim.
pub struct ErpSim {
    child: Child,
    pub url: String,
    pub key: String,
    pub secret: String,
}

impl ErpSim {
    /// Starts erpnext-sim on a free loopback port with this fixture (JSON).
    pub fn start(fixture: &serde_json::Value) -> ErpSim {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fixture.json");
        std::fs::write(&path, fixture.to_string()).unwrap();
        let mut child = Command::new(workspace_bin("erpnext-sim"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--api-key",
                "acs-key",
                "--api-secret",
                "acs-secret-0123",
                "--fixture",
            ])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(url.starts_with("http://"), "erpnext-sim said {line:?}");
        drop(dir);
        ErpSim {
            child,
            url,
            key: "acs-key".into(),
            secret: "acs-secret-0123".into(),
        }
    }

    /// Environment for an ACS that uses this ERPNext.
    pub fn acs_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ERPNEXT_URL", self.url.clone()),
            ("ERPNEXT_API_KEY", self.key.clone()),
            ("ERPNEXT_API_SECRET", self.secret.clone()),
        ]
    }

    /// An ACS provisioning from this ERPNext with the production defaults
    /// (provisioning and the host-table collector on, no answer cached,
    /// the SIP registrar and domain set), plus `extra`.
    pub fn start_acs(&self, extra: &[(&str, &str)]) -> Acs {
        let env = self.acs_env();
        let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(&[
            ("ACS_PROVISIONING", "on"),
            ("ACS_HOSTS_COLLECT", "on"),
            ("ACS_ERPNEXT_CACHE_TTL_S", "0"),
            ("ACS_SIP_REGISTRAR", "sip.gigafibre.ca"),
            ("ACS_SIP_DOMAIN", "gigafibre.ca"),
        ]);
        all.extend_from_slice(extra);
        Acs::start(&all)
    }

    fn addr(&self) -> SocketAddr {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap()
    }

    /// A request with the API token; returns status and JSON.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let auth = format!("token {}:{}", self.key, self.secret);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let r = HttpConn::connect(self.addr()).request(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        );
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
        )
    }

    /// One Service Equipment document.
    pub fn equipment(&self, name: &str) -> serde_json::Value {
        let (status, doc) = self.call(
            "GET",
            &format!("/api/resource/Service%20Equipment/{}", encode_segment(name)),
            None,
        );
        assert_eq!(status, 200, "{doc}");
        doc["data"].clone()
    }

    /// The admin API (fault injection).
    pub fn admin(&self, path: &str, body: &serde_json::Value) -> u16 {
        HttpConn::connect(self.addr())
            .request(
                "POST",
                path,
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            )
            .status
    }
}

impl Drop for ErpSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const TOKEN: &str = "test-token-0123456789abcdef";

/// A running ACS process.
pub struct Acs {
    child: Option<Child>,
    pub cwmp: SocketAddr,
    pub api: SocketAddr,
    /// The GenieACS-compatible NBI, when started with `ACS_NBI_LISTEN`.
    pub nbi: Option<SocketAddr>,
    pub data_dir: PathBuf,
    log: Arc<Mutex<String>>,
    _tmp: Option<tempfile::TempDir>,
}

impl Acs {
    /// Starts an ACS with a fresh data dir and these extra environment
    /// variables.
    pub fn start(env: &[(&str, &str)]) -> Acs {
        let tmp = tempfile::tempdir().unwrap();
        let mut acs = Acs::start_in(tmp.path(), env);
        acs._tmp = Some(tmp);
        acs
    }

    /// Starts an ACS on an existing data dir (restart tests).
    pub fn start_in(data_dir: &Path, env: &[(&str, &str)]) -> Acs {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gigafibre-acs"));
        cmd.arg("serve")
            .env_clear()
            .env("ACS_DATA_DIR", data_dir)
            .env("ACS_CWMP_LISTEN", "127.0.0.1:0")
            .env("ACS_API_LISTEN", "127.0.0.1:0")
            .env("ACS_API_TOKEN", TOKEN)
            // The CWMP core tests script every exchange; provisioning (which
            // adds its own RPCs) is switched on by the tests about it.
            .env("ACS_PROVISIONING", "off")
            .env("ACS_HOSTS_COLLECT", "off")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start gigafibre-acs");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut cwmp = None;
            let mut api = None;
            // Logged before the CWMP and API lines when the NBI is on.
            let mut nbi = None;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let addr_after = |marker: &str| -> Option<SocketAddr> {
                    let rest = &line[line.find(marker)? + marker.len()..];
                    let rest = rest
                        .strip_prefix("http://")
                        .or_else(|| rest.strip_prefix("https://"))?;
                    rest[..rest.find('/')?].parse().ok()
                };
                if let Some(a) = addr_after("CWMP listener ready at ") {
                    cwmp = Some(a);
                }
                if let Some(a) = addr_after("API listener ready at ") {
                    api = Some(a);
                }
                if let Some(a) = addr_after("NBI listener ready at ") {
                    nbi = Some(a);
                }
                log2.lock().unwrap().push_str(&line);
                log2.lock().unwrap().push('\n');
                if let (Some(c), Some(a)) = (cwmp, api) {
                    let _ = tx.send((c, a, nbi));
                    cwmp = None;
                }
            }
        });
        let (cwmp, api, nbi) = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addrs) => addrs,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "gigafibre-acs did not become ready:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Acs {
            child: Some(child),
            cwmp,
            api,
            nbi,
            data_dir: data_dir.to_path_buf(),
            log,
            _tmp: None,
        }
    }

    pub fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Process id of the running ACS (for `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "ACS did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Keeps the temporary data dir alive past this process (for restarts).
    pub fn take_tempdir(&mut self) -> tempfile::TempDir {
        self._tmp.take().unwrap()
    }

    pub fn cpe(&self) -> Cpe {
        Cpe::new(self.cwmp)
    }

    /// Opens a session of the CPE `serial` on a new connection: an Inform
    /// with `events` (its cwmp:ID is `n`), answered.
    pub fn open_session(&self, serial: &str, n: usize, events: &[&str]) -> Cpe {
        let mut cpe = self.cpe();
        let r = cpe.post_str(&inform_xml(
            "soapenv",
            "1-0",
            &n.to_string(),
            serial,
            events,
        ));
        assert_eq!(r.status, 200, "{}", r.text());
        cpe
    }

    /// A whole session with nothing asked: [`Acs::open_session`], then the
    /// empty POST that ends it.
    pub fn inform_session(&self, serial: &str, n: usize, events: &[&str]) {
        let mut cpe = self.open_session(serial, n, events);
        assert_eq!(cpe.empty().status, 204);
    }

    /// GET on the API with the test token; returns status and JSON.
    pub fn api_get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = HttpConn::connect(self.api).request(
            "GET",
            path,
            &[("Authorization", &format!("Bearer {TOKEN}"))],
            b"",
        );
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
        )
    }

    pub fn api_post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let r = HttpConn::connect(self.api).request(
            "POST",
            path,
            &[
                ("Authorization", &format!("Bearer {TOKEN}")),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        );
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Queues an RPC for a device through the API; returns the task id.
    pub fn queue(&self, device_id: &str, rpc: serde_json::Value) -> u64 {
        let (status, body) = self.api_post(
            &format!("/api/v1/devices/{}/tasks", encode_segment(device_id)),
            &rpc,
        );
        assert_eq!(status, 201, "queue task: {body}");
        body["task"]["id"].as_u64().unwrap()
    }
}

impl Drop for Acs {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Percent-encodes a path segment (device ids contain `%`).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct HttpConn {
    reader: BufReader<TcpStream>,
}

impl HttpConn {
    pub fn connect(addr: SocketAddr) -> HttpConn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        HttpConn {
            reader: BufReader::new(s),
        }
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let head = request_head(method, path, headers, body.len(), false);
        let s = self.reader.get_mut();
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        self.read_response()
    }

    /// A request sent the way curl sends a large body: headers with
    /// `Expect: 100-continue`, the body only once the server asks for it.
    /// A server refusing the request on its headers answers at once and
    /// the body is never written into a connection it is closing (writing
    /// it anyway races the close: broken pipe or reset).
    pub fn request_expecting_continue(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let head = request_head(method, path, headers, body.len(), true);
        self.reader.get_mut().write_all(head.as_bytes()).unwrap();
        let first = self.read_response();
        if first.status != 100 {
            return first;
        }
        self.reader.get_mut().write_all(body).unwrap();
        self.read_response()
    }

    pub fn read_response(&mut self) -> HttpResponse {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 "), "bad status line {line:?}");
        let status: u16 = line[9..12].parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).unwrap();
        HttpResponse {
            status,
            headers,
            body,
        }
    }

    /// True once the server has closed the connection.
    pub fn is_closed_by_peer(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.get_mut().read(&mut b), Ok(0))
    }
}

/// A request's head; with `expect_continue`, the body waits for the
/// server's `100 Continue`.
fn request_head(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body_len: usize,
    expect_continue: bool,
) -> String {
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {body_len}\r\n");
    if expect_continue {
        head.push_str("Expect: 100-continue\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// A minimal CPE: one connection, returns the session cookie it was given.
pub struct Cpe {
    pub addr: SocketAddr,
    pub conn: HttpConn,
    pub cookie: Option<String>,
    pub send_cookie: bool,
    pub extra_headers: Vec<(String, String)>,
}

impl Cpe {
    pub fn new(addr: SocketAddr) -> Cpe {
        Cpe {
            addr,
            conn: HttpConn::connect(addr),
            cookie: None,
            send_cookie: true,
            extra_headers: Vec::new(),
        }
    }

    /// Opens a new TCP connection (keeping the cookie).
    pub fn reconnect(&mut self) {
        self.conn = HttpConn::connect(self.addr);
    }

    pub fn post(&mut self, body: &[u8]) -> HttpResponse {
        let mut headers: Vec<(String, String)> = self.extra_headers.clone();
        headers.push(("Content-Type".into(), "text/xml; charset=utf-8".into()));
        headers.push(("SOAPAction".into(), String::new()));
        if self.send_cookie {
            if let Some(c) = &self.cookie {
                headers.push(("Cookie".into(), c.clone()));
            }
        }
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = self.conn.request("POST", "/", &refs, body);
        if let Some(set) = r.header("set-cookie") {
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        r
    }

    pub fn post_str(&mut self, body: &str) -> HttpResponse {
        self.post(body.as_bytes())
    }

    pub fn empty(&mut self) -> HttpResponse {
        self.post(b"")
    }
}

/// An Inform envelope; `prefix` is the SOAP envelope prefix.
pub fn inform_xml(prefix: &str, cwmp: &str, id: &str, serial: &str, events: &[&str]) -> String {
    let events_xml: String = events
        .iter()
        .map(|e| {
            format!(
                "<EventStruct><EventCode>{e}</EventCode><CommandKey></CommandKey></EventStruct>"
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<{p}:Envelope xmlns:{p}="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="urn:dslforum-org:cwmp-{cwmp}">
<{p}:Header><cwmp:ID {p}:mustUnderstand="1">{id}</cwmp:ID></{p}:Header>
<{p}:Body><cwmp:Inform>
<DeviceId><Manufacturer>TP-Link</Manufacturer><OUI>1C61B4</OUI><ProductClass>Device2</ProductClass><SerialNumber>{serial}</SerialNumber></DeviceId>
<Event>{events_xml}</Event><MaxEnvelopes>1</MaxEnvelopes><CurrentTime>2026-11-29T12:00:00Z</CurrentTime><RetryCount>0</RetryCount>
<ParameterList>
<ParameterValueStruct><Name>Device.DeviceInfo.SoftwareVersion</Name><Value xsi:type="xsd:string">1.1.0</Value></ParameterValueStruct>
<ParameterValueStruct><Name>Device.ManagementServer.ConnectionRequestURL</Name><Value xsi:type="xsd:string">http://127.0.0.1:30005/cr</Value></ParameterValueStruct>
</ParameterList></cwmp:Inform></{p}:Body></{p}:Envelope>"#,
        p = prefix
    )
}

/// The device id `inform_xml` produces.
pub fn device_id(serial: &str) -> String {
    format!("1C61B4-Device2-{serial}")
}

/// A CPE response envelope in cwmp-1-0 with the given ID and body XML.
pub fn response_xml(id: &str, body: &str) -> String {
    format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soapenv:Header><cwmp:ID soapenv:mustUnderstand="1">{id}</cwmp:ID></soapenv:Header><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
}

/// Text between `<tag>` and `</tag>` (first occurrence, prefix-agnostic on
/// the closing tag name).
pub fn between<'a>(xml: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = xml.find(open)? + open.len();
    let end = xml[start..].find(close)? + start;
    Some(&xml[start..end])
}

/// Polls `f` every 50 ms until it gives a value; panics naming `what`
/// after `secs` seconds.
pub fn wait_until<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A long-running `cpe-sim run` process (one device, with its
/// connection-request listener and its state in a temporary directory),
/// stopped on drop.
pub struct SimDevice {
    child: Child,
    state: tempfile::TempDir,
    serial: String,
    /// How it was started (a restart starts it the same way).
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl SimDevice {
    pub fn start(acs: &Acs, model: &str, serial: &str, extra: &[&str]) -> SimDevice {
        SimDevice::start_with_env(acs, model, serial, extra, &[])
    }

    pub fn start_with_env(
        acs: &Acs,
        model: &str,
        serial: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> SimDevice {
        let state = tempfile::tempdir().unwrap();
        let url = format!("http://{}/", acs.cwmp);
        let mut args: Vec<String> = [
            "run",
            "--acs",
            &url,
            "--model",
            model,
            "--serial",
            serial,
            "--state-dir",
            state.path().to_str().unwrap(),
            "--periodic-interval",
            "0",
            "--boot-delay-ms",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let child = spawn_sim(&args, &env);
        SimDevice {
            child,
            state,
            serial: serial.to_owned(),
            args,
            env,
        }
    }

    /// Stops the device, lets `edit` change its saved state (the JSON of
    /// its state file), and starts it again from that state.
    pub fn restart_with(&mut self, edit: impl FnOnce(&mut serde_json::Value)) {
        let path = self.state.path().join(format!("{}.json", self.serial));
        // The device saves its state at the end of a session: the ACS may
        // have read what a test waits for before that.
        wait_until("the simulated device's saved state", 20, || {
            path.exists().then_some(())
        });
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        edit(&mut state);
        std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
        self.child = spawn_sim(&self.args, &self.env);
    }

    /// The simulated device's own copy of a parameter.
    pub fn value(&self, path: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.state.path().join(format!("{}.json", self.serial)))
            .ok()?;
        let state: serde_json::Value = serde_json::from_str(&text).ok()?;
        state["model"]["params"][path]["value"]
            .as_str()
            .map(str::to_owned)
    }
}

fn spawn_sim(args: &[String], env: &[(String, String)]) -> Child {
    Command::new(workspace_bin("cpe-sim"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

impl Drop for SimDevice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `gigafibre-acs user ARGS` on a data dir, the password on stdin; the
/// exit code and what it printed.
pub fn user_cmd(data_dir: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gigafibre-acs"))
        .arg("user")
        .args(args)
        .env_clear()
        .env("ACS_DATA_DIR", data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `gigafibre-acs user add NAME --role ROLE` on a data dir (ACS stopped).
pub fn add_user(data_dir: &Path, name: &str, role: &str, password: &str) {
    let (code, _, err) = user_cmd(
        data_dir,
        &["add", name, "--role", role, "--password-stdin"],
        &format!("{password}\n"),
    );
    assert_eq!(code, 0, "user add {name}: {err}");
}

/// The id of the device with this serial, once the ACS has read its
/// optical power.
pub fn wait_for_optical_reading(acs: &Acs, serial: &str) -> String {
    wait_until("the ONT's optical power read", 40, || {
        let (_, list) = acs.api_get(&format!("/api/v1/devices?q={serial}"));
        let id = list["devices"].as_array()?.first()?["id"]
            .as_str()?
            .to_owned();
        let (_, d) = acs.api_get(&format!("/api/v1/devices/{}", encode_segment(&id)));
        d["diagnostics"]["optical"]["rx_dbm"].as_f64().map(|_| id)
    })
}

/// erpnext-sim's data for one Deco (`1c-61-b4-aa-00-11`, EQ-00001 of Jean
/// Tremblay) with this WiFi passphrase.
pub fn one_deco_fixture(passphrase: &str) -> serde_json::Value {
    serde_json::json!({
        "Customer": [{"name": "Jean Tremblay", "customer_name": "Jean Tremblay", "customer_type": "Individual", "customer_group": "Résidentiel", "territory": "Québec"}],
        "Service Location": [{"name": "LOC-00001", "customer": "Jean Tremblay", "address_line": "1 rue Principale", "city": "Salaberry-de-Valleyfield", "province": "QC", "postal_code": "J6S 1A1", "status": "Active"}],
        "Service Equipment": [
            {"name": "EQ-00001", "customer": "Jean Tremblay", "service_location": "LOC-00001", "equipment_type": "Routeur", "brand": "TP-Link", "model": "Deco X20",
             "status": "En inventaire", "mac_address": "1c-61-b4-aa-00-11", "custom_wifi_ssid": "Gigafibre-Tremblay", "custom_wifi_password": passphrase, "custom_wifi_enabled": 1},
        ],
    })
}

/// A real PostgreSQL the tests start themselves (shared with the store's
/// unit tests).
#[path = "../../src/store/pg_test.rs"]
pub mod postgres;

/// A TCP load balancer on loopback, as HAProxy in `mode tcp` would be:
/// each new connection goes to the next backend in turn; a backend that
/// refuses the connection is skipped (HAProxy's `redispatch`).
pub struct Balancer {
    pub addr: SocketAddr,
    /// Connections sent to each backend so far.
    pub counts: Arc<Vec<std::sync::atomic::AtomicU64>>,
}

impl Balancer {
    pub fn start(backends: Vec<SocketAddr>) -> Balancer {
        use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let counts: Arc<Vec<AtomicU64>> =
            Arc::new(backends.iter().map(|_| AtomicU64::new(0)).collect());
        let counts2 = counts.clone();
        let next = AtomicUsize::new(0);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let start = next.fetch_add(1, Ordering::Relaxed);
                let server = (0..backends.len()).find_map(|i| {
                    let b = (start + i) % backends.len();
                    let s =
                        TcpStream::connect_timeout(&backends[b], Duration::from_secs(1)).ok()?;
                    counts2[b].fetch_add(1, Ordering::Relaxed);
                    Some(s)
                });
                let Some(server) = server else { continue };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Balancer { addr, counts }
    }

    pub fn count(&self, backend: usize) -> u64 {
        self.counts[backend].load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Copies `from` to `to` on a thread until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Write);
        let _ = from.shutdown(std::net::Shutdown::Read);
    });
}

/// The API's event stream (`GET /api/v1/events`), collected on a thread:
/// (type, event JSON) in arrival order.
pub struct EventStream {
    events: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl EventStream {
    /// Subscribes and waits until the stream is open.
    pub fn open(api: SocketAddr) -> EventStream {
        let mut conn = TcpStream::connect(api).unwrap();
        write!(
            conn,
            "GET /api/v1/events HTTP/1.1\r\nHost: acs\r\nAuthorization: Bearer {TOKEN}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(conn);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        let mut content_type = String::new();
        while line != "\r\n" {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line.to_ascii_lowercase().starts_with("content-type:") {
                content_type = line.clone();
            }
        }
        assert!(content_type.contains("text/event-stream"), "{content_type}");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            let mut kind = String::new();
            let mut raw = Vec::new();
            let mut buf = [0u8; 8192];
            // Chunked transfer: split on lines, ignoring chunk sizes.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
                while let Some(pos) = raw.iter().position(|b| *b == b'\n') {
                    let l: Vec<u8> = raw.drain(..=pos).collect();
                    let l = String::from_utf8_lossy(&l).trim_end().to_owned();
                    if let Some(e) = l.strip_prefix("event: ") {
                        kind = e.to_owned();
                    } else if let Some(d) = l.strip_prefix("data: ") {
                        if let Ok(v) = serde_json::from_str(d) {
                            sink.lock().unwrap().push((kind.clone(), v));
                        }
                    }
                }
            }
        });
        EventStream { events }
    }

    pub fn events(&self) -> Vec<(String, serde_json::Value)> {
        self.events.lock().unwrap().clone()
    }

    /// Device ids of the events of one type, in order (repeats kept).
    pub fn devices(&self, kind: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|(k, _)| k == kind)
            .filter_map(|(_, v)| v["device_id"].as_str().map(str::to_owned))
            .collect()
    }
}
