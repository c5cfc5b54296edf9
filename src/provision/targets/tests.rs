//! The analysis against data the ACS did not write: the repository's copies
//! of real TP-Link exports and the hand-built BBF models of the simulator,
//! plus small trees for each rule.

use super::*;
use crate::cwmp::is_secret_parameter;
use crate::provision::profile::Profiles;

/// A GenieACS parameter export (CSV) as a tree and its values.
pub(crate) fn export(text: &str) -> (DataModelTree, Values) {
    crate::provision::export::parse(text).expect("a GenieACS export")
}

fn model(name: &str) -> (DataModelTree, Values) {
    let text = match name {
        "deco" => include_str!("../../../simulators/models/deco.csv"),
        "tplg" => include_str!("../../../simulators/models/tplg-ont.csv"),
        "rcmg" => include_str!("../../../simulators/models/rcmg-ont.csv"),
        other => panic!("{other}"),
    };
    export(text)
}

fn bands(p: &Profile) -> Vec<(&str, &str, Option<&str>, Option<&str>)> {
    p.wifi
        .iter()
        .map(|w| {
            (
                w.band.as_str(),
                w.ssid.as_str(),
                w.passphrase.as_deref(),
                w.psk.as_deref(),
            )
        })
        .collect()
}

#[test]
fn tplink_tr181_primaries_backhaul_and_voice_from_the_tree_alone() {
    for m in ["deco", "tplg"] {
        let (tree, values) = model(m);
        let p = effective(&tree, &values, None, "Device.");
        assert_eq!(p.name, "generic-tr181");
        assert_eq!(
            bands(&p),
            [
                (
                    "2.4",
                    "Device.WiFi.SSID.1.SSID",
                    Some("Device.WiFi.AccessPoint.1.Security.KeyPassphrase"),
                    Some("Device.WiFi.AccessPoint.1.Security.PreSharedKey"),
                ),
                (
                    "5",
                    "Device.WiFi.SSID.3.SSID",
                    Some("Device.WiFi.AccessPoint.3.Security.KeyPassphrase"),
                    Some("Device.WiFi.AccessPoint.3.Security.PreSharedKey"),
                ),
            ],
            "{m}"
        );
        for backhaul in 9..=12 {
            let ssid = format!("Device.WiFi.SSID.{backhaul}.");
            assert!(
                p.never_write.contains(&ssid),
                "{m}: {ssid} {:?}",
                p.never_write
            );
        }
        // Vendor DeviceInfo MAC fields first (empty here, skipped when read),
        // then the interfaces.
        let at = |x: &str| p.identity.mac.iter().position(|m| m == x);
        assert!(
            at("Device.Ethernet.Interface.1.MACAddress") < at("Device.Ethernet.Link.1.MACAddress"),
            "{m}"
        );
        assert!(
            at("Device.Ethernet.Interface.1.MACAddress").is_some(),
            "{m}"
        );
    }
    let (tree, values) = model("tplg");
    let p = effective(&tree, &values, None, "Device.");
    let sip = p.sip.expect("voice lines");
    assert_eq!(
        sip.auth_username,
        "Device.X_TP_Services.VoiceService.1.VoiceProfile.1.Line.{line}.SIP.AuthUserName"
    );
    assert_eq!(sip.lines, [1, 2]);
    assert_eq!(
        sip.registrar.as_deref(),
        Some("Device.X_TP_Services.VoiceService.1.VoiceProfile.1.SIP.RegistrarServer")
    );
    assert!(
        p.identity
            .gpon_serial
            .contains(&"Device.Optical.Interface.1.GponAuth.GponSn".to_owned())
    );
    // The vendor reading first: the standard one reads 0 on this unit.
    assert_eq!(
        p.optical[0].rx_power,
        "Device.Optical.Interface.1.X_TP_GPON_Config.RXPower"
    );
    assert_eq!(p.optical[0].unit, PowerUnit::TenthMicrowatt);
    assert!(
        p.optical
            .iter()
            .any(|o| o.rx_power == "Device.Optical.Interface.1.OpticalSignalLevel")
    );
    let (tree, values) = model("deco");
    assert!(effective(&tree, &values, None, "Device.").sip.is_none());
    let t = effective(&tree, &values, None, "Device.").topology;
    assert_eq!(t.hosts.as_deref(), Some("Device.Hosts.Host."));
    assert_eq!(
        t.multiap_devices.as_deref(),
        Some("Device.WiFi.MultiAP.APDevice.")
    );
}

