use super::*;
use crate::provision::profile::Profiles;
use crate::topology::{Params, build};

fn params(kv: &[(&str, &str)]) -> Params {
    kv.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// (mac, connection, signal_dbm, signal_quality, ip, hostname, active)
type Row<'a> = (
    &'a str,
    Connection,
    Option<f64>,
    Option<u8>,
    Option<&'a str>,
    Option<&'a str>,
    Option<bool>,
);

fn rows(clients: &[Client]) -> Vec<Row<'_>> {
    clients
        .iter()
        .map(|c| {
            (
                c.mac.as_str(),
                c.connection,
                c.signal_dbm,
                c.signal_quality,
                c.ip.as_deref(),
                c.hostname.as_deref(),
                c.active,
            )
        })
        .collect()
}

/// A Deco home as TP-Link firmware reports it: the controller is
/// APDevice 2 (not first), satellite A on Wi-Fi backhaul is APDevice 1,
/// satellite B on Ethernet is APDevice 3.
fn deco_home() -> Params {
    let m = "Device.WiFi.MultiAP.APDevice.";
    let de = "Device.WiFi.DataElements.Network.";
    let owned: Vec<(String, &str)> = vec![
        // Satellite A.
        (format!("{m}1.MACAddress"), "AA-BB-CC-00-00-02"),
        (format!("{m}1.X_TP_AlMac"), "AE:BB:CC:00:00:02"),
        (format!("{m}1.X_TP_IsController"), "false"),
        (format!("{m}1.X_TP_ModelName"), "X20"),
        (format!("{m}1.X_TP_HostName"), "Deco-Salon"),
        (format!("{m}1.X_TP_IPAddress"), "192.168.0.201"),
        (format!("{m}1.X_TP_Active"), "1"),
        (format!("{m}1.BackhaulLinkType"), "Wi-Fi"),
        (format!("{m}1.BackhaulMACAddress"), "AA:BB:CC:00:00:01"),
        (format!("{m}1.BackhaulSignalStrength"), "112"),
        (format!("{m}1.Radio.1.AP.1.X_TP_Type"), "Backhaul"),
        (format!("{m}1.Radio.2.AP.1.X_TP_Type"), "Backhaul"),
        (format!("{m}1.Radio.2.AP.2.X_TP_Type"), "Primary"),
        (
            format!("{m}1.Radio.2.AP.2.AssociatedDevice.1.MACAddress"),
            "5C:F9:38:00:00:03",
        ),
        (
            format!("{m}1.Radio.2.AP.2.AssociatedDevice.1.SignalStrength"),
            "130",
        ),
        (
            format!("{m}1.Radio.2.AP.2.AssociatedDevice.1.X_TP_HostName"),
            "Unknown",
        ),
        // The controller.
        (format!("{m}2.MACAddress"), "aa:bb:cc:00:00:01"),
        (format!("{m}2.X_TP_IsController"), "true"),
        (format!("{m}2.X_TP_ModelName"), "Deco X20"),
        (format!("{m}2.X_TP_HostName"), "Deco-Bureau"),
        (format!("{m}2.X_TP_IPAddress"), "192.168.0.1"),
        (format!("{m}2.X_TP_Active"), "true"),
        (format!("{m}2.BackhaulLinkType"), ""),
        (format!("{m}2.BackhaulSignalStrength"), "0"),
        (format!("{m}2.Radio.1.OperatingFrequencyBand"), "2.4GHz"),
        (format!("{m}2.Radio.2.OperatingFrequencyBand"), "5GHz"),
        (format!("{m}2.Radio.1.AP.2.X_TP_Type"), "Primary"),
        (
            format!("{m}2.Radio.1.AP.2.AssociatedDevice.1.MACAddress"),
            "5C:F9:38:00:00:01",
        ),
        (
            format!("{m}2.Radio.1.AP.2.AssociatedDevice.1.SignalStrength"),
            "140",
        ),
        (
            format!("{m}2.Radio.1.AP.2.AssociatedDevice.1.Active"),
            "true",
        ),
        // Satellite A's backhaul station on the controller's backhaul AP.
        (format!("{m}2.Radio.2.AP.1.X_TP_Type"), "Backhaul"),
        (
            format!("{m}2.Radio.2.AP.1.AssociatedDevice.1.MACAddress"),
            "AA:BB:CC:00:00:02",
        ),
        (format!("{m}2.Radio.2.AP.2.X_TP_Type"), "Primary"),
        (
            format!("{m}2.Radio.2.AP.2.AssociatedDevice.1.MACAddress"),
            "5C:F9:38:00:00:02",
        ),
        (
            format!("{m}2.Radio.2.AP.2.AssociatedDevice.1.SignalStrength"),
            "255",
        ),
        (
            format!("{m}2.Radio.2.AP.2.AssociatedDevice.2.MACAddress"),
            "",
        ),
        (
            format!("{m}2.Radio.2.AP.2.AssociatedDevice.2.SignalStrength"),
            "150",
        ),
        (
            format!("{m}2.Radio.2.AP.2.AssociatedDevice.3.MACAddress"),
            "ae:bb:cc:00:00:02",
        ),
        (
            format!("{m}2.X_TP_Ethernet.AssociatedDevice.1.MACAddress"),
            "88:36:CF:00:00:01",
        ),
        (
            format!("{m}2.X_TP_Ethernet.AssociatedDevice.1.IPAddress"),
            "192.168.0.20",
        ),
        (
            format!("{m}2.X_TP_Ethernet.AssociatedDevice.1.X_TP_HostName"),
            "NAS",
        ),
        (
            format!("{m}2.X_TP_Ethernet.AssociatedDevice.1.Active"),
            "true",
        ),
        // Satellite B, wired to the controller, seen in its wired table.
        (
            format!("{m}2.X_TP_Ethernet.AssociatedDevice.2.MACAddress"),
            "02:BB:CC:00:00:99",
        ),
        (
            format!("{m}2.X_TP_Ethernet.AssociatedDevice.2.IPAddress"),
            "192.168.0.202",
        ),
        // Satellite B.
        (format!("{m}3.MACAddress"), "aa:bb:cc:00:00:03"),
        (format!("{m}3.X_TP_IsController"), "false"),
        (format!("{m}3.X_TP_IPAddress"), "192.168.0.202"),
        (format!("{m}3.BackhaulLinkType"), "Ethernet"),
        (format!("{m}3.BackhaulSignalStrength"), "100"),
        (format!("{m}3.Radio.1.AP.2.X_TP_Type"), "Primary"),
        (
            format!("{m}3.Radio.1.AP.2.AssociatedDevice.1.MACAddress"),
            "5c:f9:38:00:00:04",
        ),
        (
            format!("{m}3.Radio.1.AP.2.AssociatedDevice.1.SignalStrength"),
            "100",
        ),
        (
            format!("{m}3.Radio.1.AP.2.AssociatedDevice.1.X_TP_StaSignalStrength"),
            "-61",
        ),
        (
            format!("{m}3.X_TP_Ethernet.AssociatedDevice.1.MACAddress"),
            "88:36:cf:00:00:02",
        ),
        // The controller's own radios, TR-181, dBm.
        (
            "Device.WiFi.AccessPoint.1.SSIDReference".into(),
            "Device.WiFi.SSID.1.",
        ),
        (
            "Device.WiFi.SSID.1.LowerLayers".into(),
            "Device.WiFi.Radio.1.",
        ),
        (
            "Device.WiFi.Radio.1.OperatingFrequencyBand".into(),
            "2.4GHz",
        ),
        (
            "Device.WiFi.AccessPoint.1.AssociatedDevice.1.MACAddress".into(),
            "5c:f9:38:00:00:01",
        ),
        (
            "Device.WiFi.AccessPoint.1.AssociatedDevice.1.SignalStrength".into(),
            "-42",
        ),
        (
            "Device.WiFi.AccessPoint.3.AssociatedDevice.1.MACAddress".into(),
            "garbage",
        ),
        (
            "Device.WiFi.AccessPoint.3.AssociatedDevice.2.MACAddress".into(),
            "5c:f9:38:00:00:02",
        ),
        (
            "Device.WiFi.AccessPoint.3.AssociatedDevice.2.SignalStrength".into(),
            "abc",
        ),
        // DataElements.
        (format!("{de}ControllerID"), "AA:BB:CC:00:00:01"),
        (format!("{de}Device.1.ID"), "AA:BB:CC:00:00:01"),
        (format!("{de}Device.2.ID"), "AA:BB:CC:00:00:02"),
        (
            format!("{de}Device.2.Radio.1.BackhaulSta.MACAddress"),
            "AA:BB:CC:00:00:12",
        ),
        (
            format!("{de}Device.2.Radio.2.BSS.1.STA.1.MACAddress"),
            "5C:F9:38:00:00:03",
        ),
        (
            format!("{de}Device.2.Radio.2.BSS.1.STA.1.SignalStrength"),
            "128",
        ),
        (
            format!("{de}Device.2.Radio.2.BSS.1.STA.1.Hostname"),
            "pixel",
        ),
        (
            format!("{de}Device.2.Radio.2.BSS.1.STA.1.IPV4Address"),
            "192.168.0.13",
        ),
        // Hosts: MACs in every notation.
        (
            "Device.Hosts.Host.1.PhysAddress".into(),
            "5C-F9-38-00-00-01",
        ),
        ("Device.Hosts.Host.1.IPAddress".into(), "192.168.0.11"),
        ("Device.Hosts.Host.1.HostName".into(), "iPhone-de-Julie"),
        ("Device.Hosts.Host.1.Active".into(), "true"),
        ("Device.Hosts.Host.1.InterfaceType".into(), "Wi-Fi"),
        ("Device.Hosts.Host.2.PhysAddress".into(), "5cf938000002"),
        ("Device.Hosts.Host.2.IPAddress".into(), "192.168.0.12"),
        ("Device.Hosts.Host.2.HostName".into(), "MacBook-Air"),
        ("Device.Hosts.Host.2.Active".into(), "true"),
        ("Device.Hosts.Host.2.InterfaceType".into(), "Wi-Fi"),
        (
            "Device.Hosts.Host.3.PhysAddress".into(),
            "5C:F9:38:00:00:03",
        ),
        ("Device.Hosts.Host.3.IPAddress".into(), "192.168.0.13"),
        ("Device.Hosts.Host.3.HostName".into(), "Pixel-8"),
        ("Device.Hosts.Host.3.Active".into(), "true"),
        (
            "Device.Hosts.Host.4.PhysAddress".into(),
            "5c:f9:38:00:00:04",
        ),
        ("Device.Hosts.Host.4.IPAddress".into(), "192.168.0.14"),
        ("Device.Hosts.Host.4.HostName".into(), "Chromecast"),
        (
            "Device.Hosts.Host.5.PhysAddress".into(),
            "88:36:CF:00:00:01",
        ),
        ("Device.Hosts.Host.5.IPAddress".into(), "192.168.0.20"),
        ("Device.Hosts.Host.5.HostName".into(), "NAS-Synology"),
        ("Device.Hosts.Host.5.InterfaceType".into(), "Ethernet"),
        ("Device.Hosts.Host.5.Active".into(), "true"),
        (
            "Device.Hosts.Host.6.PhysAddress".into(),
            "88:36:CF:00:00:03",
        ),
        ("Device.Hosts.Host.6.IPAddress".into(), "192.168.0.22"),
        ("Device.Hosts.Host.6.HostName".into(), "Desktop"),
        ("Device.Hosts.Host.6.InterfaceType".into(), "Ethernet"),
        ("Device.Hosts.Host.6.Active".into(), "false"),
        (
            "Device.Hosts.Host.7.PhysAddress".into(),
            "5C:F9:38:00:00:09",
        ),
        ("Device.Hosts.Host.7.IPAddress".into(), "192.168.0.29"),
        ("Device.Hosts.Host.7.HostName".into(), "Galaxy-S23"),
        ("Device.Hosts.Host.7.InterfaceType".into(), "Wi-Fi"),
        ("Device.Hosts.Host.7.Active".into(), "false"),
        // Satellite A itself, by MAC; satellite B by IP; an empty MAC.
        (
            "Device.Hosts.Host.8.PhysAddress".into(),
            "AA:BB:CC:00:00:02",
        ),
        ("Device.Hosts.Host.8.IPAddress".into(), "192.168.0.201"),
        ("Device.Hosts.Host.9.PhysAddress".into(), ""),
        ("Device.Hosts.Host.9.HostName".into(), "ghost"),
        (
            "Device.Hosts.Host.10.PhysAddress".into(),
            "02:11:22:33:44:55",
        ),
        ("Device.Hosts.Host.10.IPAddress".into(), "192.168.0.202"),
    ];
    owned.into_iter().map(|(k, v)| (k, v.to_owned())).collect()
}

