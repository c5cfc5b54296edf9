//! The Ops API over real HTTP: authentication, errors, pagination.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

#[test]
fn every_api_route_requires_a_valid_token() {
    let acs = Acs::start(&[(
        "ACS_API_TOKEN",
        "first-token-0123456789,second-token-0123456789",
    )]);
    let routes = [
        ("GET", "/api/v1/devices"),
        ("GET", "/api/v1/devices/x"),
        ("GET", "/api/v1/devices/x/parameters"),
        ("GET", "/api/v1/devices/x/tasks"),
        ("POST", "/api/v1/devices/x/tasks"),
        ("GET", "/api/v1/tasks/1"),
        ("GET", "/api/v1/faults"),
        ("GET", "/api/v1/nonexistent"),
    ];
    for (method, path) in routes {
        for auth in [
            None,
            Some("Bearer wrong-token-0123456789"),
            Some("Basic Zm9vOmJhcg=="),
        ] {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("Authorization", a)).into_iter().collect();
            let r = HttpConn::connect(acs.api).request(method, path, &headers, b"");
            assert_eq!(r.status, 401, "{method} {path} with {auth:?}");
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body["error"]["code"], "unauthorized");
            assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
        }
    }
    for token in ["first-token-0123456789", "second-token-0123456789"] {
        let r = HttpConn::connect(acs.api).request(
            "GET",
            "/api/v1/devices",
            &[("Authorization", &format!("Bearer {token}"))],
            b"",
        );
        assert_eq!(r.status, 200);
    }
    let r = HttpConn::connect(acs.api).request("GET", "/healthz", &[], b"");
    assert_eq!(r.status, 200);
}

#[test]
fn errors_are_json_with_the_right_status() {
    let acs = Acs::start(&[]);
    let mut cpe = acs.cpe();
    assert_eq!(
        cpe.post_str(&inform_xml("SOAP-ENV", "1-0", "1", "APIERR", &["1 BOOT"]))
            .status,
        200
    );
    let id = encode_segment(&device_id("APIERR"));

    assert_eq!(acs.api_get("/api/v1/devices/nope").0, 404);
    assert_eq!(acs.api_get("/api/v1/devices?limit=0").0, 400);
    assert_eq!(acs.api_get("/api/v1/devices?cursor=%%%").0, 400);
    assert_eq!(acs.api_get("/api/v1/tasks/abc").0, 400);
    assert_eq!(acs.api_get("/api/v1/tasks/999999").0, 404);
    assert_eq!(acs.api_get("/api/v1/whatever").0, 404);
    let (status, body) = acs.api_post(
        &format!("/api/v1/devices/{id}/tasks"),
        &json!({"Frobnicate": {}}),
    );
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "bad_request");
    let (status, body) = acs.api_post(
        &format!("/api/v1/devices/{id}/tasks"),
        &json!({"InformResponse": {"max_envelopes": 1}}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a request the ACS can send")
    );
    let r = HttpConn::connect(acs.api).request(
        "POST",
        &format!("/api/v1/devices/{id}/tasks"),
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        b"{not json",
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("not valid JSON"));
    assert_eq!(
        acs.api_post("/api/v1/devices/nope/tasks", &json!({"Reboot": {}}))
            .0,
        404
    );
    let r = HttpConn::connect(acs.api).request(
        "DELETE",
        "/api/v1/devices",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        b"",
    );
    assert_eq!(r.status, 405);
    // Nothing was queued by the bad requests.
    assert_eq!(
        acs.api_get(&format!("/api/v1/devices/{id}/tasks")).1["tasks"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn device_list_paginates_with_a_cursor() {
    let acs = Acs::start(&[]);
    for i in 0..5 {
        let mut cpe = acs.cpe();
        assert_eq!(
            cpe.post_str(&inform_xml(
                "SOAP-ENV",
                "1-0",
                "1",
                &format!("PAGE{i}"),
                &["1 BOOT"]
            ))
            .status,
            200
        );
        assert_eq!(cpe.empty().status, 204);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/devices?limit=2&cursor={c}"),
            None => "/api/v1/devices?limit=2".to_owned(),
        };
        let (status, page) = acs.api_get(&path);
        assert_eq!(status, 200);
        for d in page["devices"].as_array().unwrap() {
            seen.push(d["serial_number"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["PAGE0", "PAGE1", "PAGE2", "PAGE3", "PAGE4"]);
}