#[test]
fn raisecom_tr098_bands_passphrase_voice_and_optical() {
    let (tree, values) = model("rcmg");
    let root = "InternetGatewayDevice.";
    let p = effective(&tree, &values, None, root);
    let w = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.";
    assert_eq!(
        bands(&p),
        [
            (
                "2.4",
                format!("{w}1.SSID").as_str(),
                Some(format!("{w}1.KeyPassphrase").as_str()),
                p.wifi[0].psk.as_deref(),
            ),
            (
                "5",
                format!("{w}5.SSID").as_str(),
                Some(format!("{w}5.KeyPassphrase").as_str()),
                p.wifi[1].psk.as_deref(),
            ),
        ]
    );
    let sip = p.sip.expect("voice");
    assert!(
        sip.auth_username.starts_with(
            "InternetGatewayDevice.Services.VoiceService.1.VoiceProfile.1.Line.{line}"
        )
    );
    assert_eq!(p.optical[0].unit, PowerUnit::TenthMicrowatt);
    assert!(
        p.optical[0]
            .rx_power
            .ends_with("X_CT-COM_GponInterfaceConfig.RXPower")
    );
    assert_eq!(
        p.identity.mac[0],
        "InternetGatewayDevice.DeviceInfo.X_CT-COM_MACAddress"
    );
    assert_eq!(p.booleans, Some(BooleanStyle::TrueFalse));
    assert!(p.topology.hosts.is_some());
    assert!(!p.topology.wan_ip.is_empty());
}

#[test]
fn the_family_profile_overrides_what_it_names_where_the_device_has_it() {
    let profiles = Profiles::load(None).unwrap();
    let (tree, values) = model("deco");
    let deco = profiles.get("tplink-deco").unwrap();
    let p = effective(&tree, &values, Some(deco), "Device.");
    assert_eq!(p.name, "tplink-deco");
    assert_eq!(p.wifi.len(), 2);
    assert_eq!(p.topology.multiap_signal_unit, Some(SignalUnit::Rcpi));
    // A family profile naming a path the device lacks: the generic one stays.
    let mut odd = deco.clone();
    odd.wifi[0].ssid = "Device.WiFi.SSID.77.SSID".into();
    let p = effective(&tree, &values, Some(&odd), "Device.");
    assert_eq!(p.wifi[0].ssid, "Device.WiFi.SSID.1.SSID");
    // Another root's family profile is ignored.
    let rcmg = profiles.get("raisecom-rcmg-ont").unwrap();
    assert_eq!(
        effective(&tree, &values, Some(rcmg), "Device.").name,
        "generic-tr181"
    );
}

fn tr098(rows: &[(&str, &str, bool)]) -> (DataModelTree, Values) {
    let mut names = vec![("InternetGatewayDevice.".to_owned(), false)];
    let mut values = Values::new();
    for (p, v, w) in rows {
        names.push(((*p).to_owned(), *w));
        values.insert((*p).to_owned(), (*v).to_owned());
    }
    (DataModelTree::from_names(names), values)
}

#[test]
fn tr098_five_gigahertz_first_guest_and_psk_only() {
    let w = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.";
    let rows = [
        (format!("{w}1.SSID"), "Home-5G", true),
        (format!("{w}1.Channel"), "36", true),
        (format!("{w}1.Enable"), "1", true),
        (format!("{w}1.PreSharedKey.1.PreSharedKey"), "", true),
        (format!("{w}2.SSID"), "Home", true),
        (format!("{w}2.Channel"), "0", true),
        (format!("{w}2.PossibleChannels"), "1-13", false),
        (format!("{w}2.Enable"), "1", true),
        (format!("{w}2.PreSharedKey.1.PreSharedKey"), "", true),
        (format!("{w}3.SSID"), "Home-Guest", true),
        (format!("{w}3.Standard"), "b,g,n", false),
        (format!("{w}3.Enable"), "1", true),
        (format!("{w}3.X_ACME_GuestEnable"), "1", true),
        (format!("{w}4.SSID"), "Visitors", true),
        (format!("{w}4.Standard"), "a,n,ac", false),
        (format!("{w}4.Enable"), "0", true),
        (format!("{w}4.X_ACME_IsGuest"), "true", true),
    ];
    let refs: Vec<(&str, &str, bool)> = rows.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
    let (tree, values) = tr098(&refs);
    let p = effective(&tree, &values, None, "InternetGatewayDevice.");
    assert_eq!(
        bands(&p),
        [
            (
                "2.4",
                format!("{w}2.SSID").as_str(),
                None,
                Some(format!("{w}2.PreSharedKey.1.PreSharedKey").as_str())
            ),
            (
                "5",
                format!("{w}1.SSID").as_str(),
                None,
                Some(format!("{w}1.PreSharedKey.1.PreSharedKey").as_str())
            ),
        ]
    );
    assert_eq!(p.booleans, Some(BooleanStyle::Numeric));
}