#[test]
fn deco_home_with_two_satellites() {
    let profiles = Profiles::load(None).unwrap();
    let t = build(&deco_home(), profiles.get("tplink-deco").unwrap());
    use Connection::*;

    assert_eq!(t.nodes.len(), 3);
    let c = &t.nodes[0];
    assert_eq!(c.mac, "aa:bb:cc:00:00:01");
    assert_eq!(c.role, NodeRole::Controller);
    assert_eq!(c.model.as_deref(), Some("Deco X20"));
    assert_eq!(c.hostname.as_deref(), Some("Deco-Bureau"));
    assert_eq!(c.ip.as_deref(), Some("192.168.0.1"));
    assert_eq!(c.active, Some(true));
    assert_eq!(c.backhaul, None);
    assert_eq!(
        rows(&c.clients),
        [
            // dBm from the AccessPoint table beats RCPI 140 (-40 dBm).
            (
                "5c:f9:38:00:00:01",
                Wifi24,
                Some(-42.0),
                Some(96),
                Some("192.168.0.11"),
                Some("iPhone-de-Julie"),
                Some(true)
            ),
            // RCPI 255 and "abc": no signal.
            (
                "5c:f9:38:00:00:02",
                Wifi5,
                None,
                None,
                Some("192.168.0.12"),
                Some("MacBook-Air"),
                Some(true)
            ),
            // Hosts' name wins over the wired table's.
            (
                "88:36:cf:00:00:01",
                Ethernet,
                None,
                None,
                Some("192.168.0.20"),
                Some("NAS-Synology"),
                Some(true)
            ),
            // In no table, wired per Hosts: on the controller.
            (
                "88:36:cf:00:00:03",
                Ethernet,
                None,
                None,
                Some("192.168.0.22"),
                Some("Desktop"),
                Some(false)
            ),
        ]
    );
    assert!(
        c.clients
            .iter()
            .all(|x| x.node_mac.as_deref() == Some("aa:bb:cc:00:00:01"))
    );

    let a = &t.nodes[1];
    assert_eq!(a.mac, "aa:bb:cc:00:00:02");
    assert_eq!(a.role, NodeRole::Satellite);
    assert_eq!(
        (a.model.as_deref(), a.hostname.as_deref()),
        (Some("X20"), Some("Deco-Salon"))
    );
    assert_eq!(
        (a.ip.as_deref(), a.active),
        (Some("192.168.0.201"), Some(true))
    );
    assert_eq!(
        a.backhaul,
        Some(Backhaul {
            link: "wifi".into(),
            signal_dbm: Some(-54.0),
            signal_quality: Some(72)
        })
    );
    // MultiAP RCPI 130 (-45) and DataElements RCPI 128 (-46): the first.
    assert_eq!(
        rows(&a.clients),
        [(
            "5c:f9:38:00:00:03",
            Wifi5,
            Some(-45.0),
            Some(90),
            Some("192.168.0.13"),
            Some("Pixel-8"),
            Some(true)
        )]
    );
    assert_eq!(a.clients[0].node_mac.as_deref(), Some("aa:bb:cc:00:00:02"));

    let b = &t.nodes[2];
    assert_eq!(b.mac, "aa:bb:cc:00:00:03");
    assert_eq!(b.role, NodeRole::Satellite);
    assert_eq!(b.model, None);
    assert_eq!(
        b.backhaul,
        Some(Backhaul {
            link: "ethernet".into(),
            signal_dbm: None,
            signal_quality: None
        })
    );
    assert_eq!(
        rows(&b.clients),
        [
            // No OperatingFrequencyBand: TP-Link radio 1 = 2.4 GHz; vendor
            // dBm beats RCPI 100.
            (
                "5c:f9:38:00:00:04",
                Wifi24,
                Some(-61.0),
                Some(58),
                Some("192.168.0.14"),
                Some("Chromecast"),
                None
            ),
            ("88:36:cf:00:00:02", Ethernet, None, None, None, None, None),
        ]
    );

    assert_eq!(
        rows(&t.unplaced),
        [(
            "5c:f9:38:00:00:09",
            Wifi,
            None,
            None,
            Some("192.168.0.29"),
            Some("Galaxy-S23"),
            Some(false)
        )]
    );
    assert_eq!(t.unplaced[0].node_mac, None);
    assert_eq!(
        t.totals,
        Totals {
            wifi_direct: 2,
            wifi_via_mesh: 2,
            wired: 3,
            all: 8
        }
    );
}

