//! Codec throughput: decode and encode of a realistic ~3 KB Inform and of
//! an InformResponse, against a baseline that only tokenises the same bytes
//! with quick-xml (the floor any XML-based decoder pays).
//!
//! `cargo run --release --example bench_codec`

use std::hint::black_box;
use std::time::Instant;

use gigafibre_acs::cwmp::Envelope;
use gigafibre_acs::session::inform_response;

/// The allocator the `gigafibre-acs` binary ships with, so the numbers are its numbers.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn inform() -> String {
    let mut params = String::new();
    let names = [
        ("Device.DeviceInfo.Manufacturer", "TP-Link", "string"),
        ("Device.DeviceInfo.ManufacturerOUI", "1C61B4", "string"),
        ("Device.DeviceInfo.ModelName", "EX220", "string"),
        ("Device.DeviceInfo.ProductClass", "Device2", "string"),
        ("Device.DeviceInfo.SerialNumber", "2226469000523", "string"),
        (
            "Device.DeviceInfo.HardwareVersion",
            "EX220 v1.20 00000000",
            "string",
        ),
        (
            "Device.DeviceInfo.SoftwareVersion",
            "0.14.0 2.0.0 v605f.0 Build 221227 Rel.55257n",
            "string",
        ),
        ("Device.DeviceInfo.UpTime", "864211", "unsignedInt"),
        ("Device.DeviceInfo.ProvisioningCode", "", "string"),
        (
            "Device.ManagementServer.ConnectionRequestURL",
            "http://100.64.12.7:7547/tr069",
            "string",
        ),
        ("Device.ManagementServer.ParameterKey", "a1b2c3d4", "string"),
        (
            "Device.ManagementServer.PeriodicInformEnable",
            "true",
            "boolean",
        ),
        (
            "Device.ManagementServer.PeriodicInformInterval",
            "300",
            "unsignedInt",
        ),
        ("Device.ManagementServer.NATDetected", "false", "boolean"),
        ("Device.RootDataModelVersion", "2.4", "string"),
        ("Device.WiFi.SSID.1.SSID", "Gigafibre-9E1E", "string"),
        ("Device.WiFi.SSID.3.SSID", "Gigafibre-9E1E-5G", "string"),
        (
            "Device.Ethernet.Interface.1.MACAddress",
            "1C:61:B4:9E:1E:00",
            "string",
        ),
        (
            "Device.IP.Interface.1.IPv4Address.1.IPAddress",
            "100.64.12.7",
            "string",
        ),
        (
            "Device.Optical.Interface.1.X_TP_GPON_Config.RXPower",
            "5624",
            "int",
        ),
    ];
    for (n, v, t) in names {
        params.push_str(&format!(
            "<ParameterValueStruct><Name>{n}</Name><Value xsi:type=\"xsd:{t}\">{v}</Value></ParameterValueStruct>\n"
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="urn:dslforum-org:cwmp-1-2">
<SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">1234</cwmp:ID></SOAP-ENV:Header>
<SOAP-ENV:Body><cwmp:Inform>
<DeviceId><Manufacturer>TP-Link</Manufacturer><OUI>1C61B4</OUI><ProductClass>Device2</ProductClass><SerialNumber>2226469000523</SerialNumber></DeviceId>
<Event SOAP-ENC:arrayType="cwmp:EventStruct[1]"><EventStruct><EventCode>2 PERIODIC</EventCode><CommandKey></CommandKey></EventStruct></Event>
<MaxEnvelopes>1</MaxEnvelopes><CurrentTime>2026-11-29T12:00:00Z</CurrentTime><RetryCount>0</RetryCount>
<ParameterList SOAP-ENC:arrayType="cwmp:ParameterValueStruct[{}]">
{params}</ParameterList></cwmp:Inform></SOAP-ENV:Body></SOAP-ENV:Envelope>"#,
        names.len()
    )
}

fn time<F: FnMut()>(iters: u32, mut f: F) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_secs_f64() / f64::from(iters)
}

fn main() {
    let xml = inform();
    let iters = 50_000;
    let baseline = time(iters, || {
        let mut r = quick_xml::NsReader::from_str(black_box(&xml));
        let mut n = 0u32;
        loop {
            match r.read_resolved_event() {
                Ok((_, quick_xml::events::Event::Eof)) | Err(_) => break,
                Ok(_) => n += 1,
            }
        }
        black_box(n);
    });
    let tree = time(iters, || {
        black_box(gigafibre_acs::cwmp::xml::Document::parse(black_box(&xml)).ok());
    });
    let decode = time(iters, || {
        black_box(Envelope::decode(black_box(xml.as_bytes())).ok());
    });
    let env = Envelope::decode(xml.as_bytes()).expect("bench Inform decodes");
    let encode_inform = time(iters, || {
        black_box(black_box(&env).encode());
    });
    let reply = inform_response(&env);
    let encode_response = time(iters, || {
        black_box(black_box(&reply).encode());
    });
    println!("Inform body: {} bytes, {iters} iterations each", xml.len());
    println!(
        "{:<42} {:>9} {:>12} {:>8}",
        "operation", "µs/op", "ops/s", "ratio"
    );
    for (name, t) in [
        ("baseline: quick-xml namespace-resolved scan", baseline),
        ("tree of the Inform (the decoder's scan)", tree),
        ("decode Inform (typed Envelope)", decode),
        ("encode Inform", encode_inform),
        ("encode InformResponse", encode_response),
    ] {
        println!(
            "{name:<42} {:>9.2} {:>12.0} {:>8.2}",
            t * 1e6,
            1.0 / t,
            t / baseline
        );
    }
}
