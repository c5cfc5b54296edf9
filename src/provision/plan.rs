//! The planner: from a device's profile, what it reports, and the desired
//! configuration, the parameters to read, to set and to verify. Pure.
//!
//! Secrets (WiFi passphrase, SIP and connection-request passwords) read back
//! empty on real devices, so whether they are applied is tracked with the
//! ParameterKey: the planner sets it to an HMAC of the whole desired
//! configuration, and a device reporting that key has everything applied.

use std::collections::BTreeMap;

use ring::hmac;
use serde::{Deserialize, Serialize};

use super::profile::Profile;
use crate::config::Secret;
use crate::cwmp::path::{passphrase_problem, ssid_problem};
use crate::cwmp::rpc::SetParameterValues;
use crate::cwmp::{ParameterValue, ValueType, parse_bool};

/// WiFi as ERPNext wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WifiConfig {
    pub ssid: String,
    /// 5 GHz SSID (the 2.4 GHz one when ERPNext has no separate one).
    pub ssid_5g: String,
    pub passphrase: Option<Secret>,
    pub enabled: bool,
}

/// The SIP account of a voice line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipConfig {
    pub username: String,
    pub password: Option<Secret>,
    pub line: u32,
}

/// PPPoE credentials of the Internet connection (ERPNext's
/// `custom_radius_user` / `custom_radius_password`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PppConfig {
    pub username: String,
    pub password: Option<Secret>,
}

/// SIP servers, from the ACS configuration (the same for every line).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SipServers {
    pub registrar: Option<String>,
    pub registrar_port: Option<u16>,
    pub proxy: Option<String>,
    pub proxy_port: Option<u16>,
    pub outbound_proxy: Option<String>,
    pub outbound_proxy_port: Option<u16>,
    pub domain: Option<String>,
}

/// How the ACS wants to reach the device later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagementConfig {
    /// `None`: leave the periodic inform settings alone.
    pub periodic_interval_s: Option<u32>,
    pub cr_username: String,
    pub cr_password: Secret,
}

/// Everything the ACS wants on one device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// The ERPNext record's customer: shown to Ops, never pushed.
    pub customer: Option<String>,
    pub wifi: Option<WifiConfig>,
    pub sip: Option<SipConfig>,
    pub ppp: Option<PppConfig>,
    pub sip_servers: SipServers,
    pub management: Option<ManagementConfig>,
}

/// A desired value that must not be pushed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidValue {
    /// Where it comes from (an ERPNext field name).
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Checks values before they reach a device: SSIDs 1–32 bytes, WPA
/// passphrases 8–63 printable ASCII characters. Messages never contain the
/// secret itself.
pub fn validate(d: &Desired) -> Vec<InvalidValue> {
    let mut out = Vec::new();
    if let Some(w) = &d.wifi {
        for (field, ssid) in [
            ("custom_wifi_ssid", &w.ssid),
            ("custom_wifi_ssid_5g", &w.ssid_5g),
        ] {
            if let Err(reason) = ssid_problem(ssid) {
                out.push(InvalidValue {
                    field: field.into(),
                    reason,
                });
            }
        }
        if let Some(p) = &w.passphrase {
            if let Err(reason) = passphrase_problem(p.expose()) {
                out.push(InvalidValue {
                    field: "custom_wifi_password".into(),
                    reason,
                });
            }
        }
    }
    if let Some(s) = &d.sip {
        if s.username.trim().is_empty() {
            out.push(InvalidValue {
                field: "custom_sip_username".into(),
                reason: "empty SIP username".into(),
            });
        }
        if s.line == 0 || s.line > 8 {
            out.push(InvalidValue {
                field: "custom_sip_line".into(),
                reason: format!("line {} is not 1 to 8", s.line),
            });
        }
    }
    if let Some(p) = &d.ppp {
        let user = p.username.trim();
        if user.is_empty() {
            out.push(InvalidValue {
                field: "custom_radius_user".into(),
                reason: "empty PPPoE username".into(),
            });
        } else if user.len() > 255 || user.chars().any(char::is_control) {
            out.push(InvalidValue {
                field: "custom_radius_user".into(),
                reason: "PPPoE username longer than 255 bytes or with control characters".into(),
            });
        }
        if let Some(pw) = &p.password {
            if pw.expose().len() > 255 || pw.expose().chars().any(char::is_control) {
                out.push(InvalidValue {
                    field: "custom_radius_password".into(),
                    reason: "PPPoE password longer than 255 bytes or with control characters"
                        .into(),
                });
            }
        }
    }
    out
}

