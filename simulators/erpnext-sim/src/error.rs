//! Frappe-style error responses.
//!
//! Frappe (v15, `frappe/utils/response.py` `report_error` and `_make_logs_v1`)
//! answers an API error with a JSON body built from `frappe.local.response`:
//!
//! - `exception`: the last line of the Python traceback
//!   (`frappe.exceptions.ValidationError: message`), only when tracebacks are
//!   allowed: the user is a System User and the status is not 404;
//! - `exc_type`: the exception class name, always;
//! - `exc`: a JSON *string* holding a list of traceback strings (same rule
//!   as `exception`);
//! - `_server_messages`: a JSON *string* holding a list of JSON *strings*,
//!   each one a `msgprint` dict (`{"message", "title", "indicator",
//!   "raise_exception", "__frappe_exc_id"}`), present when something was
//!   msgprinted (every `frappe.throw` does);
//! - `_error_message`: set by `frappe.has_permission(..., throw=True)`.

use serde_json::Value;

use crate::query::QueryError;
use crate::util::{J, random_hex};

/// One `msgprint` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub message: String,
    pub title: String,
    pub indicator: Option<&'static str>,
    /// Set for messages printed by `frappe.throw` (adds `raise_exception`
    /// and `__frappe_exc_id`).
    pub raise_exception: bool,
}

impl Msg {
    /// What `frappe.throw(msg)` logs.
    pub fn thrown(message: impl Into<String>) -> Msg {
        Msg {
            message: message.into(),
            title: "Message".into(),
            indicator: Some("red"),
            raise_exception: true,
        }
    }

    /// What a plain `frappe.msgprint(msg)` logs.
    pub fn plain(message: impl Into<String>) -> Msg {
        Msg {
            message: message.into(),
            title: "Message".into(),
            indicator: None,
            raise_exception: false,
        }
    }

    pub fn titled(mut self, title: &str) -> Msg {
        self.title = title.into();
        self
    }

    pub fn indicator(mut self, indicator: &'static str) -> Msg {
        self.indicator = Some(indicator);
        self
    }

    /// The compact JSON of the msgprint dict, in Frappe's key order.
    pub fn encode(&self) -> String {
        let mut kv = vec![
            ("message", J::str(self.message.clone())),
            ("title", J::str(self.title.clone())),
        ];
        if let Some(ind) = self.indicator {
            kv.push(("indicator", J::str(ind)));
        }
        if self.raise_exception {
            kv.push(("raise_exception", J::V(Value::from(1))));
            kv.push(("__frappe_exc_id", J::str(random_hex(56))));
        }
        J::obj(kv).encode()
    }
}

/// `_server_messages`: a JSON string of a list of JSON strings.
pub fn server_messages(msgs: &[Msg]) -> String {
    let inner: Vec<String> = msgs.iter().map(Msg::encode).collect();
    serde_json::to_string(&inner).unwrap_or_else(|_| "[]".into())
}

/// An error answer, Frappe style (boxed: errors travel in `Result`s).
#[derive(Debug, Clone, PartialEq)]
pub struct FrappeError(Box<ErrorInfo>);

impl std::ops::Deref for FrappeError {
    type Target = ErrorInfo;
    fn deref(&self) -> &ErrorInfo {
        &self.0
    }
}

