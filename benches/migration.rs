//! What moving the ISP off GenieACS costs (`cargo bench --bench
//! migration`; results in BENCHMARKS.md), at the seed's sizes:
//!
//! 1. GenieACS's devices: 1,300 documents built from the real TP-Link XX230v
//!    export (every one of its values, as GenieACS's database holds them),
//!    one JSON line each. Baseline: parsing each line with serde_json, the
//!    least any importer does. Then reading them into device records, a dry
//!    run, and the import into a sled store (values and writability
//!    included), each with its ratio to the baseline.
//! 2. The legacy WiFi table: 1,713 rows for 858 Decos (the seed's counts),
//!    MACs in four spellings, against erpnext-sim with 858 records, with
//!    the release binaries: the dry run (one paged listing, then the
//!    plan), `--apply` (one partial PUT per record), and a second `--apply`
//!    (nothing to write); wall time and ERPNext requests of each. Skipped
//!    unless the release binaries are built
//!    (`cargo build --release --workspace`).
//!
//! `--quick` runs smaller sizes (a smoke test); `--only genieacs|legacy`
//! one part.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fmt::Write as _;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gigafibre_acs::migrate::{genieacs, genieacs_run};
use gigafibre_acs::provision::export;
use gigafibre_acs::store::SledStore;
use serde_json::{Map, Value, json};
use support::{free_port, sibling_bin};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The device as GenieACS's `devices` collection would hold it.
fn genieacs_document(i: usize, values: &[(String, String)]) -> Value {
    let serial = format!("22A{i:07}");
    let ts = json!({"$date": "2026-11-30T09:59:58.123Z"});
    let mut root = Map::new();
    for (path, value) in values {
        let mut node = &mut root;
        let parts: Vec<&str> = path.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            let entry = node
                .entry((*p).to_owned())
                .or_insert_with(|| json!({"_object": true, "_writable": false, "_timestamp": ts}));
            node = entry.as_object_mut().unwrap();
        }
        node.insert(
            parts[parts.len() - 1].to_owned(),
            json!({"_value": value, "_type": "xsd:string", "_timestamp": ts, "_writable": true}),
        );
    }
    let mut doc = json!({
        "_id": format!("E848B8-XX230v-{serial}"),
        "_deviceId": {"_Manufacturer": "TP-Link", "_OUI": "E848B8", "_ProductClass": "XX230v", "_SerialNumber": serial},
        "_registered": {"$date": "2024-02-01T12:00:00.000Z"},
        "_lastInform": ts,
        "_tags": ["ont"],
    });
    doc["Device"] = root
        .remove("Device")
        .unwrap_or_else(|| json!({"_object": true}));
    doc
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn genieacs_devices(quick: bool, out: &mut String) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text =
        std::fs::read_to_string(repo.join("tests/data/device-models/tplink-xx230v-gpon-ont.csv"))
            .unwrap();
    let (_, values) = export::parse(&text).unwrap();
    let values: Vec<(String, String)> = values.into_iter().collect();
    let n = if quick { 100 } else { 1_300 };
    let lines: String = (0..n)
        .map(|i| genieacs_document(i, &values).to_string() + "\n")
        .collect();
    let mb = lines.len() as f64 / 1e6;
    println!(
        "1. GenieACS devices: {n} documents of {} values each (the real XX230v's), {mb:.1} MB of JSON lines",
        values.len()
    );
    let t = Instant::now();
    let mut parsed = 0;
    for l in lines.lines() {
        let _: Value = serde_json::from_str(l).unwrap();
        parsed += 1;
    }
    let baseline = t.elapsed();
    assert_eq!(parsed, n);
    let t = Instant::now();
    let mut params = 0;
    genieacs::documents(std::io::Cursor::new(lines.as_bytes()), &mut |_, d| {
        params += genieacs::device(&d.unwrap(), 0).unwrap().values.len();
    })
    .unwrap();
    let convert = t.elapsed();
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), 64 << 20).unwrap();
    let t = Instant::now();
    let dry = genieacs_run::import(
        std::io::Cursor::new(lines.as_bytes()),
        &store,
        false,
        0,
        &mut |_| {},
    )
    .unwrap();
    let dry_t = t.elapsed();
    let t = Instant::now();
    let applied = genieacs_run::import(
        std::io::Cursor::new(lines.as_bytes()),
        &store,
        true,
        0,
        &mut |_| {},
    )
    .unwrap();
    let apply_t = t.elapsed();
    assert_eq!(applied.created, n);
    let t = Instant::now();
    let again = genieacs_run::import(
        std::io::Cursor::new(lines.as_bytes()),
        &store,
        true,
        0,
        &mut |_| {},
    )
    .unwrap();
    let again_t = t.elapsed();
    assert_eq!(again.unchanged, n);
    let row = |what: &str, d: Duration| {
        format!(
            "| {what} | {:.0} ms | {:.0} docs/s | {:.2} |",
            d.as_secs_f64() * 1e3,
            rate(n, d),
            d.as_secs_f64() / baseline.as_secs_f64()
        )
    };
    let _ = writeln!(
        out,
        "| GenieACS import, {n} devices | time | rate | × baseline |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    let _ = writeln!(
        out,
        "{}",
        row("baseline: serde_json parse of each line", baseline)
    );
    let _ = writeln!(
        out,
        "{}",
        row(&format!("read into records ({params} values)"), convert)
    );
    let _ = writeln!(out, "{}", row("dry run (store lookups)", dry_t));
    let _ = writeln!(
        out,
        "{}",
        row(
            &format!("--apply into sled ({} values written)", applied.parameters),
            apply_t
        )
    );
    let _ = writeln!(out, "{}", row("--apply again (unchanged)", again_t));
    assert_eq!(dry.created, n);
}