#[test]
fn json_shape() {
    let profiles = Profiles::load(None).unwrap();
    let t = build(&deco_home(), profiles.get("tplink-deco").unwrap());
    let v = serde_json::to_value(&t).unwrap();
    assert_eq!(v["nodes"][0]["role"], "controller");
    assert_eq!(v["nodes"][1]["role"], "satellite");
    assert_eq!(v["nodes"][1]["backhaul"]["link"], "wifi");
    assert_eq!(v["nodes"][0]["backhaul"], serde_json::Value::Null);
    assert_eq!(v["nodes"][0]["clients"][0]["connection"], "wifi_2.4ghz");
    assert_eq!(v["nodes"][0]["clients"][1]["connection"], "wifi_5ghz");
    assert_eq!(
        v["nodes"][0]["clients"][1]["signal_dbm"],
        serde_json::Value::Null
    );
    assert_eq!(v["nodes"][0]["clients"][2]["connection"], "ethernet");
    assert_eq!(v["unplaced"][0]["connection"], "wifi");
    assert_eq!(v["totals"]["wifi_via_mesh"], 2);
    let client = v["nodes"][0]["clients"][0].as_object().unwrap();
    let keys: Vec<&str> = client.keys().map(String::as_str).collect();
    for k in [
        "mac",
        "ip",
        "hostname",
        "connection",
        "signal_dbm",
        "signal_quality",
        "active",
        "node_mac",
    ] {
        assert!(keys.contains(&k), "{k}");
    }
    assert_eq!(
        serde_json::to_value(Connection::Wifi6).unwrap(),
        "wifi_6ghz"
    );
    assert_eq!(
        serde_json::to_value(Connection::Unknown).unwrap(),
        "unknown"
    );
}