impl std::ops::DerefMut for FrappeError {
    fn deref_mut(&mut self) -> &mut ErrorInfo {
        &mut self.0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ErrorInfo {
    pub status: u16,
    pub exc_type: String,
    /// The last traceback line; `None` when Frappe hides tracebacks (404s,
    /// Guest requests).
    pub exception: Option<String>,
    pub messages: Vec<Msg>,
    pub error_message: Option<String>,
    pub headers: Vec<(String, String)>,
}

fn exc_line(module: &str, exc_type: &str, msg: &str) -> String {
    if msg.is_empty() {
        format!("{module}.{exc_type}")
    } else {
        format!("{module}.{exc_type}: {msg}")
    }
}

/// A short traceback in the shape of Frappe's (the frames are illustrative).
fn fake_traceback(last_line: &str) -> String {
    format!(
        "Traceback (most recent call last):\n  \
         File \"apps/frappe/frappe/app.py\", line 115, in application\n    \
         response = frappe.api.handle(request)\n  \
         File \"apps/frappe/frappe/api/__init__.py\", line 49, in handle\n    \
         data = endpoint(**arguments)\n  \
         File \"<erpnext-sim>\", line 1, in <simulated>\n    \
         raise\n{last_line}\n"
    )
}

impl FrappeError {
    /// `frappe.throw(msg, exc_type)` seen by a System User.
    pub fn throw(status: u16, exc_type: &str, msg: impl Into<String>) -> FrappeError {
        let msg = msg.into();
        FrappeError(Box::new(ErrorInfo {
            status,
            exc_type: exc_type.into(),
            exception: Some(exc_line("frappe.exceptions", exc_type, &msg)),
            messages: vec![Msg::thrown(msg)],
            error_message: None,
            headers: Vec::new(),
        }))
    }

    /// ValidationError (417).
    pub fn validation(msg: impl Into<String>) -> FrappeError {
        FrappeError::throw(417, "ValidationError", msg)
    }

    /// A ValidationError subclass (417), e.g. `LinkValidationError`.
    pub fn validation_sub(exc_type: &str, msg: impl Into<String>) -> FrappeError {
        FrappeError::throw(417, exc_type, msg)
    }

    /// `frappe.DataError` from `raise_invalid_field` (417).
    pub fn invalid_field(field: &str) -> FrappeError {
        FrappeError::throw(
            417,
            "DataError",
            format!("Field not permitted in query: {field}"),
        )
    }

    /// Document not found (404): Frappe hides the traceback for 404s.
    pub fn not_found(doctype: &str, name: &str) -> FrappeError {
        FrappeError::throw(
            404,
            "DoesNotExistError",
            format!("{doctype} {name} not found"),
        )
        .without_traceback()
    }

    /// Unknown DocType (404): `frappe.get_meta` fails to load the DocType.
    pub fn doctype_not_found(doctype: &str) -> FrappeError {
        FrappeError::not_found("DocType", doctype)
    }

    /// No API route matched (404, `raise frappe.DoesNotExistError`).
    pub fn no_route() -> FrappeError {
        FrappeError(Box::new(ErrorInfo {
            status: 404,
            exc_type: "DoesNotExistError".into(),
            exception: None,
            messages: Vec::new(),
            error_message: None,
            headers: Vec::new(),
        }))
    }

    /// Wrong API key or secret (401): the session is still Guest, so only
    /// `exc_type` is sent.
    pub fn auth_failed() -> FrappeError {
        FrappeError(Box::new(ErrorInfo {
            status: 401,
            exc_type: "AuthenticationError".into(),
            exception: None,
            messages: Vec::new(),
            error_message: None,
            headers: Vec::new(),
        }))
    }

    /// Basic auth token that is not valid base64 (`validate_auth_via_api_keys`).
    pub fn bad_base64_token() -> FrappeError {
        FrappeError::throw(
            401,
            "InvalidAuthorizationToken",
            "Failed to decode token, please provide a valid base64-encoded token.",
        )
        .without_traceback()
    }

    /// A Guest hitting a resource endpoint (403): `frappe.has_permission`
    /// with `throw=True` prints the permission log and sets `_error_message`.
    pub fn guest_no_permission(doctype: &str) -> FrappeError {
        FrappeError(Box::new(ErrorInfo {
            status: 403,
            exc_type: "PermissionError".into(),
            exception: None,
            messages: vec![Msg::plain(format!(
                "User <strong>Guest</strong> does not have doctype access via role permission for document <strong>{doctype}</strong>"
            ))],
            error_message: Some(format!("No permission for {doctype}")),
            headers: Vec::new(),
        }))
    }

    /// A Guest calling a whitelisted (non-guest) method (403, `is_whitelisted`).
    pub fn guest_method(method: &str) -> FrappeError {
        FrappeError(Box::new(ErrorInfo {
            status: 403,
            exc_type: "PermissionError".into(),
            exception: None,
            messages: vec![Msg::thrown(format!(
                "<details><summary>You are not permitted to access this resource.</summary>Function <strong>{method}</strong> is not whitelisted.</details>"
            ))
            .titled("Method Not Allowed")],
            error_message: None,
            headers: Vec::new(),
        }))
    }

    /// Insert of an existing name (409): `db_insert` msgprints then raises.
    pub fn duplicate(doctype: &str, name: &str) -> FrappeError {
        FrappeError(Box::new(ErrorInfo {
            status: 409,
            exc_type: "DuplicateEntryError".into(),
            exception: Some(format!(
                "frappe.exceptions.DuplicateEntryError: ('{doctype}', '{name}', IntegrityError(1062, \"Duplicate entry '{name}' for key 'PRIMARY'\"))"
            )),
            messages: vec![
                Msg::plain(format!("{doctype} <strong>{name}</strong> already exists"))
                    .titled("Duplicate Name")
                    .indicator("red"),
            ],
            error_message: None,
            headers: Vec::new(),
        }))
    }

    /// Missing mandatory fields (417, `_validate_mandatory`).
    pub fn mandatory(doctype: &str, name: &str, missing: &[(&str, &str)]) -> FrappeError {
        let fields: Vec<&str> = missing.iter().map(|(f, _)| *f).collect();
        FrappeError(Box::new(ErrorInfo {
            status: 417,
            exc_type: "MandatoryError".into(),
            exception: Some(format!(
                "frappe.exceptions.MandatoryError: [{doctype}, {name}]: {}",
                fields.join(", ")
            )),
            messages: missing
                .iter()
                .map(|(_, label)| {
                    Msg::plain(format!("Error: Value missing for {doctype}: {label}"))
                })
                .collect(),
            error_message: None,
            headers: Vec::new(),
        }))
    }

    /// Stored password missing (401, `get_decrypted_password`).
    pub fn password_not_found(doctype: &str, name: &str, field: &str) -> FrappeError {
        FrappeError::throw(
            401,
            "AuthenticationError",
            format!("Password not found for {doctype} {name} {field}"),
        )
    }

    /// An injected server error (500), shaped like an unhandled database
    /// exception: no msgprint, so no `_server_messages`.
    pub fn injected_internal() -> FrappeError {
        FrappeError(Box::new(ErrorInfo {
            status: 500,
            exc_type: "OperationalError".into(),
            exception: Some(
                "pymysql.err.OperationalError: (2013, 'Lost connection to MySQL server during query')"
                    .into(),
            ),
            messages: Vec::new(),
            error_message: None,
            headers: Vec::new(),
        }))
    }

    /// A real server-side failure of the simulator (e.g. disk full).
    pub fn internal(msg: &str) -> FrappeError {
        FrappeError(Box::new(ErrorInfo {
            status: 500,
            exc_type: "OSError".into(),
            exception: Some(format!("OSError: {msg}")),
            messages: Vec::new(),
            error_message: None,
            headers: Vec::new(),
        }))
    }

    /// Site-wide rate limit (429, `frappe.rate_limiter`): raised before
    /// authentication, so only `exc_type`, plus the limiter's headers.
    pub fn too_many_requests(retry_after_s: u64) -> FrappeError {
        let r = retry_after_s.to_string();
        FrappeError(Box::new(ErrorInfo {
            status: 429,
            exc_type: "TooManyRequestsError".into(),
            exception: None,
            messages: Vec::new(),
            error_message: None,
            headers: vec![
                ("Retry-After".into(), r.clone()),
                ("X-RateLimit-Reset".into(), r),
                ("X-RateLimit-Limit".into(), "600000000".into()),
                ("X-RateLimit-Remaining".into(), "0".into()),
            ],
        }))
    }

    /// A one-line description (for logs and start-up errors).
    pub fn summary(&self) -> String {
        match self.messages.first() {
            Some(m) => format!("{}: {}", self.exc_type, m.message),
            None => match &self.exception {
                Some(e) => e.clone(),
                None => self.exc_type.clone(),
            },
        }
    }

    pub fn without_traceback(mut self) -> FrappeError {
        self.exception = None;
        self
    }

    /// The JSON body, keys in the order Frappe's response dict gets them.
    pub fn body(&self) -> String {
        let mut kv: Vec<(&str, J)> = Vec::new();
        if let Some(exc) = &self.exception {
            kv.push(("exception", J::str(exc.clone())));
        }
        kv.push(("exc_type", J::str(self.exc_type.clone())));
        if let Some(exc) = &self.exception {
            let tb = vec![fake_traceback(exc)];
            kv.push((
                "exc",
                J::str(serde_json::to_string(&tb).unwrap_or_else(|_| "[]".into())),
            ));
        }
        if !self.messages.is_empty() {
            kv.push(("_server_messages", J::str(server_messages(&self.messages))));
        }
        if let Some(m) = &self.error_message {
            kv.push(("_error_message", J::str(m.clone())));
        }
        J::obj(kv).encode()
    }
}

impl From<QueryError> for FrappeError {
    fn from(e: QueryError) -> FrappeError {
        match e {
            QueryError::UnknownField(f) => FrappeError::invalid_field(&f),
            QueryError::DocTypeNotFound(d) => FrappeError::doctype_not_found(&d),
            other => FrappeError::validation(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parse(body: &str) -> serde_json::Map<String, Value> {
        match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(m)) => m,
            other => panic!("not an object: {other:?}"),
        }
    }

    /// Decodes `_server_messages` the way a client must: a JSON string
    /// holding a list of JSON strings, each holding an object.
    fn decode_messages(
        body: &serde_json::Map<String, Value>,
    ) -> Vec<serde_json::Map<String, Value>> {
        let outer = body
            .get("_server_messages")
            .and_then(Value::as_str)
            .expect("_server_messages is a string");
        let list: Vec<String> = serde_json::from_str(outer).expect("a list of strings");
        list.iter()
            .map(|s| match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => m,
                other => panic!("message is not an object: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn validation_error_body_is_double_encoded() {
        let e = FrappeError::validation("Bad \"thing\" é");
        assert_eq!(e.status, 417);
        let body = parse(&e.body());
        assert_eq!(body["exc_type"], "ValidationError");
        assert_eq!(
            body["exception"],
            "frappe.exceptions.ValidationError: Bad \"thing\" é"
        );
        let exc: Vec<String> =
            serde_json::from_str(body["exc"].as_str().expect("exc is a string")).expect("list");
        assert!(exc[0].starts_with("Traceback (most recent call last):"));
        assert!(
            exc[0]
                .trim_end()
                .ends_with("ValidationError: Bad \"thing\" é")
        );
        let msgs = decode_messages(&body);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0]["message"], "Bad \"thing\" é");
        assert_eq!(msgs[0]["title"], "Message");
        assert_eq!(msgs[0]["indicator"], "red");
        assert_eq!(msgs[0]["raise_exception"], 1);
        assert_eq!(msgs[0]["__frappe_exc_id"].as_str().map(str::len), Some(56));
        // Key order like Frappe's response dict.
        let keys: Vec<&String> = body.keys().collect();
        assert_eq!(keys.len(), 4);
        assert!(e.body().starts_with("{\"exception\":"));
    }

    #[test]
    fn not_found_hides_traceback() {
        let e = FrappeError::not_found("Service Equipment", "EQ-9");
        assert_eq!(e.status, 404);
        let body = parse(&e.body());
        assert!(!body.contains_key("exception"));
        assert!(!body.contains_key("exc"));
        assert_eq!(body["exc_type"], "DoesNotExistError");
        assert_eq!(
            decode_messages(&body)[0]["message"],
            "Service Equipment EQ-9 not found"
        );
        let d = parse(&FrappeError::doctype_not_found("Item").body());
        assert_eq!(decode_messages(&d)[0]["message"], "DocType Item not found");
    }

    #[test]
    fn auth_failure_is_bare() {
        let e = FrappeError::auth_failed();
        assert_eq!(e.status, 401);
        assert_eq!(e.body(), r#"{"exc_type":"AuthenticationError"}"#);
    }

    #[test]
    fn guest_permission_error() {
        let e = FrappeError::guest_no_permission("Customer");
        assert_eq!(e.status, 403);
        let body = parse(&e.body());
        assert_eq!(body["exc_type"], "PermissionError");
        assert_eq!(body["_error_message"], "No permission for Customer");
        let m = decode_messages(&body);
        assert!(
            m[0]["message"]
                .as_str()
                .is_some_and(|s| s.contains("Guest"))
        );
        assert!(!m[0].contains_key("raise_exception"));
    }

    #[test]
    fn duplicate_and_mandatory() {
        let e = FrappeError::duplicate("Customer", "Jean Tremblay");
        assert_eq!(e.status, 409);
        let body = parse(&e.body());
        assert_eq!(body["exc_type"], "DuplicateEntryError");
        let m = decode_messages(&body);
        assert_eq!(m[0]["title"], "Duplicate Name");
        assert_eq!(
            m[0]["message"],
            "Customer <strong>Jean Tremblay</strong> already exists"
        );

        let e = FrappeError::mandatory("Customer", "x", &[("customer_name", "Customer Name")]);
        let body = parse(&e.body());
        assert_eq!(body["exc_type"], "MandatoryError");
        assert_eq!(
            body["exception"],
            "frappe.exceptions.MandatoryError: [Customer, x]: customer_name"
        );
        assert_eq!(
            decode_messages(&body)[0]["message"],
            "Error: Value missing for Customer: Customer Name"
        );
    }

    #[test]
    fn rate_limit_and_injected() {
        let e = FrappeError::too_many_requests(7);
        assert_eq!(e.status, 429);
        assert!(e.headers.contains(&("Retry-After".into(), "7".into())));
        assert_eq!(e.body(), r#"{"exc_type":"TooManyRequestsError"}"#);
        let e = FrappeError::injected_internal();
        let body = parse(&e.body());
        assert_eq!(body["exc_type"], "OperationalError");
        assert!(!body.contains_key("_server_messages"));
    }

    #[test]
    fn query_errors_map() {
        let e: FrappeError = QueryError::UnknownField("foo".into()).into();
        assert_eq!(e.status, 417);
        assert_eq!(e.exc_type, "DataError");
        assert_eq!(e.messages[0].message, "Field not permitted in query: foo");
        let e: FrappeError = QueryError::DocTypeNotFound("Item".into()).into();
        assert_eq!(e.status, 404);
        let e: FrappeError = QueryError::Json {
            param: "filters".into(),
            detail: "EOF".into(),
        }
        .into();
        assert_eq!(e.status, 417);
        assert_eq!(e.exc_type, "ValidationError");
        assert!(e.messages[0].message.contains("filters"));
    }
}
