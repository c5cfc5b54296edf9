//! Decoding Frappe's error bodies into short human text.
//!
//! A Frappe error answer is JSON with some of: `exc_type` (the exception
//! class), `exception` (`frappe.exceptions.ValidationError: …`), `exc` (a
//! traceback, ignored), `_error_message`, and `_server_messages`: a JSON
//! **string** holding a list of JSON **strings**, each an object whose
//! `message` is what the user would have seen (often with HTML). Proxies
//! and maintenance mode answer HTML pages instead.

use serde_json::Value;

/// Longest human text kept from an error body, in characters.
pub const MAX_TEXT: usize = 300;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrappeError {
    pub exc_type: Option<String>,
    /// The user-facing messages, HTML stripped, in order.
    pub messages: Vec<String>,
    /// `exception` without its `module.Class: ` prefix.
    pub exception: Option<String>,
    /// Visible text of a non-JSON (HTML or plain) body.
    pub text: Option<String>,
}

impl FrappeError {
    pub fn decode(body: &[u8]) -> FrappeError {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(obj)) => {
                let mut e = FrappeError {
                    exc_type: obj
                        .get("exc_type")
                        .and_then(Value::as_str)
                        .map(clean)
                        .filter(|s| !s.is_empty()),
                    ..FrappeError::default()
                };
                if let Some(Value::String(sm)) = obj.get("_server_messages") {
                    e.messages.extend(server_messages(sm));
                }
                for key in ["_error_message", "message"] {
                    if let Some(Value::String(m)) = obj.get(key) {
                        let m = clean(m);
                        if !m.is_empty() && !e.messages.contains(&m) {
                            e.messages.push(m);
                        }
                    }
                }
                e.exception = obj
                    .get("exception")
                    .and_then(Value::as_str)
                    .map(strip_exception_prefix)
                    .filter(|s| !s.is_empty());
                e
            }
            _ => FrappeError {
                text: Some(page_text(&String::from_utf8_lossy(body))).filter(|s| !s.is_empty()),
                ..FrappeError::default()
            },
        }
    }

    /// True when a message contains `needle` (case-insensitive).
    pub fn mentions(&self, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        self.messages
            .iter()
            .chain(self.exception.iter())
            .any(|m| m.to_lowercase().contains(&needle))
    }

    /// The exception class, or `HTTP <status>` when Frappe named none.
    pub fn exc_type_or_status(&self, status: u16) -> String {
        self.exc_type
            .clone()
            .unwrap_or_else(|| format!("HTTP {status}"))
    }

    /// The best human explanation: the messages, else the exception text,
    /// else the page text; `None` when the body said nothing useful.
    pub fn human(&self) -> Option<String> {
        if !self.messages.is_empty() {
            return Some(truncate(&self.messages.join("; ")));
        }
        self.exception.clone().or_else(|| self.text.clone())
    }
}

/// Decodes `_server_messages`: a JSON string of a list whose items are
/// JSON strings of `{"message": …}` objects (older Frappe: plain strings,
/// or objects directly).
fn server_messages(raw: &str) -> Vec<String> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(raw) else {
        let m = clean(raw);
        return if m.is_empty() { Vec::new() } else { vec![m] };
    };
    items
        .iter()
        .filter_map(|item| {
            let inner = match item {
                Value::String(s) => serde_json::from_str::<Value>(s)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| Value::String(s.clone())),
                other => other.clone(),
            };
            let text = match &inner {
                Value::Object(o) => match o.get("message") {
                    Some(Value::String(m)) => m.clone(),
                    Some(other) if !other.is_null() => other.to_string(),
                    _ => return None,
                },
                Value::String(s) => s.clone(),
                _ => return None,
            };
            Some(clean(&text)).filter(|t| !t.is_empty())
        })
        .collect()
}

/// `frappe.exceptions.ValidationError: Invalid value` → `Invalid value`.
fn strip_exception_prefix(s: &str) -> String {
    let s = s.trim();
    match s.split_once(": ") {
        Some((head, tail))
            if !head.is_empty()
                && head
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_') =>
        {
            clean(tail)
        }
        _ => clean(s),
    }
}