#[test]
fn hosts_without_mesh_tables() {
    let profiles = Profiles::load(None).unwrap();
    let p = params(&[
        (
            "Device.Ethernet.Interface.1.MACAddress",
            "1C:61:B4:FB:2A:C8",
        ),
        ("Device.DeviceInfo.ModelName", "XX230v"),
        (
            "Device.WiFi.AccessPoint.1.SSIDReference",
            "Device.WiFi.SSID.1.",
        ),
        ("Device.WiFi.SSID.1.LowerLayers", "Device.WiFi.Radio.1."),
        ("Device.WiFi.Radio.1.OperatingFrequencyBand", "2.4GHz"),
        (
            "Device.WiFi.AccessPoint.1.AssociatedDevice.1.MACAddress",
            "aa:00:00:00:00:01",
        ),
        (
            "Device.WiFi.AccessPoint.1.AssociatedDevice.1.SignalStrength",
            "-50",
        ),
        // No chain for AP 3: the profile says 5 GHz. 0 dBm: not measured.
        (
            "Device.WiFi.AccessPoint.3.AssociatedDevice.1.MACAddress",
            "aa:00:00:00:00:02",
        ),
        (
            "Device.WiFi.AccessPoint.3.AssociatedDevice.1.SignalStrength",
            "0",
        ),
        ("Device.Hosts.Host.1.PhysAddress", "AA:00:00:00:00:01"),
        ("Device.Hosts.Host.1.InterfaceType", "Wi-Fi"),
        ("Device.Hosts.Host.2.PhysAddress", "AA:00:00:00:00:02"),
        ("Device.Hosts.Host.2.X_TP_LanConnType", "5"),
        ("Device.Hosts.Host.2.Active", "false"),
        ("Device.Hosts.Host.3.PhysAddress", "AA:00:00:00:00:03"),
        ("Device.Hosts.Host.3.InterfaceType", "Ethernet"),
        ("Device.Hosts.Host.4.PhysAddress", "AA:00:00:00:00:04"),
        ("Device.Hosts.Host.4.InterfaceType", "Wi-Fi"),
        ("Device.Hosts.Host.4.Layer1Interface", "Device.WiFi.SSID.3."),
        ("Device.Hosts.Host.5.PhysAddress", "AA:00:00:00:00:05"),
        ("Device.Hosts.Host.5.InterfaceType", "MoCA"),
        ("Device.Hosts.Host.6.PhysAddress", "1c:61:b4:fb:2a:c8"),
        ("Device.Hosts.Host.7.PhysAddress", "AA:00:00:00:00:07"),
        ("Device.Hosts.Host.7.X_TP_LanConnType", "0"),
    ]);
    let t = build(&p, profiles.get("tplink-tplg-ont").unwrap());
    use Connection::*;
    assert_eq!(t.nodes.len(), 1);
    let n = &t.nodes[0];
    assert_eq!(n.mac, "1c:61:b4:fb:2a:c8");
    assert_eq!(n.role, NodeRole::Controller);
    assert_eq!(n.model.as_deref(), Some("XX230v"));
    assert_eq!(n.backhaul, None);
    assert_eq!(
        rows(&n.clients),
        [
            (
                "aa:00:00:00:00:01",
                Wifi24,
                Some(-50.0),
                Some(80),
                None,
                None,
                None
            ),
            (
                "aa:00:00:00:00:02",
                Wifi5,
                None,
                None,
                None,
                None,
                Some(false)
            ),
            ("aa:00:00:00:00:03", Ethernet, None, None, None, None, None),
            // Not associated, but there is no mesh: the one node holds it.
            ("aa:00:00:00:00:04", Wifi5, None, None, None, None, None),
            ("aa:00:00:00:00:05", Unknown, None, None, None, None, None),
            ("aa:00:00:00:00:07", Ethernet, None, None, None, None, None),
        ]
    );
    assert!(t.unplaced.is_empty());
    assert_eq!(
        t.totals,
        Totals {
            wifi_direct: 3,
            wifi_via_mesh: 0,
            wired: 2,
            all: 6
        }
    );

    // Nothing at all: one node, empty MAC, no clients.
    let t = build(&Params::new(), profiles.get("tplink-deco").unwrap());
    assert_eq!(t.nodes.len(), 1);
    assert_eq!(t.nodes[0].mac, "");
    assert_eq!(t.nodes[0].role, NodeRole::Controller);
    assert!(t.nodes[0].clients.is_empty() && t.unplaced.is_empty());
    assert_eq!(t.totals, Totals::default());
}

