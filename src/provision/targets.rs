//! What to read and write on one device, worked out from its own data model
//! (the names GetParameterNames returned) and a few values read from it.
//! Pure.
//!
//! The result is an effective [`Profile`]: the planner, the collector and
//! the topology builder take it as they take a profile file. A family
//! profile (matched on the model name the device reported) overrides what
//! it names, where the device has it; everything else is found here:
//!
//! - **WiFi** ([`wifi`]): per band, the primary user network: the lowest
//!   enabled SSID of the band that is not a guest, backhaul (EasyMesh,
//!   vendor AP type, a hidden network with a hashed name) or public
//!   network. Band: TR-181 `SSID.{i}.LowerLayers` → `Radio.{j}` band
//!   fields; TR-098 `WLANConfiguration.{i}` vendor band fields, `Channel`,
//!   `PossibleChannels`, `Standard`. Passphrase: the AccessPoint whose
//!   `SSIDReference` is that SSID (TR-181) or the WLANConfiguration
//!   (TR-098): `KeyPassphrase`, `SAEPassphrase` (WPA3-only),
//!   `PreSharedKey.1.KeyPassphrase`, vendor passphrase fields; else a
//!   64-hex `PreSharedKey` derived from the passphrase.
//! - **SIP** ([`sip`]): TR-104 v1 lines (`VoiceService.{i}.VoiceProfile.{j}.Line.{k}`,
//!   also in vendor trees such as `Device.X_TP_Services.`), else TR-104 v2
//!   (`SIP.Client.{i}` + `SIP.Network`), only where lines carry credentials.
//! - **PPPoE** ([`super::ppp`]): the PPP interface of the Internet
//!   connection, never a USB/3G, disabled, bridged or VoIP-only one.
//! - **Identity**: MAC candidates (vendor `DeviceInfo` MAC fields, TR-181
//!   `Ethernet.Interface`/`Ethernet.Link`, TR-098 LAN and WAN interfaces)
//!   and GPON serial candidates (`DeviceInfo.SerialNumber`, XPON ONU
//!   activation serial, vendor `…GponSn` / `…GPON…SerialNumber` fields),
//!   each value checked for its form when read.
//! - **Optical power**: every reading pair the device has with its unit
//!   (vendor fields before the standard ones, which TP-Link leaves at 0).
//! - **Topology**: host tables, WiFi station tables, EasyMesh tables, WAN
//!   address fields.
//!
//! Names never come from anywhere but the tree: a path the device lacks is
//! never planned.

use super::band::{Band, band_of_channel, band_of_standard, parse_band};
use super::datamodel::DataModelTree;
use super::profile::{
    BooleanStyle, IdentityPaths, OpticalPaths, PowerUnit, Profile, SignalUnit, SipPaths,
    TopologyPaths, WifiBand,
};
use crate::cwmp::parse_bool;

pub use super::values::Values;
use super::values::{object_inputs, reference, value, vendor_fields};

/// Name of the effective profile of a device no family profile matches.
pub fn generic_name(root: &str) -> &'static str {
    if root == "InternetGatewayDevice." {
        "generic-tr098"
    } else {
        "generic-tr181"
    }
}

/// An SSID that looks machine-made (a hash): 16+ hex digits.
fn looks_hashed(ssid: &str) -> bool {
    ssid.len() >= 16 && ssid.bytes().all(|b| b.is_ascii_hexdigit())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    User,
    Guest,
    Public,
    Backhaul,
}

/// What a network is for, from its vendor fields, its name and whether it
/// is advertised.
fn classify<'a>(
    fields: impl Iterator<Item = (&'a str, &'a str)>,
    ssid: &str,
    advertised: Option<bool>,
) -> Kind {
    let mut kind = Kind::User;
    for (leaf, val) in fields {
        let l = leaf.to_ascii_lowercase();
        let vl = val.to_ascii_lowercase();
        let says_type = l.contains("type") || l.contains("role") || l.contains("usage");
        let on = parse_bool(val) == Some(true);
        let k = if (says_type && vl.contains("backhaul")) || (l.contains("backhaul") && on) {
            Kind::Backhaul
        } else if (says_type
            && (vl.contains("public") || vl.contains("hotspot") || vl.contains("community")))
            || ((l.contains("hotspot") || l.contains("public")) && on)
        {
            Kind::Public
        } else if (says_type && vl.contains("guest")) || (l.contains("guest") && on) {
            Kind::Guest
        } else {
            Kind::User
        };
        kind = kind.max(k);
    }
    if ssid.to_ascii_lowercase().contains("guest") {
        kind = kind.max(Kind::Guest);
    }
    if advertised == Some(false) && looks_hashed(ssid) {
        kind = Kind::Backhaul;
    }
    kind
}

