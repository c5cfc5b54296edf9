//! The simulated DocTypes: their fields (with Frappe field types), naming
//! rules, defaults, and the per-field coercion/validation Frappe applies on
//! save.

use serde_json::{Number, Value};

use crate::util::normalize_datetime;

/// Frappe field types the ISP's DocTypes use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldType {
    Data,
    /// Link to another DocType (validated only when that DocType is simulated).
    Link(&'static str),
    /// Select with its options (Frappe stores them newline-separated).
    Select(&'static [&'static str]),
    Int,
    Check,
    Float,
    /// Stored encrypted in `__Auth`; the column holds asterisks.
    Password,
    /// DATETIME(6): Frappe datetime text (`YYYY-MM-DD HH:MM:SS[.ffffff]`),
    /// nullable, compared chronologically.
    Datetime,
}

/// A static default value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultValue {
    Int(i64),
    Str(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldDef {
    pub name: &'static str,
    pub label: &'static str,
    pub ftype: FieldType,
    pub reqd: bool,
    pub default: Option<DefaultValue>,
}

const fn f(name: &'static str, label: &'static str, ftype: FieldType) -> FieldDef {
    FieldDef {
        name,
        label,
        ftype,
        reqd: false,
        default: None,
    }
}

const fn reqd(mut d: FieldDef) -> FieldDef {
    d.reqd = true;
    d
}

const fn dflt(mut d: FieldDef, v: DefaultValue) -> FieldDef {
    d.default = Some(v);
    d
}

/// How a new document gets its `name` when the request carries none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Naming {
    /// ERPNext's default "Customer Name" naming: the name is the
    /// `customer_name`, suffixed ` - N` when taken.
    FromField(&'static str),
    /// A naming series like `EQ-.#####`: prefix and digit count.
    Series(&'static str, usize),
}

#[derive(Debug, PartialEq)]
pub struct DocType {
    pub name: &'static str,
    pub fields: &'static [FieldDef],
    pub naming: Naming,
}

/// How a column compares and sorts (MariaDB semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColKind {
    /// VARCHAR with a case- and accent-insensitive collation; nullable.
    Text,
    /// INT / DECIMAL, NOT NULL DEFAULT 0.
    Numeric,
    /// DATETIME(6), never null for the standard columns.
    Datetime,
}

/// A queryable column of a DocType: a standard column or a DocField.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColKind,
    pub field: Option<&'static FieldDef>,
}

/// Standard columns every document has, in Frappe's `default_fields` order
/// (minus `doctype`, which is not a column).
pub const STANDARD: [(&str, ColKind); 7] = [
    ("name", ColKind::Text),
    ("owner", ColKind::Text),
    ("creation", ColKind::Datetime),
    ("modified", ColKind::Datetime),
    ("modified_by", ColKind::Text),
    ("docstatus", ColKind::Numeric),
    ("idx", ColKind::Numeric),
];

/// Frappe's `optional_fields` that exist as (always null here) columns.
pub const OPTIONAL: [&str; 4] = ["_user_tags", "_comments", "_assign", "_liked_by"];

/// Labels Frappe's meta gives the standard fields.
pub fn standard_label(name: &str) -> &str {
    match name {
        "name" => "ID",
        "owner" => "Created By",
        "creation" => "Created On",
        "modified" => "Last Updated On",
        "modified_by" => "Last Updated By",
        "docstatus" => "Document Status",
        "idx" => "Index",
        other => other,
    }
}

pub const MAX_VARCHAR: usize = 140;

static CUSTOMER_FIELDS: [FieldDef; 9] = [
    reqd(f("customer_name", "Customer Name", FieldType::Data)),
    dflt(
        f(
            "customer_type",
            "Customer Type",
            FieldType::Select(&["Company", "Individual", "Partnership"]),
        ),
        DefaultValue::Str("Company"),
    ),
    f(
        "customer_group",
        "Customer Group",
        FieldType::Link("Customer Group"),
    ),
    f("territory", "Territory", FieldType::Link("Territory")),
    f("email_id", "Email Id", FieldType::Data),
    f("mobile_no", "Mobile No", FieldType::Data),
    dflt(
        f("disabled", "Disabled", FieldType::Check),
        DefaultValue::Int(0),
    ),
    f("legacy_customer_id", "Legacy Customer ID", FieldType::Data),
    f("stripe_id", "Stripe ID", FieldType::Data),
];

