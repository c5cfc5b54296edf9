//! What device histories cost at a fleet's size (`cargo bench --bench
//! history [-- --devices N] [--backend sled|redb] [--quick]`; results in
//! BENCHMARKS.md).
//!
//! 1. Every device gets 30 days of history at steady state, as the ACS
//!    leaves it after a month of hourly reads (`hosts_max_age_s` 3600):
//!    half are ONTs (optical Rx and Tx), half mesh routers (WiFi clients
//!    and signal); each also has two WAN address changes. Written through
//!    the store's `put_series`, as the ACS writes them.
//! 2. The store's size on disk and the process's memory, after the writes
//!    and after reading random devices' histories (what the API does).
//! 3. One more reading of a random device at steady state
//!    (`history::record`: read the record, add, thin, expire, write),
//!    against a baseline of writing the same bytes blind (`put_series`
//!    alone), in the same process; and reading a 30-day series
//!    (`history::read`).
//! 4. The silence pass (every five minutes, one node at a time): every
//!    device record read in pages and judged (`alarms::silent`), against
//!    a baseline of decoding the same records from memory. Each device
//!    gets the record an Inform leaves (identity, versions, events).

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Instant;

use gigafibre_acs::alarms::{self, AlarmRules};
use gigafibre_acs::cwmp::CwmpVersion;
use gigafibre_acs::cwmp::rpc::DeviceIdStruct;
use gigafibre_acs::history::{self, Combine, Point};
use gigafibre_acs::store::{DeviceRecord, EventRecord, RedbStore, SledStore, Store};
use support::{dir_size_mib, memory_mib};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const H: u64 = 3_600_000;
const DAY: u64 = 24 * H;
const RETENTION: u64 = 30 * DAY;

/// A series after 30 days of hourly readings around `level`.
fn steady_series(now: u64, level: f64, combine: Combine) -> Vec<Point> {
    let mut points = Vec::new();
    for h in (0..30 * 24).rev() {
        let at = now - h * H;
        let value = level + ((h * 7919) % 13) as f64 * 0.1;
        history::add(
            &mut points,
            Point { at_ms: at, value },
            at,
            RETENTION,
            combine,
        );
    }
    points
}

/// A cheap deterministic generator (no dependency for a benchmark).
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn device_id(i: u64) -> String {
    match i % 2 {
        0 => format!("00259E-HT803G-RCMG{i:08}"),
        _ => format!("1C61B4-Device2-Y{i:09}"),
    }
}

fn metrics(i: u64) -> [&'static str; 2] {
    match i % 2 {
        0 => ["optical_rx_dbm", "optical_tx_dbm"],
        _ => ["wifi_clients", "wifi_signal_pct"],
    }
}

