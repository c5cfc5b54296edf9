//! The [`Store`] contract, held against every backend (each test below runs
//! on [`SledStore`], [`RedbStore`] and, when PostgreSQL is installed,
//! [`PgStore`] on a server the tests start), and the migration from sled
//! to redb.

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::cwmp::Body;
use crate::cwmp::rpc::{DeviceIdStruct, Reboot};
use crate::cwmp::{CwmpVersion, ValueType};

type Open = fn(&Path) -> Arc<dyn Store>;

fn sled(dir: &Path) -> Arc<dyn Store> {
    Arc::new(SledStore::open(dir, 8 << 20).unwrap())
}

fn redb(dir: &Path) -> Arc<dyn Store> {
    Arc::new(RedbStore::open(dir, 8 << 20).unwrap())
}

/// A database of the test PostgreSQL per directory (a reopen finds it).
fn pg(dir: &Path) -> Arc<dyn Store> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.as_os_str().as_encoded_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    let url = super::pg_test::database(&format!("acs_{h:016x}")).expect("PostgreSQL");
    Arc::new(PgStore::connect(&url).unwrap())
}

fn pg_available() -> bool {
    super::pg_test::database("acs_probe").is_some()
}

/// Each name is an `async fn(Open)` below, run on both backends.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sled_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::sled).await
                }
            )*
        }
        mod redb_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::redb).await
                }
            )*
        }
        mod pg_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if super::pg_available() {
                        super::$name(super::pg).await
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    devices_params_tasks_survive_reopen,
    concurrent_syncs_share_flushes_and_all_complete,
    pruning_keeps_the_newest_finished_tasks_and_all_pending,
    search_follows_the_device_record,
    replace_subtrees_forgets_rows_that_are_gone,
    table_snapshots_merge_with_values_and_nest,
    faults_newest_first_and_ids_shared_with_tasks,
    credentials_and_writebacks,
    users_console_sessions_and_the_audit_log,
    readings_and_alarms_per_device,
    issued_tokens_by_hash,
    files_by_id,
    a_filled_store_reads_back_the_same_after_reopen,
    delete_device_removes_every_key_of_that_device_only,
    a_device_reads_back_whole_after_check_ins,
);

fn device(id: &str) -> DeviceRecord {
    DeviceRecord::new(id.into(), DeviceIdStruct::default(), CwmpVersion::V1_0, 1)
}

fn param(v: &str) -> CachedValue {
    CachedValue {
        value: v.into(),
        kind: ValueType::String,
        updated_ms: 5,
    }
}

fn reboot() -> TaskRequest {
    Body::from(Reboot::default()).into()
}

fn names(p: &[(String, StoredParam)]) -> Vec<&str> {
    p.iter().map(|(k, _)| k.as_str()).collect()
}

async fn devices_params_tasks_survive_reopen(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let first_task;
    {
        let s = open(dir.path());
        s.put_device(&device("A-1")).unwrap();
        s.put_device(&device("A-10")).unwrap();
        s.put_values(
            "A-1",
            &[
                ("Device.X".into(), param("1")),
                ("Device.Y".into(), param("2")),
            ],
        )
        .unwrap();
        s.put_values("A-10", &[("Device.X".into(), param("other"))])
            .unwrap();
        let t = s.insert_task("A-1", reboot(), "reboot", 7).unwrap();
        assert_eq!(s.task(t.id).unwrap().unwrap(), t);
        first_task = t.id;
        s.put_writability(
            "A-1",
            &[("Device.Y".into(), true), ("Device.Z.".into(), false)],
        )
        .unwrap();
        s.sync().await.unwrap();
    }
    let s = open(dir.path());
    assert_eq!(s.device("A-1").unwrap().unwrap(), device("A-1"));
    assert_eq!(s.device("A-2").unwrap(), None);
    // Prefix scans stay inside one device even when another id extends it.
    let p = s.parameters("A-1", "Device.").unwrap();
    assert_eq!(p.len(), 3);
    assert_eq!(p[0].0, "Device.X");
    assert_eq!(p[0].1.value.as_ref().unwrap().value, "1");
    assert_eq!(p[0].1.writable, None);
    assert_eq!(p[1].1.writable, Some(true));
    assert_eq!(
        p[2],
        (
            "Device.Z.".to_owned(),
            StoredParam {
                value: None,
                writable: Some(false)
            }
        )
    );
    let ids = |after| -> Vec<String> {
        s.list_devices(after, 10)
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect()
    };
    assert_eq!(ids(None), ["A-1", "A-10"]);
    assert_eq!(ids(Some("A-1")), ["A-10"]);
    assert_eq!(ids(Some("A-0")), ["A-1", "A-10"]);
    assert!(ids(Some("A-10")).is_empty());
    assert_eq!(s.list_devices(None, 1).unwrap().len(), 1);
    assert_eq!(s.tasks("A-1").unwrap().len(), 1);
    assert!(s.tasks("A-10").unwrap().is_empty());
    // Task ids go on increasing after a restart.
    let next = s.insert_task("A-10", reboot(), "reboot", 8).unwrap();
    assert!(next.id > first_task, "{} after {first_task}", next.id);
    assert_eq!(s.task(next.id).unwrap().unwrap().device_id, "A-10");
    assert_eq!(s.task(next.id + 1000).unwrap(), None);
    // The latest Inform's values count as of the device's last Inform
    // (9): newer than a value read before it (X, at 5), older than one
    // read after it (Y, at 9.5 → 10).
    let mut informed = device("A-1");
    informed.last_inform_ms = 9;
    s.put_device(&informed).unwrap();
    s.put_values(
        "A-1",
        &[(
            "Device.Y".into(),
            CachedValue {
                updated_ms: 10,
                ..param("2")
            },
        )],
    )
    .unwrap();
    let inform = [
        ("Device.X".into(), param("from-inform")),
        ("Device.Y".into(), param("stale")),
        ("Device.W".into(), param("w")),
        ("Other.V".into(), param("v")),
    ];
    s.put_inform_values("A-1", &inform).unwrap();
    // The same values again (a periodic Inform): nothing changes.
    s.put_inform_values("A-1", &inform).unwrap();
    let p = s.parameters("A-1", "Device.").unwrap();
    let value = |n: &str| {
        p.iter()
            .find(|(k, _)| k == n)
            .and_then(|(_, v)| v.value.as_ref())
            .map(|v| v.value.clone())
    };
    assert_eq!(value("Device.X").as_deref(), Some("from-inform"));
    assert_eq!(value("Device.Y").as_deref(), Some("2"));
    assert_eq!(value("Device.W").as_deref(), Some("w"));
    assert_eq!(names(&p), ["Device.W", "Device.X", "Device.Y", "Device.Z."]);
    assert_eq!(s.parameters("A-1", "").unwrap().len(), 5);
    // A newer per-parameter value wins over the Inform's.
    s.put_values(
        "A-1",
        &[(
            "Device.X".into(),
            CachedValue {
                updated_ms: 11,
                ..param("set")
            },
        )],
    )
    .unwrap();
    assert_eq!(
        s.parameters("A-1", "Device.X").unwrap()[0]
            .1
            .value
            .as_ref()
            .unwrap()
            .value,
        "set"
    );
    // The device informs again (12) repeating its values: the record is
    // not rewritten, and X is the Inform's again, newer than the set (11).
    informed.last_inform_ms = 12;
    s.put_device(&informed).unwrap();
    s.put_inform_values("A-1", &inform).unwrap();
    let x = s.parameters("A-1", "Device.X").unwrap();
    let x = x[0].1.value.as_ref().unwrap();
    assert_eq!((x.value.as_str(), x.updated_ms), ("from-inform", 12));
    // A newer Inform replaces the previous one whole.
    s.put_inform_values("A-1", &[("Device.V".into(), param("v"))])
        .unwrap();
    assert_eq!(
        names(&s.parameters("A-1", "Device.").unwrap()),
        ["Device.V", "Device.X", "Device.Y", "Device.Z."]
    );
    s.clear_parameters("A-1").unwrap();
    assert!(s.parameters("A-1", "").unwrap().is_empty());
    assert_eq!(s.parameters("A-10", "").unwrap().len(), 1);
}

