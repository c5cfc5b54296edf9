//! Downloads as a real CPE does them: the file is fetched over HTTP(S)
//! (with the Download's Username/Password), streamed through SHA-256 and
//! counted, never kept; then checked against FileSize and the expected
//! SHA-256, and a firmware image against its header (what version it is,
//! which boards it is for). The verdict goes back to the device loop, which
//! reboots, reports and so on ([`crate::device::Device::finish_download`]).
//!
//! A firmware image starts with one header line:
//!
//! ```text
//! CPESIM-FIRMWARE version=2.0.0_build20261201 hardware="EX220 v1.20 00000000" behaviour=old-version
//! ```
//!
//! space-separated `key=value` pairs (a value with spaces in double quotes;
//! `hardware` is a comma-separated list): `version` (required) is the
//! SoftwareVersion the device reports once it runs the image, `hardware`
//! the HardwareVersions it may be installed on (absent: any), `behaviour`
//! how the device behaves after installing it ([`Behaviour`]).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use gigafibre_acs::cwmp::format_datetime;
use gigafibre_acs::cwmp::rpc::{Password, TransferFault};
use http::{Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// First line of a firmware image.
pub const HEADER_MAGIC: &str = "CPESIM-FIRMWARE";
/// Bytes of the file kept to read its header.
const HEAD_BYTES: usize = 4096;
/// Largest read buffer of a download's connection (hyper's default is 400
/// KiB; the headers of a file server fit in this).
const READ_BUFFER: usize = 32 * 1024;
/// Redirects followed at most.
const MAX_REDIRECTS: u32 = 5;

/// What a device does after installing a firmware image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Reboots into the new version and reports success.
    Normal,
    /// Reboots over and over (a `1 BOOT` Inform every boot-loop period),
    /// on the old version, never reporting the transfer.
    BootLoop,
    /// Reboots, reports success, but still runs the old version.
    OldVersion,
    /// Never heard from again: no Inform, no connection-request answer.
    Vanish,
    /// Refuses the image: TransferComplete 9010, no reboot.
    Fail9010,
}

impl FromStr for Behaviour {
    type Err = String;

    fn from_str(s: &str) -> Result<Behaviour, String> {
        Ok(match s {
            "normal" => Behaviour::Normal,
            "boot-loop" => Behaviour::BootLoop,
            "old-version" => Behaviour::OldVersion,
            "vanish" => Behaviour::Vanish,
            "fail-9010" => Behaviour::Fail9010,
            other => {
                return Err(format!(
                    "`{other}` is not a behaviour (normal, boot-loop, old-version, vanish, fail-9010)"
                ));
            }
        })
    }
}

/// How this simulator downloads (flags, shared by every device).
#[derive(Clone, Debug)]
pub struct DownloadConfig {
    /// Expected SHA-256 of every downloaded file (`--download-sha256`).
    pub sha256: Option<[u8; 32]>,
    /// Overrides the image's `behaviour=` (`--download-behaviour`).
    pub behaviour: Option<Behaviour>,
    /// CAs trusted for `https://` URLs (`--ca-file`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// To connect, and between two reads of the body.
    pub timeout: Duration,
    /// Time between two boots of a boot-looping device.
    pub boot_loop_period: Duration,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        DownloadConfig {
            sha256: None,
            behaviour: None,
            tls: None,
            timeout: Duration::from_secs(30),
            boot_loop_period: Duration::from_secs(5),
        }
    }
}

/// Parses `--download-sha256` (64 hex digits).
pub fn parse_sha256(hex: &str) -> Result<[u8; 32], String> {
    let hex = hex.trim();
    let mut out = [0u8; 32];
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(format!("`{hex}` is not a SHA-256 (64 hex digits)"));
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16)
            .map_err(|_| format!("`{hex}` is not a SHA-256 (64 hex digits)"))?;
    }
    Ok(out)
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// A transfer the ACS asked for (Download or Upload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub download: bool,
    pub command_key: String,
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: Password,
    /// Download: the size the ACS announced (0: unknown).
    pub file_size: u64,
    pub delay_s: u32,
}