static SERVICE_LOCATION_FIELDS: [FieldDef; 17] = [
    reqd(f("customer", "Customer", FieldType::Link("Customer"))),
    f("address_line", "Address Line", FieldType::Data),
    f("city", "City", FieldType::Data),
    f("province", "Province", FieldType::Data),
    f("postal_code", "Postal Code", FieldType::Data),
    f("latitude", "Latitude", FieldType::Float),
    f("longitude", "Longitude", FieldType::Float),
    f(
        "connection_type",
        "Connection Type",
        FieldType::Select(&["Fibre", "Sans-fil", "Cuivre"]),
    ),
    f("olt_name", "OLT Name", FieldType::Data),
    f("olt_ip", "OLT IP", FieldType::Data),
    f("olt_frame", "OLT Frame", FieldType::Data),
    f("olt_slot", "OLT Slot", FieldType::Data),
    f("olt_port", "OLT Port", FieldType::Data),
    f("ont_id", "ONT ID", FieldType::Data),
    f(
        "status",
        "Status",
        FieldType::Select(&["Pending Install", "Active", "Suspended", "Cancelled"]),
    ),
    f("fibre_id", "Fibre ID", FieldType::Data),
    f("notes", "Notes", FieldType::Data),
];

static SERVICE_EQUIPMENT_FIELDS: [FieldDef; 30] = [
    f("customer", "Customer", FieldType::Link("Customer")),
    f(
        "service_location",
        "Service Location",
        FieldType::Link("Service Location"),
    ),
    reqd(f(
        "equipment_type",
        "Equipment Type",
        FieldType::Select(&["ONT", "Routeur", "Décodeur TV"]),
    )),
    f("brand", "Brand", FieldType::Data),
    f("model", "Model", FieldType::Data),
    f("serial_number", "Serial Number", FieldType::Data),
    f("mac_address", "MAC Address", FieldType::Data),
    f(
        "status",
        "Status",
        FieldType::Select(&["En inventaire", "Actif", "Défectueux", "Retourné"]),
    ),
    f("olt_name", "OLT Name", FieldType::Data),
    f("olt_ip", "OLT IP", FieldType::Data),
    f("olt_frame", "OLT Frame", FieldType::Data),
    f("olt_slot", "OLT Slot", FieldType::Data),
    f("olt_port", "OLT Port", FieldType::Data),
    f("ont_id", "ONT ID", FieldType::Data),
    f("custom_wifi_ssid", "WiFi SSID", FieldType::Data),
    f("custom_wifi_password", "WiFi Password", FieldType::Password),
    f("custom_wifi_ssid_5g", "WiFi SSID 5GHz", FieldType::Data),
    dflt(
        f("custom_wifi_enabled", "WiFi Enabled", FieldType::Check),
        DefaultValue::Int(1),
    ),
    f("custom_sip_username", "SIP Username", FieldType::Data),
    f("custom_sip_password", "SIP Password", FieldType::Password),
    dflt(
        f("custom_sip_line", "SIP Line Number", FieldType::Int),
        DefaultValue::Int(1),
    ),
    f("custom_gpon_serial", "GPON Serial", FieldType::Data),
    f("custom_cwmp_serial", "CWMP Serial", FieldType::Data),
    // Written back by the ACS when it provisions the device.
    f(
        "custom_provisioned_at",
        "Provisioned At",
        FieldType::Datetime,
    ),
    f(
        "custom_fibre_line_profile",
        "Line Profile ID",
        FieldType::Data,
    ),
    f(
        "custom_fibre_service_profile",
        "Service Profile ID",
        FieldType::Data,
    ),
    f("custom_radius_user", "RADIUS Username", FieldType::Data),
    f(
        "custom_radius_password",
        "RADIUS Password",
        FieldType::Password,
    ),
    f("installation_date", "Installation Date", FieldType::Data),
    f("notes", "Notes", FieldType::Data),
];

pub static DOCTYPES: [DocType; 3] = [
    DocType {
        name: "Customer",
        fields: &CUSTOMER_FIELDS,
        naming: Naming::FromField("customer_name"),
    },
    DocType {
        name: "Service Location",
        fields: &SERVICE_LOCATION_FIELDS,
        naming: Naming::Series("LOC-", 5),
    },
    DocType {
        name: "Service Equipment",
        fields: &SERVICE_EQUIPMENT_FIELDS,
        naming: Naming::Series("EQ-", 5),
    },
];

/// The DocType with exactly this name (Frappe DocType names are exact).
pub fn get(name: &str) -> Option<&'static DocType> {
    DOCTYPES.iter().find(|d| d.name == name)
}

/// Names of all simulated DocTypes.
pub fn names() -> Vec<&'static str> {
    DOCTYPES.iter().map(|d| d.name).collect()
}