/// One WiFi network of the device.
#[derive(Debug)]
struct Net {
    /// The object to never write when it is not a user network.
    objects: Vec<String>,
    band: Option<Band>,
    kind: Kind,
    enabled: bool,
    hidden: bool,
    isolated: bool,
    target: WifiBand,
}

impl Net {
    fn rank(&self) -> (bool, bool, bool) {
        (!self.enabled, self.hidden, self.isolated)
    }
}

fn tr181_radio_band(tree: &DataModelTree, v: &Values, radio: &str) -> Option<Band> {
    let f = |leaf: &str| value(v, &format!("{radio}{leaf}"));
    f("OperatingFrequencyBand")
        .and_then(parse_band)
        .or_else(|| {
            f("SupportedFrequencyBands")
                .filter(|s| !s.contains(','))
                .and_then(parse_band)
        })
        .or_else(|| {
            vendor_fields(tree, v, radio)
                .filter(|(l, _)| l.to_ascii_lowercase().contains("band"))
                .find_map(|(_, val)| parse_band(val))
        })
        .or_else(|| f("Channel").and_then(band_of_channel))
        .or_else(|| f("PossibleChannels").and_then(band_of_channel))
        .or_else(|| f("OperatingStandards").and_then(band_of_standard))
}

fn tr181_nets(tree: &DataModelTree, v: &Values, root: &str) -> Vec<Net> {
    let radios: Vec<(String, Option<Band>)> = tree
        .instances(&format!("{root}WiFi.Radio."))
        .into_iter()
        .map(|r| {
            let b = tr181_radio_band(tree, v, &r);
            (r, b)
        })
        .collect();
    let aps = tree.instances(&format!("{root}WiFi.AccessPoint."));
    let ap_ref =
        |ap: &str| value(v, &format!("{ap}SSIDReference")).and_then(|r| reference(root, r));
    let mut out = Vec::new();
    for ssid in tree.instances(&format!("{root}WiFi.SSID.")) {
        let ssid_path = format!("{ssid}SSID");
        if !tree.can_write(&ssid_path) {
            continue;
        }
        let radio = value(v, &format!("{ssid}LowerLayers")).and_then(|r| reference(root, r));
        let band = radio
            .as_ref()
            .and_then(|r| radios.iter().find(|(p, _)| p == r))
            .and_then(|(_, b)| *b)
            .or_else(|| {
                vendor_fields(tree, v, &ssid)
                    .filter(|(l, _)| l.to_ascii_lowercase().contains("band"))
                    .find_map(|(_, val)| parse_band(val))
            })
            .or(match radios.as_slice() {
                [(_, b)] => *b,
                _ => None,
            });
        let inst = &ssid[format!("{root}WiFi.SSID.").len()..];
        let ap = aps
            .iter()
            .find(|a| ap_ref(a).as_deref() == Some(ssid.as_str()))
            .or_else(|| {
                aps.iter()
                    .find(|a| a.ends_with(&format!(".{inst}")) && ap_ref(a).is_none())
            })
            .cloned();
        let name = value(v, &ssid_path).unwrap_or("");
        let mut fields: Vec<(&str, &str)> = vendor_fields(tree, v, &ssid).collect();
        let mut advertised = None;
        let mut isolated = false;
        let mut enabled = value(v, &format!("{ssid}Enable"))
            .and_then(parse_bool)
            .unwrap_or(true);
        let (mut passphrase, mut psk) = (None, None);
        let mut objects = vec![ssid.clone()];
        if let Some(ap) = &ap {
            fields.extend(vendor_fields(tree, v, ap));
            advertised = value(v, &format!("{ap}SSIDAdvertisementEnabled")).and_then(parse_bool);
            isolated = value(v, &format!("{ap}IsolationEnable"))
                .and_then(parse_bool)
                .unwrap_or(false);
            if value(v, &format!("{ap}Enable")).and_then(parse_bool) == Some(false) {
                enabled = false;
            }
            let sec = format!("{ap}Security.");
            let mode = value(v, &format!("{sec}ModeEnabled"))
                .unwrap_or("")
                .to_ascii_uppercase();
            let wpa3_only = mode.contains("WPA3") && !mode.contains("WPA2");
            let key = format!("{sec}KeyPassphrase");
            let sae = format!("{sec}SAEPassphrase");
            passphrase = if wpa3_only && tree.can_write(&sae) {
                Some(sae)
            } else if tree.can_write(&key) {
                Some(key)
            } else if tree.can_write(&sae) {
                Some(sae)
            } else {
                vendor_passphrase(tree, &sec).or_else(|| vendor_passphrase(tree, ap))
            };
            let pre = format!("{sec}PreSharedKey");
            psk = tree.can_write(&pre).then_some(pre);
            objects.push(ap.clone());
        }
        let enable = format!("{ssid}Enable");
        out.push(Net {
            objects,
            band,
            kind: classify(fields.into_iter(), name, advertised),
            enabled,
            hidden: advertised == Some(false),
            isolated,
            target: WifiBand {
                band: String::new(),
                ssid: ssid_path,
                passphrase,
                psk,
                enable: tree.can_write(&enable).then_some(enable),
            },
        });
    }
    out
}

