//! What to ask ERPNext for a [`Lookup`], and how to re-check the answer.
//!
//! ERPNext's filters compare text case- and accent-insensitively but cannot
//! canonicalise a MAC or a GPON serial, so each query is broad and every
//! row is re-checked here against the canonical identifier.

use serde_json::{Map, Value, json};

use super::{Equipment, Lookup};
use crate::identity::{canonical_gpon_serial, canonical_mac, gpon_serial_hex};

/// The columns a list query asks for (and all [`Equipment`] needs).
pub const FIELDS: [&str; 21] = [
    "name",
    "customer",
    "service_location",
    "equipment_type",
    "brand",
    "model",
    "serial_number",
    "mac_address",
    "status",
    "custom_wifi_ssid",
    "custom_wifi_ssid_5g",
    "custom_wifi_enabled",
    "custom_wifi_password",
    "custom_sip_username",
    "custom_sip_password",
    "custom_sip_line",
    "custom_gpon_serial",
    "custom_cwmp_serial",
    "custom_radius_user",
    "custom_radius_password",
    "modified",
];

/// Rows asked for per list query. The filters are specific (one serial in
/// two spellings, or twelve hex digits in order), so a full page means
/// something is wrong with the data; it is logged.
pub const PAGE_LENGTH: usize = 100;

/// A [`Lookup`] with its identifier normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    Name(String),
    Cwmp(String),
    /// Canonical ASCII GPON serial.
    Gpon(String),
    /// Canonical 12 lower-case hex digits.
    Mac(String),
    /// `serial_number` as the device spells its CWMP serial.
    Serial(String),
}

/// The filters of a list query.
#[derive(Clone, Debug, PartialEq)]
pub struct ListQuery {
    pub filters: Option<Value>,
    pub or_filters: Option<Value>,
}

impl Key {
    /// `None` when the identifier cannot match any record (empty, or not a
    /// MAC / GPON serial at all): no need to ask.
    pub fn from_lookup(lookup: &Lookup<'_>) -> Option<Key> {
        let nonempty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        match *lookup {
            Lookup::Name(n) => nonempty(n).map(Key::Name),
            Lookup::CwmpSerial(s) => nonempty(s).map(Key::Cwmp),
            Lookup::GponSerial(s) => canonical_gpon_serial(s).map(Key::Gpon),
            Lookup::Mac(m) => canonical_mac(m).map(Key::Mac),
            Lookup::SerialNumber(s) => nonempty(s).map(Key::Serial),
        }
    }

    /// The cache key: the query, normalised the way ERPNext compares.
    pub fn cache_key(&self) -> String {
        match self {
            Key::Name(n) => format!("name:{}", n.to_lowercase()),
            Key::Cwmp(s) => format!("cwmp:{}", s.to_lowercase()),
            Key::Gpon(s) => format!("gpon:{s}"),
            Key::Mac(m) => format!("mac:{m}"),
            Key::Serial(s) => format!("serial:{}", s.to_lowercase()),
        }
    }

    /// For messages: `Service Equipment by MAC aabbccddeeff`.
    pub fn describe(&self) -> String {
        match self {
            Key::Name(n) => format!("Service Equipment {n}"),
            Key::Cwmp(s) => format!("Service Equipment by CWMP serial {s}"),
            Key::Gpon(s) => format!("Service Equipment by GPON serial {s}"),
            Key::Mac(m) => format!("Service Equipment by MAC {m}"),
            Key::Serial(s) => format!("Service Equipment by serial number {s}"),
        }
    }

    /// The list query; `None` for a name (a direct GET).
    pub fn list_query(&self) -> Option<ListQuery> {
        match self {
            Key::Name(_) => None,
            Key::Cwmp(s) => Some(ListQuery {
                filters: Some(json!([["custom_cwmp_serial", "=", s]])),
                or_filters: None,
            }),
            Key::Gpon(ascii) => {
                let both = json!([ascii, gpon_serial_hex(ascii)]);
                Some(ListQuery {
                    filters: None,
                    or_filters: Some(json!([
                        ["serial_number", "in", both],
                        ["custom_gpon_serial", "in", both],
                    ])),
                })
            }
            Key::Mac(m) => Some(ListQuery {
                filters: Some(json!([["mac_address", "like", mac_like_pattern(m)]])),
                or_filters: None,
            }),
            Key::Serial(s) => Some(ListQuery {
                filters: Some(json!([["serial_number", "=", s]])),
                or_filters: None,
            }),
        }
    }

    /// The local re-check: does this row really carry the identifier?
    pub fn matches(&self, e: &Equipment) -> bool {
        match self {
            // ERPNext found it by its primary key (compared the database's
            // way: case- and accent-insensitively); nothing to re-check.
            Key::Name(_) => true,
            Key::Cwmp(s) => e
                .cwmp_serial
                .as_deref()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case(s)),
            Key::Gpon(target) => [&e.serial_number, &e.gpon_serial]
                .into_iter()
                .flatten()
                .any(|v| canonical_gpon_serial(v).as_deref() == Some(target.as_str())),
            Key::Mac(target) => e
                .mac_address
                .as_deref()
                .and_then(canonical_mac)
                .is_some_and(|m| &m == target),
            Key::Serial(s) => e
                .serial_number
                .as_deref()
                .is_some_and(|v| v.trim().eq_ignore_ascii_case(s)),
        }
    }
}

