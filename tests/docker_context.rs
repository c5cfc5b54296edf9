//! `docker/Dockerfile` builds the workspace without Docker being needed to check it: CI has no
//! Docker engine, so this test rebuilds the build stage's file system from its `COPY <src>...
//! <dst>` lines (the sources filtered by `docker/Dockerfile.dockerignore`, which BuildKit reads
//! for that Dockerfile) into a temp dir, and checks that it holds everything cargo reads there:
//!
//! - every workspace member's `Cargo.toml` and the `.rs` files of its `src/`, `Cargo.lock`;
//! - every target a manifest names, explicit or by default: `[lib]`, `[[bin]]`, `[[bench]]`,
//!   `[[test]]`, `[[example]]` (cargo reads those paths to load the manifest, even for `--bins`:
//!   a `[[bench]]` whose `benches/NAME.rs` is missing fails the build), build scripts and path
//!   dependencies;
//! - every file `include_str!`/`include_bytes!`'d by the members' `src/` (the crates the build
//!   stage compiles).
//!
//! Then, when cargo can run offline here, `cargo fetch --offline --locked` must load the rebuilt
//! workspace (the manifests with all their targets, and the lock file). A failure names the
//! missing path, why cargo needs it, and the COPY line that should bring it in (or the
//! dockerignore pattern that keeps it out).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DOCKERFILE: &str = "docker/Dockerfile";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---- paths -----------------------------------------------------------------------------------

/// `a/./b/../c` → `a/c`, `/`-separated, relative; `None` when it climbs above its root.
fn normalize(p: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
        }
    }
    Some(parts.join("/"))
}

fn join(base: &str, rel: &str) -> Option<String> {
    if base.is_empty() {
        normalize(rel)
    } else {
        normalize(&format!("{base}/{rel}"))
    }
}

// ---- glob patterns (dockerignore, COPY sources) ------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    /// `*`: any run of non-`/` characters.
    Star,
    /// `?`: one non-`/` character.
    One,
    /// `[...]` / `[^...]` / `[!...]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` (and `**/`) inside a dockerignore pattern: `(.*/)?`.
    DeepDirs,
    /// `**` at the end of a dockerignore pattern: `.*`.
    DeepRest,
}

/// Compiles `pattern` the way moby's patternmatcher (dockerignore, `deep` = true) or Go's
/// `filepath.Match` (COPY sources, `deep` = false, where `**` is just `*`) read it.
fn compile(pattern: &str, deep: bool) -> Vec<Tok> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if deep && chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                toks.push(if i == chars.len() {
                    Tok::DeepRest
                } else {
                    Tok::DeepDirs
                });
            }
            '*' => {
                while chars.get(i) == Some(&'*') {
                    i += 1;
                }
                toks.push(Tok::Star);
            }
            '?' => toks.push(Tok::One),
            '\\' if i < chars.len() => {
                toks.push(Tok::Lit(chars[i]));
                i += 1;
            }
            '[' => {
                let mut negated = false;
                if matches!(chars.get(i), Some('^') | Some('!')) {
                    negated = true;
                    i += 1;
                }
                let mut ranges = Vec::new();
                while i < chars.len() && chars[i] != ']' {
                    let mut lo = chars[i];
                    if lo == '\\' && i + 1 < chars.len() {
                        i += 1;
                        lo = chars[i];
                    }
                    i += 1;
                    if chars.get(i) == Some(&'-') && i + 1 < chars.len() && chars[i + 1] != ']' {
                        ranges.push((lo, chars[i + 1]));
                        i += 2;
                    } else {
                        ranges.push((lo, lo));
                    }
                }
                assert!(i < chars.len(), "unterminated [ in pattern {pattern:?}");
                i += 1;
                toks.push(Tok::Class { negated, ranges });
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    toks
}

