//! Answering a device's `WWW-Authenticate` challenge to a connection
//! request: pure, so every branch is tested without a socket.

use crate::config::DigestAlgorithm;
use crate::digest::{self, DigestInput};

/// A challenge the ACS can answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Digest {
        realm: String,
        nonce: String,
        opaque: Option<String>,
        algorithm: DigestAlgorithm,
        /// Whether the device offered `qop=auth` (else RFC 2069 style).
        qop_auth: bool,
    },
    Basic,
}

/// Why no answer can be given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    #[error("the device's 401 carries no WWW-Authenticate challenge")]
    Missing,
    #[error("the device's challenge is malformed")]
    Malformed,
    #[error("the device asks for an unsupported scheme or algorithm ({0})")]
    Unsupported(String),
}

/// Picks the challenge to answer among the `WWW-Authenticate` values:
/// Digest (SHA-256 before MD5) over Basic.
pub fn pick<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Challenge, ChallengeError> {
    let mut best: Option<Challenge> = None;
    let mut seen_any = false;
    let mut last_problem = ChallengeError::Missing;
    for v in values {
        seen_any = true;
        let candidate = if let Some(params) = digest::strip_scheme(v, "Digest") {
            match parse_digest(params) {
                Ok(c) => c,
                Err(e) => {
                    last_problem = e;
                    continue;
                }
            }
        } else if digest::strip_scheme(v, "Basic").is_some() {
            Challenge::Basic
        } else {
            let scheme = v.split_whitespace().next().unwrap_or("").to_owned();
            last_problem = ChallengeError::Unsupported(scheme.chars().take(20).collect::<String>());
            continue;
        };
        best = Some(match best {
            None => candidate,
            Some(current) => better(current, candidate),
        });
    }
    match best {
        Some(c) => Ok(c),
        None if !seen_any => Err(ChallengeError::Missing),
        None => Err(last_problem),
    }
}

fn rank(c: &Challenge) -> u8 {
    match c {
        Challenge::Basic => 0,
        Challenge::Digest { algorithm, .. } => match algorithm {
            DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => 1,
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => 2,
        },
    }
}

fn better(a: Challenge, b: Challenge) -> Challenge {
    if rank(&b) > rank(&a) { b } else { a }
}

fn parse_digest(params: &str) -> Result<Challenge, ChallengeError> {
    let params = digest::parse_params(params).ok_or(ChallengeError::Malformed)?;
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let realm = get("realm").ok_or(ChallengeError::Malformed)?;
    let nonce = get("nonce").ok_or(ChallengeError::Malformed)?;
    let algorithm = match get("algorithm") {
        None => DigestAlgorithm::Md5,
        Some(a) => DigestAlgorithm::parse(&a)
            .ok_or_else(|| ChallengeError::Unsupported(a.chars().take(20).collect()))?,
    };
    let qop_auth = match get("qop") {
        None => false,
        Some(q) => {
            if q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth")) {
                true
            } else {
                return Err(ChallengeError::Unsupported(format!(
                    "qop={}",
                    q.chars().take(20).collect::<String>()
                )));
            }
        }
    };
    Ok(Challenge::Digest {
        realm,
        nonce,
        opaque: get("opaque"),
        algorithm,
        qop_auth,
    })
}

/// Quotes a value for an auth-param (escaping `"` and `\`).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The `Authorization` value answering a Digest challenge for `GET uri`.
pub fn digest_authorization(
    challenge: &Challenge,
    username: &str,
    password: &str,
    uri: &str,
    cnonce: &str,
) -> Option<String> {
    let Challenge::Digest {
        realm,
        nonce,
        opaque,
        algorithm,
        qop_auth,
    } = challenge
    else {
        return None;
    };
    let nc = "00000001";
    let response = digest::response(&DigestInput {
        algorithm: *algorithm,
        username,
        realm,
        password,
        method: "GET",
        uri,
        nonce,
        qop: qop_auth.then_some("auth"),
        nc,
        cnonce,
    });
    let mut v = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, algorithm={}, response=\"{response}\"",
        quoted(username),
        quoted(realm),
        quoted(nonce),
        quoted(uri),
        algorithm.name(),
    );
    if *qop_auth {
        v.push_str(&format!(", qop=auth, nc={nc}, cnonce={}", quoted(cnonce)));
    }
    if let Some(o) = opaque {
        v.push_str(&format!(", opaque={}", quoted(o)));
    }
    Some(v)
}

/// The `Authorization` value for Basic.
pub fn basic_authorization(username: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_strongest_challenge() {
        let c = pick([
            "Basic realm=\"x\"",
            "Digest realm=\"cpe\", nonce=\"n1\", qop=\"auth,auth-int\", algorithm=MD5",
            "Digest realm=\"cpe\", nonce=\"n2\", qop=\"auth\", algorithm=SHA-256",
        ])
        .unwrap();
        assert!(matches!(
            c,
            Challenge::Digest { algorithm: DigestAlgorithm::Sha256, ref nonce, qop_auth: true, .. } if nonce == "n2"
        ));
        assert_eq!(pick(["Basic realm=\"x\""]).unwrap(), Challenge::Basic);
        assert_eq!(pick(Vec::<&str>::new()), Err(ChallengeError::Missing));
        assert_eq!(
            pick(["Digest realm=\"x\""]),
            Err(ChallengeError::Malformed),
            "no nonce"
        );
        assert!(matches!(
            pick(["Negotiate abc"]),
            Err(ChallengeError::Unsupported(_))
        ));
        assert!(matches!(
            pick(["Digest realm=\"x\", nonce=\"n\", qop=\"auth-int\""]),
            Err(ChallengeError::Unsupported(_))
        ));
    }

    #[test]
    fn digest_answer_verifies_with_the_shared_arithmetic() {
        let c =
            pick(["Digest realm=\"cpe-sim\", qop=\"auth\", nonce=\"abc\", opaque=\"op\""]).unwrap();
        let v = digest_authorization(&c, "RCMG1", "pa\"ss", "/cr?x=1", "c0ffee").unwrap();
        assert!(v.starts_with("Digest username=\"RCMG1\""), "{v}");
        assert!(
            v.contains("uri=\"/cr?x=1\"") && v.contains("opaque=\"op\""),
            "{v}"
        );
        assert!(!v.contains("pa\"ss") && !v.contains("pa\\\"ss"), "{v}");
        let expected = digest::response(&DigestInput {
            algorithm: DigestAlgorithm::Md5,
            username: "RCMG1",
            realm: "cpe-sim",
            password: "pa\"ss",
            method: "GET",
            uri: "/cr?x=1",
            nonce: "abc",
            qop: Some("auth"),
            nc: "00000001",
            cnonce: "c0ffee",
        });
        assert!(v.contains(&expected));
        assert_eq!(
            digest_authorization(&Challenge::Basic, "a", "b", "/", "c"),
            None
        );
        assert_eq!(basic_authorization("a", "b"), "Basic YTpi");
    }

    proptest::proptest! {
        /// Whatever a device sends in WWW-Authenticate, picking and
        /// answering never panics.
        #[test]
        fn any_challenge_text_is_handled(values in proptest::collection::vec(".{0,200}", 0..4)) {
            if let Ok(c) = pick(values.iter().map(String::as_str)) {
                let _ = digest_authorization(&c, "u", "p", "/", "c");
            }
        }
    }
}