#[test]
fn tr098_host_table() {
    let profiles = Profiles::load(None).unwrap();
    let l = "InternetGatewayDevice.LANDevice.1.";
    let h = "InternetGatewayDevice.LANDevice.1.Hosts.Host.";
    let hosts: Vec<(String, &str)> = vec![
        (
            "InternetGatewayDevice.DeviceInfo.X_CT-COM_MACAddress".into(),
            "00:0e:5e:12:34:56",
        ),
        (
            "InternetGatewayDevice.DeviceInfo.ModelName".into(),
            "HT803G-WS2",
        ),
        (format!("{l}WLANConfiguration.3.Channel"), "149"),
        (format!("{h}1.MACAddress"), "8c:f5:a3:4e:91:27"),
        (format!("{h}1.IPAddress"), "192.168.1.101"),
        (format!("{h}1.HostName"), "Galaxy-S21"),
        (format!("{h}1.InterfaceType"), "802.11"),
        (
            format!("{h}1.Layer2Interface"),
            "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1",
        ),
        (format!("{h}1.Active"), "1"),
        (format!("{h}2.MACAddress"), "3C:A9:F4:6B:02:D8"),
        (format!("{h}2.IPAddress"), "192.168.1.102"),
        (format!("{h}2.HostName"), "LAPTOP-7QK2M1"),
        (format!("{h}2.InterfaceType"), "802.11"),
        (
            format!("{h}2.Layer2Interface"),
            "InternetGatewayDevice.LANDevice.1.WLANConfiguration.5",
        ),
        (format!("{h}2.Active"), "1"),
        (format!("{h}3.MACAddress"), "a8:23:fe:19:c4:5a"),
        (format!("{h}3.IPAddress"), "192.168.1.103"),
        (format!("{h}3.HostName"), "LGwebOSTV"),
        (format!("{h}3.InterfaceType"), "Ethernet"),
        (
            format!("{h}3.Layer2Interface"),
            "InternetGatewayDevice.LANDevice.1.LANEthernetInterfaceConfig.1",
        ),
        (format!("{h}3.Active"), "1"),
        (format!("{h}4.MACAddress"), "00:1e:8f:7a:33:10"),
        (format!("{h}4.IPAddress"), "192.168.1.104"),
        (format!("{h}4.InterfaceType"), "802.11"),
        (
            format!("{h}4.Layer2Interface"),
            "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1",
        ),
        (format!("{h}4.Active"), "0"),
        // Band from the channel (not in the profile).
        (format!("{h}5.MACAddress"), "00:1e:8f:7a:33:11"),
        (
            format!("{h}5.Layer2Interface"),
            "InternetGatewayDevice.LANDevice.1.WLANConfiguration.3",
        ),
        // Band unknown.
        (format!("{h}6.MACAddress"), "00:1e:8f:7a:33:12"),
        (format!("{h}6.InterfaceType"), "802.11"),
        (
            format!("{h}6.Layer2Interface"),
            "InternetGatewayDevice.LANDevice.1.WLANConfiguration.2",
        ),
        (format!("{h}7.MACAddress"), "not a mac"),
        (format!("{h}8.IPAddress"), "192.168.1.108"),
    ];
    let p: Params = hosts.into_iter().map(|(k, v)| (k, v.to_owned())).collect();
    let t = build(&p, profiles.get("raisecom-rcmg-ont").unwrap());
    use Connection::*;
    assert_eq!(t.nodes.len(), 1);
    let n = &t.nodes[0];
    assert_eq!(n.mac, "00:0e:5e:12:34:56");
    assert_eq!(n.model.as_deref(), Some("HT803G-WS2"));
    assert_eq!(
        rows(&n.clients),
        [
            (
                "8c:f5:a3:4e:91:27",
                Wifi24,
                None,
                None,
                Some("192.168.1.101"),
                Some("Galaxy-S21"),
                Some(true)
            ),
            (
                "3c:a9:f4:6b:02:d8",
                Wifi5,
                None,
                None,
                Some("192.168.1.102"),
                Some("LAPTOP-7QK2M1"),
                Some(true)
            ),
            (
                "a8:23:fe:19:c4:5a",
                Ethernet,
                None,
                None,
                Some("192.168.1.103"),
                Some("LGwebOSTV"),
                Some(true)
            ),
            (
                "00:1e:8f:7a:33:10",
                Wifi24,
                None,
                None,
                Some("192.168.1.104"),
                None,
                Some(false)
            ),
            ("00:1e:8f:7a:33:11", Wifi5, None, None, None, None, None),
            ("00:1e:8f:7a:33:12", Wifi, None, None, None, None, None),
        ]
    );
    assert_eq!(
        t.totals,
        Totals {
            wifi_direct: 5,
            wifi_via_mesh: 0,
            wired: 1,
            all: 6
        }
    );

    // A TR-098 profile listing the WLAN association tables: Huawei's
    // X_HW_RSSI gives the signal.
    let huawei = Profiles::parse(
        "huawei.toml",
        "name = \"huawei\"\nroot = \"InternetGatewayDevice.\"\n[topology]\n\
         hosts = \"InternetGatewayDevice.LANDevice.1.Hosts.Host.\"\n\
         associated_devices = [\"InternetGatewayDevice.LANDevice.1.WLANConfiguration.*.AssociatedDevice.\"]\n",
    )
    .unwrap();
    let mut p = p;
    let w = format!("{l}WLANConfiguration.");
    for (k, v) in [
        (format!("{w}1.Channel"), "6"),
        (
            format!("{w}1.AssociatedDevice.1.AssociatedDeviceMACAddress"),
            "8C:F5:A3:4E:91:27",
        ),
        (format!("{w}1.AssociatedDevice.1.X_HW_RSSI"), "-63"),
        (
            format!("{w}1.AssociatedDevice.1.AssociatedDeviceIPAddress"),
            "192.168.1.201",
        ),
        (
            format!("{w}3.AssociatedDevice.1.AssociatedDeviceMACAddress"),
            "00:1E:8F:7A:33:11",
        ),
        (format!("{w}3.AssociatedDevice.1.X_HW_RSSI"), "n/a"),
    ] {
        p.insert(k, v.to_owned());
    }
    let t = build(&p, &huawei);
    let n = &t.nodes[0];
    assert_eq!(n.mac, "");
    let first = &n.clients[0];
    assert_eq!(first.mac, "8c:f5:a3:4e:91:27");
    assert_eq!(
        (first.connection, first.signal_dbm, first.signal_quality),
        (Wifi24, Some(-63.0), Some(54))
    );
    // The host table's address wins over the association table's.
    assert_eq!(first.ip.as_deref(), Some("192.168.1.101"));
    let second = &n.clients[1];
    assert_eq!(
        (second.mac.as_str(), second.connection, second.signal_dbm),
        ("00:1e:8f:7a:33:11", Wifi5, None)
    );
    assert_eq!(t.totals.all, 6);
}

