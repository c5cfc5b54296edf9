//! The legacy WiFi / VoIP / RADIUS tables of the old provisioning system,
//! read from CSV and planned into `Service Equipment` updates. Pure: no I/O;
//! the runner in [`super`] lists ERPNext, reads the passwords the plan asks
//! for and sends the writes.
//!
//! Steps: [`Columns::resolve`] (header + `--map`) → [`read`] (rows parsed,
//! validated, several rows for one device reduced to the latest) →
//! [`match_devices`] (against the listed records) → [`password_reads`] →
//! [`plan`] (per field: write, unchanged or conflict).
//!
//! Secrets: legacy passwords are held in [`Secret`] and never appear in a
//! reason, a report or a `Debug` output. No message quotes a cell of the
//! file at all (a shifted column can put a password anywhere); rows are
//! named by their line number in the file.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use crate::config::Secret;
use crate::cwmp::{days_from_civil, days_in_month};
use crate::erpnext::Equipment;
use crate::identity::{canonical_gpon_serial, canonical_mac};
use crate::provision::export::{ExportError, records};

/// Which legacy table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Wifi,
    Voip,
    Radius,
}

/// A legacy column's meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Field {
    Serial,
    Ssid,
    Password,
    Ssid5g,
    SipUsername,
    SipPassword,
    Line,
    RadiusUser,
    RadiusPassword,
    UpdatedAt,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Serial => "serial",
            Field::Ssid => "ssid",
            Field::Password => "password",
            Field::Ssid5g => "ssid_5g",
            Field::SipUsername => "sip_username",
            Field::SipPassword => "sip_password",
            Field::Line => "line",
            Field::RadiusUser => "radius_user",
            Field::RadiusPassword => "radius_password",
            Field::UpdatedAt => "updated_at",
        }
    }

    /// The `Service Equipment` field it goes to (`None`: used to match or
    /// to order rows, not written).
    fn target(self) -> Option<&'static str> {
        match self {
            Field::Serial | Field::UpdatedAt => None,
            Field::Ssid => Some("custom_wifi_ssid"),
            Field::Password => Some("custom_wifi_password"),
            Field::Ssid5g => Some("custom_wifi_ssid_5g"),
            Field::SipUsername => Some("custom_sip_username"),
            Field::SipPassword => Some("custom_sip_password"),
            Field::Line => Some("custom_sip_line"),
            Field::RadiusUser => Some("custom_radius_user"),
            Field::RadiusPassword => Some("custom_radius_password"),
        }
    }

    fn is_secret(self) -> bool {
        matches!(
            self,
            Field::Password | Field::SipPassword | Field::RadiusPassword
        )
    }
}

impl Kind {
    /// `legacy-wifi`, … (the subcommand).
    pub fn command(self) -> &'static str {
        match self {
            Kind::Wifi => "legacy-wifi",
            Kind::Voip => "legacy-voip",
            Kind::Radius => "legacy-radius",
        }
    }

    /// The fields of this table, in their default column order, with
    /// whether the column must be there.
    fn fields(self) -> &'static [(Field, bool)] {
        match self {
            Kind::Wifi => &[
                (Field::Serial, true),
                (Field::Ssid, true),
                (Field::Password, true),
                (Field::Ssid5g, false),
                (Field::UpdatedAt, false),
            ],
            Kind::Voip => &[
                (Field::Serial, true),
                (Field::SipUsername, true),
                (Field::SipPassword, true),
                (Field::Line, false),
                (Field::UpdatedAt, false),
            ],
            Kind::Radius => &[
                (Field::Serial, true),
                (Field::RadiusUser, true),
                (Field::RadiusPassword, true),
                (Field::UpdatedAt, false),
            ],
        }
    }

    /// The `Service Equipment` fields the listing must include: the ones
    /// matched on and the ones this table writes.
    pub fn listing_fields(self) -> Vec<&'static str> {
        let mut f = vec!["serial_number", "mac_address", "custom_gpon_serial"];
        f.extend(self.fields().iter().filter_map(|(x, _)| x.target()));
        f
    }

    fn field_names(self) -> String {
        self.fields()
            .iter()
            .map(|(f, _)| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A problem with the file's shape or the command line (exit 2).
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LegacyError {
    #[error("--map `{0}` is not FIELD=COLUMN")]
    MapSyntax(String),
    #[error("--map names the unknown field `{field}` ({command} fields: {known})")]
    UnknownField {
        field: String,
        command: &'static str,
        known: String,
    },
    #[error("--map gives the field `{0}` twice")]
    MappedTwice(String),
    #[error(
        "the header has no column `{column}` (for the field `{field}`; rename with --map {field}=COLUMN)"
    )]
    MissingColumn { field: &'static str, column: String },
    #[error("the file has no header line")]
    NoHeader,
    #[error("{0}")]
    Csv(#[from] ExportError),
}

/// Where each field is in the rows.
#[derive(Clone, Debug)]
pub struct Columns {
    kind: Kind,
    at: Vec<(Field, usize)>,
    width: usize,
}

impl Columns {
    /// The header's columns for `kind`'s fields: the default column name
    /// (the field's own), or the one `--map field=COLUMN` gives. Header
    /// names compare trimmed and case-insensitively.
    pub fn resolve(kind: Kind, header: &[String], map: &[String]) -> Result<Columns, LegacyError> {
        let mut names: HashMap<Field, String> = HashMap::new();
        for item in map.iter().map(|m| m.trim()).filter(|m| !m.is_empty()) {
            let Some((f, col)) = item.split_once('=') else {
                return Err(LegacyError::MapSyntax(item.to_string()));
            };
            let (f, col) = (f.trim(), col.trim());
            if col.is_empty() {
                return Err(LegacyError::MapSyntax(item.to_string()));
            }
            let Some((field, _)) = kind.fields().iter().find(|(x, _)| x.name() == f) else {
                return Err(LegacyError::UnknownField {
                    field: f.to_string(),
                    command: kind.command(),
                    known: kind.field_names(),
                });
            };
            if names.insert(*field, col.to_string()).is_some() {
                return Err(LegacyError::MappedTwice(f.to_string()));
            }
        }
        let mut at = Vec::new();
        for (field, required) in kind.fields() {
            let mapped = names.get(field);
            let column = mapped.map_or(field.name(), String::as_str);
            match header
                .iter()
                .position(|h| h.trim().to_lowercase() == column.to_lowercase())
            {
                Some(i) => at.push((*field, i)),
                // An optional column may be absent, unless asked for by name.
                None if !required && mapped.is_none() => {}
                None => {
                    return Err(LegacyError::MissingColumn {
                        field: field.name(),
                        column: column.to_string(),
                    });
                }
            }
        }
        Ok(Columns {
            kind,
            at,
            width: header.len(),
        })
    }

    fn get<'r>(&self, row: &'r [String], f: Field) -> Option<&'r str> {
        let (_, i) = self.at.iter().find(|(x, _)| *x == f)?;
        row.get(*i).map(String::as_str)
    }
}

