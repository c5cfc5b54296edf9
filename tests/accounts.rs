//! People's accounts, roles and the audit log, through the real binary:
//! users made with `gigafibre-acs user add`, console sessions (cookie and
//! CSRF token), what each role may do, lockout, tokens with roles, and
//! every write in the audit log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::{Value, json};

const ADMIN_PW: &str = "admin-password-0001";
const TECH_PW: &str = "tech-password-0001";
const OPS_PW: &str = "ops-password-00001";

/// A logged-in browser: its cookie and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

fn login(acs: &Acs, user: &str, password: &str) -> Result<Browser, (u16, Value)> {
    let body = json!({"username": user, "password": password}).to_string();
    let r = HttpConn::connect(acs.api).request(
        "POST",
        "/api/v1/login",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    if r.status != 200 {
        return Err((r.status, v));
    }
    let set = r.header("set-cookie").unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    Ok(Browser {
        cookie: set.split(';').next().unwrap().to_owned(),
        csrf: v["csrf_token"].as_str().unwrap().to_owned(),
    })
}

impl Browser {
    fn call(
        &self,
        acs: &Acs,
        method: &str,
        path: &str,
        body: Option<Value>,
        csrf: bool,
    ) -> (u16, Value) {
        let mut headers = vec![("Cookie", self.cookie.as_str())];
        if csrf {
            headers.push(("X-CSRF-Token", self.csrf.as_str()));
        }
        headers.push(("Content-Type", "application/json"));
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let r = HttpConn::connect(acs.api).request(method, path, &headers, bytes.as_bytes());
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        )
    }
}