/// `%aa%bb%cc%dd%ee%ff%`: matches the MAC with any separators (and some
/// false positives, removed by the re-check). Frappe's `like` ignores case.
pub fn mac_like_pattern(canonical: &str) -> String {
    let mut p = String::with_capacity(canonical.len() * 3 / 2 + 2);
    p.push('%');
    for pair in canonical.as_bytes().chunks(2) {
        p.push_str(&String::from_utf8_lossy(pair));
        p.push('%');
    }
    p
}

fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(obj: &Map<String, Value>, key: &str) -> Option<i64> {
    match obj.get(key)? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i64)),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// One row (`fields` list row, or a whole document) as [`Equipment`].
pub fn equipment_from_json(row: &Value) -> Result<Equipment, String> {
    let Value::Object(obj) = row else {
        return Err(format!("a row is not an object: {}", short(row)));
    };
    let name = text(obj, "name").ok_or_else(|| format!("a row has no name: {}", short(row)))?;
    let has = |k: &str| text(obj, k).is_some();
    Ok(Equipment {
        name,
        customer: text(obj, "customer"),
        service_location: text(obj, "service_location"),
        equipment_type: text(obj, "equipment_type"),
        brand: text(obj, "brand"),
        model: text(obj, "model"),
        serial_number: text(obj, "serial_number"),
        mac_address: text(obj, "mac_address"),
        status: text(obj, "status"),
        wifi_ssid: text(obj, "custom_wifi_ssid"),
        wifi_ssid_5g: text(obj, "custom_wifi_ssid_5g"),
        wifi_enabled: number(obj, "custom_wifi_enabled").map(|n| n != 0),
        has_wifi_password: has("custom_wifi_password"),
        sip_username: text(obj, "custom_sip_username"),
        has_sip_password: has("custom_sip_password"),
        sip_line: number(obj, "custom_sip_line").and_then(|n| u32::try_from(n).ok()),
        gpon_serial: text(obj, "custom_gpon_serial"),
        cwmp_serial: text(obj, "custom_cwmp_serial"),
        radius_user: text(obj, "custom_radius_user"),
        has_radius_password: has("custom_radius_password"),
        modified: text(obj, "modified"),
    })
}

