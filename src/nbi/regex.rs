//! The small regular-expression subset `$regex` accepts, matched without
//! backtracking (a Thompson NFA run over the input once, so no pattern can
//! make a match take more than `pattern × input` steps): literals, `.`,
//! `^`, `$`, classes (`[a-z0-9_]`, `[^…]`), the escapes `\d \w \s \D \W
//! \S` and escaped punctuation, groups `( )` and `(?: )`, alternation `|`,
//! and the quantifiers `* + ?`. Anything else (`{n,m}`, lookaround,
//! backreferences) is refused with a message naming it, never guessed.

use thiserror::Error;

/// Longest pattern accepted, in characters.
const MAX_PATTERN: usize = 512;
/// Deepest group nesting accepted.
const MAX_DEPTH: usize = 16;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("$regex: {0}")]
pub struct RegexError(String);

fn err<T>(m: impl Into<String>) -> Result<T, RegexError> {
    Err(RegexError(m.into()))
}

#[derive(Clone, Debug)]
enum Atom {
    Char(char),
    Any,
    /// Ranges, negated.
    Class(Vec<(char, char)>, bool),
}

#[derive(Clone, Debug)]
enum Node {
    Atom(Atom),
    Start,
    End,
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Star(Box<Node>),
    Plus(Box<Node>),
    Opt(Box<Node>),
}

#[derive(Clone, Debug)]
enum Inst {
    Atom(Atom),
    Start,
    End,
    Split(usize, usize),
    Jmp(usize),
    Match,
}

/// A compiled pattern.
#[derive(Clone, Debug)]
pub struct Regex {
    prog: Vec<Inst>,
    ignore_case: bool,
    source: String,
}

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.ignore_case == other.ignore_case
    }
}

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    depth: usize,
}

fn class_escape(c: char) -> Option<(Vec<(char, char)>, bool)> {
    let digit = vec![('0', '9')];
    let word = vec![('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')];
    let space = vec![(' ', ' '), ('\t', '\r')];
    Some(match c {
        'd' => (digit, false),
        'D' => (digit, true),
        'w' => (word, false),
        'W' => (word, true),
        's' => (space, false),
        'S' => (space, true),
        _ => return None,
    })
}

fn literal_escape(c: char) -> Result<char, RegexError> {
    match c {
        'n' => Ok('\n'),
        't' => Ok('\t'),
        'r' => Ok('\r'),
        c if c.is_ascii_punctuation() => Ok(c),
        c => err(format!("the escape `\\{c}` is not supported")),
    }
}