/// The ParameterKey of a desired configuration: `gacs-` and 16 hex digits
/// of an HMAC-SHA256 under the installation's key (the key keeps the value
/// from being a test oracle for the secrets it covers).
pub fn parameter_key(hmac_key: &hmac::Key, profile: &Profile, d: &Desired) -> String {
    let mut canon = String::new();
    canon.push_str(&profile.name);
    let mut field = |k: &str, v: &str| {
        canon.push('\u{1}');
        canon.push_str(k);
        canon.push('=');
        canon.push_str(v);
    };
    if let Some(w) = &d.wifi {
        field("ssid", &w.ssid);
        field("ssid5", &w.ssid_5g);
        field("psk", w.passphrase.as_ref().map_or("", |p| p.expose()));
        field("wifi_on", if w.enabled { "1" } else { "0" });
    }
    if let Some(s) = &d.sip {
        field("sip_user", &s.username);
        field("sip_pass", s.password.as_ref().map_or("", |p| p.expose()));
        field("sip_line", &s.line.to_string());
    }
    // Only when set: adding PPPoE must not change the key of devices
    // provisioned before it existed.
    if let Some(p) = &d.ppp {
        field("ppp_user", &p.username);
        field("ppp_pass", p.password.as_ref().map_or("", |p| p.expose()));
    }
    let srv = &d.sip_servers;
    for (k, v) in [
        ("reg", &srv.registrar),
        ("proxy", &srv.proxy),
        ("obp", &srv.outbound_proxy),
        ("domain", &srv.domain),
    ] {
        field(k, v.as_deref().unwrap_or(""));
    }
    for (k, v) in [
        ("reg_port", srv.registrar_port),
        ("proxy_port", srv.proxy_port),
        ("obp_port", srv.outbound_proxy_port),
    ] {
        field(k, &v.map(|p| p.to_string()).unwrap_or_default());
    }
    if let Some(m) = &d.management {
        field(
            "interval",
            &m.periodic_interval_s
                .map(|i| i.to_string())
                .unwrap_or_default(),
        );
        field("cr_user", &m.cr_username);
        field("cr_pass", m.cr_password.expose());
    }
    let tag = hmac::sign(hmac_key, canon.as_bytes());
    let hex: String = tag.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("gacs-{hex}")
}

/// One parameter the ACS manages on a device.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Managed {
    path: String,
    value: String,
    kind: ValueType,
    /// Reads back empty: only the ParameterKey tells whether it is applied.
    secret: bool,
}

/// The WPA pre-shared key of a passphrase on a network (IEEE 802.11i
/// PBKDF2-HMAC-SHA1, the SSID as salt, 4096 rounds, 32 bytes), as the 64
/// hex digits a `PreSharedKey` parameter takes.
pub fn wpa_psk(passphrase: &str, ssid: &str) -> String {
    let mut out = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA1,
        std::num::NonZeroU32::MIN.saturating_add(4095),
        ssid.as_bytes(),
        passphrase.as_bytes(),
        &mut out,
    );
    out.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the device has a writable parameter at a path: the discovered
/// data model answers it; without one (a profile alone), every path is.
pub type CanWrite<'a> = &'a dyn Fn(&str) -> bool;

/// Any path: for plans made from a profile alone (tests, previews without a
/// discovered data model).
pub fn any_path(_: &str) -> bool {
    true
}

