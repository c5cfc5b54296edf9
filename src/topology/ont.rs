//! ONT diagnostics: optical power and WAN addresses.
//!
//! Optical: the profile's `optical.rx_power`/`tx_power` converted from the
//! profile's unit ([`optical_dbm`]); the link status is the `Status` of the
//! object holding the readings or of the object above it, a word ("Up")
//! preferred over a number (TP-Link `X_TP_GPON_Config.Status` is the ONU
//! state "5"; `Optical.Interface.1.Status` above it says "Up").
//!
//! WAN: the profile's `topology.wan_ip` patterns expanded against the
//! values, plus on TR-181 devices `IP.Interface.*.IPv6Address.*.IPAddress`.
//! Kept: IPv4 addresses except `0.0.0.0`, loopback, link-local
//! (169.254/16), multicast and broadcast, and except private (RFC 1918)
//! addresses of the LAN side (a TR-098 `LANDevice` path, or a TR-181 IP
//! interface that TP-Link marks `X_TP_ConnType` LAN, whose `Name` starts
//! with "br", or that sits on a bridge). Private and CGNAT addresses of WAN
//! interfaces stay: an ISP's WAN address may be 10.x or 100.64.x. IPv6:
//! global unicast (2000::/3) only. Each address once, first path wins.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::provision::profile::{OpticalPaths, PowerUnit, Profile};

use super::params::{as_object, expand, field, instance_ancestors, parent, parse_number, text};
use super::{OntDiagnostics, Optical, Params, WanAddress};

/// Optical power in dBm from a raw reading in `unit`, rounded to 2
/// decimals:
/// - 0.1 µW (`"0.1uW"`): 10·log10(v / 10000), v ≤ 0 → `None`
///   (5624 → −2.50, 14880 → +1.73, 1285 → −8.91);
/// - 0.001 dBm: v / 1000; 0.1 dBm: v / 10; dBm: v (a decimal string such
///   as "-19.21", an optional "dBm" suffix tolerated).
///
/// Text that is not a number → `None`.
pub fn optical_dbm(raw: &str, unit: PowerUnit) -> Option<f64> {
    let v = parse_number(raw)?;
    let unit = match unit {
        // An unknown vendor field: a sign or a decimal point says dBm.
        PowerUnit::Auto if raw.contains(['.', '-']) => PowerUnit::Dbm,
        PowerUnit::Auto => PowerUnit::TenthMicrowatt,
        u => u,
    };
    let dbm = match unit {
        PowerUnit::TenthMicrowatt | PowerUnit::Auto => {
            if v <= 0.0 {
                return None;
            }
            10.0 * (v / 10_000.0).log10()
        }
        PowerUnit::ThousandthDbm => v / 1000.0,
        PowerUnit::TenthDbm => v / 10.0,
        PowerUnit::Dbm => v,
    };
    let rounded = (dbm * 100.0).round() / 100.0;
    // No "-0.0" in the JSON.
    rounded
        .is_finite()
        .then_some(if rounded == 0.0 { 0.0 } else { rounded })
}

/// Received and transmitted optical power of a PON transceiver lies
/// between these (dBm); a conversion landing outside is the wrong unit.
const PLAUSIBLE_DBM: std::ops::RangeInclusive<f64> = -60.0..=15.0;

/// [`optical_dbm`], guarding against a field whose unit is not the one its
/// name suggests (vendors differ even under one object name): a signed or
/// fractional value is never tenths of µW, and a result outside
/// [`PLAUSIBLE_DBM`] is read in the other units (a positive integer first
/// as 0.1 µW, a negative one as dBm, 0.1 dBm, 0.001 dBm); none plausible:
/// no reading.
pub fn plausible_dbm(raw: &str, unit: PowerUnit) -> Option<f64> {
    let unit = match unit {
        PowerUnit::TenthMicrowatt if raw.contains(['.', '-']) => PowerUnit::Dbm,
        u => u,
    };
    if let Some(d) = optical_dbm(raw, unit).filter(|d| PLAUSIBLE_DBM.contains(d)) {
        return Some(d);
    }
    let v = parse_number(raw)?;
    let order: &[PowerUnit] = if v > 0.0 && !raw.contains('.') {
        &[
            PowerUnit::TenthMicrowatt,
            PowerUnit::Dbm,
            PowerUnit::TenthDbm,
            PowerUnit::ThousandthDbm,
        ]
    } else {
        &[
            PowerUnit::Dbm,
            PowerUnit::TenthDbm,
            PowerUnit::ThousandthDbm,
        ]
    };
    order
        .iter()
        .filter(|u| **u != unit)
        .find_map(|u| optical_dbm(raw, *u).filter(|d| PLAUSIBLE_DBM.contains(d)))
}