#[test]
fn data_elements_only_mesh() {
    let d = "Device.WiFi.DataElements.Network.";
    let kv: Vec<(String, &str)> = vec![
        (format!("{d}ControllerID"), "02:00:00:00:00:0A"),
        // A satellite listed first.
        (format!("{d}Device.1.ID"), "02:00:00:00:00:0b"),
        (format!("{d}Device.1.ManufacturerModel"), "Beacon"),
        (
            format!("{d}Device.1.Radio.1.BackhaulSta.MACAddress"),
            "02:00:00:00:00:1b",
        ),
        (
            format!("{d}Device.1.Radio.1.BackhaulSta.SignalStrength"),
            "100",
        ),
        (
            format!("{d}Device.1.Radio.2.CurrentOperatingClassProfile.1.Class"),
            "128",
        ),
        (
            format!("{d}Device.1.Radio.2.BSS.1.STA.1.MACAddress"),
            "66:00:00:00:00:01",
        ),
        (
            format!("{d}Device.1.Radio.2.BSS.1.STA.1.SignalStrength"),
            "150",
        ),
        (
            format!("{d}Device.1.Radio.2.BSS.1.STA.1.Hostname"),
            "tablet",
        ),
        // The satellite's backhaul station seen on the controller: skipped.
        (format!("{d}Device.2.ID"), "02:00:00:00:00:0a"),
        (
            format!("{d}Device.2.Radio.1.BSS.1.STA.1.MACAddress"),
            "02:00:00:00:00:1B",
        ),
        (
            format!("{d}Device.2.Radio.1.BSS.1.STA.1.SignalStrength"),
            "100",
        ),
        (
            format!("{d}Device.2.Radio.1.BSS.2.STA.1.MACAddress"),
            "66:00:00:00:00:02",
        ),
        (
            format!("{d}Device.2.Radio.1.BSS.2.STA.1.SignalStrength"),
            "221",
        ),
        (format!("{d}Device.3.ID"), ""),
    ];
    let p: Params = kv.into_iter().map(|(k, v)| (k, v.to_owned())).collect();
    let t = build(&p, &crate::topology::test_generic("generic-tr181"));
    assert_eq!(t.nodes.len(), 2);
    assert_eq!(
        (t.nodes[0].mac.as_str(), t.nodes[0].role),
        ("02:00:00:00:00:0a", NodeRole::Controller)
    );
    assert_eq!(
        (t.nodes[1].mac.as_str(), t.nodes[1].role),
        ("02:00:00:00:00:0b", NodeRole::Satellite)
    );
    assert_eq!(t.nodes[1].model.as_deref(), Some("Beacon"));
    assert_eq!(
        t.nodes[1].backhaul,
        Some(Backhaul {
            link: "wifi".into(),
            signal_dbm: Some(-60.0),
            signal_quality: Some(60)
        })
    );
    use Connection::*;
    // Not TP-Link: radio 1 has no band, radio 2's operating class says 5 GHz.
    assert_eq!(
        rows(&t.nodes[0].clients),
        [("66:00:00:00:00:02", Wifi, None, None, None, None, None)]
    );
    assert_eq!(
        rows(&t.nodes[1].clients),
        [(
            "66:00:00:00:00:01",
            Wifi5,
            Some(-35.0),
            Some(100),
            None,
            Some("tablet"),
            None
        )]
    );
    assert_eq!(
        t.totals,
        Totals {
            wifi_direct: 1,
            wifi_via_mesh: 1,
            wired: 0,
            all: 2
        }
    );
}