/// The visible text of an HTML page (or a plain-text body), short.
fn page_text(body: &str) -> String {
    let lower = body.to_ascii_lowercase();
    let mut visible = String::with_capacity(body.len().min(4096));
    let mut i = 0;
    // Skip <head>, <script> and <style> content; keep the rest.
    while i < body.len() {
        let rest = &lower[i..];
        let skip_to = rest
            .starts_with('<')
            .then(|| {
                ["head", "script", "style"].iter().find_map(|tag| {
                    let open = format!("<{tag}");
                    if rest.starts_with(&open)
                        && rest[open.len()..]
                            .starts_with(|c: char| c == '>' || c.is_ascii_whitespace())
                    {
                        let close = format!("</{tag}>");
                        Some(
                            rest.find(&close)
                                .map_or(body.len(), |p| i + p + close.len()),
                        )
                    } else {
                        None
                    }
                })
            })
            .flatten();
        if let Some(next) = skip_to {
            visible.push(' ');
            i = next;
            continue;
        }
        let Some(c) = body[i..].chars().next() else {
            break;
        };
        visible.push(c);
        i += c.len_utf8();
    }
    let text = clean(&visible);
    if !text.is_empty() {
        return text;
    }
    // Nothing in the body: fall back to the title.
    match (lower.find("<title>"), lower.find("</title>")) {
        (Some(a), Some(b)) if a + 7 <= b => clean(&body[a + 7..b]),
        _ => String::new(),
    }
}