/// A writable vendor passphrase field directly under `obj`.
fn vendor_passphrase(tree: &DataModelTree, obj: &str) -> Option<String> {
    tree.leaves_under(obj)
        .filter(|n| !n[obj.len()..].contains('.'))
        .find(|n| {
            let l = n[obj.len()..].to_ascii_lowercase();
            l.starts_with("x_")
                && (l.contains("passphrase") || l.contains("wpakey") || l.contains("presharedkey"))
                && tree.can_write(n)
        })
        .map(str::to_owned)
}

fn tr098_band(tree: &DataModelTree, v: &Values, w: &str) -> Option<Band> {
    let f = |leaf: &str| value(v, &format!("{w}{leaf}"));
    f("OperatingFrequencyBand")
        .and_then(parse_band)
        .or_else(|| {
            vendor_fields(tree, v, w)
                .filter(|(l, _)| {
                    let l = l.to_ascii_lowercase();
                    l.contains("band") || l.contains("frequency")
                })
                .find_map(|(_, val)| parse_band(val))
        })
        .or_else(|| f("Channel").and_then(band_of_channel))
        .or_else(|| f("PossibleChannels").and_then(band_of_channel))
        .or_else(|| f("Standard").and_then(band_of_standard))
}

fn tr098_nets(tree: &DataModelTree, v: &Values, root: &str) -> Vec<Net> {
    let mut out = Vec::new();
    for lan in tree.instances(&format!("{root}LANDevice.")) {
        for w in tree.instances(&format!("{lan}WLANConfiguration.")) {
            let ssid_path = format!("{w}SSID");
            if !tree.can_write(&ssid_path) {
                continue;
            }
            let name = value(v, &ssid_path).unwrap_or("");
            let advertised = value(v, &format!("{w}SSIDAdvertisementEnabled")).and_then(parse_bool);
            let passphrase = [
                format!("{w}KeyPassphrase"),
                format!("{w}PreSharedKey.1.KeyPassphrase"),
            ]
            .into_iter()
            .find(|p| tree.can_write(p))
            .or_else(|| vendor_passphrase(tree, &w));
            let pre = format!("{w}PreSharedKey.1.PreSharedKey");
            let enable = format!("{w}Enable");
            out.push(Net {
                objects: vec![w.clone()],
                band: tr098_band(tree, v, &w),
                kind: classify(vendor_fields(tree, v, &w), name, advertised),
                enabled: value(v, &enable).and_then(parse_bool).unwrap_or(true),
                hidden: advertised == Some(false),
                isolated: false,
                target: WifiBand {
                    band: String::new(),
                    ssid: ssid_path,
                    passphrase,
                    psk: tree.can_write(&pre).then_some(pre),
                    enable: tree.can_write(&enable).then_some(enable),
                },
            });
        }
    }
    out
}

/// The primary user network of every band, and the objects never to write
/// (backhaul and public networks).
pub fn wifi(tree: &DataModelTree, v: &Values, root: &str) -> (Vec<WifiBand>, Vec<String>) {
    let mut nets = if root == "InternetGatewayDevice." {
        tr098_nets(tree, v, root)
    } else {
        tr181_nets(tree, v, root)
    };
    // TR-098 units that say nothing about a network's band follow the
    // common vendor numbering: WLANConfiguration 1–4 on 2.4 GHz, 5–8 on
    // 5 GHz (Huawei, ZTE, Raisecom), when they have instances above 4.
    if root == "InternetGatewayDevice." {
        let wlan = |n: &Net| {
            n.objects
                .first()
                .and_then(|o| instance_number(o))
                .unwrap_or(0)
        };
        if nets.iter().any(|n| wlan(n) >= 5) {
            for n in nets.iter_mut().filter(|n| n.band.is_none()) {
                n.band = match wlan(n) {
                    1..=4 => Some(Band::G24),
                    5..=8 => Some(Band::G5),
                    _ => None,
                };
            }
        }
    }
    // A single-band device that says nothing about its band: 2.4 GHz.
    let users = nets.iter().filter(|n| n.kind == Kind::User).count();
    if nets.iter().all(|n| n.band.is_none()) && users > 0 {
        for n in &mut nets {
            n.band = Some(Band::G24);
        }
    }
    let mut bands: Vec<WifiBand> = Vec::new();
    for band in [Band::G24, Band::G5, Band::G6] {
        let best = nets
            .iter()
            .filter(|n| n.kind == Kind::User && n.band == Some(band))
            .min_by_key(|n| n.rank());
        if let Some(n) = best {
            let mut t = n.target.clone();
            t.band = band.label().to_owned();
            bands.push(t);
        }
    }
    let never: Vec<String> = nets
        .iter()
        .filter(|n| matches!(n.kind, Kind::Backhaul | Kind::Public))
        .flat_map(|n| n.objects.iter().cloned())
        .collect();
    (bands, never)
}