impl Transfer {
    /// A `1 Firmware Upgrade Image` download.
    pub fn is_firmware(&self) -> bool {
        self.download && self.file_type.starts_with("1 ")
    }
}

/// What became of a download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// TransferComplete with this fault, nothing installed.
    Failed(TransferFault),
    /// A file that is not firmware, fetched and checked.
    Stored,
    /// A firmware image to install.
    Firmware {
        version: String,
        behaviour: Behaviour,
    },
}

/// A finished download, for the device loop.
#[derive(Debug)]
pub struct Finished {
    pub transfer: Transfer,
    /// When the fetch started (after DelaySeconds).
    pub start_time: String,
    pub verdict: Verdict,
}

fn fault(code: u32, text: String) -> TransferFault {
    TransferFault {
        fault_code: code,
        fault_string: text,
    }
}

/// Fetches and checks a download in its own task (so that a slow server
/// delays no one else); the result arrives on `done`.
pub fn spawn(
    transfer: Transfer,
    hardware: String,
    config: Arc<DownloadConfig>,
    done: mpsc::UnboundedSender<Finished>,
) {
    tokio::spawn(async move {
        let start_time = format_datetime(SystemTime::now());
        let verdict = download(&transfer, &hardware, &config).await;
        tracing::info!(url = %transfer.url, command_key = %transfer.command_key, ?verdict, "download finished");
        let _ = done.send(Finished {
            transfer,
            start_time,
            verdict,
        });
    });
}

/// Fetches `t.url` and judges what came: size, SHA-256, and for a
/// firmware image its header, against this device's `hardware`.
pub async fn download(t: &Transfer, hardware: &str, config: &DownloadConfig) -> Verdict {
    let fetched = match fetch(t, config).await {
        Ok(f) => f,
        Err(f) => return Verdict::Failed(f),
    };
    judge(t, &fetched, hardware, config)
}

/// What was received, without the file itself.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub len: u64,
    pub sha256: [u8; 32],
    /// The first bytes (the header of a firmware image).
    pub head: Vec<u8>,
}

/// The checks a CPE makes once the file is in.
pub fn judge(t: &Transfer, f: &Fetched, hardware: &str, config: &DownloadConfig) -> Verdict {
    if t.file_size > 0 && f.len != t.file_size {
        return Verdict::Failed(fault(
            9017,
            format!(
                "Download failure: unable to complete download: received {} bytes, FileSize is {}",
                f.len, t.file_size
            ),
        ));
    }
    if let Some(expected) = config.sha256 {
        if expected != f.sha256 {
            return Verdict::Failed(fault(
                9018,
                format!(
                    "File corrupted: SHA-256 {} is not the expected {}",
                    to_hex(&f.sha256),
                    to_hex(&expected)
                ),
            ));
        }
    }
    if !t.is_firmware() {
        return Verdict::Stored;
    }
    let header = match parse_header(&f.head) {
        Ok(h) => h,
        Err(e) => return Verdict::Failed(fault(9018, format!("File corrupted: {e}"))),
    };
    if !header.hardware.is_empty() && !header.hardware.iter().any(|h| h == hardware) {
        return Verdict::Failed(fault(
            9018,
            format!("File corrupted: image not for hardware {hardware}"),
        ));
    }
    let behaviour = config
        .behaviour
        .or(header.behaviour)
        .unwrap_or(Behaviour::Normal);
    if behaviour == Behaviour::Fail9010 {
        return Verdict::Failed(fault(9010, "Download failure".into()));
    }
    Verdict::Firmware {
        version: header.version,
        behaviour,
    }
}

/// A firmware image's header line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: String,
    pub hardware: Vec<String>,
    pub behaviour: Option<Behaviour>,
}