fn matches(toks: &[Tok], s: &[char]) -> bool {
    let Some((first, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match first {
        Tok::Lit(c) => s.first() == Some(c) && matches(rest, &s[1..]),
        Tok::One => s.first().is_some_and(|c| *c != '/') && matches(rest, &s[1..]),
        Tok::Class { negated, ranges } => {
            s.first().is_some_and(|c| {
                *c != '/' && ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *negated
            }) && matches(rest, &s[1..])
        }
        Tok::Star => {
            for k in 0..=s.len() {
                if matches(rest, &s[k..]) {
                    return true;
                }
                if k < s.len() && s[k] == '/' {
                    break;
                }
            }
            false
        }
        Tok::DeepDirs => {
            matches(rest, s) || (0..s.len()).any(|k| s[k] == '/' && matches(rest, &s[k + 1..]))
        }
        Tok::DeepRest => true,
    }
}

fn glob_match(pattern: &str, path: &str, deep: bool) -> bool {
    let s: Vec<char> = path.chars().collect();
    matches(&compile(pattern, deep), &s)
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

// ---- dockerignore ----------------------------------------------------------------------------

struct IgnorePattern {
    line: usize,
    text: String,
    exception: bool,
    toks: Vec<Tok>,
}

struct Ignore {
    file: Option<String>,
    patterns: Vec<IgnorePattern>,
}

impl Ignore {
    /// BuildKit reads `<Dockerfile>.dockerignore` next to the Dockerfile in preference to the
    /// context's `.dockerignore`.
    fn for_dockerfile(repo: &Path, dockerfile: &str) -> Ignore {
        for file in [
            format!("{dockerfile}.dockerignore"),
            ".dockerignore".to_owned(),
        ] {
            if let Ok(text) = fs::read_to_string(repo.join(&file)) {
                return Ignore {
                    patterns: Self::parse(&text),
                    file: Some(file),
                };
            }
        }
        Ignore {
            file: None,
            patterns: Vec::new(),
        }
    }

    fn parse(text: &str) -> Vec<IgnorePattern> {
        let mut patterns = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let mut p = line.trim();
            if p.is_empty() || p.starts_with('#') {
                continue;
            }
            let exception = p.starts_with('!');
            if exception {
                p = p[1..].trim();
            }
            // moby: filepath.Clean, leading "/" dropped.
            let Some(clean) = normalize(p) else { continue };
            if clean.is_empty() {
                continue;
            }
            patterns.push(IgnorePattern {
                line: i + 1,
                toks: compile(&clean, true),
                text: line.trim().to_owned(),
                exception,
            });
        }
        patterns
    }

    fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// The pattern that excludes `path` (relative to the context root), if one does: the last
    /// pattern matching the path or one of its parent directories decides.
    fn excluded_by(&self, path: &str) -> Option<&IgnorePattern> {
        let chars: Vec<char> = path.chars().collect();
        let mut prefixes = vec![&chars[..]];
        for (k, c) in chars.iter().enumerate() {
            if *c == '/' {
                prefixes.push(&chars[..k]);
            }
        }
        let mut decided: Option<&IgnorePattern> = None;
        for p in &self.patterns {
            if prefixes.iter().any(|s| matches(&p.toks, s)) {
                decided = Some(p);
            }
        }
        decided.filter(|p| !p.exception)
    }
}

// ---- Dockerfile ------------------------------------------------------------------------------

struct Instr {
    line: usize,
    keyword: String,
    args: String,
}

impl Instr {
    fn display(&self) -> String {
        format!(
            "{DOCKERFILE}:{}: `{} {}`",
            self.line, self.keyword, self.args
        )
    }
}

/// Instructions with their continuation lines joined and comment lines dropped.
fn instructions(text: &str) -> Vec<Instr> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') || (pending.is_none() && line.is_empty()) {
            continue;
        }
        let (start, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        if let Some(cont) = line.strip_suffix('\\') {
            acc.push_str(cont);
            acc.push(' ');
            pending = Some((start, acc));
            continue;
        }
        acc.push_str(line);
        let mut words = acc.splitn(2, char::is_whitespace);
        let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
        let args = words.next().unwrap_or_default();
        out.push(Instr {
            line: start,
            keyword,
            args: args.split_whitespace().collect::<Vec<_>>().join(" "),
        });
    }
    if let Some((start, acc)) = pending {
        panic!("{DOCKERFILE}:{start}: continuation never ends: {acc}");
    }
    out
}

struct CopyLine {
    instr: Instr,
    /// Sources relative to the context root, as written (cleaned).
    sources: Vec<String>,
    /// The sources after wildcard expansion, relative to the context root.
    expanded: Vec<String>,
    /// Absolute destination in the image.
    dest: String,
    dest_is_dir: bool,
    excludes: Vec<String>,
}

struct BuildStage {
    from: Instr,
    copies: Vec<CopyLine>,
    /// The WORKDIR of the `RUN ... cargo build`.
    workdir: String,
}