async fn concurrent_syncs_share_flushes_and_all_complete(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path());
        let mut handles = Vec::new();
        for i in 0..64 {
            let s = s.clone();
            handles.push(tokio::spawn(async move {
                s.put_device(&device(&format!("D-{i}"))).unwrap();
                s.sync().await.unwrap();
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        assert_eq!(s.list_devices(None, 100).unwrap().len(), 64);
        // Nothing written since: a sync is immediate.
        s.sync().await.unwrap();
    }
    assert_eq!(open(dir.path()).list_devices(None, 100).unwrap().len(), 64);
}

async fn pruning_keeps_the_newest_finished_tasks_and_all_pending(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    for i in 0..5 {
        let mut t = s.insert_task("D", reboot(), "reboot", i).unwrap();
        if i < 4 {
            t.status = TaskStatus::Done;
            s.put_task(&t).unwrap();
        }
    }
    let other = s.insert_task("D2", reboot(), "reboot", 9).unwrap();
    s.prune_finished_tasks("D", 2).unwrap();
    let left = s.tasks("D").unwrap();
    assert_eq!(left.len(), 3);
    assert_eq!(
        left.iter()
            .filter(|t| t.status == TaskStatus::Pending)
            .count(),
        1
    );
    assert_eq!(left[0].created_ms, 2);
    // Oldest first, and the pruned ones are gone from the id lookup too.
    assert!(left.windows(2).all(|w| w[0].id < w[1].id));
    let all: Vec<u64> = (0..10)
        .filter_map(|id| s.task(id).unwrap())
        .map(|t| t.id)
        .collect();
    assert_eq!(all.len(), 4, "{all:?}");
    // Nothing to prune: nothing changes.
    s.prune_finished_tasks("D", 2).unwrap();
    assert_eq!(s.tasks("D").unwrap().len(), 3);
    assert_eq!(s.tasks("D2").unwrap(), [other]);
}

/// The record is stored as two (`store::contact`): every way of reading it
/// joins them, a check-in at a time or a page of the fleet.
async fn a_device_reads_back_whole_after_check_ins(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut devices: Vec<DeviceRecord> = ["A", "B", "C"].iter().map(|id| device(id)).collect();
    devices[0]
        .recent_events
        .push(EventRecord::new("1 BOOT", "", 1));
    devices[1].software_version = Some("1.0".into());
    for d in &devices {
        s.put_device(d).unwrap();
    }
    for t in 2..6 {
        for d in devices.iter_mut().take(2) {
            d.last_inform_ms = t;
            d.inform_count += 1;
            match d
                .recent_events
                .last_mut()
                .filter(|e| e.code == "2 PERIODIC")
            {
                Some(run) => {
                    run.count += 1;
                    run.at_ms = t;
                }
                None => d.recent_events.push(EventRecord::new("2 PERIODIC", "", t)),
            }
            s.put_device(d).unwrap();
        }
    }
    for d in &devices {
        assert_eq!(s.device(&d.id).unwrap().as_ref(), Some(d));
    }
    assert_eq!(s.list_devices(None, 10).unwrap(), devices);
    assert_eq!(s.list_devices(Some("A"), 1).unwrap(), devices[1..2]);
    assert_eq!(s.list_devices(Some("B"), 10).unwrap(), devices[2..]);
    drop(s);
    let s = open(dir.path());
    assert_eq!(s.list_devices(None, 10).unwrap(), devices);
    assert!(s.delete_device("A").unwrap());
    assert_eq!(s.list_devices(None, 10).unwrap(), devices[1..]);
    s.put_device(&device("A")).unwrap();
    assert_eq!(s.device("A").unwrap(), Some(device("A")));
}

fn searchable(id: &str, serial: &str, mac: Option<&str>) -> DeviceRecord {
    let mut d = DeviceRecord::new(
        id.into(),
        DeviceIdStruct {
            serial_number: serial.into(),
            ..DeviceIdStruct::default()
        },
        CwmpVersion::V1_0,
        1,
    );
    d.provisioning.mac = mac.map(Into::into);
    d
}

async fn search_follows_the_device_record(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let search = |q: &str, after: Option<&str>, limit: usize| {
        s.search_devices(&search_keys(q), after, limit).unwrap()
    };
    s.put_device(&searchable("OUI-SN1", "SN1", Some("AA:BB:CC:00:00:01")))
        .unwrap();
    s.put_device(&searchable("OUI-SN10", "SN10", None)).unwrap();
    s.put_device(&searchable("OUI-XY", "XY", Some("aa-bb-cc-00-00-02")))
        .unwrap();
    // Prefix of a token, in id order, any spelling of a MAC.
    assert_eq!(search("sn1", None, 10), ["OUI-SN1", "OUI-SN10"]);
    assert_eq!(search("SN10", None, 10), ["OUI-SN10"]);
    assert_eq!(search("aabbcc", None, 10), ["OUI-SN1", "OUI-XY"]);
    assert_eq!(search("aa:bb:cc:00:00:02", None, 10), ["OUI-XY"]);
    assert_eq!(search("oui-", None, 10), ["OUI-SN1", "OUI-SN10", "OUI-XY"]);
    assert_eq!(search("oui-", Some("OUI-SN1"), 10), ["OUI-SN10", "OUI-XY"]);
    assert_eq!(search("oui-", None, 2), ["OUI-SN1", "OUI-SN10"]);
    assert!(search("zz", None, 10).is_empty());
    assert!(
        s.search_devices(&[String::new()], None, 10)
            .unwrap()
            .is_empty()
    );
    // Several keys: the union.
    assert_eq!(
        s.search_devices(&["xy".into(), "sn10".into()], None, 10)
            .unwrap(),
        ["OUI-SN10", "OUI-XY"]
    );
    // A changed record drops its stale tokens and indexes the new ones.
    s.put_device(&searchable("OUI-XY", "XY", Some("11:22:33:44:55:66")))
        .unwrap();
    assert_eq!(search("aabbcc", None, 10), ["OUI-SN1"]);
    assert_eq!(search("112233", None, 10), ["OUI-XY"]);
    let mut d = searchable("OUI-SN1", "SN1", Some("AA:BB:CC:00:00:01"));
    d.provisioning.customer = Some("Tremblay Inc".into());
    s.put_device(&d).unwrap();
    assert_eq!(search("tremblay", None, 10), ["OUI-SN1"]);
    assert_eq!(search("aabbcc", None, 10), ["OUI-SN1"]);
}

async fn replace_subtrees_forgets_rows_that_are_gone(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let hosts = "Device.Hosts.Host.";
    s.put_values(
        "D",
        &[
            ("Device.Hosts.Host.1.MAC".into(), param("a")),
            ("Device.Hosts.Host.2.MAC".into(), param("b")),
            ("Device.Hosts.HostNumberOfEntries".into(), param("2")),
            ("Device.Other".into(), param("o")),
        ],
    )
    .unwrap();
    s.put_values("D2", &[("Device.Hosts.Host.9.MAC".into(), param("z"))])
        .unwrap();
    s.put_writability(
        "D",
        &[
            ("Device.Hosts.Host.1.".into(), false),
            ("Device.Hosts.Host.2.".into(), false),
            ("Device.Hosts.Host.2.MAC".into(), false),
        ],
    )
    .unwrap();
    s.replace_subtrees(
        "D",
        &[hosts.into(), "Device.NotAnObject".into()],
        &[
            ("Device.Hosts.Host.1.MAC".into(), param("a2")),
            ("Device.Hosts.Host.3.MAC".into(), param("c")),
        ],
    )
    .unwrap();
    let p = s.parameters("D", "").unwrap();
    assert_eq!(
        names(&p),
        [
            "Device.Hosts.Host.1.",
            "Device.Hosts.Host.1.MAC",
            "Device.Hosts.Host.3.MAC",
            "Device.Hosts.HostNumberOfEntries",
            "Device.Other"
        ]
    );
    assert_eq!(p[1].1.value.as_ref().unwrap().value, "a2");
    assert_eq!(p[0].1.writable, Some(false));
    // Another device's rows are not touched.
    assert_eq!(s.parameters("D2", hosts).unwrap().len(), 1);
    // An empty table: everything under it goes.
    s.replace_subtrees("D", &[hosts.into()], &[]).unwrap();
    assert_eq!(
        names(&s.parameters("D", "").unwrap()),
        ["Device.Hosts.HostNumberOfEntries", "Device.Other"]
    );
}

fn at(v: &str, ms: u64) -> CachedValue {
    CachedValue {
        updated_ms: ms,
        ..param(v)
    }
}

fn value_of(s: &dyn Store, path: &str) -> Option<String> {
    s.parameters("D", path)
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == path)
        .and_then(|(_, p)| p.value.map(|v| v.value))
}

async fn table_snapshots_merge_with_values_and_nest(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let s = s.as_ref();
    s.replace_subtrees(
        "D",
        &["Device.Hosts.".into()],
        &[
            ("Device.Hosts.HostNumberOfEntries".into(), at("2", 10)),
            ("Device.Hosts.Host.1.HostName".into(), at("pc1", 10)),
            ("Device.Hosts.Host.2.HostName".into(), at("pc2", 10)),
        ],
    )
    .unwrap();
    // A read below the snapshot's prefix finds its rows, and only those.
    assert_eq!(
        names(&s.parameters("D", "Device.Hosts.Host.1.").unwrap()),
        ["Device.Hosts.Host.1.HostName"]
    );
    assert_eq!(
        value_of(s, "Device.Hosts.Host.2.HostName").as_deref(),
        Some("pc2")
    );
    // A value read or set later wins; an older one does not.
    s.put_values(
        "D",
        &[("Device.Hosts.Host.1.HostName".into(), at("renamed", 11))],
    )
    .unwrap();
    s.put_values(
        "D",
        &[("Device.Hosts.Host.2.HostName".into(), at("stale", 9))],
    )
    .unwrap();
    assert_eq!(
        value_of(s, "Device.Hosts.Host.1.HostName").as_deref(),
        Some("renamed")
    );
    assert_eq!(
        value_of(s, "Device.Hosts.Host.2.HostName").as_deref(),
        Some("pc2")
    );
    // A smaller table re-read replaces its rows inside the bigger snapshot.
    s.replace_subtrees(
        "D",
        &["Device.Hosts.Host.".into()],
        &[("Device.Hosts.Host.3.HostName".into(), at("pc3", 12))],
    )
    .unwrap();
    assert_eq!(
        names(&s.parameters("D", "").unwrap()),
        [
            "Device.Hosts.Host.3.HostName",
            "Device.Hosts.HostNumberOfEntries"
        ]
    );
    // Reading the bigger table again replaces the smaller snapshot too.
    s.replace_subtrees(
        "D",
        &["Device.Hosts.".into()],
        &[("Device.Hosts.HostNumberOfEntries".into(), at("0", 13))],
    )
    .unwrap();
    assert_eq!(
        names(&s.parameters("D", "").unwrap()),
        ["Device.Hosts.HostNumberOfEntries"]
    );
    assert_eq!(
        value_of(s, "Device.Hosts.HostNumberOfEntries").as_deref(),
        Some("0")
    );
    // Several tables in one read, and a leaf read with them.
    s.replace_subtrees(
        "D",
        &[
            "Device.Hosts.".into(),
            "Device.WiFi.".into(),
            "Device.X".into(),
        ],
        &[
            ("Device.Hosts.Host.1.HostName".into(), at("a", 14)),
            ("Device.WiFi.SSID.1.SSID".into(), at("net", 14)),
            ("Device.X".into(), at("x", 14)),
        ],
    )
    .unwrap();
    assert_eq!(
        names(&s.parameters("D", "").unwrap()),
        [
            "Device.Hosts.Host.1.HostName",
            "Device.WiFi.SSID.1.SSID",
            "Device.X"
        ]
    );
    // Two smaller tables re-read at once inside one bigger snapshot: both
    // lose their old rows there.
    s.replace_subtrees(
        "D",
        &["Device.".into()],
        &[
            ("Device.A.1.X".into(), at("a-old", 15)),
            ("Device.B.1.X".into(), at("b-old", 15)),
            ("Device.C".into(), at("c", 15)),
        ],
    )
    .unwrap();
    s.replace_subtrees(
        "D",
        &["Device.A.".into(), "Device.B.".into()],
        &[("Device.A.2.X".into(), at("a-new", 16))],
    )
    .unwrap();
    assert_eq!(
        names(&s.parameters("D", "").unwrap()),
        ["Device.A.2.X", "Device.C"]
    );
    // Another device sees none of it; a bootstrap forgets it all.
    assert!(s.parameters("D2", "").unwrap().is_empty());
    s.clear_parameters("D").unwrap();
    assert!(s.parameters("D", "").unwrap().is_empty());
}

fn new_fault(device: &str, code: u32) -> NewFault {
    NewFault {
        device_id: device.into(),
        at_ms: u64::from(code),
        source: "cpe",
        code,
        message: format!("fault {code}"),
        rpc: Some("SetParameterValues".into()),
        task_id: None,
    }
}

async fn faults_newest_first_and_ids_shared_with_tasks(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let f1 = s.record_fault(new_fault("A", 9001)).unwrap();
    let t = s.insert_task("A", reboot(), "reboot", 1).unwrap();
    let f2 = s.record_fault(new_fault("B", 9002)).unwrap();
    let f3 = s.record_fault(new_fault("A", 9003)).unwrap();
    assert!(f1.id < t.id && t.id < f2.id && f2.id < f3.id);
    assert_eq!(s.fault(f2.id).unwrap().unwrap(), f2);
    assert_eq!(s.fault(t.id).unwrap(), None);
    let codes = |d: Option<&str>, limit| -> Vec<u32> {
        s.faults(d, limit)
            .unwrap()
            .into_iter()
            .map(|f| f.code)
            .collect()
    };
    assert_eq!(codes(None, 10), [9003, 9002, 9001]);
    assert_eq!(codes(None, 2), [9003, 9002]);
    assert_eq!(codes(Some("A"), 10), [9003, 9001]);
    assert!(codes(Some("C"), 10).is_empty());
    assert!(s.delete_fault(f2.id).unwrap());
    assert!(!s.delete_fault(f2.id).unwrap());
    assert_eq!(s.fault(f2.id).unwrap(), None);
    assert_eq!(codes(None, 10), [9003, 9001]);
}

async fn credentials_and_writebacks(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let cred = CpeCredential {
        username: "cpe-1".into(),
        password: "secret".into(),
        device_id: Some("A".into()),
    };
    assert_eq!(s.cpe_credential("cpe-1").unwrap(), None);
    s.put_cpe_credential(&cred).unwrap();
    assert_eq!(s.cpe_credential("cpe-1").unwrap().unwrap(), cred);
    assert!(s.delete_cpe_credential("cpe-1").unwrap());
    assert!(!s.delete_cpe_credential("cpe-1").unwrap());
    assert_eq!(s.cpe_credential("cpe-1").unwrap(), None);

    let wb = |d: &str, at_ms| Writeback {
        device_id: d.into(),
        equipment: "EQ-1".into(),
        cwmp_serial: "SN".into(),
        at_ms,
        attempts: 0,
    };
    s.put_writeback(&wb("B", 1)).unwrap();
    s.put_writeback(&wb("A", 2)).unwrap();
    // One per device: a newer one replaces it.
    s.put_writeback(&wb("B", 3)).unwrap();
    assert_eq!(s.writebacks(10).unwrap(), [wb("A", 2), wb("B", 3)]);
    assert_eq!(s.writebacks(1).unwrap(), [wb("A", 2)]);
    s.delete_writeback("A").unwrap();
    s.delete_writeback("nobody").unwrap();
    assert_eq!(s.writebacks(10).unwrap(), [wb("B", 3)]);
}

async fn users_console_sessions_and_the_audit_log(open: Open) {
    use crate::store::{AuditEntry, AuditFilter, Role, UserRecord, WebSession};
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let user = |name: &str, role| UserRecord {
        name: name.into(),
        role,
        password_hash: "$argon2id$…".into(),
        disabled: false,
        created_ms: 1,
        failures: 0,
        locked_until_ms: 0,
    };
    assert_eq!(s.user("ops1").unwrap(), None);
    s.put_user(&user("tech1", Role::Technician)).unwrap();
    s.put_user(&user("ops1", Role::Ops)).unwrap();
    let mut disabled = user("ops1", Role::Ops);
    disabled.disabled = true;
    s.put_user(&disabled).unwrap();
    assert_eq!(s.user("ops1").unwrap(), Some(disabled.clone()));
    assert_eq!(
        s.users().unwrap(),
        [disabled, user("tech1", Role::Technician)]
    );

    let ws = |u: &str| WebSession {
        user: u.into(),
        role: Role::Ops,
        csrf: "c".into(),
        created_ms: 1,
        expires_ms: 2,
    };
    s.put_web_session("k1", &ws("ops1")).unwrap();
    s.put_web_session("k2", &ws("tech1")).unwrap();
    assert_eq!(s.web_session("k1").unwrap(), Some(ws("ops1")));
    s.delete_web_sessions(&["k1".into(), "nope".into()])
        .unwrap();
    assert_eq!(s.web_session("k1").unwrap(), None);
    assert_eq!(s.web_sessions().unwrap(), [("k2".to_owned(), ws("tech1"))]);

    let entry = |at_ms, actor: &str, device: Option<&str>| AuditEntry {
        id: 0,
        at_ms,
        actor: actor.into(),
        role: Role::Ops,
        action: "reprovision".into(),
        device_id: device.map(str::to_owned),
        status: 202,
    };
    let first = s.append_audit(entry(10, "ops1", Some("D1"))).unwrap();
    let second = s.append_audit(entry(20, "tech1", Some("D2"))).unwrap();
    let third = s.append_audit(entry(30, "ops1", None)).unwrap();
    assert!(first.id < second.id && second.id < third.id);
    // Ids come from the counter tasks and faults use.
    let task = s.insert_task("D1", reboot(), "reboot", 1).unwrap();
    assert!(task.id > third.id);
    let all = s.audit(&AuditFilter::default(), 10).unwrap();
    assert_eq!(
        all,
        [third.clone(), second.clone(), first.clone()],
        "newest first"
    );
    let of_ops1 = AuditFilter {
        actor: Some("ops1".into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        s.audit(&of_ops1, 10).unwrap(),
        [third.clone(), first.clone()]
    );
    let of_d2 = AuditFilter {
        device_id: Some("D2".into()),
        ..AuditFilter::default()
    };
    assert_eq!(s.audit(&of_d2, 10).unwrap(), std::slice::from_ref(&second));
    let since = AuditFilter {
        since_ms: Some(20),
        ..AuditFilter::default()
    };
    assert_eq!(
        s.audit(&since, 10).unwrap(),
        [third.clone(), second.clone()]
    );
    assert_eq!(
        s.audit(&AuditFilter::default(), 1).unwrap(),
        std::slice::from_ref(&third)
    );
    assert_eq!(s.prune_audit(20).unwrap(), 1);
    assert_eq!(
        s.audit(&AuditFilter::default(), 10).unwrap(),
        [third, second]
    );
}

async fn files_by_id(open: Open) {
    use crate::store::FileRecord;
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let f = |id: &str, url: Option<&str>| FileRecord {
        id: id.into(),
        name: "fw.bin".into(),
        model: Some("XX230v".into()),
        version: None,
        size: 9,
        sha256: "ab".repeat(32),
        created_ms: 3,
        created_by: "ops1".into(),
        url: url.map(str::to_owned),
    };
    s.put_file(&f("00000000000000a1", None)).unwrap();
    s.put_file(&f("00000000000000b2", Some("https://cdn/x")))
        .unwrap();
    assert_eq!(
        s.file("00000000000000a1").unwrap(),
        Some(f("00000000000000a1", None))
    );
    assert_eq!(s.files().unwrap().len(), 2);
    assert!(s.delete_file("00000000000000a1").unwrap());
    assert!(!s.delete_file("00000000000000a1").unwrap());
    assert_eq!(
        s.files().unwrap(),
        [f("00000000000000b2", Some("https://cdn/x"))]
    );
}

async fn issued_tokens_by_hash(open: Open) {
    use crate::store::{IssuedToken, Role};
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let t = |name: &str| IssuedToken {
        name: name.into(),
        role: Role::Ops,
        created_ms: 7,
        created_by: "admin1".into(),
    };
    s.put_issued_token("aa11", &t("billing")).unwrap();
    s.put_issued_token("bb22", &t("probe")).unwrap();
    assert_eq!(s.issued_token("aa11").unwrap(), Some(t("billing")));
    assert_eq!(s.issued_token("aa1").unwrap(), None);
    assert_eq!(s.issued_tokens().unwrap().len(), 2);
    assert!(s.delete_issued_token("aa11").unwrap());
    assert!(!s.delete_issued_token("aa11").unwrap());
    assert_eq!(
        s.issued_tokens().unwrap(),
        [("bb22".to_owned(), t("probe"))]
    );
}

async fn readings_and_alarms_per_device(open: Open) {
    use crate::store::AlarmRecord;
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.put_series("A-1", "rx", b"\x01one").unwrap();
    s.put_series("A-1", "tx", b"\x01two").unwrap();
    s.put_series("A-10", "rx", b"\x01ten").unwrap();
    assert_eq!(s.series("A-1", "rx").unwrap().unwrap(), b"\x01one");
    assert_eq!(s.series("A-10", "rx").unwrap().unwrap(), b"\x01ten");
    assert_eq!(
        s.series("A-1", "r").unwrap(),
        None,
        "a metric prefix is not a metric"
    );
    s.put_series("A-1", "tx", b"").unwrap();
    assert_eq!(
        s.series("A-1", "tx").unwrap(),
        None,
        "an empty record removes it"
    );
    let alarm = |d: &str, kind: &str| AlarmRecord {
        device_id: d.into(),
        kind: kind.into(),
        raised_ms: 5,
        value: Some(-30.0),
        threshold: Some(-27.0),
    };
    s.put_alarm(&alarm("A-1", "optical_rx_low")).unwrap();
    s.put_alarm(&alarm("A-10", "optical_rx_high")).unwrap();
    assert_eq!(
        s.alarms(Some("A-1")).unwrap(),
        [alarm("A-1", "optical_rx_low")]
    );
    assert_eq!(s.alarms(None).unwrap().len(), 2);
    assert!(s.delete_alarm("A-1", "optical_rx_low").unwrap());
    assert!(!s.delete_alarm("A-1", "optical_rx_low").unwrap());
    // Deleting a device takes its readings and alarms along.
    s.put_device(&device("A-10")).unwrap();
    assert!(s.delete_device("A-10").unwrap());
    assert_eq!(s.series("A-10", "rx").unwrap(), None);
    assert!(s.alarms(None).unwrap().is_empty());
    assert!(s.series("A-1", "rx").unwrap().is_some());
}

async fn delete_device_removes_every_key_of_that_device_only(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    // Two devices, one id a prefix of the other: nothing may bleed over.
    for id in ["A-1", "A-10"] {
        let mut d = device(id);
        d.identity.serial_number = format!("SN{id}");
        d.tags = vec!["lab".into()];
        s.put_device(&d).unwrap();
        s.put_values(id, &[("Device.X.A".into(), param("1"))])
            .unwrap();
        s.put_inform_values(id, &[("Device.X.B".into(), param("2"))])
            .unwrap();
        s.put_writability(id, &[("Device.X.A".into(), true)])
            .unwrap();
        s.replace_subtrees(
            id,
            &["Device.T.".into()],
            &[("Device.T.1.V".into(), param("3"))],
        )
        .unwrap();
        s.insert_task(id, reboot(), "reboot", 1).unwrap();
        s.record_fault(NewFault {
            device_id: id.into(),
            at_ms: 1,
            source: "cpe",
            code: 9002,
            message: "m".into(),
            rpc: None,
            task_id: None,
        })
        .unwrap();
        s.put_writeback(&Writeback {
            device_id: id.into(),
            equipment: "EQ".into(),
            cwmp_serial: "SN".into(),
            at_ms: 1,
            attempts: 0,
        })
        .unwrap();
        s.put_data_model(&format!("d/{id}"), b"delta").unwrap();
    }
    let gone_task = s.tasks("A-1").unwrap()[0].id;
    let kept_task = s.tasks("A-10").unwrap()[0].id;

    assert!(s.delete_device("A-1").unwrap());
    assert!(!s.delete_device("A-1").unwrap());
    assert!(!s.delete_device("nobody").unwrap());
    s.sync().await.unwrap();

    assert_eq!(s.device("A-1").unwrap(), None);
    assert!(s.parameters("A-1", "").unwrap().is_empty());
    assert!(s.tasks("A-1").unwrap().is_empty());
    assert_eq!(s.task(gone_task).unwrap(), None);
    assert!(s.faults(Some("A-1"), 10).unwrap().is_empty());
    assert!(
        s.search_devices(&["sna-1".into()], None, 10)
            .unwrap()
            .iter()
            .all(|d| d != "A-1")
    );
    assert!(
        s.writebacks(10)
            .unwrap()
            .iter()
            .all(|w| w.device_id != "A-1")
    );
    assert_eq!(s.data_model("d/A-1").unwrap(), None);
    assert_eq!(
        s.list_devices(None, 10)
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        ["A-10"]
    );

    // The other device is whole.
    assert_eq!(names(&s.parameters("A-10", "").unwrap()).len(), 3);
    assert_eq!(s.task(kept_task).unwrap().unwrap().device_id, "A-10");
    assert_eq!(s.faults(Some("A-10"), 10).unwrap().len(), 1);
    assert_eq!(
        s.search_devices(&["sna-10".into()], None, 10).unwrap(),
        ["A-10"]
    );
    assert_eq!(s.writebacks(10).unwrap().len(), 1);
    assert!(s.data_model("d/A-10").unwrap().is_some());
}

async fn a_filled_store_reads_back_the_same_after_reopen(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let s = open(dir.path());
        fill(&*s);
        s.sync().await.unwrap();
        snapshot(&*s)
    };
    let s = open(dir.path());
    assert_eq!(snapshot(&*s), before);
}

/// A bit of everything the store keeps.
fn fill(s: &dyn Store) {
    for i in 0..30u32 {
        let id = format!("OUI-SN{i}");
        let mut d = searchable(
            &id,
            &format!("SN{i}"),
            Some(&format!("aa:bb:cc:dd:ee:{i:02x}")),
        );
        d.provisioning.equipment = Some(format!("EQ-{i}"));
        d.inform_count = u64::from(i);
        s.put_device(&d).unwrap();
        if i % 2 == 0 {
            // A check-in: half the devices have a contact of their own.
            d.last_inform_ms += 60_000;
            d.inform_count += 1;
            s.put_device(&d).unwrap();
        }
        s.put_inform_values(
            &id,
            &[
                ("Device.DeviceInfo.UpTime".into(), param(&i.to_string())),
                ("Device.ManagementServer.ParameterKey".into(), param("k")),
            ],
        )
        .unwrap();
        s.put_values(
            &id,
            &[(
                format!("Device.WiFi.SSID.{i}.SSID"),
                CachedValue {
                    updated_ms: 50,
                    ..param("ssid")
                },
            )],
        )
        .unwrap();
        s.put_writability(&id, &[(format!("Device.WiFi.SSID.{i}.SSID"), true)])
            .unwrap();
        s.replace_subtrees(
            &id,
            &["Device.Hosts.".into()],
            &[(format!("Device.Hosts.Host.{i}.HostName"), param("pc"))],
        )
        .unwrap();
        let mut t = s.insert_task(&id, reboot(), "reboot", 3).unwrap();
        if i % 3 == 0 {
            t.status = TaskStatus::Done;
            s.put_task(&t).unwrap();
        }
        if i % 4 == 0 {
            s.record_fault(new_fault(&id, 9000 + i)).unwrap();
        }
        if i % 5 == 0 {
            s.put_writeback(&Writeback {
                device_id: id.clone(),
                equipment: format!("EQ-{i}"),
                cwmp_serial: format!("SN{i}"),
                at_ms: 7,
                attempts: i,
            })
            .unwrap();
            s.put_cpe_credential(&CpeCredential {
                username: format!("user{i}"),
                password: format!("pw{i}"),
                device_id: Some(id.clone()),
            })
            .unwrap();
        }
    }
    s.delete_fault(s.faults(None, 1).unwrap()[0].id).unwrap();
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    devices: Vec<DeviceRecord>,
    params: Vec<Vec<(String, StoredParam)>>,
    tasks: Vec<Vec<Task>>,
    faults: Vec<FaultRecord>,
    writebacks: Vec<Writeback>,
    credentials: Vec<Option<CpeCredential>>,
    searches: Vec<Vec<String>>,
}

/// Every listing of a store filled by [`fill`].
fn snapshot(s: &dyn Store) -> Snapshot {
    let devices = s.list_devices(None, 1000).unwrap();
    let ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
    Snapshot {
        params: ids.iter().map(|id| s.parameters(id, "").unwrap()).collect(),
        tasks: ids.iter().map(|id| s.tasks(id).unwrap()).collect(),
        faults: s.faults(None, 1000).unwrap(),
        writebacks: s.writebacks(1000).unwrap(),
        credentials: (0..30)
            .map(|i| s.cpe_credential(&format!("user{i}")).unwrap())
            .collect(),
        searches: ["sn", "sn1", "eq-2", "aabbccddee0", "oui-sn2", "x"]
            .iter()
            .map(|q| s.search_devices(&search_keys(q), None, 1000).unwrap())
            .collect(),
        devices,
    }
}

fn sled_dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("db")
}