#[test]
fn people_log_in_with_roles_and_every_write_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    // The first admin is made on the data dir, with the ACS stopped.
    let (code, out, err) = user_cmd(
        dir.path(),
        &["add", "admin1", "--role", "admin", "--password-stdin"],
        &format!("{ADMIN_PW}\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("admin1"), "{out}");
    for (name, role, pw) in [("tech1", "technician", TECH_PW), ("ops1", "ops", OPS_PW)] {
        let (code, _, err) = user_cmd(
            dir.path(),
            &["add", name, "--role", role, "--password-stdin"],
            &format!("{pw}\n"),
        );
        assert_eq!(code, 0, "{err}");
    }
    // Clear errors, exit 2: a short password, a taken name, a bad role.
    let (code, _, err) = user_cmd(
        dir.path(),
        &["add", "x", "--role", "ops", "--password-stdin"],
        "short\n",
    );
    assert_eq!((code, err.contains("12 characters")), (2, true), "{err}");
    let (code, _, err) = user_cmd(
        dir.path(),
        &["add", "tech1", "--role", "ops", "--password-stdin"],
        &format!("{TECH_PW}\n"),
    );
    assert_eq!((code, err.contains("already exists")), (2, true), "{err}");
    let (code, _, err) = user_cmd(
        dir.path(),
        &["add", "y", "--role", "root", "--password-stdin"],
        "",
    );
    assert_eq!((code, err.contains("root")), (2, true), "{err}");

    let acs = Acs::start_in(
        dir.path(),
        &[(
            "ACS_API_TOKEN",
            &format!("technician:tech-token-0123456789,{TOKEN}"),
        )],
    );
    // While the ACS holds its embedded store, the command says so.
    let (code, _, err) = user_cmd(dir.path(), &["list"], "");
    assert_eq!(code, 2, "{err}");

    // A device to act on.
    let mut cpe = acs.cpe();
    assert_eq!(
        cpe.post_str(&inform_xml(
            "soapenv",
            "1-0",
            "1",
            "ACCT1",
            &["0 BOOTSTRAP"]
        ))
        .status,
        200
    );
    assert_eq!(cpe.empty().status, 204);
    let device = device_id("ACCT1");
    let device_path = encode_segment(&device);

    // Admin: logs in, is who it says, manages users with its CSRF token.
    let admin = login(&acs, "admin1", ADMIN_PW).unwrap();
    let (status, me) = admin.call(&acs, "GET", "/api/v1/me", None, false);
    assert_eq!(
        (status, me["user"].as_str(), me["role"].as_str()),
        (200, Some("admin1"), Some("admin"))
    );
    let new_tech = json!({"name": "tech2", "role": "technician", "password": "tech2-password-001"});
    let (status, body) = admin.call(&acs, "POST", "/api/v1/users", Some(new_tech.clone()), false);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("csrf")),
        "{body}"
    );
    let (status, body) = admin.call(&acs, "POST", "/api/v1/users", Some(new_tech.clone()), true);
    assert_eq!(status, 201, "{body}");
    assert!(
        body.get("password_hash").is_none() && !body.to_string().contains("argon2"),
        "{body}"
    );
    let (status, _) = admin.call(&acs, "POST", "/api/v1/users", Some(new_tech), true);
    assert_eq!(status, 409);
    let (status, list) = admin.call(&acs, "GET", "/api/v1/users", None, false);
    assert_eq!(status, 200);
    assert_eq!(list["users"].as_array().unwrap().len(), 4, "{list}");

    // Technician: reads, reboots, reprovisions; no other task, no users,
    // no credentials.
    let tech = login(&acs, "tech1", TECH_PW).unwrap();
    let (status, _) = tech.call(
        &acs,
        "GET",
        &format!("/api/v1/devices/{device_path}"),
        None,
        false,
    );
    assert_eq!(status, 200);
    let tasks = format!("/api/v1/devices/{device_path}/tasks");
    let (status, body) = tech.call(&acs, "POST", &tasks, Some(json!({"name": "reboot"})), true);
    assert_eq!(status, 201, "{body}");
    let (status, body) = tech.call(
        &acs,
        "POST",
        &tasks,
        Some(json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo."]})),
        true,
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("ops"),
        "{body}"
    );
    let (status, body) = tech.call(
        &acs,
        "POST",
        "/api/v1/users",
        Some(json!({"name": "evil", "role": "admin", "password": "evil-password-0001"})),
        true,
    );
    assert_eq!(status, 403, "{body}");
    let (status, _) = tech.call(&acs, "DELETE", "/api/v1/cpe-credentials/x", None, true);
    assert_eq!(status, 403);
    let (status, _) = tech.call(
        &acs,
        "POST",
        &format!("/api/v1/devices/{device_path}/reprovision"),
        None,
        true,
    );
    assert_ne!(status, 403, "a technician may reprovision");

    // Ops: tasks of any kind.
    let ops = login(&acs, "ops1", OPS_PW).unwrap();
    let (status, body) = ops.call(
        &acs,
        "POST",
        &tasks,
        Some(json!({"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo."]})),
        true,
    );
    assert_eq!(status, 201, "{body}");

    // A token with a role: the technician token may not manage users.
    let r = HttpConn::connect(acs.api).request(
        "GET",
        "/api/v1/users",
        &[("Authorization", "Bearer tech-token-0123456789")],
        b"",
    );
    assert_eq!(r.status, 403);
    let (status, _) = acs.api_get("/api/v1/users");
    assert_eq!(status, 200, "a bare token is an admin's");

    // Logging out ends the session; a disabled user cannot log in.
    let (status, _) = tech.call(&acs, "POST", "/api/v1/logout", None, true);
    assert_eq!(status, 204);
    let (status, _) = tech.call(&acs, "GET", "/api/v1/me", None, false);
    assert_eq!(status, 401);
    let (status, _) = admin.call(&acs, "DELETE", "/api/v1/users/tech2", None, true);
    assert_eq!(status, 200);
    let Err((status, body)) = login(&acs, "tech2", "tech2-password-001") else {
        panic!("a disabled user logged in");
    };
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("disabled")),
        "{body}"
    );

    // Five wrong passwords lock the account; then even the right one is
    // refused, with a message saying what to do.
    for i in 0..5 {
        let Err((status, body)) = login(&acs, "ops1", "wrong-password-000") else {
            panic!("a wrong password logged in");
        };
        let want = if i < 4 { 401 } else { 403 };
        assert_eq!(status, want, "attempt {i}: {body}");
    }
    let Err((status, body)) = login(&acs, "ops1", OPS_PW) else {
        panic!("a locked account logged in");
    };
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("locked")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("minute"),
        "{body}"
    );
    // ...and the address is throttled soon after.
    let throttled =
        (0..5).any(|_| matches!(login(&acs, "admin1", "nope-nope-nope-1"), Err((429, _))));
    assert!(throttled, "login attempts from one address are limited");

    // Every write is in the audit log, with who, what, which device and
    // the outcome.
    let (status, log) = acs.api_get(&format!("/api/v1/audit?device={device_path}"));
    assert_eq!(status, 200);
    let entries = log["entries"].as_array().unwrap();
    let has = |user: &str, action: &str, status: u64| {
        entries
            .iter()
            .any(|e| e["user"] == user && e["action"] == action && e["status"] == status)
    };
    assert!(has("tech1", "createTask", 201), "{log}");
    assert!(has("tech1", "createTask", 403), "{log}");
    assert!(has("ops1", "createTask", 201), "{log}");
    assert!(
        entries
            .iter()
            .any(|e| e["user"] == "tech1" && e["action"] == "reprovision"),
        "{log}"
    );
    let (_, by_admin) = acs.api_get("/api/v1/audit?user=admin1");
    let actions: Vec<&str> = by_admin["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"createUser")
            && actions.contains(&"disableUser")
            && actions.contains(&"login"),
        "{actions:?}"
    );
    let (_, logins) = acs.api_get("/api/v1/audit?user=ops1");
    let failed = logins["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "login" && e["status"] != 200)
        .count();
    assert!(failed >= 5, "{logins}");
    let (status, _) = acs.api_get("/api/v1/audit?since=yesterday");
    assert_eq!(status, 400);

    // No password reached the log.
    let logs = acs.logs();
    for pw in [ADMIN_PW, TECH_PW, OPS_PW, "tech2-password-001"] {
        assert!(!logs.contains(pw), "a password reached the log");
    }
}