/// TR-104 voice lines that carry SIP credentials: v1 (also in a vendor
/// tree that mirrors it), else v2.
pub fn sip(tree: &DataModelTree, v: &Values, root: &str) -> Option<SipPaths> {
    sip_v1(tree, root).or_else(|| sip_v2(tree, v, root))
}

fn instance_number(obj: &str) -> Option<u32> {
    obj.trim_end_matches('.').rsplit('.').next()?.parse().ok()
}

fn sip_v1(tree: &DataModelTree, root: &str) -> Option<SipPaths> {
    // Voice profiles whose lines have SIP credentials; the standard
    // `{root}Services.` tree first, vendor trees after.
    let mut profiles: Vec<String> = Vec::new();
    for (name, _) in tree.iter() {
        let Some(line_obj) = name.strip_suffix("SIP.AuthUserName") else {
            continue;
        };
        let Some(vp_end) = line_obj.find(".Line.") else {
            continue;
        };
        let vp = &line_obj[..=vp_end];
        if vp.contains(".VoiceProfile.") && !profiles.iter().any(|p| p == vp) {
            profiles.push(vp.to_owned());
        }
    }
    let standard = format!("{root}Services.");
    profiles.sort_by_key(|p| !p.starts_with(&standard));
    let vp = profiles.into_iter().next()?;
    let lines: Vec<u32> = tree
        .instances(&format!("{vp}Line."))
        .iter()
        .filter(|l| tree.has_leaf(&format!("{l}SIP.AuthUserName")))
        .filter_map(|l| instance_number(l))
        .collect();
    let line = |leaf: &str| format!("{vp}Line.{{line}}.{leaf}");
    let first = lines.first().copied().unwrap_or(1);
    let has_line = |leaf: &str| {
        tree.has_leaf(&format!("{vp}Line.{first}.{leaf}"))
            .then(|| line(leaf))
    };
    let prof = |leaf: &str| {
        let p = format!("{vp}SIP.{leaf}");
        tree.has_leaf(&p).then_some(p)
    };
    let line_enable = has_line("Enable");
    Some(SipPaths {
        auth_username: line("SIP.AuthUserName"),
        auth_password: line("SIP.AuthPassword"),
        uri: has_line("SIP.URI"),
        directory_number: has_line("DirectoryNumber"),
        line_enable_value: line_enable.as_ref().map(|_| "Enabled".to_owned()),
        line_enable,
        lines,
        registrar: prof("RegistrarServer"),
        registrar_port: prof("RegistrarServerPort"),
        proxy: prof("ProxyServer"),
        proxy_port: prof("ProxyServerPort"),
        outbound_proxy: prof("OutboundProxy"),
        outbound_proxy_port: prof("OutboundProxyPort"),
        domain: prof("UserAgentDomain"),
    })
}

