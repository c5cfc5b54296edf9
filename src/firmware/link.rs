//! Signed download links: `/files/ID/NAME?d=DEVICE&e=EXPIRY&s=SIGNATURE`.
//!
//! Why signed links rather than per-device passwords: a Download carries
//! a URL and optional credentials, and CPEs differ in how (and whether)
//! they send HTTP credentials on a file fetch; a URL that is itself the
//! permission works with every CPE, and is checked without a store read.

use ring::hmac;

/// How long a link stays valid: a device may delay a Download
/// (`DelaySeconds`, a maintenance window of its own) and retry it.
pub const TTL_S: u64 = 7 * 86_400;

/// What is wrong with a link.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError {
    #[error("the link has no {0} parameter")]
    Missing(&'static str),
    #[error("the link expired")]
    Expired,
    #[error("the link's signature does not match")]
    BadSignature,
}

/// The key of download links, from the installation's key (the
/// ParameterKey HMAC key every node shares): links made on one node are
/// accepted by all.
pub fn derive_key(installation: &hmac::Key) -> hmac::Key {
    hmac::Key::new(
        hmac::HMAC_SHA256,
        hmac::sign(installation, b"gigafibre-acs firmware download links").as_ref(),
    )
}

/// The link parameters after `?` for `device` to fetch `file_id` until
/// `expires_s` (Unix seconds).
pub fn query(key: &hmac::Key, file_id: &str, device_id: &str, expires_s: u64) -> String {
    let sig = sign(key, file_id, device_id, expires_s);
    format!(
        "d={}&e={expires_s}&s={sig}",
        crate::percent::encode(device_id)
    )
}

fn sign(key: &hmac::Key, file_id: &str, device_id: &str, expires_s: u64) -> String {
    let msg = format!("file\0{file_id}\0{device_id}\0{expires_s}");
    let tag = hmac::sign(key, msg.as_bytes());
    tag.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a link's parameters (already percent-decoded) for `file_id` at
/// `now_s`; the device it was made for.
pub fn verify(
    key: &hmac::Key,
    file_id: &str,
    params: &[(String, String)],
    now_s: u64,
) -> Result<String, LinkError> {
    let get = |name: &'static str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or(LinkError::Missing(name))
    };
    let device = get("d")?;
    let expires: u64 = get("e")?.parse().map_err(|_| LinkError::BadSignature)?;
    let sig = get("s")?;
    let want = sign(key, file_id, device, expires);
    if !crate::digest::constant_time_eq(want.as_bytes(), sig.as_bytes()) {
        return Err(LinkError::BadSignature);
    }
    if now_s > expires {
        return Err(LinkError::Expired);
    }
    Ok(device.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Vec<(String, String)> {
        q.split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), crate::percent::decode(v).unwrap()))
            .collect()
    }

    #[test]
    fn a_link_is_for_one_file_one_device_until_it_expires() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let q = query(&key, "f1", "00259E-HT803G-RCMG 1&2", 1000);
        assert_eq!(
            verify(&key, "f1", &params(&q), 999),
            Ok("00259E-HT803G-RCMG 1&2".to_owned())
        );
        assert_eq!(
            verify(&key, "f1", &params(&q), 1001),
            Err(LinkError::Expired)
        );
        assert_eq!(
            verify(&key, "f2", &params(&q), 999),
            Err(LinkError::BadSignature),
            "another file"
        );
        let other = q.replace("RCMG%201", "RCMG%202");
        assert_eq!(
            verify(&key, "f1", &params(&other), 999),
            Err(LinkError::BadSignature)
        );
        let later = q.replace("e=1000", "e=9999");
        assert_eq!(
            verify(&key, "f1", &params(&later), 999),
            Err(LinkError::BadSignature)
        );
        let other_key = hmac::Key::new(hmac::HMAC_SHA256, b"j");
        assert_eq!(
            verify(&other_key, "f1", &params(&q), 999),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            verify(&key, "f1", &params("d=x&e=1"), 0),
            Err(LinkError::Missing("s"))
        );
        assert_eq!(
            verify(&key, "f1", &params("d=x&e=z&s=1"), 0),
            Err(LinkError::BadSignature)
        );
    }
}