#[test]
fn admins_issue_tokens_to_machines_each_with_a_role() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "admin1", "admin", ADMIN_PW);
    let acs = Acs::start_in(dir.path(), &[("ACS_NBI_LISTEN", "127.0.0.1:0")]);
    let mut cpe = acs.cpe();
    let inform = inform_xml("soapenv", "1-0", "1", "TOK1", &["0 BOOTSTRAP"]);
    assert_eq!(cpe.post_str(&inform).status, 200);
    assert_eq!(cpe.empty().status, 204);
    let device = encode_segment(&device_id("TOK1"));
    let admin = login(&acs, "admin1", ADMIN_PW).unwrap();

    // Issued once, shown once.
    let (status, issued) = admin.call(
        &acs,
        "POST",
        "/api/v1/tokens",
        Some(json!({"name": "billing", "role": "ops"})),
        true,
    );
    assert_eq!(status, 201, "{issued}");
    let token = issued["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("gfa_") && token.len() == 68, "{token}");
    assert_eq!(
        (issued["role"].as_str(), issued["created_by"].as_str()),
        (Some("ops"), Some("admin1"))
    );
    let (status, probe) = admin.call(
        &acs,
        "POST",
        "/api/v1/tokens",
        Some(json!({"name": "probe", "role": "technician"})),
        true,
    );
    assert_eq!(status, 201);
    let probe = probe["token"].as_str().unwrap().to_owned();
    // Bad requests say what is wrong; a taken name is a conflict; no CSRF
    // token, no write.
    let (status, body) = admin.call(
        &acs,
        "POST",
        "/api/v1/tokens",
        Some(json!({"name": "x", "role": "root"})),
        true,
    );
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("root"),
        "{body}"
    );
    let (status, _) = admin.call(
        &acs,
        "POST",
        "/api/v1/tokens",
        Some(json!({"name": "billing", "role": "ops"})),
        true,
    );
    assert_eq!(status, 409);
    let (status, _) = admin.call(
        &acs,
        "POST",
        "/api/v1/tokens",
        Some(json!({"name": "csrf", "role": "ops"})),
        false,
    );
    assert_eq!(status, 403);
    // The list names them, never the token.
    let (status, list) = admin.call(&acs, "GET", "/api/v1/tokens", None, false);
    assert_eq!(status, 200);
    let names: Vec<&str> = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["billing", "probe"]);
    assert!(!list.to_string().contains(&token[4..]), "{list}");

    let with = |token: &str, method: &str, path: &str, body: &str| {
        let auth = format!("Bearer {token}");
        HttpConn::connect(acs.api).request(
            method,
            path,
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    };
    let task = r#"{"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo."]}"#;
    let tasks = format!("/api/v1/devices/{device}/tasks");
    // The ops token reads and writes, but is no admin.
    assert_eq!(with(&token, "GET", "/api/v1/devices", "").status, 200);
    assert_eq!(with(&token, "POST", &tasks, task).status, 201);
    assert_eq!(with(&token, "GET", "/api/v1/users", "").status, 403);
    // The technician token may not queue a parameter read.
    assert_eq!(with(&probe, "POST", &tasks, task).status, 403);
    // On the NBI too, as Basic's password (what GenieACS clients send).
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("nbi:{token}"))
    );
    let r = HttpConn::connect(acs.nbi.unwrap()).request(
        "GET",
        "/devices/",
        &[("Authorization", basic.as_str())],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // A made-up token of the same shape is nobody.
    let fake = format!("gfa_{}", "0".repeat(64));
    assert_eq!(with(&fake, "GET", "/api/v1/devices", "").status, 401);
    // The audit log names the token.
    let (_, audit) = admin.call(&acs, "GET", "/api/v1/audit?user=token:billing", None, false);
    let entries = audit["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "createTask" && e["role"] == "ops" && e["status"] == 201),
        "{audit}"
    );

    // Revoked: refused at once.
    let (status, _) = admin.call(&acs, "DELETE", "/api/v1/tokens/billing", None, true);
    assert_eq!(status, 200);
    assert_eq!(with(&token, "GET", "/api/v1/devices", "").status, 401);
    let (status, _) = admin.call(&acs, "DELETE", "/api/v1/tokens/billing", None, true);
    assert_eq!(status, 404);
    let logs = acs.logs();
    assert!(!logs.contains(&token) && !logs.contains(&probe));
}