fn sip_v2(tree: &DataModelTree, v: &Values, root: &str) -> Option<SipPaths> {
    let service = tree
        .instances(&format!("{root}Services.VoiceService."))
        .into_iter()
        .find(|s| {
            tree.instances(&format!("{s}SIP.Client."))
                .iter()
                .any(|c| tree.has_leaf(&format!("{c}AuthUserName")))
        })?;
    let clients: Vec<String> = tree
        .instances(&format!("{service}SIP.Client."))
        .into_iter()
        .filter(|c| tree.has_leaf(&format!("{c}AuthUserName")))
        .collect();
    let lines: Vec<u32> = clients.iter().filter_map(|c| instance_number(c)).collect();
    let first = clients.first()?;
    let client = |leaf: &str| format!("{service}SIP.Client.{{line}}.{leaf}");
    let has = |leaf: &str| {
        tree.has_leaf(&format!("{first}{leaf}"))
            .then(|| client(leaf))
    };
    // The network the first client registers with.
    let network = value(v, &format!("{first}Network"))
        .and_then(|r| reference(root, r))
        .filter(|n| tree.has_object(n))
        .or_else(|| {
            tree.instances(&format!("{service}SIP.Network."))
                .into_iter()
                .next()
        });
    let net = |leaf: &str| {
        network
            .as_ref()
            .map(|n| format!("{n}{leaf}"))
            .filter(|p| tree.has_leaf(p))
    };
    let line_enable = has("Enable");
    Some(SipPaths {
        auth_username: client("AuthUserName"),
        auth_password: client("AuthPassword"),
        uri: has("RegisterURI"),
        directory_number: None,
        line_enable_value: line_enable.as_ref().map(|_| "true".to_owned()),
        line_enable,
        lines,
        registrar: net("RegistrarServer"),
        registrar_port: net("RegistrarServerPort"),
        proxy: net("ProxyServer"),
        proxy_port: net("ProxyServerPort"),
        outbound_proxy: net("OutboundProxy"),
        outbound_proxy_port: net("OutboundProxyPort"),
        domain: net("UserAgentDomain"),
    })
}

/// Paths that may hold the device's own MAC, preferred first.
pub fn mac_candidates(tree: &DataModelTree, root: &str) -> Vec<String> {
    let mut out: Vec<String> = tree
        .leaves_under(&format!("{root}DeviceInfo."))
        .filter(|n| {
            let leaf = n.rsplit('.').next().unwrap_or("");
            leaf.starts_with("X_") && leaf.to_ascii_uppercase().contains("MAC")
        })
        .map(str::to_owned)
        .collect();
    let patterns: &[&str] = if root == "InternetGatewayDevice." {
        &[
            "LANDevice.*.LANEthernetInterfaceConfig.*.MACAddress",
            "LANDevice.*.LANHostConfigManagement.MACAddress",
            "WANDevice.*.WANEthernetInterfaceConfig.MACAddress",
            "WANDevice.*.WANConnectionDevice.*.WANIPConnection.*.MACAddress",
            "WANDevice.*.WANConnectionDevice.*.WANPPPConnection.*.MACAddress",
        ]
    } else {
        &[
            "Ethernet.Interface.*.MACAddress",
            "Ethernet.Link.*.MACAddress",
        ]
    };
    for p in patterns {
        out.extend(tree.expand(&format!("{root}{p}")));
    }
    out.truncate(16);
    out
}

/// Paths that may hold the GPON serial (value forms checked when read).
pub fn gpon_candidates(tree: &DataModelTree, root: &str) -> Vec<String> {
    let mut out = vec![format!("{root}DeviceInfo.SerialNumber")];
    out.extend(tree.expand(&format!(
        "{root}XPON.ONU.*.ANI.*.TC.ONUActivation.SerialNumber"
    )));
    for (name, _) in tree.iter() {
        let raw_leaf = name.rsplit('.').next().unwrap_or("");
        // Cheap test first: a serial field names "sn" or "serial" somewhere.
        let has = |s: &[u8], pat: &[u8]| s.windows(pat.len()).any(|w| w.eq_ignore_ascii_case(pat));
        if name.ends_with('.')
            || !(has(raw_leaf.as_bytes(), b"sn") || has(raw_leaf.as_bytes(), b"serial"))
            || out.iter().any(|o| o == name)
        {
            continue;
        }
        let leaf = raw_leaf.to_ascii_lowercase();
        let path = name.to_ascii_lowercase();
        let pon_path = path.contains("gpon") || path.contains("xpon") || path.contains(".pon");
        let hit = leaf.contains("gponsn")
            || leaf.contains("gpon_sn")
            || leaf.contains("gponserial")
            || leaf.contains("ponsn")
            || (leaf.contains("serialnumber")
                && (pon_path || (leaf.starts_with("x_") && path.contains(".deviceinfo."))));
        if hit {
            out.push(name.to_owned());
        }
    }
    out.truncate(8);
    out
}

