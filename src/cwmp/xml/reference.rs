//! The decoder's tree builder as it was before `scan.rs`, on quick-xml's
//! namespace-resolving reader: kept for tests only, as the oracle the
//! scanner is compared with.

use std::borrow::Cow;

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use super::{
    Document, MAX_DEPTH, MAX_ELEMENTS, NONE, Node, Ns, append_text, is_blank, link_child,
    resolve_reference, truncate,
};
use crate::cwmp::DecodeError;

fn classify(resolved: &ResolveResult<'_>) -> Ns {
    match resolved {
        ResolveResult::Unbound => Ns::None,
        ResolveResult::Unknown(_) => Ns::UnknownPrefix,
        ResolveResult::Bound(ns) => Ns::of_uri(ns.0),
    }
}

/// Parses `input` the way the decoder did before `scan.rs`.
pub fn parse<'a>(input: &'a str) -> Result<Document<'a>, DecodeError> {
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
        let ns = classify(&resolved);
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
        let is_xsi = matches!(classify(&resolved), Ns::Xsi | Ns::UnknownPrefix);
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
        link_child(nodes, parent, idx);
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