#[tokio::test]
async fn migration_copies_every_sled_tree() {
    let dir = tempfile::tempdir().unwrap();
    let (before, max_id) = {
        let s = SledStore::open(&sled_dir(dir.path()), 8 << 20).unwrap();
        fill(&s);
        s.sync().await.unwrap();
        let max_task = (0..30)
            .flat_map(|i| s.tasks(&format!("OUI-SN{i}")).unwrap())
            .map(|t| t.id)
            .max()
            .unwrap();
        (snapshot(&s), max_task)
    };
    assert_eq!(before.devices.len(), 30);
    assert_eq!(before.faults.len(), 7);
    let s = RedbStore::open(dir.path(), 8 << 20).unwrap();
    assert_eq!(snapshot(&s), before);
    // Ids go on above sled's.
    let t = s.insert_task("OUI-SN0", reboot(), "reboot", 9).unwrap();
    assert!(t.id > max_id);
    assert!(s.record_fault(new_fault("OUI-SN0", 1)).unwrap().id > t.id);
    // sled's directory is kept under another name; nothing else is left.
    assert!(!dir.path().join("db").exists());
    assert!(dir.path().join("db.migrated").is_dir());
    assert!(dir.path().join("store.redb").is_file());
    assert!(!dir.path().join("store.redb.tmp").exists());
    drop(s);
    // A restart opens the redb file, no second migration.
    let s = RedbStore::open(dir.path(), 8 << 20).unwrap();
    assert_eq!(s.tasks("OUI-SN0").unwrap().last().unwrap().id, t.id);
}