fn managed(profile: &Profile, d: &Desired, can_write: CanWrite<'_>) -> Vec<Managed> {
    let b = profile.booleans();
    let mut out = Vec::new();
    let mut push = |path: &str, value: String, kind: ValueType, secret: bool| {
        if profile.writable(path) && can_write(path) {
            out.push(Managed {
                path: path.to_owned(),
                value,
                kind,
                secret,
            });
        }
    };
    if let Some(w) = &d.wifi {
        for band in &profile.wifi {
            let ssid = if band.band == "2.4" {
                &w.ssid
            } else {
                &w.ssid_5g
            };
            push(&band.ssid, ssid.clone(), ValueType::String, false);
            if let Some(p) = &w.passphrase {
                match (&band.passphrase, &band.psk) {
                    (Some(path), _) if can_write(path) => {
                        push(path, p.expose().to_owned(), ValueType::String, true)
                    }
                    (_, Some(path)) => {
                        push(path, wpa_psk(p.expose(), ssid), ValueType::String, true)
                    }
                    _ => {}
                }
            }
            if let Some(e) = &band.enable {
                push(e, b.write(w.enabled).to_owned(), ValueType::Boolean, false);
            }
        }
    }
    if let (Some(s), Some(paths)) = (&d.sip, &profile.sip) {
        // ERPNext's line N is the device's Nth line.
        let instance = paths
            .lines
            .get(s.line.saturating_sub(1) as usize)
            .copied()
            .unwrap_or(s.line)
            .to_string();
        let line = |p: &str| p.replace("{line}", &instance);
        push(
            &line(&paths.auth_username),
            s.username.clone(),
            ValueType::String,
            false,
        );
        if let Some(p) = &s.password {
            push(
                &line(&paths.auth_password),
                p.expose().to_owned(),
                ValueType::String,
                true,
            );
        }
        if let (Some(en), Some(v)) = (&paths.line_enable, &paths.line_enable_value) {
            push(&line(en), v.clone(), ValueType::String, false);
        }
        let srv = &d.sip_servers;
        if let (Some(p), Some(domain)) = (&paths.uri, &srv.domain) {
            push(
                &line(p),
                format!("sip:{}@{domain}", s.username),
                ValueType::String,
                false,
            );
        }
        for (path, value) in [
            (&paths.registrar, &srv.registrar),
            (&paths.proxy, &srv.proxy),
            (&paths.outbound_proxy, &srv.outbound_proxy),
            (&paths.domain, &srv.domain),
        ] {
            if let (Some(p), Some(v)) = (path, value) {
                push(p, v.clone(), ValueType::String, false);
            }
        }
        for (path, port) in [
            (&paths.registrar_port, srv.registrar_port),
            (&paths.proxy_port, srv.proxy_port),
            (&paths.outbound_proxy_port, srv.outbound_proxy_port),
        ] {
            if let (Some(p), Some(v)) = (path, port) {
                push(p, v.to_string(), ValueType::UnsignedInt, false);
            }
        }
    }
    if let (Some(c), Some(paths)) = (&d.ppp, &profile.ppp) {
        push(
            &paths.username,
            c.username.trim().to_owned(),
            ValueType::String,
            false,
        );
        if let Some(p) = &c.password {
            push(
                &paths.password,
                p.expose().to_owned(),
                ValueType::String,
                true,
            );
        }
    }
    if let Some(m) = &d.management {
        if let Some(i) = m.periodic_interval_s {
            push(
                &profile.management("PeriodicInformEnable"),
                b.write(true).to_owned(),
                ValueType::Boolean,
                false,
            );
            push(
                &profile.management("PeriodicInformInterval"),
                i.to_string(),
                ValueType::UnsignedInt,
                false,
            );
        }
        push(
            &profile.management("ConnectionRequestUsername"),
            m.cr_username.clone(),
            ValueType::String,
            false,
        );
        push(
            &profile.management("ConnectionRequestPassword"),
            m.cr_password.expose().to_owned(),
            ValueType::String,
            true,
        );
    }
    out
}

/// The `ManagementServer.` parameters a provisioning run reads: the
/// ParameterKey and the non-secret settings it manages.
pub const MANAGEMENT_READ: [&str; 4] = [
    "ParameterKey",
    "PeriodicInformEnable",
    "PeriodicInformInterval",
    "ConnectionRequestUsername",
];

