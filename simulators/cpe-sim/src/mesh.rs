//! Deco homes: the controller from the real EX220 export plus generated
//! satellites and clients, laid out as TP-Link's firmware reports them:
//! `Device.Hosts.Host.*`, the controller's own `AccessPoint.*.Associated
//! Device.*` (signal in dBm), `MultiAP.APDevice.*` with Primary and Backhaul
//! APs and their associated clients (signal as RCPI 0–255, as TP-Link does
//! although the field says dBm), wired clients under `X_TP_Ethernet`, and
//! `DataElements.Network.Device.*` STAs (RCPI).
//!
//! MACs are `{{MAC_PLUS_n}}` placeholders, so the generated tree is shared
//! by a whole fleet and still gives every home distinct MACs.

use gigafibre_acs::cwmp::ValueType;

use crate::datamodel::{DataModel, Param};

/// Client host names, cycled.
const NAMES: &[&str] = &[
    "iPhone-de-Julie",
    "Galaxy-S23",
    "MacBook-Air",
    "Chromecast",
    "Nest-Thermostat",
    "iPad-Cuisine",
    "PS5",
    "HP-LaserJet",
    "Pixel-8",
    "Surface-Pro",
    "Ring-Doorbell",
    "Roku-Salon",
];

/// Signal of client `c`: dBm between -35 and -80.
fn dbm(c: u8) -> i32 {
    -35 - i32::from(c) * 7 % 46
}

/// IEEE 802.11 RCPI for a dBm value: (dBm + 110) × 2.
pub fn rcpi(dbm: i32) -> u32 {
    ((dbm + 110) * 2).clamp(0, 220) as u32
}

fn put(m: &mut DataModel, path: &str, value: impl Into<String>, kind: ValueType) {
    m.insert_param(
        path,
        Param {
            value: value.into(),
            kind,
            writable: false,
            notification: 0,
            access_list: Vec::new(),
        },
    );
}

fn s(m: &mut DataModel, path: &str, value: impl Into<String>) {
    put(m, path, value, ValueType::String);
}

fn remove_instances(m: &mut DataModel, table: &str, keep_first: bool) {
    let victims: Vec<String> = m
        .objects
        .keys()
        .filter(|k| {
            k.strip_prefix(table)
                .and_then(|r| r.strip_suffix('.'))
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| !(keep_first && n == 1))
        })
        .cloned()
        .collect();
    let objects = std::sync::Arc::make_mut(&mut m.objects);
    let params = std::sync::Arc::make_mut(&mut m.params);
    for v in victims {
        objects.retain(|k, _| !k.starts_with(&v));
        params.retain(|k, _| !k.starts_with(&v));
    }
}

/// Node `n` (0 = controller) MAC placeholder.
fn node_mac(n: u8) -> String {
    if n == 0 {
        "{{MAC}}".to_owned()
    } else {
        format!("{{{{MAC_PLUS_{n}}}}}")
    }
}

