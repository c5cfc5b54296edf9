//! Percent-encoding of URL parts (RFC 3986): what the API's paths and
//! queries, ERPNext desk links and firmware download links share.

/// Encodes every byte but the unreserved ones (`A-Z a-z 0-9 - _ . ~`).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Decodes `%XX` escapes; `None` for a malformed escape or non-UTF-8 result.
pub fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decode_undoes_encode(s in "\\PC{0,40}") {
            prop_assert_eq!(decode(&encode(&s)), Some(s));
        }

        #[test]
        fn decode_never_panics(s in "[%0-9a-zA-Z]{0,12}") {
            let _ = decode(&s);
        }
    }
}