impl Parser<'_> {
    fn alt(&mut self) -> Result<Node, RegexError> {
        let mut branches = vec![self.concat()?];
        while self.chars.peek() == Some(&'|') {
            self.chars.next();
            branches.push(self.concat()?);
        }
        Ok(if branches.len() == 1 {
            branches.pop().unwrap_or(Node::Concat(Vec::new()))
        } else {
            Node::Alt(branches)
        })
    }

    fn concat(&mut self) -> Result<Node, RegexError> {
        let mut items = Vec::new();
        while let Some(&c) = self.chars.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            let node = match self.chars.peek() {
                Some('*') => Node::Star(Box::new(atom)),
                Some('+') => Node::Plus(Box::new(atom)),
                Some('?') => Node::Opt(Box::new(atom)),
                Some('{') => return err("counted repetition `{n,m}` is not supported"),
                _ => {
                    items.push(atom);
                    continue;
                }
            };
            self.chars.next();
            if matches!(self.chars.peek(), Some('*' | '+' | '?')) {
                return err("lazy or possessive quantifiers are not supported");
            }
            items.push(node);
        }
        Ok(Node::Concat(items))
    }

    fn atom(&mut self) -> Result<Node, RegexError> {
        let Some(c) = self.chars.next() else {
            return err("unexpected end of pattern");
        };
        Ok(match c {
            '.' => Node::Atom(Atom::Any),
            '^' => Node::Start,
            '$' => Node::End,
            '*' | '+' | '?' => return err(format!("`{c}` has nothing to repeat")),
            '(' => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return err(format!("groups nest deeper than {MAX_DEPTH}"));
                }
                if self.chars.peek() == Some(&'?') {
                    self.chars.next();
                    if self.chars.next() != Some(':') {
                        return err("only `(?:…)` groups are supported");
                    }
                }
                let inner = self.alt()?;
                if self.chars.next() != Some(')') {
                    return err("unclosed `(`");
                }
                self.depth -= 1;
                inner
            }
            '[' => self.class()?,
            '\\' => {
                let Some(e) = self.chars.next() else {
                    return err("pattern ends with `\\`");
                };
                match class_escape(e) {
                    Some((ranges, neg)) => Node::Atom(Atom::Class(ranges, neg)),
                    None => Node::Atom(Atom::Char(literal_escape(e)?)),
                }
            }
            c => Node::Atom(Atom::Char(c)),
        })
    }

    fn class(&mut self) -> Result<Node, RegexError> {
        let mut negated = false;
        if self.chars.peek() == Some(&'^') {
            self.chars.next();
            negated = true;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let Some(c) = self.chars.next() else {
                return err("unclosed `[`");
            };
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = if c == '\\' {
                let Some(e) = self.chars.next() else {
                    return err("pattern ends with `\\`");
                };
                if let Some((r, neg)) = class_escape(e) {
                    if neg {
                        return err(format!("`\\{e}` inside `[…]` is not supported"));
                    }
                    ranges.extend(r);
                    continue;
                }
                literal_escape(e)?
            } else {
                c
            };
            let mut ahead = self.chars.clone();
            if ahead.next() == Some('-') && ahead.peek().is_some_and(|n| *n != ']') {
                self.chars.next();
                let hi = match self.chars.next() {
                    Some('\\') => literal_escape(self.chars.next().unwrap_or('\\'))?,
                    Some(h) => h,
                    None => return err("unclosed `[`"),
                };
                if hi < lo {
                    return err(format!("range `{lo}-{hi}` is out of order"));
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Node::Atom(Atom::Class(ranges, negated)))
    }
}

fn compile(node: &Node, prog: &mut Vec<Inst>) {
    match node {
        Node::Atom(a) => prog.push(Inst::Atom(a.clone())),
        Node::Start => prog.push(Inst::Start),
        Node::End => prog.push(Inst::End),
        Node::Concat(items) => items.iter().for_each(|n| compile(n, prog)),
        Node::Alt(branches) => {
            // split L1, next; L1: branch; jmp end; next: ...
            let mut jumps = Vec::new();
            for (i, b) in branches.iter().enumerate() {
                if i + 1 < branches.len() {
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    compile(b, prog);
                    jumps.push(prog.len());
                    prog.push(Inst::Jmp(0));
                    let next = prog.len();
                    prog[split] = Inst::Split(split + 1, next);
                } else {
                    compile(b, prog);
                }
            }
            let end = prog.len();
            for j in jumps {
                prog[j] = Inst::Jmp(end);
            }
        }
        Node::Star(n) => {
            let split = prog.len();
            prog.push(Inst::Split(split + 1, 0));
            compile(n, prog);
            prog.push(Inst::Jmp(split));
            let end = prog.len();
            prog[split] = Inst::Split(split + 1, end);
        }
        Node::Plus(n) => {
            let start = prog.len();
            compile(n, prog);
            let end = prog.len() + 1;
            prog.push(Inst::Split(start, end));
        }
        Node::Opt(n) => {
            let split = prog.len();
            prog.push(Inst::Split(split + 1, 0));
            compile(n, prog);
            let end = prog.len();
            prog[split] = Inst::Split(split + 1, end);
        }
    }
}

fn fold(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

impl Atom {
    fn matches(&self, c: char, ignore_case: bool) -> bool {
        match self {
            Atom::Any => c != '\n',
            Atom::Char(p) => *p == c || (ignore_case && fold(*p) == fold(c)),
            Atom::Class(ranges, negated) => {
                let hit = |c: char| ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
                let found = hit(c)
                    || (ignore_case && (c.to_lowercase().any(hit) || c.to_uppercase().any(hit)));
                found != *negated
            }
        }
    }
}

impl Regex {
    /// Compiles `pattern`; `options` are MongoDB's `$options` letters, of
    /// which `i` (ignore case) is supported.
    pub fn new(pattern: &str, options: &str) -> Result<Regex, RegexError> {
        if pattern.chars().count() > MAX_PATTERN {
            return err(format!("patterns are limited to {MAX_PATTERN} characters"));
        }
        let mut ignore_case = false;
        for o in options.chars() {
            match o {
                'i' => ignore_case = true,
                o => return err(format!("$options `{o}` is not supported (only `i`)")),
            }
        }
        let mut p = Parser {
            chars: pattern.chars().peekable(),
            depth: 0,
        };
        let node = p.alt()?;
        if p.chars.next().is_some() {
            return err("unbalanced `)`");
        }
        let mut prog = Vec::new();
        compile(&node, &mut prog);
        prog.push(Inst::Match);
        Ok(Regex {
            prog,
            ignore_case,
            source: pattern.to_owned(),
        })
    }

    /// Adds `pc` and what it reaches without consuming input.
    fn add(
        &self,
        list: &mut Vec<usize>,
        seen: &mut [bool],
        pc: usize,
        at_start: bool,
        at_end: bool,
    ) {
        if pc >= self.prog.len() || seen[pc] {
            return;
        }
        seen[pc] = true;
        match self.prog[pc] {
            Inst::Jmp(t) => self.add(list, seen, t, at_start, at_end),
            Inst::Split(a, b) => {
                self.add(list, seen, a, at_start, at_end);
                self.add(list, seen, b, at_start, at_end);
            }
            Inst::Start => {
                if at_start {
                    self.add(list, seen, pc + 1, at_start, at_end);
                }
            }
            Inst::End => {
                if at_end {
                    self.add(list, seen, pc + 1, at_start, at_end);
                }
            }
            Inst::Atom(_) | Inst::Match => list.push(pc),
        }
    }

    /// Whether the pattern matches anywhere in `text` (unanchored, as
    /// MongoDB's `$regex`).
    pub fn is_match(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        let n = self.prog.len();
        let mut current = Vec::with_capacity(n);
        let mut seen = vec![false; n];
        for i in 0..=chars.len() {
            // A new attempt starts at every position.
            self.add(&mut current, &mut seen, 0, i == 0, i == chars.len());
            if current
                .iter()
                .any(|pc| matches!(self.prog[*pc], Inst::Match))
            {
                return true;
            }
            let Some(&c) = chars.get(i) else { break };
            let mut next = Vec::with_capacity(n);
            seen.iter_mut().for_each(|s| *s = false);
            for &pc in &current {
                if let Inst::Atom(a) = &self.prog[pc] {
                    if a.matches(c, self.ignore_case) {
                        self.add(&mut next, &mut seen, pc + 1, false, i + 1 == chars.len());
                    }
                }
            }
            current = next;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Regex::new(p, "").unwrap().is_match(t)
    }

    #[test]
    fn matches_like_mongodb() {
        assert!(m("^HG8", "HG8245H"));
        assert!(!m("^HG8", "xHG8"));
        assert!(m("45H$", "HG8245H"));
        assert!(m("8245", "HG8245H"));
        assert!(m("^a(b|cd)+e$", "abcdbe"));
        assert!(!m("^a(b|cd)+e$", "ae"));
        assert!(m("^colou?r$", "color") && m("^colou?r$", "colour"));
        assert!(m("^[^0-9]+$", "abc") && !m("^[^0-9]+$", "a1"));
        assert!(m(r"^\d+\.\d+$", "1.25") && !m(r"^\d+\.\d+$", "1x25"));
        assert!(m("^$", ""));
        assert!(m("", "anything"));
        assert!(!m("a|^b", "xb"));
        assert!(m("(?:ab)*c", "ababc"));
        assert!(m("^[a-c-]+$", "a-b"));
        assert!(Regex::new("hg8245", "i").unwrap().is_match("xHG8245H"));
        assert!(Regex::new("^[a-f]+$", "i").unwrap().is_match("ABCDEF"));
    }

    #[test]
    fn refuses_what_it_does_not_support() {
        for (p, what) in [
            ("a{2}", "counted repetition"),
            ("(?=a)", "(?:"),
            (r"\1", "escape"),
            ("(a", "unclosed"),
            ("a)", "unbalanced"),
            ("[a", "unclosed"),
            ("*a", "nothing to repeat"),
            ("a*?", "lazy"),
            ("[z-a]", "out of order"),
        ] {
            let e = Regex::new(p, "").unwrap_err().to_string();
            assert!(e.contains(what), "{p}: {e}");
        }
        assert!(
            Regex::new("a", "m")
                .unwrap_err()
                .to_string()
                .contains("`m`")
        );
        assert!(Regex::new(&"(".repeat(40), "").is_err());
        assert!(Regex::new(&"a".repeat(600), "").is_err());
    }

    #[test]
    fn pathological_patterns_stay_linear() {
        let r = Regex::new("^(a|a)*(a*)*b$", "").unwrap();
        let t = "a".repeat(5000);
        let start = std::time::Instant::now();
        assert!(!r.is_match(&t));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