#[test]
fn tr181_references_six_gigahertz_wpa3_hidden_backhaul_and_link_macs() {
    let r = "Device.WiFi.";
    let mut rows: Vec<(String, String, bool)> = Vec::new();
    let mut add = |p: String, v: &str, w: bool| rows.push((p, v.to_owned(), w));
    for (i, band) in [(1, "5GHz"), (2, "2.4GHz"), (3, "6GHz")] {
        add(format!("{r}Radio.{i}.OperatingFrequencyBand"), band, false);
    }
    for (i, radio, name) in [
        (1, 2, "Home"),
        (2, 1, "Home"),
        (3, 3, "Home-6E"),
        (4, 2, "Home-Guest"),
        (5, 1, "a3f9c2e81b7d4e6f90aa"),
    ] {
        add(format!("{r}SSID.{i}.SSID"), name, true);
        add(format!("{r}SSID.{i}.Enable"), "true", true);
        add(
            format!("{r}SSID.{i}.LowerLayers"),
            &format!("Device.WiFi.Radio.{radio}."),
            true,
        );
    }
    for (ap, ssid, mode, advertised) in [
        (1, 2, "WPA2-Personal", "true"),
        (2, 1, "WPA2-WPA3-Personal", "true"),
        (3, 3, "WPA3-Personal", "true"),
        (4, 4, "WPA2-Personal", "true"),
        (5, 5, "WPA2-Personal", "false"),
    ] {
        add(
            format!("{r}AccessPoint.{ap}.SSIDReference"),
            &format!("Device.WiFi.SSID.{ssid}."),
            true,
        );
        add(
            format!("{r}AccessPoint.{ap}.Security.ModeEnabled"),
            mode,
            true,
        );
        add(
            format!("{r}AccessPoint.{ap}.Security.KeyPassphrase"),
            "",
            true,
        );
        add(
            format!("{r}AccessPoint.{ap}.SSIDAdvertisementEnabled"),
            advertised,
            true,
        );
    }
    add(format!("{r}AccessPoint.3.Security.SAEPassphrase"), "", true);
    add("Device.Ethernet.Interface.1.Enable".into(), "true", true);
    add(
        "Device.Ethernet.Link.1.MACAddress".into(),
        "00:11:22:33:44:55",
        false,
    );
    let mut names = vec![("Device.".to_owned(), false)];
    let mut values = Values::new();
    for (p, v, w) in rows {
        names.push((p.clone(), w));
        values.insert(p, v);
    }
    let tree = DataModelTree::from_names(names);
    let p = effective(&tree, &values, None, "Device.");
    assert_eq!(
        bands(&p),
        [
            (
                "2.4",
                "Device.WiFi.SSID.1.SSID",
                Some("Device.WiFi.AccessPoint.2.Security.KeyPassphrase"),
                None
            ),
            (
                "5",
                "Device.WiFi.SSID.2.SSID",
                Some("Device.WiFi.AccessPoint.1.Security.KeyPassphrase"),
                None
            ),
            (
                "6",
                "Device.WiFi.SSID.3.SSID",
                Some("Device.WiFi.AccessPoint.3.Security.SAEPassphrase"),
                None
            ),
        ]
    );
    assert!(p.never_write.contains(&"Device.WiFi.SSID.5.".to_owned()));
    assert_eq!(p.identity.mac, ["Device.Ethernet.Link.1.MACAddress"]);
    // Without values nothing can be said about bands: no WiFi targets.
    assert!(
        effective(&tree, &Values::new(), None, "Device.")
            .wifi
            .is_empty()
    );
}

