//! A small, bounded XML tree, built by a one-pass scanner (`scan.rs`).
//!
//! CWMP messages are small (the server caps bodies at about a megabyte) and
//! real CPEs are sloppy about element order, optional elements and prefixes,
//! so the typed decoders work on a tree rather than on a stream: they look a
//! child up by local name wherever it is. Namespaces are resolved when the
//! tree is built; no code outside it ever looks at prefix text.
//!
//! Defences: DOCTYPE declarations are refused (no entity expansion, so no
//! billion-laughs), only the five predefined entities and character
//! references are decoded, nesting is capped and the element count is capped.

use std::borrow::Cow;

use super::{CwmpVersion, DecodeError};

#[cfg(test)]
mod reference;
mod scan;

/// Deepest nesting a CWMP envelope needs is about eight; anything far beyond
/// that is an attack or garbage.
pub const MAX_DEPTH: usize = 48;
/// Upper bound on elements in one document (a 10,000-parameter
/// GetParameterValuesResponse has about 40,000).
pub const MAX_ELEMENTS: usize = 200_000;

pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SOAP_ENC_NS: &str = "http://schemas.xmlsoap.org/soap/encoding/";
pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
pub const XSD_NS: &str = "http://www.w3.org/2001/XMLSchema";

/// The namespace an element or attribute name resolved to, reduced to what
/// the codec cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ns {
    /// No prefix and no default namespace in scope.
    None,
    /// A prefix that no `xmlns:` declaration binds (a broken CPE).
    UnknownPrefix,
    SoapEnvelope,
    SoapEncoding,
    Xsi,
    Cwmp(CwmpVersion),
    Other,
}

impl Ns {
    /// The namespace a declaration binds, by its URI.
    fn of_uri(uri: &str) -> Ns {
        match uri {
            SOAP_ENV_NS => Ns::SoapEnvelope,
            SOAP_ENC_NS => Ns::SoapEncoding,
            XSI_NS => Ns::Xsi,
            other => match CwmpVersion::from_namespace(other) {
                Some(v) => Ns::Cwmp(v),
                None => Ns::Other,
            },
        }
    }
}

const NONE: u32 = u32::MAX;

#[derive(Debug)]
struct Node<'a> {
    ns: Ns,
    local: Cow<'a, str>,
    /// Raw value of the `xsi:type` attribute, if any.
    xsi_type: Option<Cow<'a, str>>,
    text: Cow<'a, str>,
    first_child: u32,
    last_child: u32,
    next_sibling: u32,
}

/// A parsed document: a flat arena of elements, the root at index 0.
#[derive(Debug)]
pub struct Document<'a> {
    nodes: Vec<Node<'a>>,
}

/// A borrowed view of one element of a [`Document`].
#[derive(Clone, Copy)]
pub struct Element<'d, 'a> {
    doc: &'d Document<'a>,
    idx: u32,
}

impl std::fmt::Debug for Element<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}>", self.local())
    }
}

impl<'a> Document<'a> {
    /// Parses `input` into a tree.
    pub fn parse(input: &'a str) -> Result<Document<'a>, DecodeError> {
        scan::parse(input)
    }

    /// The root element.
    pub fn root(&self) -> Element<'_, 'a> {
        Element { doc: self, idx: 0 }
    }
}

/// Only XML whitespace (space, tab, CR, LF).
fn is_blank(raw: &str) -> bool {
    raw.bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn resolve_reference(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix('x').or_else(|| num.strip_prefix('X')) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse::<u32>().ok()?,
            };
            char::from_u32(code)
                .filter(|c| *c != '\0')
                .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
        }
    }
}

