//! End-to-end tests: the real `erpnext-sim` binary on 127.0.0.1:0, driven
//! over real HTTP with a tiny std-only client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Map, Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_erpnext-sim");
const AUTH: (&str, &str) = ("Authorization", "token acs-key:acs-secret");

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo.json")
}

/// A running simulator, killed on drop.
struct Sim {
    child: Child,
    addr: String,
}

struct Resp {
    /// 0 when the connection was closed without a response.
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Percent-encodes a query or path component.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Sim {
    fn start(args: &[&str]) -> Sim {
        let mut child = Command::new(BIN)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--api-key",
                "acs-key",
                "--api-secret",
                "acs-secret",
            ])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn erpnext-sim");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listen line");
        let addr = line
            .trim()
            .strip_prefix("erpnext-sim listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Sim { child, addr }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let body = body.unwrap_or("");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).expect("write");
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return Resp {
                status: 0,
                headers: Vec::new(),
                body: text,
            };
        };
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .expect("status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Resp {
            status,
            headers,
            body: body.to_string(),
        }
    }

    fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[AUTH], None)
    }

    fn send_json(&self, method: &str, path: &str, body: &Value) -> Resp {
        self.request(
            method,
            path,
            &[AUTH, ("Content-Type", "application/json")],
            Some(&body.to_string()),
        )
    }

    fn list(&self, doctype: &str, params: &[(&str, &str)]) -> Resp {
        self.get(&format!("/api/resource/{}?{}", enc(doctype), query(params)))
    }

    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let b = body.map(|v| v.to_string());
        let r = self.request(
            method,
            path,
            &[("Content-Type", "application/json")],
            b.as_deref(),
        );
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
        r.json()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn names(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"]
        .as_array()
        .expect("data is a list")
        .iter()
        .map(|row| row["name"].as_str().expect("name").to_string())
        .collect()
}

/// Decodes `_server_messages`: a JSON string of a list of JSON strings.
fn server_messages(body: &Value) -> Vec<Map<String, Value>> {
    let outer = body["_server_messages"]
        .as_str()
        .expect("_server_messages is a string");
    let list: Vec<String> = serde_json::from_str(outer).expect("list of strings");
    list.iter()
        .map(|s| match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => m,
            other => panic!("not a message object: {other:?}"),
        })
        .collect()
}

fn demo() -> Sim {
    let f = fixture_path();
    Sim::start(&["--fixture", f.to_str().expect("utf-8 path")])
}

// ---------------------------------------------------------------------------