/// A value to write.
#[derive(Clone, PartialEq, Eq)]
pub enum FieldValue {
    Text(String),
    Secret(Secret),
    Int(u32),
}

impl FieldValue {
    pub fn to_json(&self) -> Value {
        match self {
            FieldValue::Text(s) => Value::from(s.as_str()),
            FieldValue::Secret(s) => Value::from(s.expose()),
            FieldValue::Int(n) => Value::from(*n),
        }
    }
}

impl std::fmt::Debug for FieldValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldValue::Text(s) => write!(f, "{s:?}"),
            FieldValue::Secret(s) => write!(f, "{s:?}"),
            FieldValue::Int(n) => write!(f, "{n}"),
        }
    }
}

/// The longest text ERPNext stores in a Data or Password field.
pub const MAX_TEXT: usize = 140;

/// The winning row of one device: what to write.
#[derive(Clone, Debug)]
pub struct DeviceRow {
    /// The serial as the file spells it (trimmed): what reports show.
    pub serial: String,
    /// The CSV line of the row.
    pub line: usize,
    /// (ERPNext field, value), non-empty values only.
    values: Vec<(Field, FieldValue)>,
    /// Its date and index in the file: larger is newer.
    order: (Option<Stamp>, usize),
}

/// A row that was not used, and why (never its values).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Invalid {
    /// The line of the file the row starts on (the header is usually line 1).
    pub row: usize,
    pub reason: String,
}

/// The file, read.
#[derive(Debug, Default)]
pub struct Legacy {
    /// Data rows (the header, blank and `#` lines excluded).
    pub rows: usize,
    /// Distinct devices named by rows with a usable serial.
    pub devices: usize,
    /// One per device whose latest row is valid, in the order the devices
    /// first appear.
    pub latest: Vec<DeviceRow>,
    pub invalid: Vec<Invalid>,
    /// Things worth knowing that change nothing (no cell values).
    pub warnings: Vec<String>,
}

/// The identity rows of one device share, for grouping: a MAC and a GPON
/// serial compare in canonical form whatever their spelling.
fn device_key(kind: Kind, serial: &str) -> Option<String> {
    let s = serial.trim();
    if s.is_empty() {
        return None;
    }
    match kind {
        Kind::Wifi => canonical_mac(s).map(|m| format!("mac:{m}")),
        Kind::Voip | Kind::Radius => {
            // Twelve hex digits read as a MAC first: `AABBCC…` also passes
            // for a GPON serial with vendor `AABB`.
            if let Some(m) = canonical_mac(s).filter(|_| kind == Kind::Radius) {
                Some(format!("mac:{m}"))
            } else if let Some(g) = canonical_gpon_serial(s) {
                Some(format!("gpon:{g}"))
            } else {
                Some(format!("sn:{}", s.to_uppercase()))
            }
        }
    }
}