/// The unit as the profile TOML writes it.
fn unit_label(unit: PowerUnit) -> &'static str {
    match unit {
        PowerUnit::TenthMicrowatt => "0.1uW",
        PowerUnit::ThousandthDbm => "0.001dBm",
        PowerUnit::TenthDbm => "0.1dBm",
        PowerUnit::Dbm => "dBm",
        PowerUnit::Auto => "auto",
    }
}

/// Optical power and WAN addresses of one device from its cached values.
/// Rules: this module's docs.
pub fn diagnostics(params: &Params, profile: &Profile) -> OntDiagnostics {
    let (wan_ipv4, wan_ipv6) = wan_addresses(params, profile);
    OntDiagnostics {
        optical: optical(params, &profile.optical),
        wan_ipv4,
        wan_ipv6,
    }
}

/// A raw reading that is exactly zero.
fn is_zero(raw: Option<&str>) -> bool {
    raw.and_then(parse_number) == Some(0.0)
}

/// The optical readings: the first pair whose receive power is a non-zero
/// number (TP-Link leaves the standard fields at 0 and reports in vendor
/// ones). A value of exactly 0 while another field holds a reading, or
/// with the link down, is no reading, never 0.0 dBm.
fn optical(p: &Params, candidates: &[OpticalPaths]) -> Option<Optical> {
    let read: Vec<(&OpticalPaths, Option<&str>, Option<&str>)> = candidates
        .iter()
        .map(|o| (o, text(p, &o.rx_power), text(p, &o.tx_power)))
        .filter(|(_, rx, tx)| rx.is_some() || tx.is_some())
        .collect();
    let some_reading = read
        .iter()
        .flat_map(|(_, rx, tx)| [*rx, *tx])
        .any(|v| v.and_then(parse_number).is_some_and(|n| n != 0.0));
    let (o, rx_raw, tx_raw) = read
        .iter()
        .find(|(_, rx, _)| rx.and_then(parse_number).is_some_and(|n| n != 0.0))
        .or_else(|| read.first())
        .copied()?;
    let status = link_status(p, &o.rx_power).or_else(|| link_status(p, &o.tx_power));
    let down = status.as_deref().is_some_and(link_down);
    let dbm = |raw: Option<&str>| {
        if is_zero(raw) && (down || some_reading) {
            return None;
        }
        raw.and_then(|r| plausible_dbm(r, o.unit))
    };
    Some(Optical {
        rx_dbm: dbm(rx_raw),
        tx_dbm: dbm(tx_raw),
        rx_raw: rx_raw.map(str::to_owned),
        tx_raw: tx_raw.map(str::to_owned),
        unit: unit_label(o.unit).to_owned(),
        status,
    })
}

/// A link status that says the fibre link is not up.
fn link_down(status: &str) -> bool {
    let s = status.trim().to_ascii_lowercase();
    matches!(
        s.as_str(),
        "down" | "lowerlayerdown" | "notpresent" | "error" | "disabled" | "nosignal" | "los"
    ) || crate::cwmp::parse_bool(&s) == Some(false)
}

/// `Status` of the object holding `reading` or the one above it; a word
/// beats a number.
fn link_status(p: &Params, reading: &str) -> Option<String> {
    let mut numeric = None;
    let mut obj = parent(reading);
    for _ in 0..2 {
        let Some(o) = obj else { break };
        if let Some(s) = field(p, o, "Status") {
            if parse_number(s).is_none() {
                return Some(s.to_owned());
            }
            numeric.get_or_insert_with(|| s.to_owned());
        }
        obj = parent(o);
    }
    numeric
}

