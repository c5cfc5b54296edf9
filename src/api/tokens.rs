//! API bearer tokens: configured, or generated once into the data dir.

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use ring::rand::{SecureRandom, SystemRandom};
use tracing::info;

use crate::config::{Config, Secret};
use crate::digest::{constant_time_eq, hex};
use crate::store::{Role, Store, StoreResult};

/// The accepted tokens, each with its role: `ROLE:TOKEN` in the
/// configuration (`ops:…`, `technician:…`), a bare token is `admin` (what
/// every token could do before roles existed).
pub struct ApiTokens(Vec<(Secret, Role)>);

/// Who a token is, for the audit log: `token:` and the start of its hash
/// (never the token itself).
pub fn token_actor(token: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, token);
    format!("token:{}", &hex(d.as_ref())[..12])
}

impl ApiTokens {
    pub fn new(tokens: Vec<Secret>) -> ApiTokens {
        ApiTokens(
            tokens
                .into_iter()
                .map(|t| {
                    let text = t.expose();
                    match text.split_once(':') {
                        Some((role, rest)) if Role::parse(role).is_some() && !rest.is_empty() => {
                            (Secret::new(rest), Role::parse(role).unwrap_or(Role::Admin))
                        }
                        _ => (t, Role::Admin),
                    }
                })
                .collect(),
        )
    }

    /// The role and audit name of the bearer token in an `Authorization`
    /// header, if it is one of the tokens.
    pub fn bearer(&self, header: Option<&HeaderValue>) -> Option<(Role, String)> {
        self.configured(&presented(header, false)?)
    }

    fn configured(&self, token: &[u8]) -> Option<(Role, String)> {
        self.role_of(token).map(|role| (role, token_actor(token)))
    }

    /// Whether an `Authorization` header carries one of the tokens.
    pub fn authorizes(&self, header: Option<&HeaderValue>) -> bool {
        self.bearer(header).is_some()
    }

    /// Like [`ApiTokens::authorizes`], and also `Basic` with a token as the
    /// password (any username): what GenieACS NBI clients, which know only
    /// Basic, can send.
    pub fn authorizes_bearer_or_basic(&self, header: Option<&HeaderValue>) -> bool {
        self.bearer_or_basic(header).is_some()
    }

    /// The role and audit name of a token sent as Bearer, or as the
    /// password of Basic.
    pub fn bearer_or_basic(&self, header: Option<&HeaderValue>) -> Option<(Role, String)> {
        self.configured(&presented(header, true)?)
    }

    /// The role and audit name of the token a header presents (Bearer, or
    /// with `basic` the password of Basic): a configured token, else one an
    /// admin issued, found by its hash (`token:NAME` in the audit log).
    pub fn resolve(
        &self,
        store: &dyn Store,
        header: Option<&HeaderValue>,
        basic: bool,
    ) -> StoreResult<Option<(Role, String)>> {
        let Some(token) = presented(header, basic) else {
            return Ok(None);
        };
        if let Some(found) = self.configured(&token) {
            return Ok(Some(found));
        }
        if !token.starts_with(ISSUED_PREFIX.as_bytes()) {
            return Ok(None);
        }
        Ok(store
            .issued_token(&issued_hash(&token))?
            .map(|t| (t.role, format!("token:{}", t.name))))
    }

    fn role_of(&self, token: &[u8]) -> Option<Role> {
        // Check all tokens so timing does not tell which one matched.
        self.0.iter().fold(None, |found, (t, role)| {
            let hit = constant_time_eq(t.expose().as_bytes(), token);
            if hit { Some(*role) } else { found }
        })
    }
}

/// How issued tokens start (secret scanners and people recognise them).
pub const ISSUED_PREFIX: &str = "gfa_";

/// The token a header presents: Bearer, or with `basic` the password of
/// Basic.
fn presented(header: Option<&HeaderValue>, basic: bool) -> Option<Vec<u8>> {
    let value = header.and_then(|h| h.to_str().ok())?.trim();
    if let Some(t) = value
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("bearer "))
        .map(|_| value[7..].trim())
    {
        return Some(t.as_bytes().to_vec());
    }
    if !basic {
        return None;
    }
    let encoded = value
        .get(..6)
        .filter(|s| s.eq_ignore_ascii_case("basic "))
        .map(|_| value[6..].trim())?;
    let decoded = STANDARD.decode(encoded).ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some(decoded[colon + 1..].to_vec())
}

/// The store key of an issued token: its SHA-256, hex.
pub fn issued_hash(token: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, token).as_ref())
}

/// A new token to issue: the prefix and 32 random bytes, hex.
pub fn new_issued_token() -> Result<String, String> {
    let mut raw = [0u8; 32];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| "the system random generator failed".to_owned())?;
    Ok(format!("{ISSUED_PREFIX}{}", hex(&raw)))
}