/// Reads the CSV text: header, mapping, rows. Column problems are errors;
/// row problems are [`Invalid`] entries.
///
/// Several rows for one device: the one with the latest `updated_at` wins,
/// a tie goes to the later row. A missing or unreadable `updated_at` counts
/// as older than any date (an unreadable one is warned about). The latest
/// row wins even when it is invalid: then nothing is written for the device
/// rather than an older value brought back.
pub fn read(kind: Kind, text: &str, map: &[String]) -> Result<Legacy, LegacyError> {
    let all = records(text)?;
    let Some(((_, header), data)) = all.split_first() else {
        return Err(LegacyError::NoHeader);
    };
    let cols = Columns::resolve(kind, header, map)?;
    let mut out = Legacy {
        rows: data.len(),
        ..Legacy::default()
    };
    // key → (order of first appearance, the winning row's sort key, the
    // winning row if valid).
    type Entry = (usize, (Option<Stamp>, usize), Option<DeviceRow>);
    let mut by_device: HashMap<String, Entry> = HashMap::new();
    for (index, (line, row)) in data.iter().enumerate() {
        let line = *line;
        if row.len() > cols.width {
            // An unquoted comma in a value shifts every later column:
            // nothing in such a row can be trusted, not even its date.
            out.invalid.push(Invalid {
                row: line,
                reason: format!(
                    "{} fields where the header has {} (an unquoted comma?)",
                    row.len(),
                    cols.width
                ),
            });
            continue;
        }
        let serial = cols.get(row, Field::Serial).unwrap_or("").trim();
        let key = device_key(kind, serial);
        let stamp = match cols.get(row, Field::UpdatedAt).map(str::trim) {
            None | Some("") => None,
            Some(t) => {
                let s = parse_timestamp(t);
                if s.is_none() {
                    out.warnings.push(format!(
                        "line {line}: updated_at is not a date; the row counts as the oldest"
                    ));
                }
                s
            }
        };
        // Later rows have larger indexes: `>=` on (date, index) is "the
        // latest date, then the last row".
        let order = (stamp, index);
        let parsed = parse_row(&cols, row).map(|values| DeviceRow {
            serial: serial.to_string(),
            line,
            values,
            order,
        });
        let parsed = match (parsed, &key) {
            (Err(reason), _) => Err(reason),
            (Ok(_), None) if serial.is_empty() => Err("serial is empty".to_string()),
            (Ok(_), None) => Err("serial is not a MAC address".to_string()),
            (Ok(r), Some(_)) => Ok(r),
        };
        let parsed = match parsed {
            Ok(r) => Some(r),
            Err(reason) => {
                out.invalid.push(Invalid { row: line, reason });
                None
            }
        };
        let Some(key) = key else { continue };
        let next = by_device.len();
        let entry = by_device.entry(key).or_insert_with(|| (next, order, None));
        if order >= entry.1 {
            entry.1 = order;
            entry.2 = parsed;
        }
    }
    out.devices = by_device.len();
    let mut winners: Vec<(usize, DeviceRow)> = by_device
        .into_values()
        .filter_map(|(first, _, row)| row.map(|r| (first, r)))
        .collect();
    winners.sort_by_key(|(first, _)| *first);
    out.latest = winners.into_iter().map(|(_, r)| r).collect();
    Ok(out)
}

/// The row's values, validated; the reason names the field, never the value.
fn parse_row(cols: &Columns, row: &[String]) -> Result<Vec<(Field, FieldValue)>, String> {
    let mut values = Vec::new();
    for (field, _) in cols.kind.fields() {
        if field.target().is_none() {
            continue;
        }
        let raw = cols.get(row, *field).unwrap_or("");
        let name = field.name();
        // ERPNext's Data and Password columns are VARCHAR(140); beyond, it
        // refuses the write with a message that quotes the value.
        if raw.chars().count() > MAX_TEXT {
            return Err(format!(
                "{name} is longer than {MAX_TEXT} characters (ERPNext's limit)"
            ));
        }
        let value = match field {
            // The identity of the line or account: a row without it says
            // nothing usable.
            Field::Ssid | Field::SipUsername | Field::RadiusUser => {
                // An SSID is taken byte for byte (spaces are legal in it);
                // a username is not.
                let v = if *field == Field::Ssid {
                    raw
                } else {
                    raw.trim()
                };
                if v.is_empty() {
                    return Err(format!("{name} is empty"));
                }
                text(name, v, *field == Field::Ssid)?
            }
            _ if raw.is_empty() => continue,
            Field::Ssid5g => text(name, raw, true)?,
            Field::Password => {
                if !(8..=63).contains(&raw.len())
                    || !raw.bytes().all(|b| (0x20..=0x7e).contains(&b))
                {
                    return Err(format!(
                        "{name} is not a WPA passphrase (8 to 63 printable ASCII characters)"
                    ));
                }
                FieldValue::Secret(Secret::new(raw))
            }
            Field::SipPassword | Field::RadiusPassword => FieldValue::Secret(Secret::new(raw)),
            Field::Line => match raw.trim().parse::<u32>() {
                Ok(n) if (1..=i32::MAX as u32).contains(&n) => FieldValue::Int(n),
                _ => return Err(format!("{name} is not a whole number of at least 1")),
            },
            Field::Serial | Field::UpdatedAt => continue,
        };
        values.push((*field, value));
    }
    Ok(values)
}

/// A text value: no control characters (a broken export), and an SSID
/// within the 32 bytes 802.11 allows.
fn text(name: &str, v: &str, ssid: bool) -> Result<FieldValue, String> {
    if ssid && v.len() > 32 {
        return Err(format!("{name} is longer than 32 bytes"));
    }
    if v.chars().any(char::is_control) {
        return Err(format!("{name} contains control characters"));
    }
    Ok(FieldValue::Text(v.to_string()))
}

/// A point in time, comparable: (seconds since 1970 UTC, nanoseconds).
pub type Stamp = (i64, u32);

/// `2024-03-01 12:00:00`, `2024-03-01T12:00:00Z`, `2024-03-01T12:00:00.5+02:00`,
/// `2024-03-01` (midnight), `/` accepted as the date separator. A time
/// without an offset is taken as UTC: what matters is the order of one
/// export's rows, which share a convention.
pub fn parse_timestamp(s: &str) -> Option<Stamp> {
    let s = s.trim();
    let num = |t: &str| -> Option<i64> {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let date = s.get(..10)?;
    let sep = date.as_bytes().get(4).copied();
    if !matches!(sep, Some(b'-' | b'/')) || date.as_bytes().get(7).copied() != sep {
        return None;
    }
    let (y, m, d) = (num(&date[..4])?, num(&date[5..7])?, num(&date[8..10])?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    let mut nanos = 0u32;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some((secs, nanos));
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    // HH:MM[:SS[.fff]] then Z, ±HH:MM, ±HHMM, ±HH or nothing.
    let (time, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let time = time.trim_end();
    let mut parts = time.splitn(3, ':');
    let h = num(parts.next()?)?;
    let mi = num(parts.next()?)?;
    let (sec, frac) = match parts.next() {
        None => (0, ""),
        Some(x) => match x.split_once(['.', ',']) {
            Some((a, f)) => (num(a)?, f),
            None => (num(x)?, ""),
        },
    };
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    if !frac.is_empty() {
        num(frac)?;
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = digits.parse().ok()?;
    }
    secs += h * 3600 + mi * 60 + sec;
    match zone {
        "" | "Z" | "z" => {}
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
            if !matches!(digits.len(), 2 | 4) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let oh = num(&digits[..2])?;
            let om = if digits.len() == 4 {
                num(&digits[2..])?
            } else {
                0
            };
            if oh > 14 || om > 59 {
                return None;
            }
            secs -= sign * (oh * 3600 + om * 60);
        }
    }
    Some((secs, nanos))
}

// ---------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------

/// A device and the one record it matched.
#[derive(Clone, Debug)]
pub struct Matched<'e> {
    pub device: DeviceRow,
    pub equipment: &'e Equipment,
}

/// A serial that matched several records: nothing is written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ambiguous {
    pub serial: String,
    pub candidates: Vec<String>,
}

