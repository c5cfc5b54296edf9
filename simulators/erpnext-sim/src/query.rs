//! Frappe list-query semantics, evaluated in memory.
//!
//! This mirrors what `GET /api/resource/{DocType}` does in Frappe v15:
//! `frappe/api/v1.py::document_list` → `frappe.client.get_list` →
//! `frappe.desk.reportview.validate_args` (field/filter validation) →
//! `frappe.model.db_query.DatabaseQuery` (`parse_args`,
//! `prepare_filter_condition`, order by, limit), and the MariaDB semantics
//! the generated SQL gets:
//!
//! - `filters` / `or_filters`: JSON list of `[field, op, value]` or
//!   `[DocType, field, op, value]`, or a dict `{field: value}` /
//!   `{field: [op, value]}`; `filters` are ANDed, `or_filters` ORed, and
//!   the two groups ANDed.
//! - Text comparisons use a case- and accent-insensitive collation with
//!   PAD SPACE (utf8mb4_unicode_ci): `=`, `in`, `<`… ignore case, accents
//!   and trailing spaces; `like` ignores case and accents, `%`/`_` are
//!   wildcards and a backslash is literal (Frappe doubles it).
//! - NULL text is compared as `''` (Frappe wraps columns in
//!   `ifnull(col, '')`), except `like` with a non-empty pattern, where
//!   Frappe leaves the column bare and NULL never matches.
//! - Numeric columns (Int/Check/Float, `docstatus`, `idx`) compare as
//!   numbers (`flt(value)`); `is set` means non-zero on them.
//! - `in`/`not in` take a list or a comma-separated string; items are
//!   `cstr(v).strip()`ed; an empty list means `('')`.
//! - `limit_page_length` 0 (or empty) means no limit, and then
//!   `limit_start` is ignored too (Frappe only emits OFFSET with LIMIT).

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Value};
use thiserror::Error;

use crate::doctypes::{self, ColKind, Column, DocType, FieldType};
use crate::util::{J, normalize_datetime, today};

pub type Doc = Map<String, Value>;

/// Operators Frappe's `get_filter` accepts (`frappe/utils/data.py`).
pub const VALID_OPERATORS: [&str; 19] = [
    "=",
    "!=",
    ">",
    "<",
    ">=",
    "<=",
    "like",
    "not like",
    "in",
    "not in",
    "is",
    "between",
    "descendants of",
    "ancestors of",
    "not descendants of",
    "not ancestors of",
    "timespan",
    "previous",
    "next",
];

#[derive(Debug, Clone, PartialEq, Error)]
pub enum QueryError {
    #[error("Invalid JSON in {param}: {detail}")]
    Json { param: String, detail: String },
    #[error("Field not permitted in query: {0}")]
    UnknownField(String),
    #[error("DocType {0} not found")]
    DocTypeNotFound(String),
    #[error("{0}")]
    InvalidFilter(String),
    #[error("Operator must be one of {}", VALID_OPERATORS.join(", "))]
    InvalidOperator(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    InvalidOrderBy(String),
    #[error("{0}")]
    InvalidLimit(String),
    #[error("{0}")]
    InvalidFields(String),
}

// ---------------------------------------------------------------------------
// Collation
// ---------------------------------------------------------------------------

/// Folds a string for comparison the way utf8mb4_unicode_ci does for the
/// text an ISP in Québec stores: lower case, Latin accents removed, `æ`,
/// `œ`, `ß` expanded.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        for lc in c.to_lowercase() {
            match lc {
                'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => out.push('a'),
                'æ' => out.push_str("ae"),
                'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => out.push('c'),
                'ď' | 'đ' => out.push('d'),
                'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => out.push('e'),
                'ĝ' | 'ğ' | 'ġ' | 'ģ' => out.push('g'),
                'ĥ' | 'ħ' => out.push('h'),
                'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => out.push('i'),
                'ĵ' => out.push('j'),
                'ķ' => out.push('k'),
                'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => out.push('l'),
                'ñ' | 'ń' | 'ņ' | 'ň' => out.push('n'),
                'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => out.push('o'),
                'œ' => out.push_str("oe"),
                'ŕ' | 'ŗ' | 'ř' => out.push('r'),
                'ś' | 'ŝ' | 'ş' | 'š' => out.push('s'),
                'ß' => out.push_str("ss"),
                'ţ' | 'ť' | 'ŧ' => out.push('t'),
                'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => {
                    out.push('u')
                }
                'ŵ' => out.push('w'),
                'ý' | 'ÿ' | 'ŷ' => out.push('y'),
                'ź' | 'ż' | 'ž' => out.push('z'),
                other => out.push(other),
            }
        }
    }
    out
}

/// The comparison key of a text value under PAD SPACE collation.
pub fn text_key(s: &str) -> String {
    fold(s.trim_end_matches(' '))
}

/// Collation equality (names are primary keys: `EQ-1` = `eq-1 `).
pub fn same_text(a: &str, b: &str) -> bool {
    text_key(a) == text_key(b)
}

/// SQL LIKE on an already folded pattern: `%` any run, `_` one char.
fn like_folded(text: &str, folded_pattern: &str) -> bool {
    let t: Vec<char> = fold(text).chars().collect();
    let p: Vec<char> = folded_pattern.chars().collect();
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<usize> = None;
    let mut mark = 0usize;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

/// SQL LIKE with MariaDB's case/accent-insensitive collation.
#[cfg(test)]
pub fn like(text: &str, pattern: &str) -> bool {
    like_folded(text, &fold(pattern))
}

// ---------------------------------------------------------------------------
// Python / MariaDB value conversions
// ---------------------------------------------------------------------------

/// Python truthiness of a JSON value.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Python's `cstr` (`str(True)` is `"True"`).
fn py_cstr(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Frappe's `flt`: commas removed, garbage is 0.
pub fn flt(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s
            .replace(',', "")
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Frappe's `cint`: `int(float(s))`, garbage is 0.
pub fn cint(v: &Value) -> i64 {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => i,
            None => n.as_f64().unwrap_or(0.0).trunc() as i64,
        },
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => {
            let t = s.trim();
            match t.parse::<i64>() {
                Ok(i) => i,
                Err(_) => t
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .map(|x| x.trunc() as i64)
                    .unwrap_or(0),
            }
        }
        _ => 0,
    }
}

/// Frappe's `sbool` + Python truthiness, for `as_dict`.
fn sbool(v: &Value) -> bool {
    match v {
        Value::String(s) => match s.to_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            other => !other.is_empty(),
        },
        other => truthy(other),
    }
}

/// MariaDB's string→double conversion: the longest numeric prefix, else 0.
fn mysql_to_f64(s: &str) -> f64 {
    let t = s.trim_start();
    let b = t.as_bytes();
    let mut end = 0;
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let mut digits = false;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits = true;
    }
    if digits {
        end = i;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits = true;
        }
        if digits {
            end = i;
        }
    }
    if digits && i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let exp_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_start {
            end = j;
        }
    }
    t[..end].parse::<f64>().unwrap_or(0.0)
}

fn norm_dt(s: &str) -> String {
    normalize_datetime(s, false).unwrap_or_else(|| s.to_string())
}

// ---------------------------------------------------------------------------
// Cells: a document's value for a column
// ---------------------------------------------------------------------------

enum Cell<'a> {
    Null,
    Text(Cow<'a, str>),
    Num(f64),
    Dt(String),
}

fn cell<'a>(doc: &'a Doc, col: &Column) -> Cell<'a> {
    let v = doc.get(col.name);
    match col.kind {
        ColKind::Text => match v {
            None | Some(Value::Null) => Cell::Null,
            Some(Value::String(s)) => Cell::Text(Cow::Borrowed(s.as_str())),
            Some(other) => Cell::Text(Cow::Owned(doctypes::cstr(other))),
        },
        ColKind::Numeric => Cell::Num(match v {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            Some(Value::Bool(b)) => f64::from(u8::from(*b)),
            Some(Value::String(s)) => mysql_to_f64(s),
            _ => 0.0,
        }),
        ColKind::Datetime => match v {
            None | Some(Value::Null) => Cell::Null,
            Some(Value::String(s)) => Cell::Dt(norm_dt(s)),
            Some(other) => Cell::Dt(doctypes::cstr(other)),
        },
    }
}

