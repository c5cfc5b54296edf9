//! A minimal XML writer for the fixed shapes CWMP needs.
//!
//! The envelope's prefixes are fixed (`SOAP-ENV`, `SOAP-ENC`, `xsd`, `xsi`,
//! `cwmp`), so writing is string building with escaping; no namespace
//! bookkeeping is needed, which keeps serialisation fast.

use std::fmt::Write as _;

/// Appends escaped XML to a byte buffer.
pub struct XmlWriter {
    out: String,
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlWriter {
    pub fn new() -> Self {
        XmlWriter {
            out: String::with_capacity(1024),
        }
    }

    pub fn into_string(self) -> String {
        self.out
    }

    /// Writes raw markup (caller guarantees it is well formed).
    pub fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    /// `<name>`
    pub fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    /// `<name attr="value"...>` (attribute values escaped).
    pub fn open_with(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_into(&mut self.out, v, true);
            self.out.push('"');
        }
        self.out.push('>');
    }

    /// `</name>`
    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// `<name>text</name>` with the text escaped.
    pub fn text_element(&mut self, name: &str, text: &str) {
        self.open(name);
        escape_into(&mut self.out, text, false);
        self.close(name);
    }

    /// `<name>n</name>` for numbers.
    pub fn num_element(&mut self, name: &str, n: impl std::fmt::Display) {
        self.open(name);
        let _ = write!(self.out, "{n}");
        self.close(name);
    }

    /// `<name>1</name>` / `<name>0</name>`: the boolean form every CPE reads.
    pub fn bool_element(&mut self, name: &str, b: bool) {
        self.text_element(name, if b { "1" } else { "0" });
    }

    /// Opens an array element with `SOAP-ENC:arrayType="item_type[len]"`.
    pub fn open_array(&mut self, name: &str, item_type: &str, len: usize) {
        self.out.push('<');
        self.out.push_str(name);
        let _ = write!(self.out, " SOAP-ENC:arrayType=\"{item_type}[{len}]\">");
    }

    /// Escaped text content.
    pub fn text(&mut self, text: &str) {
        escape_into(&mut self.out, text, false);
    }
}

/// Escapes markup characters, keeps `\r` through a parse by writing it as a
/// character reference, and replaces characters XML 1.0 cannot carry at all
/// (NUL, most C0 controls, lone surrogates are impossible in `str`) with
/// U+FFFD so the output is always well formed.
fn escape_into(out: &mut String, s: &str, attr: bool) {
    let mut last = 0;
    for (i, c) in s.char_indices() {
        let rep: &str = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' if attr => "&quot;",
            '\r' => "&#13;",
            '\n' if attr => "&#10;",
            '\t' if attr => "&#9;",
            '\t' | '\n' => continue,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => "\u{FFFD}",
            _ => continue,
        };
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + c.len_utf8();
    }
    out.push_str(&s[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        let mut w = XmlWriter::new();
        w.text_element("V", "a<b&c>\"d\r\n\u{1}é");
        assert_eq!(
            w.into_string(),
            "<V>a&lt;b&amp;c&gt;\"d&#13;\n\u{FFFD}é</V>"
        );
        let mut w = XmlWriter::new();
        w.open_with("A", &[("k", "x\"y")]);
        assert_eq!(w.into_string(), "<A k=\"x&quot;y\">");
    }
}