#[test]
fn tr104_v2_clients_and_their_network() {
    let s = "Device.Services.VoiceService.1.";
    let names = [
        (format!("{s}SIP.Client.1.AuthUserName"), true),
        (format!("{s}SIP.Client.1.AuthPassword"), true),
        (format!("{s}SIP.Client.1.Enable"), true),
        (format!("{s}SIP.Client.1.RegisterURI"), true),
        (format!("{s}SIP.Client.1.Network"), true),
        (format!("{s}SIP.Network.1.RegistrarServer"), true),
        (format!("{s}SIP.Network.2.RegistrarServer"), true),
        (format!("{s}SIP.Network.2.UserAgentDomain"), true),
    ];
    let tree = DataModelTree::from_names(names);
    let mut v = Values::new();
    v.insert(
        format!("{s}SIP.Client.1.Network"),
        format!("{s}SIP.Network.2"),
    );
    let sip = sip(&tree, &v, "Device.").unwrap();
    assert_eq!(
        sip.auth_username,
        format!("{s}SIP.Client.{{line}}.AuthUserName")
    );
    assert_eq!(
        sip.registrar.as_deref(),
        Some(format!("{s}SIP.Network.2.RegistrarServer").as_str())
    );
    assert_eq!(
        sip.domain.as_deref(),
        Some(format!("{s}SIP.Network.2.UserAgentDomain").as_str())
    );
    assert_eq!(sip.line_enable_value.as_deref(), Some("true"));
    assert_eq!(sip.lines, [1]);
    assert_eq!(
        sip_inputs(&tree, &sip, 1),
        [
            format!("{s}SIP.Client.1.AuthUserName"),
            format!("{s}SIP.Client.1.RegisterURI"),
            format!("{s}SIP.Client.1.Enable"),
            format!("{s}SIP.Network.2.RegistrarServer"),
            format!("{s}SIP.Network.2.UserAgentDomain"),
        ]
    );
}

#[test]
fn gpon_serials_and_optical_fields_of_other_vendors() {
    let tree = DataModelTree::from_names([
        ("InternetGatewayDevice.DeviceInfo.SerialNumber", false),
        ("InternetGatewayDevice.DeviceInfo.X_HW_SerialNumber", false),
        (
            "InternetGatewayDevice.WANDevice.1.X_GponInterafceConfig.RXPower",
            false,
        ),
        (
            "InternetGatewayDevice.WANDevice.1.X_GponInterafceConfig.TXPower",
            false,
        ),
        ("InternetGatewayDevice.X_ALU_OntOpticalParam.RXPower", false),
        ("InternetGatewayDevice.X_ALU_OntOpticalParam.TXPower", false),
        (
            "InternetGatewayDevice.WANDevice.1.X_ACME_PonStatus.RxPower",
            false,
        ),
        (
            "InternetGatewayDevice.WANDevice.1.X_ACME_PonStatus.TxPower",
            false,
        ),
    ]);
    let g = gpon_candidates(&tree, "InternetGatewayDevice.");
    assert_eq!(
        g,
        [
            "InternetGatewayDevice.DeviceInfo.SerialNumber",
            "InternetGatewayDevice.DeviceInfo.X_HW_SerialNumber"
        ]
    );
    let o = optical(&tree, "InternetGatewayDevice.");
    let units: Vec<PowerUnit> = o.iter().map(|o| o.unit).collect();
    assert_eq!(units, [PowerUnit::Dbm, PowerUnit::Dbm, PowerUnit::Auto]);
    assert!(o.iter().all(|p| !p.tx_power.is_empty()));
}

#[test]
fn inputs_are_names_the_device_has_and_never_secrets() {
    for (m, root) in [
        ("deco", "Device."),
        ("tplg", "Device."),
        ("rcmg", "InternetGatewayDevice."),
    ] {
        let (tree, _) = model(m);
        let inputs = analysis_inputs(&tree, root);
        assert!(!inputs.is_empty());
        for n in &inputs {
            assert!(tree.has_leaf(n), "{m}: {n}");
            assert!(!is_secret_parameter(n), "{m}: {n}");
        }
        assert!(
            inputs.contains(&format!("{root}DeviceInfo.ModelName")),
            "{m}"
        );
    }
}