fn strip_quotes(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// The stage that runs `cargo build`, its COPY lines before that RUN and its WORKDIR there.
fn build_stage(repo: &Path, text: &str) -> BuildStage {
    let mut stages: Vec<Vec<Instr>> = Vec::new();
    for instr in instructions(text) {
        if instr.keyword == "FROM" {
            stages.push(Vec::new());
        }
        if let Some(stage) = stages.last_mut() {
            stage.push(instr);
        }
    }
    let stage = stages
        .into_iter()
        .find(|s| {
            s.iter()
                .any(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
        })
        .unwrap_or_else(|| panic!("{DOCKERFILE} has no stage with a `RUN ... cargo build`"));
    let mut it = stage.into_iter();
    let from = it.next().unwrap();
    let mut workdir = "/".to_owned();
    let mut copies = Vec::new();
    for instr in it {
        match instr.keyword.as_str() {
            "WORKDIR" => {
                let w = strip_quotes(&instr.args);
                workdir = if w.starts_with('/') {
                    format!("/{}", normalize(w).unwrap())
                } else {
                    format!("/{}", join(&workdir, w).unwrap())
                };
            }
            "RUN" if instr.args.contains("cargo build") => {
                return BuildStage {
                    from,
                    copies,
                    workdir,
                };
            }
            "COPY" | "ADD" => {
                if let Some(c) = parse_copy(repo, &workdir, instr) {
                    copies.push(c);
                }
            }
            _ => {}
        }
    }
    unreachable!("the stage was chosen for its cargo build")
}

/// `COPY [--flags] <src>... <dst>` (or the JSON form); `None` for `--from` (not the context).
fn parse_copy(repo: &Path, workdir: &str, instr: Instr) -> Option<CopyLine> {
    let mut words: Vec<String> = if instr.args.trim_start().starts_with('[') {
        serde_json::from_str(&instr.args)
            .unwrap_or_else(|e| panic!("{}: bad JSON form: {e}", instr.display()))
    } else {
        instr.args.split_whitespace().map(str::to_owned).collect()
    };
    let mut excludes = Vec::new();
    while words.first().is_some_and(|w| w.starts_with("--")) {
        let flag = words.remove(0);
        let (name, value) = flag.split_once('=').unwrap_or((&flag, ""));
        match name {
            "--from" => return None,
            "--chown" | "--chmod" | "--link" | "--checksum" | "--keep-git-dir" => {}
            "--exclude" => excludes.push(value.to_owned()),
            _ => panic!(
                "{}: flag {name} is not understood by this test (teach it)",
                instr.display()
            ),
        }
    }
    assert!(
        words.len() >= 2,
        "{}: needs a source and a destination",
        instr.display()
    );
    let dest_raw = words.pop().unwrap();
    let sources: Vec<String> = words
        .iter()
        .map(|s| {
            assert!(
                !s.starts_with("<<") && !s.contains("://"),
                "{}: heredocs and URLs are not understood by this test",
                instr.display()
            );
            normalize(s).unwrap_or_else(|| panic!("{}: {s} leaves the context", instr.display()))
        })
        .collect();
    let mut expanded = Vec::new();
    for s in &sources {
        if has_glob(s) {
            let found = expand_glob(repo, s);
            expanded.extend(found);
        } else {
            expanded.push(s.clone());
        }
    }
    let dest = if dest_raw.starts_with('/') {
        format!("/{}", normalize(&dest_raw).unwrap())
    } else {
        format!("/{}", join(workdir, &dest_raw).unwrap())
    };
    let dest_is_dir = dest_raw.ends_with('/')
        || dest_raw == "."
        || sources.len() > 1
        || sources.iter().any(|s| has_glob(s));
    Some(CopyLine {
        instr,
        sources,
        expanded,
        dest: dest.trim_end_matches('/').to_owned(),
        dest_is_dir,
        excludes,
    })
}

/// A COPY source with wildcards, matched component by component (Go's `filepath.Match`).
fn expand_glob(repo: &Path, pattern: &str) -> Vec<String> {
    let mut found = vec![String::new()];
    for part in pattern.split('/') {
        let mut next = Vec::new();
        for base in &found {
            if !has_glob(part) {
                next.push(join(base, part).unwrap());
                continue;
            }
            let Ok(dir) = fs::read_dir(repo.join(base)) else {
                continue;
            };
            let mut names: Vec<String> = dir
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| glob_match(part, n, false))
                .collect();
            names.sort();
            next.extend(names.iter().map(|n| join(base, n).unwrap()));
        }
        found = next;
    }
    found.retain(|p| repo.join(p).exists());
    found
}

// ---- the rebuilt context -------------------------------------------------------------------

/// The files of `rel` (a file or a directory of the repository) that reach the build context.
fn context_files(repo: &Path, rel: &str, ignore: &Ignore, out: &mut Vec<String>) {
    let path = repo.join(rel);
    let Ok(meta) = fs::metadata(&path) else {
        return;
    };
    if meta.is_dir() {
        if !rel.is_empty() && ignore.excluded_by(rel).is_some() && !ignore.has_exceptions() {
            return;
        }
        let mut names: Vec<String> = fs::read_dir(&path)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            context_files(repo, &join(rel, &n).unwrap(), ignore, out);
        }
    } else if meta.is_file() && ignore.excluded_by(rel).is_none() {
        out.push(rel.to_owned());
    }
}