/// Reads the header line at the start of an image.
pub fn parse_header(head: &[u8]) -> Result<Header, String> {
    let not_firmware = || "not a firmware image".to_owned();
    let end = head
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(not_firmware)?;
    let line = std::str::from_utf8(&head[..end]).map_err(|_| not_firmware())?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let rest = line
        .strip_prefix(HEADER_MAGIC)
        .filter(|r| r.is_empty() || r.starts_with(' '))
        .ok_or_else(not_firmware)?;
    let mut version = None;
    let mut hardware = Vec::new();
    let mut behaviour = None;
    for (key, value) in header_pairs(rest)? {
        match key.as_str() {
            "version" => version = Some(value),
            "hardware" => {
                hardware = value
                    .split(',')
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty())
                    .collect();
            }
            "behaviour" | "behavior" => behaviour = Some(value.parse()?),
            // Unknown directives are ignored, as newer images may have more.
            _ => {}
        }
    }
    let version = version
        .filter(|v| !v.is_empty())
        .ok_or_else(|| "firmware header without version=".to_owned())?;
    Ok(Header {
        version,
        hardware,
        behaviour,
    })
}

/// `k=v k="v with spaces"` pairs.
fn header_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("bad firmware header near `{rest}`"))?;
        let key = rest[..eq].to_owned();
        if key.is_empty() || key.contains(' ') {
            return Err(format!("bad firmware header near `{rest}`"));
        }
        rest = &rest[eq + 1..];
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let end = q
                .find('"')
                .ok_or_else(|| format!("unterminated quote in firmware header: `{s}`"))?;
            value = q[..end].to_owned();
            rest = &q[end + 1..];
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            value = rest[..end].to_owned();
            rest = &rest[end..];
        }
        rest = rest.trim_start();
        out.push((key, value));
    }
    Ok(out)
}

/// Fetches the file, following redirects and answering one 401 with the
/// Download's credentials (Digest if the server offers it, else Basic).
pub async fn fetch(t: &Transfer, config: &DownloadConfig) -> Result<Fetched, TransferFault> {
    let unsupported = || fault(9013, "Unsupported protocol for file transfer".into());
    let mut uri: Uri = t.url.parse().map_err(|_| {
        if t.url.starts_with("http://") || t.url.starts_with("https://") {
            fault(
                9016,
                format!(
                    "Download failure: unable to access file: `{}` is not a URL",
                    t.url
                ),
            )
        } else {
            unsupported()
        }
    })?;
    let origin = uri.authority().map(|a| a.as_str().to_owned());
    let mut authorization: Option<String> = None;
    let mut tried_auth = false;
    let mut redirects = 0;
    loop {
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => return Err(unsupported()),
        }
        // Credentials go to the server the ACS named, not to a redirect's.
        let same_origin = uri.authority().map(|a| a.as_str().to_owned()) == origin;
        let auth = authorization.as_deref().filter(|_| same_origin);
        let resp = request(&uri, auth, config).await?;
        let status = resp.status();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match location {
                Some(l) if redirects < MAX_REDIRECTS => {
                    redirects += 1;
                    uri = resolve(&uri, &l).ok_or_else(|| {
                        fault(
                            9016,
                            format!(
                                "Download failure: unable to access file: bad redirect to `{l}`"
                            ),
                        )
                    })?;
                    continue;
                }
                _ => {
                    return Err(fault(
                        9016,
                        format!("Download failure: unable to access file: HTTP {status}"),
                    ));
                }
            }
        }
        if status == StatusCode::UNAUTHORIZED && !tried_auth && !t.username.is_empty() {
            tried_auth = true;
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            let digest = resp
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|h| {
                    crate::http::answer_digest(h, &t.username, &t.password.0, "GET", path)
                });
            authorization = Some(digest.unwrap_or_else(|| {
                format!(
                    "Basic {}",
                    STANDARD.encode(format!("{}:{}", t.username, t.password.0))
                )
            }));
            continue;
        }
        if !status.is_success() {
            return Err(fault(
                9016,
                format!("Download failure: unable to access file: HTTP {status}"),
            ));
        }
        return read_body(resp.into_body(), t.file_size, config.timeout).await;
    }
}