fn wan_addresses(p: &Params, profile: &Profile) -> (Vec<WanAddress>, Vec<WanAddress>) {
    let root = profile.root.as_str();
    let mut patterns: Vec<String> = profile.topology.wan_ip.clone();
    if root == "Device." {
        patterns.push(format!("{root}IP.Interface.*.IPv6Address.*.IPAddress"));
    }
    let mut seen: HashSet<IpAddr> = HashSet::new();
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for pattern in &patterns {
        for path in expand(p, pattern) {
            let Some(raw) = text(p, &path) else { continue };
            let bare = raw.split_once('/').map_or(raw, |(a, _)| a).trim();
            let Ok(ip) = bare.parse::<IpAddr>() else {
                continue;
            };
            let keep = match ip {
                IpAddr::V4(a) => wan_v4(a) && !(a.is_private() && lan_side(p, &path, root)),
                IpAddr::V6(a) => global_v6(a),
            };
            if !keep || !seen.insert(ip) {
                continue;
            }
            let found = WanAddress {
                address: ip.to_string(),
                interface: interface_name(p, &path),
                path,
            };
            match ip {
                IpAddr::V4(_) => v4.push(found),
                IpAddr::V6(_) => v6.push(found),
            }
        }
    }
    (v4, v6)
}

fn wan_v4(a: Ipv4Addr) -> bool {
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_link_local()
        || a.is_multicast()
        || a.is_broadcast())
}

/// Global unicast, 2000::/3.
fn global_v6(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xe000 == 0x2000
}

/// The instance object of `table` (`Device.IP.Interface.`) that `path` is
/// under (`Device.IP.Interface.4.`).
fn instance_under<'a>(path: &'a str, table: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(table)?;
    let seg = rest.split('.').next()?;
    let end = table.len() + seg.len() + 1;
    (!seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) && end <= path.len())
        .then(|| &path[..end])
}

/// Whether the address at `path` belongs to the LAN side.
fn lan_side(p: &Params, path: &str, root: &str) -> bool {
    if path.contains(".LANDevice.") {
        return true;
    }
    let Some(iface) = instance_under(path, &format!("{root}IP.Interface.")) else {
        return false;
    };
    if field(p, iface, "X_TP_ConnType").is_some_and(|t| t.eq_ignore_ascii_case("LAN")) {
        return true;
    }
    if field(p, iface, "Name").is_some_and(|n| n.to_ascii_lowercase().starts_with("br")) {
        return true;
    }
    let bridging = format!("{root}Bridging.");
    field(p, iface, "LowerLayers").is_some_and(|lower| {
        lower.split(',').map(str::trim).any(|r| {
            r.starts_with(&bridging)
                || field(p, &as_object(r), "LowerLayers").is_some_and(|l| l.contains(&bridging))
        })
    })
}

