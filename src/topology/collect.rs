//! What the collector reads for [`build`](super::build) and
//! [`diagnostics`](super::diagnostics).

use crate::provision::profile::Profile;

use super::params::{as_object, parent};

/// The paths whose values the builder and diagnostics need, for
/// GetParameterValues: object prefixes (ending in '.') or exact
/// parameters, each once, none under another entry, in this order:
///
/// 1. `topology.hosts`, `topology.associated_devices`; for TR-181
///    AccessPoint tables also each concrete AP's `SSIDReference` and the
///    `WiFi.SSID.` and `WiFi.Radio.` tables (the band chain, about 250
///    values on a TP-Link);
/// 2. `topology.multiap_devices`, `topology.dataelements_devices` and the
///    DataElements `Network.ControllerID`;
/// 3. the objects holding the profile's `identity.mac` candidates and
///    `DeviceInfo.ModelName` (the node of a device without mesh tables);
/// 4. the objects holding `optical.rx_power`/`tx_power`, and
///    `Optical.Interface.{i}.Status` when the readings sit below it;
/// 5. `topology.wan_ip`, and on TR-181 `IP.Interface.` (IPv6 addresses and
///    interface names).
///
/// `*` instances are cut to the object above them
/// (`Device.IP.Interface.*.IPv4Address.*.IPAddress` → `Device.IP.Interface.`).
///
/// A CPE answers a whole GetParameterValues with fault 9005 when one name
/// does not exist (a vendor object the unit lacks, an `identity.mac`
/// candidate of another firmware revision): send the entries as separate
/// requests, or drop the faulting entry and retry.
pub fn collect_paths(profile: &Profile) -> Vec<String> {
    let root = profile.root.as_str();
    let t = &profile.topology;
    let mut out: Vec<String> = Vec::new();

    if let Some(h) = &t.hosts {
        out.push(cut(&as_object(h)));
    }
    let ap_table = format!("{root}WiFi.AccessPoint.");
    let mut chain = false;
    for a in &t.associated_devices {
        let a = as_object(a);
        out.push(cut(&a));
        if root == "Device." && a.starts_with(&ap_table) {
            chain = true;
            let seg = a[ap_table.len()..].split('.').next().unwrap_or("");
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                out.push(format!("{ap_table}{seg}.SSIDReference"));
            }
        }
    }
    if chain {
        out.push(format!("{root}WiFi.SSID."));
        out.push(format!("{root}WiFi.Radio."));
    }

    if let Some(m) = &t.multiap_devices {
        out.push(cut(&as_object(m)));
    }
    if let Some(d) = &t.dataelements_devices {
        let d = cut(&as_object(d));
        if d.ends_with(".Network.Device.") {
            if let Some(network) = parent(&d) {
                out.push(format!("{network}ControllerID"));
            }
        }
        out.push(d);
    }

    // The device's own MAC: its first candidates are enough.
    for m in profile.identity.mac.iter().take(3) {
        if let Some(obj) = parent(m) {
            out.push(cut(obj));
        }
    }
    out.push(format!("{root}DeviceInfo.ModelName"));

    for o in &profile.optical {
        for reading in [&o.rx_power, &o.tx_power] {
            if let Some(obj) = parent(reading) {
                out.push(cut(obj));
            }
        }
        let optical = format!("{root}Optical.Interface.");
        if let Some(rest) = o.rx_power.strip_prefix(&optical) {
            let seg = rest.split('.').next().unwrap_or("");
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                out.push(format!("{optical}{seg}.Status"));
            }
        }
    }

    for w in &t.wan_ip {
        out.push(cut(w));
    }
    if root == "Device." {
        out.push(format!("{root}IP.Interface."));
    }

    // Each once, and nothing already read through an object above it.
    let mut unique: Vec<String> = Vec::new();
    for path in out {
        if !path.is_empty() && !unique.contains(&path) {
            unique.push(path);
        }
    }
    let covered = |path: &String, list: &[String]| {
        list.iter()
            .any(|o| o != path && o.ends_with('.') && path.starts_with(o.as_str()))
    };
    unique
        .iter()
        .filter(|p| !covered(p, &unique))
        .cloned()
        .collect()
}

