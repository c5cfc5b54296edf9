//! CPE authentication: HTTP Basic and Digest (RFC 7616: MD5, SHA-256 and
//! their `-sess` forms, `qop=auth`, and RFC 2069 responses without qop).
//!
//! Digest nonces are stateless: `timestamp ‖ random ‖ HMAC(key, timestamp ‖
//! random)`, so a nonce issued on one connection is valid on the next,
//! which real CPEs need (many reconnect after a 401), and no table of
//! nonces can be exhausted. Expired nonces get a `stale=true` challenge.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::{Config, CpeAuthMode, DigestAlgorithm};
use crate::store::CpeCredential;

/// Outcome of checking a request's credentials.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Authenticated (or no authentication configured).
    Allowed {
        username: Option<String>,
        /// Device the credential is bound to, if it is a per-device one.
        bound_device: Option<String>,
    },
    /// 401 with these `WWW-Authenticate` values, and why (for the log).
    Challenge {
        headers: Vec<String>,
        reason: &'static str,
    },
}

/// Checks CPE credentials.
pub struct CpeAuthenticator {
    mode: CpeAuthMode,
    realm: String,
    algorithms: Vec<DigestAlgorithm>,
    username: String,
    password: String,
    nonce_key: hmac::Key,
    nonce_ttl: Duration,
    rng: SystemRandom,
    opaque: String,
}

const NONCE_MAC_LEN: usize = 16;

