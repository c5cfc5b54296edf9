//! The TR-111 UDP connection request (TR-111 Part 2 §2.2.2, carried into
//! TR-069 Annex G): an HTTP GET in one datagram,
//!
//! ```text
//! GET http://<addr>?ts=<ts>&id=<id>&un=<un>&cn=<cn>&sig=<sig> HTTP/1.1\r\n
//! Host: <addr>\r\n
//! \r\n
//! ```
//!
//! * `addr`: the CPE's UDPConnectionRequestAddress (`host:port`);
//! * `ts`: seconds since the Unix epoch when the ACS made the request;
//! * `id`: unique per connection request, and the same in every copy of
//!   it (the ACS repeats the datagram because UDP is lossy);
//! * `un`: the CPE's ConnectionRequestUsername;
//! * `cn`: a random cnonce;
//! * `sig`: hex HMAC-SHA1, key = ConnectionRequestPassword, text = the
//!   values of ts, id, un and cn concatenated, nothing between them.
//!
//! Decisions where the text leaves room:
//! * `sig` is written in upper-case hex (as in TR-111's example) and read
//!   in either case;
//! * values are percent-encoded in the query when they hold anything but
//!   RFC 3986 unreserved characters, and signed as decoded (ACS usernames
//!   are serial numbers, which never need encoding, so both readings of
//!   the spec agree in practice);
//! * the CPE ignores a message (replay, TR-069 Annex G) if its `ts` is
//!   older than that of the last valid message it acted on, or its `id` is
//!   that message's `id` (the repeated copies of one request);
//! * the request line may carry an absolute URI, a path or just `?…`, and
//!   `HTTP/1.0` is tolerated: CPE-side parsing is lenient, the ACS side
//!   always writes the form above.

use ring::hmac;
use thiserror::Error;

/// Longest datagram considered a connection request (they are ~200 bytes).
pub const MAX_MESSAGE_LEN: usize = 2048;
/// Longest value of one query field.
const MAX_FIELD_LEN: usize = 256;

/// Why a datagram is not an acceptable UDP connection request. Never
/// carries a value from the message or a credential.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UdpCrError {
    #[error("longer than {MAX_MESSAGE_LEN} bytes")]
    TooLong,
    #[error("not UTF-8 text")]
    NotText,
    #[error("not an HTTP GET request line")]
    NotHttpGet,
    #[error("query field `{0}` is missing or empty")]
    MissingField(&'static str),
    #[error("query field `{0}` is longer than 256 bytes")]
    FieldTooLong(&'static str),
    #[error("ts is not a number of seconds")]
    BadTimestamp,
    #[error("sig is not 40 hex digits")]
    BadSignatureFormat,
    #[error("un is not this device's connection-request username")]
    WrongUsername,
    #[error("the signature does not match")]
    BadSignature,
    #[error("ts is older than the last accepted connection request's")]
    Stale,
    #[error("id is the last accepted connection request's (a repeated copy)")]
    Duplicate,
}

/// A parsed UDP connection request (values percent-decoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpConnectionRequest {
    pub ts: u64,
    pub id: String,
    pub username: String,
    pub cnonce: String,
    /// `ts` as written (signed as written: leading zeros matter).
    ts_text: String,
    sig: [u8; 20],
}

fn hmac_key(password: &str) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes())
}

fn signed_text(ts: &str, id: &str, un: &str, cn: &str) -> String {
    let mut t = String::with_capacity(ts.len() + id.len() + un.len() + cn.len());
    for part in [ts, id, un, cn] {
        t.push_str(part);
    }
    t
}