#[tokio::test]
async fn an_interrupted_migration_runs_again_from_scratch() {
    for leftover in ["garbage", "partial redb"] {
        let dir = tempfile::tempdir().unwrap();
        let before = {
            let s = SledStore::open(&sled_dir(dir.path()), 8 << 20).unwrap();
            fill(&s);
            s.sync().await.unwrap();
            snapshot(&s)
        };
        // What a crash mid-migration leaves: a temporary file, no store.redb.
        let tmp = dir.path().join("store.redb.tmp");
        if leftover == "garbage" {
            std::fs::write(&tmp, b"not a database").unwrap();
        } else {
            let partial = RedbStore::open_file(&tmp, 1 << 20).unwrap();
            partial.put_device(&device("PARTIAL")).unwrap();
            partial.flush_blocking().unwrap();
        }
        let s = RedbStore::open(dir.path(), 8 << 20).unwrap();
        assert_eq!(snapshot(&s), before, "{leftover}");
        assert_eq!(s.device("PARTIAL").unwrap(), None);
        assert!(!tmp.exists());
    }
}

#[tokio::test]
async fn a_new_data_directory_starts_empty_without_migration() {
    let dir = tempfile::tempdir().unwrap();
    let s = RedbStore::open(dir.path(), 8 << 20).unwrap();
    assert!(s.list_devices(None, 10).unwrap().is_empty());
    assert_eq!(s.insert_task("D", reboot(), "reboot", 1).unwrap().id, 1);
    assert!(!dir.path().join("db").exists());
    assert!(!dir.path().join("db.migrated").exists());
}

