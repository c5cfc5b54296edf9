//! A CPE that answers every GetParameterValues and GetParameterNames
//! with an empty list (as an independent load generator does, and as a
//! broken CPE may): its first contact asks what it asks, and its later
//! periodic sessions are asked nothing again (discovery is retried an hour
//! later, host tables by age). Issue 15 asked whether such a device is
//! re-asked at every session: it is not.

#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;
use common::*;

/// One session answering every request with an empty response of its kind; the RPC names asked.
fn session(acs: &Acs, serial: &str, n: usize, events: &[&str]) -> Vec<String> {
    let mut cpe = acs.open_session(serial, n, events);
    let mut asked = Vec::new();
    let mut r = cpe.empty();
    while r.status == 200 {
        let xml = r.text();
        let id = between(&xml, "mustUnderstand=\"1\">", "</")
            .unwrap_or("x")
            .to_owned();
        let body_at = xml.find("Body>").unwrap();
        let rest = &xml[body_at..];
        let start = rest.find("<cwmp:").unwrap() + 6;
        let name: String = rest[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        asked.push(name.clone());
        let body = match name.as_str() {
            "GetParameterValues" => "<cwmp:GetParameterValuesResponse><ParameterList xsi:type=\"soapenc:Array\" soapenc:arrayType=\"cwmp:ParameterValueStruct[0]\"></ParameterList></cwmp:GetParameterValuesResponse>".to_owned(),
            "GetParameterNames" => "<cwmp:GetParameterNamesResponse><ParameterList></ParameterList></cwmp:GetParameterNamesResponse>".to_owned(),
            "SetParameterValues" => "<cwmp:SetParameterValuesResponse><Status>0</Status></cwmp:SetParameterValuesResponse>".to_owned(),
            other => format!("<cwmp:{other}Response></cwmp:{other}Response>"),
        };
        r = cpe.post_str(&response_xml(&id, &body));
        if asked.len() > 30 {
            break;
        }
    }
    asked
}

#[test]
fn a_device_answering_empty_lists_is_not_asked_again_at_every_session() {
    let acs = Acs::start(&[("ACS_PROVISIONING", "on"), ("ACS_HOSTS_COLLECT", "on")]);
    let first = session(&acs, "EMPTY1", 1, &["0 BOOTSTRAP", "1 BOOT"]);
    assert!(
        !first.is_empty() && first.len() <= 3,
        "first contact: {first:?}"
    );
    for i in 2..6 {
        let asked = session(&acs, "EMPTY1", i, &["2 PERIODIC"]);
        assert!(asked.is_empty(), "periodic session {i} asked {asked:?}");
    }
}