/// Strips HTML tags, decodes the common entities, collapses whitespace,
/// truncates.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_TEXT * 4));
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            c => out.push(c),
        }
    }
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&");
    let collapsed = decoded.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate(&collapsed)
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_TEXT {
        return s.to_string();
    }
    let mut t: String = s.chars().take(MAX_TEXT - 1).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// How Frappe builds `_server_messages`: each message object is
    /// JSON-encoded, then the list of those strings is JSON-encoded again.
    fn server_messages_field(messages: &[&str]) -> String {
        let inner: Vec<String> = messages
            .iter()
            .map(|m| {
                json!({"message": m, "title": "Message", "indicator": "red",
                       "raise_exception": 1, "__frappe_exc_id": "abc"})
                .to_string()
            })
            .collect();
        serde_json::to_string(&inner).expect("encode")
    }

    #[test]
    fn double_encoded_server_messages() {
        let body = json!({
            "exception": "frappe.exceptions.ValidationError: Status cannot be \"Installé\". It should be one of \"En inventaire\", \"Actif\"",
            "exc_type": "ValidationError",
            "exc": "[\"Traceback (most recent call last): ...\"]",
            "_server_messages": server_messages_field(&[
                "Status cannot be \"Installé\". It should be one of \"En inventaire\", \"Actif\"",
            ]),
        });
        let e = FrappeError::decode(body.to_string().as_bytes());
        assert_eq!(e.exc_type.as_deref(), Some("ValidationError"));
        assert_eq!(
            e.messages,
            vec!["Status cannot be \"Installé\". It should be one of \"En inventaire\", \"Actif\""]
        );
        assert_eq!(
            e.human().as_deref(),
            Some("Status cannot be \"Installé\". It should be one of \"En inventaire\", \"Actif\"")
        );
        assert!(
            e.exception
                .as_deref()
                .is_some_and(|x| x.starts_with("Status cannot"))
        );
    }

    #[test]
    fn several_messages_with_html_are_joined_and_cleaned() {
        let body = json!({
            "exc_type": "DuplicateEntryError",
            "_server_messages": server_messages_field(&[
                "Service Equipment EQ-00001 <strong>name</strong> already exists",
                "Second&nbsp;line<br>with &amp; entity",
            ]),
        });
        let e = FrappeError::decode(body.to_string().as_bytes());
        assert_eq!(
            e.human().as_deref(),
            Some("Service Equipment EQ-00001 name already exists; Second line with & entity")
        );
    }

    #[test]
    fn password_not_found_is_recognised() {
        let body = json!({
            "exc_type": "AuthenticationError",
            "_server_messages": server_messages_field(&[
                "Password not found for Service Equipment EQ-00042 custom_sip_password",
            ]),
        });
        let e = FrappeError::decode(body.to_string().as_bytes());
        assert!(e.mentions("password not found"));
    }

    #[test]
    fn only_exc_type() {
        let e = FrappeError::decode(br#"{"exc_type":"AuthenticationError"}"#);
        assert_eq!(e.exc_type.as_deref(), Some("AuthenticationError"));
        assert!(e.messages.is_empty());
        assert_eq!(e.human(), None);
        assert!(!e.mentions("password not found"));
        assert_eq!(e.exc_type_or_status(401), "AuthenticationError");
    }

    #[test]
    fn not_found_and_permission_bodies() {
        let body = json!({
            "exc_type": "DoesNotExistError",
            "_server_messages": server_messages_field(&["Service Equipment EQ-9 not found"]),
        });
        let e = FrappeError::decode(body.to_string().as_bytes());
        assert_eq!(
            e.human().as_deref(),
            Some("Service Equipment EQ-9 not found")
        );
        let body = json!({
            "exc_type": "PermissionError",
            "_error_message": "No permission for Service Equipment",
        });
        let e = FrappeError::decode(body.to_string().as_bytes());
        assert_eq!(
            e.human().as_deref(),
            Some("No permission for Service Equipment")
        );
    }

    #[test]
    fn unhandled_database_error_uses_the_exception_line() {
        let body = json!({
            "exception": "pymysql.err.OperationalError: (2013, 'Lost connection to MySQL server during query')",
            "exc_type": "OperationalError",
            "exc": "[]",
        });
        let e = FrappeError::decode(body.to_string().as_bytes());
        assert_eq!(
            e.human().as_deref(),
            Some("(2013, 'Lost connection to MySQL server during query')")
        );
    }

    #[test]
    fn html_502_page() {
        let body = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n";
        let e = FrappeError::decode(body);
        assert_eq!(e.exc_type, None);
        assert_eq!(e.human().as_deref(), Some("502 Bad Gateway nginx/1.24.0"));
        assert_eq!(e.exc_type_or_status(502), "HTTP 502");
    }

    #[test]
    fn frappe_maintenance_page_and_title_fallback() {
        let body = b"<!DOCTYPE html>\n<html><head><title>Updating</title><style>p{x:1}</style></head><body><h1>Updating</h1><p>The system is being updated. Please refresh again after a few moments.</p><script>var a = '<b>';</script></body></html>\n";
        let e = FrappeError::decode(body);
        assert_eq!(
            e.human().as_deref(),
            Some("Updating The system is being updated. Please refresh again after a few moments.")
        );
        let e = FrappeError::decode(b"<html><head><title>Oops</title></head><body></body></html>");
        assert_eq!(e.human().as_deref(), Some("Oops"));
    }

    #[test]
    fn garbage_empty_and_odd_shapes() {
        assert_eq!(FrappeError::decode(b"").human(), None);
        assert_eq!(
            FrappeError::decode(b"[1,2]").human().as_deref(),
            Some("[1,2]")
        );
        // `_server_messages` that is not double-encoded is taken as text.
        let e = FrappeError::decode(br#"{"_server_messages": "plain words"}"#);
        assert_eq!(e.messages, vec!["plain words"]);
        // List items that are plain strings or objects.
        let e = FrappeError::decode(
            json!({"_server_messages": "[\"just text\", {\"message\": \"an object\"}]"})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(e.messages, vec!["just text", "an object"]);
        // Invalid UTF-8 does not panic.
        let _ = FrappeError::decode(&[0xff, 0xfe, b'<', b'p', b'>']);
    }

    #[test]
    fn long_text_is_truncated_on_a_char_boundary() {
        let long = "é".repeat(1000);
        let t = clean(&long);
        assert_eq!(t.chars().count(), MAX_TEXT);
        assert!(t.ends_with('…'));
    }
}