/// Writes what each COPY line puts in the image under `root` (the image's `/`); returns the
/// errors `docker build` itself would stop on (a source missing from the context).
fn rebuild(repo: &Path, ignore: &Ignore, stage: &BuildStage, root: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    for copy in &stage.copies {
        if copy.expanded.is_empty() {
            errors.push(format!(
                "{} copies nothing: no file of the context matches {:?}",
                copy.instr.display(),
                copy.sources
            ));
        }
        for src in &copy.expanded {
            let mut files = Vec::new();
            context_files(repo, src, ignore, &mut files);
            let is_dir = repo.join(src).is_dir();
            if !is_dir && files.is_empty() {
                let why = match ignore.excluded_by(src) {
                    Some(p) => format!(
                        "excluded by {} line {} (`{}`)",
                        ignore.file.as_deref().unwrap_or("?"),
                        p.line,
                        p.text
                    ),
                    None => "not in the repository".to_owned(),
                };
                errors.push(format!(
                    "{}: source `{src}` is not in the build context ({why}); docker build would fail",
                    copy.instr.display()
                ));
                continue;
            }
            for f in files {
                let within = if is_dir {
                    f.strip_prefix(src)
                        .unwrap_or(&f)
                        .trim_start_matches('/')
                        .to_owned()
                } else {
                    Path::new(&f)
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                };
                if copy
                    .excludes
                    .iter()
                    .any(|x| glob_match(x, &within, true) || glob_match(x, &f, true))
                {
                    continue;
                }
                let target = if is_dir || copy.dest_is_dir {
                    format!("{}/{within}", copy.dest)
                } else {
                    copy.dest.clone()
                };
                let target = root.join(target.trim_start_matches('/'));
                fs::create_dir_all(target.parent().unwrap()).unwrap();
                fs::copy(repo.join(&f), &target).unwrap();
            }
        }
    }
    errors
}

// ---- what cargo needs --------------------------------------------------------------------------

struct Need {
    /// Relative to the workspace root (= the context root = cargo's WORKDIR in the image).
    path: String,
    why: String,
}

fn manifest(repo: &Path, member: &str) -> toml::Table {
    let path = repo.join(join(member, "Cargo.toml").unwrap());
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn str_at<'a>(t: &'a toml::Table, keys: &[&str]) -> Option<&'a str> {
    let (last, head) = keys.split_last()?;
    let mut cur = t;
    for k in head {
        cur = cur.get(*k)?.as_table()?;
    }
    cur.get(*last)?.as_str()
}

/// Workspace members, relative to the root (`""` for the root package).
fn members(repo: &Path, root: &toml::Table) -> Vec<String> {
    let list = |key: &str| -> Vec<String> {
        root.get("workspace")
            .and_then(|w| w.get(key))
            .and_then(|m| m.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let exclude: BTreeSet<String> = list("exclude")
        .iter()
        .filter_map(|e| normalize(e))
        .collect();
    let mut out = BTreeSet::new();
    if root.contains_key("package") {
        out.insert(String::new());
    }
    for m in list("members") {
        let m = normalize(&m).unwrap();
        let found = if has_glob(&m) {
            expand_glob(repo, &m)
        } else {
            vec![m]
        };
        out.extend(
            found
                .into_iter()
                .filter(|m| !exclude.contains(m) && repo.join(m).join("Cargo.toml").is_file()),
        );
    }
    out.into_iter().collect()
}

fn rs_files(dir: &Path, rel: &str, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir.join(rel)) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        let r = join(rel, &n).unwrap();
        let p = dir.join(&r);
        if p.is_dir() {
            rs_files(dir, &r, out);
        } else if n.ends_with(".rs") {
            out.push(r);
        }
    }
}