/// The outcome of matching the devices against the records.
#[derive(Debug, Default)]
pub struct Matching<'e> {
    pub matched: Vec<Matched<'e>>,
    pub unmatched: Vec<String>,
    pub ambiguous: Vec<Ambiguous>,
    /// Devices that matched a record a newer row of another serial also
    /// matched (the same device spelled two ways the canonical forms do not
    /// unite, e.g. its serial and its MAC): not used.
    pub superseded: usize,
    pub warnings: Vec<String>,
}

/// Records by one identifier field: its value as stored (trimmed, upper
/// case) and its canonical form (GPON serial or MAC). Built once, so that
/// matching a thousand devices against thousands of records stays linear.
#[derive(Default)]
struct Index<'e> {
    exact: HashMap<String, Vec<&'e Equipment>>,
    canonical: HashMap<String, Vec<&'e Equipment>>,
}

/// The canonical form used by an index: a GPON serial, or a MAC.
type Canon = fn(&str) -> Option<String>;

impl<'e> Index<'e> {
    fn build(
        all: &'e [Equipment],
        get: fn(&Equipment) -> Option<&str>,
        canon: Canon,
        exact: bool,
    ) -> Index<'e> {
        let mut ix = Index::default();
        for e in all {
            let Some(v) = get(e).map(str::trim).filter(|v| !v.is_empty()) else {
                continue;
            };
            if exact {
                ix.exact.entry(v.to_ascii_uppercase()).or_default().push(e);
            }
            if let Some(c) = canon(v) {
                ix.canonical.entry(c).or_default().push(e);
            }
        }
        ix
    }

    fn find(&self, serial: &str, canon: Canon) -> Vec<&'e Equipment> {
        let mut v: Vec<&Equipment> = self
            .exact
            .get(&serial.to_ascii_uppercase())
            .cloned()
            .unwrap_or_default();
        if let Some(found) = canon(serial).and_then(|c| self.canonical.get(&c)) {
            v.extend(found);
        }
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v.dedup_by(|a, b| a.name == b.name);
        v
    }
}

/// Each device against the records. WiFi: the Deco MAC against
/// `mac_address`. VoIP: the ONT serial against `serial_number`, else
/// `custom_gpon_serial`. RADIUS: `serial_number`, else `mac_address`, else
/// `custom_gpon_serial`. Serials compare case-insensitively, and GPON
/// serials and MACs in canonical form (ASCII or 16-hex; any MAC spelling).
/// The first step with any match decides; more than one record there is
/// ambiguous.
pub fn match_devices<'e>(kind: Kind, latest: &[DeviceRow], all: &'e [Equipment]) -> Matching<'e> {
    let gpon: Canon = canonical_gpon_serial;
    let mac: Canon = canonical_mac;
    let by_serial = || {
        (
            Index::build(all, |e| e.serial_number.as_deref(), gpon, true),
            gpon,
        )
    };
    let by_gpon = || {
        (
            Index::build(all, |e| e.gpon_serial.as_deref(), gpon, true),
            gpon,
        )
    };
    let by_mac = || {
        (
            Index::build(all, |e| e.mac_address.as_deref(), mac, false),
            mac,
        )
    };
    let steps: Vec<(Index<'e>, Canon)> = match kind {
        Kind::Wifi => vec![by_mac()],
        Kind::Voip => vec![by_serial(), by_gpon()],
        Kind::Radius => vec![by_serial(), by_mac(), by_gpon()],
    };
    let mut out = Matching::default();
    for device in latest {
        let found: Vec<&Equipment> = steps
            .iter()
            .map(|(ix, canon)| ix.find(&device.serial, *canon))
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        match found.as_slice() {
            [] => out.unmatched.push(device.serial.clone()),
            [one] => out.matched.push(Matched {
                device: device.clone(),
                equipment: one,
            }),
            many => out.ambiguous.push(Ambiguous {
                serial: device.serial.clone(),
                candidates: many.iter().map(|e| e.name.clone()).collect(),
            }),
        }
    }
    // One record named by two devices: the newer row is used, as for two
    // rows of one device; writing both would leave a conflict behind.
    let mut best: HashMap<&str, usize> = HashMap::new();
    for (i, m) in out.matched.iter().enumerate() {
        let w = best.entry(m.equipment.name.as_str()).or_insert(i);
        if m.device.order >= out.matched[*w].device.order {
            *w = i;
        }
    }
    let keep: BTreeSet<usize> = best.values().copied().collect();
    for (i, m) in out.matched.iter().enumerate() {
        if !keep.contains(&i) {
            let w = &out.matched[best[m.equipment.name.as_str()]].device;
            out.warnings.push(format!(
                "line {}: {} is the same record {} as {} on line {}, a newer row; not used",
                m.device.line, m.device.serial, m.equipment.name, w.serial, w.line
            ));
        }
    }
    out.superseded = out.matched.len() - keep.len();
    let mut i = 0;
    out.matched.retain(|_| {
        i += 1;
        keep.contains(&(i - 1))
    });
    out
}