#[test]
fn the_api_speaks_https_and_the_cookie_is_secure_then() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("API TLS test skipped: no curl");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = user_cmd(
        dir.path(),
        &["add", "admin1", "--role", "admin", "--password-stdin"],
        &format!("{ADMIN_PW}\n"),
    );
    assert_eq!(code, 0, "{err}");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let cert = data.join("test-cert.pem").display().to_string();
    let key = data.join("test-key.pem").display().to_string();
    let acs = Acs::start_in(
        dir.path(),
        &[("ACS_API_TLS_CERT", &cert), ("ACS_API_TLS_KEY", &key)],
    );
    assert!(
        acs.logs()
            .contains(&format!("API listener ready at https://{}", acs.api)),
        "{}",
        acs.logs()
    );
    let url = format!("https://{}/api/v1/login", acs.api);
    let body = json!({"username": "admin1", "password": ADMIN_PW}).to_string();
    let out = Command::new("curl")
        .args([
            "-s",
            "-i",
            "--cacert",
            &data.join("test-ca.pem").display().to_string(),
        ])
        .args([
            "-H",
            "Content-Type: application/json",
            "--data",
            &body,
            &url,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    let cookie = text
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .unwrap_or_default();
    assert!(
        cookie.contains("; secure") && cookie.contains("httponly"),
        "{cookie}"
    );
    // The console page over HTTPS too; plain HTTP gets nowhere.
    let page = Command::new("curl")
        .args([
            "-s",
            "--cacert",
            &data.join("test-ca.pem").display().to_string(),
        ])
        .arg(format!("https://{}/", acs.api))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&page.stdout).contains("Gigafibre ACS"));
    let plain = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg(format!("http://{}/healthz", acs.api))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");
}