/// A Rust string literal at the start of `s` (plain or raw); its value.
fn string_literal(s: &str) -> Option<String> {
    if let Some(rest) = s.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(value),
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    c => value.push(c),
                },
                c => value.push(c),
            }
        }
        return None;
    }
    let rest = s.strip_prefix('r')?;
    let hashes = rest.len() - rest.trim_start_matches('#').len();
    let rest = rest[hashes..].strip_prefix('"')?;
    let close = format!("\"{}", "#".repeat(hashes));
    rest.find(&close).map(|end| rest[..end].to_owned())
}

enum IncludeArg {
    /// Relative to the including file's directory.
    File(String),
    /// `concat!(env!("CARGO_MANIFEST_DIR"), "/...")`: relative to the crate's root.
    Manifest(String),
    Unresolved(String),
}

/// Every `include_str!`/`include_bytes!` in `src` (not in `//` comments): (line, argument).
fn includes(src: &str) -> Vec<(usize, IncludeArg)> {
    let mut out = Vec::new();
    for (n, line) in src.lines().enumerate() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        for mac in ["include_str!", "include_bytes!"] {
            let mut from = 0;
            while let Some(at) = line[from..].find(mac) {
                let start = from + at + mac.len();
                from = start;
                // The call may continue on the next lines.
                let rest: String = src
                    .lines()
                    .skip(n)
                    .collect::<Vec<_>>()
                    .join("\n")
                    .chars()
                    .skip(line[..start].chars().count())
                    .take(400)
                    .collect();
                let rest = rest.trim_start();
                let Some(rest) = rest.strip_prefix(['(', '[', '{']) else {
                    continue; // `include_str!` mentioned in text, not called
                };
                let rest = rest.trim_start();
                let squashed: String = rest.chars().filter(|c| !c.is_whitespace()).collect();
                let arg = if let Some(lit) = string_literal(rest) {
                    IncludeArg::File(lit)
                } else if let Some(tail) =
                    squashed.strip_prefix("concat!(env!(\"CARGO_MANIFEST_DIR\"),")
                {
                    match string_literal(tail) {
                        Some(lit) => IncludeArg::Manifest(lit),
                        None => IncludeArg::Unresolved(rest.chars().take(80).collect()),
                    }
                } else {
                    IncludeArg::Unresolved(rest.chars().take(80).collect())
                };
                out.push((n + 1, arg));
            }
        }
    }
    out
}

/// `benches/NAME.rs` or `benches/NAME/main.rs`, whichever the repository has (the first when
/// neither: cargo's error names it).
fn default_target(repo: &Path, member: &str, candidates: &[String]) -> String {
    candidates
        .iter()
        .map(|c| join(member, c).unwrap())
        .find(|c| repo.join(c).is_file())
        .unwrap_or_else(|| join(member, &candidates[0]).unwrap())
}

