//! The documents: in memory, with Frappe's save pipeline (defaults,
//! validation, naming, passwords, timestamps), and crash-safe persistence.
//!
//! What happens on insert, in Frappe's order (`frappe/model/document.py`
//! `insert`, `frappe/model/naming.py`, `frappe/model/base_document.py`):
//! defaults (static default, else first Select option, else 0 for numbers),
//! link validation, naming, mandatory fields, Select options, VARCHAR
//! length (140), duplicate name (409), then passwords are moved to the
//! secret store and the column keeps `*` × length.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::doctypes::{
    self, DOCTYPES, DocType, FieldType, MAX_VARCHAR, Naming, STANDARD, coerce, cstr,
    is_dummy_password, select_error, standard_label,
};
use crate::error::{FrappeError, Msg};
use crate::query::{Doc, cint, fold, same_text, truthy};
use crate::util::{J, format_frappe_datetime, normalize_datetime, unix_micros_now};

/// Who is writing: an API client, or the fixture loader (which may set
/// standard fields and skips link checks until everything is loaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Api,
    Fixture,
}

/// The result of a successful insert or update.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub doc: Doc,
    /// Messages Frappe would msgprint on success (e.g. a renamed customer).
    pub messages: Vec<Msg>,
    /// Keys of the request that are not fields of the DocType (Frappe
    /// ignores them silently).
    pub ignored: Vec<String>,
}

type Secrets = BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>;

/// On-disk state (`erpnext-sim-state.json`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    pub docs: BTreeMap<String, Vec<Doc>>,
    #[serde(default)]
    pub secrets: Secrets,
    #[serde(default)]
    pub series: BTreeMap<String, u64>,
}

const SNAPSHOT_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq)]
pub struct Store {
    tables: BTreeMap<String, Vec<Doc>>,
    /// doctype → name → fieldname → secret (Frappe's `__Auth` table).
    secrets: Secrets,
    /// Naming series counters (Frappe's `tabSeries`).
    series: BTreeMap<String, u64>,
    last_ts: i64,
}

impl Default for Store {
    fn default() -> Store {
        Store::new()
    }
}

fn str_of<'a>(doc: &'a Doc, key: &str) -> &'a str {
    doc.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Frappe's `validate_name`.
fn validate_name(dt: &DocType, raw: &str) -> Result<String, FrappeError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(FrappeError::validation(format!(
            "No Name Specified for {}",
            dt.name
        )));
    }
    if name.contains(['<', '>']) {
        return Err(FrappeError::validation_sub(
            "NameError",
            "Name cannot contain special characters like '<', '>'",
        ));
    }
    if name.chars().count() > MAX_VARCHAR {
        return Err(FrappeError::validation_sub(
            "CharacterLengthExceededError",
            format!(
                "{}: name will get truncated, as max characters allowed is {MAX_VARCHAR}",
                dt.name
            ),
        ));
    }
    Ok(name.to_string())
}

/// The document as `GET /api/resource/{DocType}/{name}` shows it: Frappe's
/// `as_dict(no_nulls=True)`: standard fields, then the DocType's fields,
/// nulls left out, and `doctype` last.
pub fn as_dict(dt: &DocType, doc: &Doc) -> J {
    let mut kv: Vec<(String, J)> = Vec::new();
    for (n, _) in STANDARD.iter() {
        if let Some(v) = doc.get(*n).filter(|v| !v.is_null()) {
            kv.push((n.to_string(), J::V(v.clone())));
        }
    }
    for fd in dt.fields {
        match doc.get(fd.name).filter(|v| !v.is_null()) {
            Some(v) => kv.push((fd.name.to_string(), J::V(v.clone()))),
            None if fd.is_numeric() => kv.push((fd.name.to_string(), J::V(fd.default_value()))),
            None => {}
        }
    }
    kv.push(("doctype".to_string(), J::str(dt.name)));
    J::O(kv)
}

impl Store {
    pub fn new() -> Store {
        Store {
            tables: DOCTYPES
                .iter()
                .map(|d| (d.name.to_string(), Vec::new()))
                .collect(),
            secrets: BTreeMap::new(),
            series: BTreeMap::new(),
            last_ts: 0,
        }
    }

    pub fn docs(&self, dt: &DocType) -> &[Doc] {
        self.tables.get(dt.name).map(Vec::as_slice).unwrap_or(&[])
    }

    fn table_mut(&mut self, dt: &DocType) -> &mut Vec<Doc> {
        self.tables.entry(dt.name.to_string()).or_default()
    }

    pub fn len(&self, dt: &DocType) -> usize {
        self.docs(dt).len()
    }

    /// Finds a document by name: exact match first, else by collation
    /// (MariaDB primary keys are case/accent-insensitive).
    fn find_idx(&self, dt: &DocType, name: &str) -> Option<usize> {
        let docs = self.docs(dt);
        docs.iter()
            .position(|d| str_of(d, "name") == name)
            .or_else(|| docs.iter().position(|d| same_text(str_of(d, "name"), name)))
    }