/// Every optical power reading pair of the device, preferred first.
pub fn optical(tree: &DataModelTree, root: &str) -> Vec<OpticalPaths> {
    let mut vendor = Vec::new();
    let mut standard = Vec::new();
    let mut auto = Vec::new();
    const READINGS: &[&str] = &[
        "OpticalSignalLevel",
        "RxPower",
        "RXPower",
        "RXpower",
        "RxOpticalPower",
        "RXOpticalPower",
    ];
    for (name, _) in tree.iter() {
        let Some((obj, leaf)) = name.rsplit_once('.') else {
            continue;
        };
        // Most names are not readings: nothing is built for them.
        if !READINGS.contains(&leaf) {
            continue;
        }
        let obj = format!("{obj}.");
        let pair = |rx: &str, tx: &str, unit: PowerUnit| OpticalPaths {
            rx_power: format!("{obj}{rx}"),
            tx_power: if tx.is_empty() || !tree.has_leaf(&format!("{obj}{tx}")) {
                String::new()
            } else {
                format!("{obj}{tx}")
            },
            unit,
        };
        let tx_of = |rx: &str| -> String {
            let t = rx.replacen("RX", "TX", 1).replacen("Rx", "Tx", 1);
            if tree.has_leaf(&format!("{obj}{t}")) {
                t
            } else {
                String::new()
            }
        };
        let object_name = obj
            .trim_end_matches('.')
            .rsplit('.')
            .next()
            .unwrap_or("")
            .to_owned();
        match leaf {
            "OpticalSignalLevel" if obj.starts_with(&format!("{root}Optical.Interface.")) => {
                standard.push(pair(leaf, "TransmitOpticalLevel", PowerUnit::ThousandthDbm));
            }
            "RxPower" if obj.contains(".XPON.") && obj.contains(".Transceiver.") => {
                standard.insert(0, pair(leaf, "TxPower", PowerUnit::TenthDbm));
            }
            "RXPower" | "RxPower" | "RXpower" | "RxOpticalPower" | "RXOpticalPower" => {
                let tx = tx_of(leaf);
                let unit = match object_name.as_str() {
                    "X_TP_GPON_Config"
                    | "X_CT-COM_GponInterfaceConfig"
                    | "X_CU_GponInterfaceConfig"
                    | "X_CMCC_GponInterfaceConfig"
                    | "X_ZTE-COM_WANPONInterfaceConfig" => Some(PowerUnit::TenthMicrowatt),
                    "X_GponInterafceConfig"
                    | "X_HW_GponInterfaceConfig"
                    | "X_ALU_OntOpticalParam" => Some(PowerUnit::Dbm),
                    _ => None,
                };
                match unit {
                    Some(u) => vendor.push(pair(leaf, &tx, u)),
                    None => {
                        let p = obj.to_ascii_lowercase();
                        if p.contains("pon") || p.contains("optic") || p.contains("transceiver") {
                            auto.push(pair(leaf, &tx, PowerUnit::Auto));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    vendor.extend(standard);
    vendor.extend(auto);
    // `tx_power` is empty where the device has no transmit reading.
    vendor
}

/// Where the topology builder finds hosts, stations, mesh nodes and WAN
/// addresses on this device.
pub fn topology(tree: &DataModelTree, root: &str) -> TopologyPaths {
    let mut t = TopologyPaths::default();
    let has = |p: &str| tree.has_object(p);
    if root == "InternetGatewayDevice." {
        for lan in tree.instances(&format!("{root}LANDevice.")) {
            let hosts = format!("{lan}Hosts.Host.");
            if t.hosts.is_none() && has(&hosts) {
                t.hosts = Some(hosts);
            }
            for w in tree.instances(&format!("{lan}WLANConfiguration.")) {
                let a = format!("{w}AssociatedDevice.");
                if has(&a) {
                    t.associated_devices.push(a);
                }
            }
        }
        for (conn, leaf) in [
            ("WANIPConnection", "ExternalIPAddress"),
            ("WANPPPConnection", "ExternalIPAddress"),
        ] {
            let p = format!("{root}WANDevice.*.WANConnectionDevice.*.{conn}.*.{leaf}");
            if !tree.expand(&p).is_empty() {
                t.wan_ip.push(p);
            }
        }
    } else {
        let hosts = format!("{root}Hosts.Host.");
        if has(&hosts) {
            t.hosts = Some(hosts);
        }
        for ap in tree.instances(&format!("{root}WiFi.AccessPoint.")) {
            let a = format!("{ap}AssociatedDevice.");
            if has(&a) {
                t.associated_devices.push(a);
            }
        }
        let multiap = format!("{root}WiFi.MultiAP.APDevice.");
        if has(&multiap) {
            t.multiap_devices = Some(multiap);
            t.multiap_signal_unit = Some(SignalUnit::Rcpi);
        }
        let de = format!("{root}WiFi.DataElements.Network.Device.");
        if has(&de) {
            t.dataelements_devices = Some(de);
        }
        for p in [
            format!("{root}IP.Interface.*.IPv4Address.*.IPAddress"),
            format!("{root}PPP.Interface.*.IPCP.LocalIPAddress"),
        ] {
            if !tree.expand(&p).is_empty() {
                t.wan_ip.push(p);
            }
        }
    }
    if !t.associated_devices.is_empty() {
        t.associated_signal_unit = Some(SignalUnit::Dbm);
    }
    t
}

/// The names whose values [`effective`] needs, beyond the names: band,
/// references, enable flags, vendor type fields of every WiFi network,
/// the identity candidates, and how the device writes booleans. Secrets
/// are never read.
pub fn analysis_inputs(tree: &DataModelTree, root: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let add =
        |obj: &str, leaves: &[&str], out: &mut Vec<String>| object_inputs(tree, obj, leaves, out);
    if root == "InternetGatewayDevice." {
        for lan in tree.instances(&format!("{root}LANDevice.")) {
            for w in tree.instances(&format!("{lan}WLANConfiguration.")) {
                add(
                    &w,
                    &[
                        "SSID",
                        "Enable",
                        "Channel",
                        "PossibleChannels",
                        "Standard",
                        "OperatingFrequencyBand",
                        "SSIDAdvertisementEnabled",
                    ],
                    &mut out,
                );
            }
        }
    } else {
        for r in tree.instances(&format!("{root}WiFi.Radio.")) {
            add(
                &r,
                &[
                    "OperatingFrequencyBand",
                    "SupportedFrequencyBands",
                    "Channel",
                    "PossibleChannels",
                    "OperatingStandards",
                ],
                &mut out,
            );
        }
        for s in tree.instances(&format!("{root}WiFi.SSID.")) {
            add(&s, &["SSID", "Enable", "LowerLayers"], &mut out);
        }
        for a in tree.instances(&format!("{root}WiFi.AccessPoint.")) {
            add(
                &a,
                &[
                    "SSIDReference",
                    "Enable",
                    "SSIDAdvertisementEnabled",
                    "IsolationEnable",
                    "Security.ModeEnabled",
                ],
                &mut out,
            );
        }
    }
    out.extend(mac_candidates(tree, root));
    out.extend(
        gpon_candidates(tree, root)
            .into_iter()
            .filter(|p| tree.has_leaf(p)),
    );
    for p in [
        format!("{root}DeviceInfo.ModelName"),
        format!("{root}ManagementServer.PeriodicInformEnable"),
    ] {
        if tree.has_leaf(&p) {
            out.push(p);
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|n| seen.insert(n.clone()));
    out
}

/// The voice paths whose values the planner compares (read only once
/// ERPNext has asked for SIP).
pub fn sip_inputs(tree: &DataModelTree, sip: &SipPaths, line: u32) -> Vec<String> {
    let inst = sip
        .lines
        .get(line.saturating_sub(1) as usize)
        .copied()
        .unwrap_or(line)
        .to_string();
    let l = |p: &str| p.replace("{line}", &inst);
    let mut names = vec![l(&sip.auth_username)];
    for p in [&sip.uri, &sip.line_enable, &sip.directory_number]
        .into_iter()
        .flatten()
    {
        names.push(l(p));
    }
    for p in [
        &sip.registrar,
        &sip.registrar_port,
        &sip.proxy,
        &sip.proxy_port,
        &sip.outbound_proxy,
        &sip.outbound_proxy_port,
        &sip.domain,
    ]
    .into_iter()
    .flatten()
    {
        names.push(p.clone());
    }
    names.retain(|n| tree.has_leaf(n));
    names.dedup();
    names
}

/// How the device writes booleans, from how it reports them.
fn inferred_booleans(tree: &DataModelTree, v: &Values, root: &str) -> BooleanStyle {
    let mut probes = vec![format!("{root}ManagementServer.PeriodicInformEnable")];
    probes.extend(tree.expand(&format!("{root}WiFi.SSID.*.Enable")));
    probes.extend(tree.expand(&format!("{root}LANDevice.*.WLANConfiguration.*.Enable")));
    for p in probes {
        match value(v, &p) {
            Some("0") | Some("1") => return BooleanStyle::Numeric,
            Some(x) if x.eq_ignore_ascii_case("true") || x.eq_ignore_ascii_case("false") => {
                return BooleanStyle::TrueFalse;
            }
            _ => {}
        }
    }
    BooleanStyle::TrueFalse
}

fn dedup_push(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for i in items {
        if !list.contains(&i) {
            list.push(i);
        }
    }
}

/// The effective profile of a device: what its own data model offers,
/// overridden by its family profile (if any) where the device has what the
/// family profile names. `values` may be empty (names only: no WiFi
/// targets, which need bands and references).
pub fn effective(
    tree: &DataModelTree,
    v: &Values,
    family: Option<&Profile>,
    root: &str,
) -> Profile {
    let (mut wifi, mut never_write) = if v.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        wifi(tree, v, root)
    };
    let mut identity = IdentityPaths::default();
    let mut optical_pairs = optical(tree, root);
    let mut topo = topology(tree, root);
    let mut sip_paths = sip(tree, v, root);
    let mut ppp_paths = if v.is_empty() {
        None
    } else {
        super::ppp::ppp(tree, v, root)
    };
    let mut booleans = inferred_booleans(tree, v, root);
    let mut partial_paths = false;
    let mut name = generic_name(root).to_owned();
    let mut description = format!("{} (discovered)", generic_name(root));
    let mut priority = 0;
    if let Some(f) = family.filter(|f| f.root == root) {
        name = f.name.clone();
        description = f.description.clone();
        priority = f.priority;
        partial_paths = f.partial_paths;
        if let Some(b) = f.booleans {
            booleans = b;
        }
        let present = |paths: &[String]| -> Vec<String> {
            paths.iter().filter(|p| tree.has_leaf(p)).cloned().collect()
        };
        identity.mac = present(&f.identity.mac);
        identity.gpon_serial = present(&f.identity.gpon_serial);
        never_write.extend(f.never_write.iter().cloned());
        for fw in &f.wifi {
            if !tree.can_write(&fw.ssid) {
                continue;
            }
            let generic = wifi.iter().position(|w| w.band == fw.band);
            let mut t = fw.clone();
            t.passphrase = t.passphrase.filter(|p| tree.can_write(p));
            t.psk = t.psk.filter(|p| tree.can_write(p));
            t.enable = t.enable.filter(|p| tree.can_write(p));
            if t.passphrase.is_none() && t.psk.is_none() {
                if let Some(g) = generic.map(|i| &wifi[i]) {
                    t.passphrase = g.passphrase.clone();
                    t.psk = g.psk.clone();
                }
            }
            match generic {
                Some(i) => wifi[i] = t,
                None => wifi.push(t),
            }
        }
        if let Some(s) = &f.sip {
            if tree.has_leaf(&s.auth_username.replace("{line}", "1")) {
                sip_paths = Some(s.clone());
            }
        }
        if let Some(p) = &f.ppp {
            if tree.can_write(&p.username) && tree.can_write(&p.password) {
                ppp_paths = Some(p.clone());
            }
        }
        let mut pairs: Vec<OpticalPaths> = f
            .optical
            .iter()
            .filter(|o| tree.has_leaf(&o.rx_power))
            .cloned()
            .collect();
        for o in optical_pairs {
            if !pairs.iter().any(|p| p.rx_power == o.rx_power) {
                pairs.push(o);
            }
        }
        optical_pairs = pairs;
        let ft = &f.topology;
        if ft.hosts.is_some() {
            topo.hosts = ft.hosts.clone();
        }
        if !ft.associated_devices.is_empty() {
            topo.associated_devices = ft.associated_devices.clone();
        }
        if ft.associated_signal_unit.is_some() {
            topo.associated_signal_unit = ft.associated_signal_unit;
        }
        if ft.multiap_devices.is_some() {
            topo.multiap_devices = ft.multiap_devices.clone();
        }
        if ft.multiap_signal_unit.is_some() {
            topo.multiap_signal_unit = ft.multiap_signal_unit;
        }
        if ft.dataelements_devices.is_some() {
            topo.dataelements_devices = ft.dataelements_devices.clone();
        }
        if !ft.wan_ip.is_empty() {
            topo.wan_ip = ft.wan_ip.clone();
        }
    }
    // Nothing is written under a never-write prefix, whoever named it.
    wifi.retain(|w| !never_write.iter().any(|n| w.ssid.starts_with(n.as_str())));
    wifi.sort_by(|a, b| a.band.cmp(&b.band));
    dedup_push(&mut identity.mac, mac_candidates(tree, root));
    dedup_push(&mut identity.gpon_serial, gpon_candidates(tree, root));
    identity.gpon_serial.retain(|p| tree.has_leaf(p));
    if let Some(s) = &mut sip_paths {
        if s.line_enable_value.as_deref() == Some("true") {
            s.line_enable_value = Some(booleans.write(true).to_owned());
        }
    }
    Profile {
        name,
        description,
        root: root.to_owned(),
        priority,
        matches: Default::default(),
        booleans: Some(booleans),
        partial_paths,
        identity,
        wifi,
        never_write,
        sip: sip_paths,
        ppp: ppp_paths,
        optical: optical_pairs,
        topology: topo,
    }
}

#[cfg(test)]
pub(crate) mod tests;
