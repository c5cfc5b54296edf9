//! People who use the Ops API and the console: password hashes
//! (argon2id), the rules of a login (lockout after repeated failures),
//! console sessions (cookie and CSRF token) and what each role may do.
//! Decisions are pure functions of the stored records and the time; the
//! API ([`crate::api`]) and the `user` command apply them.

pub mod cli;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;

use crate::store::{Role, UserRecord, WebSession};

/// Failed logins in a row that lock an account.
pub const MAX_FAILURES: u32 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT_MS: u64 = 15 * 60 * 1000;
/// How long a console session lasts without logging in again.
pub const SESSION_MS: u64 = 12 * 60 * 60 * 1000;
/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (hashing cost is bounded).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why an account operation was refused.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountError {
    #[error(
        "a user name is 1 to 64 characters: lower-case letters, digits, `.`, `_` or `-`, starting with a letter or digit"
    )]
    BadName,
    #[error("a password has at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("a password has at most {MAX_PASSWORD_BYTES} bytes")]
    PasswordTooLong,
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

/// Checks a user name (`jean.tremblay`, `tech-07`).
pub fn check_name(name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(AccountError::BadName)
    }
}

/// Checks a new password's length (what a person can be asked to
/// remember; no composition rules, as NIST SP 800-63B advises).
pub fn check_password(password: &str) -> Result<(), AccountError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AccountError::PasswordTooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::PasswordTooShort);
    }
    Ok(())
}

/// argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string of a password's argon2id hash, with a random salt.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| AccountError::Hash("the system random generator failed".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` matches a stored hash (an unreadable hash matches
/// nothing).
pub fn verify_password(hash: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A new user (password already checked and hashed).
pub fn new_user(name: &str, role: Role, password_hash: String, now_ms: u64) -> UserRecord {
    UserRecord {
        name: name.to_owned(),
        role,
        password_hash,
        disabled: false,
        created_ms: now_ms,
        failures: 0,
        locked_until_ms: 0,
    }
}

/// A user as the API and `user list --json` show it: never its hash.
pub fn public_view(user: &UserRecord) -> serde_json::Value {
    serde_json::json!({
        "name": user.name,
        "role": user.role,
        "disabled": user.disabled,
        "created": crate::cwmp::format_datetime(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(user.created_ms)
        ),
        "locked": user.locked_until_ms > crate::app::now_ms(std::time::SystemTime::now()),
    })
}

/// How a login attempt ends.
#[derive(Debug, PartialEq, Eq)]
pub enum Login {
    /// Logged in as this role.
    Accepted(Role),
    /// Unknown user or wrong password (the caller cannot tell which).
    Refused,
    /// Too many failures: no attempt counts until then.
    Locked {
        until_ms: u64,
    },
    Disabled,
}

/// Decides a login and updates the user's failure count and lock. The
/// password is checked only when the account may log in at all: a locked
/// account gives no oracle.
pub fn login(
    user: Option<&mut UserRecord>,
    password_ok: impl FnOnce(&str) -> bool,
    now_ms: u64,
) -> Login {
    let Some(user) = user else {
        return Login::Refused;
    };
    if user.disabled {
        return Login::Disabled;
    }
    if user.locked_until_ms > now_ms {
        return Login::Locked {
            until_ms: user.locked_until_ms,
        };
    }
    if password_ok(&user.password_hash) {
        user.failures = 0;
        user.locked_until_ms = 0;
        return Login::Accepted(user.role);
    }
    user.failures += 1;
    if user.failures >= MAX_FAILURES {
        user.failures = 0;
        user.locked_until_ms = now_ms + LOCKOUT_MS;
        return Login::Locked {
            until_ms: user.locked_until_ms,
        };
    }
    Login::Refused
}

/// Random URL-safe text of `bytes` random bytes (cookies, CSRF tokens).
pub fn random_token(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    let _ = SystemRandom::new().fill(&mut raw);
    crate::digest::hex(&raw)
}

/// The store key of a console session: the hash of its cookie, so that a
/// copy of the store does not hold usable cookies.
pub fn session_key(cookie: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, cookie.as_bytes());
    crate::digest::hex(d.as_ref())
}

/// A new console session for `user`: the cookie to send (once) and what
/// the store keeps under [`session_key`].
pub fn new_session(user: &UserRecord, now_ms: u64) -> (String, WebSession) {
    (
        random_token(32),
        WebSession {
            user: user.name.clone(),
            role: user.role,
            csrf: random_token(16),
            created_ms: now_ms,
            expires_ms: now_ms + SESSION_MS,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_passwords_are_checked() {
        for ok in ["jean.tremblay", "tech-07", "a", "ops_1"] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Jean", "-x", ".x", "a b", "é", &"a".repeat(65)] {
            assert_eq!(check_name(bad), Err(AccountError::BadName), "{bad}");
        }
        assert_eq!(check_password("short"), Err(AccountError::PasswordTooShort));
        assert_eq!(
            check_password("éééééééééééé"),
            Ok(()),
            "characters, not bytes"
        );
        assert_eq!(
            check_password(&"x".repeat(2000)),
            Err(AccountError::PasswordTooLong)
        );
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(verify_password(&a, "correct horse battery"));
        assert!(!verify_password(&a, "correct horse batterY"));
        assert!(!verify_password("not a hash", "x"));
    }

    #[test]
    fn five_failures_lock_the_account_for_a_while() {
        let mut u = new_user("t", Role::Technician, "h".into(), 0);
        let wrong = |_: &str| false;
        for _ in 0..MAX_FAILURES - 1 {
            assert_eq!(login(Some(&mut u), wrong, 1000), Login::Refused);
        }
        assert_eq!(
            login(Some(&mut u), wrong, 1000),
            Login::Locked {
                until_ms: 1000 + LOCKOUT_MS
            }
        );
        // Locked: even the right password is not tried.
        let mut tried = false;
        let r = login(
            Some(&mut u),
            |_| {
                tried = true;
                true
            },
            2000,
        );
        assert!(matches!(r, Login::Locked { .. }));
        assert!(!tried);
        // After the lock, the right password works and resets the count.
        assert_eq!(
            login(Some(&mut u), |_| true, 1000 + LOCKOUT_MS + 1),
            Login::Accepted(Role::Technician)
        );
        assert_eq!(u.failures, 0);
        u.disabled = true;
        assert_eq!(login(Some(&mut u), |_| true, 0), Login::Disabled);
        assert_eq!(login(None, |_| true, 0), Login::Refused);
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Technician < Role::Ops && Role::Ops < Role::Admin);
        assert_eq!(Role::parse("ops"), Some(Role::Ops));
        assert_eq!(Role::parse("root"), None);
    }
}
