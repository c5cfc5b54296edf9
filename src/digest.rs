//! HTTP Digest authentication (RFC 7616) arithmetic, shared by the CPE
//! authenticator (the ACS as server) and the connection-request client (the
//! ACS as client). Pure functions: no I/O, no clocks.

use md5::{Digest as _, Md5};

use crate::config::DigestAlgorithm;

/// Parses an auth-param list: `k=v, k="quoted, with \"escapes\""`. Keys
/// are lower-cased. `None` when the syntax is broken or a key/value is
/// unreasonably long (the input comes from a peer).
pub fn parse_params(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => v.push(chars.next()?.1),
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => v.push(c),
                }
            }
            rest = &q[end? + 1..];
            value = v;
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return None;
        }
        if key.is_empty() || key.len() > 32 || value.len() > 4096 || out.len() >= 32 {
            return None;
        }
        out.push((key, value));
    }
    Some(out)
}

/// The value after an auth scheme name (case-insensitive), if it is that
/// scheme.
pub fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let value = value.trim_start();
    let head = value.get(..scheme.len())?;
    if !head.eq_ignore_ascii_case(scheme) {
        return None;
    }
    let rest = &value[scheme.len()..];
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(rest)
}

/// Everything that goes into a Digest `response`.
#[derive(Clone, Copy, Debug)]
pub struct DigestInput<'a> {
    pub algorithm: DigestAlgorithm,
    pub username: &'a str,
    pub realm: &'a str,
    pub password: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    pub nonce: &'a str,
    /// `Some("auth")` or none (RFC 2069 compatibility).
    pub qop: Option<&'a str>,
    pub nc: &'a str,
    pub cnonce: &'a str,
}

/// Lower-case hex of the algorithm's hash of `s`.
pub fn hash_hex(algorithm: DigestAlgorithm, s: &str) -> String {
    match algorithm {
        DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => hex(&Md5::digest(s.as_bytes())),
        DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => {
            hex(ring::digest::digest(&ring::digest::SHA256, s.as_bytes()).as_ref())
        }
    }
}

/// The `response` value for `input`.
pub fn response(input: &DigestInput<'_>) -> String {
    let h = |s: &str| hash_hex(input.algorithm, s);
    let mut ha1 = h(&format!(
        "{}:{}:{}",
        input.username, input.realm, input.password
    ));
    if matches!(
        input.algorithm,
        DigestAlgorithm::Md5Sess | DigestAlgorithm::Sha256Sess
    ) {
        ha1 = h(&format!("{ha1}:{}:{}", input.nonce, input.cnonce));
    }
    let ha2 = h(&format!("{}:{}", input.method, input.uri));
    match input.qop {
        None => h(&format!("{ha1}:{}:{ha2}", input.nonce)),
        Some(qop) => h(&format!(
            "{ha1}:{}:{}:{}:{qop}:{ha2}",
            input.nonce, input.nc, input.cnonce
        )),
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Compares without an early exit, so timing does not reveal how much of
/// a secret matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2617_example() {
        // RFC 2617 §3.5.
        let r = response(&DigestInput {
            algorithm: DigestAlgorithm::Md5,
            username: "Mufasa",
            realm: "testrealm@host.com",
            password: "Circle Of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop: Some("auth"),
            nc: "00000001",
            cnonce: "0a4f113b",
        });
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc_7616_sha256_example() {
        // RFC 7616 §3.9.1.
        let r = response(&DigestInput {
            algorithm: DigestAlgorithm::Sha256,
            username: "Mufasa",
            realm: "http-auth@example.org",
            password: "Circle of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            qop: Some("auth"),
            nc: "00000001",
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        });
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn params() {
        let p = parse_params(r#"realm="a, \"b\"", qop=auth, nonce="n""#).unwrap();
        assert_eq!(
            p,
            vec![
                ("realm".to_string(), "a, \"b\"".to_string()),
                ("qop".to_string(), "auth".to_string()),
                ("nonce".to_string(), "n".to_string()),
            ]
        );
        assert!(parse_params(r#"realm="unterminated"#).is_none());
        assert!(parse_params(r#"a="b" c=d"#).is_none());
        assert_eq!(strip_scheme("Digest realm=x", "digest"), Some(" realm=x"));
        assert_eq!(strip_scheme("Digestive", "Digest"), None);
    }
}
