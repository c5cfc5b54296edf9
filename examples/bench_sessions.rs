//! End-to-end periodic-session throughput, client and server in one
//! process on loopback: Inform → InformResponse, empty POST → 204, each
//! Inform durably stored. The same client code first drives a bare hyper
//! server that answers the same exchanges with static bodies: the ceiling
//! this machine allows, against which the ACS is reported as a ratio.
//!
//! `cargo run --release --example bench_sessions -- [concurrency] [seconds] [devices]`

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use gigafibre_acs::config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn inform(serial: u32) -> String {
    let mut params = String::new();
    for i in 0..20 {
        params.push_str(&format!(
            "<ParameterValueStruct><Name>Device.DeviceInfo.X_Param{i}</Name><Value xsi:type=\"xsd:string\">value-{i}-of-some-realistic-length-{serial}</Value></ParameterValueStruct>\n"
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="urn:dslforum-org:cwmp-1-2">
<SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">1</cwmp:ID></SOAP-ENV:Header>
<SOAP-ENV:Body><cwmp:Inform>
<DeviceId><Manufacturer>TP-Link</Manufacturer><OUI>1C61B4</OUI><ProductClass>Device2</ProductClass><SerialNumber>BENCH{serial:08}</SerialNumber></DeviceId>
<Event SOAP-ENC:arrayType="cwmp:EventStruct[1]"><EventStruct><EventCode>2 PERIODIC</EventCode><CommandKey></CommandKey></EventStruct></Event>
<MaxEnvelopes>1</MaxEnvelopes><CurrentTime>2026-11-29T12:00:00Z</CurrentTime><RetryCount>0</RetryCount>
<ParameterList SOAP-ENC:arrayType="cwmp:ParameterValueStruct[20]">
{params}</ParameterList></cwmp:Inform></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    )
}

struct Client {
    stream: TcpStream,
    buf: BytesMut,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            buf: BytesMut::with_capacity(8192),
        }
    }

    /// Sends a POST, returns (status, session cookie if set).
    async fn post(&mut self, body: &[u8], cookie: Option<&str>) -> (u16, Option<String>) {
        let mut req = format!(
            "POST / HTTP/1.1\r\nHost: acs\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(c) = cookie {
            req.push_str("Cookie: ");
            req.push_str(c);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        let mut out = req.into_bytes();
        out.extend_from_slice(body);
        self.stream.write_all(&out).await.expect("write");
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let status: u16 = head[9..12].parse().expect("status");
                let mut len = 0usize;
                let mut set_cookie = None;
                for line in head.lines().skip(1) {
                    let (k, v) = line.split_once(':').expect("header");
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

struct Result {
    sessions: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

async fn drive(addr: SocketAddr, concurrency: u32, duration: Duration, devices: u32) -> Result {
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let start = Instant::now();
    for worker in 0..concurrency {
        let stop = stop.clone();
        handles.push(tokio::spawn(async move {
            let per_worker = (devices / concurrency).max(1);
            let bodies: Vec<Vec<u8>> = (0..per_worker)
                .map(|i| inform(worker * per_worker + i).into_bytes())
                .collect();
            let mut client = Client::connect(addr).await;
            let mut lat = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let (status, cookie) = client.post(&bodies[i % bodies.len()], None).await;
                assert_eq!(status, 200);
                let (status, _) = client.post(b"", cookie.as_deref()).await;
                assert_eq!(status, 204);
                lat.push(t.elapsed().as_micros() as u64);
                i += 1;
            }
            lat
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us = Vec::new();
    for h in handles {
        latencies_us.extend(h.await.expect("worker"));
    }
    let elapsed = start.elapsed();
    latencies_us.sort_unstable();
    Result {
        sessions: latencies_us.len() as u64,
        elapsed,
        latencies_us,
    }
}

/// The ceiling: hyper answering the same two exchanges with static bodies.
async fn bare_hyper() -> SocketAddr {
    use http_body_util::Full;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let response = Arc::new(
        gigafibre_acs::session::inform_response(
            &gigafibre_acs::cwmp::Envelope::decode(inform(0).as_bytes()).expect("decode"),
        )
        .encode(),
    );
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.expect("accept");
            let response = response.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let response = response.clone();
                    async move {
                        use http_body_util::BodyExt;
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let mut r = if body.is_empty() {
                            let mut r = hyper::Response::new(Full::new(bytes::Bytes::new()));
                            *r.status_mut() = hyper::StatusCode::NO_CONTENT;
                            r
                        } else {
                            let mut r = hyper::Response::new(Full::new(bytes::Bytes::from(
                                response.as_bytes().to_vec(),
                            )));
                            r.headers_mut().insert(
                                "set-cookie",
                                hyper::header::HeaderValue::from_static(
                                    "session=0123456789abcdef0123456789abcdef; Path=/; HttpOnly",
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
    addr
}

fn report(name: &str, r: &Result, ceiling: Option<f64>) -> f64 {
    let rate = r.sessions as f64 / r.elapsed.as_secs_f64();
    let pct = |p: f64| {
        r.latencies_us[((r.latencies_us.len() as f64 * p) as usize).min(r.latencies_us.len() - 1)]
            as f64
            / 1000.0
    };
    let ratio = ceiling
        .map(|c| format!("{:.2}", rate / c))
        .unwrap_or_else(|| "1.00".into());
    println!(
        "{name:<34} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>8}",
        rate,
        pct(0.50),
        pct(0.99),
        *r.latencies_us.last().unwrap_or(&0) as f64 / 1000.0,
        ratio
    );
    rate
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let concurrency: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let devices: u32 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let duration = Duration::from_secs(seconds);
        println!("{concurrency} concurrent CPEs (keep-alive), {devices} devices, {seconds} s per run, {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        println!("{:<34} {:>10} {:>9} {:>9} {:>9} {:>8}", "server", "sessions/s", "p50 ms", "p99 ms", "max ms", "ratio");
        let ceiling_addr = bare_hyper().await;
        let ceiling = drive(ceiling_addr, concurrency, duration, devices).await;
        let ceiling_rate = report("bare hyper, static bodies", &ceiling, None);

        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().to_str().expect("utf-8 path").to_owned();
        let env = move |k: &str| match k {
            "ACS_DATA_DIR" => Some(data.clone()),
            "ACS_CWMP_LISTEN" | "ACS_API_LISTEN" => Some("127.0.0.1:0".to_owned()),
            "ACS_API_TOKEN" => Some("bench-token-0123456789".to_owned()),
            _ => None,
        };
        let (cfg, _) = config::load(None, &env).expect("config");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(gigafibre_acs::server::run(cfg, async move { let _ = stop_rx.await; }, move |b| { let _ = tx.send(b); }));
        let bound = rx.await.expect("ACS started");
        let acs = drive(bound.cwmp, concurrency, duration, devices).await;
        report("gigafibre-acs (durable, sled)", &acs, Some(ceiling_rate));
        let _ = stop_tx.send(());
        let size: u64 = walk(dir.path());
        println!("store on disk after the run: {:.1} MiB", size as f64 / (1 << 20) as f64);
    });
}

fn walk(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let m = e.metadata().ok();
                    match m {
                        Some(m) if m.is_dir() => walk(&e.path()),
                        Some(m) => m.len(),
                        None => 0,
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