#[test]
fn tr098_hosts_and_wifi_clients_with_vendor_rssi_and_band() {
    let (tree, values) = export(include_str!(
        "../../../simulators/models/hgw-tr098-voice-ont.csv"
    ));
    let root = "InternetGatewayDevice.";
    let p = effective(&tree, &values, None, root);
    assert_eq!(
        p.topology.hosts.as_deref(),
        Some("InternetGatewayDevice.LANDevice.1.Hosts.Host.")
    );
    let t = crate::topology::build(&values, &p);
    let client = |mac: &str| {
        t.nodes
            .iter()
            .flat_map(|n| &n.clients)
            .find(|c| c.mac == mac)
            .unwrap_or_else(|| panic!("{mac} not in {t:?}"))
            .clone()
    };
    let phone = client("b8:27:eb:5c:31:0a");
    assert_eq!(phone.signal_dbm, Some(-52.0));
    assert_eq!(phone.connection, crate::topology::Connection::Wifi24);
    assert_eq!(phone.hostname.as_deref(), Some("iPhone-de-Julie"));
    let cast = client("64:a2:f9:0d:83:12");
    assert_eq!(cast.signal_dbm, Some(-61.0));
    assert_eq!(cast.connection, crate::topology::Connection::Wifi5);
    let desktop = client("f0:9f:c2:71:aa:4e");
    assert_eq!(desktop.connection, crate::topology::Connection::Ethernet);
    // Optical power already in dBm, as a decimal string.
    let o = crate::topology::diagnostics(&values, &p).optical.unwrap();
    assert_eq!(o.rx_dbm, Some(-19.21));
}

#[test]
fn a_zero_standard_reading_is_no_reading_when_a_vendor_field_has_one() {
    // The XX230v reports 0 in the standard fields; its real values are in
    // X_TP_GPON_Config (0.1 uW).
    let (tree, values) = model("tplg");
    let p = effective(&tree, &values, None, "Device.");
    let o = crate::topology::diagnostics(&values, &p).optical.unwrap();
    assert_eq!(o.rx_dbm, Some(-2.5));
    // Only the standard pair, both 0, the link up: the device says 0.
    let standard: Vec<OpticalPaths> = p
        .optical
        .iter()
        .filter(|o| o.rx_power.ends_with("OpticalSignalLevel"))
        .cloned()
        .collect();
    let only = Profile {
        optical: standard.clone(),
        ..p.clone()
    };
    let mut v = values.clone();
    v.insert(
        "Device.Optical.Interface.1.OpticalSignalLevel".into(),
        "0".into(),
    );
    v.insert(
        "Device.Optical.Interface.1.TransmitOpticalLevel".into(),
        "0".into(),
    );
    v.insert("Device.Optical.Interface.1.Status".into(), "Down".into());
    let o = crate::topology::diagnostics(&v, &only).optical.unwrap();
    assert_eq!(o.rx_dbm, None, "0 with the link down is no reading");
    // Both pairs, the vendor one at 0 too but the standard one reading.
    let mut v = values.clone();
    v.insert(
        "Device.Optical.Interface.1.X_TP_GPON_Config.RXPower".into(),
        "0".into(),
    );
    v.insert(
        "Device.Optical.Interface.1.OpticalSignalLevel".into(),
        "-21500".into(),
    );
    let o = crate::topology::diagnostics(&v, &p).optical.unwrap();
    assert_eq!(o.rx_dbm, Some(-21.5));
}

#[test]
fn tr098_networks_without_band_evidence_follow_the_vendor_numbering() {
    let w = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.";
    let rows = [
        (format!("{w}1.SSID"), "Home", true),
        (format!("{w}1.Channel"), "0", true),
        (format!("{w}1.KeyPassphrase"), "", true),
        (format!("{w}5.SSID"), "Home-5G", true),
        (format!("{w}5.Channel"), "0", true),
        (format!("{w}5.KeyPassphrase"), "", true),
    ];
    let refs: Vec<(&str, &str, bool)> = rows.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
    let (tree, values) = tr098(&refs);
    let p = effective(&tree, &values, None, "InternetGatewayDevice.");
    let got: Vec<(&str, &str)> = p
        .wifi
        .iter()
        .map(|w| (w.band.as_str(), w.ssid.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("2.4", format!("{w}1.SSID").as_str()),
            ("5", format!("{w}5.SSID").as_str())
        ]
    );
}