/// A numeric column rendered as MariaDB renders it for LIKE.
fn num_text(x: f64, col: &Column) -> String {
    match col.field.map(|f| f.ftype) {
        Some(FieldType::Float) => format!("{x:.9}"),
        _ => format!("{}", x.trunc() as i64),
    }
}

/// The value a list row shows for a column.
fn output_value(doc: &Doc, col: &Column) -> Value {
    match doc.get(col.name) {
        Some(v) => v.clone(),
        None => match col.kind {
            ColKind::Numeric => Value::from(0),
            _ => Value::Null,
        },
    }
}

// ---------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Like,
    NotLike,
    In,
    NotIn,
    IsSet,
    IsNotSet,
    Between,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub column: Column,
    pub op: Op,
    /// The value as sent.
    pub value: Value,
    /// Precomputed comparison keys: folded text, normalized datetimes, or
    /// the folded LIKE pattern.
    keys: Vec<String>,
    /// Precomputed numbers for numeric columns.
    nums: Vec<f64>,
}

/// A filter as written, before its field is resolved.
#[derive(Debug, Clone, PartialEq)]
struct RawFilter {
    doctype: Option<String>,
    field: String,
    op: Value,
    value: Value,
}

/// Parses a JSON query parameter. An empty string counts as absent (Frappe
/// only `json.loads` truthy values); non-string values (from a JSON body)
/// are taken as they are.
pub fn parse_json_param(param: &str, raw: Option<&Value>) -> Result<Option<Value>, QueryError> {
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map(Some)
            .map_err(|e| QueryError::Json {
                param: param.to_string(),
                detail: e.to_string(),
            }),
        Some(other) => Ok(Some(other.clone())),
    }
}

fn field_name(v: &Value, filter: &Value) -> Result<String, QueryError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(QueryError::InvalidFilter(format!(
            "Invalid field name in filter {filter}"
        ))),
    }
}

fn dict_filter(key: &str, val: &Value) -> Result<RawFilter, QueryError> {
    match val {
        Value::Array(parts) => {
            if parts.len() < 2 {
                return Err(QueryError::InvalidFilter(format!(
                    "Filter for {key} must be [operator, value], got {val}"
                )));
            }
            Ok(RawFilter {
                doctype: None,
                field: key.to_string(),
                op: parts[0].clone(),
                value: parts[1].clone(),
            })
        }
        other => Ok(RawFilter {
            doctype: None,
            field: key.to_string(),
            op: Value::from("="),
            value: other.clone(),
        }),
    }
}

fn list_filter(parts: &[Value], whole: &Value) -> Result<RawFilter, QueryError> {
    match parts.len() {
        3 => Ok(RawFilter {
            doctype: None,
            field: field_name(&parts[0], whole)?,
            op: parts[1].clone(),
            value: parts[2].clone(),
        }),
        n if n >= 4 => {
            let doctype = match &parts[0] {
                Value::String(s) => s.clone(),
                _ => {
                    return Err(QueryError::InvalidFilter(format!(
                        "Invalid DocType in filter {whole}"
                    )));
                }
            };
            Ok(RawFilter {
                doctype: Some(doctype),
                field: field_name(&parts[1], whole)?,
                op: parts[2].clone(),
                value: parts[3].clone(),
            })
        }
        _ => Err(QueryError::InvalidFilter(format!(
            "Filter must have 4 values (doctype, fieldname, operator, value): {whole}"
        ))),
    }
}

fn raw_filters(v: &Value) -> Result<Vec<RawFilter>, QueryError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) => map.iter().map(|(k, val)| dict_filter(k, val)).collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Array(parts) => list_filter(parts, item),
                Value::Object(map) => match map.iter().next() {
                    Some((k, val)) => dict_filter(k, val),
                    None => Err(QueryError::InvalidFilter(
                        "Filter must be a tuple or list (in a list)".into(),
                    )),
                },
                other => Err(QueryError::InvalidFilter(format!(
                    "Filter must be a tuple or list (in a list): {other}"
                ))),
            })
            .collect(),
        other => Err(QueryError::InvalidFilter(format!(
            "Filters must be a JSON list or object, got {other}"
        ))),
    }
}

/// Resolves `name`, `` `name` `` or `` `tabDocType`.`name` ``.
pub fn column_ref(dt: &DocType, s: &str) -> Option<Column> {
    let s = s.trim();
    match s.rfind('.') {
        Some(i) => {
            let table = s[..i].trim().trim_matches('`');
            let field = s[i + 1..].trim().trim_matches('`');
            if table.strip_prefix("tab") == Some(dt.name) {
                dt.column(field)
            } else {
                None
            }
        }
        None => dt.column(s.trim_matches('`')),
    }
}

fn resolve(dt: &DocType, r: &RawFilter) -> Result<Column, QueryError> {
    if let Some(d) = &r.doctype {
        if d != dt.name {
            return match doctypes::get(d) {
                None => Err(QueryError::DocTypeNotFound(d.clone())),
                Some(_) => Err(QueryError::Unsupported(format!(
                    "Filters on another DocType ({d}) are not supported by erpnext-sim"
                ))),
            };
        }
    }
    column_ref(dt, &r.field).ok_or_else(|| QueryError::UnknownField(r.field.clone()))
}

fn scalar_for(col: &Column, r: &RawFilter) -> Result<(Vec<String>, Vec<f64>), QueryError> {
    if col.kind != ColKind::Numeric && matches!(r.value, Value::Array(_) | Value::Object(_)) {
        return Err(QueryError::InvalidFilter(format!(
            "Invalid value {} for filter on {}",
            r.value, r.field
        )));
    }
    Ok(match col.kind {
        ColKind::Text => (vec![text_key(&doctypes::cstr(&r.value))], Vec::new()),
        ColKind::Datetime => (vec![norm_dt(&doctypes::cstr(&r.value))], Vec::new()),
        ColKind::Numeric => (Vec::new(), vec![flt(&r.value)]),
    })
}

fn in_items(r: &RawFilter) -> Result<Vec<String>, QueryError> {
    let items: Vec<String> = match &r.value {
        Value::Array(a) => a.iter().map(|v| py_cstr(v).trim().to_string()).collect(),
        Value::String(s) => s.split(',').map(|v| v.trim().to_string()).collect(),
        Value::Object(_) => {
            return Err(QueryError::InvalidFilter(format!(
                "Invalid value {} for 'in' filter on {}",
                r.value, r.field
            )));
        }
        other => vec![py_cstr(other).trim().to_string()],
    };
    // Frappe: `values = f.value or ""` — an empty list is `('')`.
    if items.is_empty() {
        Ok(vec![String::new()])
    } else {
        Ok(items)
    }
}

fn build_filter(col: Column, r: &RawFilter) -> Result<Filter, QueryError> {
    let op_text = match &r.op {
        Value::Null => "=".to_string(),
        Value::String(s) if s.is_empty() => "=".to_string(),
        Value::String(s) => s.to_lowercase(),
        other => return Err(QueryError::InvalidOperator(other.to_string())),
    };
    if !VALID_OPERATORS.contains(&op_text.as_str()) {
        return Err(QueryError::InvalidOperator(op_text));
    }
    let mut keys = Vec::new();
    let mut nums = Vec::new();
    let op = match op_text.as_str() {
        "=" | "!=" | "<" | ">" | "<=" | ">=" => {
            (keys, nums) = scalar_for(&col, r)?;
            match op_text.as_str() {
                "=" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                ">" => Op::Gt,
                "<=" => Op::Le,
                _ => Op::Ge,
            }
        }
        "like" | "not like" => {
            if matches!(r.value, Value::Array(_) | Value::Object(_)) {
                return Err(QueryError::InvalidFilter(format!(
                    "Invalid value {} for '{op_text}' filter on {}",
                    r.value, r.field
                )));
            }
            keys.push(fold(&doctypes::cstr(&r.value)));
            if op_text == "like" {
                Op::Like
            } else {
                Op::NotLike
            }
        }
        "in" | "not in" => {
            let items = in_items(r)?;
            match col.kind {
                ColKind::Text => keys = items.iter().map(|i| text_key(i)).collect(),
                ColKind::Datetime => keys = items.iter().map(|i| norm_dt(i)).collect(),
                ColKind::Numeric => nums = items.iter().map(|i| mysql_to_f64(i)).collect(),
            }
            if op_text == "in" { Op::In } else { Op::NotIn }
        }
        "is" => match &r.value {
            Value::String(s) if s == "set" => Op::IsSet,
            Value::String(s) if s == "not set" => Op::IsNotSet,
            other => {
                return Err(QueryError::InvalidFilter(format!(
                    "Invalid value {other} for operator 'is' on {}: use \"set\" or \"not set\"",
                    r.field
                )));
            }
        },
        "between" => {
            if col.kind != ColKind::Datetime {
                return Err(QueryError::Unsupported(format!(
                    "Operator 'between' is only supported on creation/modified by erpnext-sim (filter on {})",
                    r.field
                )));
            }
            let (from, to) = match &r.value {
                Value::Array(a) => (
                    a.first().map(doctypes::cstr).unwrap_or_else(today),
                    a.get(1).map(doctypes::cstr).unwrap_or_else(today),
                ),
                _ => (today(), today()),
            };
            let lo = normalize_datetime(&from, false);
            let hi = normalize_datetime(&to, true);
            match (lo, hi) {
                (Some(lo), Some(hi)) => keys = vec![lo, hi],
                _ => {
                    return Err(QueryError::InvalidFilter(format!(
                        "Invalid dates {} for 'between' filter on {}",
                        r.value, r.field
                    )));
                }
            }
            Op::Between
        }
        other => {
            return Err(QueryError::Unsupported(format!(
                "Operator '{other}' is not supported by erpnext-sim"
            )));
        }
    };
    Ok(Filter {
        column: col,
        op,
        value: r.value.clone(),
        keys,
        nums,
    })
}