#[test]
fn junk_and_thousands_of_hosts() {
    let profiles = Profiles::load(None).unwrap();
    let deco = profiles.get("tplink-deco").unwrap();
    let m = "Device.WiFi.MultiAP.APDevice.";
    let mut p = Params::new();
    let mut put = |k: String, v: &str| {
        p.insert(k, v.to_owned());
    };
    // Nodes: one without a MAC, one flagged controller twice over, a
    // duplicate of another's MAC.
    put(format!("{m}1.MACAddress"), "");
    put(format!("{m}1.X_TP_IsController"), "true");
    put(format!("{m}2.MACAddress"), "02:00:00:00:00:01");
    put(format!("{m}2.X_TP_IsController"), "yes please");
    put(format!("{m}2.BackhaulLinkType"), "MoCA");
    put(format!("{m}2.BackhaulSignalStrength"), "-");
    put(format!("{m}3.MACAddress"), "02:00:00:00:00:02");
    put(format!("{m}3.X_TP_IsController"), "1");
    put(format!("{m}3.BackhaulLinkType"), "Wi-Fi");
    put(format!("{m}3.BackhaulSignalStrength"), "999");
    put(format!("{m}4.MACAddress"), "02-00-00-00-00-01");
    put(format!("{m}4.X_TP_HostName"), "dup");
    for (i, s) in [
        "abc", "", "-", "221", "255", "0", "1e309", "NaN", "152.5", "-300",
    ]
    .iter()
    .enumerate()
    {
        let e = format!("{m}3.Radio.7.AP.1.AssociatedDevice.{}.", i + 1);
        put(
            format!("{e}MACAddress"),
            &format!("12:00:00:00:01:{:02x}", i),
        );
        put(format!("{e}SignalStrength"), s);
        put(format!("{e}X_TP_StaSignalStrength"), s);
    }
    put(
        format!("{m}3.Radio.x.AP.1.AssociatedDevice.1.MACAddress"),
        "12:00:00:00:02:01",
    );
    put(
        "Device.WiFi.AccessPoint.1.AssociatedDevice.99999999999999999999.MACAddress".into(),
        "12:00:00:00:03:01",
    );
    put(
        "Device.WiFi.AccessPoint.1.SSIDReference".into(),
        "Device.WiFi.AccessPoint.1.",
    );
    for i in 1..=5000u32 {
        let h = format!("Device.Hosts.Host.{i}.");
        let mac = match i % 7 {
            0 => String::new(),
            1 => format!("{:012X}", 0x1000_0000_0000u64 + u64::from(i)),
            2 => format!("zz:{i}"),
            _ => format!("10-00-00-00-{:02x}-{:02x}", i / 256, i % 256),
        };
        put(format!("{h}PhysAddress"), &mac);
        put(
            format!("{h}IPAddress"),
            if i % 3 == 0 { "0.0.0.0" } else { "bogus" },
        );
        put(
            format!("{h}InterfaceType"),
            if i % 2 == 0 { "Ethernet" } else { "Wi-Fi" },
        );
        put(format!("{h}Active"), "maybe");
        put(format!("{h}HostName"), "   ");
    }
    let t = build(&p, deco);
    // Controller: the first flagged one with a MAC (APDevice 3).
    assert_eq!(t.nodes.len(), 2);
    assert_eq!(t.nodes[0].mac, "02:00:00:00:00:02");
    assert_eq!(t.nodes[1].mac, "02:00:00:00:00:01");
    assert_eq!(t.nodes[1].hostname.as_deref(), Some("dup"));
    assert_eq!(
        t.nodes[1].backhaul,
        Some(Backhaul {
            link: "moca".into(),
            signal_dbm: None,
            signal_quality: None
        })
    );
    assert_eq!(
        t.nodes[0]
            .backhaul
            .as_ref()
            .map(|b| (b.link.as_str(), b.signal_dbm)),
        Some(("wifi", None))
    );
    let junk: Vec<Option<f64>> = t.nodes[0]
        .clients
        .iter()
        .filter(|c| c.mac.starts_with("12:00:00:00:01:"))
        .map(|c| c.signal_dbm)
        .collect();
    assert_eq!(junk, [None; 10]);
    // Hosts: 5000 minus empty and malformed MACs.
    let hosts = (1..=5000u32).filter(|i| !matches!(i % 7, 0 | 2)).count();
    assert_eq!(t.totals.all, hosts + 10);
    assert_eq!(
        t.totals.all,
        t.nodes.iter().map(|n| n.clients.len()).sum::<usize>() + t.unplaced.len()
    );
    assert!(t.totals.wired > 0 && !t.unplaced.is_empty());
    assert!(
        t.nodes
            .iter()
            .flat_map(|n| &n.clients)
            .chain(&t.unplaced)
            .all(|c| { c.ip.is_none() && c.hostname.is_none() && c.active.is_none() })
    );
}