fn needs(repo: &Path, problems: &mut Vec<String>) -> Vec<Need> {
    let root = manifest(repo, "");
    let mut needs = vec![Need {
        path: "Cargo.toml".into(),
        why: "the workspace manifest".into(),
    }];
    let mut push = |path: String, why: String| needs.push(Need { path, why });
    for extra in [
        "Cargo.lock",
        "rust-toolchain",
        "rust-toolchain.toml",
        ".cargo/config",
        ".cargo/config.toml",
    ] {
        if repo.join(extra).is_file() {
            push(extra.into(), "read by cargo at the workspace root".into());
        }
    }
    for member in members(repo, &root) {
        let shown = if member.is_empty() { "." } else { &member };
        let manifest_path = join(&member, "Cargo.toml").unwrap();
        let m = manifest(repo, &member);
        push(manifest_path.clone(), format!("workspace member {shown}"));
        let package = str_at(&m, &["package", "name"])
            .unwrap_or_default()
            .to_owned();

        // Build script.
        match m.get("package").and_then(|p| p.get("build")) {
            Some(toml::Value::String(b)) => push(
                join(&member, b).unwrap(),
                format!("build script of {manifest_path}"),
            ),
            Some(toml::Value::Boolean(false)) => {}
            _ => {
                let b = join(&member, "build.rs").unwrap();
                if repo.join(&b).is_file() {
                    push(b, format!("build script of {manifest_path}"));
                }
            }
        }

        // Targets.
        let lib = match str_at(&m, &["lib", "path"]) {
            Some(p) => Some(join(&member, p).unwrap()),
            None => {
                let d = join(&member, "src/lib.rs").unwrap();
                (m.contains_key("lib") || repo.join(&d).is_file()).then_some(d)
            }
        };
        if let Some(lib) = lib {
            push(lib, format!("[lib] of {manifest_path}"));
        }
        let main = join(&member, "src/main.rs").unwrap();
        if repo.join(&main).is_file() {
            push(main, format!("default binary of {manifest_path}"));
        }
        for (kind, dir) in [
            ("bin", "src/bin"),
            ("bench", "benches"),
            ("test", "tests"),
            ("example", "examples"),
        ] {
            let Some(targets) = m.get(kind).and_then(|v| v.as_array()) else {
                continue;
            };
            for t in targets {
                let name = t.get("name").and_then(|n| n.as_str()).unwrap_or_default();
                let path = match t.get("path").and_then(|p| p.as_str()) {
                    Some(p) => join(&member, p).unwrap(),
                    None => {
                        let mut candidates =
                            vec![format!("{dir}/{name}.rs"), format!("{dir}/{name}/main.rs")];
                        if kind == "bin" && name == package {
                            candidates.insert(0, "src/main.rs".into());
                        }
                        default_target(repo, &member, &candidates)
                    }
                };
                push(path, format!("[[{kind}]] \"{name}\" of {manifest_path}"));
            }
        }

        // Path dependencies (their manifests are loaded with the workspace).
        let mut dep_tables: Vec<&toml::Table> = Vec::new();
        for key in ["dependencies", "dev-dependencies", "build-dependencies"] {
            if let Some(t) = m.get(key).and_then(|v| v.as_table()) {
                dep_tables.push(t);
            }
        }
        if let Some(targets) = m.get("target").and_then(|v| v.as_table()) {
            for cfg in targets.values().filter_map(|v| v.as_table()) {
                for key in ["dependencies", "dev-dependencies", "build-dependencies"] {
                    if let Some(t) = cfg.get(key).and_then(|v| v.as_table()) {
                        dep_tables.push(t);
                    }
                }
            }
        }
        if let Some(t) = m
            .get("workspace")
            .and_then(|w| w.get("dependencies"))
            .and_then(|v| v.as_table())
        {
            dep_tables.push(t);
        }
        for t in dep_tables {
            for (dep, spec) in t {
                if let Some(p) = spec.get("path").and_then(|p| p.as_str()) {
                    match join(&member, &format!("{p}/Cargo.toml")) {
                        Some(d) => push(d, format!("path dependency {dep} of {manifest_path}")),
                        None => problems.push(format!(
                            "path dependency {dep} of {manifest_path} ({p}) is outside the repository: the Docker context cannot hold it"
                        )),
                    }
                }
            }
        }

        // Sources and what they include.
        let src_dir = join(&member, "src").unwrap();
        let mut files = Vec::new();
        rs_files(repo, &src_dir, &mut files);
        for f in files {
            push(f.clone(), format!("source of {shown}"));
            let text = fs::read_to_string(repo.join(&f)).unwrap();
            let file_dir = Path::new(&f)
                .parent()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            for (line, arg) in includes(&text) {
                let resolved = match &arg {
                    IncludeArg::File(p) => join(&file_dir, p),
                    IncludeArg::Manifest(p) => join(&member, p),
                    IncludeArg::Unresolved(what) => {
                        problems.push(format!(
                            "{f}:{line}: cannot tell which file this include names: {what}… (teach tests/docker_context.rs)"
                        ));
                        continue;
                    }
                };
                match resolved {
                    Some(p) => push(p, format!("included by {f}:{line}")),
                    None => problems.push(format!(
                        "{f}:{line}: includes a file outside the repository: the Docker context cannot hold it"
                    )),
                }
            }
        }
    }
    needs
}