/// A redirect's Location, made absolute against `base`.
fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    if location.contains("://") {
        return location.parse().ok();
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    let path = if location.starts_with('/') {
        location.to_owned()
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{location}")
    };
    format!("{scheme}://{authority}{path}").parse().ok()
}

/// One GET on a new connection.
async fn request(
    uri: &Uri,
    authorization: Option<&str>,
    config: &DownloadConfig,
) -> Result<Response<Incoming>, TransferFault> {
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let unreachable = |reason: String| {
        fault(
            9015,
            format!("Download failure: unable to contact file server {host}:{port}: {reason}"),
        )
    };
    if host.is_empty() {
        return Err(unreachable("no host in the URL".into()));
    }
    let stream = tokio::time::timeout(config.timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| unreachable(format!("no answer within {:?}", config.timeout)))?
        .map_err(|e| unreachable(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let authority = uri.authority().map_or(host, |a| a.as_str());
    let mut builder = Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(header::HOST, authority)
        .header(header::USER_AGENT, "cpe-sim")
        .header(header::CONNECTION, "close");
    if let Some(a) = authorization {
        builder = builder.header(header::AUTHORIZATION, a);
    }
    let req = builder
        .body(Empty::<Bytes>::new())
        .map_err(|e| unreachable(e.to_string()))?;
    let answer = if https {
        let Some(tls) = &config.tls else {
            return Err(fault(
                9012,
                format!(
                    "File transfer server authentication failure: no CA to check {host} (--ca-file)"
                ),
            ));
        };
        let name = rustls_pki_types::ServerName::try_from(host.to_owned()).map_err(|e| {
            fault(
                9012,
                format!("File transfer server authentication failure: {e}"),
            )
        })?;
        let tls_stream = tokio::time::timeout(
            config.timeout,
            tokio_rustls::TlsConnector::from(tls.clone()).connect(name, stream),
        )
        .await
        .map_err(|_| unreachable(format!("no TLS answer within {:?}", config.timeout)))?
        .map_err(|e| {
            fault(
                9012,
                format!("File transfer server authentication failure: {e}"),
            )
        })?;
        tokio::time::timeout(config.timeout, send(tls_stream, req)).await
    } else {
        tokio::time::timeout(config.timeout, send(stream, req)).await
    };
    answer
        .map_err(|_| unreachable(format!("no HTTP answer within {:?}", config.timeout)))?
        .map_err(|e| unreachable(e.to_string()))
}

async fn send<IO>(io: IO, req: Request<Empty<Bytes>>) -> Result<Response<Incoming>, hyper::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // A small read buffer: hundreds of devices fetch at once, and the body
    // is hashed a chunk at a time anyway.
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(READ_BUFFER)
        .handshake(TokioIo::new(io))
        .await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(req).await
}

/// Streams the body through SHA-256, keeping only its first bytes.
async fn read_body(
    mut body: Incoming,
    file_size: u64,
    idle: Duration,
) -> Result<Fetched, TransferFault> {
    let incomplete = |reason: String| {
        fault(
            9017,
            format!("Download failure: unable to complete download: {reason}"),
        )
    };
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut len = 0u64;
    let mut head = Vec::new();
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(incomplete(format!("nothing received for {idle:?}"))),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(incomplete(format!("after {len} bytes: {e}"))),
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        hash.update(&data);
        len += data.len() as u64;
        if head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - head.len()).min(data.len());
            head.extend_from_slice(&data[..take]);
        }
        if file_size > 0 && len > file_size {
            return Err(incomplete(format!(
                "more than FileSize {file_size} bytes sent"
            )));
        }
    }
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(hash.finish().as_ref());
    Ok(Fetched { len, sha256, head })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn headers() {
        let h = parse_header(b"CPESIM-FIRMWARE version=2.0.0_build20261201\nrest").unwrap();
        assert_eq!(h.version, "2.0.0_build20261201");
        assert!(h.hardware.is_empty() && h.behaviour.is_none());
        let h = parse_header(
            b"CPESIM-FIRMWARE version=\"1.0 Build 5\" hardware=\"EX220 v1.20 00000000,EX220 v1.20 00000000-B\" behaviour=boot-loop\r\n",
        )
        .unwrap();
        assert_eq!(h.version, "1.0 Build 5");
        assert_eq!(
            h.hardware,
            ["EX220 v1.20 00000000", "EX220 v1.20 00000000-B"]
        );
        assert_eq!(h.behaviour, Some(Behaviour::BootLoop));
        let h = parse_header(b"CPESIM-FIRMWARE hardware=A,B version=3 x=y\n").unwrap();
        assert_eq!((h.version.as_str(), h.hardware.len()), ("3", 2));
        for bad in [
            &b"\x7fELF version=1\n"[..],
            b"CPESIM-FIRMWARE version=1",
            b"CPESIM-FIRMWAREX version=1\n",
            b"CPESIM-FIRMWARE hardware=A\n",
            b"CPESIM-FIRMWARE version=1 behaviour=explode\n",
            b"CPESIM-FIRMWARE version=\"1\n",
        ] {
            assert!(
                parse_header(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn transfer(file_size: u64) -> Transfer {
        Transfer {
            download: true,
            command_key: "k".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://x/".into(),
            username: String::new(),
            password: Password::default(),
            file_size,
            delay_s: 0,
        }
    }

    fn fetched(content: &[u8]) -> Fetched {
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, content).as_ref());
        Fetched {
            len: content.len() as u64,
            sha256,
            head: content.to_vec(),
        }
    }

    #[test]
    fn verdicts() {
        let image = b"CPESIM-FIRMWARE version=2 hardware=HW1,HW2\nxxxx";
        let cfg = DownloadConfig::default();
        let code = |v: Verdict| match v {
            Verdict::Failed(f) => f.fault_code,
            _ => 0,
        };
        assert_eq!(
            judge(&transfer(0), &fetched(image), "HW2", &cfg),
            Verdict::Firmware {
                version: "2".into(),
                behaviour: Behaviour::Normal
            }
        );
        let n = image.len() as u64;
        assert_eq!(code(judge(&transfer(n), &fetched(image), "HW1", &cfg)), 0);
        assert_eq!(
            code(judge(&transfer(n + 1), &fetched(image), "HW1", &cfg)),
            9017
        );
        assert_eq!(
            code(judge(&transfer(0), &fetched(image), "HW3", &cfg)),
            9018
        );
        assert_eq!(
            code(judge(&transfer(0), &fetched(b"junk\n"), "HW1", &cfg)),
            9018
        );
        let mut other = transfer(0);
        other.file_type = "3 Vendor Configuration File".into();
        assert_eq!(
            judge(&other, &fetched(b"junk\n"), "HW1", &cfg),
            Verdict::Stored
        );
        let sha = DownloadConfig {
            sha256: Some(fetched(image).sha256),
            behaviour: Some(Behaviour::Fail9010),
            ..DownloadConfig::default()
        };
        assert_eq!(
            code(judge(&transfer(0), &fetched(image), "HW1", &sha)),
            9010
        );
        assert_eq!(
            code(judge(
                &transfer(0),
                &fetched(b"CPESIM-FIRMWARE version=2\n"),
                "HW1",
                &sha
            )),
            9018
        );
        assert_eq!(
            parse_sha256(&"ab".repeat(32)).unwrap(),
            [0xab; 32],
            "hex parsed"
        );
        assert!(parse_sha256("abc").is_err());
    }

    #[test]
    fn redirects_resolve() {
        let base: Uri = "http://h:8/a/b/c.bin?x=1".parse().unwrap();
        assert_eq!(
            resolve(&base, "/z").unwrap().to_string(),
            "http://h:8/z".to_owned()
        );
        assert_eq!(
            resolve(&base, "d.bin").unwrap().to_string(),
            "http://h:8/a/b/d.bin"
        );
        assert_eq!(
            resolve(&base, "https://cdn/e").unwrap().to_string(),
            "https://cdn/e"
        );
    }
}
