//! The builder and diagnostics on the real device exports the simulator
//! ships (`simulators/models/*.csv`, GenieACS CSV).

use std::path::Path;

use crate::provision::profile::Profiles;

use super::{Connection, NodeRole, Params, build, diagnostics};

/// Placeholder values for one simulated device.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("{{MAC_LOWER}}", "1c:61:b4:00:00:01"),
    ("{{MAC}}", "1C:61:B4:00:00:01"),
    ("{{WAN_IP}}", "100.64.0.9"),
    ("{{SERIAL}}", "2226469000523"),
    ("{{GPON_SN_HEX}}", "54504C47B4FB2AC8"),
    ("{{GPON_SN}}", "TPLGB4FB2AC8"),
    ("{{CR_URL}}", "http://100.64.0.9:7547/cr"),
    ("{{ACS_URL}}", "https://acs.example.net/"),
];

/// The `Value` of a row: the sixth column, always double-quoted (`""`
/// inside for a quote). The five columns before it are never quoted.
fn value_column(rest: &str) -> Option<String> {
    let body = rest.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            if chars.peek() == Some(&'"') {
                chars.next();
                out.push('"');
            } else {
                return Some(out);
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// Leaf parameters of an export: skips the `#` line, the header and object
/// rows; replaces placeholders.
fn load(file: &str) -> Params {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("simulators/models")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut params = Params::new();
    for line in text.lines() {
        if line.starts_with('#') || line.starts_with("Parameter,") || line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.splitn(6, ',').collect();
        assert_eq!(cols.len(), 6, "{line}");
        if cols[1] == "true" {
            continue;
        }
        let mut value = value_column(cols[5]).unwrap();
        for (token, v) in PLACEHOLDERS {
            value = value.replace(token, v);
        }
        assert!(!value.contains("{{"), "{line}");
        params.insert(cols[0].to_owned(), value);
    }
    params
}

#[test]
fn deco_export() {
    let params = load("deco.csv");
    assert!(params.len() > 1500);
    let profiles = Profiles::load(None).unwrap();
    let profile = profiles.get("tplink-deco").unwrap();
    let t = build(&params, profile);

    assert_eq!(t.nodes.len(), 1);
    let c = &t.nodes[0];
    assert_eq!(c.mac, "1c:61:b4:00:00:01");
    assert_eq!(c.role, NodeRole::Controller);
    assert_eq!(c.model.as_deref(), Some("EX220"));
    assert_eq!(c.hostname.as_deref(), Some("EX220_9E1E"));
    assert_eq!(c.ip.as_deref(), Some("192.168.0.1"));
    assert_eq!(c.active, Some(true));
    assert_eq!(c.backhaul, None);

    let got: Vec<_> = c
        .clients
        .iter()
        .map(|x| {
            (
                x.mac.as_str(),
                x.connection,
                x.signal_dbm,
                x.ip.as_deref(),
                x.hostname.as_deref(),
                x.active,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            // -34 dBm under AccessPoint, RCPI 152 under MultiAP/DataElements.
            (
                "5c:f9:38:99:45:38",
                Connection::Wifi24,
                Some(-34.0),
                Some("192.168.0.2"),
                Some("cassios-mac"),
                Some(true)
            ),
            // -55 dBm / RCPI 110; host name "Unknown" is TP-Link's placeholder.
            (
                "04:b1:67:52:3b:72",
                Connection::Wifi5,
                Some(-55.0),
                Some("192.168.0.3"),
                None,
                Some(true)
            ),
            (
                "88:36:cf:b9:24:a5",
                Connection::Ethernet,
                None,
                Some("192.168.0.4"),
                None,
                Some(false)
            ),
        ]
    );
    assert!(t.unplaced.is_empty());
    assert_eq!(
        (
            t.totals.wifi_direct,
            t.totals.wifi_via_mesh,
            t.totals.wired,
            t.totals.all
        ),
        (2, 0, 1, 3)
    );

    let d = diagnostics(&params, profile);
    assert_eq!(d.optical, None);
    let wan: Vec<_> = d
        .wan_ipv4
        .iter()
        .map(|w| (w.address.as_str(), w.path.as_str(), w.interface.as_deref()))
        .collect();
    assert_eq!(
        wan,
        [(
            "100.64.0.9",
            "Device.IP.Interface.4.IPv4Address.1.IPAddress",
            Some("eth1@0")
        )]
    );
}

#[test]
fn tplg_ont_export() {
    let params = load("tplg-ont.csv");
    let profiles = Profiles::load(None).unwrap();
    let profile = profiles.get("tplink-tplg-ont").unwrap();

    let d = diagnostics(&params, profile);
    let o = d.optical.unwrap();
    assert_eq!(o.rx_raw.as_deref(), Some("5624"));
    assert_eq!(o.tx_raw.as_deref(), Some("14880"));
    assert_eq!(o.rx_dbm, Some(-2.5));
    assert_eq!(o.tx_dbm, Some(1.73));
    assert_eq!(o.unit, "0.1uW");
    assert_eq!(o.status.as_deref(), Some("Up"));
    // IP.Interface.6 (ppp0) and its PPP mirror: one address.
    let wan: Vec<_> = d
        .wan_ipv4
        .iter()
        .map(|w| (w.address.as_str(), w.path.as_str(), w.interface.as_deref()))
        .collect();
    assert_eq!(
        wan,
        [(
            "100.64.0.9",
            "Device.IP.Interface.6.IPv4Address.1.IPAddress",
            Some("ppp0")
        )]
    );
    assert!(d.wan_ipv6.is_empty());

    // No mesh: one node, the station on AccessPoint 3 (SSID 3 → Radio 2,
    // 5 GHz), signal 0 = not measured, inactive per Hosts.
    let t = build(&params, profile);
    assert_eq!(t.nodes.len(), 1);
    let n = &t.nodes[0];
    assert_eq!(n.mac, "1c:61:b4:00:00:01");
    assert_eq!(n.model.as_deref(), Some("XX230v"));
    assert_eq!(n.clients.len(), 1);
    let s = &n.clients[0];
    assert_eq!(s.mac, "3c:06:30:2d:42:fb");
    assert_eq!(s.connection, Connection::Wifi5);
    assert_eq!(s.signal_dbm, None);
    assert_eq!(s.hostname.as_deref(), Some("MBP-de-Gaspare"));
    assert_eq!(s.active, Some(false));
    assert_eq!(t.totals.all, 1);
}

#[test]
fn rcmg_ont_export() {
    let params = load("rcmg-ont.csv");
    let profiles = Profiles::load(None).unwrap();
    let profile = profiles.get("raisecom-rcmg-ont").unwrap();

    let d = diagnostics(&params, profile);
    let o = d.optical.unwrap();
    assert_eq!((o.rx_dbm, o.tx_dbm), (Some(-8.91), Some(1.73)));
    assert_eq!(o.status.as_deref(), Some("Up"));
    let wan: Vec<_> = d
        .wan_ipv4
        .iter()
        .map(|w| (w.address.as_str(), w.interface.as_deref()))
        .collect();
    assert_eq!(
        wan,
        [
            ("10.201.37.14", Some("1_TR069_R_VID_10")),
            ("100.64.0.9", Some("2_INTERNET_R_VID_100")),
            ("10.64.118.9", Some("3_VOIP_R_VID_30")),
        ]
    );

    let t = build(&params, profile);
    assert_eq!(t.nodes.len(), 1);
    assert_eq!(t.nodes[0].mac, "1c:61:b4:00:00:01");
    let got: Vec<_> = t.nodes[0]
        .clients
        .iter()
        .map(|c| (c.mac.as_str(), c.connection, c.active))
        .collect();
    assert_eq!(
        got,
        [
            ("8c:f5:a3:4e:91:27", Connection::Wifi24, Some(true)),
            ("3c:a9:f4:6b:02:d8", Connection::Wifi5, Some(true)),
            ("a8:23:fe:19:c4:5a", Connection::Ethernet, Some(true)),
            ("00:1e:8f:7a:33:10", Connection::Wifi24, Some(false)),
        ]
    );
    assert_eq!(
        (t.totals.wifi_direct, t.totals.wired, t.totals.all),
        (3, 1, 4)
    );
}