/// `sig`: upper-case hex HMAC-SHA1(password, ts‖id‖un‖cn).
pub fn signature(ts: u64, id: &str, username: &str, cnonce: &str, password: &str) -> String {
    let text = signed_text(&ts.to_string(), id, username, cnonce);
    let tag = hmac::sign(&hmac_key(password), text.as_bytes());
    tag.as_ref().iter().map(|b| format!("{b:02X}")).collect()
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Percent-decoding; a `%` not followed by two hex digits stays as is.
fn decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let pair = (
            b.get(i + 1).copied().and_then(hex_val),
            b.get(i + 2).copied().and_then(hex_val),
        );
        match (c, pair) {
            (b'%', (Some(h), Some(l))) => {
                out.push(h << 4 | l);
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The datagram the ACS sends to `addr` (`host:port`, as in
/// UDPConnectionRequestAddress).
pub fn build(
    addr: &str,
    ts: u64,
    id: &str,
    username: &str,
    cnonce: &str,
    password: &str,
) -> String {
    format!(
        "GET http://{addr}?ts={ts}&id={}&un={}&cn={}&sig={} HTTP/1.1\r\nHost: {addr}\r\n\r\n",
        encode(id),
        encode(username),
        encode(cnonce),
        signature(ts, id, username, cnonce, password)
    )
}

impl UdpConnectionRequest {
    /// Parses a datagram; checks its form only (see [`verify`] for the
    /// signature and the replay rule).
    pub fn parse(bytes: &[u8]) -> Result<UdpConnectionRequest, UdpCrError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(UdpCrError::TooLong);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| UdpCrError::NotText)?;
        let line = text.lines().next().unwrap_or("");
        let mut parts = line.split(' ').filter(|p| !p.is_empty());
        let (Some("GET"), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(UdpCrError::NotHttpGet);
        };
        if !version.starts_with("HTTP/1.") {
            return Err(UdpCrError::NotHttpGet);
        }
        let query = target.split_once('?').map_or("", |(_, q)| q);
        let field = |name: &'static str| -> Result<String, UdpCrError> {
            let raw = query
                .split('&')
                .find_map(|kv| {
                    kv.split_once('=')
                        .filter(|(k, _)| *k == name)
                        .map(|(_, v)| v)
                })
                .filter(|v| !v.is_empty())
                .ok_or(UdpCrError::MissingField(name))?;
            if raw.len() > MAX_FIELD_LEN * 3 {
                return Err(UdpCrError::FieldTooLong(name));
            }
            let v = decode(raw);
            if v.len() > MAX_FIELD_LEN {
                return Err(UdpCrError::FieldTooLong(name));
            }
            Ok(v)
        };
        let ts_text = field("ts")?;
        if ts_text.len() > 20 || !ts_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(UdpCrError::BadTimestamp);
        }
        let ts = ts_text.parse().map_err(|_| UdpCrError::BadTimestamp)?;
        let id = field("id")?;
        let username = field("un")?;
        let cnonce = field("cn")?;
        let sig_text = field("sig")?;
        let mut sig = [0u8; 20];
        if sig_text.len() != 40 {
            return Err(UdpCrError::BadSignatureFormat);
        }
        for (i, out) in sig.iter_mut().enumerate() {
            let hi = sig_text.as_bytes().get(2 * i).copied().and_then(hex_val);
            let lo = sig_text
                .as_bytes()
                .get(2 * i + 1)
                .copied()
                .and_then(hex_val);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(UdpCrError::BadSignatureFormat);
            };
            *out = hi << 4 | lo;
        }
        Ok(UdpConnectionRequest {
            ts,
            id,
            username,
            cnonce,
            ts_text,
            sig,
        })
    }

    /// True if `sig` was made with `password` (constant time).
    pub fn signature_matches(&self, password: &str) -> bool {
        let text = signed_text(&self.ts_text, &self.id, &self.username, &self.cnonce);
        hmac::verify(&hmac_key(password), text.as_bytes(), &self.sig).is_ok()
    }
}

/// The CPE's memory of the last connection request it acted on, for the
/// replay rule.
#[derive(Clone, Debug, Default)]
pub struct ReplayGuard {
    last: Option<(u64, String)>,
}

impl ReplayGuard {
    /// Checks the replay rule for an authenticated request and, if it
    /// passes, remembers it. Only call with requests whose signature
    /// matched: forged datagrams must not move the state.
    pub fn admit(&mut self, req: &UdpConnectionRequest) -> Result<(), UdpCrError> {
        if let Some((ts, id)) = &self.last {
            if req.ts < *ts {
                return Err(UdpCrError::Stale);
            }
            if req.id == *id {
                return Err(UdpCrError::Duplicate);
            }
        }
        self.last = Some((req.ts, req.id.clone()));
        Ok(())
    }
}

