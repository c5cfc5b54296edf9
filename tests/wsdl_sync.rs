//! Keeps `wsdl/` and the codec in step: the WSDL's operations are exactly
//! the requests the codec knows, every example in `wsdl/examples/` decodes,
//! and what our encoder writes for it validates against `wsdl/cwmp-acs.xsd`
//! (with xmllint, which `.ci/run` installs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use gigafibre_acs::cwmp::rpc::{ACS_REQUESTS, CPE_REQUESTS};
use gigafibre_acs::cwmp::{Body, CwmpVersion, Envelope};
use quick_xml::Reader;
use quick_xml::events::Event;

fn wsdl_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("wsdl")
}

/// Operation names of `<wsdl:portType name="...">`.
fn port_type_operations(wsdl: &str, port_type: &str) -> BTreeSet<String> {
    let mut reader = Reader::from_str(wsdl);
    let mut inside = false;
    let mut ops = BTreeSet::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) if e.local_name().as_ref() == "portType" => {
                let name = e.try_get_attribute("name").unwrap().unwrap();
                inside = name.value == port_type;
            }
            Event::End(e) if e.local_name().as_ref() == "portType" => inside = false,
            Event::Start(e) | Event::Empty(e)
                if inside && e.local_name().as_ref() == "operation" =>
            {
                let name = e.try_get_attribute("name").unwrap().unwrap();
                ops.insert(name.value.into_owned());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    ops
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn wsdl_operations_match_the_codec() {
    let wsdl = std::fs::read_to_string(wsdl_dir().join("cwmp-acs.wsdl")).unwrap();
    assert_eq!(port_type_operations(&wsdl, "AcsService"), set(CPE_REQUESTS));
    assert_eq!(port_type_operations(&wsdl, "CpeService"), set(ACS_REQUESTS));
    // Every typed message is a request or the response of one, and each
    // operation's response exists as a typed message.
    let known = set(Body::MESSAGE_NAMES);
    let mut expected = BTreeSet::new();
    for op in CPE_REQUESTS.iter().chain(ACS_REQUESTS) {
        expected.insert(op.to_string());
        expected.insert(format!("{op}Response"));
    }
    assert_eq!(known, expected);
}

const ENV_OPEN: &str = r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>"#;
const ENV_CLOSE: &str = "</SOAP-ENV:Body></SOAP-ENV:Envelope>";

/// Wraps an example fragment in an envelope, as a CPE or the ACS would send it.
fn wrap(name: &str, fragment: &str) -> String {
    let fragment = fragment.trim_start();
    let fragment = match fragment.strip_prefix("<?xml") {
        Some(rest) => &rest[rest.find("?>").unwrap() + 2..],
        None => fragment,
    };
    if name == "Fault" {
        format!(
            "{ENV_OPEN}<SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>CWMP fault</faultstring><detail>{fragment}</detail></SOAP-ENV:Fault>{ENV_CLOSE}"
        )
    } else {
        format!("{ENV_OPEN}{fragment}{ENV_CLOSE}")
    }
}

/// Cuts the RPC element (or the cwmp:Fault detail) out of an encoded
/// envelope and declares on it the namespaces it uses.
fn fragment_of(encoded: &str, name: &str) -> String {
    let (open, close) = if name == "Fault" {
        ("<cwmp:Fault>", "</cwmp:Fault>")
    } else {
        ("<SOAP-ENV:Body>", "</SOAP-ENV:Body>")
    };
    let start = encoded.find(open).unwrap() + if name == "Fault" { 0 } else { open.len() };
    let end = encoded.rfind(close).unwrap() + if name == "Fault" { close.len() } else { 0 };
    let element = &encoded[start..end];
    let name_end = element.find(['>', ' ', '/']).unwrap();
    format!(
        "{} xmlns:cwmp=\"urn:dslforum-org:cwmp-1-2\" xmlns:SOAP-ENC=\"http://schemas.xmlsoap.org/soap/encoding/\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"{}",
        &element[..name_end],
        &element[name_end..]
    )
}

#[test]
fn encoder_output_validates_against_our_schema() {
    let examples = wsdl_dir().join("examples");
    let out_dir = tempfile::tempdir().unwrap();
    let mut seen = BTreeSet::new();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("xml") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let env =
            Envelope::decode(wrap(&name, &std::fs::read_to_string(&path).unwrap()).as_bytes())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(env.body.name(), name, "{}", path.display());
        let ours = Envelope {
            version: CwmpVersion::V1_2,
            ..env
        };
        let out = out_dir.path().join(format!("{name}.xml"));
        std::fs::write(&out, fragment_of(&ours.encode(), &name)).unwrap();
        files.push(out);
        seen.insert(name);
    }
    let mut all = set(Body::MESSAGE_NAMES);
    all.insert("Fault".into());
    assert_eq!(seen, all, "wsdl/examples has one example per message");

    if Command::new("xmllint").arg("--version").output().is_err() {
        eprintln!(
            "xmllint not installed (apt-get install libxml2-utils): schema validation skipped"
        );
        return;
    }
    let output = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(wsdl_dir().join("cwmp-acs.xsd"))
        .args(&files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "our encoder wrote XML that wsdl/cwmp-acs.xsd rejects:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn schema_rejects_the_invalid_examples() {
    if Command::new("xmllint").arg("--version").output().is_err() {
        eprintln!("xmllint not installed (apt-get install libxml2-utils): schema check skipped");
        return;
    }
    let dir = wsdl_dir().join("invalid");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("xml") {
            continue;
        }
        let out = Command::new("xmllint")
            .args(["--noout", "--nonet", "--schema"])
            .arg(wsdl_dir().join("cwmp-acs.xsd"))
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "the schema accepts {}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 10);
}