/// Why `need` is not in the image, and which COPY line should bring it in.
fn explain(need: &Need, repo: &Path, ignore: &Ignore, stage: &BuildStage) -> String {
    let p = &need.path;
    let mut s = format!("`{p}` ({})", need.why);
    if !repo.join(p).exists() {
        let _ = write!(
            s,
            ": not in the repository either (a broken manifest or include?)"
        );
        return s;
    }
    let covering: Vec<(&CopyLine, &String)> = stage
        .copies
        .iter()
        .flat_map(|c| c.expanded.iter().map(move |src| (c, src)))
        .filter(|(_, src)| src.is_empty() || *p == **src || p.starts_with(&format!("{src}/")))
        .collect();
    if let Some(pat) = ignore.excluded_by(p) {
        let by = match covering.first() {
            Some((c, _)) => format!("{} would copy it, but", c.instr.display()),
            None => "no COPY line copies it, and".to_owned(),
        };
        let _ = write!(
            s,
            ": {by} {} line {} (`{}`) keeps it out of the build context; make an exception (`!{p}`) or narrow that pattern",
            ignore.file.as_deref().unwrap_or("?"),
            pat.line,
            pat.text
        );
        if covering.is_empty() {
            let _ = write!(s, ", and {}", suggestion(p));
        }
    } else if let Some((c, _)) = covering.first() {
        let _ = write!(
            s,
            ": {} copies it, but not to {}/{p} (its destination is {})",
            c.instr.display(),
            stage.workdir.trim_end_matches('/'),
            c.dest
        );
    } else {
        let _ = write!(
            s,
            ": no COPY line of the build stage copies it; {}",
            suggestion(p)
        );
    }
    s
}

fn suggestion(p: &str) -> String {
    match p.split_once('/') {
        Some((top, _)) => format!(
            "add `COPY {top} ./{top}` to the build stage of {DOCKERFILE} (with the other COPY lines, before the RUN cargo build)"
        ),
        None => format!("add it to a `COPY ... ./` line of the build stage of {DOCKERFILE}"),
    }
}

/// The host's target triple, from `rustc -vV`.
fn host_triple() -> Result<String, String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", Path::new(&rustc).display()))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "`rustc -vV` printed no host".to_owned())
}

/// Runs `cargo fetch --offline --locked --target <host>` on `manifest`, the cheapest cargo
/// command that loads every manifest with all its targets as `cargo build` does (`cargo metadata
/// --no-deps` quietly drops a `[[bench]]` whose file is missing) and checks `Cargo.lock`; offline
/// it only needs the registry cache a build of the repository has filled. `Ok(None)` when it
/// succeeds, `Ok(Some(stderr))` when it fails, `Err(why)` when it cannot run here at all.
fn cargo_fetch(manifest: &Path, host: &str, stderr_file: &Path) -> Result<Option<String>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(&cargo)
        .args(["fetch", "--offline", "--locked", "--target", host])
        .arg("--manifest-path")
        .arg(manifest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(stderr_file).unwrap())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", Path::new(&cargo).display()))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(
                "`cargo fetch --offline` took over 120 s (a cargo lock held elsewhere?)".into(),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = fs::read_to_string(stderr_file).unwrap_or_default();
    if status.success() {
        Ok(None)
    } else {
        Ok(Some(stderr.trim().to_owned()))
    }
}

#[test]
fn docker_build_context_holds_every_file_cargo_reads() {
    let repo = repo();
    let text = fs::read_to_string(repo.join(DOCKERFILE)).unwrap();
    let ignore = Ignore::for_dockerfile(&repo, DOCKERFILE);
    let stage = build_stage(&repo, &text);

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("image");
    let mut problems = rebuild(&repo, &ignore, &stage, &root);
    let workdir = root.join(stage.workdir.trim_start_matches('/'));

    let needs = needs(&repo, &mut problems);
    assert!(
        needs.iter().any(|n| n.path.starts_with("src/")),
        "no source found: is CARGO_MANIFEST_DIR the workspace root?"
    );
    let mut seen = BTreeSet::new();
    for need in &needs {
        if seen.insert(need.path.clone()) && !workdir.join(&need.path).is_file() {
            problems.push(explain(need, &repo, &ignore, &stage));
        }
    }

    // cargo itself, on the rebuilt workspace; skipped when it cannot run offline on the
    // repository itself here (no cargo or rustc, or an empty registry cache).
    let skip =
        |why: &str| eprintln!("docker_context: skipped the `cargo fetch --offline` check: {why}");
    match host_triple() {
        Err(e) => skip(&e),
        Ok(host) => {
            let log = tmp.path().join("cargo-stderr");
            match cargo_fetch(&workdir.join("Cargo.toml"), &host, &log) {
                Ok(None) => {}
                Ok(Some(err)) => match cargo_fetch(&repo.join("Cargo.toml"), &host, &log) {
                    Ok(None) => problems.push(format!(
                        "`cargo fetch --offline --locked --target {host}` fails in the rebuilt context (and works in the repository):\n{err}"
                    )),
                    Ok(Some(repo_err)) => skip(&format!("it fails on the repository itself: {repo_err}")),
                    Err(e) => skip(&e),
                },
                Err(e) => skip(&e),
            }
        }
    }

    if !problems.is_empty() {
        let mut msg = format!(
            "the build stage of {DOCKERFILE} (`{} {}`, cargo runs in {}) misses files cargo reads:\n",
            stage.from.keyword, stage.from.args, stage.workdir
        );
        for p in &problems {
            let _ = writeln!(msg, "  - {p}");
        }
        let _ = writeln!(
            msg,
            "its COPY lines (context filtered by {}):",
            ignore.file.as_deref().unwrap_or("no dockerignore")
        );
        for c in &stage.copies {
            let _ = writeln!(msg, "    {}", c.instr.display());
        }
        panic!("{msg}");
    }
}