impl DocType {
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        // `fields` is a `&'static [FieldDef]`, so the references are 'static.
        let fields: &'static [FieldDef] = self.fields;
        fields.iter().find(|f| f.name == name)
    }

    /// Resolves a column name (standard, optional or DocField).
    pub fn column(&self, name: &str) -> Option<Column> {
        if let Some((n, kind)) = STANDARD.iter().find(|(n, _)| *n == name) {
            return Some(Column {
                name: n,
                kind: *kind,
                field: None,
            });
        }
        if let Some(n) = OPTIONAL.iter().find(|n| **n == name) {
            return Some(Column {
                name: n,
                kind: ColKind::Text,
                field: None,
            });
        }
        self.field(name).map(|fd| Column {
            name: fd.name,
            kind: match fd.ftype {
                FieldType::Int | FieldType::Check | FieldType::Float => ColKind::Numeric,
                FieldType::Datetime => ColKind::Datetime,
                _ => ColKind::Text,
            },
            field: Some(fd),
        })
    }

    /// The columns `fields=["*"]` returns: standard ones, then DocFields.
    pub fn wildcard_columns(&self) -> Vec<Column> {
        let mut cols: Vec<Column> = STANDARD
            .iter()
            .map(|(n, kind)| Column {
                name: n,
                kind: *kind,
                field: None,
            })
            .collect();
        cols.extend(self.fields.iter().filter_map(|fd| self.column(fd.name)));
        cols
    }

    pub fn password_fields(&self) -> impl Iterator<Item = &'static FieldDef> {
        let fields: &'static [FieldDef] = self.fields;
        fields.iter().filter(|f| f.ftype == FieldType::Password)
    }

    /// Link fields (of any DocType) that point at this DocType.
    pub fn incoming_links(&self) -> Vec<(&'static DocType, &'static FieldDef)> {
        let mut out = Vec::new();
        for dt in DOCTYPES.iter() {
            let fields: &'static [FieldDef] = dt.fields;
            for fd in fields {
                if fd.ftype == FieldType::Link(self.name) {
                    out.push((dt, fd));
                }
            }
        }
        out
    }

    /// URL slug of the DocType in the desk (`/app/service-equipment/...`).
    pub fn slug(&self) -> String {
        self.name.to_lowercase().replace(' ', "-")
    }
}

impl FieldDef {
    pub fn is_numeric(&self) -> bool {
        matches!(
            self.ftype,
            FieldType::Int | FieldType::Check | FieldType::Float
        )
    }

    /// The value a new document gets when the request does not mention the
    /// field: the static default, the first Select option (Frappe's
    /// `get_static_default_value`), 0 for numbers, else null.
    pub fn default_value(&self) -> Value {
        match (self.default, self.ftype) {
            (Some(DefaultValue::Int(i)), FieldType::Float) => Value::from(i as f64),
            (Some(DefaultValue::Int(i)), _) => Value::from(i),
            (Some(DefaultValue::Str(s)), _) => Value::from(s),
            (None, FieldType::Select(opts)) => match opts.first() {
                Some(o) => Value::from(*o),
                None => Value::Null,
            },
            (None, FieldType::Int | FieldType::Check) => Value::from(0),
            (None, FieldType::Float) => Value::from(0.0),
            (None, _) => Value::Null,
        }
    }
}

