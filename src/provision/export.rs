//! GenieACS parameter exports (CSV: `Parameter, Object, …, Writable, …,
//! Value, Value type, …`) read as a data model and its values: what a
//! device that GenieACS managed reported. Pure; never panics on junk.

use thiserror::Error;

use super::datamodel::DataModelTree;
use super::targets::Values;

/// An export that cannot be read.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportError {
    #[error("no header naming the columns Parameter, Object, Writable and Value")]
    Header,
    #[error("line {0}: unterminated quoted field")]
    Unterminated(usize),
}

/// One CSV record and the line it starts on.
pub type Record = (usize, Vec<String>);

/// RFC 4180 records (quoted fields, doubled quotes, newlines in quotes),
/// each with the line it starts on. Lines starting with `#` outside quotes
/// are comments (a provenance line) and empty lines are skipped. A leading
/// UTF-8 byte-order mark (what spreadsheet exports start with) is dropped,
/// so that it does not stick to the first header name.
pub fn records(text: &str) -> Result<Vec<Record>, ExportError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let (mut field, mut row, mut quoted) = (String::new(), Vec::new(), false);
    let (mut line, mut start, mut at_start) = (1, 1, true);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if at_start && !quoted && c == '#' {
            for c in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            line += 1;
            start = line;
            continue;
        }
        at_start = false;
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                if row.len() == 1 && row[0].is_empty() {
                    row.clear();
                } else {
                    out.push((start, std::mem::take(&mut row)));
                }
                line += 1;
                start = line;
                at_start = true;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(ExportError::Unterminated(start));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        out.push((start, row));
    }
    Ok(out)
}

/// A real device export kept in `tests/data/device-models/` (unit tests
/// only). Read at run time, not included: the image build copies no
/// test data.
#[cfg(test)]
pub(crate) fn real_export(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/device-models")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The device's names (objects with their trailing dot) and values.
/// Comment lines (`#`), GenieACS's own rows (`DeviceID.*`, `Events.*`, …)
/// and rows outside `Device.` / `InternetGatewayDevice.` are skipped.
pub fn parse(text: &str) -> Result<(DataModelTree, Values), ExportError> {
    let rows = records(text)?;
    let header = rows
        .iter()
        .position(|(_, r)| r.first().map(|c| c.trim()) == Some("Parameter"))
        .ok_or(ExportError::Header)?;
    let col = |n: &str| rows[header].1.iter().position(|h| h.trim() == n);
    let (Some(cp), Some(co), Some(cw), Some(cv)) = (
        col("Parameter"),
        col("Object"),
        col("Writable"),
        col("Value"),
    ) else {
        return Err(ExportError::Header);
    };
    let mut names = Vec::new();
    let mut values = Values::new();
    for (_, r) in &rows[header + 1..] {
        let Some(path) = r.get(cp).map(|p| p.trim().trim_end_matches('.')) else {
            continue;
        };
        let root = path.split('.').next().unwrap_or("");
        if root != "Device" && root != "InternetGatewayDevice" {
            continue;
        }
        let flag = |c: usize| r.get(c).is_some_and(|v| v.trim() == "true");
        if flag(co) {
            names.push((format!("{path}."), flag(cw)));
        } else {
            names.push((path.to_owned(), flag(cw)));
            values.insert(path.to_owned(), r.get(cv).cloned().unwrap_or_default());
        }
    }
    Ok((DataModelTree::from_names(names), values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_objects_values_and_skips_the_rest() {
        let text = "# provenance\nParameter,Object,Object timestamp,Writable,Writable timestamp,Value,Value type\n\
DeviceID.SerialNumber,false,t,false,t,\"X\",xsd:string\n\
Device,true,t,false,t,\"\",\n\
Device.WiFi.SSID.1,true,t,false,t,\"\",\n\
Device.WiFi.SSID.1.SSID,false,t,true,t,\"My \"\"home\"\", 2\nlines\",xsd:string\n";
        let (tree, values) = parse(text).unwrap();
        assert!(tree.contains("Device.WiFi.SSID.1."));
        assert!(tree.can_write("Device.WiFi.SSID.1.SSID"));
        assert!(!tree.contains("DeviceID.SerialNumber"));
        assert_eq!(values["Device.WiFi.SSID.1.SSID"], "My \"home\", 2\nlines");
        assert_eq!(parse("a,b\n1,2\n"), Err(ExportError::Header));
        assert_eq!(
            parse("Parameter,Object,Writable,Value\n\"x"),
            Err(ExportError::Unterminated(2))
        );
        assert_eq!(parse(""), Err(ExportError::Header));
    }

    #[test]
    fn byte_order_mark_and_crlf_are_not_data() {
        let rows = records("\u{feff}serial,ssid\r\n\"a\",\"b,\"\"c\"\"\"\r\n\r\nd,\r\n").unwrap();
        assert_eq!(
            rows,
            vec![
                (1, vec!["serial".to_owned(), "ssid".to_owned()]),
                (2, vec!["a".to_owned(), "b,\"c\"".to_owned()]),
                (4, vec!["d".to_owned(), String::new()]),
            ]
        );
    }
}