/// File in the data dir holding the generated token.
pub const TOKEN_FILE: &str = "api-token";

/// Uses the configured tokens; without any, reads or creates
/// `data_dir/api-token` (mode 0600) and logs where it is, never the token.
pub fn load_or_create_tokens(config: &Config) -> Result<ApiTokens, String> {
    if !config.api_tokens.is_empty() {
        return Ok(ApiTokens::new(config.api_tokens.clone()));
    }
    let path = config.data_dir.join(TOKEN_FILE);
    if path.exists() {
        let token = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?
            .trim()
            .to_owned();
        if token.len() < 16 {
            return Err(format!(
                "{} holds no usable token (16+ characters)",
                path.display()
            ));
        }
        info!(path = %path.display(), "API token read from file");
        return Ok(ApiTokens::new(vec![Secret::new(token)]));
    }
    let mut raw = [0u8; 24];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| "the system random generator failed".to_owned())?;
    let token = hex(&raw);
    write_private(&path, &token).map_err(|e| format!("writing {}: {e}", path.display()))?;
    info!(path = %path.display(), "no API token configured: generated one, readable only by this user");
    Ok(ApiTokens::new(vec![Secret::new(token)]))
}

fn write_private(path: &Path, token: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(token.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_check() {
        let t = ApiTokens::new(vec![
            Secret::new("0123456789abcdef"),
            Secret::new("fedcba9876543210"),
        ]);
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert!(t.authorizes(Some(&h("Bearer 0123456789abcdef"))));
        assert!(t.authorizes(Some(&h("bearer fedcba9876543210"))));
        assert!(!t.authorizes(Some(&h("Bearer 0123456789abcdeX"))));
        assert!(!t.authorizes(Some(&h("Basic 0123456789abcdef"))));
        assert!(!t.authorizes(Some(&h("Bearer"))));
        assert!(!t.authorizes(None));
    }

    #[test]
    fn tokens_carry_roles() {
        let t = ApiTokens::new(vec![
            Secret::new("ops:0123456789abcdef"),
            Secret::new("technician:fedcba9876543210"),
            Secret::new("bare-token-0123456789"),
            Secret::new("weird:colon-token-0123"),
        ]);
        let h = |s: &str| HeaderValue::from_str(&format!("Bearer {s}")).unwrap();
        assert_eq!(t.bearer(Some(&h("0123456789abcdef"))).unwrap().0, Role::Ops);
        assert_eq!(
            t.bearer(Some(&h("fedcba9876543210"))).unwrap().0,
            Role::Technician
        );
        assert_eq!(
            t.bearer(Some(&h("bare-token-0123456789"))).unwrap().0,
            Role::Admin
        );
        // An unknown prefix is part of the token.
        assert_eq!(
            t.bearer(Some(&h("weird:colon-token-0123"))).unwrap().0,
            Role::Admin
        );
        assert!(t.bearer(Some(&h("ops:0123456789abcdef"))).is_none());
        let (_, actor) = t.bearer(Some(&h("0123456789abcdef"))).unwrap();
        assert!(actor.starts_with("token:") && !actor.contains("0123456789abcdef"));
    }

    #[test]
    fn basic_with_the_token_as_password() {
        let t = ApiTokens::new(vec![Secret::new("0123456789abcdef")]);
        let basic = |user_pass: &str| {
            HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(user_pass))).unwrap()
        };
        assert!(t.authorizes_bearer_or_basic(Some(&basic("nbi:0123456789abcdef"))));
        assert!(t.authorizes_bearer_or_basic(Some(&basic(":0123456789abcdef"))));
        assert!(!t.authorizes_bearer_or_basic(Some(&basic("0123456789abcdef:x"))));
        assert!(!t.authorizes_bearer_or_basic(Some(&basic("0123456789abcdef"))));
        assert!(!t.authorizes_bearer_or_basic(Some(&HeaderValue::from_static("Basic !!!"))));
        assert!(t.authorizes_bearer_or_basic(Some(&HeaderValue::from_static(
            "Bearer 0123456789abcdef"
        ))));
        // The Ops API itself stays Bearer-only.
        assert!(!t.authorizes(Some(&basic("nbi:0123456789abcdef"))));
        assert!(!t.authorizes_bearer_or_basic(None));
    }

    #[test]
    fn generated_token_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut config, _) = crate::config::load(None, &|_| None).unwrap();
        config.data_dir = dir.path().to_path_buf();
        load_or_create_tokens(&config).unwrap();
        let path = dir.path().join(TOKEN_FILE);
        let token = std::fs::read_to_string(&path).unwrap().trim().to_owned();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let again = load_or_create_tokens(&config).unwrap();
        let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        assert!(again.authorizes(Some(&header)));
    }
}
