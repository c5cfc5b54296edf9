//! Ops API hot paths, each against a baseline measured in the same run:
//!
//! * topology: building a Deco home (controller, 8 satellites, 40 Wi-Fi
//!   clients, a HOSTS-entry host table (250), both mesh tables) from its cached
//!   values, against one pass over the same values that only parses each
//!   one as a number (the floor of any builder that reads them all);
//! * device search: `search_devices` by MAC in a 20,000-device store,
//!   against reading one device record by id.
//!
//! `cargo run --release --example bench_ops`

use std::hint::black_box;
use std::time::Instant;

use gigafibre_acs::cwmp::CwmpVersion;
use gigafibre_acs::cwmp::rpc::DeviceIdStruct;
use gigafibre_acs::provision::profile::Profiles;
use gigafibre_acs::store::{DeviceRecord, SledStore, Store, search_keys};
use gigafibre_acs::topology::{Params, build};

/// The allocator the `gigafibre-acs` binary ships with, so the numbers are its numbers.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HOSTS: u32 = 250;

fn mac(n: u32) -> String {
    let b = n.to_be_bytes();
    format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
}

/// A large Deco home in the TP-Link layout.
fn deco_home() -> Params {
    let mut p = Params::new();
    let mut put = |k: String, v: String| {
        p.insert(k, v);
    };
    let m = "Device.WiFi.MultiAP.APDevice.";
    put(format!("{m}1.MACAddress"), mac(0));
    put(format!("{m}1.X_TP_IsController"), "true".into());
    put("Device.DeviceInfo.ModelName".into(), "Deco X20".into());
    for s in 1..=8u32 {
        let n = s + 1;
        put(format!("{m}{n}.MACAddress"), mac(s));
        put(format!("{m}{n}.X_TP_IsController"), "false".into());
        put(format!("{m}{n}.BackhaulLinkType"), "Wi-Fi".into());
        put(format!("{m}{n}.BackhaulSignalStrength"), "120".into());
        put(format!("{m}{n}.X_TP_HostName"), format!("Deco-{s}"));
    }
    for c in 0..40u32 {
        let node = c % 9 + 1;
        let a = format!("{m}{node}.Radio.2.AP.2.AssociatedDevice.{}.", c + 1);
        put(format!("{a}MACAddress"), mac(1000 + c));
        put(format!("{a}SignalStrength"), (100 + c).to_string());
        put(format!("{a}Active"), "true".into());
        let d = format!(
            "Device.WiFi.DataElements.Network.Device.{node}.Radio.2.BSS.2.STA.{}.",
            c + 1
        );
        put(format!("{d}MACAddress"), mac(1000 + c));
        put(format!("{d}SignalStrength"), (100 + c).to_string());
    }
    for h in 1..=HOSTS {
        let e = format!("Device.Hosts.Host.{h}.");
        put(format!("{e}PhysAddress"), mac(1000 + h - 1));
        put(
            format!("{e}IPAddress"),
            format!("192.168.0.{}", h % 250 + 2),
        );
        put(format!("{e}HostName"), format!("host-{h}"));
        put(format!("{e}Active"), "true".into());
        put(format!("{e}InterfaceType"), "Wi-Fi".into());
    }
    p
}

fn per_op<F: FnMut()>(iters: u32, mut f: F) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_secs_f64() / f64::from(iters)
}

fn main() {
    let profiles = Profiles::load(None).expect("built-in profiles");
    let deco = profiles.get("tplink-deco").expect("deco profile");
    let home = deco_home();
    let iters = 2_000;
    let build_s = per_op(iters, || {
        black_box(build(black_box(&home), deco));
    });
    let scan_s = per_op(iters, || {
        let mut n = 0u64;
        for v in black_box(&home).values() {
            if v.parse::<i64>().is_ok() {
                n += 1;
            }
        }
        black_box(n);
    });
    let topo = build(&home, deco);
    let clients: usize = topo.nodes.iter().map(|n| n.clients.len()).sum();
    println!(
        "topology: {} values, {} nodes, {} clients placed: build {:.1} µs, baseline scan {:.1} µs, ratio {:.1}x",
        home.len(),
        topo.nodes.len(),
        clients,
        build_s * 1e6,
        scan_s * 1e6,
        build_s / scan_s
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(dir.path(), 256 << 20).expect("store");
    let n = 20_000u32;
    let t = Instant::now();
    for i in 0..n {
        let identity = DeviceIdStruct {
            manufacturer: "TP-Link".into(),
            oui: "1C61B4".into(),
            product_class: "Device2".into(),
            serial_number: format!("SN{i:08}"),
        };
        let mut d = DeviceRecord::new(identity.device_id(), identity, CwmpVersion::V1_2, 1);
        d.provisioning.mac = Some(mac(i).replace(':', ""));
        d.provisioning.equipment = Some(format!("EQ-{i:05}"));
        store.put_device(&d).expect("put");
    }
    let load_s = t.elapsed().as_secs_f64();
    let queries: Vec<Vec<String>> = (0..1000u32)
        .map(|i| search_keys(&mac(i * 17 % n).to_uppercase().replace(':', "-")))
        .collect();
    let ids: Vec<String> = (0..1000u32)
        .map(|i| format!("1C61B4-Device2-SN{:08}", i * 17 % n))
        .collect();
    let mut qi = 0;
    let search_s = per_op(20_000, || {
        let found = store
            .search_devices(&queries[qi % queries.len()], None, 50)
            .expect("search");
        assert_eq!(found.len(), 1);
        qi += 1;
    });
    let mut gi = 0;
    let get_s = per_op(20_000, || {
        black_box(store.device(&ids[gi % ids.len()]).expect("get"));
        gi += 1;
    });
    println!(
        "search: {n} devices loaded in {:.2} s ({:.0}/s incl. index); by MAC {:.1} µs, baseline read by id {:.1} µs, ratio {:.1}x",
        load_s,
        f64::from(n) / load_s,
        search_s * 1e6,
        get_s * 1e6,
        search_s / get_s
    );
}
