//! The ERPNext client against the real `erpnext-sim` binary (built by
//! `cargo test --workspace`) serving the demo fixture: lookups in every
//! stored spelling, resolution, passwords, the write-back, credentials,
//! and faults injected through the simulator's admin API (retries,
//! Retry-After, the circuit breaker).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gigafibre_acs::config::Secret;
use gigafibre_acs::erpnext::{
    DeviceKeys, Equipment, ErpConfig, ErpError, ErpNextClient, Lookup, Resolution, resolve,
};
use serde_json::{Value, json};

const KEY: &str = "K";
const SECRET: &str = "S";
const TIMEOUT: Duration = Duration::from_secs(2);
const COOLDOWN: Duration = Duration::from_millis(400);

/// The `erpnext-sim` binary, next to this test's `deps/` directory.
fn sim_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable is in target/<profile>/deps");
    let path = dir.join(format!("erpnext-sim{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} not found: build it with `cargo test --workspace` (or `cargo build -p erpnext-sim`)",
        path.display()
    );
    path
}

struct Sim {
    child: Child,
    url: String,
    _stdout: BufReader<ChildStdout>,
    http: reqwest::Client,
}

impl Sim {
    fn start() -> Sim {
        let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("simulators/erpnext-sim/fixtures/demo.json");
        let mut child = Command::new(sim_binary())
            .args(["--listen", "127.0.0.1:0", "--fixture"])
            .arg(&fixture)
            .args(["--api-key", KEY, "--api-secret", SECRET])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn erpnext-sim");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("read erpnext-sim stdout");
        let url = line
            .trim()
            .strip_prefix("erpnext-sim listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from erpnext-sim: {line:?}"))
            .to_string();
        // A plain reqwest client for the admin API and raw document reads
        // (the crate's reqwest has no built-in crypto provider: give ring).
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        Sim {
            child,
            url,
            _stdout: stdout,
            http,
        }
    }

    fn config(&self) -> ErpConfig {
        let mut c = ErpConfig::new(&self.url, KEY, Secret::new(SECRET));
        c.timeout = TIMEOUT;
        c.max_attempts = 3;
        c.breaker_failures = 3;
        c.breaker_cooldown = COOLDOWN;
        c.cache_ttl = Duration::from_secs(60);
        c
    }

    fn client(&self) -> ErpNextClient {
        ErpNextClient::new(self.config()).unwrap()
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    async fn faults(&self, body: Value) {
        self.admin(reqwest::Method::POST, "/_admin/faults", Some(body))
            .await;
    }

    async fn stats(&self) -> Value {
        self.admin(reqwest::Method::GET, "/_admin/stats", None)
            .await
    }

    /// Requests the simulator saw on a route (e.g. `GET /api/resource/Service Equipment`).
    async fn route_total(&self, route: &str) -> u64 {
        self.stats().await["by_route"][route]["total"]
            .as_u64()
            .unwrap_or(0)
    }

    /// The whole stored document, as ERPNext returns it.
    async fn document(&self, name: &str) -> Value {
        let resp = self
            .http
            .get(format!(
                "{}/api/resource/Service%20Equipment/{name}",
                self.url
            ))
            .header("Authorization", format!("token {KEY}:{SECRET}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut v: Value = resp.json().await.unwrap();
        v["data"].take()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const LIST: &str = "GET /api/resource/Service Equipment";
const DOC: &str = "GET /api/resource/Service Equipment/{name}";
const PASSWORD: &str = "GET /api/method/frappe.client.get_password";

fn names(rows: &[Equipment]) -> Vec<&str> {
    rows.iter().map(|e| e.name.as_str()).collect()
}

#[tokio::test]
async fn finds_by_mac_in_every_stored_spelling() {
    let sim = Sim::start();
    let client = sim.client();
    // Stored as `3C:84:6A:BA:9B:1D`, `3c-84-6a-6d-4a-ea`, `e4fac40ad45a`,
    // `3C-84-6A-05-E9-8F`.
    for (mac, name) in [
        ("3c846aba9b1d", "EQ-00009"),
        ("3c846a6d4aea", "EQ-00002"),
        ("e4fac40ad45a", "EQ-00004"),
        ("3c846a05e98f", "EQ-00015"),
    ] {
        let rows = client.find(Lookup::Mac(mac)).await.unwrap();
        assert_eq!(names(&rows), vec![name], "{mac}");
        assert_eq!(rows[0].equipment_type.as_deref(), Some("Routeur"));
    }
    // The lookup itself may be spelled any way.
    let rows = client.find(Lookup::Mac("3C:84:6A:05:E9:8F")).await.unwrap();
    let morin = &rows[0];
    assert_eq!(morin.name, "EQ-00015");
    assert_eq!(morin.wifi_ssid.as_deref(), Some("Gigafibre-Morin"));
    assert!(morin.wifi_ssid_5g.is_some(), "EQ-00015 has a 5 GHz SSID");
    assert_eq!(morin.wifi_enabled, Some(true));
    assert!(morin.has_wifi_password);
    assert_eq!(morin.status.as_deref(), Some("Actif"));
    assert!(morin.modified.is_some());
    // Geneviève Pelletier's router has WiFi off.
    let rows = client.find(Lookup::Mac("50:91:E3:74:DF:9F")).await.unwrap();
    assert_eq!(rows[0].wifi_enabled, Some(false));
    // Unknown MAC.
    assert!(
        client
            .find(Lookup::Mac("001122334455"))
            .await
            .unwrap()
            .is_empty()
    );
    // Repeats come from the cache: one request per distinct query.
    let before = sim.route_total(LIST).await;
    client.find(Lookup::Mac("3c846aba9b1d")).await.unwrap();
    client.find(Lookup::Mac("3C-84-6A-BA-9B-1D")).await.unwrap();
    assert_eq!(sim.route_total(LIST).await, before);
    assert_eq!(before, 6);
    assert!(client.stats().cache_hits >= 2);
}

#[tokio::test]
async fn finds_by_gpon_serial_ascii_or_hex_and_by_cwmp_serial() {
    let sim = Sim::start();
    let client = sim.client();
    // Stored ASCII in both fields.
    let rows = client
        .find(Lookup::GponSerial("RCMG1A2B3C4D"))
        .await
        .unwrap();
    assert_eq!(names(&rows), vec!["EQ-00001"]);
    assert!(rows[0].has_sip_password);
    assert_eq!(rows[0].sip_line, Some(1));
    // Stored as 16 hex in serial_number (ASCII in custom_gpon_serial).
    for q in ["TPLGB4FB2AC8", "54504C47B4FB2AC8"] {
        let rows = client.find(Lookup::GponSerial(q)).await.unwrap();
        assert_eq!(names(&rows), vec!["EQ-00003"], "{q}");
        assert_eq!(rows[0].serial_number.as_deref(), Some("54504C47B4FB2AC8"));
        assert_eq!(rows[0].gpon_serial.as_deref(), Some("TPLGB4FB2AC8"));
    }
    // A router's sticker serial in serial_number (the last resort).
    for q in ["22A1004513", " 22a1004513 "] {
        let rows = client.find(Lookup::SerialNumber(q)).await.unwrap();
        assert_eq!(names(&rows), vec!["EQ-00002"], "{q:?}");
    }
    assert!(
        client
            .find(Lookup::SerialNumber("22A100451"))
            .await
            .unwrap()
            .is_empty()
    );
    // Same serial once ASCII, once hex: both records.
    let rows = client
        .find(Lookup::GponSerial("TPLG5EE2A149"))
        .await
        .unwrap();
    assert_eq!(names(&rows), vec!["EQ-00012", "EQ-00045"]);
    assert!(
        client
            .find(Lookup::GponSerial("RCMG00000000"))
            .await
            .unwrap()
            .is_empty()
    );
    // CWMP serials as the devices report them.
    let rows = client
        .find(Lookup::CwmpSerial("RCMGDF1E9125"))
        .await
        .unwrap();
    assert_eq!(names(&rows), vec!["EQ-00010"]);
    let rows = client
        .find(Lookup::CwmpSerial("54504C4734970CA5"))
        .await
        .unwrap();
    assert_eq!(names(&rows), vec!["EQ-00021"]);
    assert!(
        client
            .find(Lookup::CwmpSerial("RCMG1A2B3C4D"))
            .await
            .unwrap()
            .is_empty()
    );
    // By name (a direct GET; names compare case-insensitively).
    let rows = client.find(Lookup::Name("eq-00001")).await.unwrap();
    assert_eq!(names(&rows), vec!["EQ-00001"]);
    assert_eq!(rows[0].customer.as_deref(), Some("Jean Tremblay"));
    assert!(
        client
            .find(Lookup::Name("EQ-09999"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn resolves_in_order_and_stops_at_ambiguity() {
    let sim = Sim::start();
    let client = sim.client();
    let found = |r: Resolution| match r {
        Resolution::Found(e) => e.name,
        other => panic!("expected a record, got {other:?}"),
    };
    // The known name wins.
    let keys = DeviceKeys {
        known_name: Some("EQ-00005"),
        cwmp_serial: "RCMGDF1E9125",
        device_id: "",
        gpon_serial: None,
        macs: &[],
    };
    assert_eq!(found(resolve(&client, &keys).await.unwrap()), "EQ-00005");
    // A known name that is gone: the CWMP serial decides.
    let keys = DeviceKeys {
        known_name: Some("EQ-09999"),
        cwmp_serial: "RCMGDF1E9125",
        device_id: "",
        gpon_serial: Some("RCMGDF1E9125"),
        macs: &[],
    };
    assert_eq!(found(resolve(&client, &keys).await.unwrap()), "EQ-00010");
    // A fresh ONT: no CWMP serial recorded yet, the GPON serial decides.
    let keys = DeviceKeys {
        known_name: None,
        cwmp_serial: "54504C47B4FB2AC8",
        device_id: "",
        gpon_serial: Some("TPLGB4FB2AC8"),
        macs: &[],
    };
    assert_eq!(found(resolve(&client, &keys).await.unwrap()), "EQ-00003");
    // A Deco: by MAC.
    let keys = DeviceKeys {
        known_name: None,
        cwmp_serial: "22A1004513",
        device_id: "",
        gpon_serial: None,
        macs: &["3c846a6d4aea"],
    };
    assert_eq!(found(resolve(&client, &keys).await.unwrap()), "EQ-00002");

    // Ambiguous GPON serial (EQ-00012 ASCII, EQ-00045 hex): the MAC is not
    // asked.
    let lists_before = sim.route_total(LIST).await;
    let keys = DeviceKeys {
        known_name: None,
        cwmp_serial: "TPLG5EE2A149",
        device_id: "",
        gpon_serial: Some("TPLG5EE2A149"),
        macs: &["0a0b0c0d0e0f"],
    };
    assert_eq!(
        resolve(&client, &keys).await.unwrap(),
        Resolution::Ambiguous(vec!["EQ-00012".into(), "EQ-00045".into()])
    );
    assert_eq!(
        sim.route_total(LIST).await - lists_before,
        2,
        "CWMP serial and GPON serial only"
    );
    // Ambiguous MAC: EQ-00011 (Actif) and EQ-00044 (Retourné) — still
    // ambiguous: the status does not choose.
    let keys = DeviceKeys {
        known_name: None,
        cwmp_serial: "22A1022565",
        device_id: "",
        gpon_serial: None,
        macs: &["e4:fa:c4:ba:5d:3f"],
    };
    assert_eq!(
        resolve(&client, &keys).await.unwrap(),
        Resolution::Ambiguous(vec!["EQ-00011".into(), "EQ-00044".into()])
    );
    // Nothing anywhere (Josée Boucher's records have no serial or MAC yet).
    let keys = DeviceKeys {
        known_name: None,
        cwmp_serial: "RCMG00000000",
        device_id: "",
        gpon_serial: Some("RCMG00000000"),
        macs: &["00:11:22:33:44:55"],
    };
    assert_eq!(
        resolve(&client, &keys).await.unwrap(),
        Resolution::Unresolved
    );
}

#[tokio::test]
async fn reads_passwords_set_and_empty() {
    let sim = Sim::start();
    let client = sim.client();
    let wifi = client
        .password("EQ-00002", "custom_wifi_password")
        .await
        .unwrap()
        .expect("set");
    assert_eq!(wifi.expose(), "uYzRb5UYS9rD");
    assert!(!format!("{wifi:?}").contains("uYzRb5UYS9rD"));
    let sip = client
        .password("EQ-00001", "custom_sip_password")
        .await
        .unwrap()
        .expect("set");
    assert_eq!(sip.expose(), "kkRayDxLmKtHNYbK");
    // Nothing stored: Frappe's 401 "Password not found" is `None`.
    assert!(
        client
            .password("EQ-00042", "custom_sip_password")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        client
            .password("EQ-00001", "custom_wifi_password")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(sim.route_total(PASSWORD).await, 4);
    // Cached, including the empty ones.
    client
        .password("EQ-00002", "custom_wifi_password")
        .await
        .unwrap();
    client
        .password("EQ-00042", "custom_sip_password")
        .await
        .unwrap();
    assert_eq!(sim.route_total(PASSWORD).await, 4);
    assert_eq!(client.stats().errors, 0);
}

#[tokio::test]
async fn marks_provisioned_touching_only_three_fields() {
    let sim = Sim::start();
    let client = sim.client();
    let at = UNIX_EPOCH + Duration::from_secs(1_757_318_443); // 2025-09-08 08:00:43 UTC
    let before = sim.document("EQ-00042").await;
    assert_eq!(before["status"], "En inventaire");
    // Warm the cache with what is about to change.
    assert!(
        client
            .find(Lookup::CwmpSerial("RCMG0A0B0C0D"))
            .await
            .unwrap()
            .is_empty()
    );
    let by_name = client.find(Lookup::Name("EQ-00042")).await.unwrap();
    assert_eq!(by_name[0].status.as_deref(), Some("En inventaire"));

    client
        .mark_provisioned("EQ-00042", "RCMG0A0B0C0D", at)
        .await
        .unwrap();

    let after = sim.document("EQ-00042").await;
    assert_eq!(after["status"], "Actif");
    assert_eq!(after["custom_cwmp_serial"], "RCMG0A0B0C0D");
    assert_eq!(after["custom_provisioned_at"], "2025-09-08 08:00:43");
    let strip = |v: &Value| {
        let mut o = v.as_object().unwrap().clone();
        for k in [
            "status",
            "custom_cwmp_serial",
            "custom_provisioned_at",
            "modified",
            "modified_by",
        ] {
            o.remove(k);
        }
        o
    };
    assert_eq!(strip(&before), strip(&after), "no other field may change");
    assert_ne!(before["modified"], after["modified"]);
    // The cache was invalidated.
    let rows = client
        .find(Lookup::CwmpSerial("RCMG0A0B0C0D"))
        .await
        .unwrap();
    assert_eq!(names(&rows), vec!["EQ-00042"]);
    let rows = client.find(Lookup::Name("EQ-00042")).await.unwrap();
    assert_eq!(rows[0].status.as_deref(), Some("Actif"));
    assert_eq!(
        sim.route_total("PUT /api/resource/Service Equipment/{name}")
            .await,
        1
    );

    // A record that does not exist.
    let e = client
        .mark_provisioned("EQ-09999", "RCMG0A0B0C0D", at)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ErpError::NotFound { what } if what == "Service Equipment EQ-09999"),
        "{e}"
    );
    // ERPNext's validation errors become short sentences.
    let long = "X".repeat(141);
    let e = client
        .mark_provisioned("EQ-00012", &long, at)
        .await
        .unwrap_err();
    match &e {
        ErpError::Rejected {
            status,
            exc_type,
            message,
        } => {
            assert_eq!(*status, 417);
            assert_eq!(exc_type, "CharacterLengthExceededError");
            assert!(
                message.starts_with(
                    "ERPNext refused the update of EQ-00012 (CharacterLengthExceededError): "
                ),
                "{message}"
            );
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    let mut cfg = sim.config();
    cfg.provisioned_at_field = "custom_sip_line".into(); // an Int field
    let misconfigured = ErpNextClient::new(cfg).unwrap();
    let e = misconfigured
        .mark_provisioned("EQ-00012", "TPLG5EE2A149", at)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("ERPNext refused the update of EQ-00012 (ValidationError): ")
            && text.contains("custom_sip_line"),
        "{text}"
    );
    // Refused writes change nothing.
    assert!(
        sim.document("EQ-00012")
            .await
            .get("custom_cwmp_serial")
            .is_none()
    );
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_without_the_secret() {
    let sim = Sim::start();
    let secret = "definitely-wrong-s3cret";
    let mut cfg = sim.config();
    cfg.api_secret = Secret::new(secret);
    let client = ErpNextClient::new(cfg).unwrap();
    let e = client.find(Lookup::Mac("3c846aba9b1d")).await.unwrap_err();
    assert!(matches!(e, ErpError::Auth { status: 401, .. }), "{e:?}");
    // The 401 of get_password is not taken for "Password not found".
    let e2 = client
        .password("EQ-00002", "custom_wifi_password")
        .await
        .unwrap_err();
    assert!(matches!(e2, ErpError::Auth { status: 401, .. }), "{e2:?}");
    for text in [
        e.to_string(),
        format!("{e:?}"),
        e2.to_string(),
        format!("{client:?}"),
    ] {
        assert!(!text.contains(secret), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
    assert!(e.to_string().contains("AuthenticationError"), "{e}");
    // Auth errors are answers: they do not open the breaker, nor are they
    // retried.
    assert!(!client.breaker_open());
    assert_eq!(client.stats().retries, 0);
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried() {
    let sim = Sim::start();
    let client = sim.client();
    // Two 500s, then an answer.
    sim.faults(json!({"error_next": 2})).await;
    let rows = client.find(Lookup::Mac("3c846aba9b1d")).await.unwrap();
    assert_eq!(names(&rows), vec!["EQ-00009"]);
    let stats = sim.stats().await;
    assert_eq!(stats["by_route"][LIST]["total"], 3);
    assert_eq!(stats["by_route"][LIST]["by_status"]["500"], 2);
    assert_eq!(stats["by_route"][LIST]["by_status"]["200"], 1);
    assert_eq!(client.stats().retries, 2);
    assert!(!client.breaker_open());

    // A 429 with Retry-After: 1 is waited out, then retried.
    sim.faults(json!({"rate_limit_next": 1, "retry_after_s": 1}))
        .await;
    let t = Instant::now();
    let rows = client.find(Lookup::Name("EQ-00009")).await.unwrap();
    assert_eq!(names(&rows), vec!["EQ-00009"]);
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    let stats = sim.stats().await;
    assert_eq!(stats["by_route"][DOC]["by_status"]["429"], 1);
    assert_eq!(stats["by_route"][DOC]["by_status"]["200"], 1);

    // More failures than attempts: Unavailable after max_attempts (3).
    sim.faults(json!({"error_next": 5})).await;
    let e = client
        .password("EQ-00002", "custom_wifi_password")
        .await
        .unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert!(e.to_string().contains("after 3 attempts"), "{e}");
    assert!(e.to_string().contains("OperationalError"), "{e}");
    assert_eq!(sim.route_total(PASSWORD).await, 3);
    // Three consecutive failed attempts = the breaker threshold.
    assert!(client.breaker_open());
}

/// An outage (the simulator answers 503 maintenance pages, or closes
/// connections): the breaker opens, calls then fail at once, and after the
/// outage a probe closes it again.
async fn outage_opens_then_closes_the_breaker(mode: &str) {
    let sim = Sim::start();
    let client = sim.client();
    let cached = client
        .find(Lookup::GponSerial("TPLGB4FB2AC8"))
        .await
        .unwrap();
    sim.admin(reqwest::Method::DELETE, "/_admin/stats", None)
        .await;
    sim.faults(json!({"outage_s": 30, "outage_mode": mode}))
        .await;
    let e = client.find(Lookup::Mac("3c846aba9b1d")).await.unwrap_err();
    assert!(e.is_unavailable(), "{mode}: {e}");
    assert!(client.breaker_open(), "{mode}");
    assert_eq!(client.stats().breaker_opens, 1);
    let seen = sim.stats().await["total"].as_u64().unwrap();
    assert_eq!(seen, 3, "{mode}: three attempts reached the simulator");

    // Open: immediate failures, nothing sent.
    for lookup in [
        Lookup::Mac("3c846a6d4aea"),
        Lookup::GponSerial("RCMG1A2B3C4D"),
    ] {
        let t = Instant::now();
        let e = client.find(lookup).await.unwrap_err();
        let elapsed = t.elapsed();
        assert!(e.is_unavailable(), "{mode}: {e}");
        assert!(
            e.to_string().contains("circuit breaker open"),
            "{mode}: {e}"
        );
        assert!(elapsed < TIMEOUT / 20, "{mode}: took {elapsed:?}");
    }
    let t = Instant::now();
    let e = client
        .mark_provisioned("EQ-00042", "RCMG0A0B0C0D", SystemTime::now())
        .await
        .unwrap_err();
    assert!(
        e.is_unavailable() && t.elapsed() < TIMEOUT / 20,
        "{mode}: {e}"
    );
    assert_eq!(sim.stats().await["total"].as_u64().unwrap(), seen);
    // Cached answers are still served.
    assert_eq!(
        client
            .find(Lookup::GponSerial("54504C47B4FB2AC8"))
            .await
            .unwrap(),
        cached
    );

    // Still down after the cooldown: the single probe fails and reopens.
    tokio::time::sleep(COOLDOWN + Duration::from_millis(50)).await;
    let e = client.find(Lookup::Mac("3c846a6d4aea")).await.unwrap_err();
    assert!(e.is_unavailable(), "{mode}: {e}");
    assert_eq!(
        sim.stats().await["total"].as_u64().unwrap(),
        seen + 1,
        "{mode}: one probe"
    );
    assert_eq!(client.stats().breaker_opens, 2);

    // The outage ends; after the cooldown the probe succeeds and closes it.
    sim.faults(json!({"outage_s": 0})).await;
    tokio::time::sleep(COOLDOWN + Duration::from_millis(50)).await;
    let rows = client.find(Lookup::Mac("3c846aba9b1d")).await.unwrap();
    assert_eq!(names(&rows), vec!["EQ-00009"]);
    assert!(!client.breaker_open(), "{mode}");
    let rows = client
        .find(Lookup::GponSerial("RCMG1A2B3C4D"))
        .await
        .unwrap();
    assert_eq!(names(&rows), vec!["EQ-00001"]);
}

#[tokio::test]
async fn an_outage_with_maintenance_pages_trips_the_breaker() {
    outage_opens_then_closes_the_breaker("503").await;
}

#[tokio::test]
async fn an_outage_with_closed_connections_trips_the_breaker() {
    outage_opens_then_closes_the_breaker("close").await;
}

#[tokio::test]
async fn a_slow_erpnext_times_out() {
    let sim = Sim::start();
    let mut cfg = sim.config();
    cfg.timeout = Duration::from_millis(300);
    cfg.max_attempts = 2;
    let client = ErpNextClient::new(cfg).unwrap();
    sim.faults(json!({"latency_ms": 2000})).await;
    let t = Instant::now();
    let e = client.find(Lookup::Mac("3c846aba9b1d")).await.unwrap_err();
    let elapsed = t.elapsed();
    assert!(e.is_unavailable(), "{e}");
    assert!(e.to_string().contains("no answer within 300 ms"), "{e}");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    assert_eq!(client.stats().attempts, 2);
}
