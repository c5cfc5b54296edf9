//! Which transport a connection request tries first (pure).
//!
//! A device behind NAT reports a ConnectionRequestURL on its private side
//! (`http://192.168.1.10:7547/`); an HTTP request to it can only time out,
//! so when such a device also has a TR-111 UDP address the ACS goes
//! straight to UDP. Everything else tries HTTP first and falls back to UDP
//! only when HTTP could not connect at all.

use std::net::{IpAddr, SocketAddr};

use reqwest::Url;

/// True when a UDP connection request to `udp` should be tried before the
/// HTTP one to `url`: the device says it is behind NAT (`NATDetected`), or
/// its URL names a private address other than the one its UDP binding
/// was seen at (so the URL is the inside of a NAT).
pub fn udp_first(url: Option<&str>, udp: SocketAddr, nat_detected: bool) -> bool {
    if nat_detected {
        return true;
    }
    let host = url.and_then(|u| Url::parse(u.trim()).ok()).and_then(|u| {
        let h = u.host_str()?;
        h.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()
    });
    let Some(host) = host else {
        // No URL at all: UDP is the only way. A name (it may resolve
        // publicly) or a malformed URL (HTTP says what is wrong): HTTP.
        return url.is_none_or(|u| u.trim().is_empty());
    };
    is_private(host) && host != udp.ip().to_canonical()
}

/// RFC 1918, shared address space (RFC 6598, carrier-grade NAT), link
/// local, and IPv6 unique-local / link-local: addresses a NAT hides.
fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let [x, y, ..] = a.octets();
            a.is_private() || a.is_link_local() || (x == 100 && (64..128).contains(&y))
        }
        IpAddr::V6(a) => {
            let first = a.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_private_url_behind_a_public_binding_goes_udp_first() {
        let public = addr("203.0.113.7:40001");
        for url in [
            "http://192.168.1.10:7547/",
            "http://10.0.0.2/cr",
            "http://172.16.4.4:7547/",
            "http://100.72.1.9:7547/",
            "http://[fd00::1]:7547/",
            "http://169.254.3.3/",
        ] {
            assert!(udp_first(Some(url), public, false), "{url}");
        }
    }

    #[test]
    fn reachable_urls_go_http_first() {
        let public = addr("203.0.113.7:40001");
        assert!(!udp_first(Some("http://203.0.113.7:7547/"), public, false));
        assert!(!udp_first(Some("http://198.51.100.1:7547/"), public, false));
        assert!(!udp_first(Some("http://cpe.example.net/"), public, false));
        // Loopback and a private network without NAT in between: the URL
        // and the binding agree.
        assert!(!udp_first(
            Some("http://127.0.0.1:7547/"),
            addr("127.0.0.1:5000"),
            false
        ));
        assert!(!udp_first(
            Some("http://10.1.1.1:7547/"),
            addr("10.1.1.1:5000"),
            false
        ));
        assert!(!udp_first(
            Some("http://10.1.1.1:7547/"),
            addr("[::ffff:10.1.1.1]:5000"),
            false
        ));
    }

    #[test]
    fn nat_detected_or_no_url_goes_udp_first() {
        let a = addr("127.0.0.1:5000");
        assert!(udp_first(Some("http://127.0.0.1:7547/"), a, true));
        assert!(udp_first(None, a, false));
        assert!(udp_first(Some("  "), a, false));
        // Garbage URL: HTTP will say what is wrong with it.
        assert!(!udp_first(Some("not a url"), a, false));
    }
}