#[test]
fn list_defaults_paging_and_order() {
    let sim = demo();
    // default: 20 rows, only `name`, newest `modified` first
    let r = sim.list("Service Equipment", &[]);
    let rows = r.json()["data"].as_array().cloned().expect("list");
    assert_eq!(rows.len(), 20);
    assert_eq!(rows[0].as_object().map(Map::len), Some(1));
    let all = names(&sim.list(
        "Service Equipment",
        &[
            ("limit_page_length", "0"),
            ("fields", r#"["name","modified"]"#),
        ],
    ));
    assert_eq!(all.len(), 45);
    assert_eq!(names(&r), all[..20].to_vec());
    let mods: Vec<String> = sim
        .list(
            "Service Equipment",
            &[("limit_page_length", "0"), ("fields", r#"["modified"]"#)],
        )
        .json()["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|r| r["modified"].as_str().expect("modified").to_string())
        .collect();
    assert!(mods.windows(2).all(|w| w[0] >= w[1]), "modified desc");

    // paging and the `limit` alias
    let page2 = names(&sim.list(
        "Service Equipment",
        &[
            ("order_by", "name asc"),
            ("limit_start", "5"),
            ("limit_page_length", "3"),
        ],
    ));
    assert_eq!(page2, vec!["EQ-00006", "EQ-00007", "EQ-00008"]);
    assert_eq!(names(&sim.list("Customer", &[("limit", "5")])).len(), 5);
    // /api/v1 is the same API
    let v1 = sim.get("/api/v1/resource/Customer?limit_page_length=0");
    assert_eq!(names(&v1).len(), 20);
}

#[test]
fn list_filters_fields_and_errors() {
    let sim = demo();
    let se = "Service Equipment";
    // 3-element, case-insensitive like, MAC in any stored format
    let r = sim.list(
        se,
        &[
            (
                "filters",
                r#"[["mac_address","like","%e4%fa%c4%ba%5d%3f%"]]"#,
            ),
            ("order_by", "name asc"),
        ],
    );
    assert_eq!(names(&r), vec!["EQ-00011", "EQ-00044"]);
    // 4-element with equality
    let r = sim.list(
        se,
        &[(
            "filters",
            r#"[["Service Equipment","serial_number","=","rcmg1a2b3c4d"]]"#,
        )],
    );
    assert_eq!(names(&r), vec!["EQ-00001"]);
    // dict filters, with an operator
    let r = sim.list(
        se,
        &[
            (
                "filters",
                r#"{"equipment_type":"ONT","custom_gpon_serial":["like","TPLG%"]}"#,
            ),
            ("limit_page_length", "0"),
        ],
    );
    assert_eq!(names(&r).len(), 9);
    // in with a comma-separated string, and `is set`
    let r = sim.list(
        se,
        &[(
            "filters",
            r#"[["name","in","EQ-00001, eq-00002,EQ-99999"],["mac_address","is","set"]]"#,
        )],
    );
    assert_eq!(names(&r), vec!["EQ-00002"]);
    // or_filters ANDed with filters
    let r = sim.list(
        se,
        &[
            ("filters", r#"[["customer","=","Jean Tremblay"]]"#),
            (
                "or_filters",
                r#"[["equipment_type","=","ONT"],["custom_wifi_ssid","like","%tremblay"]]"#,
            ),
            ("order_by", "name asc"),
        ],
    );
    assert_eq!(names(&r), vec!["EQ-00001", "EQ-00002"]);
    // the ambiguous ONT: the same GPON serial in ASCII and hex form
    let r = sim.list(
        se,
        &[
            ("or_filters", r#"[["serial_number","=","TPLG5EE2A149"],["serial_number","=","54504C475EE2A149"]]"#),
            ("order_by", "name asc"),
        ],
    );
    assert_eq!(names(&r).len(), 2);

    // fields: ["*"] has every column, passwords masked, nulls kept
    let r = sim.list(
        se,
        &[
            ("fields", r#"["*"]"#),
            ("filters", r#"{"name":"EQ-00002"}"#),
        ],
    );
    let row = &r.json()["data"][0];
    assert_eq!(row["custom_wifi_password"], "************");
    assert_eq!(row["custom_wifi_ssid"], "Gigafibre-Tremblay");
    assert!(row.get("custom_sip_password").is_some_and(Value::is_null));
    assert_eq!(row["docstatus"], 0);
    // link fields
    let r = sim.list(
        se,
        &[
            ("fields", r#"["name","customer.mobile_no as phone"]"#),
            ("filters", r#"{"name":"EQ-00001"}"#),
        ],
    );
    assert_eq!(r.json()["data"][0]["phone"], "450-555-1007");

    // errors: 417 Frappe-style, never a 500
    let r = sim.list(se, &[("filters", r#"[["colour","=","red"]]"#)]);
    assert_eq!(r.status, 417);
    let body = r.json();
    assert_eq!(body["exc_type"], "DataError");
    assert_eq!(
        body["exception"],
        "frappe.exceptions.DataError: Field not permitted in query: colour"
    );
    assert!(
        body["exc"]
            .as_str()
            .is_some_and(|s| s.starts_with("[\"Traceback"))
    );
    let msgs = server_messages(&body);
    assert_eq!(msgs[0]["message"], "Field not permitted in query: colour");
    assert_eq!(msgs[0]["indicator"], "red");

    for bad in [
        "[[\"status\",\"=\"",
        "status=Actif",
        "[[\"status\",\"~\",\"x\"]]",
        "[[\"status\",\"=\"]]",
    ] {
        let r = sim.list(se, &[("filters", bad)]);
        assert_eq!(r.status, 417, "{bad}: {}", r.body);
        assert_eq!(r.json()["exc_type"], "ValidationError", "{bad}");
    }
    let r = sim.list(se, &[("fields", r#"["name","bogus"]"#)]);
    assert_eq!(
        (r.status, r.json()["exc_type"].clone()),
        (417, json!("DataError"))
    );
    let r = sim.list(se, &[("order_by", "bogus desc")]);
    assert_eq!(r.status, 417);
    let r = sim.list(se, &[("limit_page_length", "-1")]);
    assert_eq!(r.status, 417);
    // unknown DocType
    let r = sim.list("Item", &[]);
    assert_eq!(r.status, 404);
    let body = r.json();
    assert_eq!(body["exc_type"], "DoesNotExistError");
    assert_eq!(
        server_messages(&body)[0]["message"],
        "DocType Item not found"
    );
    // an unknown route under /api
    assert_eq!(sim.get("/api/nothing/here").status, 404);
}

#[test]
fn single_documents_and_encoded_names() {
    let sim = demo();
    let r = sim.get("/api/resource/Service%20Equipment/EQ-00002");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let d = r.json()["data"].clone();
    assert_eq!(d["name"], "EQ-00002");
    assert_eq!(d["doctype"], "Service Equipment");
    assert_eq!(d["custom_wifi_password"], "************");
    // null fields are omitted, not null
    assert!(d.get("custom_sip_password").is_none());
    assert!(d.get("custom_wifi_ssid_5g").is_none());
    assert!(!r.body.contains("null"));
    // names with spaces and accents, percent-encoded
    let r = sim.get(&format!("/api/resource/Customer/{}", enc("Isabelle Côté")));
    assert_eq!(r.json()["data"]["customer_name"], "Isabelle Côté");
    // the primary key compares case-insensitively, like MariaDB
    let r = sim.get("/api/resource/Customer/isabelle%20cote");
    assert_eq!(r.json()["data"]["name"], "Isabelle Côté");
    // a name with a slash, encoded or not
    let r = sim.send_json(
        "POST",
        "/api/resource/Service%20Equipment",
        &json!({"name": "ONT/RCMG 42", "equipment_type": "ONT"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        sim.get("/api/resource/Service%20Equipment/ONT%2FRCMG%2042")
            .json()["data"]["name"],
        "ONT/RCMG 42"
    );
    assert_eq!(
        sim.get("/api/resource/Service%20Equipment/ONT/RCMG%2042/")
            .status,
        200
    );
    // missing document: 404, no traceback
    let r = sim.get("/api/resource/Service%20Equipment/EQ-99999");
    assert_eq!(r.status, 404);
    let body = r.json();
    assert_eq!(body["exc_type"], "DoesNotExistError");
    assert!(body.get("exception").is_none());
    assert_eq!(
        server_messages(&body)[0]["message"],
        "Service Equipment EQ-99999 not found"
    );
}

#[test]
fn authentication() {
    let sim = demo();
    let path = "/api/resource/Customer";
    // no header: Guest → 403 PermissionError
    let r = sim.request("GET", path, &[], None);
    assert_eq!(r.status, 403);
    let body = r.json();
    assert_eq!(body["exc_type"], "PermissionError");
    assert_eq!(body["_error_message"], "No permission for Customer");
    assert!(
        server_messages(&body)[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Guest"))
    );
    // wrong secret / unknown key → 401, body exactly as Frappe
    for h in [
        "token acs-key:nope",
        "token who:acs-secret",
        "token acs-key",
        "Bearer abc",
    ] {
        let r = sim.request("GET", path, &[("Authorization", h)], None);
        assert_eq!(r.status, 401, "{h}");
        assert_eq!(r.body, r#"{"exc_type":"AuthenticationError"}"#, "{h}");
    }
    // Basic base64(key:secret)
    let b = base64::engine::general_purpose::STANDARD.encode("acs-key:acs-secret");
    let r = sim.request(
        "GET",
        path,
        &[("Authorization", &format!("Basic {b}"))],
        None,
    );
    assert_eq!(r.status, 200);
    let bad = base64::engine::general_purpose::STANDARD.encode("acs-key:wrong");
    let r = sim.request(
        "GET",
        path,
        &[("Authorization", &format!("Basic {bad}"))],
        None,
    );
    assert_eq!(r.status, 401);
    // several key pairs, each with its user
    let multi = Sim::start(&[
        "--api-key",
        "second",
        "--api-secret",
        "s2",
        "--api-user",
        "Administrator,ops@gigafibre.ca",
    ]);
    let r = multi.request(
        "GET",
        "/api/method/frappe.auth.get_logged_user",
        &[("Authorization", "token second:s2")],
        None,
    );
    assert_eq!(r.json()["message"], "ops@gigafibre.ca");
    let r = multi.request(
        "GET",
        "/api/method/frappe.auth.get_logged_user",
        &[AUTH],
        None,
    );
    assert_eq!(r.json()["message"], "Administrator");
    // methods: ping is open, the rest needs auth
    assert_eq!(
        sim.request("GET", "/api/method/frappe.ping", &[], None)
            .json()["message"],
        "pong"
    );
    let r = sim.request("GET", "/api/method/frappe.auth.get_logged_user", &[], None);
    assert_eq!(r.status, 403);
    assert_eq!(server_messages(&r.json())[0]["title"], "Method Not Allowed");
}

#[test]
fn password_fields() {
    let sim = demo();
    let se = enc("Service Equipment");
    // EQ-00001 has a 16-char SIP password: asterisks of that length
    let d = sim.get(&format!("/api/resource/{se}/EQ-00001")).json()["data"].clone();
    assert_eq!(d["custom_sip_password"], "*".repeat(16));
    let secret_path = format!(
        "/api/method/frappe.client.get_password?{}",
        query(&[
            ("doctype", "Service Equipment"),
            ("name", "EQ-00001"),
            ("fieldname", "custom_sip_password")
        ])
    );
    let r = sim.get(&secret_path);
    assert_eq!(r.status, 200);
    let secret = r.json()["message"].as_str().expect("secret").to_string();
    assert_eq!(secret.len(), 16);
    assert!(!secret.contains('*'));
    // POST with a JSON body and with a form body
    let r = sim.send_json(
        "POST",
        "/api/method/frappe.client.get_password",
        &json!({"doctype": "Service Equipment", "name": "EQ-00001", "fieldname": "custom_sip_password"}),
    );
    assert_eq!(r.json()["message"], secret.as_str());
    let form = query(&[
        ("doctype", "Service Equipment"),
        ("name", "EQ-00001"),
        ("fieldname", "custom_sip_password"),
    ]);
    let r = sim.request(
        "POST",
        "/api/method/frappe.client.get_password",
        &[AUTH, ("Content-Type", "application/x-www-form-urlencoded")],
        Some(&form),
    );
    assert_eq!(r.json()["message"], secret.as_str());
    // no stored value: 401 "Password not found for …"
    let r = sim.get(&format!(
        "/api/method/frappe.client.get_password?{}",
        query(&[
            ("doctype", "Service Equipment"),
            ("name", "EQ-00002"),
            ("fieldname", "custom_sip_password")
        ])
    ));
    assert_eq!(r.status, 401);
    let body = r.json();
    assert_eq!(body["exc_type"], "AuthenticationError");
    assert_eq!(
        server_messages(&body)[0]["message"],
        "Password not found for Service Equipment EQ-00002 custom_sip_password"
    );
    // a write stores the secret and masks the column
    let r = sim.send_json(
        "PUT",
        &format!("/api/resource/{se}/EQ-00002"),
        &json!({"custom_wifi_password": "NouveauMdp42"}),
    );
    assert_eq!(r.json()["data"]["custom_wifi_password"], "************");
    let r = sim.get(&format!(
        "/api/method/frappe.client.get_password?{}",
        query(&[
            ("doctype", "Service Equipment"),
            ("name", "EQ-00002"),
            ("fieldname", "custom_wifi_password")
        ])
    ));
    assert_eq!(r.json()["message"], "NouveauMdp42");
    // Guest: 403
    let r = sim.request("GET", &secret_path, &[], None);
    assert_eq!(r.status, 403);
    // missing args: 417
    let r = sim.get("/api/method/frappe.client.get_password?doctype=Customer");
    assert_eq!(r.status, 417);
    // unknown method: 417
    let r = sim.get("/api/method/frappe.client.nope");
    assert_eq!(r.status, 417);
}

#[test]
fn create_update_delete() {
    let sim = demo();
    let se = enc("Service Equipment");
    // create: 200, autoname continues the series, defaults applied
    let r = sim.send_json(
        "POST",
        &format!("/api/resource/{se}"),
        &json!({"equipment_type": "Routeur", "customer": "jean tremblay", "mac_address": "AA:BB:CC:00:11:22", "doctype": "Service Equipment"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.json()["data"].clone();
    assert_eq!(d["name"], "EQ-00046");
    assert_eq!(d["customer"], "Jean Tremblay");
    assert_eq!(d["status"], "En inventaire");
    assert_eq!(d["custom_wifi_enabled"], 1);
    assert_eq!(d["owner"], "Administrator");
    // {"data": {...}} body form and an explicit name; duplicates → 409
    let r = sim.send_json(
        "POST",
        &format!("/api/resource/{se}"),
        &json!({"data": {"name": "EQ-TEST-1", "equipment_type": "ONT"}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = sim.send_json(
        "POST",
        &format!("/api/resource/{se}"),
        &json!({"name": "eq-test-1", "equipment_type": "ONT"}),
    );
    assert_eq!(r.status, 409);
    let body = r.json();
    assert_eq!(body["exc_type"], "DuplicateEntryError");
    assert_eq!(server_messages(&body)[0]["title"], "Duplicate Name");
    // a customer without an explicit name is named after customer_name
    let r = sim.send_json(
        "POST",
        "/api/resource/Customer",
        &json!({"customer_name": "Jean Tremblay"}),
    );
    assert_eq!(r.json()["data"]["name"], "Jean Tremblay - 1");
    assert!(
        server_messages(&r.json())[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Changed customer name"))
    );

    // partial update: top-level fields, or wrapped in "data"
    let before = sim.get(&format!("/api/resource/{se}/EQ-00003")).json()["data"].clone();
    let r = sim.send_json(
        "PUT",
        &format!("/api/resource/{se}/EQ-00003"),
        &json!({"custom_cwmp_serial": "54504C47B4FB2AC8"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let after = r.json()["data"].clone();
    assert_eq!(after["custom_cwmp_serial"], "54504C47B4FB2AC8");
    assert_eq!(after["serial_number"], before["serial_number"]);
    assert_ne!(after["modified"], before["modified"]);
    assert_eq!(after["creation"], before["creation"]);
    let r = sim.send_json(
        "PUT",
        &format!("/api/resource/{se}/EQ-00003"),
        &json!({"data": {"status": "Actif", "custom_sip_line": "2"}}),
    );
    assert_eq!(r.json()["data"]["custom_sip_line"], 2);
    assert_eq!(
        sim.get(&format!("/api/resource/{se}/EQ-00003")).json()["data"]["custom_cwmp_serial"],
        "54504C47B4FB2AC8"
    );
    // validation errors → 417 ValidationError
    for bad in [
        json!({"custom_sip_line": "deux"}),
        json!({"status": "Perdu"}),
        json!({"custom_wifi_enabled": 7}),
    ] {
        let r = sim.send_json("PUT", &format!("/api/resource/{se}/EQ-00003"), &bad);
        assert_eq!(r.status, 417, "{bad}");
        assert_eq!(r.json()["exc_type"], "ValidationError", "{bad}");
    }
    let r = sim.send_json(
        "PUT",
        &format!("/api/resource/{se}/EQ-00003"),
        &json!({"customer": "Personne"}),
    );
    assert_eq!(r.json()["exc_type"], "LinkValidationError");
    // a stale `modified` is refused (optimistic locking)
    let r = sim.send_json(
        "PUT",
        &format!("/api/resource/{se}/EQ-00003"),
        &json!({"modified": before["modified"], "model": "X"}),
    );
    assert_eq!(r.json()["exc_type"], "TimestampMismatchError");
    let r = sim.send_json(
        "PUT",
        &format!("/api/resource/{se}/EQ-99999"),
        &json!({"model": "X"}),
    );
    assert_eq!(r.status, 404);

    // delete: 202 {"data": "ok"}, then 404
    let r = sim.request(
        "DELETE",
        &format!("/api/resource/{se}/EQ-TEST-1"),
        &[AUTH],
        None,
    );
    assert_eq!((r.status, r.body.as_str()), (202, r#"{"data":"ok"}"#));
    assert_eq!(
        sim.get(&format!("/api/resource/{se}/EQ-TEST-1")).status,
        404
    );
    assert_eq!(
        sim.request(
            "DELETE",
            &format!("/api/resource/{se}/EQ-TEST-1"),
            &[AUTH],
            None
        )
        .status,
        404
    );
    // a customer that equipment links to cannot be deleted
    let r = sim.request(
        "DELETE",
        "/api/resource/Customer/Marie%20Gagnon",
        &[AUTH],
        None,
    );
    assert_eq!(
        (r.status, r.json()["exc_type"].clone()),
        (417, json!("LinkExistsError"))
    );
    // unsupported HTTP method
    assert_eq!(
        sim.request(
            "PATCH",
            &format!("/api/resource/{se}/EQ-00003"),
            &[AUTH],
            Some("{}")
        )
        .status,
        405
    );
}

#[test]
fn persistence_across_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().expect("utf-8").to_string();
    let fixture = fixture_path();
    let fixture = fixture.to_str().expect("utf-8");
    {
        let sim = Sim::start(&["--fixture", fixture, "--data-dir", &data_dir]);
        let r = sim.send_json(
            "PUT",
            "/api/resource/Service%20Equipment/EQ-00001",
            &json!({"custom_cwmp_serial": "RCMG1A2B3C4D", "custom_sip_password": "persisted-secret"}),
        );
        assert_eq!(r.status, 200);
        let r = sim.send_json(
            "POST",
            "/api/resource/Service%20Equipment",
            &json!({"equipment_type": "ONT"}),
        );
        assert_eq!(r.json()["data"]["name"], "EQ-00046");
        let r = sim.request(
            "DELETE",
            "/api/resource/Service%20Equipment/EQ-00045",
            &[AUTH],
            None,
        );
        assert_eq!(r.status, 202);
        // Drop kills the process with SIGKILL: no chance to flush anything late.
    }
    assert!(dir.path().join("erpnext-sim-state.json").exists());
    // restart with the same fixture: the saved state wins
    let sim = Sim::start(&["--fixture", fixture, "--data-dir", &data_dir]);
    let d = sim.get("/api/resource/Service%20Equipment/EQ-00001").json()["data"].clone();
    assert_eq!(d["custom_cwmp_serial"], "RCMG1A2B3C4D");
    let r = sim.get(&format!(
        "/api/method/frappe.client.get_password?{}",
        query(&[
            ("doctype", "Service Equipment"),
            ("name", "EQ-00001"),
            ("fieldname", "custom_sip_password")
        ])
    ));
    assert_eq!(r.json()["message"], "persisted-secret");
    assert_eq!(
        sim.get("/api/resource/Service%20Equipment/EQ-00045").status,
        404
    );
    let r = sim.send_json(
        "POST",
        "/api/resource/Service%20Equipment",
        &json!({"equipment_type": "ONT"}),
    );
    assert_eq!(r.json()["data"]["name"], "EQ-00047");
    // reset data goes back to the state loaded at start-up, and is persisted too
    sim.admin("POST", "/_admin/reset", Some(json!({"data": true})));
    assert_eq!(
        sim.get("/api/resource/Service%20Equipment/EQ-00047").status,
        404
    );
    drop(sim);
    let sim = Sim::start(&["--data-dir", &data_dir]);
    assert_eq!(
        sim.get("/api/resource/Service%20Equipment/EQ-00047").status,
        404
    );
    assert_eq!(
        sim.get("/api/resource/Service%20Equipment/EQ-00046").status,
        200
    );
}

#[test]
fn injected_errors_rate_limits_and_stats() {
    let sim = demo();
    let path = "/api/resource/Customer";
    sim.admin(
        "POST",
        "/_admin/faults",
        Some(json!({"error_next": 2, "rate_limit_next": 1, "retry_after_s": 7})),
    );
    let r = sim.get(path);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("Retry-After"), Some("7"));
    assert_eq!(r.json()["exc_type"], "TooManyRequestsError");
    for _ in 0..2 {
        let r = sim.get(path);
        assert_eq!(r.status, 500);
        let body = r.json();
        assert_eq!(body["exc_type"], "OperationalError");
        assert!(
            body["exception"]
                .as_str()
                .is_some_and(|e| e.contains("Lost connection"))
        );
    }
    assert_eq!(sim.get(path).status, 200);
    // probabilities
    sim.admin("POST", "/_admin/faults", Some(json!({"error_rate": 1.0})));
    assert_eq!(sim.get(path).status, 500);
    sim.admin(
        "POST",
        "/_admin/faults",
        Some(json!({"error_rate": 0.0, "rate_limit_rate": 1.0})),
    );
    assert_eq!(sim.get(path).status, 429);
    let f = sim.admin("GET", "/_admin/faults", None);
    assert_eq!(f["rate_limit_rate"], 1.0);
    // bad admin input: 400, nothing changes
    let r = sim.request("POST", "/_admin/faults", &[], Some(r#"{"error_rate": 3}"#));
    assert_eq!(r.status, 400);
    let r = sim.request("POST", "/_admin/faults", &[], Some(r#"{"typo": 1}"#));
    assert_eq!(r.status, 400);

    // counters by route and status (admin calls are not counted)
    let stats = sim.admin("GET", "/_admin/stats", None);
    let route = &stats["by_route"]["GET /api/resource/Customer"];
    assert_eq!(route["total"], 6);
    assert_eq!(route["by_status"]["429"], 2);
    assert_eq!(route["by_status"]["500"], 3);
    assert_eq!(route["by_status"]["200"], 1);
    assert_eq!(stats["faults"]["error"], 3);
    assert_eq!(stats["total"], 6);

    // reset: no faults, zero counters
    sim.admin("POST", "/_admin/reset", None);
    assert_eq!(sim.get(path).status, 200);
    sim.get("/api/resource/Service%20Equipment/EQ-00001");
    sim.send_json(
        "PUT",
        "/api/resource/Service%20Equipment/EQ-00001",
        &json!({"model": "HT803G"}),
    );
    let stats = sim.admin("GET", "/_admin/stats", None);
    assert_eq!(stats["total"], 3);
    assert_eq!(
        stats["by_route"]["GET /api/resource/Service Equipment/{name}"]["total"],
        1
    );
    assert_eq!(
        stats["by_route"]["PUT /api/resource/Service Equipment/{name}"]["by_status"]["200"],
        1
    );
    assert_eq!(stats["recent"][2]["method"], "PUT");
    let health = sim.admin("GET", "/_admin/health", None);
    assert_eq!(health["documents"]["Customer"], 20);
}

#[test]
fn latency_and_outages() {
    let sim = demo();
    let path = "/api/resource/Customer";
    sim.admin("POST", "/_admin/faults", Some(json!({"latency_ms": 150})));
    let t = Instant::now();
    assert_eq!(sim.get(path).status, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    // admin calls are never delayed or faulted
    sim.admin(
        "POST",
        "/_admin/faults",
        Some(json!({"clear": true, "outage_s": 0.4})),
    );
    let r = sim.get(path);
    assert_eq!(r.status, 503);
    assert!(r.body.contains("The system is being updated"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sim.get(path).status, 200);
    // "close": the connection is dropped without a response
    sim.admin(
        "POST",
        "/_admin/faults",
        Some(json!({"outage_s": 30, "outage_mode": "close"})),
    );
    assert_eq!(sim.get(path).status, 0);
    sim.admin("POST", "/_admin/faults", Some(json!({"outage_s": 0})));
    assert_eq!(sim.get(path).status, 200);
    let stats = sim.admin("GET", "/_admin/stats", None);
    assert_eq!(stats["by_status"]["closed"], 1);
    assert_eq!(stats["by_status"]["503"], 1);

    // faults from the command line
    let flaky = Sim::start(&["--error-rate", "1", "--latency-ms", "50"]);
    let t = Instant::now();
    assert_eq!(flaky.get(path).status, 500);
    assert!(t.elapsed() >= Duration::from_millis(50));
    let down = Sim::start(&["--outage-s", "30"]);
    assert_eq!(down.get(path).status, 503);
    let limited = Sim::start(&["--rate-limit-rate", "1", "--retry-after-s", "3"]);
    assert_eq!(limited.get(path).header("retry-after"), Some("3"));
}

fn run_bad(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_input_exits_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"Customer\": [ {\"customer_name\": ").expect("write");
    let (code, err) = run_bad(&["--fixture", bad.to_str().expect("utf-8")]);
    assert_eq!(code, 1);
    assert!(
        err.contains("fixture") && err.contains("invalid JSON"),
        "{err}"
    );
    assert!(!err.contains("panicked"));

    let wrong = dir.path().join("wrong.json");
    std::fs::write(
        &wrong,
        r#"{"Service Equipment": [{"equipment_type": "Modem"}]}"#,
    )
    .expect("write");
    let (code, err) = run_bad(&["--fixture", wrong.to_str().expect("utf-8")]);
    assert_eq!(code, 1);
    assert!(err.contains("Modem"), "{err}");

    let (code, err) = run_bad(&["--fixture", "/nonexistent/fixture.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/fixture.json"), "{err}");

    let (code, err) = run_bad(&["--api-key", "a,b", "--api-secret", "x"]);
    assert_eq!(code, 1);
    assert!(err.contains("--api-secret"), "{err}");

    let (code, _) = run_bad(&["--error-rate", "2"]);
    assert_eq!(code, 1);
    let (code, err) = run_bad(&["--latency-ms", "soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("--latency-ms"), "{err}");
    let (code, _) = run_bad(&["--no-such-flag"]);
    assert_eq!(code, 2);

    let corrupt = dir.path().join("state");
    std::fs::create_dir_all(&corrupt).expect("mkdir");
    std::fs::write(corrupt.join("erpnext-sim-state.json"), "{oops").expect("write");
    let (code, err) = run_bad(&["--data-dir", corrupt.to_str().expect("utf-8")]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid state file"), "{err}");

    let help = Command::new(BIN).arg("--help").output().expect("help");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "--listen",
        "--fixture",
        "--data-dir",
        "--api-key",
        "/_admin/faults",
        "get_password",
        "listening on",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}");
    }
}
