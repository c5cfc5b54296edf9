//! Canonical forms of the identifiers ERPNext and devices spell in many
//! ways: MAC addresses and GPON serial numbers.

/// A MAC address as 12 lower-case hex digits (`aabbccddeeff`), from any of
/// `AA:BB:CC:DD:EE:FF`, `aa-bb-cc-dd-ee-ff`, `aabb.ccdd.eeff`,
/// `AABBCCDDEEFF`, mixed case. `None` if it is not a MAC.
pub fn canonical_mac(s: &str) -> Option<String> {
    let s = s.trim();
    let mut hex = String::with_capacity(12);
    for c in s.chars() {
        match c {
            c if c.is_ascii_hexdigit() => hex.push(c.to_ascii_lowercase()),
            ':' | '-' | '.' | ' ' => {}
            _ => return None,
        }
    }
    (hex.len() == 12 && hex != "000000000000").then_some(hex)
}

/// `aa:bb:cc:dd:ee:ff` from a canonical MAC.
pub fn colon_mac(canonical: &str) -> String {
    canonical
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// A GPON serial as 4 upper-case vendor letters + 8 upper-case hex digits
/// (`RCMG1A2B3C4D`). The 16-hex form (`52434D471A2B3C4D`) converts when its
/// first 8 hex digits decode to 4 letters. `None` if it is neither.
pub fn canonical_gpon_serial(s: &str) -> Option<String> {
    let s = s.trim();
    if s.len() == 12 {
        let (vendor, rest) = s.split_at(4);
        if vendor.chars().all(|c| c.is_ascii_alphabetic())
            && rest.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Some(format!(
                "{}{}",
                vendor.to_ascii_uppercase(),
                rest.to_ascii_uppercase()
            ));
        }
    }
    if s.len() == 16 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        let bytes: Vec<u8> = (0..4)
            .filter_map(|i| u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok())
            .collect();
        if bytes.len() == 4 && bytes.iter().all(u8::is_ascii_alphabetic) {
            let vendor: String = bytes
                .iter()
                .map(|b| char::from(*b).to_ascii_uppercase())
                .collect();
            return Some(format!("{vendor}{}", s[8..].to_ascii_uppercase()));
        }
    }
    None
}

/// The 16-hex form of a canonical GPON serial.
pub fn gpon_serial_hex(canonical: &str) -> String {
    let (vendor, rest) = canonical.split_at(4.min(canonical.len()));
    let mut out: String = vendor.bytes().map(|b| format!("{b:02X}")).collect();
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_in_every_form_compare_equal() {
        for m in [
            "AA:BB:CC:DD:EE:FF",
            "aa-bb-cc-dd-ee-ff",
            "aabbccddeeff",
            "AaBb.CcDd.EeFf",
            " aa:BB:cc:DD:ee:FF ",
        ] {
            assert_eq!(canonical_mac(m).as_deref(), Some("aabbccddeeff"), "{m}");
        }
        for bad in [
            "",
            "aa:bb:cc",
            "zz:bb:cc:dd:ee:ff",
            "aa:bb:cc:dd:ee:ff:00",
            "00:00:00:00:00:00",
            "aa_bb_cc_dd_ee_ff",
        ] {
            assert_eq!(canonical_mac(bad), None, "{bad}");
        }
        assert_eq!(colon_mac("aabbccddeeff"), "aa:bb:cc:dd:ee:ff");
    }

    #[test]
    fn gpon_serials_ascii_and_hex() {
        assert_eq!(
            canonical_gpon_serial("RCMG1A2B3C4D").as_deref(),
            Some("RCMG1A2B3C4D")
        );
        assert_eq!(
            canonical_gpon_serial("rcmg1a2b3c4d").as_deref(),
            Some("RCMG1A2B3C4D")
        );
        assert_eq!(
            canonical_gpon_serial("52434D471A2B3C4D").as_deref(),
            Some("RCMG1A2B3C4D")
        );
        assert_eq!(
            canonical_gpon_serial("54504C47B4FB2AC8").as_deref(),
            Some("TPLGB4FB2AC8")
        );
        assert_eq!(
            canonical_gpon_serial("54504c47b4fb2ac8").as_deref(),
            Some("TPLGB4FB2AC8")
        );
        // Hex whose first four bytes are not letters is not a GPON serial.
        assert_eq!(canonical_gpon_serial("0011223344556677"), None);
        assert_eq!(canonical_gpon_serial("RCMG1A2B3C4"), None);
        assert_eq!(canonical_gpon_serial("2226469000523"), None);
        assert_eq!(gpon_serial_hex("TPLGB4FB2AC8"), "54504C47B4FB2AC8");
    }
}