/// What to read at the start of provisioning: the identity parameters and
/// every non-secret WiFi and management parameter the profile lets the ACS
/// manage, plus the ParameterKey (voice lines are read once ERPNext asks
/// for SIP: [`super::targets::sip_inputs`]). Reading them all in one
/// GetParameterValues keeps the session short.
pub fn read_names(profile: &Profile) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    names.extend(profile.identity.mac.iter().cloned());
    names.extend(profile.identity.gpon_serial.iter().cloned());
    for band in &profile.wifi {
        names.push(band.ssid.clone());
        names.extend(band.enable.iter().cloned());
    }
    for leaf in MANAGEMENT_READ {
        names.push(profile.management(leaf));
    }
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// The SetParameterValues that brings the device to `desired`, or `None`
/// when it already is there. Non-secret values are compared with what the
/// device reports; secrets are sent when the device's ParameterKey is not
/// the desired one.
pub fn plan_set(
    profile: &Profile,
    desired: &Desired,
    current: &BTreeMap<String, String>,
    key: &str,
    can_write: CanWrite<'_>,
) -> Option<SetParameterValues> {
    let device_key = current
        .get(&profile.management("ParameterKey"))
        .map(String::as_str)
        .unwrap_or("");
    let secrets_due = device_key != key;
    let mut parameters = Vec::new();
    for m in managed(profile, desired, can_write) {
        let differs = match (current.get(&m.path), &m.kind) {
            (None, _) => true,
            (Some(cur), ValueType::Boolean) => parse_bool(cur) != parse_bool(&m.value),
            (Some(cur), _) => cur != &m.value,
        };
        if (m.secret && secrets_due) || (!m.secret && differs) {
            parameters.push(ParameterValue::new(m.path, m.value, m.kind));
        }
    }
    if parameters.is_empty() {
        return None;
    }
    Some(SetParameterValues {
        parameters,
        parameter_key: key.to_owned(),
    })
}

/// Gives each value the type the device reported for that parameter
/// (`types`, from its GetParameterValues answers), where known: a strict
/// CPE refuses a value of another `xsi:type` (9006). A reported string
/// does not override a narrower planned type (a CPE that sends no
/// `xsi:type` reads as all strings). A TR-104 v1 line
/// enable that this device types as a boolean gets a boolean, written in
/// `booleans` style, instead of the enumeration's "Enabled".
pub fn fit_types(
    spv: &mut SetParameterValues,
    types: &BTreeMap<String, ValueType>,
    booleans: super::profile::BooleanStyle,
) {
    for p in &mut spv.parameters {
        // A missing `xsi:type` decodes as string: a string for a value
        // planned with a narrower type says nothing, keep the plan's.
        let Some(kind) = types
            .get(&p.name)
            .filter(|k| **k != ValueType::String || p.kind == ValueType::String)
        else {
            continue;
        };
        if *kind == ValueType::Boolean && p.kind != ValueType::Boolean {
            let on = parse_bool(&p.value).unwrap_or(p.value.eq_ignore_ascii_case("enabled"));
            p.value = booleans.write(on).to_owned();
        }
        p.kind = kind.clone();
    }
}

/// What a verifying GetParameterValues must read back after a set: the
/// non-secret values sent, and the ParameterKey.
pub fn verify_expectations(
    profile: &Profile,
    spv: &SetParameterValues,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = spv
        .parameters
        .iter()
        .filter(|p| !p.is_secret())
        .map(|p| (p.name.clone(), p.value.clone()))
        .collect();
    out.insert(
        profile.management("ParameterKey"),
        spv.parameter_key.clone(),
    );
    out
}