    pub fn find(&self, dt: &DocType, name: &str) -> Option<&Doc> {
        self.find_idx(dt, name).and_then(|i| self.docs(dt).get(i))
    }

    /// A Frappe timestamp for "now", strictly increasing within the store.
    fn now(&mut self) -> String {
        let t = unix_micros_now().max(self.last_ts + 1);
        self.last_ts = t;
        format_frappe_datetime(t)
    }

    fn secret(&self, dt: &DocType, name: &str, field: &str) -> Option<&String> {
        self.secrets.get(dt.name)?.get(name)?.get(field)
    }

    fn set_secret(&mut self, dt: &DocType, name: &str, field: &str, secret: Option<String>) {
        let per_doc = self
            .secrets
            .entry(dt.name.to_string())
            .or_default()
            .entry(name.to_string())
            .or_default();
        match secret {
            Some(s) => {
                per_doc.insert(field.to_string(), s);
            }
            None => {
                per_doc.remove(field);
            }
        }
        let empty_doc = per_doc.is_empty();
        if empty_doc {
            if let Some(t) = self.secrets.get_mut(dt.name) {
                t.remove(name);
                if t.is_empty() {
                    self.secrets.remove(dt.name);
                }
            }
        }
    }

    /// Frappe's `_save_passwords`: a real value goes to the secret store
    /// and the column becomes asterisks; a dummy (all `*`) keeps the stored
    /// secret; an empty value removes it.
    fn save_passwords(&mut self, dt: &DocType, name: &str, doc: &mut Doc) {
        for fd in dt.password_fields() {
            let v = doc.get(fd.name).map(cstr).unwrap_or_default();
            if v.is_empty() {
                self.set_secret(dt, name, fd.name, None);
            } else if !is_dummy_password(&v) {
                let masked = "*".repeat(v.chars().count());
                self.set_secret(dt, name, fd.name, Some(v));
                doc.insert(fd.name.to_string(), Value::String(masked));
            }
        }
    }

    /// `_validate_links`: every Link to a simulated DocType must exist; the
    /// value is normalised to the stored name (the DB lookup is
    /// case-insensitive).
    fn validate_links(&self, dt: &DocType, doc: &mut Doc) -> Result<(), FrappeError> {
        let mut invalid = Vec::new();
        for fd in dt.fields {
            let FieldType::Link(target) = fd.ftype else {
                continue;
            };
            let Some(target_dt) = doctypes::get(target) else {
                continue;
            };
            let value = str_of(doc, fd.name).to_string();
            if value.is_empty() {
                continue;
            }
            match self.find(target_dt, &value) {
                Some(found) => {
                    let canonical = str_of(found, "name").to_string();
                    doc.insert(fd.name.to_string(), Value::String(canonical));
                }
                None => invalid.push(format!("{}: {value}", fd.label)),
            }
        }
        if invalid.is_empty() {
            Ok(())
        } else {
            Err(FrappeError::validation_sub(
                "LinkValidationError",
                format!("Could not find {}", invalid.join(", ")),
            ))
        }
    }

