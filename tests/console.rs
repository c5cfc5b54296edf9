//! The console in a real headless browser (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver): log in, find a simulated
//! Deco, open its topology, reprovision it and see it finish, switch
//! language, be refused an admin page as a technician, log out; the
//! basics of accessibility. Skipped, saying so, without the browser.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const DECO_MAC: &str = "1C:61:B4:AA:00:11";
const DECO_PASS: &str = "k7Hq2mZp9xWe";
const TECH_PW: &str = "tech-password-0001";
const OPS_PW: &str = "ops-password-00001";
const ADMIN_PW: &str = "admin-password-0001";

/// chromedriver on a free port, and one browser session.
struct Browser {
    driver: Child,
    addr: std::net::SocketAddr,
    session: String,
}

impl Browser {
    fn start() -> Option<Browser> {
        let (Some(driver), Some(chromium)) = (which("chromedriver"), which("chromium")) else {
            eprintln!(
                "console browser test skipped: no chromium/chromedriver (Debian's chromium and chromium-driver)"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut b = Browser {
            driver: child,
            addr,
            session: String::new(),
        };
        wait_until("chromedriver", 20, || {
            std::net::TcpStream::connect(addr).ok()
        });
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=412,915"]
            }
        }}});
        let v = b.raw("POST", "/session", Some(caps));
        b.session = v["value"]["sessionId"]
            .as_str()
            .expect("a browser session")
            .to_owned();
        Some(b)
    }

    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let r = HttpConn::connect(self.addr).request(
            method,
            path,
            &[("Content-Type", "application/json")],
            bytes.as_bytes(),
        );
        serde_json::from_slice(&r.body).unwrap_or(Value::Null)
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
    }

    fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url})));
    }

    fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )["value"]
            .clone()
    }

    /// The element matching a CSS selector, once there.
    fn find(&self, css: &str) -> String {
        wait_until(&format!("element {css}"), 20, || {
            let v = self.cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            );
            v["value"]["element-6066-11e4-a52e-4f735466cecf"]
                .as_str()
                .map(str::to_owned)
        })
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    fn type_in(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        );
    }

    /// Sends keys to whatever has the focus (as a person at the keyboard).
    fn keys(&self, text: &str) {
        let active = self.cmd("GET", "/element/active", None);
        let e = active["value"]["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .expect("an element has the focus")
            .to_owned();
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        );
    }

    fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.cmd("GET", &format!("/element/{e}/text"), None)["value"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Waits until the element's text contains `want`.
    fn wait_text(&self, css: &str, want: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = self.text(css);
            if text.contains(want) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never said {want:?}; it says {text:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn visible(&self, id: &str) -> bool {
        self.js(&format!("return !document.getElementById('{id}').hidden"))
            .as_bool()
            .unwrap_or(false)
    }

    fn wait_visible(&self, id: &str) {
        wait_until(&format!("#{id} shown"), 20, || {
            self.visible(id).then_some(())
        });
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = HttpConn::connect(self.addr).request("DELETE", &path, &[], b"");
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
            .map(|f| f.display().to_string())
    })
}

#[test]
fn a_technician_uses_the_console_on_a_phone_sized_browser() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "tech1", "technician", TECH_PW);
    add_user(dir.path(), "ops1", "ops", OPS_PW);
    add_user(dir.path(), "admin1", "admin", ADMIN_PW);

    let erp = ErpSim::start(&one_deco_fixture(DECO_PASS));
    let env = erp.acs_env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(&[
        ("ACS_PROVISIONING", "on"),
        ("ACS_HOSTS_COLLECT", "on"),
        ("ACS_ERPNEXT_CACHE_TTL_S", "0"),
        ("ACS_CR_MIN_INTERVAL_S", "0"),
    ]);
    let acs = Acs::start_in(dir.path(), &all);
    let _deco = SimDevice::start(&acs, "deco", "DECO11", &["--mac", DECO_MAC]);
    let id = wait_until("the Deco provisioned", 30, || {
        let (_, list) = acs.api_get("/api/v1/devices?q=DECO11");
        let d = list["devices"].as_array()?.first()?.clone();
        (d["provisioning"]["status"] == "provisioned").then(|| d["id"].as_str().unwrap().to_owned())
    });

    let base = format!("http://{}/", acs.api);
    browser.go(&base);
    browser.wait_visible("login");
    // French first; the page starts with the cursor in the user name.
    assert_eq!(browser.js("return document.documentElement.lang"), "fr");
    assert_eq!(browser.text("#login h1"), "Connexion");
    assert_eq!(browser.js("return document.activeElement.id"), "username");
    // Accessibility basics: every field has a label, every button a name,
    // text and buttons contrast at 4.5:1 or more.
    let unlabeled = browser.js("return [...document.querySelectorAll('input')].filter(i => !i.labels.length && !i.getAttribute('aria-label')).map(i => i.id)");
    assert_eq!(unlabeled, json!([]), "inputs without a label");
    let low = browser.js(r#"
        const lum = (c) => { const [r, g, b] = c.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
        const bg = (e) => { for (; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor; if (!c.startsWith('rgba(0, 0, 0, 0)')) return c; } return 'rgb(255, 255, 255)'; };
        const ratio = (e) => { const a = lum(getComputedStyle(e).color), b = lum(bg(e)); return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); };
        return [...document.querySelectorAll('button, label, h1, a')].filter(e => ratio(e) < 4.5).map(e => e.id || e.textContent);
    "#);
    assert_eq!(low, json!([]), "low contrast");

    // A wrong password is said in words.
    browser.type_in("#username", "tech1");
    browser.type_in("#password", "not-the-password");
    browser.click("#login-form button[type=submit]");
    browser.wait_text("#error", "incorrect", 10);

    // Log in with the keyboard alone (Enter submits), find the Deco by
    // its MAC in another spelling, open it.
    browser.type_in("#password", &format!("{TECH_PW}\u{E007}"));
    browser.wait_visible("search");
    // With the keyboard: type, Enter, Tab to the search button then to
    // the first result, Enter; focus is shown (an outline) on the way.
    browser.type_in("#q", "1c-61-b4-aa-00-11\u{E007}");
    browser.find("#results a");
    browser.keys("\u{E004}");
    assert_eq!(
        browser.js("return document.activeElement.matches('#search-form button[type=submit]')"),
        json!(true)
    );
    assert_ne!(
        browser.js("return getComputedStyle(document.activeElement).outlineStyle"),
        json!("none"),
        "the focused button shows no outline"
    );
    browser.keys("\u{E004}");
    assert_eq!(
        browser.js("return document.activeElement.matches('#results a')"),
        json!(true)
    );
    browser.keys("\u{E007}");
    browser.wait_visible("device");
    browser.wait_text("#device-title", "DECO11", 10);
    browser.wait_text("#identity", "Provisionné", 10);
    browser.wait_text("#identity", "EQ-00001", 10);
    // No alarm on this Deco; no optical section (it is no ONT); a
    // technician sees no fleet or users link.
    browser.wait_text("#device-alarms", "Aucune alarme", 10);
    assert!(!browser.visible("optical"));
    assert!(!browser.visible("nav-fleet") && !browser.visible("nav-users"));
    // The topology: the mesh nodes with their clients and signal.
    let nodes = browser.js("return document.querySelectorAll('#topology .node').length");
    assert!(nodes.as_u64().unwrap() >= 1, "no mesh node drawn");
    browser.wait_text("#topology", "%", 10);

    // Reprovision, and see it finish.
    browser.click("#reprovision");
    browser.wait_text("#action-status", "Terminé", 60);
    // Followed live on the event stream (not by asking again and again).
    let streamed = browser.js(
        "return performance.getEntriesByType('resource').some(e => e.name.includes('/api/v1/events?device='))",
    );
    assert_eq!(
        streamed,
        json!(true),
        "the page did not follow the event stream"
    );
    browser.wait_text("#device-audit", "reprovision", 10);
    // Its last contacts and tasks; no fault.
    browser.go(&format!("{base}#/"));
    browser.go(&format!("{base}#/device/{}", encode_segment(&id)));
    browser.wait_text("#recent-informs", "BOOTSTRAP", 10);
    browser.wait_text("#device-tasks", "reprovision", 10);
    browser.wait_text("#device-faults", "Aucune erreur", 10);
    // The README's picture of the device page, when asked for.
    if let Some(path) = std::env::var_os("ACS_CONSOLE_SCREENSHOT") {
        use base64::Engine as _;
        let png = browser.cmd("GET", "/screenshot", None)["value"]
            .as_str()
            .unwrap()
            .to_owned();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png)
            .unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    // English, one click away.
    browser.click("#lang");
    browser.wait_text("#lang", "Français", 5);
    assert_eq!(browser.js("return document.documentElement.lang"), "en");
    browser.wait_text("#device h2[data-i18n=topology]", "Topology", 5);

    // A technician is refused the admin page, in words.
    browser.go(&format!("{base}#/users"));
    browser.wait_text("#error", "Your role does not allow this", 10);
    assert_eq!(
        browser.js("return document.querySelectorAll('#user-list li').length"),
        0
    );

    // Log out: back to the login form; the session is over on the server.
    browser.click("#logout");
    browser.wait_visible("login");

    // Ops: the fleet page, and an ONT's optical power as a gauge with its
    // history.
    let ont = SimDevice::start(
        &acs,
        "rcmg-ont",
        "RCMG0000CO01",
        &["--gpon-sn", "RCMG0000CO01"],
    );
    let ont_id = wait_for_optical_reading(&acs, "RCMG0000CO01");
    browser.type_in("#username", "ops1");
    browser.type_in("#password", OPS_PW);
    browser.click("#login-form button[type=submit]");
    browser.wait_visible("search");
    assert!(browser.visible("nav-fleet") && !browser.visible("nav-users"));
    browser.click("#nav-fleet");
    browser.wait_visible("fleet");
    browser.wait_text("#fleet-counts", "2", 10);
    browser.wait_text("#fleet-counts", "HT803G-WS2", 10);
    // A parameter the ONT does not have: its fault, which Ops may retry.
    let (status, _) = acs.api_post(
        &format!(
            "/api/v1/devices/{}/tasks?connection_request=true",
            encode_segment(&ont_id)
        ),
        &json!({"name": "getParameterValues", "parameterNames": ["InternetGatewayDevice.DeviceInfo.NoSuchThing"]}),
    );
    assert!(status == 201 || status == 200, "{status}");
    wait_until("the ONT's 9005", 30, || {
        let (_, f) = acs.api_get(&format!(
            "/api/v1/faults?device={}",
            encode_segment(&ont_id)
        ));
        (!f["faults"].as_array()?.is_empty()).then_some(())
    });
    browser.go(&format!("{base}#/device/{}", encode_segment(&ont_id)));
    browser.wait_visible("optical");
    browser.wait_text("#device-faults", "9005", 10);
    browser.wait_text("#device-tasks", "9005", 10);
    browser.click("#device-faults li button");
    browser.wait_text("#action-status", "Retried", 10);
    browser.wait_text("#rx-value", "-8.91 dBm", 10);
    assert_eq!(
        browser.js("return document.getElementById('rx-meter').value"),
        json!(-8.91)
    );
    assert_eq!(
        browser.js("return document.querySelectorAll('#rx-chart polyline').length"),
        1
    );
    // The limits of its optical class (the built-in rules: B+), and its
    // WAN addresses.
    browser.wait_text("#rx-limits", "-27 / -8 dBm", 10);
    browser.wait_text("#rx-limits", "gpon-b+", 10);
    browser.wait_text("#identity", "10.201.37.14", 10);
    browser.wait_text("#wan-changes", "10.201.37.14", 10);
    // A firmware campaign for the ONT, followed and paused from the page.
    let r = HttpConn::connect(acs.api).request(
        "POST",
        "/api/v1/files?name=fw.bin&version=9.0",
        &[
            ("Authorization", &format!("Bearer {TOKEN}")),
            ("Content-Type", "application/octet-stream"),
        ],
        b"CPESIM-FIRMWARE version=9.0\n",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let file: Value = serde_json::from_slice(&r.body).unwrap();
    let (status, c) = acs.api_post(
        "/api/v1/campaigns",
        &json!({"name": "ONT 9.0", "file": file["id"], "target": {"devices": [ont_id]}, "waves": [100],
                "window": {"start": "00:00", "end": "00:01"}}),
    );
    assert_eq!(status, 201, "{c}");
    browser.click("#nav-campaigns");
    browser.wait_visible("campaigns");
    browser.wait_text("#campaign-list", "ONT 9.0", 10);
    browser.wait_text("#campaign-list", "running", 10);
    browser.click("#campaign-list li[data-campaign] button");
    browser.wait_text("#campaign-list .campaign-state", "paused", 10);
    drop(ont);
    browser.click("#logout");
    browser.wait_visible("login");

    // An admin makes a user on the users page, then disables it; both
    // are in the audit log under the admin's name.
    browser.type_in("#username", "admin1");
    browser.type_in("#password", ADMIN_PW);
    browser.click("#login-form button[type=submit]");
    browser.wait_visible("search");
    browser.click("#nav-users");
    browser.wait_visible("users");
    browser.type_in("#new-name", "tech2");
    browser.type_in("#new-password", "another long password 2");
    browser.click("#user-form button[type=submit]");
    browser.wait_text("#user-status", "User created", 10);
    browser.wait_text("#user-list", "tech2", 10);
    browser.click("#user-list li[data-user=tech2] button");
    browser.wait_text("#user-list li[data-user=tech2]", "disabled", 10);
    // A token for a machine: shown once, listed by name, revoked.
    browser.type_in("#token-name", "billing");
    browser.click("#token-form button[type=submit]");
    let token = browser.wait_text("#token-value", "gfa_", 10);
    browser.wait_text("#token-list li[data-token=billing]", "ops", 10);
    let r = HttpConn::connect(acs.api).request(
        "GET",
        "/api/v1/devices",
        &[("Authorization", &format!("Bearer {}", token.trim()))],
        b"",
    );
    assert_eq!(r.status, 200);
    browser.click("#token-list li[data-token=billing] button");
    browser.wait_text("#token-list", "No token issued", 10);
    assert!(!browser.visible("token-secret"));
    let (_, audit) = acs.api_get("/api/v1/audit?user=admin1");
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"createUser")
            && actions.contains(&"disableUser")
            && actions.contains(&"issueToken")
            && actions.contains(&"revokeToken"),
        "{audit}"
    );
    assert!(!acs.logs().contains("another long password 2"));
    let (_, audit) = acs.api_get(&format!("/api/v1/audit?device={}", encode_segment(&id)));
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["user"] == "tech1" && e["action"] == "reprovision"),
        "{audit}"
    );
    assert!(!acs.logs().contains(TECH_PW));
}