fn cmp_op(op: Op, ord: Ordering) -> bool {
    match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Lt => ord == Ordering::Less,
        Op::Gt => ord == Ordering::Greater,
        Op::Le => ord != Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        _ => false,
    }
}

fn key0(f: &Filter) -> &str {
    f.keys.first().map(String::as_str).unwrap_or("")
}

/// Does `doc` satisfy `f`?
pub fn matches(doc: &Doc, f: &Filter) -> bool {
    match cell(doc, &f.column) {
        Cell::Num(x) => match f.op {
            Op::Eq | Op::Ne | Op::Lt | Op::Gt | Op::Le | Op::Ge => {
                let rhs = f.nums.first().copied().unwrap_or(0.0);
                cmp_op(f.op, x.total_cmp(&rhs))
            }
            Op::Like => like_folded(&num_text(x, &f.column), key0(f)),
            Op::NotLike => !like_folded(&num_text(x, &f.column), key0(f)),
            Op::In => f.nums.contains(&x),
            Op::NotIn => !f.nums.contains(&x),
            Op::IsSet => x != 0.0,
            Op::IsNotSet => x == 0.0,
            Op::Between => false,
        },
        Cell::Dt(d) => match f.op {
            Op::Eq | Op::Ne | Op::Lt | Op::Gt | Op::Le | Op::Ge => {
                cmp_op(f.op, d.as_str().cmp(key0(f)))
            }
            Op::Like => like_folded(&d, key0(f)),
            Op::NotLike => !like_folded(&d, key0(f)),
            Op::In => f.keys.contains(&d),
            Op::NotIn => !f.keys.contains(&d),
            Op::IsSet => true,
            Op::IsNotSet => false,
            Op::Between => match (f.keys.first(), f.keys.get(1)) {
                (Some(lo), Some(hi)) => lo <= &d && &d <= hi,
                _ => false,
            },
        },
        c @ (Cell::Null | Cell::Text(_)) => {
            let is_null = matches!(c, Cell::Null);
            let s: &str = match &c {
                Cell::Text(t) => t,
                _ => "",
            };
            match f.op {
                Op::Eq | Op::Ne | Op::Lt | Op::Gt | Op::Le | Op::Ge => {
                    cmp_op(f.op, text_key(s).as_str().cmp(key0(f)))
                }
                // `col like 'x%'` without ifnull: NULL never matches.
                Op::Like => !(is_null && truthy(&f.value)) && like_folded(s, key0(f)),
                Op::NotLike => !like_folded(s, key0(f)),
                Op::In => f.keys.contains(&text_key(s)),
                Op::NotIn => !f.keys.contains(&text_key(s)),
                Op::IsSet => !is_null && !text_key(s).is_empty(),
                Op::IsNotSet => is_null || text_key(s).is_empty(),
                Op::Between => false,
            }
        }
    }
}

/// Parses a `filters`-style parameter into filters (JSON, structure, fields,
/// operators), for callers that have a single filter parameter.
pub fn parse_filters(
    dt: &DocType,
    param: &str,
    raw: Option<&Value>,
) -> Result<Vec<Filter>, QueryError> {
    let v = parse_json_param(param, raw)?;
    let raws = match &v {
        Some(v) => raw_filters(v)?,
        None => Vec::new(),
    };
    let cols = raws
        .iter()
        .map(|r| resolve(dt, r))
        .collect::<Result<Vec<_>, _>>()?;
    cols.into_iter()
        .zip(raws.iter())
        .map(|(c, r)| build_filter(c, r))
        .collect()
}

// ---------------------------------------------------------------------------
// Fields
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum SelItem {
    Col(Column),
    /// `count(…)`: an aggregate over the matched rows.
    Count,
    /// `link_field.fieldname`: a column of the linked document (LEFT JOIN).
    Linked {
        via: Column,
        target: &'static DocType,
        col: Column,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Output key and what it holds, in request order.
    pub items: Vec<(String, SelItem)>,
}

impl Selection {
    fn has_count(&self) -> bool {
        self.items.iter().any(|(_, i)| matches!(i, SelItem::Count))
    }
}

fn field_specs(v: Option<Value>) -> Result<Vec<String>, QueryError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    Value::String(s) if s.is_empty() => {}
                    Value::String(s) => out.push(s),
                    Value::Null => {}
                    other => {
                        return Err(QueryError::InvalidFields(format!(
                            "Invalid field in fields: {other}"
                        )));
                    }
                }
            }
            Ok(out)
        }
        // Frappe: a plain string is `*` or a comma-separated list.
        Some(Value::String(s)) => Ok(s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()),
        Some(other) => Err(QueryError::InvalidFields(format!(
            "fields must be a JSON list of field names, got {other}"
        ))),
    }
}

/// Splits `expr as alias` (any case of `as`).
fn split_alias(spec: &str) -> (&str, Option<String>) {
    let lower = spec.to_ascii_lowercase();
    match lower.find(" as ") {
        Some(i) => {
            let alias = spec[i + 4..].trim().trim_matches(['`', '"', '\'']);
            (spec[..i].trim(), Some(alias.to_string()))
        }
        None => (spec.trim(), None),
    }
}

fn parse_field_spec(dt: &'static DocType, spec: &str) -> Result<(String, SelItem), QueryError> {
    let (expr, alias) = split_alias(spec);
    let lower = expr.to_ascii_lowercase();
    if lower.starts_with("count(") && lower.ends_with(')') && expr.len() >= 7 {
        let inner = expr[6..expr.len() - 1].trim();
        if inner == "*" || column_ref(dt, inner).is_some() {
            return Ok((alias.unwrap_or_else(|| expr.to_string()), SelItem::Count));
        }
        return Err(QueryError::UnknownField(inner.to_string()));
    }
    if let Some(col) = column_ref(dt, expr) {
        return Ok((
            alias.unwrap_or_else(|| col.name.to_string()),
            SelItem::Col(col),
        ));
    }
    // `link_field.fieldname` (Frappe v15 joins the linked DocType).
    if let Some((link, field)) = expr.split_once('.') {
        let link = link.trim().trim_matches('`');
        let field = field.trim().trim_matches('`');
        if let Some(via) = dt.column(link) {
            if let Some(FieldType::Link(target_name)) = via.field.map(|f| f.ftype) {
                let target = doctypes::get(target_name)
                    .ok_or_else(|| QueryError::DocTypeNotFound(target_name.to_string()))?;
                let col = target
                    .column(field)
                    .ok_or_else(|| QueryError::UnknownField(field.to_string()))?;
                return Ok((
                    alias.unwrap_or_else(|| col.name.to_string()),
                    SelItem::Linked { via, target, col },
                ));
            }
        }
    }
    Err(QueryError::UnknownField(expr.trim_matches('`').to_string()))
}