/// Name of the interface/connection holding `path`: the nearest `Name`
/// above it, else the nearest `Alias` that is not an automatic `cpe-...`
/// one.
fn interface_name(p: &Params, path: &str) -> Option<String> {
    let ancestors = instance_ancestors(path);
    ancestors
        .iter()
        .find_map(|a| field(p, a, "Name"))
        .or_else(|| {
            ancestors
                .iter()
                .find_map(|a| field(p, a, "Alias").filter(|n| !n.starts_with("cpe-")))
        })
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::profile::Profiles;

    fn params(kv: &[(&str, &str)]) -> Params {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_field_in_another_unit_than_its_name_says_is_still_read_right() {
        // A vendor field thought to be 0.1 uW that holds dBm.
        assert_eq!(
            plausible_dbm("-20.5", PowerUnit::TenthMicrowatt),
            Some(-20.5)
        );
        assert_eq!(plausible_dbm("2.31", PowerUnit::TenthMicrowatt), Some(2.31));
        // Thought to be dBm, holding 0.1 uW or 0.1 dBm.
        assert_eq!(plausible_dbm("5624", PowerUnit::Dbm), Some(-2.5));
        assert_eq!(plausible_dbm("-215", PowerUnit::Dbm), Some(-21.5));
        // Right as labelled.
        assert_eq!(
            plausible_dbm("-19210", PowerUnit::ThousandthDbm),
            Some(-19.21)
        );
        assert_eq!(
            plausible_dbm("1285", PowerUnit::TenthMicrowatt),
            Some(-8.91)
        );
        // Nothing plausible: no reading rather than a wrong one.
        assert_eq!(plausible_dbm("99999999999", PowerUnit::Dbm), None);
        assert_eq!(plausible_dbm("n/a", PowerUnit::Dbm), None);
    }

    #[test]
    fn optical_conversions() {
        use PowerUnit::*;
        assert_eq!(optical_dbm("5624", TenthMicrowatt), Some(-2.5));
        assert_eq!(optical_dbm("14880", TenthMicrowatt), Some(1.73));
        assert_eq!(optical_dbm("1285", TenthMicrowatt), Some(-8.91));
        assert_eq!(optical_dbm("10000", TenthMicrowatt), Some(0.0));
        assert_eq!(optical_dbm("0", TenthMicrowatt), None);
        assert_eq!(optical_dbm("-3", TenthMicrowatt), None);
        assert_eq!(optical_dbm("-19.21", Dbm), Some(-19.21));
        assert_eq!(optical_dbm(" -19.21 dBm", Dbm), Some(-19.21));
        assert_eq!(optical_dbm("-19210", ThousandthDbm), Some(-19.21));
        assert_eq!(optical_dbm("2345", ThousandthDbm), Some(2.35));
        assert_eq!(optical_dbm("-192", TenthDbm), Some(-19.2));
        assert_eq!(optical_dbm("25", TenthDbm), Some(2.5));
        assert_eq!(optical_dbm("-0.001", Dbm), Some(0.0));
        for junk in ["", "n/a", "NaN", "inf", "--1"] {
            assert_eq!(optical_dbm(junk, TenthMicrowatt), None, "{junk}");
            assert_eq!(optical_dbm(junk, Dbm), None, "{junk}");
        }
    }

    #[test]
    fn optical_from_profile_paths() {
        let profiles = Profiles::load(None).unwrap();
        let tp = profiles.get("tplink-tplg-ont").unwrap();
        let g = "Device.Optical.Interface.1.";
        let p = params(&[
            (&*format!("{g}X_TP_GPON_Config.RXPower"), "5624"),
            (&*format!("{g}X_TP_GPON_Config.TXPower"), "14880"),
            (&*format!("{g}X_TP_GPON_Config.Status"), "5"),
            (&*format!("{g}Status"), "Up"),
        ]);
        let o = diagnostics(&p, tp).optical.unwrap();
        assert_eq!(o.rx_dbm, Some(-2.5));
        assert_eq!(o.tx_dbm, Some(1.73));
        assert_eq!(o.rx_raw.as_deref(), Some("5624"));
        assert_eq!(o.unit, "0.1uW");
        assert_eq!(o.status.as_deref(), Some("Up"));
        // Only the numeric ONU state: reported as is.
        let p = params(&[
            (&*format!("{g}X_TP_GPON_Config.RXPower"), "junk"),
            (&*format!("{g}X_TP_GPON_Config.Status"), "5"),
        ]);
        let o = diagnostics(&p, tp).optical.unwrap();
        assert_eq!((o.rx_dbm, o.tx_dbm), (None, None));
        assert_eq!(o.rx_raw.as_deref(), Some("junk"));
        assert_eq!(o.status.as_deref(), Some("5"));
        // Nothing reported: no optical section.
        assert_eq!(diagnostics(&Params::new(), tp).optical, None);
        // A profile without optical paths.
        let deco = profiles.get("tplink-deco").unwrap();
        assert_eq!(diagnostics(&p, deco).optical, None);
        // Generic TR-181: 0.001 dBm.
        let generic = &crate::topology::test_generic("generic-tr181");
        let p = params(&[
            (&*format!("{g}OpticalSignalLevel"), "-19210"),
            (&*format!("{g}TransmitOpticalLevel"), "2100"),
            (&*format!("{g}Status"), "Up"),
        ]);
        let o = diagnostics(&p, generic).optical.unwrap();
        assert_eq!((o.rx_dbm, o.tx_dbm), (Some(-19.21), Some(2.1)));
        assert_eq!(o.unit, "0.001dBm");
        assert_eq!(o.status.as_deref(), Some("Up"));
    }

    fn addresses(list: &[WanAddress]) -> Vec<(&str, &str, Option<&str>)> {
        list.iter()
            .map(|w| (w.address.as_str(), w.path.as_str(), w.interface.as_deref()))
            .collect()
    }

    #[test]
    fn wan_tplink_ip_interfaces() {
        let profiles = Profiles::load(None).unwrap();
        let tp = profiles.get("tplink-tplg-ont").unwrap();
        let i = "Device.IP.Interface.";
        let p = params(&[
            // LAN bridge: private addresses dropped.
            (&*format!("{i}1.Name"), "br0"),
            (&*format!("{i}1.X_TP_ConnType"), "LAN"),
            (&*format!("{i}1.IPv4Address.1.IPAddress"), "192.168.1.1"),
            (&*format!("{i}1.IPv4Address.2.IPAddress"), "0.0.0.0"),
            (&*format!("{i}1.IPv6Address.1.IPAddress"), "fe80::1"),
            (&*format!("{i}1.IPv6Address.2.IPAddress"), "2001:db8:1:2::1"),
            // USB interfaces, no address.
            (&*format!("{i}2.IPv4Address.1.IPAddress"), "0.0.0.0"),
            (&*format!("{i}3.IPv4Address.1.IPAddress"), ""),
            // VLAN 6, IPoE management on a private address: kept.
            (&*format!("{i}4.Name"), "eth1.6"),
            (&*format!("{i}4.IPv4Address.1.Alias"), "cpe-ipintfv4addr"),
            (&*format!("{i}4.IPv4Address.1.IPAddress"), "10.12.0.7"),
            // VLAN 2, PPPoE: CGNAT address and a global IPv6.
            (&*format!("{i}6.Alias"), "ppp_0_1_d"),
            (&*format!("{i}6.Name"), "ppp0"),
            (&*format!("{i}6.IPv4Address.1.IPAddress"), "100.64.3.9"),
            (
                &*format!("{i}6.IPv6Address.1.IPAddress"),
                "2001:DB8:FFFF::9",
            ),
            (&*format!("{i}6.IPv6Address.2.IPAddress"), "fd00::9"),
            // Named by alias only.
            (&*format!("{i}7.Alias"), "iptv"),
            (&*format!("{i}7.IPv4Address.1.IPAddress"), "203.0.113.5"),
            (&*format!("{i}8.IPv4Address.1.IPAddress"), "127.0.0.1"),
            (&*format!("{i}9.IPv4Address.1.IPAddress"), "not-an-ip"),
            // The PPP mirror of interface 6: the same address, listed once.
            ("Device.PPP.Interface.3.Name", "ppp0"),
            ("Device.PPP.Interface.3.IPCP.LocalIPAddress", "100.64.3.9"),
            ("Device.PPP.Interface.4.IPCP.LocalIPAddress", "198.51.100.4"),
        ]);
        let d = diagnostics(&p, tp);
        assert_eq!(
            addresses(&d.wan_ipv4),
            [
                (
                    "10.12.0.7",
                    "Device.IP.Interface.4.IPv4Address.1.IPAddress",
                    Some("eth1.6")
                ),
                (
                    "100.64.3.9",
                    "Device.IP.Interface.6.IPv4Address.1.IPAddress",
                    Some("ppp0")
                ),
                (
                    "203.0.113.5",
                    "Device.IP.Interface.7.IPv4Address.1.IPAddress",
                    Some("iptv")
                ),
                (
                    "198.51.100.4",
                    "Device.PPP.Interface.4.IPCP.LocalIPAddress",
                    None
                ),
            ]
        );
        assert_eq!(
            addresses(&d.wan_ipv6),
            [
                (
                    "2001:db8:1:2::1",
                    "Device.IP.Interface.1.IPv6Address.2.IPAddress",
                    Some("br0")
                ),
                (
                    "2001:db8:ffff::9",
                    "Device.IP.Interface.6.IPv6Address.1.IPAddress",
                    Some("ppp0")
                ),
            ]
        );
        assert_eq!(d.optical, None);
    }

    #[test]
    fn lan_bridge_found_through_lower_layers() {
        let generic = &crate::topology::test_generic("generic-tr181");
        let p = params(&[
            (
                "Device.IP.Interface.1.LowerLayers",
                "Device.Ethernet.Link.1.",
            ),
            (
                "Device.Ethernet.Link.1.LowerLayers",
                "Device.Bridging.Bridge.1.Port.1.",
            ),
            (
                "Device.IP.Interface.1.IPv4Address.1.IPAddress",
                "192.168.0.1",
            ),
            (
                "Device.IP.Interface.2.LowerLayers",
                "Device.Bridging.Bridge.2.Port.1.",
            ),
            (
                "Device.IP.Interface.2.IPv4Address.1.IPAddress",
                "172.16.0.1",
            ),
            // Public address on the bridge (routed subnet): kept.
            (
                "Device.IP.Interface.3.LowerLayers",
                "Device.Bridging.Bridge.3.Port.1.",
            ),
            (
                "Device.IP.Interface.3.IPv4Address.1.IPAddress",
                "198.51.100.1",
            ),
            (
                "Device.IP.Interface.4.LowerLayers",
                "Device.Ethernet.VLANTermination.1.",
            ),
            ("Device.IP.Interface.4.IPv4Address.1.IPAddress", "10.0.0.2"),
        ]);
        let d = diagnostics(&p, generic);
        let got: Vec<&str> = d.wan_ipv4.iter().map(|w| w.address.as_str()).collect();
        assert_eq!(got, ["198.51.100.1", "10.0.0.2"]);
    }

    #[test]
    fn wan_raisecom_three_connection_devices() {
        let profiles = Profiles::load(None).unwrap();
        let rc = profiles.get("raisecom-rcmg-ont").unwrap();
        let w = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.";
        let p = params(&[
            (
                &*format!("{w}1.WANIPConnection.1.ExternalIPAddress"),
                "10.201.37.14",
            ),
            (&*format!("{w}1.WANIPConnection.1.Name"), "1_TR069_R_VID_10"),
            (
                &*format!("{w}2.WANIPConnection.1.ExternalIPAddress"),
                "100.64.0.9",
            ),
            (
                &*format!("{w}2.WANIPConnection.1.Name"),
                "2_INTERNET_R_VID_100",
            ),
            (
                &*format!("{w}3.WANIPConnection.1.ExternalIPAddress"),
                "10.64.118.9",
            ),
            (&*format!("{w}3.WANIPConnection.1.Name"), "3_VOIP_R_VID_30"),
            (
                &*format!("{w}4.WANPPPConnection.1.ExternalIPAddress"),
                "0.0.0.0",
            ),
            (
                &*format!("{w}4.WANPPPConnection.1.Name"),
                "4_INTERNET_B_VID_200",
            ),
            // Not WAN: not matched by the profile's patterns at all.
            (
                "InternetGatewayDevice.LANDevice.1.LANHostConfigManagement.IPInterface.1.IPInterfaceIPAddress",
                "192.168.1.1",
            ),
        ]);
        let d = diagnostics(&p, rc);
        assert_eq!(
            addresses(&d.wan_ipv4),
            [
                (
                    "10.201.37.14",
                    &*format!("{w}1.WANIPConnection.1.ExternalIPAddress"),
                    Some("1_TR069_R_VID_10")
                ),
                (
                    "100.64.0.9",
                    &*format!("{w}2.WANIPConnection.1.ExternalIPAddress"),
                    Some("2_INTERNET_R_VID_100")
                ),
                (
                    "10.64.118.9",
                    &*format!("{w}3.WANIPConnection.1.ExternalIPAddress"),
                    Some("3_VOIP_R_VID_30")
                ),
            ]
        );
        assert!(d.wan_ipv6.is_empty());
        assert_eq!(d.optical, None);
    }
}