/// Python's `cstr` of a JSON value, as Frappe would store it in a VARCHAR.
pub fn cstr(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "1".into(),
        Value::Bool(false) => "0".into(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    let v: f64 = t.parse().ok()?;
    if v.is_finite() { Some(v) } else { None }
}

/// Coerces a value sent by a client to what Frappe would store for `fd`.
///
/// Frappe casts numbers with `cint`/`flt`, which turn garbage into 0; the
/// simulator deliberately rejects garbage (non-numeric strings, arrays,
/// objects) with a ValidationError instead, so a client bug shows up in
/// tests. Everything Frappe would accept and store the same way is accepted.
pub fn coerce(fd: &FieldDef, v: &Value) -> Result<Value, String> {
    let bad = |what: &str| {
        format!(
            "Value for {} ({}) must be {what}, got {}",
            fd.label, fd.name, v
        )
    };
    match fd.ftype {
        FieldType::Int => match v {
            Value::Null => Ok(Value::from(0)),
            Value::Bool(b) => Ok(Value::from(i64::from(*b))),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Ok(Value::from(i)),
                None => Ok(Value::from(n.as_f64().unwrap_or(0.0).trunc() as i64)),
            },
            Value::String(s) if s.trim().is_empty() => Ok(Value::from(0)),
            Value::String(s) => match s.trim().parse::<i64>() {
                Ok(i) => Ok(Value::from(i)),
                Err(_) => match parse_number(s) {
                    Some(x) => Ok(Value::from(x.trunc() as i64)),
                    None => Err(bad("an integer")),
                },
            },
            _ => Err(bad("an integer")),
        },
        FieldType::Check => {
            let as_int = match v {
                Value::Null => Some(0),
                Value::Bool(b) => Some(i64::from(*b)),
                Value::Number(n) => n.as_f64().and_then(|x| {
                    if x == 0.0 {
                        Some(0)
                    } else if x == 1.0 {
                        Some(1)
                    } else {
                        None
                    }
                }),
                Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "" | "0" | "false" => Some(0),
                    "1" | "true" => Some(1),
                    _ => None,
                },
                _ => None,
            };
            as_int.map(Value::from).ok_or_else(|| bad("0 or 1"))
        }
        FieldType::Float => {
            let x = match v {
                Value::Null => Some(0.0),
                Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
                Value::Number(n) => n.as_f64(),
                Value::String(s) if s.trim().is_empty() => Some(0.0),
                Value::String(s) => parse_number(s),
                _ => None,
            };
            match x.and_then(Number::from_f64) {
                Some(n) => Ok(Value::Number(n)),
                None => Err(bad("a number")),
            }
        }
        FieldType::Datetime => match v {
            Value::Null => Ok(Value::Null),
            Value::String(s) if s.trim().is_empty() => Ok(Value::Null),
            Value::String(s) => match normalize_datetime(s, false) {
                // Stored as DATETIME(6); read back as Python prints it.
                Some(n) => Ok(Value::String(
                    n.strip_suffix(".000000").map(str::to_string).unwrap_or(n),
                )),
                None => Err(bad("a datetime (YYYY-MM-DD HH:MM:SS)")),
            },
            _ => Err(bad("a datetime (YYYY-MM-DD HH:MM:SS)")),
        },
        FieldType::Data | FieldType::Link(_) | FieldType::Password | FieldType::Select(_) => {
            let s = match v {
                Value::Null => return Ok(Value::Null),
                Value::Array(_) | Value::Object(_) => return Err(bad("a string")),
                other => cstr(other),
            };
            Ok(Value::String(s))
        }
    }
}

/// Frappe's `_validate_selects`: a non-empty Select value must be one of
/// the options (case-sensitive).
pub fn select_error(fd: &FieldDef, v: &Value) -> Option<String> {
    let FieldType::Select(opts) = fd.ftype else {
        return None;
    };
    let s = v.as_str()?;
    if s.is_empty() || opts.contains(&s) {
        return None;
    }
    let options = opts.join("\", \"");
    Some(format!(
        "{} cannot be \"{s}\". It should be one of \"{options}\"",
        fd.label
    ))
}