impl CpeAuthenticator {
    pub fn new(config: &Config) -> CpeAuthenticator {
        let rng = SystemRandom::new();
        let nonce_key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, &random_bytes::<32>(&rng)));
        CpeAuthenticator {
            mode: config.cpe_auth,
            realm: config.digest_realm.clone(),
            algorithms: config.digest_algorithms.clone(),
            username: config.cpe_username.clone(),
            password: config.cpe_password.expose().to_owned(),
            nonce_key,
            nonce_ttl: config.digest_nonce_ttl,
            opaque: hex(&random_bytes::<8>(&rng)),
            rng,
        }
    }

    pub fn mode(&self) -> CpeAuthMode {
        self.mode
    }

    /// Checks the `Authorization` header of a request to `uri`.
    /// `lookup` finds per-device credentials by username.
    pub fn check(
        &self,
        method: &str,
        uri: &str,
        authorization: Option<&str>,
        lookup: &dyn Fn(&str) -> Option<CpeCredential>,
        now: SystemTime,
    ) -> AuthOutcome {
        match self.mode {
            CpeAuthMode::None => AuthOutcome::Allowed {
                username: None,
                bound_device: None,
            },
            CpeAuthMode::Basic => self.check_basic(authorization, lookup),
            CpeAuthMode::Digest => self.check_digest(method, uri, authorization, lookup, now),
        }
    }

    /// The password for `username`: a per-device credential first, then the
    /// global one.
    fn password_for(
        &self,
        username: &str,
        lookup: &dyn Fn(&str) -> Option<CpeCredential>,
    ) -> Option<(String, Option<String>)> {
        if let Some(c) = lookup(username) {
            return Some((c.password, c.device_id));
        }
        (username == self.username && !self.password.is_empty())
            .then(|| (self.password.clone(), None))
    }

    fn basic_challenge(&self, reason: &'static str) -> AuthOutcome {
        AuthOutcome::Challenge {
            headers: vec![format!("Basic realm=\"{}\"", self.realm)],
            reason,
        }
    }

    fn check_basic(
        &self,
        authorization: Option<&str>,
        lookup: &dyn Fn(&str) -> Option<CpeCredential>,
    ) -> AuthOutcome {
        let Some(value) = authorization else {
            return self.basic_challenge("no credentials");
        };
        let Some(encoded) = strip_scheme(value, "Basic") else {
            return self.basic_challenge("not Basic credentials");
        };
        let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
            return self.basic_challenge("malformed Basic credentials");
        };
        let decoded = String::from_utf8_lossy(&decoded);
        let Some((user, pass)) = decoded.split_once(':') else {
            return self.basic_challenge("malformed Basic credentials");
        };
        match self.password_for(user, lookup) {
            Some((expected, bound_device))
                if constant_time_eq(pass.as_bytes(), expected.as_bytes()) =>
            {
                AuthOutcome::Allowed {
                    username: Some(user.to_owned()),
                    bound_device,
                }
            }
            _ => self.basic_challenge("wrong username or password"),
        }
    }

    fn digest_challenge(&self, stale: bool, now: SystemTime, reason: &'static str) -> AuthOutcome {
        let nonce = self.new_nonce(now);
        let headers = self
            .algorithms
            .iter()
            .map(|alg| {
                format!(
                    "Digest realm=\"{}\", qop=\"auth\", algorithm={}, nonce=\"{}\", opaque=\"{}\"{}",
                    self.realm,
                    alg.name(),
                    nonce,
                    self.opaque,
                    if stale { ", stale=true" } else { "" }
                )
            })
            .collect();
        AuthOutcome::Challenge { headers, reason }
    }

    fn new_nonce(&self, now: SystemTime) -> String {
        let mut raw = [0u8; 16 + NONCE_MAC_LEN];
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        raw[..8].copy_from_slice(&secs.to_be_bytes());
        raw[8..16].copy_from_slice(&random_bytes::<8>(&self.rng));
        let tag = hmac::sign(&self.nonce_key, &raw[..16]);
        raw[16..].copy_from_slice(&tag.as_ref()[..NONCE_MAC_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// `Ok(())` for a nonce we issued that is still fresh; `Err(true)` for
    /// one we issued that expired; `Err(false)` for a forgery.
    fn verify_nonce(&self, nonce: &str, now: SystemTime) -> Result<(), bool> {
        let raw = URL_SAFE_NO_PAD.decode(nonce).map_err(|_| false)?;
        if raw.len() != 16 + NONCE_MAC_LEN {
            return Err(false);
        }
        let tag = hmac::sign(&self.nonce_key, &raw[..16]);
        if !constant_time_eq(&tag.as_ref()[..NONCE_MAC_LEN], &raw[16..]) {
            return Err(false);
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        let issued = UNIX_EPOCH + Duration::from_secs(u64::from_be_bytes(ts));
        match now.duration_since(issued) {
            Ok(age) if age <= self.nonce_ttl => Ok(()),
            // A clock step backwards by a little is not an attack.
            Err(e) if e.duration() < Duration::from_secs(60) => Ok(()),
            _ => Err(true),
        }
    }

    fn check_digest(
        &self,
        method: &str,
        uri: &str,
        authorization: Option<&str>,
        lookup: &dyn Fn(&str) -> Option<CpeCredential>,
        now: SystemTime,
    ) -> AuthOutcome {
        let Some(value) = authorization else {
            return self.digest_challenge(false, now, "no credentials");
        };
        let Some(params) = strip_scheme(value, "Digest") else {
            return self.digest_challenge(false, now, "not Digest credentials");
        };
        let Some(p) = DigestParams::parse(params) else {
            return self.digest_challenge(false, now, "malformed Digest credentials");
        };
        let alg = match p.algorithm.as_deref() {
            None => DigestAlgorithm::Md5,
            Some(a) => match DigestAlgorithm::parse(a) {
                Some(a) => a,
                None => return self.digest_challenge(false, now, "unsupported Digest algorithm"),
            },
        };
        if !self.algorithms.contains(&alg) {
            return self.digest_challenge(false, now, "Digest algorithm not offered");
        }
        if p.realm != self.realm {
            return self.digest_challenge(false, now, "wrong realm");
        }
        if !uri_matches(&p.uri, uri) {
            return self.digest_challenge(false, now, "Digest uri does not match the request");
        }
        match self.verify_nonce(&p.nonce, now) {
            Ok(()) => {}
            Err(true) => return self.digest_challenge(true, now, "stale nonce"),
            Err(false) => return self.digest_challenge(false, now, "nonce not issued by this ACS"),
        }
        let Some((password, bound_device)) = self.password_for(&p.username, lookup) else {
            return self.digest_challenge(false, now, "unknown username");
        };
        let qop = match p.qop.as_deref() {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => Some("auth"),
            Some(_) => return self.digest_challenge(false, now, "unsupported qop"),
        };
        let expected = crate::digest::response(&crate::digest::DigestInput {
            algorithm: alg,
            username: &p.username,
            realm: &self.realm,
            password: &password,
            method,
            uri: &p.uri,
            nonce: &p.nonce,
            qop,
            nc: p.nc.as_deref().unwrap_or(""),
            cnonce: p.cnonce.as_deref().unwrap_or(""),
        });
        if constant_time_eq(
            expected.as_bytes(),
            p.response.to_ascii_lowercase().as_bytes(),
        ) {
            AuthOutcome::Allowed {
                username: Some(p.username),
                bound_device,
            }
        } else {
            self.digest_challenge(false, now, "wrong username or password")
        }
    }
}

/// The Digest `uri` names the request's target; CPEs write the path, the
/// path with query, or an absolute URL.
fn uri_matches(digest_uri: &str, request_uri: &str) -> bool {
    if digest_uri == request_uri {
        return true;
    }
    let path_of = |u: &str| -> String {
        let u = match u.find("://") {
            Some(i) => {
                let rest = &u[i + 3..];
                rest.find('/').map(|j| &rest[j..]).unwrap_or("/")
            }
            None => u,
        };
        if u.is_empty() { "/".into() } else { u.into() }
    };
    path_of(digest_uri) == path_of(request_uri)
}

/// The parameters of a Digest `Authorization` header (what follows the
/// `Digest` scheme name), as [`CpeAuthenticator::check`] reads them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DigestParams {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

impl DigestParams {
    /// Parses `k=v, k="quoted, with \"escapes\""` lists; `None` when a
    /// required field is missing or the syntax is broken. Pure (public for
    /// the `digest` fuzz target).
    pub fn parse(s: &str) -> Option<DigestParams> {
        let mut p = DigestParams::default();
        let (mut username, mut realm, mut nonce, mut uri, mut response) =
            (None, None, None, None, None);
        for (key, value) in crate::digest::parse_params(s)? {
            match key.as_str() {
                "username" => username = Some(value),
                "realm" => realm = Some(value),
                "nonce" => nonce = Some(value),
                "uri" => uri = Some(value),
                "response" => response = Some(value),
                "algorithm" => p.algorithm = Some(value),
                "qop" => p.qop = Some(value),
                "nc" => p.nc = Some(value),
                "cnonce" => p.cnonce = Some(value),
                _ => {}
            }
        }
        p.username = username?;
        p.realm = realm?;
        p.nonce = nonce?;
        p.uri = uri?;
        p.response = response?;
        if p.qop.is_some() && (p.nc.is_none() || p.cnonce.is_none()) {
            return None;
        }
        Some(p)
    }
}

fn random_bytes<const N: usize>(rng: &SystemRandom) -> [u8; N] {
    let mut b = [0u8; N];
    // The system RNG only fails if the OS has none; a zeroed value then
    // still works (the HMAC key is what protects nonces).
    let _ = rng.fill(&mut b);
    b
}

pub use crate::digest::{constant_time_eq, hex, strip_scheme};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn authenticator(mode: CpeAuthMode) -> CpeAuthenticator {
        let (mut config, _) = crate::config::load(None, &|_| None).unwrap();
        config.cpe_auth = mode;
        config.cpe_username = "cpe".into();
        config.cpe_password = Secret::new("s3cret");
        config.digest_algorithms = vec![DigestAlgorithm::Md5, DigestAlgorithm::Sha256];
        CpeAuthenticator::new(&config)
    }

    fn no_store(_: &str) -> Option<CpeCredential> {
        None
    }

    fn challenge_nonce(outcome: &AuthOutcome) -> String {
        let AuthOutcome::Challenge { headers, .. } = outcome else {
            panic!("expected a challenge, got {outcome:?}")
        };
        let h = &headers[0];
        let start = h.find("nonce=\"").unwrap() + 7;
        h[start..start + h[start..].find('"').unwrap()].to_owned()
    }

    fn md5_hex(s: &str) -> String {
        crate::digest::hash_hex(DigestAlgorithm::Md5, s)
    }

    fn digest_header(nonce: &str, password: &str, uri: &str) -> String {
        let ha1 = md5_hex(&format!("cpe:gigafibre-acs:{password}"));
        let ha2 = md5_hex(&format!("POST:{uri}"));
        let response = md5_hex(&format!("{ha1}:{nonce}:00000001:abcd:auth:{ha2}"));
        format!(
            "Digest username=\"cpe\", realm=\"gigafibre-acs\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"abcd\", response=\"{response}\""
        )
    }

    #[test]
    fn rfc_7616_md5_example_response() {
        // RFC 7616 section 3.9.1 (MD5): the reference response for
        // Mufasa / "Circle of Life".
        let ha1 = md5_hex("Mufasa:http-auth@example.org:Circle of Life");
        let ha2 = md5_hex("GET:/dir/index.html");
        let r = md5_hex(&format!(
            "{ha1}:7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v:00000001:f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ:auth:{ha2}"
        ));
        assert_eq!(r, "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn digest_round_trip_and_failures() {
        let a = authenticator(CpeAuthMode::Digest);
        let now = SystemTime::now();
        let first = a.check("POST", "/", None, &no_store, now);
        let nonce = challenge_nonce(&first);
        let AuthOutcome::Challenge { headers, .. } = &first else {
            panic!()
        };
        assert_eq!(headers.len(), 2);
        assert!(headers[0].contains("algorithm=MD5") && headers[1].contains("algorithm=SHA-256"));

        let ok = a.check(
            "POST",
            "/",
            Some(&digest_header(&nonce, "s3cret", "/")),
            &no_store,
            now,
        );
        assert_eq!(
            ok,
            AuthOutcome::Allowed {
                username: Some("cpe".into()),
                bound_device: None
            }
        );
        // The nonce stays valid on a new connection (stateless).
        let again = a.check(
            "POST",
            "/",
            Some(&digest_header(&nonce, "s3cret", "/")),
            &no_store,
            now + Duration::from_secs(5),
        );
        assert!(matches!(again, AuthOutcome::Allowed { .. }));

        let wrong = a.check(
            "POST",
            "/",
            Some(&digest_header(&nonce, "nope", "/")),
            &no_store,
            now,
        );
        assert!(matches!(
            wrong,
            AuthOutcome::Challenge {
                reason: "wrong username or password",
                ..
            }
        ));
        let stale = a.check(
            "POST",
            "/",
            Some(&digest_header(&nonce, "s3cret", "/")),
            &no_store,
            now + Duration::from_secs(301),
        );
        let AuthOutcome::Challenge { headers, reason } = stale else {
            panic!()
        };
        assert_eq!(reason, "stale nonce");
        assert!(headers[0].contains("stale=true"));
        let forged = a.check(
            "POST",
            "/",
            Some(&digest_header(
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "s3cret",
                "/",
            )),
            &no_store,
            now,
        );
        assert!(matches!(
            forged,
            AuthOutcome::Challenge {
                reason: "nonce not issued by this ACS",
                ..
            }
        ));
        // Another ACS instance (other key) does not accept this one's nonces.
        let other = authenticator(CpeAuthMode::Digest);
        assert!(matches!(
            other.check(
                "POST",
                "/",
                Some(&digest_header(&nonce, "s3cret", "/")),
                &no_store,
                now
            ),
            AuthOutcome::Challenge { .. }
        ));
        // An absolute-URL uri for the same path is accepted.
        let abs = a.check(
            "POST",
            "/",
            Some(&digest_header(&nonce, "s3cret", "http://acs.example:7547/")),
            &no_store,
            now,
        );
        assert!(matches!(abs, AuthOutcome::Allowed { .. }));
    }

    #[test]
    fn per_device_credentials_take_precedence() {
        let a = authenticator(CpeAuthMode::Basic);
        let lookup = |u: &str| {
            (u == "SN123").then(|| CpeCredential {
                username: "SN123".into(),
                password: "devpass".into(),
                device_id: Some("OUI-PC-SN123".into()),
            })
        };
        let basic = |u: &str, p: &str| format!("Basic {}", STANDARD.encode(format!("{u}:{p}")));
        assert_eq!(
            a.check(
                "POST",
                "/",
                Some(&basic("SN123", "devpass")),
                &lookup,
                SystemTime::now()
            ),
            AuthOutcome::Allowed {
                username: Some("SN123".into()),
                bound_device: Some("OUI-PC-SN123".into())
            }
        );
        assert!(matches!(
            a.check(
                "POST",
                "/",
                Some(&basic("cpe", "s3cret")),
                &lookup,
                SystemTime::now()
            ),
            AuthOutcome::Allowed { .. }
        ));
        assert!(matches!(
            a.check(
                "POST",
                "/",
                Some(&basic("cpe", "")),
                &lookup,
                SystemTime::now()
            ),
            AuthOutcome::Challenge { .. }
        ));
        assert!(matches!(
            a.check("POST", "/", Some("Basic !!!"), &lookup, SystemTime::now()),
            AuthOutcome::Challenge { .. }
        ));
        assert!(matches!(
            a.check("POST", "/", None, &lookup, SystemTime::now()),
            AuthOutcome::Challenge { .. }
        ));
    }

    #[test]
    fn digest_parser_handles_quoting_and_rejects_garbage() {
        let p = DigestParams::parse(r#"username="a\"b", realm="r, x", nonce=n, uri="/", response="R", qop=auth, nc=1, cnonce="c""#).unwrap();
        assert_eq!(p.username, "a\"b");
        assert_eq!(p.realm, "r, x");
        assert_eq!(p.nonce, "n");
        assert!(DigestParams::parse("username=\"unterminated").is_none());
        assert!(DigestParams::parse("garbage").is_none());
        assert!(DigestParams::parse("username=a, realm=b").is_none());
        assert!(
            DigestParams::parse(
                r#"username="a", realm="b", nonce="c", uri="/", response="d", qop=auth"#
            )
            .is_none()
        );
    }
}
