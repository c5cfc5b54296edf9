//! Which WiFi band a value names: band fields ("2.4GHz", "5G"), channel
//! numbers, 802.11 standards, operating classes. Pure; shared by the
//! analysis of data models and the topology builder.

/// A WiFi band.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Band {
    G24,
    G5,
    G6,
}

impl Band {
    /// As profiles write it: "2.4", "5", "6".
    pub fn label(self) -> &'static str {
        match self {
            Band::G24 => "2.4",
            Band::G5 => "5",
            Band::G6 => "6",
        }
    }
}

/// "2.4GHz", "2.4G", "5GHz", "5G", "6GHz", "2.4" (profile), ...
pub fn parse_band(s: &str) -> Option<Band> {
    let t: String = s
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    if t.starts_with("2.4") || t == "2g" || t.starts_with("24ghz") || t.starts_with("2,4") {
        Some(Band::G24)
    } else if t.starts_with('5') {
        Some(Band::G5)
    } else if t.starts_with('6') {
        Some(Band::G6)
    } else {
        None
    }
}

/// A channel number's band (2.4 GHz: 1–14; 5 GHz: 32–196), from the first
/// number of the text ("36", "1-13", "36,40,44").
pub fn band_of_channel(s: &str) -> Option<Band> {
    let first: String = s
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    match first.parse::<u32>().ok()? {
        1..=14 => Some(Band::G24),
        32..=196 => Some(Band::G5),
        _ => None,
    }
}

/// TR-098 `Standard` / TR-181 `OperatingStandards` ("b,g,n", "a,n,ac").
pub fn band_of_standard(s: &str) -> Option<Band> {
    let tokens: Vec<String> = s
        .split([',', ' ', '/'])
        .map(|t| t.trim().trim_start_matches("802.11").to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.iter().any(|t| t == "b" || t == "g") {
        Some(Band::G24)
    } else if tokens.iter().any(|t| t == "a" || t == "ac") {
        Some(Band::G5)
    } else {
        None
    }
}

/// IEEE 802.11 global operating class (EasyMesh/DataElements
/// `CurrentOperatingClassProfile.{i}.Class`) → band.
pub fn band_of_op_class(class: &str) -> Option<Band> {
    match class.trim().parse::<u32>().ok()? {
        81..=84 => Some(Band::G24),
        115..=130 => Some(Band::G5),
        131..=137 => Some(Band::G6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_from_fields_channels_and_standards() {
        for (s, b) in [
            ("2.4GHz", Band::G24),
            (" 5 G", Band::G5),
            ("6GHz", Band::G6),
            ("2,4 GHz", Band::G24),
        ] {
            assert_eq!(parse_band(s), Some(b), "{s}");
        }
        assert_eq!(parse_band("auto"), None);
        assert_eq!(band_of_channel("11"), Some(Band::G24));
        assert_eq!(band_of_channel("36,40,44"), Some(Band::G5));
        assert_eq!(band_of_channel("0"), None);
        assert_eq!(band_of_standard("b,g,n"), Some(Band::G24));
        assert_eq!(band_of_standard("a,n,ac"), Some(Band::G5));
        assert_eq!(band_of_standard("n"), None);
        assert_eq!(band_of_op_class("118"), Some(Band::G5));
    }
}