fn erp_requests(port: u16) -> u64 {
    let out = Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{port}/_admin/stats")])
        .output();
    out.ok()
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
        .and_then(|v| v["total"].as_u64())
        .unwrap_or(0)
}

fn legacy_wifi(quick: bool, out: &mut String) {
    let (Some(acs), Some(erp_sim)) = (sibling_bin("gigafibre-acs"), sibling_bin("erpnext-sim"))
    else {
        println!("2. legacy WiFi: skipped — cargo build --release --workspace first");
        return;
    };
    let devices = if quick { 100 } else { 858 };
    let rows = if quick { 200 } else { 1_713 };
    let dir = tempfile::tempdir().unwrap();
    let mac = |i: usize| format!("3C846A{:06X}", i);
    let spell = |m: &str, k: usize| -> String {
        let pairs: Vec<&str> = (0..6).map(|j| &m[2 * j..2 * j + 2]).collect();
        match k % 4 {
            0 => pairs.join(":"),
            1 => pairs.join("-").to_ascii_lowercase(),
            2 => format!("{}.{}.{}", &m[0..4], &m[4..8], &m[8..12]).to_ascii_lowercase(),
            _ => m.to_owned(),
        }
    };
    let equipment: Vec<Value> = (0..devices)
        .map(|i| {
            json!({"name": format!("EQ-{i:05}"), "equipment_type": "Routeur", "status": "Actif",
                   "mac_address": spell(&mac(i), i + 1)})
        })
        .collect();
    let fixture = dir.path().join("fixture.json");
    std::fs::write(
        &fixture,
        json!({"Service Equipment": equipment}).to_string(),
    )
    .unwrap();
    let mut csv = String::from("serial,ssid,password,ssid_5g,updated_at\n");
    for r in 0..rows {
        let i = r % devices;
        let _ = writeln!(
            csv,
            "{},Maison-{i},Pass-{i:05}-{r},Maison-{i}-5G,2024-{:02}-01 10:00:00",
            spell(&mac(i), r),
            1 + r / devices
        );
    }
    let file = dir.path().join("wifi.csv");
    std::fs::write(&file, csv).unwrap();
    let port = free_port();
    let mut erp = Command::new(erp_sim)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--api-key",
            "bench-key",
            "--api-secret",
            "bench-secret",
        ])
        .arg("--fixture")
        .arg(&fixture)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "erpnext-sim did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("2. legacy WiFi: {rows} rows for {devices} Decos against erpnext-sim");
    let run = |apply: bool| -> (Duration, Value, u64) {
        let before = erp_requests(port);
        let mut args = vec![
            "migrate".to_owned(),
            "legacy-wifi".into(),
            file.display().to_string(),
            "--json".into(),
        ];
        if apply {
            args.push("--apply".into());
        }
        let t = Instant::now();
        let o = Command::new(&acs)
            .args(&args)
            .env("ERPNEXT_URL", format!("http://127.0.0.1:{port}"))
            .env("ERPNEXT_API_KEY", "bench-key")
            .env("ERPNEXT_API_SECRET", "bench-secret")
            .env("ACS_DATA_DIR", dir.path().join("acs"))
            .output()
            .unwrap();
        let d = t.elapsed();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let report: Value = serde_json::from_slice(&o.stdout).unwrap();
        // erpnext-sim does not count its /_admin requests.
        (d, report, erp_requests(port) - before)
    };
    let (dry_t, dry, dry_req) = run(false);
    let (apply_t, applied, apply_req) = run(true);
    let (again_t, again, again_req) = run(true);
    let _ = erp.kill();
    let _ = erp.wait();
    let _ = writeln!(
        out,
        "\n| legacy-wifi, {rows} rows, {devices} records | wall time | ERPNext requests | fields written | × dry run |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (what, d, r, req) in [
        ("dry run (baseline)", dry_t, &dry, dry_req),
        ("--apply", apply_t, &applied, apply_req),
        ("--apply again", again_t, &again, again_req),
    ] {
        let _ = writeln!(
            out,
            "| {what} | {:.0} ms | {req} | {} | {:.2} |",
            d.as_secs_f64() * 1e3,
            r["written"],
            d.as_secs_f64() / dry_t.as_secs_f64()
        );
    }
    assert_eq!(again["written"], 0);
    assert_eq!(applied["matched"].as_u64(), Some(devices as u64));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let mut out = String::new();
    if only.is_none_or(|o| o == "genieacs") {
        genieacs_devices(quick, &mut out);
    }
    if only.is_none_or(|o| o == "legacy") {
        legacy_wifi(quick, &mut out);
    }
    println!("\n{out}");
}