    /// Mandatory fields, Select options and VARCHAR lengths.
    fn validate_values(dt: &DocType, doc: &Doc, name: &str) -> Result<(), FrappeError> {
        let missing: Vec<(&str, &str)> = dt
            .fields
            .iter()
            .filter(|fd| fd.reqd)
            .filter(|fd| {
                doc.get(fd.name)
                    .is_none_or(|v| v.is_null() || cstr(v).trim().is_empty())
            })
            .map(|fd| (fd.name, fd.label))
            .collect();
        if !missing.is_empty() {
            return Err(FrappeError::mandatory(dt.name, name, &missing));
        }
        for fd in dt.fields {
            if let Some(msg) = doc.get(fd.name).and_then(|v| select_error(fd, v)) {
                return Err(FrappeError::validation(msg));
            }
        }
        for fd in dt.fields {
            if fd.is_numeric() {
                continue;
            }
            let v = doc.get(fd.name).map(cstr).unwrap_or_default();
            if v.chars().count() > MAX_VARCHAR {
                let mut e = FrappeError::validation_sub(
                    "CharacterLengthExceededError",
                    format!(
                        "{} {name}: '{}' ({v}) will get truncated, as max characters allowed is {MAX_VARCHAR}",
                        dt.name, fd.label
                    ),
                );
                if let Some(m) = e.messages.first_mut() {
                    m.title = "Value too big".into();
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Sets a DocField from a request value, or reports the key as ignored.
    fn set_field(dt: &DocType, doc: &mut Doc, key: &str, v: &Value) -> Result<bool, FrappeError> {
        let Some(fd) = dt.field(key) else {
            return Ok(false);
        };
        let value = coerce(fd, v).map_err(FrappeError::validation)?;
        if value.is_null() {
            doc.remove(fd.name);
        } else {
            doc.insert(fd.name.to_string(), value);
        }
        Ok(true)
    }

    /// The next name for a DocType without an explicit one.
    fn autoname(&mut self, dt: &DocType, doc: &Doc) -> (String, Vec<Msg>) {
        match dt.naming {
            Naming::FromField(field) => {
                let base = doc
                    .get(field)
                    .map(cstr)
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                if self.find(dt, &base).is_none() {
                    return (base, Vec::new());
                }
                // ERPNext `Customer.get_customer_name`: "{name} - {n}".
                let pattern = fold(&format!("{base} - "));
                let max = self
                    .docs(dt)
                    .iter()
                    .map(|d| str_of(d, "name"))
                    .filter(|n| fold(n).contains(&pattern))
                    .map(|n| {
                        n.rsplit(' ')
                            .next()
                            .and_then(|t| t.parse::<u64>().ok())
                            .unwrap_or(0)
                    })
                    .max()
                    .unwrap_or(0);
                let mut n = max + 1;
                let mut candidate = format!("{base} - {n}");
                while self.find(dt, &candidate).is_some() {
                    n += 1;
                    candidate = format!("{base} - {n}");
                }
                let note = Msg::plain(format!(
                    "Changed customer name to '{candidate}' as '{base}' already exists."
                ))
                .titled("Note")
                .indicator("yellow");
                (candidate, vec![note])
            }
            Naming::Series(prefix, digits) => {
                let existing = self
                    .docs(dt)
                    .iter()
                    .filter_map(|d| {
                        let n = str_of(d, "name");
                        let head = n.get(..prefix.len())?;
                        if !head.eq_ignore_ascii_case(prefix) {
                            return None;
                        }
                        let tail = &n[prefix.len()..];
                        if tail.is_empty() || !tail.bytes().all(|b| b.is_ascii_digit()) {
                            return None;
                        }
                        tail.parse::<u64>().ok()
                    })
                    .max()
                    .unwrap_or(0);
                let current = self.series.get(prefix).copied().unwrap_or(0).max(existing);
                let mut n = current + 1;
                let mut candidate = format!("{prefix}{n:0digits$}");
                while self.find(dt, &candidate).is_some() {
                    n += 1;
                    candidate = format!("{prefix}{n:0digits$}");
                }
                self.series.insert(prefix.to_string(), n);
                (candidate, Vec::new())
            }
        }
    }

    /// `POST /api/resource/{DocType}`: Frappe's `new_doc(**data).insert()`.
    pub fn insert(
        &mut self,
        dt: &'static DocType,
        mut data: Map<String, Value>,
        user: &str,
        origin: Origin,
    ) -> Result<Saved, FrappeError> {
        data.remove("doctype");
        let explicit_name = data
            .remove("name")
            .map(|v| cstr(&v))
            .filter(|n| !n.is_empty());

        // Defaults, then the request's values.
        let mut doc = Doc::new();
        for fd in dt.fields {
            let v = fd.default_value();
            if !v.is_null() {
                doc.insert(fd.name.to_string(), v);
            }
        }
        let mut ignored = Vec::new();
        let mut standard: Vec<(String, Value)> = Vec::new();
        for (k, v) in &data {
            if Store::set_field(dt, &mut doc, k, v)? {
                continue;
            }
            if STANDARD.iter().any(|(n, _)| n == k) {
                standard.push((k.clone(), v.clone()));
            } else {
                ignored.push(k.clone());
            }
        }
        if origin == Origin::Fixture && !ignored.is_empty() {
            return Err(FrappeError::validation(format!(
                "unknown field(s) for {}: {}",
                dt.name,
                ignored.join(", ")
            )));
        }

        if origin == Origin::Api {
            self.validate_links(dt, &mut doc)?;
        }
        let explicit_name = match explicit_name {
            Some(n) => Some(validate_name(dt, &n)?),
            None => None,
        };
        let tentative = explicit_name
            .clone()
            .unwrap_or_else(|| format!("new-{}-1", dt.slug()));
        Store::validate_values(dt, &doc, &tentative)?;

        let (name, messages) = match explicit_name {
            Some(n) => {
                if let Some(existing) = self.find(dt, &n) {
                    return Err(FrappeError::duplicate(dt.name, str_of(existing, "name")));
                }
                (n, Vec::new())
            }
            None => {
                let (n, msgs) = self.autoname(dt, &doc);
                (validate_name(dt, &n)?, msgs)
            }
        };

        let now = self.now();
        doc.insert("name".into(), Value::String(name.clone()));
        doc.insert("owner".into(), Value::String(user.to_string()));
        doc.insert("creation".into(), Value::String(now.clone()));
        doc.insert("modified".into(), Value::String(now));
        doc.insert("modified_by".into(), Value::String(user.to_string()));
        doc.insert("docstatus".into(), Value::from(0));
        doc.insert("idx".into(), Value::from(0));
        if origin == Origin::Fixture {
            for (k, v) in standard {
                match k.as_str() {
                    "creation" | "modified" => {
                        let s = cstr(&v);
                        if normalize_datetime(&s, false).is_none() {
                            return Err(FrappeError::validation(format!(
                                "{k} must be a datetime like 2024-05-01 12:00:00.123456, got {v}"
                            )));
                        }
                        doc.insert(k, Value::String(s));
                    }
                    "owner" | "modified_by" => {
                        doc.insert(k, Value::String(cstr(&v)));
                    }
                    _ => {
                        doc.insert(k, Value::from(cint(&v)));
                    }
                }
            }
        }
        self.save_passwords(dt, &name, &mut doc);
        self.table_mut(dt).push(doc.clone());
        Ok(Saved {
            doc,
            messages,
            ignored,
        })
    }

    /// `PUT /api/resource/{DocType}/{name}`: Frappe's `doc.update(data)`
    /// then `doc.save()`.
    pub fn update(
        &mut self,
        dt: &'static DocType,
        name: &str,
        mut data: Map<String, Value>,
        user: &str,
    ) -> Result<Saved, FrappeError> {
        let idx = self
            .find_idx(dt, name)
            .ok_or_else(|| FrappeError::not_found(dt.name, name))?;
        let mut doc = self.docs(dt)[idx].clone();
        let stored_name = str_of(&doc, "name").to_string();
        data.remove("flags");
        data.remove("doctype");

        if let Some(v) = data.remove("name") {
            let n = cstr(&v);
            if !n.trim().is_empty() && !same_text(&n, &stored_name) {
                if self.find(dt, &n).is_none() {
                    return Err(FrappeError::not_found(dt.name, n.trim()));
                }
                return Err(FrappeError::validation(format!(
                    "Changing the name of {} {stored_name} with PUT is not supported (erpnext-sim)",
                    dt.name
                )));
            }
        }
        // check_if_latest: a `modified` in the request must be the stored one.
        if let Some(v) = data.remove("modified") {
            let stored = str_of(&doc, "modified").to_string();
            if cstr(&v) != stored {
                let now = self.now();
                return Err(FrappeError::validation_sub(
                    "TimestampMismatchError",
                    format!(
                        "Error: Document has been modified after you have opened it ({stored}, {now}). Please refresh to get the latest document."
                    ),
                ));
            }
        }
        for key in ["creation", "owner"] {
            if let Some(v) = data.remove(key) {
                if cstr(&v) != str_of(&doc, key) {
                    return Err(FrappeError::validation_sub(
                        "CannotChangeConstantError",
                        format!("Value cannot be changed for {}", standard_label(key)),
                    ));
                }
            }
        }
        if let Some(v) = data.remove("docstatus") {
            let current = doc.get("docstatus").map(cint).unwrap_or(0);
            let wanted = cint(&v);
            if wanted != current {
                return Err(FrappeError::validation_sub(
                    "DocstatusTransitionError",
                    format!("Cannot change docstatus from {current} to {wanted}"),
                ));
            }
        }
        data.remove("modified_by");
        data.remove("idx");

        let mut ignored = Vec::new();
        for (k, v) in &data {
            if !Store::set_field(dt, &mut doc, k, v)? {
                ignored.push(k.clone());
            }
        }
        self.validate_links(dt, &mut doc)?;
        Store::validate_values(dt, &doc, &stored_name)?;

        self.save_passwords(dt, &stored_name, &mut doc);
        let now = self.now();
        doc.insert("modified".into(), Value::String(now));
        doc.insert("modified_by".into(), Value::String(user.to_string()));
        self.table_mut(dt)[idx] = doc.clone();
        Ok(Saved {
            doc,
            messages: Vec::new(),
            ignored,
        })
    }

    /// `DELETE /api/resource/{DocType}/{name}`: refused while other
    /// documents link to it (`check_if_doc_is_linked`).
    pub fn delete(&mut self, dt: &'static DocType, name: &str) -> Result<String, FrappeError> {
        let idx = self
            .find_idx(dt, name)
            .ok_or_else(|| FrappeError::not_found(dt.name, name))?;
        let stored = str_of(&self.docs(dt)[idx], "name").to_string();
        for (ldt, lf) in dt.incoming_links() {
            if let Some(linked) = self
                .docs(ldt)
                .iter()
                .find(|d| same_text(str_of(d, lf.name), &stored))
            {
                let lname = str_of(linked, "name");
                return Err(FrappeError::validation_sub(
                    "LinkExistsError",
                    format!(
                        "Cannot delete or cancel because {} <a href=\"/app/{}/{stored}\">{stored}</a> is linked with {} <a href=\"/app/{}/{lname}\">{lname}</a>",
                        dt.name,
                        dt.slug(),
                        ldt.name,
                        ldt.slug()
                    ),
                ));
            }
        }
        self.table_mut(dt).remove(idx);
        if let Some(t) = self.secrets.get_mut(dt.name) {
            t.remove(&stored);
            if t.is_empty() {
                self.secrets.remove(dt.name);
            }
        }
        Ok(stored)
    }

    /// `frappe.client.get_password` → `Document.get_password(fieldname)`:
    /// a non-dummy column value is returned as is, else the stored secret,
    /// else 401 "Password not found".
    pub fn get_password(
        &self,
        dt: &DocType,
        name: &str,
        field: &str,
    ) -> Result<Value, FrappeError> {
        let doc = self
            .find(dt, name)
            .ok_or_else(|| FrappeError::not_found(dt.name, name))?;
        let stored = str_of(doc, "name");
        if let Some(v) = doc.get(field) {
            let dummy = v.as_str().is_some_and(is_dummy_password);
            if truthy(v) && !dummy {
                return Ok(v.clone());
            }
        }
        match self.secret(dt, stored, field) {
            Some(s) => Ok(Value::String(s.clone())),
            None => Err(FrappeError::password_not_found(dt.name, stored, field)),
        }
    }

    /// Checks every Link between simulated DocTypes resolves (after a
    /// fixture load).
    pub fn check_all_links(&self) -> Result<(), String> {
        let mut broken = Vec::new();
        for dt in DOCTYPES.iter() {
            for d in self.docs(dt) {
                for fd in dt.fields {
                    let FieldType::Link(target) = fd.ftype else {
                        continue;
                    };
                    let Some(tdt) = doctypes::get(target) else {
                        continue;
                    };
                    let v = str_of(d, fd.name);
                    if !v.is_empty() && self.find(tdt, v).is_none() {
                        broken.push(format!(
                            "{} {}: {} '{v}' does not exist",
                            dt.name,
                            str_of(d, "name"),
                            fd.name
                        ));
                    }
                }
            }
        }
        if broken.is_empty() {
            Ok(())
        } else {
            Err(format!("broken links: {}", broken.join("; ")))
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            format: SNAPSHOT_FORMAT,
            docs: self.tables.clone(),
            secrets: self.secrets.clone(),
            series: self.series.clone(),
        }
    }

    pub fn from_snapshot(s: Snapshot) -> Result<Store, String> {
        if s.format != SNAPSHOT_FORMAT {
            return Err(format!(
                "unsupported state format {} (expected {SNAPSHOT_FORMAT})",
                s.format
            ));
        }
        let mut store = Store::new();
        for (dt_name, docs) in s.docs {
            let dt =
                doctypes::get(&dt_name).ok_or_else(|| format!("unknown DocType '{dt_name}'"))?;
            for (i, d) in docs.iter().enumerate() {
                if str_of(d, "name").is_empty() {
                    return Err(format!("{dt_name}[{i}] has no name"));
                }
            }
            *store.table_mut(dt) = docs;
        }
        store.secrets = s.secrets;
        store.series = s.series;
        Ok(store)
    }

    /// Loads a fixture: `{"Customer": [{…}], "Service Location": […],
    /// "Service Equipment": […]}`. Documents go through the same pipeline
    /// as API inserts (defaults, types, Select options, naming, password
    /// masking); they may also carry `owner`, `creation`, `modified`,
    /// `modified_by`. Unknown DocTypes or fields and broken links are
    /// errors.
    pub fn load_fixture(text: &str) -> Result<Store, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let Value::Object(obj) = v else {
            return Err("the fixture must be a JSON object keyed by DocType name".into());
        };
        for k in obj.keys() {
            if doctypes::get(k).is_none() {
                return Err(format!(
                    "unknown DocType '{k}' (simulated: {})",
                    doctypes::names().join(", ")
                ));
            }
        }
        let mut store = Store::new();
        for dt in DOCTYPES.iter() {
            let Some(list) = obj.get(dt.name) else {
                continue;
            };
            let Value::Array(items) = list else {
                return Err(format!("'{}' must be a list of documents", dt.name));
            };
            for (i, item) in items.iter().enumerate() {
                let Value::Object(map) = item else {
                    return Err(format!("{}[{i}] is not a JSON object", dt.name));
                };
                let hint = map.get("name").map(cstr).unwrap_or_default();
                store
                    .insert(dt, map.clone(), "Administrator", Origin::Fixture)
                    .map_err(|e| format!("{}[{i}] {hint}: {}", dt.name, e.summary()))?;
            }
        }
        store.check_all_links()?;
        Ok(store)
    }
}

/// Writes the state atomically: temp file, fsync, rename, fsync directory.
#[derive(Debug, Clone)]
pub struct Persister {
    dir: PathBuf,
}

pub const STATE_FILE: &str = "erpnext-sim-state.json";

impl Persister {
    pub fn new(dir: &Path) -> io::Result<Persister> {
        fs::create_dir_all(dir)?;
        Ok(Persister {
            dir: dir.to_path_buf(),
        })
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// The saved state, if there is one.
    pub fn load(&self) -> Result<Option<Store>, String> {
        let path = self.state_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let snap: Snapshot = serde_json::from_str(&text)
            .map_err(|e| format!("{}: invalid state file: {e}", path.display()))?;
        Store::from_snapshot(snap)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn save(&self, store: &Store) -> io::Result<()> {
        let data = serde_json::to_vec_pretty(&store.snapshot()).map_err(io::Error::other)?;
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&data)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.state_path())?;
        // Make the rename durable (best effort where directories can't be opened).
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dt(name: &str) -> &'static DocType {
        doctypes::get(name).expect("doctype")
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn seeded() -> Store {
        let mut s = Store::new();
        s.insert(
            dt("Customer"),
            obj(json!({"customer_name": "Jean Tremblay", "customer_type": "Individual"})),
            "Administrator",
            Origin::Api,
        )
        .expect("customer");
        s
    }

    #[test]
    fn insert_applies_defaults_and_masks_passwords() {
        let mut s = seeded();
        let saved = s
            .insert(
                dt("Service Equipment"),
                obj(json!({
                    "customer": "jean tremblay",
                    "equipment_type": "Routeur",
                    "mac_address": "aa-bb-cc-dd-ee-ff",
                    "custom_wifi_password": "Secret123456",
                    "unknown_field": 1
                })),
                "acs@gigafibre.ca",
                Origin::Api,
            )
            .expect("insert");
        let d = &saved.doc;
        assert_eq!(d["name"], "EQ-00001");
        // the link is normalised to the stored name
        assert_eq!(d["customer"], "Jean Tremblay");
        assert_eq!(d["status"], "En inventaire");
        assert_eq!(d["custom_wifi_enabled"], 1);
        assert_eq!(d["custom_sip_line"], 1);
        assert_eq!(d["custom_wifi_password"], "************");
        assert_eq!(d["owner"], "acs@gigafibre.ca");
        assert_eq!(d["docstatus"], 0);
        assert_eq!(saved.ignored, vec!["unknown_field".to_string()]);
        assert_eq!(
            s.get_password(dt("Service Equipment"), "EQ-00001", "custom_wifi_password"),
            Ok(json!("Secret123456"))
        );
        let err = s
            .get_password(dt("Service Equipment"), "EQ-00001", "custom_sip_password")
            .expect_err("no sip password");
        assert_eq!(err.status, 401);
        assert_eq!(
            err.messages[0].message,
            "Password not found for Service Equipment EQ-00001 custom_sip_password"
        );
        // a plain field's value is returned by get_password, like Frappe
        assert_eq!(
            s.get_password(dt("Service Equipment"), "eq-00001", "mac_address"),
            Ok(json!("aa-bb-cc-dd-ee-ff"))
        );
        let e = s
            .get_password(dt("Service Equipment"), "EQ-404", "custom_wifi_password")
            .expect_err("missing doc");
        assert_eq!(e.status, 404);
    }

    #[test]
    fn as_dict_omits_nulls_and_ends_with_doctype() {
        let mut s = seeded();
        let saved = s
            .insert(
                dt("Service Equipment"),
                obj(json!({"equipment_type": "ONT", "serial_number": "RCMG1A2B3C4D"})),
                "Administrator",
                Origin::Api,
            )
            .expect("insert");
        let text = as_dict(dt("Service Equipment"), &saved.doc).encode();
        assert!(text.starts_with(r#"{"name":"EQ-00001","owner":"Administrator","creation":""#));
        assert!(text.ends_with(r#""doctype":"Service Equipment"}"#));
        assert!(!text.contains("null"));
        assert!(!text.contains("mac_address"));
        assert!(text.contains(r#""custom_sip_line":1"#));
    }

    #[test]
    fn naming_series_and_explicit_names() {
        let mut s = seeded();
        let se = dt("Service Equipment");
        let mk = |s: &mut Store, extra: Value| {
            let mut m = obj(json!({"equipment_type": "ONT"}));
            m.extend(obj(extra));
            s.insert(se, m, "Administrator", Origin::Api)
        };
        assert_eq!(mk(&mut s, json!({})).expect("1").doc["name"], "EQ-00001");
        assert_eq!(
            mk(&mut s, json!({"name": "EQ-00007"}))
                .expect("explicit")
                .doc["name"],
            "EQ-00007"
        );
        // the series continues after the highest existing number
        assert_eq!(mk(&mut s, json!({})).expect("next").doc["name"], "EQ-00008");
        // names are trimmed; duplicates are case/accent-insensitive
        let e = mk(&mut s, json!({"name": " eq-00007 "})).expect_err("duplicate");
        assert_eq!(e.status, 409);
        assert_eq!(e.exc_type, "DuplicateEntryError");
        assert_eq!(
            e.messages[0].message,
            "Service Equipment <strong>EQ-00007</strong> already exists"
        );
        let e = mk(&mut s, json!({"name": "a<b"})).expect_err("bad name");
        assert_eq!(e.exc_type, "NameError");
        assert_eq!(
            mk(&mut s, json!({"name": "ONT/RCMG 1"}))
                .expect("slash")
                .doc["name"],
            "ONT/RCMG 1"
        );
    }

    #[test]
    fn customer_naming_from_customer_name() {
        let mut s = seeded();
        let c = dt("Customer");
        let saved = s
            .insert(
                c,
                obj(json!({"customer_name": "JEAN TREMBLAY"})),
                "Administrator",
                Origin::Api,
            )
            .expect("second Jean");
        assert_eq!(saved.doc["name"], "JEAN TREMBLAY - 1");
        assert_eq!(saved.messages[0].title, "Note");
        let saved = s
            .insert(
                c,
                obj(json!({"customer_name": "Jean Tremblay"})),
                "Administrator",
                Origin::Api,
            )
            .expect("third Jean");
        assert_eq!(saved.doc["name"], "Jean Tremblay - 2");
        let e = s
            .insert(
                c,
                obj(json!({"customer_type": "Individual"})),
                "Administrator",
                Origin::Api,
            )
            .expect_err("mandatory");
        assert_eq!(e.status, 417);
        assert_eq!(e.exc_type, "MandatoryError");
    }

    #[test]
    fn validation_errors() {
        let mut s = seeded();
        let se = dt("Service Equipment");
        let ins = |s: &mut Store, v: Value| s.insert(se, obj(v), "Administrator", Origin::Api);
        let e = ins(&mut s, json!({"equipment_type": "Modem"})).expect_err("select");
        assert_eq!((e.status, e.exc_type.as_str()), (417, "ValidationError"));
        let e = ins(
            &mut s,
            json!({"equipment_type": "ONT", "custom_sip_line": "two"}),
        )
        .expect_err("int");
        assert_eq!((e.status, e.exc_type.as_str()), (417, "ValidationError"));
        let e = ins(&mut s, json!({"equipment_type": null})).expect_err("mandatory");
        assert_eq!(e.exc_type, "MandatoryError");
        let e = ins(
            &mut s,
            json!({"equipment_type": "ONT", "customer": "Nobody"}),
        )
        .expect_err("link");
        assert_eq!(e.exc_type, "LinkValidationError");
        assert_eq!(e.messages[0].message, "Could not find Customer: Nobody");
        let e = ins(
            &mut s,
            json!({"equipment_type": "ONT", "model": "x".repeat(141)}),
        )
        .expect_err("length");
        assert_eq!(e.exc_type, "CharacterLengthExceededError");
        assert_eq!(e.messages[0].title, "Value too big");
        assert_eq!(s.len(se), 0);
    }

    #[test]
    fn update_is_partial_and_checks() {
        let mut s = seeded();
        let se = dt("Service Equipment");
        let first = s
            .insert(
                se,
                obj(json!({"equipment_type": "ONT", "serial_number": "RCMG1", "custom_sip_password": "sip-secret"})),
                "Administrator",
                Origin::Api,
            )
            .expect("insert")
            .doc;
        let saved = s
            .update(
                se,
                "eq-00001",
                obj(json!({"custom_cwmp_serial": "RCMG-CWMP", "bogus": 1})),
                "acs",
            )
            .expect("update");
        assert_eq!(saved.doc["serial_number"], "RCMG1");
        assert_eq!(saved.doc["custom_cwmp_serial"], "RCMG-CWMP");
        assert_eq!(saved.doc["modified_by"], "acs");
        assert_ne!(saved.doc["modified"], first["modified"]);
        assert_eq!(saved.doc["creation"], first["creation"]);
        assert_eq!(saved.ignored, vec!["bogus".to_string()]);
        // a dummy password keeps the secret; a new one replaces it; "" clears it
        s.update(
            se,
            "EQ-00001",
            obj(json!({"custom_sip_password": "***"})),
            "acs",
        )
        .expect("dummy");
        assert_eq!(
            s.get_password(se, "EQ-00001", "custom_sip_password"),
            Ok(json!("sip-secret"))
        );
        let d = s
            .update(
                se,
                "EQ-00001",
                obj(json!({"custom_sip_password": "n3w"})),
                "acs",
            )
            .expect("new")
            .doc;
        assert_eq!(d["custom_sip_password"], "***");
        assert_eq!(
            s.get_password(se, "EQ-00001", "custom_sip_password"),
            Ok(json!("n3w"))
        );
        s.update(
            se,
            "EQ-00001",
            obj(json!({"custom_sip_password": ""})),
            "acs",
        )
        .expect("clear");
        assert_eq!(
            s.get_password(se, "EQ-00001", "custom_sip_password")
                .map_err(|e| e.status),
            Err(401)
        );
        // null clears a field
        let d = s
            .update(se, "EQ-00001", obj(json!({"serial_number": null})), "acs")
            .expect("null")
            .doc;
        assert!(!d.contains_key("serial_number"));
        // optimistic locking on `modified`
        let e = s
            .update(
                se,
                "EQ-00001",
                obj(json!({"modified": "2001-01-01 00:00:00", "model": "x"})),
                "acs",
            )
            .expect_err("stale");
        assert_eq!(e.exc_type, "TimestampMismatchError");
        let current = s
            .find(se, "EQ-00001")
            .map(|d| d["modified"].clone())
            .expect("doc");
        s.update(
            se,
            "EQ-00001",
            obj(json!({"modified": current, "model": "HT803G"})),
            "acs",
        )
        .expect("fresh modified is accepted");
        let e = s
            .update(
                se,
                "EQ-00001",
                obj(json!({"creation": "2001-01-01"})),
                "acs",
            )
            .expect_err("set once");
        assert_eq!(e.exc_type, "CannotChangeConstantError");
        let e = s
            .update(
                se,
                "EQ-00001",
                obj(json!({"custom_wifi_enabled": "maybe"})),
                "acs",
            )
            .expect_err("check");
        assert_eq!(e.status, 417);
        let e = s
            .update(se, "EQ-404", obj(json!({})), "acs")
            .expect_err("missing");
        assert_eq!(e.status, 404);
        let e = s
            .update(se, "EQ-00001", obj(json!({"name": "EQ-00999"})), "acs")
            .expect_err("rename");
        assert_eq!(e.status, 404);
        s.update(
            se,
            "EQ-00001",
            obj(json!({"name": "EQ-00001", "doctype": "Service Equipment"})),
            "acs",
        )
        .expect("same name is fine");
    }

    #[test]
    fn delete_respects_links() {
        let mut s = seeded();
        let c = dt("Customer");
        let se = dt("Service Equipment");
        s.insert(
            se,
            obj(json!({"name": "EQ-1", "equipment_type": "ONT", "customer": "Jean Tremblay", "custom_wifi_password": "x"})),
            "Administrator",
            Origin::Api,
        )
        .expect("insert");
        let e = s.delete(c, "Jean Tremblay").expect_err("linked");
        assert_eq!(e.exc_type, "LinkExistsError");
        assert_eq!(s.delete(se, "eq-1"), Ok("EQ-1".to_string()));
        assert!(s.secrets.is_empty());
        assert_eq!(
            s.delete(c, "Jean Tremblay"),
            Ok("Jean Tremblay".to_string())
        );
        assert_eq!(s.delete(c, "Jean Tremblay").map_err(|e| e.status), Err(404));
    }

    #[test]
    fn fixture_loading() {
        let text = r#"{
            "Service Equipment": [
                {"name": "EQ-00010", "equipment_type": "ONT", "customer": "Jean Tremblay",
                 "custom_sip_password": "abc", "modified": "2024-05-01 12:00:00.123456", "owner": "migration"}
            ],
            "Customer": [{"name": "Jean Tremblay", "customer_name": "Jean Tremblay"}]
        }"#;
        let s = Store::load_fixture(text).expect("fixture");
        let se = dt("Service Equipment");
        let d = s.find(se, "EQ-00010").expect("doc");
        assert_eq!(d["modified"], "2024-05-01 12:00:00.123456");
        assert_eq!(d["owner"], "migration");
        assert_eq!(d["custom_sip_password"], "***");
        assert_eq!(
            s.get_password(se, "EQ-00010", "custom_sip_password"),
            Ok(json!("abc"))
        );

        assert!(Store::load_fixture("[]").is_err());
        assert!(Store::load_fixture("{").is_err());
        let e = Store::load_fixture(r#"{"Item": []}"#).expect_err("unknown doctype");
        assert!(e.contains("unknown DocType 'Item'"));
        let e = Store::load_fixture(r#"{"Customer": [{"customer_name": "A", "colour": "blue"}]}"#)
            .expect_err("unknown field");
        assert!(e.contains("colour"));
        let e = Store::load_fixture(
            r#"{"Service Equipment": [{"equipment_type": "ONT", "customer": "Ghost"}]}"#,
        )
        .expect_err("broken link");
        assert!(e.contains("Ghost"));
        let e = Store::load_fixture(r#"{"Service Equipment": [{"equipment_type": "Modem"}]}"#)
            .expect_err("bad select");
        assert!(e.contains("Modem"));
        let e = Store::load_fixture(
            r#"{"Customer": [{"customer_name": "A", "modified": "yesterday"}]}"#,
        )
        .expect_err("bad datetime");
        assert!(e.contains("modified"));
    }

    #[test]
    fn persistence_roundtrip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Persister::new(dir.path()).expect("persister");
        assert_eq!(p.load(), Ok(None));
        let mut s = seeded();
        s.insert(
            dt("Service Equipment"),
            obj(json!({"equipment_type": "ONT", "custom_wifi_password": "pw"})),
            "Administrator",
            Origin::Api,
        )
        .expect("insert");
        p.save(&s).expect("save");
        let mut loaded = p.load().expect("load").expect("state exists");
        assert_eq!(loaded.tables, s.tables);
        assert_eq!(loaded.secrets, s.secrets);
        assert_eq!(
            loaded.get_password(dt("Service Equipment"), "EQ-00001", "custom_wifi_password"),
            Ok(json!("pw"))
        );
        // the series survives too
        let next = loaded
            .insert(
                dt("Service Equipment"),
                obj(json!({"equipment_type": "ONT"})),
                "a",
                Origin::Api,
            )
            .expect("insert");
        assert_eq!(next.doc["name"], "EQ-00002");
        assert!(!dir.path().join(format!("{STATE_FILE}.tmp")).exists());
        fs::write(p.state_path(), "{not json").expect("write");
        assert!(p.load().is_err());
    }
}