/// The error of an open that must fail.
fn open_error<T>(r: StoreResult<T>) -> StoreError {
    match r {
        Ok(_) => panic!("the second open succeeded"),
        Err(e) => e,
    }
}

#[test]
fn a_second_open_of_the_data_directory_says_another_process_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let shown = data_dir.display().to_string();
    let expect_in_use = |e: StoreError, backend: &str| {
        let text = e.to_string();
        assert!(matches!(e, StoreError::InUse { .. }), "{backend}: {e:?}");
        assert!(
            text.starts_with(&format!(
                "data directory {shown} is in use by another gigafibre-acs process"
            )),
            "{backend}: {text}"
        );
        assert!(text.contains("ACS_DATA_DIR"), "{backend}: {text}");
        assert!(!text.contains("WouldBlock"), "{backend}: {text}");
    };

    // sled, in `<data_dir>/db` as the server opens it.
    let first = SledStore::open(&sled_dir(&data_dir), 1 << 20).unwrap();
    expect_in_use(
        open_error(SledStore::open(&sled_dir(&data_dir), 1 << 20)),
        "sled",
    );
    // redb on a data directory whose sled store is held: the migration
    // waits for sled's lock, and leaves the other process's files alone.
    let tmp = data_dir.join("store.redb.tmp");
    std::fs::write(&tmp, b"the other process's migration").unwrap();
    expect_in_use(
        open_error(RedbStore::open(&data_dir, 1 << 20)),
        "redb migrating",
    );
    assert!(tmp.exists());
    assert!(!data_dir.join("store.redb").exists());
    drop(first);
    std::fs::remove_dir_all(&data_dir).unwrap();
    std::fs::create_dir(&data_dir).unwrap();

    // redb, `<data_dir>/store.redb`.
    let first = RedbStore::open(&data_dir, 1 << 20).unwrap();
    expect_in_use(open_error(RedbStore::open(&data_dir, 1 << 20)), "redb");
    drop(first);
    // Released with the store.
    RedbStore::open(&data_dir, 1 << 20).unwrap();
}

#[test]
fn other_open_errors_are_reported_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    for (backend, e) in [
        (
            "sled",
            open_error(SledStore::open(&file.join("db"), 1 << 20)),
        ),
        ("redb", open_error(RedbStore::open(&file, 1 << 20))),
    ] {
        assert!(matches!(e, StoreError::Backend(_)), "{backend}: {e:?}");
        assert!(!e.to_string().contains("in use"), "{backend}: {e}");
    }
}
