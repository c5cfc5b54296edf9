//! A small, bounded XML tree built with quick-xml's namespace-aware reader.
//!
//! CWMP messages are small (the server caps bodies at about a megabyte) and
//! real CPEs are sloppy about element order, optional elements and prefixes,
//! so the typed decoders work on a tree rather than on a stream: they look a
//! child up by local name wherever it is. Namespaces are resolved by the
//! reader; no code here ever looks at prefix text.
//!
//! Defences: DOCTYPE declarations are refused (no entity expansion, so no
//! billion-laughs), only the five predefined entities and character
//! references are decoded, nesting is capped and the element count is capped.

use std::borrow::Cow;

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use super::{CwmpVersion, DecodeError};

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
    fn classify(resolved: &ResolveResult<'_>) -> Ns {
        match resolved {
            ResolveResult::Unbound => Ns::None,
            ResolveResult::Unknown(_) => Ns::UnknownPrefix,
            ResolveResult::Bound(ns) => match ns.0 {
                SOAP_ENV_NS => Ns::SoapEnvelope,
                SOAP_ENC_NS => Ns::SoapEncoding,
                XSI_NS => Ns::Xsi,
                other => match CwmpVersion::from_namespace(other) {
                    Some(v) => Ns::Cwmp(v),
                    None => Ns::Other,
                },
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
        let mut reader = NsReader::from_str(input);
        {
            let cfg = reader.config_mut();
            cfg.check_end_names = true;
            cfg.expand_empty_elements = false;
            cfg.trim_text_start = false;
            cfg.trim_text_end = false;
        }
        let mut nodes: Vec<Node<'a>> = Vec::with_capacity(64);
        let mut stack: Vec<u32> = Vec::with_capacity(16);
        let mut root_closed = false;

        loop {
            let pos = reader.buffer_position();
            let (resolved, event) = reader.read_resolved_event().map_err(|e| DecodeError::Xml {
                position: pos,
                reason: e.to_string(),
            })?;
            let ns = Ns::classify(&resolved);
            drop(resolved);
            match event {
                Event::Start(start) | Event::Empty(start) if root_closed => {
                    let _ = start;
                    return Err(DecodeError::Xml {
                        position: pos,
                        reason: "more than one root element".into(),
                    });
                }
                Event::Start(start) => {
                    let idx = push_node(&mut nodes, &stack, ns, &start, &reader, input, pos)?;
                    stack.push(idx);
                    if stack.len() > MAX_DEPTH {
                        return Err(DecodeError::TooDeep { limit: MAX_DEPTH });
                    }
                }
                Event::Empty(start) => {
                    push_node(&mut nodes, &stack, ns, &start, &reader, input, pos)?;
                    if stack.is_empty() {
                        root_closed = true;
                    }
                }
                Event::End(_) => {
                    stack.pop();
                    if stack.is_empty() {
                        root_closed = true;
                    }
                }
                Event::Text(text) => {
                    if let Some(&top) = stack.last() {
                        let node = &mut nodes[top as usize];
                        // Indentation between child elements carries nothing
                        // in CWMP; appending it would allocate per element.
                        if node.first_child != NONE && is_blank(text.as_ref()) {
                            continue;
                        }
                        append_text(&mut node.text, text.xml10_content());
                    } else if !text.trim().is_empty() && !root_closed && nodes.is_empty() {
                        return Err(DecodeError::NotXml);
                    }
                }
                Event::CData(cdata) => {
                    if let Some(&top) = stack.last() {
                        append_text(&mut nodes[top as usize].text, cdata.xml10_content());
                    }
                }
                Event::GeneralRef(r) => {
                    let Some(&top) = stack.last() else { continue };
                    let decoded = resolve_reference(&r).ok_or_else(|| DecodeError::Xml {
                        position: pos,
                        reason: format!("undefined entity `&{};`", truncate(&r, 40)),
                    })?;
                    let mut buf = [0u8; 4];
                    let s: &str = decoded.encode_utf8(&mut buf);
                    append_text(&mut nodes[top as usize].text, Cow::Owned(s.to_owned()));
                }
                Event::DocType(_) => return Err(DecodeError::DoctypeForbidden),
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => {
                    if let Some(&open) = stack.last() {
                        return Err(DecodeError::Truncated {
                            open_element: nodes[open as usize].local.to_string(),
                        });
                    }
                    if nodes.is_empty() {
                        return Err(DecodeError::NotXml);
                    }
                    return Ok(Document { nodes });
                }
            }
        }
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
    if piece.chars().all(is_xml_char) {
        return piece;
    }
    Cow::Owned(
        piece
            .chars()
            .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
            .collect(),
    )
}

fn append_text<'a>(dst: &mut Cow<'a, str>, piece: Cow<'a, str>) {
    let piece = sanitize(piece);
    if dst.is_empty() {
        *dst = piece;
    } else {
        dst.to_mut().push_str(&piece);
    }
}

fn push_node<'a>(
    nodes: &mut Vec<Node<'a>>,
    stack: &[u32],
    ns: Ns,
    start: &BytesStart<'a>,
    reader: &NsReader<&'a [u8]>,
    input: &'a str,
    pos: u64,
) -> Result<u32, DecodeError> {
    if nodes.len() >= MAX_ELEMENTS {
        return Err(DecodeError::TooManyElements {
            limit: MAX_ELEMENTS,
        });
    }
    let mut xsi_type = None;
    for attr in start.attributes().with_checks(false) {
        let attr = attr.map_err(|e| DecodeError::Xml {
            position: pos,
            reason: e.to_string(),
        })?;
        let (resolved, local) = reader.resolver().resolve_attribute(attr.key);
        if local.as_ref() != "type" {
            continue;
        }
        // `xsi:type`; a CPE that forgets to declare the xsi prefix still
        // means xsi:type when it writes `xsi:type`.
        let is_xsi = matches!(Ns::classify(&resolved), Ns::Xsi | Ns::UnknownPrefix);
        if is_xsi {
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| DecodeError::Xml {
                    position: pos,
                    reason: format!("xsi:type: {e}"),
                })?;
            xsi_type = Some(Cow::Owned(value.into_owned()));
        }
    }
    let local = start_local_name(start, input, pos);
    let idx = nodes.len() as u32;
    nodes.push(Node {
        ns,
        local,
        xsi_type,
        text: Cow::Borrowed(""),
        first_child: NONE,
        last_child: NONE,
        next_sibling: NONE,
    });
    if let Some(&parent) = stack.last() {
        let p = parent as usize;
        if nodes[p].last_child == NONE {
            nodes[p].first_child = idx;
            // Same as the indentation skipped after a child (see `parse`).
            if is_blank(&nodes[p].text) {
                nodes[p].text = Cow::Borrowed("");
            }
        } else {
            let last = nodes[p].last_child as usize;
            nodes[last].next_sibling = idx;
        }
        nodes[p].last_child = idx;
    } else if idx != 0 {
        return Err(DecodeError::Xml {
            position: pos,
            reason: "more than one root element".into(),
        });
    }
    Ok(idx)
}

/// The local part of an element name, borrowed from the input.
///
/// `pos` is where the reader stood before the tag, i.e. at its `<`, so the
/// qualified name is the input right after it. Borrowing saves an allocation
/// per element; if the slice is not what the reader parsed (it always should
/// be) the name is copied instead.
fn start_local_name<'a>(start: &BytesStart<'a>, input: &'a str, pos: u64) -> Cow<'a, str> {
    let qname = start.name();
    let qname = qname.as_ref();
    let begin = usize::try_from(pos).unwrap_or(usize::MAX).saturating_add(1);
    let borrowed = begin
        .checked_add(qname.len())
        .and_then(|end| input.get(begin..end))
        .filter(|s| *s == qname);
    match borrowed {
        Some(s) => Cow::Borrowed(s.rsplit(':').next().unwrap_or(s)),
        None => Cow::Owned(start.local_name().as_ref().to_owned()),
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
