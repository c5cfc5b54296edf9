//! No input makes the builder or the diagnostics panic, and their output
//! keeps its invariants.

use proptest::collection::btree_map;
use proptest::prelude::*;

use crate::provision::profile::Profiles;

use super::{Params, build, collect_paths, diagnostics};

/// Paths near the ones the builder reads, with small instance numbers so
/// that entries of one object meet.
fn path() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![
        Just("Device.Hosts.Host.{}."),
        Just("Device.WiFi.AccessPoint.{}.AssociatedDevice.{}."),
        Just("Device.WiFi.AccessPoint.{}."),
        Just("Device.WiFi.SSID.{}."),
        Just("Device.WiFi.Radio.{}."),
        Just("Device.WiFi.MultiAP.APDevice.{}."),
        Just("Device.WiFi.MultiAP.APDevice.{}.Radio.{}.AP.{}."),
        Just("Device.WiFi.MultiAP.APDevice.{}.Radio.{}.AP.{}.AssociatedDevice.{}."),
        Just("Device.WiFi.MultiAP.APDevice.{}.X_TP_Ethernet.AssociatedDevice.{}."),
        Just("Device.WiFi.DataElements.Network."),
        Just("Device.WiFi.DataElements.Network.Device.{}."),
        Just("Device.WiFi.DataElements.Network.Device.{}.Radio.{}.BackhaulSta."),
        Just("Device.WiFi.DataElements.Network.Device.{}.Radio.{}.BSS.{}.STA.{}."),
        Just("Device.IP.Interface.{}."),
        Just("Device.IP.Interface.{}.IPv4Address.{}."),
        Just("Device.IP.Interface.{}.IPv6Address.{}."),
        Just("Device.PPP.Interface.{}.IPCP."),
        Just("Device.Optical.Interface.{}.X_TP_GPON_Config."),
        Just("Device.Ethernet.Interface.{}."),
        Just("InternetGatewayDevice.LANDevice.{}.Hosts.Host.{}."),
        Just("InternetGatewayDevice.LANDevice.{}.WLANConfiguration.{}."),
        Just("InternetGatewayDevice.WANDevice.{}.WANConnectionDevice.{}.WANIPConnection.{}."),
        Just("InternetGatewayDevice.WANDevice.{}.X_CT-COM_GponInterfaceConfig."),
    ];
    let leaf = prop_oneof![
        Just("MACAddress"),
        Just("PhysAddress"),
        Just("AssociatedDeviceMACAddress"),
        Just("ID"),
        Just("ControllerID"),
        Just("IPAddress"),
        Just("ExternalIPAddress"),
        Just("LocalIPAddress"),
        Just("HostName"),
        Just("SignalStrength"),
        Just("X_TP_StaSignalStrength"),
        Just("X_HW_RSSI"),
        Just("BackhaulLinkType"),
        Just("BackhaulSignalStrength"),
        Just("X_TP_IsController"),
        Just("X_TP_AlMac"),
        Just("X_TP_Type"),
        Just("X_TP_IPAddress"),
        Just("Active"),
        Just("InterfaceType"),
        Just("Layer1Interface"),
        Just("Layer2Interface"),
        Just("SSIDReference"),
        Just("LowerLayers"),
        Just("OperatingFrequencyBand"),
        Just("Channel"),
        Just("Name"),
        Just("Alias"),
        Just("X_TP_ConnType"),
        Just("RXPower"),
        Just("TXPower"),
        Just("Status"),
    ];
    let instance = prop_oneof![
        Just("1".to_owned()),
        Just("2".to_owned()),
        Just("3".to_owned()),
        "[0-9x*]{0,3}"
    ];
    (prefix, proptest::collection::vec(instance, 4), leaf).prop_map(|(prefix, inst, leaf)| {
        let mut out = String::new();
        let mut it = inst.iter();
        let mut rest = prefix;
        while let Some(at) = rest.find("{}") {
            out.push_str(&rest[..at]);
            out.push_str(it.next().map_or("1", String::as_str));
            rest = &rest[at + 2..];
        }
        out.push_str(rest);
        out.push_str(leaf);
        out
    })
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-fA-F:. -]{0,20}",
        "-?[0-9]{1,4}(\\.[0-9]{0,3})?",
        Just("AA:BB:CC:00:00:01".to_owned()),
        Just("aa-bb-cc-00-00-02".to_owned()),
        Just("true".to_owned()),
        Just("Device.WiFi.SSID.1.".to_owned()),
        Just("Device.WiFi.Radio.2".to_owned()),
        Just("InternetGatewayDevice.LANDevice.1.WLANConfiguration.1".to_owned()),
        Just("Backhaul".to_owned()),
        Just("Wi-Fi".to_owned()),
        Just("2001:db8::1".to_owned()),
        Just("10.1.2.3".to_owned()),
        "[ a-zA-Z0-9é漢😀,./*-]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn never_panics(entries in btree_map(path(), value(), 0..80)) {
        let params: Params = entries;
        let profiles = Profiles::load(None).unwrap();
        for profile in profiles.all() {
            let t = build(&params, profile);
            prop_assert!(!t.nodes.is_empty());
            let placed: usize = t.nodes.iter().map(|n| n.clients.len()).sum();
            prop_assert_eq!(t.totals.all, placed + t.unplaced.len());
            prop_assert!(t.totals.wifi_direct + t.totals.wifi_via_mesh + t.totals.wired <= t.totals.all);
            let mut macs = std::collections::HashSet::new();
            for c in t.nodes.iter().flat_map(|n| &n.clients).chain(&t.unplaced) {
                prop_assert!(macs.insert(c.mac.clone()), "client {} listed twice", c.mac);
                prop_assert_eq!(c.mac.len(), 17);
                prop_assert!(c.signal_dbm.is_none_or(|v| (-200.0..0.0).contains(&v)));
                prop_assert_eq!(c.signal_quality.is_some(), c.signal_dbm.is_some());
            }
            let d = diagnostics(&params, profile);
            let mut seen = std::collections::HashSet::new();
            for w in d.wan_ipv4.iter().chain(&d.wan_ipv6) {
                prop_assert!(seen.insert(w.address.clone()));
            }
            prop_assert!(!collect_paths(profile).is_empty());
        }
    }
}
