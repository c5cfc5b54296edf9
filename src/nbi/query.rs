//! The MongoDB query subset GenieACS's NBI clients send, evaluated over
//! JSON documents (pure: no store, no I/O).
//!
//! Supported: field equality (a tag equality matches a member of the
//! `_tags` array, as MongoDB matches array members), `$eq $ne $in $nin
//! $gt $gte $lt $lte $exists $regex` (with `$options: "i"`), `$not` on a
//! field, and `$and $or $nor`. Dates compare as instants whether given as
//! ISO-8601 strings, `{"$date": …}` or numbers of milliseconds. A
//! parameter path without a trailing `._value` compares its value, as
//! GenieACS's query expansion does. Anything else is refused with an error
//! naming it: a silently ignored condition would select the wrong devices.

use std::cmp::Ordering;

use serde_json::{Map, Value};
use thiserror::Error;

use super::regex::{Regex, RegexError};

/// Deepest nesting of `$and`/`$or`/`$nor`/`$not` accepted.
const MAX_DEPTH: usize = 16;

/// Why a query (or sort) was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("{what} is not valid JSON: {reason}")]
    Json { what: &'static str, reason: String },
    #[error("unsupported operator `{0}`")]
    Unsupported(String),
    #[error("{op}: {message}")]
    Invalid { op: String, message: String },
    #[error(transparent)]
    Regex(#[from] RegexError),
    #[error("the query nests more than {MAX_DEPTH} levels")]
    TooDeep,
}

fn invalid(op: &str, message: impl Into<String>) -> QueryError {
    QueryError::Invalid {
        op: op.to_owned(),
        message: message.into(),
    }
}

/// A value a condition compares with.
#[derive(Clone, Debug, PartialEq)]
enum Operand {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    /// Unix milliseconds.
    Date(i64),
    /// An array or object: compared whole.
    Json(Value),
}

#[derive(Clone, Debug, PartialEq)]
enum Cond {
    Eq(Operand),
    Ne(Operand),
    In(Vec<Operand>),
    Nin(Vec<Operand>),
    Cmp(Ordering, bool, Operand),
    Exists(bool),
    Regex(Regex),
    Not(Box<Cond>),
    All(Vec<Cond>),
}

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter(Expr);

#[derive(Clone, Debug, PartialEq)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Nor(Vec<Expr>),
    Field(String, Cond),
}

/// Parses the `query` parameter (absent or empty: everything).
pub fn parse(text: &str) -> Result<Filter, QueryError> {
    if text.trim().is_empty() {
        return Ok(Filter(Expr::And(Vec::new())));
    }
    let v: Value = serde_json::from_str(text).map_err(|e| QueryError::Json {
        what: "query",
        reason: e.to_string(),
    })?;
    parse_value(&v)
}

/// Parses a query already decoded from JSON.
pub fn parse_value(v: &Value) -> Result<Filter, QueryError> {
    filter(v, 0).map(Filter)
}