/// Differences between what was expected and what the device reads back
/// (booleans compared by meaning). Empty when verified.
pub fn verify(expected: &BTreeMap<String, String>, read: &BTreeMap<String, String>) -> Vec<String> {
    expected
        .iter()
        .filter_map(|(path, want)| {
            let got = read.get(path).map(String::as_str).unwrap_or("(missing)");
            let same =
                got == want || (parse_bool(got).is_some() && parse_bool(got) == parse_bool(want));
            (!same).then(|| format!("{path} reads back `{got}`, expected `{want}`"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::profile::Profiles;

    fn key() -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, b"test key")
    }

    fn deco() -> Profile {
        Profiles::load(None)
            .unwrap()
            .get("tplink-deco")
            .unwrap()
            .clone()
    }

    fn rcmg() -> Profile {
        Profiles::load(None)
            .unwrap()
            .get("raisecom-rcmg-ont")
            .unwrap()
            .clone()
    }

    fn wifi(pass: &str) -> Desired {
        Desired {
            wifi: Some(WifiConfig {
                ssid: "Gigafibre-Tremblay".into(),
                ssid_5g: "Gigafibre-Tremblay".into(),
                passphrase: Some(Secret::new(pass)),
                enabled: true,
            }),
            ..Desired::default()
        }
    }

    #[test]
    fn validation_catches_bad_erpnext_values_without_showing_them() {
        assert!(validate(&wifi("k7Hq2mZp9xWe")).is_empty());
        let errs = validate(&wifi("short77"));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "custom_wifi_password");
        assert!(errs[0].reason.contains("has 7") && !errs[0].reason.contains("short77"));
        let mut d = wifi("k7Hq2mZp9xWe");
        d.wifi.as_mut().unwrap().ssid = "x".repeat(33);
        assert_eq!(validate(&d)[0].field, "custom_wifi_ssid");
        assert_eq!(
            validate(&wifi("pässwörd-ok"))[0].reason,
            "a WPA passphrase must be printable ASCII"
        );
    }

    #[test]
    fn first_push_sets_both_bands_and_never_the_backhaul() {
        let p = deco();
        let d = wifi("k7Hq2mZp9xWe");
        let k = parameter_key(&key(), &p, &d);
        assert!(k.starts_with("gacs-") && k.len() == 21);
        let spv = plan_set(&p, &d, &BTreeMap::new(), &k, &any_path).unwrap();
        let names: Vec<&str> = spv.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Device.WiFi.SSID.1.SSID",
                "Device.WiFi.AccessPoint.1.Security.KeyPassphrase",
                "Device.WiFi.SSID.1.Enable",
                "Device.WiFi.SSID.3.SSID",
                "Device.WiFi.AccessPoint.3.Security.KeyPassphrase",
                "Device.WiFi.SSID.3.Enable",
            ]
        );
        assert!(spv.parameters.iter().all(|x| p.writable(&x.name)));
        assert_eq!(spv.parameter_key, k);
    }

    #[test]
    fn nothing_is_sent_when_the_device_is_already_there() {
        let p = deco();
        let d = wifi("k7Hq2mZp9xWe");
        let k = parameter_key(&key(), &p, &d);
        let mut cur = BTreeMap::new();
        for (path, v) in [
            ("Device.WiFi.SSID.1.SSID", "Gigafibre-Tremblay"),
            ("Device.WiFi.SSID.3.SSID", "Gigafibre-Tremblay"),
            ("Device.WiFi.SSID.1.Enable", "1"),
            ("Device.WiFi.SSID.3.Enable", "true"),
        ] {
            cur.insert(path.to_owned(), v.to_owned());
        }
        cur.insert("Device.ManagementServer.ParameterKey".into(), k.clone());
        assert_eq!(plan_set(&p, &d, &cur, &k, &any_path), None);
        // A new passphrase in ERPNext: a new key, so the secrets go out, and
        // only them (the SSIDs already match).
        let d2 = wifi("n3wPassphrase!");
        let k2 = parameter_key(&key(), &p, &d2);
        assert_ne!(k, k2);
        let spv = plan_set(&p, &d2, &cur, &k2, &any_path).unwrap();
        assert!(
            spv.parameters
                .iter()
                .all(|x| x.name.ends_with("KeyPassphrase")),
            "{spv:?}"
        );
        // Someone renamed the SSID on the device: only that value goes back.
        cur.insert("Device.WiFi.SSID.3.SSID".into(), "Voisin".into());
        let spv = plan_set(&p, &d, &cur, &k, &any_path).unwrap();
        assert_eq!(spv.parameters.len(), 1);
        assert_eq!(spv.parameters[0].name, "Device.WiFi.SSID.3.SSID");
    }

    #[test]
    fn sip_on_a_tr098_ont_with_numeric_booleans() {
        let p = rcmg();
        let d = Desired {
            sip: Some(SipConfig {
                username: "5145550142".into(),
                password: Some(Secret::new("sipsecret")),
                line: 1,
            }),
            sip_servers: SipServers {
                registrar: Some("sip.gigafibre.ca".into()),
                registrar_port: Some(5060),
                domain: Some("gigafibre.ca".into()),
                ..SipServers::default()
            },
            management: Some(ManagementConfig {
                periodic_interval_s: Some(300),
                cr_username: "RCMG1A2B3C4D".into(),
                cr_password: Secret::new("crpass-123456"),
            }),
            ..Desired::default()
        };
        let k = parameter_key(&key(), &p, &d);
        let spv = plan_set(&p, &d, &BTreeMap::new(), &k, &any_path).unwrap();
        let get = |n: &str| {
            spv.parameters
                .iter()
                .find(|x| x.name == n)
                .map(|x| x.value.as_str())
        };
        let line = "InternetGatewayDevice.Services.VoiceService.1.VoiceProfile.1.Line.1.";
        assert_eq!(get(&format!("{line}SIP.AuthUserName")), Some("5145550142"));
        assert_eq!(get(&format!("{line}SIP.AuthPassword")), Some("sipsecret"));
        assert_eq!(
            get(&format!("{line}SIP.URI")),
            Some("sip:5145550142@gigafibre.ca")
        );
        assert_eq!(get(&format!("{line}Enable")), Some("Enabled"));
        assert_eq!(
            get(
                "InternetGatewayDevice.Services.VoiceService.1.VoiceProfile.1.SIP.RegistrarServerPort"
            ),
            Some("5060")
        );
        assert_eq!(
            get("InternetGatewayDevice.ManagementServer.PeriodicInformEnable"),
            Some("1")
        );
        assert_eq!(
            get("InternetGatewayDevice.ManagementServer.ConnectionRequestPassword"),
            Some("crpass-123456")
        );
        let exp = verify_expectations(&p, &spv);
        assert!(
            !exp.contains_key(&format!("{line}SIP.AuthPassword")),
            "secrets are not verified by reading"
        );
        assert_eq!(
            exp["InternetGatewayDevice.ManagementServer.ParameterKey"],
            k
        );
        let mut read = exp.clone();
        read.insert(
            "InternetGatewayDevice.ManagementServer.PeriodicInformEnable".into(),
            "true".into(),
        );
        assert!(verify(&exp, &read).is_empty());
        read.insert(format!("{line}SIP.AuthUserName"), "other".into());
        assert_eq!(verify(&exp, &read).len(), 1);
    }

    #[test]
    fn values_take_the_type_the_device_reported() {
        let mut spv = SetParameterValues {
            parameters: vec![
                ParameterValue::new("A.Line.1.Enable", "Enabled", ValueType::String),
                ParameterValue::new("A.SIP.RegistrarServerPort", "5060", ValueType::UnsignedInt),
                ParameterValue::new("A.SSID", "Home", ValueType::String),
            ],
            parameter_key: "k".into(),
        };
        let types: BTreeMap<String, ValueType> = [
            ("A.Line.1.Enable".to_owned(), ValueType::Boolean),
            ("A.SIP.RegistrarServerPort".to_owned(), ValueType::Int),
            ("A.SSID".to_owned(), ValueType::String),
        ]
        .into_iter()
        .collect();
        fit_types(
            &mut spv,
            &types,
            crate::provision::profile::BooleanStyle::Numeric,
        );
        assert_eq!(spv.parameters[0].value, "1");
        assert_eq!(spv.parameters[0].kind, ValueType::Boolean);
        assert_eq!(spv.parameters[1].kind, ValueType::Int);
        assert_eq!(
            spv.parameters[2].kind,
            ValueType::String,
            "unknown: as planned"
        );
    }

    #[test]
    fn psk_derivation_matches_ieee_802_11i() {
        // IEEE 802.11i-2004, annex H.4.
        assert_eq!(
            wpa_psk("password", "IEEE"),
            "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
        );
        assert_eq!(
            wpa_psk("ThisIsAPassword", "ThisIsASSID"),
            "0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af"
        );
    }

    #[test]
    fn a_psk_only_network_gets_the_derived_key_and_missing_names_are_never_planned() {
        let mut p = rcmg();
        for w in &mut p.wifi {
            w.psk = w
                .passphrase
                .take()
                .map(|x| x.replace("KeyPassphrase", "PreSharedKey"));
        }
        let d = wifi("k7Hq2mZp9xWe");
        let k = parameter_key(&key(), &p, &d);
        let has = |n: &str| !n.contains("WLANConfiguration.5.");
        let spv = plan_set(&p, &d, &BTreeMap::new(), &k, &has).unwrap();
        let psk = spv
            .parameters
            .iter()
            .find(|x| x.name.ends_with("PreSharedKey.1.PreSharedKey"))
            .unwrap();
        assert_eq!(psk.value, wpa_psk("k7Hq2mZp9xWe", "Gigafibre-Tremblay"));
        assert!(psk.is_secret());
        assert!(spv.parameters.iter().all(|x| has(&x.name)), "{spv:?}");
    }

    #[test]
    fn read_names_cover_identity_and_managed_values() {
        let names = read_names(&deco());
        assert!(names.contains(&"Device.Ethernet.Interface.1.MACAddress".to_owned()));
        assert!(names.contains(&"Device.WiFi.SSID.3.SSID".to_owned()));
        assert!(names.contains(&"Device.ManagementServer.ParameterKey".to_owned()));
        assert!(!names.iter().any(|n| n.contains("KeyPassphrase")));
    }
}