/// A value for an error message, cut short; password columns are masked
/// anyway, but nothing long is echoed.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        let mut t: String = s.chars().take(79).collect();
        t.push('…');
        t
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(name: &str) -> Equipment {
        equipment_from_json(&json!({"name": name})).expect("row")
    }

    #[test]
    fn lookups_normalise_or_are_hopeless() {
        assert_eq!(
            Key::from_lookup(&Lookup::Mac("AA-BB-CC-DD-EE-FF")),
            Some(Key::Mac("aabbccddeeff".into()))
        );
        assert_eq!(
            Key::from_lookup(&Lookup::GponSerial("52434D471A2B3C4D")),
            Some(Key::Gpon("RCMG1A2B3C4D".into()))
        );
        assert_eq!(
            Key::from_lookup(&Lookup::CwmpSerial(" 2226469000523 ")),
            Some(Key::Cwmp("2226469000523".into()))
        );
        assert_eq!(Key::from_lookup(&Lookup::Mac("not a mac")), None);
        assert_eq!(Key::from_lookup(&Lookup::GponSerial("22A1004513")), None);
        assert_eq!(Key::from_lookup(&Lookup::CwmpSerial("  ")), None);
        assert_eq!(Key::from_lookup(&Lookup::Name("")), None);
    }

    #[test]
    fn queries_are_broad() {
        let q = Key::Gpon("TPLG5EE2A149".into()).list_query().expect("list");
        assert_eq!(q.filters, None);
        assert_eq!(
            q.or_filters,
            Some(json!([
                ["serial_number", "in", ["TPLG5EE2A149", "54504C475EE2A149"]],
                [
                    "custom_gpon_serial",
                    "in",
                    ["TPLG5EE2A149", "54504C475EE2A149"]
                ],
            ]))
        );
        let q = Key::Mac("e4fac4ba5d3f".into()).list_query().expect("list");
        assert_eq!(
            q.filters,
            Some(json!([["mac_address", "like", "%e4%fa%c4%ba%5d%3f%"]]))
        );
        assert_eq!(Key::Name("EQ-1".into()).list_query(), None);
        assert_eq!(
            Key::Cwmp("x".into()).cache_key(),
            Key::Cwmp("X".into()).cache_key()
        );
    }

    #[test]
    fn mac_recheck_accepts_every_spelling_and_drops_false_positives() {
        let key = Key::Mac("aabbccddeeff".into());
        for stored in [
            "AA:BB:CC:DD:EE:FF",
            "aa-bb-cc-dd-ee-ff",
            "aabbccddeeff",
            "AA-BB-CC-DD-EE-FF",
            "aabb.ccdd.eeff",
        ] {
            let mut e = eq("EQ-1");
            e.mac_address = Some(stored.into());
            assert!(key.matches(&e), "{stored}");
        }
        // What `%aa%bb%cc%dd%ee%ff%` also matches, but is not this MAC.
        for stored in [
            "aabbccddeeff00",
            "00aabbccddeeff",
            "aa:bb:cc:dd:ee:ff:01",
            "aa1bb2cc3dd4ee5ff",
            "see aa bb cc dd ee ff",
        ] {
            let mut e = eq("EQ-1");
            e.mac_address = Some(stored.into());
            assert!(!key.matches(&e), "{stored}");
        }
        assert!(!key.matches(&eq("EQ-1")));
    }

    #[test]
    fn gpon_recheck_on_either_field_and_either_form() {
        let key = Key::Gpon("TPLGB4FB2AC8".into());
        let mut e = eq("EQ-3");
        e.serial_number = Some("54504C47B4FB2AC8".into());
        assert!(key.matches(&e));
        e.serial_number = Some("54504c47b4fb2ac8".into());
        assert!(key.matches(&e));
        e.serial_number = Some("22A1004513".into());
        assert!(!key.matches(&e));
        e.gpon_serial = Some("tplgb4fb2ac8".into());
        assert!(key.matches(&e));
        e.gpon_serial = Some("TPLGB4FB2AC9".into());
        assert!(!key.matches(&e));
    }

    #[test]
    fn cwmp_recheck() {
        let key = Key::Cwmp("54504C4734970CA5".into());
        let mut e = eq("EQ-21");
        assert!(!key.matches(&e));
        e.cwmp_serial = Some("54504c4734970ca5 ".into());
        assert!(key.matches(&e));
        e.cwmp_serial = Some("TPLG34970CA5".into());
        assert!(!key.matches(&e));
    }

    #[test]
    fn rows_decode_with_nulls_omissions_and_masks() {
        // A list row: nulls kept, passwords masked.
        let row = json!({
            "name": "EQ-00002", "customer": "Jean Tremblay", "service_location": null,
            "equipment_type": "Routeur", "brand": "TP-Link", "model": "Deco X20",
            "serial_number": "22A1004513", "mac_address": "3c-84-6a-6d-4a-ea",
            "status": "Actif", "custom_wifi_ssid": "Gigafibre-Tremblay",
            "custom_wifi_ssid_5g": null, "custom_wifi_enabled": 1,
            "custom_wifi_password": "************", "custom_sip_username": "",
            "custom_sip_password": null, "custom_sip_line": 1,
            "custom_gpon_serial": null, "custom_cwmp_serial": null,
            "modified": "2025-09-09 08:00:41.000001"
        });
        let e = equipment_from_json(&row).expect("row");
        assert_eq!(e.name, "EQ-00002");
        assert_eq!(e.service_location, None);
        assert_eq!(e.wifi_enabled, Some(true));
        assert!(e.has_wifi_password);
        assert!(!e.has_sip_password);
        assert_eq!(e.sip_username, None, "empty text is absent");
        assert_eq!(e.sip_line, Some(1));
        assert_eq!(e.modified.as_deref(), Some("2025-09-09 08:00:41.000001"));
        // A single GET: nulls omitted; WiFi off.
        let doc = json!({"name": "EQ-00026", "custom_wifi_enabled": 0, "custom_sip_line": "2",
                         "doctype": "Service Equipment"});
        let e = equipment_from_json(&doc).expect("doc");
        assert_eq!(e.wifi_enabled, Some(false));
        assert_eq!(e.sip_line, Some(2));
        assert_eq!(e.customer, None);
        assert!(!e.has_wifi_password);
        // Out-of-range or junk numbers are absent, not errors.
        let e = equipment_from_json(&json!({"name": "X", "custom_sip_line": -1,
                                            "custom_wifi_enabled": "yes"}))
        .expect("row");
        assert_eq!(e.sip_line, None);
        assert_eq!(e.wifi_enabled, None);
        assert!(equipment_from_json(&json!({"customer": "x"})).is_err());
        assert!(equipment_from_json(&json!(["EQ-1"])).is_err());
    }

    #[test]
    fn fields_cover_the_equipment() {
        let full: Map<String, Value> = FIELDS.iter().map(|f| (f.to_string(), json!("1"))).collect();
        let e = equipment_from_json(&Value::Object(full)).expect("row");
        let v = serde_json::to_value(&e).expect("ser");
        for (k, val) in v.as_object().expect("obj") {
            assert!(
                !val.is_null() && val != &json!(false),
                "{k} not filled from FIELDS"
            );
        }
    }
}