/// The record an Inform leaves for device `i`.
fn device_record(i: u64, now: u64) -> DeviceRecord {
    let id = device_id(i);
    let (oui, class) = match i % 2 {
        0 => ("00259E", "HT803G"),
        _ => ("1C61B4", "Device2"),
    };
    let serial = id.rsplit('-').next().unwrap_or_default().to_owned();
    let mut d = DeviceRecord::new(
        id,
        DeviceIdStruct {
            manufacturer: "TP-Link".into(),
            oui: oui.into(),
            product_class: class.into(),
            serial_number: serial,
        },
        CwmpVersion::V1_0,
        now - 40 * DAY,
    );
    d.last_inform_ms = now - (i % 600) * 1000;
    d.software_version = Some("1.0.3 Build 20240712 Rel.61215".into());
    d.hardware_version = Some("EX220 v1.20".into());
    d.model_name = Some("Deco X20".into());
    d.remote_addr = Some("100.64.12.7".into());
    d.connection_request_url = Some("http://100.64.12.7:7547/tr069".into());
    d.root = Some("Device.".into());
    d.inform_count = 4000;
    d.recent_events = vec![EventRecord::new("2 PERIODIC", "", d.last_inform_ms)];
    d
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| support::flag_value(&args, flag);
    let quick = args.iter().any(|a| a == "--quick");
    let devices: u64 = value("--devices")
        .map(|v| v.parse().expect("--devices N"))
        .unwrap_or(if quick { 20_000 } else { 1_000_000 });
    let backend = value("--backend").unwrap_or_else(|| "sled".into());
    let cache_mb: u64 = 256;

    let dir = tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or_else(|| ".".into()))
        .expect("a scratch directory (BENCH_DIR)");
    let store: Arc<dyn Store> = match backend.as_str() {
        "sled" => Arc::new(SledStore::open(&dir.path().join("db"), cache_mb << 20).unwrap()),
        "redb" => Arc::new(RedbStore::open(dir.path(), cache_mb << 20).unwrap()),
        other => panic!("--backend sled|redb, not {other}"),
    };
    let now = 60 * DAY * 365;
    let pid = std::process::id();

    // 1. Steady state for every device.
    let rx = history::encode(&steady_series(now, -19.0, Combine::Mean));
    let tx = history::encode(&steady_series(now, 2.1, Combine::Mean));
    let clients = history::encode(&steady_series(now, 14.0, Combine::Mean));
    let signal = history::encode(&steady_series(now, 71.0, Combine::Mean));
    let mut wan = Vec::new();
    history::add_text(
        &mut wan,
        now - 20 * DAY,
        "100.64.12.7 2001:db8:12::7",
        now - 20 * DAY,
        RETENTION,
    );
    history::add_text(
        &mut wan,
        now - 3 * DAY,
        "100.64.40.9 2001:db8:40::9",
        now - 3 * DAY,
        RETENTION,
    );
    let wan = history::encode_text(&wan);
    let series_bytes = rx.len();
    let start = Instant::now();
    for i in 0..devices {
        let id = device_id(i);
        let [a, b] = metrics(i);
        let (va, vb) = match i % 2 {
            0 => (&rx, &tx),
            _ => (&clients, &signal),
        };
        store.put_series(&id, a, va).unwrap();
        store.put_series(&id, b, vb).unwrap();
        store.put_series(&id, "wan_ip", &wan).unwrap();
    }
    store.flush_blocking().unwrap();
    let write_s = start.elapsed().as_secs_f64();
    let disk = dir_size_mib(dir.path());
    let (peak, rss) = memory_mib(pid);

    // 2. Reading random devices' 30-day series.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let reads = devices.min(100_000);
    let start = Instant::now();
    let mut points = 0usize;
    for _ in 0..reads {
        let i = next(&mut seed) % devices;
        let got = history::read(
            store.as_ref(),
            &device_id(i),
            metrics(i)[0],
            now - RETENTION,
            10_000,
        )
        .unwrap();
        points += got.len();
    }
    let read_us = start.elapsed().as_secs_f64() * 1e6 / reads as f64;
    assert!(
        points >= reads as usize * 100,
        "a 30-day series has ~160 points"
    );
    let (peak_read, rss_read) = memory_mib(pid);

    // 3. One more reading each, against writing the same bytes blind.
    let appends = devices.min(100_000);
    let mut seed = 0xD1B5_4A32_D192_ED03u64;
    let start = Instant::now();
    for _ in 0..appends {
        let i = next(&mut seed) % devices;
        let [a, _] = metrics(i);
        store.put_series(&device_id(i), a, &rx).unwrap();
    }
    let blind_us = start.elapsed().as_secs_f64() * 1e6 / appends as f64;
    let mut seed = 0xD1B5_4A32_D192_ED03u64;
    let start = Instant::now();
    for n in 0..appends {
        let i = next(&mut seed) % devices;
        let [a, _] = metrics(i);
        let at = now + H + n;
        history::record(
            store.as_ref(),
            &device_id(i),
            &[(a, at, -19.5, Combine::Mean)],
            at,
            RETENTION,
        )
        .unwrap();
    }
    let record_us = start.elapsed().as_secs_f64() * 1e6 / appends as f64;
    store.flush_blocking().unwrap();
    let disk_after = dir_size_mib(dir.path());
    let (peak_end, rss_end) = memory_mib(pid);

    // 4. The silence pass over every device record.
    for i in 0..devices {
        store.put_device(&device_record(i, now)).unwrap();
    }
    store.flush_blocking().unwrap();
    let rules = AlarmRules::builtin();
    let start = Instant::now();
    let mut silent = 0usize;
    gigafibre_acs::store::each_device(store.as_ref(), |d| {
        silent += alarms::silent(&d, &rules, 300_000, now).raise.len();
        Ok(())
    })
    .unwrap();
    let pass_s = start.elapsed().as_secs_f64();
    assert_eq!(silent, 0, "every device informed within 10 minutes");
    let sample: Vec<Vec<u8>> = (0..10_000u64)
        .map(|i| rmp_serde::to_vec_named(&device_record(i, now)).unwrap())
        .collect();
    let start = Instant::now();
    for bytes in &sample {
        let d: DeviceRecord = rmp_serde::from_slice(bytes).unwrap();
        silent += alarms::silent(&d, &rules, 300_000, now).raise.len();
    }
    let decode_us = start.elapsed().as_secs_f64() * 1e6 / sample.len() as f64;
    assert_eq!(silent, 0);
    let pass_us = pass_s * 1e6 / devices as f64;
    let (_, rss_pass) = memory_mib(pid);

    let per_device = disk * 1024.0 * 1024.0 / devices as f64;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "device histories, {backend} store ({cache_mb} MiB cache), {devices} devices, {cpus} CPUs"
    );
    println!(
        "  steady state: 2 series of {series_bytes} B (30 days: 48 h hourly + 6-hourly) + wan_ip of {} B per device",
        wan.len()
    );
    println!(
        "  written in {write_s:.1} s ({:.0} devices/s)",
        devices as f64 / write_s
    );
    println!(
        "  disk: {disk:.0} MiB ({per_device:.0} B per device); after {appends} more readings: {disk_after:.0} MiB"
    );
    println!(
        "  memory: RSS {rss:.0} MiB (peak {peak:.0}) after writing; {rss_read:.0} (peak {peak_read:.0}) after {reads} reads; {rss_end:.0} (peak {peak_end:.0}) at the end"
    );
    println!("  read a 30-day series: {read_us:.1} µs");
    println!(
        "  one reading (read, add, thin, write): {record_us:.1} µs; baseline blind write of the same bytes: {blind_us:.1} µs; ratio {:.2}",
        record_us / blind_us
    );
    println!(
        "  silence pass over {devices} device records: {pass_s:.1} s ({pass_us:.2} µs a device; baseline: decoding the same MessagePack records from memory {decode_us:.2} µs, ratio {:.1}); every 5 min at 1M: {:.1} % of one core; RSS after it {rss_pass:.0} MiB",
        pass_us / decode_us,
        pass_us * 1e6 / 300e6 * 100.0
    );
    // 1M devices × 2 series an hour = 556 readings a second.
    println!(
        "  at 1M devices read hourly: {:.1} % of one core",
        record_us * 2e6 / 3.6e9 * 100.0
    );
}