/// The whole CPE-side check of a datagram against the device's current
/// connection-request credentials: form, username, signature, replay.
pub fn verify(
    bytes: &[u8],
    username: &str,
    password: &str,
    guard: &mut ReplayGuard,
) -> Result<UdpConnectionRequest, UdpCrError> {
    let req = UdpConnectionRequest::parse(bytes)?;
    if req.username != username {
        return Err(UdpCrError::WrongUsername);
    }
    if !req.signature_matches(password) {
        return Err(UdpCrError::BadSignature);
    }
    guard.admit(&req)?;
    Ok(req)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    const PW: &str = "Xq3vR8pLm2Zt7bNc4Wd9";

    fn msg(ts: u64, id: &str) -> String {
        build("203.0.113.7:51000", ts, id, "SN0001", "c0ffee42", PW)
    }

    #[test]
    fn the_message_has_the_tr111_form() {
        let m = msg(1_120_673_700, "1234");
        let sig = signature(1_120_673_700, "1234", "SN0001", "c0ffee42", PW);
        assert_eq!(
            m,
            format!(
                "GET http://203.0.113.7:51000?ts=1120673700&id=1234&un=SN0001&cn=c0ffee42&sig={sig} HTTP/1.1\r\nHost: 203.0.113.7:51000\r\n\r\n"
            )
        );
        assert_eq!(sig.len(), 40);
        assert!(
            sig.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        );
        // HMAC-SHA1(key, "1120673700" "1234" "SN0001" "c0ffee42"), computed
        // independently (`printf %s 11206737001234SN0001c0ffee42 | openssl
        // dgst -sha1 -hmac Xq3vR8pLm2Zt7bNc4Wd9`).
        assert_eq!(sig, SIG_1120673700_1234);
    }

    const SIG_1120673700_1234: &str = "F9BC6B111E9E57425AEEC4D8339318390897B5FD";

    #[test]
    fn the_cpe_accepts_a_signed_request_once() {
        let mut guard = ReplayGuard::default();
        let first = msg(1000, "a1");
        let r = verify(first.as_bytes(), "SN0001", PW, &mut guard).unwrap();
        assert_eq!(
            (r.ts, r.id.as_str(), r.cnonce.as_str()),
            (1000, "a1", "c0ffee42")
        );
        // The repeated copies of the same request are ignored.
        assert_eq!(
            verify(first.as_bytes(), "SN0001", PW, &mut guard),
            Err(UdpCrError::Duplicate)
        );
        // A new request in the same second is fine; an older one is not.
        assert!(verify(msg(1000, "a2").as_bytes(), "SN0001", PW, &mut guard).is_ok());
        assert_eq!(
            verify(msg(999, "a3").as_bytes(), "SN0001", PW, &mut guard),
            Err(UdpCrError::Stale)
        );
        assert!(verify(msg(1001, "a1").as_bytes(), "SN0001", PW, &mut guard).is_ok());
    }

    #[test]
    fn forgeries_are_refused_and_do_not_move_the_replay_state() {
        let mut guard = ReplayGuard::default();
        let forged = build("h:1", 5000, "x", "SN0001", "cn", "wrong-password");
        assert_eq!(
            verify(forged.as_bytes(), "SN0001", PW, &mut guard),
            Err(UdpCrError::BadSignature)
        );
        assert_eq!(
            verify(msg(10, "b").as_bytes(), "OTHER", PW, &mut guard),
            Err(UdpCrError::WrongUsername)
        );
        // The forged ts=5000 was not remembered.
        assert!(verify(msg(10, "b").as_bytes(), "SN0001", PW, &mut guard).is_ok());
        // Tampering with any signed field breaks the signature.
        let good = msg(20, "c");
        for (from, to) in [
            ("ts=20", "ts=21"),
            ("id=c", "id=d"),
            ("cn=c0ffee42", "cn=c0ffee43"),
        ] {
            let bad = good.replace(from, to);
            assert_eq!(
                verify(bad.as_bytes(), "SN0001", PW, &mut guard),
                Err(UdpCrError::BadSignature),
                "{bad}"
            );
        }
        let err = verify(forged.as_bytes(), "SN0001", PW, &mut guard).unwrap_err();
        assert!(!err.to_string().contains(PW));
    }

    #[test]
    fn lenient_forms_parse() {
        let sig = signature(7, "i", "u s", "c", PW);
        for m in [
            format!("GET ?ts=7&id=i&un=u%20s&cn=c&sig={sig} HTTP/1.1\r\n\r\n"),
            format!(
                "GET /?sig={}&cn=c&un=u+s&id=i&ts=7 HTTP/1.0\n",
                sig.to_lowercase()
            ),
            format!(
                "GET http://[2001:db8::1]:7547/?ts=7&id=i&un=u%20s&cn=c&sig={sig}&x=y HTTP/1.1\r\nHost: x\r\n\r\n"
            ),
        ] {
            let r = UdpConnectionRequest::parse(m.as_bytes()).unwrap();
            assert_eq!(
                r.username,
                if m.contains("u+s") { "u+s" } else { "u s" },
                "{m}"
            );
            if r.username == "u s" {
                assert!(r.signature_matches(PW), "{m}");
            }
        }
        // Usernames that need encoding survive the round trip.
        let m = build("h:1", 9, "i&d", "a b&c=d%", "c", PW);
        let r = UdpConnectionRequest::parse(m.as_bytes()).unwrap();
        assert_eq!((r.id.as_str(), r.username.as_str()), ("i&d", "a b&c=d%"));
        assert!(r.signature_matches(PW));
    }

    #[test]
    fn malformed_messages_are_precise_errors() {
        let p = |s: &str| UdpConnectionRequest::parse(s.as_bytes()).unwrap_err();
        assert_eq!(p("POST / HTTP/1.1\r\n"), UdpCrError::NotHttpGet);
        assert_eq!(p("GET /?ts=1 SIP/2.0\r\n"), UdpCrError::NotHttpGet);
        assert_eq!(p("GET /?id=1 HTTP/1.1"), UdpCrError::MissingField("ts"));
        assert_eq!(p("GET /?ts=-1&id=1 HTTP/1.1"), UdpCrError::BadTimestamp);
        assert_eq!(
            p("GET /?ts=1&id=1&un=u&cn=c&sig=xyz HTTP/1.1"),
            UdpCrError::BadSignatureFormat
        );
        assert_eq!(
            p(&format!("GET /?ts=1&id={}&un=u HTTP/1.1", "i".repeat(300))),
            UdpCrError::FieldTooLong("id")
        );
        assert_eq!(
            UdpConnectionRequest::parse(&[0xff, 0xfe]).unwrap_err(),
            UdpCrError::NotText
        );
        assert_eq!(
            UdpConnectionRequest::parse(&vec![b'G'; 3000]).unwrap_err(),
            UdpCrError::TooLong
        );
    }

    proptest! {
        #[test]
        fn built_messages_verify(ts in any::<u64>(), id in "[ -~]{1,40}", un in "[^\u{0}]{1,40}",
                                 cn in "[a-zA-Z0-9]{1,32}", pw in "[ -~]{0,40}") {
            let m = build("198.51.100.1:3478", ts, &id, &un, &cn, &pw);
            let mut guard = ReplayGuard::default();
            let r = verify(m.as_bytes(), &un, &pw, &mut guard).unwrap();
            prop_assert_eq!((r.ts, r.id, r.username, r.cnonce), (ts, id, un, cn));
            prop_assert_eq!(
                verify(m.as_bytes(), &r_un(&m), &format!("{pw}x"), &mut ReplayGuard::default()).err(),
                Some(UdpCrError::BadSignature)
            );
        }

        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = verify(&bytes, "u", "p", &mut ReplayGuard::default());
        }

        #[test]
        fn any_text_never_panics(s in "GET [ -~]{0,200} HTTP/1.1") {
            let _ = verify(s.as_bytes(), "u", "p", &mut ReplayGuard::default());
        }
    }

    /// The `un` a message carries, decoded.
    fn r_un(m: &str) -> String {
        UdpConnectionRequest::parse(m.as_bytes()).unwrap().username
    }
}