fn filter(v: &Value, depth: usize) -> Result<Expr, QueryError> {
    if depth > MAX_DEPTH {
        return Err(QueryError::TooDeep);
    }
    let Some(obj) = v.as_object() else {
        return Err(invalid(
            "query",
            "must be a JSON object such as {\"_id\": \"…\"}",
        ));
    };
    let mut all = Vec::with_capacity(obj.len());
    for (k, val) in obj {
        match k.as_str() {
            "$and" | "$or" | "$nor" => {
                let Some(items) = val.as_array().filter(|a| !a.is_empty()) else {
                    return Err(invalid(k, "must be a non-empty array of queries"));
                };
                let subs = items
                    .iter()
                    .map(|i| filter(i, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                all.push(match k.as_str() {
                    "$and" => Expr::And(subs),
                    "$or" => Expr::Or(subs),
                    _ => Expr::Nor(subs),
                });
            }
            "$not" => {
                return Err(invalid(
                    "$not",
                    "applies to a field, e.g. {\"_tags\": {\"$not\": {\"$eq\": \"x\"}}}; use $nor for a whole query",
                ));
            }
            op if op.starts_with('$') => return Err(QueryError::Unsupported(op.to_owned())),
            "" => return Err(invalid("query", "a field name is empty")),
            field => all.push(Expr::Field(field.to_owned(), condition(val, depth)?)),
        }
    }
    Ok(if all.len() == 1 {
        all.pop().unwrap_or(Expr::And(Vec::new()))
    } else {
        Expr::And(all)
    })
}

fn is_operator_object(m: &Map<String, Value>) -> bool {
    !m.is_empty() && m.keys().all(|k| k.starts_with('$')) && !is_date_object(m)
}

fn is_date_object(m: &Map<String, Value>) -> bool {
    m.len() == 1 && m.contains_key("$date")
}

fn condition(v: &Value, depth: usize) -> Result<Cond, QueryError> {
    match v {
        Value::Object(m) if is_operator_object(m) => operators(m, depth),
        Value::Object(m) if m.keys().any(|k| k.starts_with('$')) && !is_date_object(m) => Err(
            invalid("query", "an object mixes $operators and field names"),
        ),
        v => Ok(Cond::Eq(operand("$eq", v)?)),
    }
}

fn operators(m: &Map<String, Value>, depth: usize) -> Result<Cond, QueryError> {
    if depth > MAX_DEPTH {
        return Err(QueryError::TooDeep);
    }
    let mut conds = Vec::with_capacity(m.len());
    let options = match m.get("$options") {
        None => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(invalid("$options", "must be a string such as \"i\"")),
    };
    for (op, val) in m {
        let cond = match op.as_str() {
            "$eq" => Cond::Eq(operand(op, val)?),
            "$ne" => Cond::Ne(operand(op, val)?),
            "$in" | "$nin" => {
                let Some(items) = val.as_array() else {
                    return Err(invalid(op, "must be an array"));
                };
                let items = items
                    .iter()
                    .map(|i| operand(op, i))
                    .collect::<Result<Vec<_>, _>>()?;
                if op == "$in" {
                    Cond::In(items)
                } else {
                    Cond::Nin(items)
                }
            }
            "$gt" => Cond::Cmp(Ordering::Greater, false, operand(op, val)?),
            "$gte" => Cond::Cmp(Ordering::Greater, true, operand(op, val)?),
            "$lt" => Cond::Cmp(Ordering::Less, false, operand(op, val)?),
            "$lte" => Cond::Cmp(Ordering::Less, true, operand(op, val)?),
            "$exists" => Cond::Exists(match val {
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                _ => return Err(invalid(op, "must be true or false")),
            }),
            "$regex" => {
                let Some(pattern) = val.as_str() else {
                    return Err(invalid(op, "must be a string pattern"));
                };
                Cond::Regex(Regex::new(pattern, options)?)
            }
            "$options" => {
                if !m.contains_key("$regex") {
                    return Err(invalid(op, "is only meaningful with $regex"));
                }
                continue;
            }
            "$not" => match val {
                Value::Object(inner) if is_operator_object(inner) => {
                    Cond::Not(Box::new(operators(inner, depth + 1)?))
                }
                _ => {
                    return Err(invalid(
                        op,
                        "must be an object of operators such as {\"$eq\": 1}",
                    ));
                }
            },
            other => return Err(QueryError::Unsupported(other.to_owned())),
        };
        conds.push(cond);
    }
    Ok(if conds.len() == 1 {
        conds.pop().unwrap_or(Cond::All(Vec::new()))
    } else {
        Cond::All(conds)
    })
}

/// Unix milliseconds of an ISO-8601 instant.
fn iso_ms(s: &str) -> Option<i64> {
    let t = crate::cwmp::parse_datetime(s)?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

fn operand(op: &str, v: &Value) -> Result<Operand, QueryError> {
    Ok(match v {
        Value::Null => Operand::Null,
        Value::Bool(b) => Operand::Bool(*b),
        Value::Number(n) => Operand::Num(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Operand::Str(s.clone()),
        Value::Object(m) if is_date_object(m) => match m.get("$date") {
            Some(Value::String(s)) => Operand::Date(
                iso_ms(s).ok_or_else(|| invalid(op, "$date is not an ISO-8601 date"))?,
            ),
            Some(Value::Number(n)) => Operand::Date(
                n.as_i64()
                    .ok_or_else(|| invalid(op, "$date must be whole milliseconds"))?,
            ),
            _ => {
                return Err(invalid(
                    op,
                    "$date must be an ISO-8601 string or milliseconds",
                ));
            }
        },
        Value::Object(m) if m.keys().any(|k| k.starts_with('$')) => {
            let k = m
                .keys()
                .find(|k| k.starts_with('$'))
                .map_or("", |k| k.as_str());
            return Err(QueryError::Unsupported(k.to_owned()));
        }
        other => Operand::Json(other.clone()),
    })
}

/// The value at a dotted path; a parameter node (an object with `_value`)
/// named by a path whose last segment is not an attribute (`_…`) stands
/// for its value.
pub fn resolve<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = doc;
    for seg in path.split('.') {
        node = node.as_object()?.get(seg)?;
    }
    let last = path.rsplit('.').next().unwrap_or("");
    if !last.starts_with('_') {
        if let Some(v) = node.as_object().and_then(|o| o.get("_value")) {
            return Some(v);
        }
    }
    Some(node)
}

/// How a stored value compares with an operand, when they are comparable.
fn compare(doc: &Value, op: &Operand) -> Option<Ordering> {
    match (doc, op) {
        (Value::Null, Operand::Null) => Some(Ordering::Equal),
        (Value::Bool(a), Operand::Bool(b)) => Some(a.cmp(b)),
        (Value::Number(a), Operand::Num(b)) => a.as_f64()?.partial_cmp(b),
        (Value::Number(a), Operand::Date(b)) => a.as_f64()?.partial_cmp(&(*b as f64)),
        (Value::String(a), Operand::Date(b)) => Some(iso_ms(a)?.cmp(b)),
        (Value::String(a), Operand::Num(b)) => (iso_ms(a)? as f64).partial_cmp(b),
        (Value::String(a), Operand::Str(b)) => match (iso_ms(a), iso_ms(b)) {
            // Instants written with different precision or zones.
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => Some(a.as_str().cmp(b.as_str())),
        },
        (v, Operand::Json(j)) => (v == j).then_some(Ordering::Equal),
        _ => None,
    }
}

fn equals(doc: Option<&Value>, op: &Operand) -> bool {
    match doc {
        None => *op == Operand::Null,
        Some(Value::Array(items)) => {
            matches!(op, Operand::Json(j) if j == &Value::Array(items.clone()))
                || items
                    .iter()
                    .any(|i| compare(i, op) == Some(Ordering::Equal))
        }
        Some(v) => compare(v, op) == Some(Ordering::Equal),
    }
}

/// Scalars of a value: its members for an array, else itself.
fn scalars(v: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match v {
        Value::Array(items) => Box::new(items.iter()),
        v => Box::new(std::iter::once(v)),
    }
}

impl Cond {
    fn matches(&self, doc: Option<&Value>) -> bool {
        match self {
            Cond::Eq(op) => equals(doc, op),
            Cond::Ne(op) => !equals(doc, op),
            Cond::In(ops) => ops.iter().any(|op| equals(doc, op)),
            Cond::Nin(ops) => !ops.iter().any(|op| equals(doc, op)),
            Cond::Cmp(dir, or_equal, op) => doc.is_some_and(|v| {
                scalars(v).any(|s| match compare(s, op) {
                    Some(Ordering::Equal) => *or_equal,
                    Some(o) => o == *dir,
                    None => false,
                })
            }),
            Cond::Exists(want) => doc.is_some() == *want,
            Cond::Regex(r) => {
                doc.is_some_and(|v| scalars(v).any(|s| s.as_str().is_some_and(|t| r.is_match(t))))
            }
            Cond::Not(c) => !c.matches(doc),
            Cond::All(cs) => cs.iter().all(|c| c.matches(doc)),
        }
    }
}

impl Filter {
    /// Whether a document satisfies the query.
    pub fn matches(&self, doc: &Value) -> bool {
        self.0.matches(doc)
    }

    /// Every field path the query looks at.
    pub fn paths(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.0.collect_paths(&mut out);
        out
    }
}

impl Expr {
    fn matches(&self, doc: &Value) -> bool {
        match self {
            Expr::And(fs) => fs.iter().all(|f| f.matches(doc)),
            Expr::Or(fs) => fs.iter().any(|f| f.matches(doc)),
            Expr::Nor(fs) => !fs.iter().any(|f| f.matches(doc)),
            Expr::Field(path, cond) => cond.matches(resolve(doc, path)),
        }
    }

    fn collect_paths<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::And(fs) | Expr::Or(fs) | Expr::Nor(fs) => {
                fs.iter().for_each(|f| f.collect_paths(out))
            }
            Expr::Field(p, _) => out.push(p),
        }
    }
}

/// A `sort` parameter: `{"_lastInform": -1, "_id": 1}` as `(path,
/// ascending)` in order.
pub fn parse_sort(text: &str) -> Result<Vec<(String, bool)>, QueryError> {
    let v: Value = serde_json::from_str(text).map_err(|e| QueryError::Json {
        what: "sort",
        reason: e.to_string(),
    })?;
    let Some(obj) = v.as_object() else {
        return Err(invalid(
            "sort",
            "must be a JSON object such as {\"_lastInform\": -1}",
        ));
    };
    obj.iter()
        .map(|(k, dir)| match dir.as_i64() {
            Some(1) => Ok((k.clone(), true)),
            Some(-1) => Ok((k.clone(), false)),
            _ => Err(invalid("sort", format!("`{k}` must be 1 or -1"))),
        })
        .collect()
}

/// MongoDB's order of types: missing and null, numbers, strings, objects,
/// arrays, booleans.
fn rank(v: Option<&Value>) -> u8 {
    match v {
        None | Some(Value::Null) => 0,
        Some(Value::Number(_)) => 1,
        Some(Value::String(_)) => 2,
        Some(Value::Object(_)) => 3,
        Some(Value::Array(_)) => 4,
        Some(Value::Bool(_)) => 5,
    }
}

fn order(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => match (iso_ms(x), iso_ms(y)) {
            (Some(p), Some(q)) => p.cmp(&q),
            _ => x.cmp(y),
        },
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Orders two documents by a parsed sort.
pub fn compare_docs(a: &Value, b: &Value, sort: &[(String, bool)]) -> Ordering {
    for (path, asc) in sort {
        let o = order(resolve(a, path), resolve(b, path));
        let o = if *asc { o } else { o.reverse() };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "_id": "00259E-HG8245H-4857%2D5443",
            "_deviceId": {"_Manufacturer": "Huawei", "_OUI": "00259E", "_ProductClass": "HG8245H", "_SerialNumber": "4857-5443"},
            "_lastInform": "2026-03-01T10:00:00.000Z",
            "_tags": ["lab", "fibre"],
            "InternetGatewayDevice": {
                "_object": true,
                "DeviceInfo": {
                    "_object": true,
                    "SoftwareVersion": {"_value": "V3R017", "_type": "xsd:string", "_object": false},
                    "UpTime": {"_value": 3600, "_type": "xsd:unsignedInt", "_object": false}
                }
            }
        })
    }

    fn q(text: &str) -> bool {
        parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .matches(&doc())
    }

    #[test]
    fn fields_operators_and_logic() {
        assert!(q(r#"{"_id": "00259E-HG8245H-4857%2D5443"}"#));
        assert!(!q(r#"{"_id": "other"}"#));
        assert!(q(r#"{"_deviceId._SerialNumber": "4857-5443"}"#));
        assert!(q(r#"{"_tags": "lab"}"#));
        assert!(!q(r#"{"_tags": "prod"}"#));
        assert!(q(r#"{"_tags": {"$ne": "prod"}}"#));
        assert!(!q(r#"{"_tags": {"$ne": "lab"}}"#));
        assert!(q(r#"{"_tags": {"$in": ["prod", "fibre"]}}"#));
        assert!(q(r#"{"_tags": {"$nin": ["prod"]}}"#));
        assert!(q(r#"{"_lastInform": {"$lt": "2026-03-02T00:00:00Z"}}"#));
        assert!(q(
            r#"{"_lastInform": {"$gte": {"$date": "2026-03-01T10:00:00Z"}}}"#
        ));
        assert!(q(r#"{"_lastInform": {"$gt": 1700000000000}}"#));
        assert!(!q(r#"{"_lastInform": {"$gt": 1900000000000}}"#));
        assert!(q(
            r#"{"_lastInform": {"$date": "2026-03-01T11:00:00+01:00"}}"#
        ));
        assert!(q(
            r#"{"InternetGatewayDevice.DeviceInfo.SoftwareVersion._value": "V3R017"}"#
        ));
        assert!(q(
            r#"{"InternetGatewayDevice.DeviceInfo.SoftwareVersion": "V3R017"}"#
        ));
        assert!(q(
            r#"{"InternetGatewayDevice.DeviceInfo.UpTime": {"$gt": 60, "$lte": 3600}}"#
        ));
        assert!(q(
            r#"{"InternetGatewayDevice.DeviceInfo.SoftwareVersion": {"$regex": "^v3", "$options": "i"}}"#
        ));
        assert!(!q(
            r#"{"InternetGatewayDevice.DeviceInfo.SoftwareVersion": {"$regex": "^v3"}}"#
        ));
        assert!(q(
            r#"{"_deviceId._ProductClass": {"$not": {"$regex": "^ZTE"}}}"#
        ));
        assert!(q(
            r#"{"_tags": {"$exists": true}, "Device": {"$exists": false}}"#
        ));
        assert!(q(r#"{"$or": [{"_id": "x"}, {"_tags": "fibre"}]}"#));
        assert!(q(
            r#"{"$and": [{"_tags": "lab"}, {"_deviceId._OUI": "00259E"}]}"#
        ));
        assert!(!q(r#"{"$nor": [{"_tags": "lab"}]}"#));
        assert!(q(r#"{"missing": null}"#));
        assert!(q("{}") && q(""));
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        for (text, what) in [
            ("{", "query is not valid JSON"),
            ("[1]", "must be a JSON object"),
            (
                r#"{"_id": {"$where": "1"}}"#,
                "unsupported operator `$where`",
            ),
            (
                r#"{"$text": {"$search": "x"}}"#,
                "unsupported operator `$text`",
            ),
            (r#"{"_tags": {"$in": "x"}}"#, "$in: must be an array"),
            (r#"{"$or": []}"#, "$or: must be a non-empty array"),
            (r#"{"_id": {"$options": "i"}}"#, "$options"),
            (r#"{"_id": {"$regex": "a{2}"}}"#, "counted repetition"),
            (r#"{"_id": {"$regex": "a", "$options": "x"}}"#, "`x`"),
            (r#"{"_id": {"$eq": 1, "x": 2}}"#, "mixes"),
            (r#"{"$not": {"_id": 1}}"#, "$not"),
            (
                r#"{"_lastInform": {"$lt": {"$date": "yesterday"}}}"#,
                "ISO-8601",
            ),
            (r#"{"_id": {"$exists": "yes"}}"#, "$exists"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(what), "{text}: {e}");
        }
        let deep = format!("{}{{}}{}", r#"{"$and": ["#.repeat(40), "]}".repeat(40));
        assert_eq!(parse(&deep).unwrap_err(), QueryError::TooDeep);
    }

    #[test]
    fn sorting() {
        let a = json!({"_id": "a", "_lastInform": "2026-01-01T00:00:00Z", "X": {"_value": 2}});
        let b = json!({"_id": "b", "_lastInform": "2026-01-01T00:00:01.000Z", "X": {"_value": 10}});
        let s = parse_sort(r#"{"_lastInform": -1}"#).unwrap();
        assert_eq!(compare_docs(&a, &b, &s), Ordering::Greater);
        let s = parse_sort(r#"{"X": 1}"#).unwrap();
        assert_eq!(compare_docs(&a, &b, &s), Ordering::Less);
        assert!(parse_sort(r#"{"X": 2}"#).is_err());
        assert!(parse_sort("nope").is_err());
    }

    fn tagged(id: &str, tags: &[String], ms: i64) -> Value {
        let iso = crate::api::rfc3339(u64::try_from(ms).unwrap_or(0));
        let mut d = json!({"_id": id, "_lastInform": iso});
        if !tags.is_empty() {
            d["_tags"] = json!(tags);
        }
        d
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn conditions_agree_with_their_meaning(
            id in "[A-Z0-9-]{1,12}",
            other in "[A-Z0-9-]{1,12}",
            tags in proptest::collection::vec("[a-z]{1,4}", 0..4),
            probe in "[a-z]{1,4}",
            secs in 1_600_000_000i64..1_900_000_000,
            pivot in 1_600_000_000i64..1_900_000_000,
        ) {
            let ms = secs * 1000;
            let d = tagged(&id, &tags, ms);
            let m = |text: String| parse(&text).unwrap().matches(&d);
            prop_assert_eq!(m(json!({"_id": other}).to_string()), id == other);
            let own = json!({"_id": id}).to_string();
            prop_assert!(m(own), "a document matches its own id");
            let has = tags.contains(&probe);
            prop_assert_eq!(m(json!({"_tags": probe}).to_string()), has);
            prop_assert_eq!(m(json!({"_tags": {"$ne": probe}}).to_string()), !has);
            prop_assert_eq!(m(json!({"_tags": {"$exists": true}}).to_string()), !tags.is_empty());
            let pivot_ms = pivot * 1000;
            let iso = crate::api::rfc3339(u64::try_from(pivot_ms).unwrap_or(0));
            prop_assert_eq!(m(json!({"_lastInform": {"$lt": pivot_ms}}).to_string()), ms < pivot_ms);
            prop_assert_eq!(m(json!({"_lastInform": {"$lt": iso}}).to_string()), ms < pivot_ms);
            prop_assert_eq!(m(json!({"_lastInform": {"$gte": {"$date": pivot_ms}}}).to_string()), ms >= pivot_ms);
            // Logic: $nor is not-or, $and is and, $or is or.
            let a = json!({"_tags": probe});
            let b = json!({"_lastInform": {"$lt": pivot_ms}});
            let (x, y) = (m(a.to_string()), m(b.to_string()));
            prop_assert_eq!(m(json!({"$and": [a, b]}).to_string()), x && y);
            prop_assert_eq!(m(json!({"$or": [a, b]}).to_string()), x || y);
            prop_assert_eq!(m(json!({"$nor": [a, b]}).to_string()), !(x || y));
            prop_assert_eq!(m(json!({"_tags": {"$not": {"$eq": probe}}}).to_string()), !has);
        }
    }
}