/// The path up to the object above its first `*` segment.
fn cut(path: &str) -> String {
    let mut end = 0;
    for seg in path.split('.') {
        if seg == "*" {
            return path[..end].to_owned();
        }
        end += seg.len() + 1;
    }
    path.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::profile::Profiles;

    #[test]
    fn cuts_at_the_first_wildcard() {
        assert_eq!(
            cut("Device.IP.Interface.*.IPv4Address.*.IPAddress"),
            "Device.IP.Interface."
        );
        assert_eq!(
            cut("Device.WiFi.AccessPoint.*.AssociatedDevice."),
            "Device.WiFi.AccessPoint."
        );
        assert_eq!(cut("Device.Hosts.Host."), "Device.Hosts.Host.");
        assert_eq!(cut("Device.A.B"), "Device.A.B");
    }

    #[test]
    fn builtin_profiles() {
        let profiles = Profiles::load(None).unwrap();
        let get = |name: &str| match profiles.get(name) {
            Some(p) => collect_paths(p),
            None => collect_paths(&crate::topology::test_generic(name)),
        };
        assert_eq!(
            get("tplink-deco"),
            [
                "Device.Hosts.Host.",
                "Device.WiFi.AccessPoint.1.AssociatedDevice.",
                "Device.WiFi.AccessPoint.1.SSIDReference",
                "Device.WiFi.AccessPoint.3.AssociatedDevice.",
                "Device.WiFi.AccessPoint.3.SSIDReference",
                "Device.WiFi.SSID.",
                "Device.WiFi.Radio.",
                "Device.WiFi.MultiAP.APDevice.",
                "Device.WiFi.DataElements.Network.ControllerID",
                "Device.WiFi.DataElements.Network.Device.",
                "Device.Ethernet.Interface.1.",
                "Device.DeviceInfo.ModelName",
                "Device.IP.Interface.",
            ]
        );
        assert_eq!(
            get("tplink-tplg-ont"),
            [
                "Device.Hosts.Host.",
                "Device.WiFi.AccessPoint.1.AssociatedDevice.",
                "Device.WiFi.AccessPoint.1.SSIDReference",
                "Device.WiFi.AccessPoint.3.AssociatedDevice.",
                "Device.WiFi.AccessPoint.3.SSIDReference",
                "Device.WiFi.SSID.",
                "Device.WiFi.Radio.",
                "Device.Ethernet.Interface.1.",
                "Device.DeviceInfo.ModelName",
                "Device.Optical.Interface.1.X_TP_GPON_Config.",
                "Device.Optical.Interface.1.Status",
                "Device.IP.Interface.",
                "Device.PPP.Interface.",
            ]
        );
        assert_eq!(
            get("generic-tr181"),
            [
                "Device.Hosts.Host.",
                "Device.WiFi.AccessPoint.",
                "Device.WiFi.SSID.",
                "Device.WiFi.Radio.",
                "Device.WiFi.DataElements.Network.ControllerID",
                "Device.WiFi.DataElements.Network.Device.",
                "Device.Ethernet.Interface.1.",
                "Device.DeviceInfo.ModelName",
                "Device.Optical.Interface.1.",
                "Device.IP.Interface.",
            ]
        );
        assert_eq!(
            get("raisecom-rcmg-ont"),
            [
                "InternetGatewayDevice.LANDevice.1.Hosts.Host.",
                "InternetGatewayDevice.DeviceInfo.",
                "InternetGatewayDevice.LANDevice.1.LANEthernetInterfaceConfig.1.",
                "InternetGatewayDevice.WANDevice.",
            ]
        );
        assert_eq!(
            get("generic-tr098"),
            [
                "InternetGatewayDevice.LANDevice.1.Hosts.Host.",
                "InternetGatewayDevice.LANDevice.1.LANEthernetInterfaceConfig.1.",
                "InternetGatewayDevice.DeviceInfo.ModelName",
                "InternetGatewayDevice.WANDevice.",
            ]
        );
        // Every profile: no entry under another, every entry under the root.
        for p in profiles.all() {
            let list = collect_paths(p);
            for a in &list {
                assert!(a.starts_with(&p.root), "{}: {a}", p.name);
                assert!(!a.contains('*'), "{}: {a}", p.name);
                for b in &list {
                    assert!(
                        a == b || !(b.ends_with('.') && a.starts_with(b.as_str())),
                        "{}: {a} under {b}",
                        p.name
                    );
                }
            }
        }
    }
}