/// Replaces the export's hosts and clients by `satellites` satellites and
/// `clients` Wi-Fi clients (plus two wired ones on the controller).
pub fn generate(m: &mut DataModel, satellites: u8, clients: u8) {
    let satellites = satellites.min(8);
    let clients = clients.min(100);
    let root = "Device.WiFi.MultiAP.APDevice.";
    remove_instances(m, "Device.Hosts.Host.", false);
    for ap in [1, 3] {
        remove_instances(
            m,
            &format!("Device.WiFi.AccessPoint.{ap}.AssociatedDevice."),
            false,
        );
    }
    remove_instances(m, root, true);
    for r in 1..=2 {
        for a in 1..=3 {
            remove_instances(
                m,
                &format!("{root}1.Radio.{r}.AP.{a}.AssociatedDevice."),
                false,
            );
        }
    }
    remove_instances(
        m,
        &format!("{root}1.X_TP_Ethernet.AssociatedDevice."),
        false,
    );
    remove_instances(m, "Device.WiFi.DataElements.Network.Device.", true);
    for r in 1..=2 {
        for b in 1..=3 {
            remove_instances(
                m,
                &format!("Device.WiFi.DataElements.Network.Device.1.Radio.{r}.BSS.{b}.STA."),
                false,
            );
        }
    }

    // The ISP's units are Decos running the EX220's TR-181 implementation:
    // they announce themselves as such (profiles match on ModelName).
    s(m, "Device.DeviceInfo.ModelName", "Deco X20");
    s(m, &format!("{root}1.X_TP_ModelName"), "Deco X20");

    // Controller identity in the mesh tables.
    s(m, &format!("{root}1.MACAddress"), "{{MAC}}");
    s(
        m,
        "Device.WiFi.DataElements.Network.ControllerID",
        "{{MAC}}",
    );
    s(m, "Device.WiFi.DataElements.Network.Device.1.ID", "{{MAC}}");
    put(
        m,
        &format!("{root}1.X_TP_IsController"),
        "true",
        ValueType::Boolean,
    );

    for k in 1..=satellites {
        let n = u32::from(k) + 1;
        let p = format!("{root}{n}.");
        s(m, &format!("{p}MACAddress"), node_mac(k));
        s(m, &format!("{p}X_TP_AlMac"), node_mac(k));
        s(m, &format!("{p}X_TP_HostName"), format!("Deco-{k}"));
        s(m, &format!("{p}X_TP_ModelName"), "X20");
        s(
            m,
            &format!("{p}X_TP_IPAddress"),
            format!("192.168.0.{}", 200 + u32::from(k)),
        );
        s(m, &format!("{p}Manufacturer"), "TP-Link");
        put(
            m,
            &format!("{p}X_TP_IsController"),
            "false",
            ValueType::Boolean,
        );
        put(m, &format!("{p}X_TP_Active"), "true", ValueType::Boolean);
        s(
            m,
            &format!("{p}BackhaulLinkType"),
            if k % 2 == 1 { "Wi-Fi" } else { "Ethernet" },
        );
        s(m, &format!("{p}BackhaulMACAddress"), "{{MAC}}");
        put(
            m,
            &format!("{p}BackhaulSignalStrength"),
            rcpi(-48 - 6 * i32::from(k)).to_string(),
            ValueType::UnsignedInt,
        );
        for (r, band) in [(1, ""), (2, "_5G")] {
            s(m, &format!("{p}Radio.{r}.AP.1.X_TP_Type"), "Backhaul");
            s(m, &format!("{p}Radio.{r}.AP.2.X_TP_Type"), "Primary");
            s(
                m,
                &format!("{p}Radio.{r}.AP.2.SSID"),
                format!("Gigafibre{band}"),
            );
            s(m, &format!("{p}Radio.{r}.AP.2.BSSID"), node_mac(k));
        }
        let d = format!("Device.WiFi.DataElements.Network.Device.{n}.");
        s(m, &format!("{d}ID"), node_mac(k));
        s(
            m,
            &format!("{d}Radio.1.BackhaulSta.MACAddress"),
            node_mac(k),
        );
        put(
            m,
            &format!("{d}Radio.1.BackhaulSta.X_TP_SignalStrength"),
            rcpi(-48 - 6 * i32::from(k)).to_string(),
            ValueType::UnsignedInt,
        );
    }

    let mut host = 0u32;
    let mut per_ap: std::collections::HashMap<(u8, u8), u32> = Default::default();
    for c in 0..clients {
        host += 1;
        let node = c % (satellites + 1);
        let radio = if c % 3 == 0 { 1u8 } else { 2 };
        let mac_n = 20 + c;
        let mac = format!("{{{{MAC_PLUS_{mac_n}}}}}");
        let mac_lower = format!("{{{{MAC_PLUS_{mac_n}_LOWER}}}}");
        let name = NAMES[usize::from(c) % NAMES.len()];
        let ip = format!("192.168.0.{}", 10 + host);
        let dbm = dbm(c);
        let h = format!("Device.Hosts.Host.{host}.");
        s(m, &format!("{h}PhysAddress"), mac.clone());
        s(m, &format!("{h}IPAddress"), ip.clone());
        s(m, &format!("{h}HostName"), name);
        put(m, &format!("{h}Active"), "true", ValueType::Boolean);
        s(m, &format!("{h}InterfaceType"), "Wi-Fi");
        s(m, &format!("{h}Layer1Interface"), "");
        s(m, &format!("{h}X_TP_ClientType"), "Phone");
        put(
            m,
            &format!("{h}X_TP_LanConnType"),
            "1",
            ValueType::UnsignedInt,
        );
        s(m, &format!("{h}X_TP_LanConnDev"), "br0");

        // The controller's own radios: TR-181 AccessPoint, dBm.
        if node == 0 {
            let ap = if radio == 1 { 1 } else { 3 };
            let slot = per_ap.entry((0, radio)).or_default();
            *slot += 1;
            let a = format!("Device.WiFi.AccessPoint.{ap}.AssociatedDevice.{slot}.");
            s(m, &format!("{a}MACAddress"), mac_lower.clone());
            put(
                m,
                &format!("{a}SignalStrength"),
                dbm.to_string(),
                ValueType::Int,
            );
            put(m, &format!("{a}Active"), "true", ValueType::Boolean);
            put(
                m,
                &format!("{a}AuthenticationState"),
                "true",
                ValueType::Boolean,
            );
            put(
                m,
                &format!("{a}LastDataDownlinkRate"),
                (150_000 + dbm * 1000).max(6000).to_string(),
                ValueType::UnsignedInt,
            );
        } else {
            *per_ap.entry((node, radio)).or_default() += 1;
        }
        // Multi-AP view of every node: RCPI.
        let n = u32::from(node) + 1;
        let idx = {
            let key = (node + 100, radio);
            let slot = per_ap.entry(key).or_default();
            *slot += 1;
            *slot
        };
        let a = format!("{root}{n}.Radio.{radio}.AP.2.AssociatedDevice.{idx}.");
        s(m, &format!("{a}MACAddress"), mac.clone());
        put(
            m,
            &format!("{a}SignalStrength"),
            rcpi(dbm).to_string(),
            ValueType::UnsignedInt,
        );
        put(m, &format!("{a}Active"), "true", ValueType::Boolean);
        s(m, &format!("{a}X_TP_ApDeviceMac"), node_mac(node));
        s(m, &format!("{a}X_TP_HostName"), name);
        s(m, &format!("{a}X_TP_IPAddress"), ip.clone());
        let st =
            format!("Device.WiFi.DataElements.Network.Device.{n}.Radio.{radio}.BSS.2.STA.{idx}.");
        s(m, &format!("{st}MACAddress"), mac.clone());
        put(
            m,
            &format!("{st}SignalStrength"),
            rcpi(dbm).to_string(),
            ValueType::UnsignedInt,
        );
        s(m, &format!("{st}Hostname"), name);
        s(m, &format!("{st}IPV4Address"), ip);
    }
    for w in 0..2u8 {
        host += 1;
        let mac = format!("{{{{MAC_PLUS_{}}}}}", 120 + w);
        let ip = format!("192.168.0.{}", 10 + host);
        let e = format!("{root}1.X_TP_Ethernet.AssociatedDevice.{}.", w + 1);
        s(m, &format!("{e}MACAddress"), mac.clone());
        s(m, &format!("{e}IPAddress"), ip.clone());
        s(m, &format!("{e}APDeviceMACAddress"), "{{MAC}}");
        put(m, &format!("{e}Active"), "true", ValueType::Boolean);
        s(
            m,
            &format!("{e}X_TP_HostName"),
            if w == 0 {
                "NAS-Synology"
            } else {
                "Desktop-Bureau"
            },
        );
        let h = format!("Device.Hosts.Host.{host}.");
        s(m, &format!("{h}PhysAddress"), mac);
        s(m, &format!("{h}IPAddress"), ip);
        s(
            m,
            &format!("{h}HostName"),
            if w == 0 {
                "NAS-Synology"
            } else {
                "Desktop-Bureau"
            },
        );
        put(m, &format!("{h}Active"), "true", ValueType::Boolean);
        s(m, &format!("{h}InterfaceType"), "Ethernet");
        s(m, &format!("{h}Layer1Interface"), "");
    }
    put(
        m,
        "Device.Hosts.HostNumberOfEntries",
        host.to_string(),
        ValueType::UnsignedInt,
    );
    put(
        m,
        "Device.WiFi.MultiAP.APDeviceNumberOfEntries",
        (u32::from(satellites) + 1).to_string(),
        ValueType::UnsignedInt,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rcpi_matches_the_export() {
        // The EX220 export shows the same station at -34 dBm and RCPI 152.
        assert_eq!(rcpi(-34), 152);
        assert_eq!(rcpi(-110), 0);
        assert_eq!(rcpi(0), 220);
    }

    #[test]
    fn generates_nodes_clients_and_hosts() {
        let mut m = DataModel::default();
        generate(&mut m, 2, 9);
        let hosts = m
            .params
            .keys()
            .filter(|k| k.starts_with("Device.Hosts.Host.") && k.ends_with(".PhysAddress"))
            .count();
        assert_eq!(hosts, 11);
        assert!(
            m.params
                .contains_key("Device.WiFi.MultiAP.APDevice.3.MACAddress")
        );
        assert!(
            !m.params
                .contains_key("Device.WiFi.MultiAP.APDevice.4.MACAddress")
        );
        let assoc = m
            .params
            .keys()
            .filter(|k| {
                k.contains(".Radio.") && k.contains("AssociatedDevice") && k.ends_with("MACAddress")
            })
            .count();
        assert_eq!(assoc, 9);
        let controller = m
            .params
            .keys()
            .filter(|k| k.starts_with("Device.WiFi.AccessPoint.") && k.ends_with("SignalStrength"))
            .count();
        assert_eq!(controller, 3);
    }
}