/// Parses the `fields` value (already JSON-decoded).
pub fn parse_fields(dt: &'static DocType, v: Option<Value>) -> Result<Selection, QueryError> {
    let specs = field_specs(v)?;
    let items = if specs.is_empty() {
        vec![(
            "name".to_string(),
            SelItem::Col(
                dt.column("name")
                    .ok_or_else(|| QueryError::UnknownField("name".into()))?,
            ),
        )]
    } else if specs.len() == 1 && specs[0].trim() == "*" {
        dt.wildcard_columns()
            .into_iter()
            .map(|c| (c.name.to_string(), SelItem::Col(c)))
            .collect()
    } else {
        specs
            .iter()
            .map(|s| parse_field_spec(dt, s))
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok(Selection { items })
}

// ---------------------------------------------------------------------------
// Order by
// ---------------------------------------------------------------------------

/// Parses `order_by` (`modified desc, name asc`); absent or empty means the
/// DocType's default sort, `modified desc`.
pub fn parse_order_by(
    dt: &DocType,
    raw: Option<&Value>,
) -> Result<Vec<(Column, bool)>, QueryError> {
    let text = match raw {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(QueryError::InvalidOrderBy(format!(
                "Invalid order_by: {other}"
            )));
        }
    };
    let text = text.trim();
    if text.is_empty() || text == "KEEP_DEFAULT_ORDERING" {
        let modified = dt
            .column("modified")
            .ok_or_else(|| QueryError::UnknownField("modified".into()))?;
        return Ok(vec![(modified, true)]);
    }
    let lower = text.to_lowercase();
    if lower.contains("select") && lower.contains("from") {
        return Err(QueryError::InvalidOrderBy(
            "Cannot use sub-query in order by".into(),
        ));
    }
    let mut out = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (field, desc) = match item.rsplit_once(char::is_whitespace) {
            Some((f, dir)) if dir.eq_ignore_ascii_case("desc") => (f.trim(), true),
            Some((f, dir)) if dir.eq_ignore_ascii_case("asc") => (f.trim(), false),
            _ => (item, false),
        };
        let col = column_ref(dt, field).ok_or_else(|| {
            if field.contains(char::is_whitespace) || field.contains('(') {
                QueryError::InvalidOrderBy(format!("Invalid order_by: {item}"))
            } else {
                QueryError::UnknownField(field.trim_matches('`').to_string())
            }
        })?;
        out.push((col, desc));
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
enum SortKey {
    Null,
    Str(String),
    Num(f64),
}

impl SortKey {
    fn of(doc: &Doc, col: &Column) -> SortKey {
        match cell(doc, col) {
            Cell::Null => SortKey::Null,
            Cell::Text(t) => SortKey::Str(fold(&t)),
            Cell::Dt(d) => SortKey::Str(d),
            Cell::Num(x) => SortKey::Num(x),
        }
    }

    fn cmp(&self, other: &SortKey) -> Ordering {
        match (self, other) {
            (SortKey::Null, SortKey::Null) => Ordering::Equal,
            (SortKey::Null, _) => Ordering::Less,
            (_, SortKey::Null) => Ordering::Greater,
            (SortKey::Str(a), SortKey::Str(b)) => a.cmp(b),
            (SortKey::Num(a), SortKey::Num(b)) => a.total_cmp(b),
            (SortKey::Num(_), SortKey::Str(_)) => Ordering::Less,
            (SortKey::Str(_), SortKey::Num(_)) => Ordering::Greater,
        }
    }
}

// ---------------------------------------------------------------------------
// The whole query
// ---------------------------------------------------------------------------

/// Raw list parameters (strings from a query string, or JSON values from a
/// JSON body).
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub fields: Option<Value>,
    pub filters: Option<Value>,
    pub or_filters: Option<Value>,
    pub order_by: Option<Value>,
    pub limit_start: Option<Value>,
    /// `None` means Frappe's default of 20.
    pub limit_page_length: Option<Value>,
    pub as_dict: Option<Value>,
    pub group_by: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub selection: Selection,
    pub filters: Vec<Filter>,
    pub or_filters: Vec<Filter>,
    pub order: Vec<(Column, bool)>,
    pub start: u64,
    /// 0 = no limit.
    pub page_length: u64,
    pub as_dict: bool,
}

fn limit_value(name: &str, v: &Value) -> Result<u64, QueryError> {
    let n = cint(v);
    u64::try_from(n)
        .map_err(|_| QueryError::InvalidLimit(format!("{name} must not be negative, got {n}")))
}

/// Validates and compiles list parameters, in the order Frappe does:
/// JSON decoding, then fields, then filter fields, then operators/values,
/// then order and limits.
pub fn build_query(dt: &'static DocType, p: &ListParams) -> Result<ListQuery, QueryError> {
    let fields_v = parse_json_param("fields", p.fields.as_ref())?;
    let filters_v = parse_json_param("filters", p.filters.as_ref())?;
    let or_v = parse_json_param("or_filters", p.or_filters.as_ref())?;
    if p.group_by.as_ref().is_some_and(truthy) {
        return Err(QueryError::Unsupported(
            "group_by is not supported by erpnext-sim".into(),
        ));
    }
    let selection = parse_fields(dt, fields_v)?;
    let raw_f = match &filters_v {
        Some(v) => raw_filters(v)?,
        None => Vec::new(),
    };
    let raw_o = match &or_v {
        Some(v) => raw_filters(v)?,
        None => Vec::new(),
    };
    let cols_f = raw_f
        .iter()
        .map(|r| resolve(dt, r))
        .collect::<Result<Vec<_>, _>>()?;
    let cols_o = raw_o
        .iter()
        .map(|r| resolve(dt, r))
        .collect::<Result<Vec<_>, _>>()?;
    let filters = cols_f
        .into_iter()
        .zip(raw_f.iter())
        .map(|(c, r)| build_filter(c, r))
        .collect::<Result<Vec<_>, _>>()?;
    let or_filters = cols_o
        .into_iter()
        .zip(raw_o.iter())
        .map(|(c, r)| build_filter(c, r))
        .collect::<Result<Vec<_>, _>>()?;
    let order = parse_order_by(dt, p.order_by.as_ref())?;
    let start = match &p.limit_start {
        Some(v) => limit_value("limit_start", v)?,
        None => 0,
    };
    let page_length = match &p.limit_page_length {
        Some(v) => limit_value("limit_page_length", v)?,
        None => 20,
    };
    let as_dict = p.as_dict.as_ref().is_none_or(sbool);
    Ok(ListQuery {
        selection,
        filters,
        or_filters,
        order,
        start,
        page_length,
        as_dict,
    })
}

fn page<T>(items: Vec<T>, start: u64, len: u64) -> Vec<T> {
    if len == 0 {
        return items;
    }
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    items.into_iter().skip(start).take(len).collect()
}

/// The documents of `docs` matching the filters, sorted.
pub fn select<'a>(docs: &'a [Doc], q: &ListQuery) -> Vec<&'a Doc> {
    let matched: Vec<&Doc> = docs
        .iter()
        .filter(|d| q.filters.iter().all(|f| matches(d, f)))
        .filter(|d| q.or_filters.is_empty() || q.or_filters.iter().any(|f| matches(d, f)))
        .collect();
    if q.order.is_empty() {
        return matched;
    }
    let mut keyed: Vec<(Vec<SortKey>, &Doc)> = matched
        .into_iter()
        .map(|d| (q.order.iter().map(|(c, _)| SortKey::of(d, c)).collect(), d))
        .collect();
    keyed.sort_by(|(ka, _), (kb, _)| {
        for (i, (_, desc)) in q.order.iter().enumerate() {
            let (a, b) = (&ka[i], &kb[i]);
            let ord = if *desc { b.cmp(a) } else { a.cmp(b) };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
    keyed.into_iter().map(|(_, d)| d).collect()
}

/// Looks up a document of another DocType by name (for `link.field`).
pub type Lookup<'a> = dyn Fn(&'static DocType, &str) -> Option<&'a Doc> + 'a;

fn row_values<'a>(
    doc: Option<&'a Doc>,
    matched: usize,
    sel: &Selection,
    lookup: &Lookup<'a>,
) -> Vec<(String, Value)> {
    sel.items
        .iter()
        .map(|(key, item)| {
            let v = match item {
                SelItem::Count => Value::from(matched),
                SelItem::Col(c) => doc.map(|d| output_value(d, c)).unwrap_or(Value::Null),
                SelItem::Linked { via, target, col } => doc
                    .and_then(|d| d.get(via.name))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .and_then(|name| lookup(target, name))
                    .map(|d| output_value(d, col))
                    .unwrap_or(Value::Null),
            };
            (key.clone(), v)
        })
        .collect()
}