/// Frappe's "dummy password": a non-empty string of asterisks only.
pub fn is_dummy_password(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn se() -> &'static DocType {
        get("Service Equipment").expect("Service Equipment is simulated")
    }

    #[test]
    fn registry() {
        assert_eq!(
            names(),
            vec!["Customer", "Service Location", "Service Equipment"]
        );
        assert!(get("service equipment").is_none());
        assert!(get("Item").is_none());
        let c = se().column("custom_sip_line").expect("column");
        assert_eq!(c.kind, ColKind::Numeric);
        assert_eq!(
            se().column("modified").map(|c| c.kind),
            Some(ColKind::Datetime)
        );
        assert_eq!(se().column("_assign").map(|c| c.kind), Some(ColKind::Text));
        assert!(se().column("nope").is_none());
        assert_eq!(se().wildcard_columns().len(), 7 + se().fields.len());
        assert_eq!(se().password_fields().count(), 3);
        let inc = get("Customer").expect("Customer").incoming_links();
        assert_eq!(inc.len(), 2);
        assert_eq!(se().slug(), "service-equipment");
    }

    #[test]
    fn defaults() {
        let dt = se();
        let d = |n: &str| dt.field(n).expect("field").default_value();
        assert_eq!(d("custom_wifi_enabled"), json!(1));
        assert_eq!(d("custom_sip_line"), json!(1));
        assert_eq!(d("status"), json!("En inventaire"));
        assert_eq!(d("equipment_type"), json!("ONT"));
        assert_eq!(d("serial_number"), Value::Null);
        let c = get("Customer").expect("Customer");
        assert_eq!(
            c.field("customer_type").map(|f| f.default_value()),
            Some(json!("Company"))
        );
        let l = get("Service Location").expect("loc");
        assert_eq!(
            l.field("latitude").map(|f| f.default_value()),
            Some(json!(0.0))
        );
    }

    #[test]
    fn coerce_int() {
        let fd = se().field("custom_sip_line").expect("field");
        assert_eq!(coerce(fd, &json!(2)), Ok(json!(2)));
        assert_eq!(coerce(fd, &json!("3")), Ok(json!(3)));
        assert_eq!(coerce(fd, &json!(" 4 ")), Ok(json!(4)));
        assert_eq!(coerce(fd, &json!(2.9)), Ok(json!(2)));
        assert_eq!(coerce(fd, &json!("2.9")), Ok(json!(2)));
        assert_eq!(coerce(fd, &json!(true)), Ok(json!(1)));
        assert_eq!(coerce(fd, &Value::Null), Ok(json!(0)));
        assert_eq!(coerce(fd, &json!("")), Ok(json!(0)));
        assert!(coerce(fd, &json!("abc")).is_err());
        assert!(coerce(fd, &json!([1])).is_err());
        assert!(coerce(fd, &json!({"a": 1})).is_err());
    }

    #[test]
    fn coerce_check_and_float() {
        let fd = se().field("custom_wifi_enabled").expect("field");
        assert_eq!(coerce(fd, &json!(true)), Ok(json!(1)));
        assert_eq!(coerce(fd, &json!(false)), Ok(json!(0)));
        assert_eq!(coerce(fd, &json!("1")), Ok(json!(1)));
        assert_eq!(coerce(fd, &json!(0)), Ok(json!(0)));
        assert!(coerce(fd, &json!(2)).is_err());
        assert!(coerce(fd, &json!("yes")).is_err());
        let lat = get("Service Location")
            .and_then(|d| d.field("latitude"))
            .expect("field");
        assert_eq!(coerce(lat, &json!("45.5")), Ok(json!(45.5)));
        assert_eq!(coerce(lat, &json!(-73)), Ok(json!(-73.0)));
        assert!(coerce(lat, &json!("north")).is_err());
        assert!(coerce(lat, &json!("inf")).is_err());
    }

    #[test]
    fn coerce_strings_and_selects() {
        let ssid = se().field("custom_wifi_ssid").expect("field");
        assert_eq!(
            coerce(ssid, &json!("Gigafibre-Roy")),
            Ok(json!("Gigafibre-Roy"))
        );
        assert_eq!(coerce(ssid, &json!(1234)), Ok(json!("1234")));
        assert_eq!(coerce(ssid, &Value::Null), Ok(Value::Null));
        assert!(coerce(ssid, &json!(["x"])).is_err());
        let et = se().field("equipment_type").expect("field");
        assert_eq!(coerce(et, &json!("Routeur")), Ok(json!("Routeur")));
        assert_eq!(select_error(et, &json!("Routeur")), None);
        assert_eq!(select_error(et, &json!("")), None);
        assert_eq!(select_error(et, &Value::Null), None);
        assert_eq!(
            select_error(et, &json!("Modem")).as_deref(),
            Some(
                "Equipment Type cannot be \"Modem\". It should be one of \"ONT\", \"Routeur\", \"Décodeur TV\""
            )
        );
        // Select options are case-sensitive in Frappe.
        assert!(select_error(et, &json!("ont")).is_some());
        assert_eq!(select_error(ssid, &json!("anything")), None);
    }

    #[test]
    fn coerce_datetime() {
        let fd = se().field("custom_provisioned_at").expect("field");
        assert_eq!(fd.ftype, FieldType::Datetime);
        assert_eq!(
            se().column("custom_provisioned_at").map(|c| c.kind),
            Some(ColKind::Datetime)
        );
        assert_eq!(fd.default_value(), Value::Null);
        assert_eq!(
            coerce(fd, &json!("2025-09-08 08:00:43")),
            Ok(json!("2025-09-08 08:00:43"))
        );
        assert_eq!(
            coerce(fd, &json!("2025-09-08 08:00:43.25")),
            Ok(json!("2025-09-08 08:00:43.250000"))
        );
        assert_eq!(
            coerce(fd, &json!("2025-09-08")),
            Ok(json!("2025-09-08 00:00:00"))
        );
        assert_eq!(coerce(fd, &json!("")), Ok(Value::Null));
        assert_eq!(coerce(fd, &Value::Null), Ok(Value::Null));
        assert!(coerce(fd, &json!("yesterday")).is_err());
        assert!(coerce(fd, &json!("2025-13-01 00:00:00")).is_err());
        assert!(coerce(fd, &json!(20250908)).is_err());
    }

    #[test]
    fn dummy_passwords() {
        assert!(is_dummy_password("****"));
        assert!(!is_dummy_password(""));
        assert!(!is_dummy_password("**a*"));
    }
}