#[test]
fn dockerignore_and_copy_patterns_match_like_docker() {
    let ignore = Ignore {
        file: Some("test".into()),
        patterns: Ignore::parse(
            "# comment\n**/target\nfuzz\n/tests\n**/*.swp\ndocs/*.md\n!docs/keep.md\nlogs/**\n",
        ),
    };
    let excluded = |p: &str| ignore.excluded_by(p).map(|p| p.text.clone());
    assert_eq!(excluded("target").as_deref(), Some("**/target"));
    assert_eq!(excluded("target/release/x").as_deref(), Some("**/target"));
    assert_eq!(
        excluded("simulators/cpe-sim/target/debug/x").as_deref(),
        Some("**/target")
    );
    assert_eq!(excluded("fuzz/Cargo.toml").as_deref(), Some("fuzz"));
    assert_eq!(excluded("tests/api.rs").as_deref(), Some("/tests"));
    // Root-anchored: a nested tests/ stays.
    assert_eq!(excluded("simulators/cpe-sim/tests/cli.rs"), None);
    assert_eq!(excluded("src/a.rs.swp").as_deref(), Some("**/*.swp"));
    assert_eq!(excluded("docs/a.md").as_deref(), Some("docs/*.md"));
    assert_eq!(excluded("docs/keep.md"), None);
    assert_eq!(excluded("docs/sub/a.md"), None);
    assert_eq!(excluded("logs/a/b").as_deref(), Some("logs/**"));
    assert_eq!(excluded("targets/x"), None);
    assert_eq!(excluded("src/main.rs"), None);

    assert!(glob_match("*.toml", "Cargo.toml", false));
    assert!(!glob_match("*.toml", "a/Cargo.toml", false));
    assert!(glob_match("Cargo.*", "Cargo.lock", false));
    assert!(glob_match("[a-c]?", "b1", false));
    assert!(!glob_match("[!a-c]?", "b1", false));

    let instrs = instructions(
        "# syntax=docker/dockerfile:1\nFROM x AS build\nCOPY a \\\n  # inside\n  b ./\nRUN cargo build \\\n --release\n",
    );
    let shown: Vec<String> = instrs.iter().map(|i| i.display()).collect();
    assert_eq!(
        shown,
        [
            "docker/Dockerfile:2: `FROM x AS build`",
            "docker/Dockerfile:3: `COPY a b ./`",
            "docker/Dockerfile:6: `RUN cargo build --release`",
        ]
    );

    let inc = includes(
        "// include_str!(\"no\")\nconst A: &str = include_str!(\"../x.toml\");\nconst B: &[u8] = include_bytes!(\n    r#\"y.bin\"#,\n);\nconst C: &str = include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/z.csv\"));\n/// Files are `include_str!`'d.\n",
    );
    let got: Vec<String> = inc
        .iter()
        .map(|(l, a)| match a {
            IncludeArg::File(p) => format!("{l} file {p}"),
            IncludeArg::Manifest(p) => format!("{l} manifest {p}"),
            IncludeArg::Unresolved(w) => format!("{l} ? {w}"),
        })
        .collect();
    assert_eq!(
        got,
        ["2 file ../x.toml", "3 file y.bin", "6 manifest /z.csv"]
    );
}