fn to_row(values: Vec<(String, Value)>, as_dict: bool) -> J {
    if as_dict {
        let mut out: Vec<(String, J)> = Vec::with_capacity(values.len());
        for (k, v) in values {
            match out.iter_mut().find(|(ok, _)| *ok == k) {
                Some(slot) => slot.1 = J::V(v),
                None => out.push((k, J::V(v))),
            }
        }
        J::O(out)
    } else {
        J::A(values.into_iter().map(|(_, v)| J::V(v)).collect())
    }
}

/// Runs the query: the rows `{"data": …}` carries.
pub fn execute<'a>(docs: &'a [Doc], q: &ListQuery, lookup: &Lookup<'a>) -> Vec<J> {
    let matched = select(docs, q);
    if q.selection.has_count() {
        let row = row_values(
            matched.first().copied(),
            matched.len(),
            &q.selection,
            lookup,
        );
        return page(vec![to_row(row, q.as_dict)], q.start, q.page_length);
    }
    page(matched, q.start, q.page_length)
        .into_iter()
        .map(|d| to_row(row_values(Some(d), 0, &q.selection, lookup), q.as_dict))
        .collect()
}

/// Number of documents matching `filters` (`frappe.client.get_count`).
pub fn count(docs: &[Doc], filters: &[Filter]) -> usize {
    docs.iter()
        .filter(|d| filters.iter().all(|f| matches(d, f)))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn se() -> &'static DocType {
        doctypes::get("Service Equipment").expect("doctype")
    }

    fn doc(v: Value) -> Doc {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    /// A small table exercising nulls, case, accents, numbers, dates.
    fn table() -> Vec<Doc> {
        vec![
            doc(json!({
                "name": "EQ-00001", "owner": "Administrator", "creation": "2024-05-01 10:00:00.000001",
                "modified": "2024-05-03 09:00:00.5", "modified_by": "Administrator", "docstatus": 0, "idx": 0,
                "customer": "Jean Tremblay", "equipment_type": "ONT", "status": "Actif",
                "serial_number": "RCMG1A2B3C4D", "custom_sip_line": 1, "custom_wifi_enabled": 1,
                "custom_wifi_password": "************", "brand": "Raisecom"
            })),
            doc(json!({
                "name": "EQ-00002", "owner": "Administrator", "creation": "2024-05-01 11:00:00",
                "modified": "2024-05-02 09:00:00", "modified_by": "Administrator", "docstatus": 0, "idx": 0,
                "customer": "Émilie Côté", "equipment_type": "Routeur", "status": "Actif",
                "mac_address": "AA:BB:CC:DD:EE:01", "custom_sip_line": 2, "custom_wifi_enabled": 0,
                "custom_wifi_ssid": "Gigafibre-Côté", "brand": "TP-Link"
            })),
            doc(json!({
                "name": "eq-00003", "owner": "acs@gigafibre.ca", "creation": "2024-05-02 08:00:00",
                "modified": "2024-05-04 09:00:00", "modified_by": "acs@gigafibre.ca", "docstatus": 0, "idx": 0,
                "customer": "Jean Tremblay", "equipment_type": "Routeur", "status": "En inventaire",
                "mac_address": "", "serial_number": "TPLG-x_y%z", "custom_sip_line": 0, "custom_wifi_enabled": 1,
                "custom_wifi_ssid": "Gigafibre-Tremblay   "
            })),
            doc(json!({
                "name": "EQ-00004", "owner": "Administrator", "creation": "2024-05-03 08:00:00",
                "modified": "2024-05-01 09:00:00", "modified_by": "Administrator", "docstatus": 0, "idx": 0,
                "equipment_type": "Décodeur TV", "status": "Retourné", "custom_sip_line": 10,
                "custom_wifi_enabled": 1, "brand": "raisecom"
            })),
        ]
    }

    fn names(filters: Value) -> Vec<String> {
        names_with(json!({"filters": filters}))
    }

    fn names_with(params: Value) -> Vec<String> {
        let g = |k: &str| {
            params.get(k).map(|v| match v {
                Value::String(_) => v.clone(),
                other => Value::String(other.to_string()),
            })
        };
        let p = ListParams {
            fields: g("fields"),
            filters: g("filters"),
            or_filters: g("or_filters"),
            order_by: params.get("order_by").cloned(),
            limit_start: params.get("limit_start").cloned(),
            limit_page_length: Some(params.get("limit_page_length").cloned().unwrap_or(json!(0))),
            as_dict: None,
            group_by: None,
        };
        let q = build_query(se(), &p).expect("valid query");
        let t = table();
        let mut out: Vec<String> = page(select(&t, &q), q.start, q.page_length)
            .iter()
            .filter_map(|d| d.get("name").and_then(Value::as_str).map(String::from))
            .collect();
        if params.get("order_by").is_none() {
            out.sort();
        }
        out
    }

    fn err(params: ListParams) -> QueryError {
        build_query(se(), &params).expect_err("query must be rejected")
    }

    fn filters(v: &str) -> ListParams {
        ListParams {
            filters: Some(json!(v)),
            ..ListParams::default()
        }
    }

    // -- collation & like ---------------------------------------------------

    #[test]
    fn folding_and_like() {
        assert_eq!(fold("Émilie CÔTÉ œuvre"), "emilie cote oeuvre");
        assert!(same_text("EQ-00001", "eq-00001   "));
        assert!(!same_text("EQ-00001", " EQ-00001"));
        assert!(like("RCMG1A2B3C4D", "rcmg%"));
        assert!(like("RCMG1A2B3C4D", "%2b3%"));
        assert!(like("RCMG1A2B3C4D", "RCMG________"));
        assert!(!like("RCMG1A2B3C4D", "RCMG_______"));
        assert!(like("Gigafibre-Côté", "%cote"));
        assert!(like("", "%"));
        assert!(like("", ""));
        assert!(!like("a", ""));
        assert!(like("abc", "a%%c"));
        assert!(like("a\\b", "a\\b"));
        assert!(like("aXbXc", "%b%"));
        assert!(!like("ab", "%b%c"));
        // trailing spaces count for LIKE
        assert!(!like("abc ", "abc"));
    }

    #[test]
    fn conversions() {
        assert_eq!(cint(&json!("5")), 5);
        assert_eq!(cint(&json!("5.9")), 5);
        assert_eq!(cint(&json!("abc")), 0);
        assert_eq!(cint(&json!("")), 0);
        assert_eq!(cint(&json!(-3)), -3);
        assert_eq!(cint(&Value::Null), 0);
        assert_eq!(flt(&json!("1,000.5")), 1000.5);
        assert_eq!(flt(&json!("x")), 0.0);
        assert_eq!(mysql_to_f64("12abc"), 12.0);
        assert_eq!(mysql_to_f64("  -1.5e2x"), -150.0);
        assert_eq!(mysql_to_f64("abc"), 0.0);
        assert_eq!(mysql_to_f64("."), 0.0);
        assert!(truthy(&json!("0")));
        assert!(!truthy(&json!(0)));
        assert!(!truthy(&json!([])));
    }

    // -- operators ------------------------------------------------------------

    #[test]
    fn op_equals_is_case_accent_and_pad_insensitive() {
        assert_eq!(
            names(json!([["status", "=", "actif"]])),
            vec!["EQ-00001", "EQ-00002"]
        );
        assert_eq!(
            names(json!([["customer", "=", "EMILIE COTE"]])),
            vec!["EQ-00002"]
        );
        assert_eq!(names(json!([["name", "=", "EQ-00003"]])), vec!["eq-00003"]);
        assert_eq!(
            names(json!([["custom_wifi_ssid", "=", "gigafibre-tremblay"]])),
            vec!["eq-00003"]
        );
        // `= ''` matches NULL and empty (ifnull(col, '') = '').
        assert_eq!(
            names(json!([["mac_address", "=", ""]])),
            vec!["EQ-00001", "EQ-00004", "eq-00003"]
        );
        assert_eq!(
            names(json!([["mac_address", "=", null]])),
            vec!["EQ-00001", "EQ-00004", "eq-00003"]
        );
    }

    #[test]
    fn op_not_equals_includes_nulls() {
        assert_eq!(
            names(json!([["customer", "!=", "jean tremblay"]])),
            vec!["EQ-00002", "EQ-00004"]
        );
        assert_eq!(
            names(json!([["brand", "!=", "RAISECOM"]])),
            vec!["EQ-00002", "eq-00003"]
        );
    }

    #[test]
    fn op_ordering_comparisons() {
        assert_eq!(
            names(json!([["custom_sip_line", ">", 1]])),
            vec!["EQ-00002", "EQ-00004"]
        );
        assert_eq!(
            names(json!([["custom_sip_line", ">=", "2"]])),
            vec!["EQ-00002", "EQ-00004"]
        );
        assert_eq!(
            names(json!([["custom_sip_line", "<", 1]])),
            vec!["eq-00003"]
        );
        assert_eq!(
            names(json!([["custom_sip_line", "<=", 1]])),
            vec!["EQ-00001", "eq-00003"]
        );
        // numeric, not lexicographic: 10 > 2
        assert_eq!(
            names(json!([["custom_sip_line", ">", "9"]])),
            vec!["EQ-00004"]
        );
        // text ordering uses the collation
        assert_eq!(
            names(json!([["name", ">", "eq-00002"]])),
            vec!["EQ-00004", "eq-00003"]
        );
        assert_eq!(names(json!([["name", "<", "EQ-00002"]])), vec!["EQ-00001"]);
        // datetimes compare chronologically, a bare date is midnight
        assert_eq!(
            names(json!([["modified", ">", "2024-05-02"]])),
            vec!["EQ-00001", "EQ-00002", "eq-00003"]
        );
        assert_eq!(
            names(json!([["modified", ">", "2024-05-02 09:00:00"]])),
            vec!["EQ-00001", "eq-00003"]
        );
        assert_eq!(
            names(json!([["modified", ">=", "2024-05-02 09:00:00.000000"]])).len(),
            3
        );
        assert_eq!(
            names(json!([["creation", "<=", "2024-05-01 10:00:00"]])),
            Vec::<String>::new()
        );
        assert_eq!(
            names(json!([["creation", "=", "2024-05-01 11:00:00"]])),
            vec!["EQ-00002"]
        );
        assert_eq!(names(json!([["docstatus", "=", "0"]])).len(), 4);
        // numeric garbage is flt() = 0
        assert_eq!(
            names(json!([["custom_sip_line", "=", "abc"]])),
            vec!["eq-00003"]
        );
    }

    #[test]
    fn op_like_and_not_like() {
        assert_eq!(
            names(json!([["serial_number", "like", "rcmg%"]])),
            vec!["EQ-00001"]
        );
        assert_eq!(
            names(json!([["serial_number", "LIKE", "%g%"]])),
            vec!["EQ-00001", "eq-00003"]
        );
        assert_eq!(
            names(json!([["customer", "like", "%côte%"]])),
            vec!["EQ-00002"]
        );
        assert_eq!(
            names(json!([["serial_number", "like", "TPLG_x%"]])),
            vec!["eq-00003"]
        );
        // NULL never matches a non-empty LIKE, even '%'
        assert_eq!(
            names(json!([["serial_number", "like", "%"]])),
            vec!["EQ-00001", "eq-00003"]
        );
        // ... but `like ''` goes through ifnull and matches NULL and ''
        assert_eq!(
            names(json!([["mac_address", "like", ""]])),
            vec!["EQ-00001", "EQ-00004", "eq-00003"]
        );
        // not like: NULL is treated as ''
        assert_eq!(
            names(json!([["serial_number", "not like", "RCMG%"]])),
            vec!["EQ-00002", "EQ-00004", "eq-00003"]
        );
        assert_eq!(
            names(json!([["serial_number", "not like", "%"]])),
            Vec::<String>::new()
        );
        // like on numbers and dates works on their text
        assert_eq!(
            names(json!([["custom_sip_line", "like", "1%"]])),
            vec!["EQ-00001", "EQ-00004"]
        );
        assert_eq!(
            names(json!([["creation", "like", "2024-05-01%"]])),
            vec!["EQ-00001", "EQ-00002"]
        );
        assert_eq!(
            names(json!([["creation", "like", "%.000001"]])),
            vec!["EQ-00001"]
        );
    }

    #[test]
    fn op_in_and_not_in() {
        assert_eq!(
            names(json!([["name", "in", ["EQ-00001", "eq-00002"]]])),
            vec!["EQ-00001", "EQ-00002"]
        );
        assert_eq!(
            names(json!([["name", "in", "EQ-00001, EQ-00004"]])),
            vec!["EQ-00001", "EQ-00004"]
        );
        assert_eq!(
            names(json!([["status", "not in", ["Actif", "Retourné"]]])),
            vec!["eq-00003"]
        );
        assert_eq!(
            names(json!([["status", "not in", "actif,retourne"]])),
            vec!["eq-00003"]
        );
        // NULL is '' for in/not in
        assert_eq!(
            names(json!([["mac_address", "in", ["", "x"]]])),
            vec!["EQ-00001", "EQ-00004", "eq-00003"]
        );
        assert_eq!(
            names(json!([["mac_address", "not in", ["AA:BB:CC:DD:EE:01"]]])).len(),
            3
        );
        assert_eq!(
            names(json!([["serial_number", "in", ["RCMG1A2B3C4D"]]])),
            vec!["EQ-00001"]
        );
        // empty list means ('')
        assert_eq!(
            names(json!([["serial_number", "in", []]])),
            vec!["EQ-00002", "EQ-00004"]
        );
        assert_eq!(
            names(json!([["serial_number", "not in", []]])),
            vec!["EQ-00001", "eq-00003"]
        );
        // numbers: items are strings converted by MariaDB
        assert_eq!(
            names(json!([["custom_sip_line", "in", [1, "2"]]])),
            vec!["EQ-00001", "EQ-00002"]
        );
        assert_eq!(
            names(json!([["custom_sip_line", "in", "0,10"]])),
            vec!["EQ-00004", "eq-00003"]
        );
        assert_eq!(
            names(json!([["custom_sip_line", "not in", [0, 1, 2]]])),
            vec!["EQ-00004"]
        );
        // single scalar
        assert_eq!(
            names(json!([["custom_sip_line", "in", 2]])),
            vec!["EQ-00002"]
        );
        // items are stripped
        assert_eq!(
            names(json!([["name", "in", [" EQ-00004 "]]])),
            vec!["EQ-00004"]
        );
    }

    #[test]
    fn op_is_set_and_not_set() {
        assert_eq!(
            names(json!([["serial_number", "is", "set"]])),
            vec!["EQ-00001", "eq-00003"]
        );
        assert_eq!(
            names(json!([["mac_address", "is", "set"]])),
            vec!["EQ-00002"]
        );
        assert_eq!(
            names(json!([["mac_address", "is", "not set"]])),
            vec!["EQ-00001", "EQ-00004", "eq-00003"]
        );
        // whitespace-only equals '' under PAD SPACE
        assert_eq!(
            names(json!([["custom_wifi_ssid", "is", "set"]])),
            vec!["EQ-00002", "eq-00003"]
        );
        // numbers: set means non-zero
        assert_eq!(
            names(json!([["custom_sip_line", "is", "not set"]])),
            vec!["eq-00003"]
        );
        assert_eq!(
            names(json!([["custom_wifi_enabled", "is", "set"]])).len(),
            3
        );
        assert_eq!(names(json!([["modified", "is", "set"]])).len(), 4);
        assert!(matches!(
            err(filters(r#"[["serial_number","is","Set"]]"#)),
            QueryError::InvalidFilter(_)
        ));
        assert!(matches!(
            err(filters(r#"[["serial_number","is",null]]"#)),
            QueryError::InvalidFilter(_)
        ));
    }

    #[test]
    fn op_between_on_datetimes() {
        assert_eq!(
            names(json!([[
                "creation",
                "between",
                ["2024-05-01", "2024-05-01"]
            ]])),
            vec!["EQ-00001", "EQ-00002"]
        );
        assert_eq!(
            names(json!([[
                "modified",
                "between",
                ["2024-05-02 09:00:00", "2024-05-03"]
            ]])),
            vec!["EQ-00001", "EQ-00002"]
        );
        assert!(matches!(
            err(filters(r#"[["custom_sip_line","between",[1,2]]]"#)),
            QueryError::Unsupported(_)
        ));
    }

    #[test]
    fn operator_validation() {
        assert!(matches!(
            err(filters(r#"[["status","<>","Actif"]]"#)),
            QueryError::InvalidOperator(_)
        ));
        assert!(matches!(
            err(filters(r#"[["status"," like","x"]]"#)),
            QueryError::InvalidOperator(_)
        ));
        assert!(matches!(
            err(filters(r#"[["status",5,"x"]]"#)),
            QueryError::InvalidOperator(_)
        ));
        assert!(matches!(
            err(filters(r#"[["status","timespan","last week"]]"#)),
            QueryError::Unsupported(_)
        ));
        // missing operator means "="
        assert_eq!(names(json!([["status", "", "Retourné"]])), vec!["EQ-00004"]);
        assert_eq!(
            names(json!([["status", null, "retourne"]])),
            vec!["EQ-00004"]
        );
        let e = QueryError::InvalidOperator("<>".into()).to_string();
        assert!(e.starts_with(
            "Operator must be one of =, !=, >, <, >=, <=, like, not like, in, not in, is"
        ));
    }

    // -- filter shapes ----------------------------------------------------------

    #[test]
    fn four_element_filters() {
        assert_eq!(
            names(json!([["Service Equipment", "status", "=", "Actif"]])),
            vec!["EQ-00001", "EQ-00002"]
        );
        // extra elements are ignored (Frappe truncates to 4)
        assert_eq!(
            names(json!([[
                "Service Equipment",
                "status",
                "=",
                "Actif",
                false
            ]])),
            vec!["EQ-00001", "EQ-00002"]
        );
        assert!(matches!(
            err(filters(r#"[["Item","status","=","Actif"]]"#)),
            QueryError::DocTypeNotFound(d) if d == "Item"
        ));
        assert!(matches!(
            err(filters(r#"[["Customer","customer_name","=","x"]]"#)),
            QueryError::Unsupported(_)
        ));
        assert!(matches!(
            err(filters(r#"[["Service Equipment","nope","=","x"]]"#)),
            QueryError::UnknownField(f) if f == "nope"
        ));
    }

    #[test]
    fn qualified_field_names() {
        assert_eq!(
            names(json!([[
                "`tabService Equipment`.`status`",
                "=",
                "Retourné"
            ]])),
            vec!["EQ-00004"]
        );
        assert_eq!(
            names(json!([["`status`", "=", "Retourné"]])),
            vec!["EQ-00004"]
        );
        assert!(matches!(
            err(filters(r#"[["`tabCustomer`.`status`","=","x"]]"#)),
            QueryError::UnknownField(_)
        ));
    }

    #[test]
    fn dict_filters() {
        assert_eq!(
            names(json!({"status": "Actif"})),
            vec!["EQ-00001", "EQ-00002"]
        );
        assert_eq!(
            names(json!({"status": "Actif", "equipment_type": "Routeur"})),
            vec!["EQ-00002"]
        );
        assert_eq!(
            names(json!({"serial_number": ["like", "RCMG%"]})),
            vec!["EQ-00001"]
        );
        assert_eq!(
            names(json!({"name": ["in", ["EQ-00001", "EQ-00004"]]})),
            vec!["EQ-00001", "EQ-00004"]
        );
        assert_eq!(
            names(json!({"mac_address": ["is", "set"]})),
            vec!["EQ-00002"]
        );
        assert_eq!(names(json!({"custom_sip_line": 2})), vec!["EQ-00002"]);
        // list of dicts
        assert_eq!(
            names(json!([{"status": "Actif"}, {"brand": "tp-link"}])),
            vec!["EQ-00002"]
        );
        assert!(matches!(
            err(filters(r#"{"status":["like"]}"#)),
            QueryError::InvalidFilter(_)
        ));
        assert!(matches!(
            err(filters(r#"{"nope":"x"}"#)),
            QueryError::UnknownField(_)
        ));
    }

    #[test]
    fn empty_and_malformed_filters() {
        assert_eq!(names(json!([])).len(), 4);
        assert_eq!(names(json!({})).len(), 4);
        assert_eq!(names(json!(null)).len(), 4);
        assert_eq!(names_with(json!({"filters": ""})).len(), 4);
        assert!(matches!(
            err(filters("[[\"status\",\"=\"")),
            QueryError::Json { .. }
        ));
        assert!(matches!(
            err(filters("status=Actif")),
            QueryError::Json { .. }
        ));
        assert!(matches!(
            err(filters(r#"[["status","="]]"#)),
            QueryError::InvalidFilter(_)
        ));
        assert!(matches!(
            err(filters(r#"["status"]"#)),
            QueryError::InvalidFilter(_)
        ));
        assert!(matches!(
            err(filters(r#""status""#)),
            QueryError::InvalidFilter(_)
        ));
        assert!(matches!(err(filters("5")), QueryError::InvalidFilter(_)));
        assert!(matches!(
            err(filters(r#"[[1,"=","x"]]"#)),
            QueryError::InvalidFilter(_)
        ));
        assert!(matches!(
            err(filters(r#"[["status","=",["a"]]]"#)),
            QueryError::InvalidFilter(_)
        ));
        assert!(matches!(
            err(filters(r#"[["status","like",{"a":1}]]"#)),
            QueryError::InvalidFilter(_)
        ));
        assert!(
            matches!(err(filters(r#"[["nope","=","x"]]"#)), QueryError::UnknownField(f) if f == "nope")
        );
        // field errors come before operator errors, as in Frappe
        assert!(matches!(
            err(filters(r#"[["status","bogus","x"],["nope","=","x"]]"#)),
            QueryError::UnknownField(_)
        ));
    }

    #[test]
    fn or_filters_and_combination() {
        assert_eq!(
            names_with(
                json!({"or_filters": [["status", "=", "Retourné"], ["serial_number", "like", "RCMG%"]]})
            ),
            vec!["EQ-00001", "EQ-00004"]
        );
        assert_eq!(
            names_with(json!({
                "filters": [["customer", "=", "Jean Tremblay"]],
                "or_filters": [["status", "=", "En inventaire"], ["equipment_type", "=", "ONT"]]
            })),
            vec!["EQ-00001", "eq-00003"]
        );
        assert_eq!(
            names_with(json!({"or_filters": {"status": "Retourné", "brand": "TP-Link"}})),
            vec!["EQ-00002", "EQ-00004"]
        );
        assert_eq!(names_with(json!({"or_filters": []})).len(), 4);
        let e = build_query(
            se(),
            &ListParams {
                or_filters: Some(json!("{bad")),
                ..ListParams::default()
            },
        )
        .expect_err("bad json");
        assert!(matches!(e, QueryError::Json { ref param, .. } if param == "or_filters"));
    }

    #[test]
    fn standard_and_optional_columns_are_filterable() {
        assert_eq!(
            names(json!([["owner", "=", "ACS@gigafibre.ca"]])),
            vec!["eq-00003"]
        );
        assert_eq!(names(json!([["modified_by", "like", "admin%"]])).len(), 3);
        assert_eq!(names(json!([["idx", "=", 0]])).len(), 4);
        assert_eq!(names(json!([["_assign", "is", "not set"]])).len(), 4);
        // password columns hold asterisks, so the secret never matches
        assert_eq!(
            names(json!([["custom_wifi_password", "like", "%*%"]])),
            vec!["EQ-00001"]
        );
    }

    // -- fields ----------------------------------------------------------------

    fn run(params: ListParams) -> Vec<J> {
        let q = build_query(se(), &params).expect("query");
        let t = table();
        let lookup = |_: &'static DocType, _: &str| -> Option<&Doc> { None };
        execute(&t, &q, &lookup)
    }

    fn fields(f: &str) -> ListParams {
        ListParams {
            fields: Some(json!(f)),
            order_by: Some(json!("name asc")),
            ..ListParams::default()
        }
    }

    #[test]
    fn default_fields_is_name_only() {
        let rows = run(ListParams {
            order_by: Some(json!("name asc")),
            ..ListParams::default()
        });
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].encode(), r#"{"name":"EQ-00001"}"#);
        assert_eq!(run(fields("[]"))[0].encode(), r#"{"name":"EQ-00001"}"#);
    }

    #[test]
    fn explicit_fields_keep_order_and_nulls() {
        let rows = run(fields(
            r#"["serial_number","name","mac_address","custom_sip_line"]"#,
        ));
        assert_eq!(
            rows[0].encode(),
            r#"{"serial_number":"RCMG1A2B3C4D","name":"EQ-00001","mac_address":null,"custom_sip_line":1}"#
        );
    }

    #[test]
    fn wildcard_returns_all_columns() {
        let rows = run(fields(r#"["*"]"#));
        let J::O(pairs) = &rows[0] else {
            panic!("row is an object")
        };
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            &keys[..7],
            &[
                "name",
                "owner",
                "creation",
                "modified",
                "modified_by",
                "docstatus",
                "idx"
            ]
        );
        assert_eq!(keys.len(), 7 + se().fields.len());
        assert!(keys.contains(&"custom_radius_password"));
        let enc = rows[0].encode();
        assert!(enc.contains(r#""custom_wifi_password":"************""#));
        assert!(enc.contains(r#""custom_wifi_ssid_5g":null"#));
        // Frappe also accepts the string "*"
        assert_eq!(run(fields("\"*\"")).len(), 4);
    }

    #[test]
    fn aliases_qualified_and_count() {
        let rows = run(fields(
            r#"["name as id","`tabService Equipment`.`status` AS state"]"#,
        ));
        assert_eq!(rows[0].encode(), r#"{"id":"EQ-00001","state":"Actif"}"#);
        let rows = run(ListParams {
            fields: Some(json!(r#"["count(name) as total"]"#)),
            filters: Some(json!(r#"[["status","=","Actif"]]"#)),
            ..ListParams::default()
        });
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].encode(), r#"{"total":2}"#);
        let rows = run(fields(r#"["count(*)"]"#));
        assert_eq!(rows[0].encode(), r#"{"count(*)":4}"#);
        // string form: comma separated
        let rows = run(fields("\"name, status\""));
        assert_eq!(rows[0].encode(), r#"{"name":"EQ-00001","status":"Actif"}"#);
    }

    #[test]
    fn field_errors() {
        let e = build_query(se(), &fields(r#"["name","bogus"]"#)).expect_err("unknown");
        assert_eq!(e, QueryError::UnknownField("bogus".into()));
        let e = build_query(se(), &fields(r#"["name","*"]"#)).expect_err("star mixed");
        assert_eq!(e, QueryError::UnknownField("*".into()));
        assert!(matches!(
            build_query(se(), &fields("[name]")),
            Err(QueryError::Json { .. })
        ));
        assert!(matches!(
            build_query(se(), &fields("[1]")),
            Err(QueryError::InvalidFields(_))
        ));
        assert!(matches!(
            build_query(se(), &fields("5")),
            Err(QueryError::InvalidFields(_))
        ));
        assert!(matches!(
            build_query(se(), &fields(r#"["count(bogus)"]"#)),
            Err(QueryError::UnknownField(_))
        ));
        // link to a DocType that is not simulated
        let c = doctypes::get("Customer").expect("Customer");
        let e = build_query(
            c,
            &ListParams {
                fields: Some(json!(r#"["customer_group.name"]"#)),
                ..ListParams::default()
            },
        )
        .expect_err("not simulated");
        assert_eq!(e, QueryError::DocTypeNotFound("Customer Group".into()));
    }

    #[test]
    fn linked_fields_left_join() {
        let customers = [doc(
            json!({"name": "Jean Tremblay", "customer_name": "Jean Tremblay", "mobile_no": "514-555-0101"}),
        )];
        let q = build_query(
            se(),
            &ListParams {
                fields: Some(json!(
                    r#"["name","customer.mobile_no","customer.customer_name as who"]"#
                )),
                order_by: Some(json!("name asc")),
                ..ListParams::default()
            },
        )
        .expect("query");
        let t = table();
        let lookup = |dt: &'static DocType, name: &str| -> Option<&Doc> {
            assert_eq!(dt.name, "Customer");
            customers
                .iter()
                .find(|d| d.get("name").and_then(Value::as_str) == Some(name))
        };
        let rows = execute(&t, &q, &lookup);
        assert_eq!(
            rows[0].encode(),
            r#"{"name":"EQ-00001","mobile_no":"514-555-0101","who":"Jean Tremblay"}"#
        );
        assert_eq!(
            rows[1].encode(),
            r#"{"name":"EQ-00002","mobile_no":null,"who":null}"#
        );
    }

    #[test]
    fn as_dict_false_gives_lists() {
        let rows = run(ListParams {
            fields: Some(json!(r#"["name","custom_sip_line"]"#)),
            order_by: Some(json!("name asc")),
            as_dict: Some(json!("0")),
            ..ListParams::default()
        });
        assert_eq!(rows[0].encode(), r#"["EQ-00001",1]"#);
    }

    // -- order, paging ------------------------------------------------------------

    #[test]
    fn default_order_is_modified_desc() {
        let got = names_with(json!({"order_by": null}));
        assert_eq!(got, vec!["eq-00003", "EQ-00001", "EQ-00002", "EQ-00004"]);
        let got = names_with(json!({"order_by": ""}));
        assert_eq!(got, vec!["eq-00003", "EQ-00001", "EQ-00002", "EQ-00004"]);
    }

    #[test]
    fn explicit_orders() {
        assert_eq!(
            names_with(json!({"order_by": "name asc"})),
            vec!["EQ-00001", "EQ-00002", "eq-00003", "EQ-00004"]
        );
        assert_eq!(
            names_with(json!({"order_by": "name DESC"})),
            vec!["EQ-00004", "eq-00003", "EQ-00002", "EQ-00001"]
        );
        // numeric sort, then tie-break on a second key
        assert_eq!(
            names_with(json!({"order_by": "custom_wifi_enabled desc, custom_sip_line asc"})),
            vec!["eq-00003", "EQ-00001", "EQ-00004", "EQ-00002"]
        );
        // NULLs first ascending, accents folded
        assert_eq!(
            names_with(json!({"order_by": "customer asc, name asc"})),
            vec!["EQ-00004", "EQ-00002", "EQ-00001", "eq-00003"]
        );
        assert_eq!(
            names_with(json!({"order_by": "`tabService Equipment`.`creation` desc"})),
            vec!["EQ-00004", "eq-00003", "EQ-00002", "EQ-00001"]
        );
        assert_eq!(
            names_with(json!({"order_by": "creation"}))
                .first()
                .map(String::as_str),
            Some("EQ-00001")
        );
    }

    #[test]
    fn order_errors() {
        let p = |o: &str| ListParams {
            order_by: Some(json!(o)),
            ..ListParams::default()
        };
        assert_eq!(
            err(p("bogus desc")),
            QueryError::UnknownField("bogus".into())
        );
        assert!(matches!(
            err(p("name sideways")),
            QueryError::InvalidOrderBy(_)
        ));
        assert!(matches!(
            err(p("(select 1 from x)")),
            QueryError::InvalidOrderBy(_)
        ));
        assert!(matches!(
            err(p("sleep(5)")),
            QueryError::InvalidOrderBy(_) | QueryError::UnknownField(_)
        ));
    }

    #[test]
    fn paging() {
        let p = |start: Value, len: Value| {
            names_with(
                json!({"order_by": "name asc", "limit_start": start, "limit_page_length": len}),
            )
        };
        assert_eq!(p(json!(0), json!(2)), vec!["EQ-00001", "EQ-00002"]);
        assert_eq!(p(json!("2"), json!("2")), vec!["eq-00003", "EQ-00004"]);
        assert_eq!(p(json!(3), json!(10)), vec!["EQ-00004"]);
        assert_eq!(p(json!(10), json!(10)), Vec::<String>::new());
        // 0 / empty / garbage = no limit, and then no offset either
        assert_eq!(p(json!(2), json!(0)).len(), 4);
        assert_eq!(p(json!(2), json!("")).len(), 4);
        assert_eq!(p(json!(0), json!("abc")).len(), 4);
        assert_eq!(p(json!("x"), json!(1)), vec!["EQ-00001"]);
        assert_eq!(p(json!("1.9"), json!("1.2")), vec!["EQ-00002"]);
        let neg = ListParams {
            limit_page_length: Some(json!("-1")),
            ..ListParams::default()
        };
        assert!(matches!(err(neg), QueryError::InvalidLimit(_)));
        // default page length is 20
        let q = build_query(se(), &ListParams::default()).expect("query");
        assert_eq!(q.page_length, 20);
        assert_eq!(q.start, 0);
        assert!(q.as_dict);
    }

    #[test]
    fn count_with_filters() {
        let t = table();
        let f =
            parse_filters(se(), "filters", Some(&json!(r#"{"status":"Actif"}"#))).expect("filters");
        assert_eq!(count(&t, &f), 2);
        assert_eq!(count(&t, &[]), 4);
    }

    #[test]
    fn group_by_is_rejected() {
        let e = err(ListParams {
            group_by: Some(json!("status")),
            ..ListParams::default()
        });
        assert!(matches!(e, QueryError::Unsupported(_)));
    }
}