/// Characters XML 1.0 cannot carry (C0 controls other than tab, LF, CR,
/// and U+FFFE/U+FFFF). A CPE that sends one (raw or as `&#1;`) gets it
/// replaced by U+FFFD, which is also what the encoder writes, so a decoded
/// message always re-encodes to the same message.
fn is_xml_char(c: char) -> bool {
    !matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

fn sanitize(piece: Cow<'_, str>) -> Cow<'_, str> {
    // The characters refused are single-byte controls and U+FFFE/U+FFFF
    // (UTF-8 `EF BF BE/BF`): a byte test clears almost every piece.
    let plain = |b: &u8| (*b >= 0x20 && *b != 0xEF) || matches!(*b, b'\t' | b'\n' | b'\r');
    if piece.as_bytes().iter().all(plain) || piece.chars().all(is_xml_char) {
        return piece;
    }
    Cow::Owned(
        piece
            .chars()
            .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
            .collect(),
    )
}

/// Makes node `idx` the last child of `parent`.
fn link_child(nodes: &mut [Node<'_>], parent: u32, idx: u32) {
    let p = parent as usize;
    if nodes[p].last_child == NONE {
        nodes[p].first_child = idx;
        // Indentation before the first child carries nothing either (see
        // the text handling in `scan.rs`).
        if is_blank(&nodes[p].text) {
            nodes[p].text = Cow::Borrowed("");
        }
    } else {
        let last = nodes[p].last_child as usize;
        nodes[last].next_sibling = idx;
    }
    nodes[p].last_child = idx;
}

fn append_text<'a>(dst: &mut Cow<'a, str>, piece: Cow<'a, str>) {
    let piece = sanitize(piece);
    if dst.is_empty() {
        *dst = piece;
    } else {
        dst.to_mut().push_str(&piece);
    }
}

impl<'d, 'a> Element<'d, 'a> {
    fn node(&self) -> &'d Node<'a> {
        &self.doc.nodes[self.idx as usize]
    }

    /// Local name (the part after any prefix).
    pub fn local(&self) -> &'d str {
        &self.node().local
    }

    /// Resolved namespace of this element.
    pub fn ns(&self) -> Ns {
        self.node().ns
    }

    /// Raw character data of this element (entities decoded, CDATA included),
    /// exactly as sent.
    pub fn raw_text(&self) -> &'d str {
        &self.node().text
    }

    /// Character data with surrounding whitespace removed.
    pub fn text(&self) -> &'d str {
        self.node().text.trim()
    }

    /// The `xsi:type` attribute's value with any prefix removed
    /// (`xsd:string`, `xs:string` and `soap-enc:string` all give `string`).
    pub fn xsi_type(&self) -> Option<&'d str> {
        self.node().xsi_type.as_deref().map(|t| {
            let t = t.trim();
            match t.rfind(':') {
                Some(i) => &t[i + 1..],
                None => t,
            }
        })
    }

    /// Child elements in document order.
    pub fn children(&self) -> Children<'d, 'a> {
        Children {
            doc: self.doc,
            next: self.node().first_child,
        }
    }

    /// First child element with this local name, whatever its namespace:
    /// CWMP argument elements are unqualified in the schema but some CPEs
    /// qualify them.
    pub fn child(&self, local: &str) -> Option<Element<'d, 'a>> {
        self.children().find(|c| c.local() == local)
    }

    /// Same as [`Element::child`] but ignoring ASCII case, for elements that
    /// some CPEs spell differently.
    pub fn child_ignore_case(&self, local: &str) -> Option<Element<'d, 'a>> {
        self.children()
            .find(|c| c.local().eq_ignore_ascii_case(local))
    }

    /// Trimmed text of a child, or `""` when the child is absent.
    pub fn child_text(&self, local: &str) -> &'d str {
        self.child(local).map(|c| c.text()).unwrap_or("")
    }
}

/// Iterator over an element's children.
pub struct Children<'d, 'a> {
    doc: &'d Document<'a>,
    next: u32,
}

impl<'d, 'a> Iterator for Children<'d, 'a> {
    type Item = Element<'d, 'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next == NONE {
            return None;
        }
        let idx = self.next;
        self.next = self.doc.nodes[idx as usize].next_sibling;
        Some(Element { doc: self.doc, idx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_namespaces_not_prefixes() {
        let xml = r#"<a:Envelope xmlns:a="http://schemas.xmlsoap.org/soap/envelope/" xmlns:b="urn:dslforum-org:cwmp-1-2"><a:Body><b:Inform/></a:Body></a:Envelope>"#;
        let doc = Document::parse(xml).unwrap();
        let root = doc.root();
        assert_eq!(root.local(), "Envelope");
        assert_eq!(root.ns(), Ns::SoapEnvelope);
        let inform = root.child("Body").unwrap().children().next().unwrap();
        assert_eq!(inform.ns(), Ns::Cwmp(CwmpVersion::V1_2));
    }

    #[test]
    fn decodes_entities_and_cdata() {
        let xml = "<v>a&amp;b&#233;&#x1F600;<![CDATA[<raw>]]></v>";
        let doc = Document::parse(xml).unwrap();
        assert_eq!(doc.root().raw_text(), "a&bé😀<raw>");
    }

    #[test]
    fn refuses_doctype_and_unknown_entities() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa">]><l>&a;</l>"#;
        assert!(matches!(
            Document::parse(bomb),
            Err(DecodeError::DoctypeForbidden)
        ));
        assert!(Document::parse("<l>&nope;</l>").is_err());
    }

    #[test]
    fn reports_truncation_and_depth() {
        assert!(matches!(
            Document::parse("<a><b>text"),
            Err(DecodeError::Truncated { .. })
        ));
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert!(matches!(
            Document::parse(&deep),
            Err(DecodeError::TooDeep { .. })
        ));
        assert!(Document::parse("<a></b>").is_err());
        assert!(matches!(Document::parse("   "), Err(DecodeError::NotXml)));
        assert!(Document::parse("<a/><b/>").is_err());
    }

    #[test]
    fn control_characters_become_replacement_characters() {
        let doc = Document::parse("<v>a&#1;b\u{2}c\td</v>").unwrap();
        assert_eq!(doc.root().raw_text(), "a\u{FFFD}b\u{FFFD}c\td");
    }

    #[test]
    fn xsi_type_prefix_is_stripped() {
        let xml = r#"<V xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:unsignedInt">5</V>"#;
        let doc = Document::parse(xml).unwrap();
        assert_eq!(doc.root().xsi_type(), Some("unsignedInt"));
    }
}