// ---------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------

fn has_password(e: &Equipment, field: Field) -> bool {
    match field {
        Field::Password => e.has_wifi_password,
        Field::SipPassword => e.has_sip_password,
        Field::RadiusPassword => e.has_radius_password,
        _ => false,
    }
}

/// The stored passwords the plan must compare with: (record, ERPNext
/// field) for each legacy password going to a record that has one set.
pub fn password_reads(matched: &[Matched<'_>]) -> Vec<(String, &'static str)> {
    let mut out = BTreeSet::new();
    for m in matched {
        for (field, _) in &m.device.values {
            match field.target() {
                Some(target) if field.is_secret() && has_password(m.equipment, *field) => {
                    out.insert((m.equipment.name.clone(), target));
                }
                _ => {}
            }
        }
    }
    out.into_iter().collect()
}

/// The stored passwords, by (record, ERPNext field); `None`: none set.
pub type Passwords = HashMap<(String, &'static str), Option<Secret>>;

/// The fields to write to one record.
#[derive(Clone, Debug)]
pub struct Write {
    pub serial: String,
    pub equipment: String,
    pub fields: Vec<(&'static str, FieldValue)>,
}

/// A field that holds another value; left alone without `--overwrite`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub serial: String,
    pub equipment: String,
    pub field: String,
}

/// What to do.
#[derive(Debug, Default)]
pub struct Plan {
    pub writes: Vec<Write>,
    pub unchanged: usize,
    pub conflicts: Vec<Conflict>,
}

/// Compares each legacy value with the record: the same value is
/// unchanged, an unset field is written, another value is a conflict
/// (written with `overwrite`, and still reported). A password is compared
/// through `passwords` (clear values read by the runner).
///
/// `custom_sip_line` is an Int with a default of 1 in ERPNext: a record
/// without a SIP username has never had a line assigned, so its line
/// counts as unset.
pub fn plan(matched: &[Matched<'_>], passwords: &Passwords, overwrite: bool) -> Plan {
    let mut out = Plan::default();
    for m in matched {
        let e = m.equipment;
        let mut fields = Vec::new();
        for (field, value) in &m.device.values {
            let Some(target) = field.target() else {
                continue;
            };
            let current: Option<FieldValue> = match field {
                Field::Ssid => e.wifi_ssid.clone().map(FieldValue::Text),
                Field::Ssid5g => e.wifi_ssid_5g.clone().map(FieldValue::Text),
                Field::SipUsername => e.sip_username.clone().map(FieldValue::Text),
                Field::RadiusUser => e.radius_user.clone().map(FieldValue::Text),
                Field::Line => e
                    .sip_line
                    .filter(|n| *n > 0 && e.sip_username.is_some())
                    .map(FieldValue::Int),
                Field::Password | Field::SipPassword | Field::RadiusPassword => {
                    if has_password(e, *field) {
                        passwords
                            .get(&(e.name.clone(), target))
                            .cloned()
                            .flatten()
                            .map(FieldValue::Secret)
                    } else {
                        None
                    }
                }
                Field::Serial | Field::UpdatedAt => None,
            };
            match current {
                Some(c) if &c == value => out.unchanged += 1,
                Some(_) => {
                    out.conflicts.push(Conflict {
                        serial: m.device.serial.clone(),
                        equipment: e.name.clone(),
                        field: target.to_string(),
                    });
                    if overwrite {
                        fields.push((target, value.clone()));
                    }
                }
                None => fields.push((target, value.clone())),
            }
        }
        if !fields.is_empty() {
            out.writes.push(Write {
                serial: m.device.serial.clone(),
                equipment: e.name.clone(),
                fields,
            });
        }
    }
    out
}

// ---------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------

/// What a run found and did. Serialised as the `--json` report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub rows: usize,
    pub devices: usize,
    pub matched: usize,
    pub unmatched: Vec<String>,
    pub ambiguous: Vec<Ambiguous>,
    pub invalid: Vec<Invalid>,
    /// Fields that already held the legacy value.
    pub unchanged: usize,
    pub conflicts: Vec<Conflict>,
    /// Fields written (dry run: that would be written).
    pub written: usize,
    pub dry_run: bool,
    /// Printed on stderr, not part of the JSON.
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// Conflicting fields were replaced (`--overwrite`).
    #[serde(skip)]
    pub overwrite: bool,
}

impl Report {
    /// The report of a read file and a plan, before anything is written
    /// (`written` is then what the plan would write).
    pub fn new(legacy: &Legacy, matching: &Matching<'_>, plan: &Plan, dry_run: bool) -> Report {
        Report {
            rows: legacy.rows,
            devices: legacy.devices,
            matched: matching.matched.len() + matching.superseded,
            unmatched: matching.unmatched.clone(),
            ambiguous: matching.ambiguous.clone(),
            invalid: legacy.invalid.clone(),
            unchanged: plan.unchanged,
            conflicts: plan.conflicts.clone(),
            written: plan.writes.iter().map(|w| w.fields.len()).sum(),
            dry_run,
            warnings: [&legacy.warnings[..], &matching.warnings[..]].concat(),
            overwrite: false,
        }
    }

    /// The human-readable report.
    pub fn to_text(&self, kind: Kind) -> String {
        let mut t = String::new();
        let mode = if self.dry_run {
            "dry run, nothing written (--apply writes)"
        } else {
            "applied"
        };
        let _ = writeln!(t, "migrate {}: {mode}", kind.command());
        let _ = writeln!(t, "  rows read        {}", self.rows);
        let _ = writeln!(t, "  devices          {}", self.devices);
        let _ = writeln!(t, "  matched          {}", self.matched);
        let _ = writeln!(t, "  unmatched        {}", self.unmatched.len());
        for s in &self.unmatched {
            let _ = writeln!(t, "    {s}");
        }
        let _ = writeln!(t, "  ambiguous        {}", self.ambiguous.len());
        for a in &self.ambiguous {
            let _ = writeln!(t, "    {} matches {}", a.serial, a.candidates.join(", "));
        }
        let _ = writeln!(t, "  invalid rows     {}", self.invalid.len());
        for i in &self.invalid {
            let _ = writeln!(t, "    line {}: {}", i.row, i.reason);
        }
        let _ = writeln!(t, "  fields unchanged {}", self.unchanged);
        let _ = writeln!(
            t,
            "  conflicts        {}{}",
            self.conflicts.len(),
            match (self.conflicts.is_empty(), self.overwrite) {
                (true, _) => "",
                (false, true) => " (overwritten)",
                (false, false) => " (left alone; --overwrite replaces them)",
            }
        );
        for c in &self.conflicts {
            let _ = writeln!(t, "    {} {} {}", c.serial, c.equipment, c.field);
        }
        let verb = if self.dry_run {
            "fields to write  "
        } else {
            "fields written   "
        };
        let _ = writeln!(t, "  {verb}{}", self.written);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erpnext::Equipment;

    fn eq(name: &str) -> Equipment {
        Equipment::named(name)
    }

    fn header(cols: &[&str]) -> Vec<String> {
        cols.iter().map(|c| (*c).to_string()).collect()
    }

    #[test]
    fn columns_default_mapped_and_missing() {
        let h = header(&["Serial", "SSID", "password"]);
        assert!(Columns::resolve(Kind::Wifi, &h, &[]).is_ok());
        let h = header(&["mac", "nom_reseau", "cle", "maj"]);
        let map = vec![
            "serial=mac".to_string(),
            "ssid=NOM_RESEAU".to_string(),
            "password=cle".to_string(),
            "updated_at=maj".to_string(),
        ];
        let c = Columns::resolve(Kind::Wifi, &h, &map).expect("mapped");
        assert_eq!(
            c.get(&header(&["a", "b", "c", "d"]), Field::UpdatedAt),
            Some("d")
        );
        assert_eq!(
            Columns::resolve(Kind::Wifi, &h, &map[..2]).unwrap_err(),
            LegacyError::MissingColumn {
                field: "password",
                column: "password".into()
            }
        );
        let e = Columns::resolve(Kind::Wifi, &h, &["sip_line=x".into()]).unwrap_err();
        assert!(e.to_string().contains("`sip_line`"), "{e}");
        assert!(matches!(
            Columns::resolve(Kind::Wifi, &h, &["serial".into()]),
            Err(LegacyError::MapSyntax(_))
        ));
        // An optional column named explicitly must be there.
        let h = header(&["serial", "sip_username", "sip_password"]);
        assert!(Columns::resolve(Kind::Voip, &h, &[]).is_ok());
        let e = Columns::resolve(Kind::Voip, &h, &["line=ligne".into()]).unwrap_err();
        assert!(e.to_string().contains("`ligne`"), "{e}");
    }

    #[test]
    fn timestamps_in_common_forms() {
        let base = parse_timestamp("2024-03-01 12:00:00").expect("space");
        assert_eq!(base.0, 1_709_294_400);
        assert_eq!(parse_timestamp("2024-03-01T12:00:00Z"), Some(base));
        assert_eq!(parse_timestamp("2024-03-01T14:00:00+02:00"), Some(base));
        assert_eq!(parse_timestamp("2024-03-01T07:00:00-0500"), Some(base));
        assert_eq!(parse_timestamp("2024/03/01 12:00"), Some(base));
        assert_eq!(
            parse_timestamp("2024-03-01 12:00:00.25"),
            Some((base.0, 250_000_000))
        );
        assert_eq!(parse_timestamp("2024-03-01"), Some((base.0 - 43_200, 0)));
        assert_eq!(parse_timestamp("1970-01-01"), Some((0, 0)));
        assert_eq!(parse_timestamp("2000-02-29"), Some((951_782_400, 0)));
        for bad in [
            "",
            "yesterday",
            "2024-02-30",
            "2023-02-29",
            "2024-13-01",
            "01/03/2024",
            "2024-03-01 25:00",
            "2024-03-01X12:00",
            "2024-03-01 12:00:00+1",
            "2024-03-01 12",
            "2024-03-01 12:00:ab",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    const WIFI: &str = "serial,ssid,password,ssid_5g,updated_at\n";

    #[test]
    fn latest_row_wins_ties_go_to_the_last_and_invalid_rows_say_why() {
        let text = format!(
            "{WIFI}\
AA:BB:CC:00:00:01,Old,oldpass-1,,2024-01-01\n\
aa-bb-cc-00-00-01,New,newpass-1,,2024-06-01T00:00:00Z\n\
aabb.cc00.0001,Older,oldpass-2,,2023-01-01\n\
AABBCC000002,First,firstpass,,2024-01-01 10:00:00\n\
aabbcc000002,Second,secondpass,,2024-01-01 10:00:00\n\
aabbcc000003,Short,seven77,,\n\
aabbcc000004,ThisSSIDIsMuchTooLongForAnyRadio!!,longenough,,\n\
not-a-mac,X,password1,,\n\
,X,password1,,\n\
aabbcc000005,Undated,undated-1,,sometime\n\
aabbcc000005,Dated,dated-pw1,,2020-01-01\n\
aabbcc000006,Shifted,pass,word,5g,2024-01-01\n\
aabbcc000007,,password1,,\n"
        );
        let l = read(Kind::Wifi, &text, &[]).expect("read");
        assert_eq!(l.rows, 13);
        assert_eq!(
            l.devices, 6,
            "the shifted row and the bad serials name no device"
        );
        let got: Vec<(&str, usize)> = l
            .latest
            .iter()
            .map(|d| (d.serial.as_str(), d.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("aa-bb-cc-00-00-01", 3),
                ("aabbcc000002", 6),
                ("aabbcc000005", 12),
            ]
        );
        let reasons: Vec<(usize, &str)> = l
            .invalid
            .iter()
            .map(|i| (i.row, i.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (
                    7,
                    "password is not a WPA passphrase (8 to 63 printable ASCII characters)"
                ),
                (8, "ssid is longer than 32 bytes"),
                (9, "serial is not a MAC address"),
                (10, "serial is empty"),
                (13, "6 fields where the header has 5 (an unquoted comma?)"),
                (14, "ssid is empty"),
            ]
        );
        assert_eq!(l.warnings.len(), 1);
        assert!(
            l.warnings[0].starts_with("line 11: updated_at"),
            "{:?}",
            l.warnings
        );
        // No value of the file in any message.
        let all = format!("{:?} {:?} {:?}", l.invalid, l.warnings, l.latest);
        for secret in ["seven77", "newpass-1", "dated-pw1", "secondpass"] {
            assert!(!all.contains(secret), "{secret} in {all}");
        }
    }

    #[test]
    fn a_newer_invalid_row_blocks_an_older_valid_one() {
        let text = format!(
            "{WIFI}aabbcc000001,Fine,password1,,2024-01-01\naabbcc000001,Bad,short,,2024-02-01\n"
        );
        let l = read(Kind::Wifi, &text, &[]).expect("read");
        assert_eq!((l.devices, l.latest.len(), l.invalid.len()), (1, 0, 1));
    }

    #[test]
    fn voip_lines_and_radius_serials() {
        let text = "serial,sip_username,sip_password,line\n\
RCMG1A2B3C4D,14505550001,sip-secret,2\n\
52434D471A2B3C4D,14505550001,sip-secret,3\n\
RCMG00000001,14505550002,x,0\n\
RCMG00000002,14505550003,x,two\n\
RCMG00000003, ,x,1\n\
RCMG00000004,14505550004,,\n";
        let l = read(Kind::Voip, text, &[]).expect("read");
        assert_eq!(l.devices, 5, "ASCII and hex forms are one device");
        assert_eq!(l.latest.len(), 2);
        assert_eq!(l.latest[0].serial, "52434D471A2B3C4D");
        assert_eq!(
            l.latest[0].values,
            vec![
                (Field::SipUsername, FieldValue::Text("14505550001".into())),
                (
                    Field::SipPassword,
                    FieldValue::Secret(Secret::new("sip-secret"))
                ),
                (Field::Line, FieldValue::Int(3)),
            ]
        );
        assert_eq!(l.latest[1].values.len(), 1, "empty values write nothing");
        let reasons: Vec<&str> = l.invalid.iter().map(|i| i.reason.as_str()).collect();
        assert_eq!(
            reasons,
            vec![
                "line is not a whole number of at least 1",
                "line is not a whole number of at least 1",
                "sip_username is empty",
            ]
        );
        let long = format!(
            "serial,sip_username,sip_password\nRCMG00000001,u,{}\n",
            "p".repeat(141)
        );
        let l = read(Kind::Voip, &long, &[]).expect("long");
        assert_eq!(
            l.invalid[0].reason,
            "sip_password is longer than 140 characters (ERPNext's limit)"
        );
        let r = read(
            Kind::Radius,
            "serial,radius_user,radius_password\nAA:BB:CC:DD:EE:01,u,p\naabbccddee01,u2,p\n",
            &[],
        )
        .expect("radius");
        assert_eq!((r.devices, r.latest.len()), (1, 1));
    }

    fn device(kind: Kind, text: &str) -> Vec<DeviceRow> {
        read(kind, text, &[]).expect("read").latest
    }

    #[test]
    fn matching_by_kind_in_every_spelling() {
        let mut a = eq("EQ-1");
        a.mac_address = Some("AA:BB:CC:00:00:01".into());
        a.serial_number = Some("52434D471A2B3C4D".into());
        let mut b = eq("EQ-2");
        b.mac_address = Some("aa-bb-cc-00-00-02".into());
        b.gpon_serial = Some("tplg00000002".into());
        let mut c = eq("EQ-3");
        c.mac_address = Some("AABBCC000002".into());
        c.serial_number = Some("22A1004513".into());
        let mut d = eq("EQ-4");
        d.gpon_serial = Some("22a1004513".into());
        let all = vec![a, b, c, d];

        let wifi = device(
            Kind::Wifi,
            &format!(
                "{WIFI}aabb.cc00.0001,S,password1,,\naabbcc000002,S,password1,,\naabbcc000009,S,password1,,\n"
            ),
        );
        let m = match_devices(Kind::Wifi, &wifi, &all);
        assert_eq!(m.matched.len(), 1);
        assert_eq!(m.matched[0].equipment.name, "EQ-1");
        assert_eq!(m.unmatched, vec!["aabbcc000009"]);
        assert_eq!(
            m.ambiguous,
            vec![Ambiguous {
                serial: "aabbcc000002".into(),
                candidates: vec!["EQ-2".into(), "EQ-3".into()]
            }]
        );

        let voip = device(
            Kind::Voip,
            "serial,sip_username,sip_password\nrcmg1a2b3c4d,u,p\n54504C4700000002,u,p\n22A1004513,u,p\n",
        );
        let m = match_devices(Kind::Voip, &voip, &all);
        let names: Vec<&str> = m
            .matched
            .iter()
            .map(|x| x.equipment.name.as_str())
            .collect();
        // serial_number first: EQ-3 wins over EQ-4's custom_gpon_serial.
        assert_eq!(names, vec!["EQ-1", "EQ-2", "EQ-3"]);

        let radius = device(
            Kind::Radius,
            "serial,radius_user,radius_password\n22a1004513,u,p\nAA:BB:CC:00:00:01,u,p\nTPLG00000002,u,p\n",
        );
        let m = match_devices(Kind::Radius, &radius, &all);
        let names: Vec<&str> = m
            .matched
            .iter()
            .map(|x| x.equipment.name.as_str())
            .collect();
        assert_eq!(names, vec!["EQ-3", "EQ-1", "EQ-2"]);
    }

    #[test]
    fn one_record_named_twice_takes_the_newer_row() {
        let mut a = eq("EQ-1");
        a.mac_address = Some("aabbcc000001".into());
        a.serial_number = Some("22A1004513".into());
        let all = vec![a];
        let rows = device(
            Kind::Radius,
            "serial,radius_user,radius_password,updated_at\n22A1004513,new,p,2024-02-01\nAA:BB:CC:00:00:01,old,p,2024-01-01\n",
        );
        let m = match_devices(Kind::Radius, &rows, &all);
        assert_eq!((m.matched.len(), m.superseded), (1, 1));
        assert_eq!(m.matched[0].device.line, 2);
        assert_eq!(
            m.warnings,
            vec![
                "line 3: AA:BB:CC:00:00:01 is the same record EQ-1 as 22A1004513 on line 2, a newer row; not used"
            ]
        );
    }

    #[test]
    fn plan_writes_unset_keeps_same_and_reports_conflicts() {
        let mut a = eq("EQ-1");
        a.mac_address = Some("aabbcc000001".into());
        a.wifi_ssid = Some("Same".into());
        a.has_wifi_password = true;
        let mut b = eq("EQ-2");
        b.mac_address = Some("aabbcc000002".into());
        b.wifi_ssid = Some("Other".into());
        b.has_wifi_password = true;
        let all = vec![a, b];
        let rows = device(
            Kind::Wifi,
            &format!("{WIFI}aabbcc000001,Same,password1,Five,\naabbcc000002,Mine,password2,,\n"),
        );
        let m = match_devices(Kind::Wifi, &rows, &all);
        let reads = password_reads(&m.matched);
        assert_eq!(
            reads,
            vec![
                ("EQ-1".to_string(), "custom_wifi_password"),
                ("EQ-2".to_string(), "custom_wifi_password"),
            ]
        );
        let mut pw = Passwords::new();
        pw.insert(reads[0].clone(), Some(Secret::new("password1")));
        pw.insert(reads[1].clone(), Some(Secret::new("stored-other")));
        let p = plan(&m.matched, &pw, false);
        assert_eq!(p.unchanged, 2);
        assert_eq!(p.writes.len(), 1);
        assert_eq!(p.writes[0].equipment, "EQ-1");
        assert_eq!(
            p.writes[0].fields,
            vec![("custom_wifi_ssid_5g", FieldValue::Text("Five".into()))]
        );
        let fields: Vec<&str> = p.conflicts.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["custom_wifi_ssid", "custom_wifi_password"]);
        let p = plan(&m.matched, &pw, true);
        assert_eq!(p.writes.len(), 2);
        assert_eq!(p.writes[1].fields.len(), 2);
        assert_eq!(
            p.conflicts.len(),
            2,
            "overwritten conflicts are still reported"
        );
        assert!(!format!("{:?}", p.writes).contains("password2"));
    }

    #[test]
    fn the_default_sip_line_is_not_a_conflict() {
        let mut fresh = eq("EQ-1");
        fresh.serial_number = Some("RCMG00000001".into());
        fresh.sip_line = Some(1);
        let mut used = eq("EQ-2");
        used.serial_number = Some("RCMG00000002".into());
        used.sip_line = Some(1);
        used.sip_username = Some("u2".into());
        let all = vec![fresh, used];
        let rows = device(
            Kind::Voip,
            "serial,sip_username,sip_password,line\nRCMG00000001,u1,,2\nRCMG00000002,u2,,2\n",
        );
        let m = match_devices(Kind::Voip, &rows, &all);
        let p = plan(&m.matched, &Passwords::new(), false);
        assert_eq!(p.writes.len(), 1);
        assert_eq!(
            p.writes[0].fields,
            vec![
                ("custom_sip_username", FieldValue::Text("u1".into())),
                ("custom_sip_line", FieldValue::Int(2)),
            ]
        );
        assert_eq!(p.unchanged, 1);
        assert_eq!(p.conflicts.len(), 1);
        assert_eq!(p.conflicts[0].field, "custom_sip_line");
    }

    #[test]
    fn report_json_has_exactly_the_documented_keys() {
        let r = Report {
            warnings: vec!["w".into()],
            ..Report::default()
        };
        let v = serde_json::to_value(&r).expect("json");
        let keys: Vec<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = vec![
            "rows",
            "devices",
            "matched",
            "unmatched",
            "ambiguous",
            "invalid",
            "unchanged",
            "conflicts",
            "written",
            "dry_run",
        ];
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want);
        assert!(
            r.to_text(Kind::Voip)
                .contains("migrate legacy-voip: applied")
        );
    }
}
