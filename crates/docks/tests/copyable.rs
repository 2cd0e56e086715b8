//! An adapter folder is what a user copies out of StackDock into a crate of their own, edits,
//! and registers in place of the built-in adapter. Every folder under `src/` with an
//! `adapter.rs` is held to that here, two ways:
//!
//! - its files may use only `stackdock_docks::prelude::*`, each other and external crates —
//!   never `crate::`, another StackDock crate, or any other path into `stackdock_docks`;
//! - the DigitalOcean folder, copied into a fresh crate outside the workspace, builds, is
//!   registered over the built-in adapter, and provisions a droplet on the sandbox.
//!
//! The copy is built with the same `CARGO_TARGET_DIR` as this test, so the registry crates
//! are not compiled again and the build takes seconds.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// StackDock's own crates other than `stackdock_docks`: an adapter folder names none of them.
const OTHER_STACKDOCK_CRATES: &[&str] = &[
    "stackdock_core",
    "stackdock_store",
    "stackdock_engine",
    "stackdock_server",
    "stackdock_sandbox",
    "stackdock_cli",
];

/// How long the copy may take to build and test before the test gives up on it. Generous:
/// another build may hold the shared target directory for a while.
const BUILD_DEADLINE: Duration = Duration::from_secs(15 * 60);

fn docks_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn workspace_root() -> PathBuf {
    docks_dir()
        .ancestors()
        .find(|dir| {
            fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"))
        })
        .expect("the docks crate lives in a workspace")
        .to_path_buf()
}

/// Every adapter folder: a directory of `src/` holding an `adapter.rs`.
fn adapter_folders() -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = fs::read_dir(docks_dir().join("src"))
        .expect("read src/")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("adapter.rs").is_file())
        .collect();
    folders.sort();
    folders
}

/// Every `.rs` file under `dir`, with its path relative to `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in fs::read_dir(&next).expect("read an adapter folder") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path.strip_prefix(dir).expect("under dir").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// What a folder's files refer to
// ---------------------------------------------------------------------------------------------

/// Rust source reduced to its code: comments, strings and char literals are blanked with
/// spaces byte for byte (line breaks kept), so offsets still point into the original.
fn code_only(src: &str) -> String {
    let bytes = src.as_bytes();
    let mut out = bytes.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for b in &mut out[from..to.min(bytes.len())] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    };
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"//") {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |n| i + n);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (0, i);
            while j < bytes.len() {
                if bytes[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if bytes[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if (rest[0] == b'r' || rest.starts_with(b"br"))
            && (i == 0 || !ident(bytes[i - 1]))
            && {
                let after = if rest[0] == b'r' { 1 } else { 2 };
                let hashes = rest[after..].iter().take_while(|&&b| b == b'#').count();
                rest.get(after + hashes) == Some(&b'"')
            }
        {
            // A raw string: r"..", r#".."#, br"..".
            let after = if rest[0] == b'r' { 1 } else { 2 };
            let hashes = rest[after..].iter().take_while(|&&b| b == b'#').count();
            let open = i + after + hashes + 1;
            let mut close = b"\"".to_vec();
            close.extend(std::iter::repeat_n(b'#', hashes));
            let end = bytes[open..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(bytes.len(), |n| open + n + close.len());
            blank(&mut out, open, end - hashes - 1);
            i = end;
        } else if rest[0] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i + 1, j);
            i = j + 1;
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '\u{..}'), or else a lifetime or label, which is code.
            let end = if rest.get(1) == Some(&b'\\') {
                rest[2..]
                    .iter()
                    .position(|&b| b == b'\'')
                    .map(|n| i + 2 + n)
            } else {
                let width = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                (rest.get(1 + width) == Some(&b'\'')).then_some(i + 1 + width)
            };
            match end {
                Some(end) => {
                    blank(&mut out, i + 1, end);
                    i = end + 1;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).expect("only ASCII bytes were written over whole characters")
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Other(char),
}

/// The tokens of blanked code, each with its byte offset.
fn tokens(code: &str) -> Vec<(usize, Token)> {
    let mut out = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut word = c.to_string();
            while let Some(&(_, n)) = chars.peek() {
                if !(n.is_alphanumeric() || n == '_') {
                    break;
                }
                word.push(n);
                chars.next();
            }
            out.push((at, Token::Ident(word)));
        } else if c == ':' && chars.peek().is_some_and(|&(_, n)| n == ':') {
            chars.next();
            out.push((at, Token::PathSep));
        } else if !c.is_whitespace() {
            out.push((at, Token::Other(c)));
        }
    }
    out
}

fn ident(token: Option<&(usize, Token)>, name: &str) -> bool {
    matches!(token, Some((_, Token::Ident(word))) if word == name)
}

fn is(token: Option<&(usize, Token)>, expected: &Token) -> bool {
    token.is_some_and(|(_, t)| t == expected)
}

/// What in one file of an adapter folder would not survive copying the folder out, one line
/// per problem. `relative` is the file's path within the folder; `folder` the folder itself,
/// to resolve `mod` declarations.
fn escapes(src: &str, relative: &Path, folder: &Path) -> Vec<String> {
    let code = code_only(src);
    let tokens = tokens(&code);
    let line = |at: usize| src[..at].matches('\n').count() + 1;
    let file_is_mod_rs = relative.file_name().is_some_and(|f| f == "mod.rs");
    // How many `super::` stay within the folder: none from its `mod.rs`, one from a file
    // beside it, and so on down.
    let depth = relative.components().count() - usize::from(file_is_mod_rs);
    let mut problems = Vec::new();
    let mut say = |at: usize, what: String| problems.push(format!("line {}: {what}", line(at)));

    let mut i = 0;
    while i < tokens.len() {
        let (at, token) = &tokens[i];
        let next = tokens.get(i + 1);
        match token {
            Token::Ident(word) if word == "crate" && is(next, &Token::PathSep) => {
                let dollar = i > 0 && is(tokens.get(i - 1), &Token::Other('$'));
                say(
                    *at,
                    format!(
                        "`{}crate::` names the crate it is built in",
                        if dollar { "$" } else { "" }
                    ),
                );
            }
            Token::Ident(word) if OTHER_STACKDOCK_CRATES.contains(&word.as_str()) => {
                say(*at, format!("`{word}` is another StackDock crate"));
            }
            Token::Ident(word) if word == "stackdock_docks" => {
                let prelude = is(next, &Token::PathSep)
                    && ident(tokens.get(i + 2), "prelude")
                    && is(tokens.get(i + 3), &Token::PathSep)
                    && is(tokens.get(i + 4), &Token::Other('*'));
                if !prelude {
                    let shown: String = code[*at..].chars().take(60).collect();
                    let shown = shown.split([';', '\n']).next().unwrap_or_default().trim();
                    say(
                        *at,
                        format!("`{shown}`: only `stackdock_docks::prelude::*` is for adapters"),
                    );
                }
            }
            Token::Ident(word) if word == "super" && is(next, &Token::PathSep) => {
                let mut up = 0;
                let mut j = i;
                while ident(tokens.get(j), "super") && is(tokens.get(j + 1), &Token::PathSep) {
                    up += 1;
                    j += 2;
                }
                if up > depth {
                    say(
                        *at,
                        format!(
                            "{up} `super::` from {} leave the folder",
                            relative.display()
                        ),
                    );
                }
                i = j;
                continue;
            }
            Token::Other('#')
                if is(next, &Token::Other('[')) && ident(tokens.get(i + 2), "path") =>
            {
                say(*at, "`#[path]` may point outside the folder".into());
            }
            Token::Ident(word)
                if ["include", "include_str", "include_bytes"].contains(&word.as_str())
                    && is(next, &Token::Other('!')) =>
            {
                let argument = src[*at..].split(')').next().unwrap_or_default();
                if argument.contains("..") || argument.contains("\"/") || argument.contains("env!")
                {
                    say(
                        *at,
                        format!("`{argument})` reads a file outside the folder"),
                    );
                }
            }
            Token::Ident(word) if word == "mod" => {
                if let (Some((_, Token::Ident(name))), true) =
                    (tokens.get(i + 1), is(tokens.get(i + 2), &Token::Other(';')))
                {
                    let parent = relative.parent().unwrap_or(Path::new(""));
                    let dir = if file_is_mod_rs {
                        folder.join(parent)
                    } else {
                        folder
                            .join(parent)
                            .join(relative.file_stem().expect("a file name"))
                    };
                    let inside = dir.join(format!("{name}.rs")).is_file()
                        || dir.join(name).join("mod.rs").is_file();
                    if !inside {
                        say(*at, format!("`mod {name};` has no file in the folder"));
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    problems
}

/// The crates among `candidates` (as written in Cargo.toml) that `code` names in a path.
fn crates_named(code: &str, candidates: &[String]) -> BTreeSet<String> {
    let tokens = tokens(code);
    candidates
        .iter()
        .filter(|name| {
            let ident_name = name.replace('-', "_");
            tokens.iter().enumerate().any(|(i, (_, t))| {
                t == &Token::Ident(ident_name.clone())
                    && is(tokens.get(i + 1), &Token::PathSep)
                    && !(i > 0 && is(tokens.get(i - 1), &Token::PathSep))
            })
        })
        .cloned()
        .collect()
}

#[test]
fn adapter_folders_use_only_the_prelude_their_own_files_and_external_crates() {
    let folders = adapter_folders();
    let names: Vec<String> = folders
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"digitalocean".to_string()),
        "no adapter folder found under src/: {names:?}"
    );
    let mut problems = Vec::new();
    for folder in &folders {
        let files = rust_files(folder);
        assert!(
            files.iter().any(|f| f == Path::new("mod.rs")),
            "{}: no mod.rs",
            folder.display()
        );
        for relative in files {
            let src = fs::read_to_string(folder.join(&relative)).expect("read a source file");
            for problem in escapes(&src, &relative, folder) {
                problems.push(format!(
                    "src/{}/{}: {problem}",
                    folder.file_name().unwrap().to_string_lossy(),
                    relative.display()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "adapter folders must copy out whole:\n{}",
        problems.join("\n")
    );
}

#[test]
fn manifests_outside_the_workspace_keep_the_workspace_versions() {
    let workspace = [
        (
            "serde".to_string(),
            r#"{ version = "1", features = ["derive"] }"#.to_string(),
        ),
        ("futures".to_string(), r#""0.3""#.to_string()),
        (
            "reqwest".to_string(),
            r#"{ version = "0.12", default-features = false, features = ["json"] }"#.to_string(),
        ),
        (
            "stackdock-core".to_string(),
            r#"{ path = "crates/core" }"#.to_string(),
        ),
    ];
    let root = Path::new("/w");
    let spec = |name: &str, extra: &[&str]| {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        standalone_spec(name, &workspace, root, &extra)
    };
    assert_eq!(
        spec("serde", &[]),
        r#"{ version = "1", features = ["derive"] }"#
    );
    assert_eq!(
        spec("serde", &["rc"]),
        r#"{ version = "1", features = ["derive", "rc"] }"#
    );
    assert_eq!(spec("futures", &[]), r#"{ version = "0.3" }"#);
    assert_eq!(
        spec("futures", &["std"]),
        r#"{ version = "0.3", features = ["std"] }"#
    );
    assert_eq!(
        spec("reqwest", &["stream"]),
        r#"{ version = "0.12", default-features = false, features = ["json", "stream"] }"#
    );
    assert_eq!(
        spec("stackdock-core", &[]),
        r#"{ path = "/w/crates/core" }"#
    );
    let member = [
        ("stackdock-core.workspace".to_string(), "true".to_string()),
        (
            "serde".to_string(),
            r#"{ workspace = true, features = ["rc"] }"#.to_string(),
        ),
        ("local".to_string(), r#""2""#.to_string()),
    ];
    assert_eq!(
        standalone_section(&member, &workspace, root),
        [
            r#"stackdock-core = { path = "/w/crates/core" }"#,
            r#"serde = { version = "1", features = ["derive", "rc"] }"#,
            r#"local = "2""#,
        ]
    );
}

#[test]
fn the_folder_check_tells_what_copies_out_from_what_does_not() {
    let folder = docks_dir().join("src").join("digitalocean");
    let check = |file: &str, src: &str| escapes(src, Path::new(file), &folder);
    let fine = [
        ("mod.rs", "use stackdock_docks::prelude::*;"),
        ("mod.rs", "use stackdock_docks :: prelude :: *;"),
        (
            "adapter.rs",
            "use super::api::{self, Droplet}; use super::DEFAULT_BASE_URL;",
        ),
        (
            "mod.rs",
            "use self::inner::Thing; mod inner { pub struct Thing; }",
        ),
        (
            "mod.rs",
            "use serde::{Deserialize, Serialize}; use schemars::JsonSchema;",
        ),
        (
            "api.rs",
            "let t = futures::future::try_join_all(v); let c = reqwest::Client::new();",
        ),
        (
            "mod.rs",
            "// use crate::http::HttpSession;\n/* stackdock_core::Marker /* nested crate:: */ */",
        ),
        (
            "mod.rs",
            r#"let s = "crate::adapter and stackdock_docks::http"; let r = r"stackdock_core::x";"#,
        ),
        (
            "mod.rs",
            r##"let r = r#"a "quoted" crate::x"#; let c = '"'; let d = '\''; fn f<'a>(x: &'a str) {}"##,
        ),
        ("mod.rs", "pub(crate) fn f() {} pub(super) fn g() {}"),
        ("mod.rs", "mod adapter; pub mod api;"),
    ];
    for (file, src) in fine {
        assert_eq!(check(file, src), Vec::<String>::new(), "{file}: {src}");
    }

    let refused = [
        ("mod.rs", "use crate::http::HttpSession;", "`crate::`"),
        (
            "mod.rs",
            "fn f() -> crate::error::DockError { todo!() }",
            "`crate::`",
        ),
        (
            "mod.rs",
            "macro_rules! m { () => { $crate::x() } }",
            "`$crate::`",
        ),
        (
            "mod.rs",
            "use stackdock_core::Marker;",
            "another StackDock crate",
        ),
        (
            "mod.rs",
            "extern crate stackdock_store;",
            "another StackDock crate",
        ),
        (
            "mod.rs",
            "let e = stackdock_engine::Engine::new();",
            "another StackDock crate",
        ),
        (
            "mod.rs",
            "use stackdock_docks::http::HttpSession;",
            "only `stackdock_docks::prelude::*`",
        ),
        (
            "mod.rs",
            "use stackdock_docks::{prelude::*, budget::Budget};",
            "only `stackdock_docks::prelude::*`",
        ),
        (
            "mod.rs",
            "use stackdock_docks::prelude::Ctx;",
            "only `stackdock_docks::prelude::*`",
        ),
        (
            "mod.rs",
            "use stackdock_docks as docks;",
            "only `stackdock_docks::prelude::*`",
        ),
        (
            "mod.rs",
            "use super::registry::Registry;",
            "leave the folder",
        ),
        (
            "adapter.rs",
            "use super::super::http::HttpSession;",
            "leave the folder",
        ),
        ("mod.rs", "#[path = \"../http.rs\"] mod http;", "`#[path]`"),
        (
            "mod.rs",
            "const S: &str = include_str!(\"../lib.rs\");",
            "outside the folder",
        ),
        ("mod.rs", "mod elsewhere;", "no file in the folder"),
    ];
    for (file, src, why) in refused {
        let problems = check(file, src);
        assert!(
            problems.iter().any(|p| p.contains(why)),
            "{file}: {src}: expected {why:?}, got {problems:?}"
        );
    }
    // Lines are counted in the original text.
    let problems = check("mod.rs", "//! Doc.\n\nuse crate::x;\n");
    assert!(problems[0].starts_with("line 3:"), "{problems:?}");
}

// ---------------------------------------------------------------------------------------------
// Copying a folder out and building it
// ---------------------------------------------------------------------------------------------

/// The `key = value` lines of one `[section]` of a manifest, comments dropped. The
/// workspace's manifests keep each entry on one line, which is all this reads.
fn section(manifest: &str, name: &str) -> Vec<(String, String)> {
    let header = format!("[{name}]");
    manifest
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.split_once('=')?;
            Some((key.trim().to_string(), value.trim().to_string()))
        })
        .collect()
}

/// Every `[profile...]` section of a manifest, verbatim: the copy must build with the same
/// profiles for the shared target directory's artifacts to fit it.
fn profiles(manifest: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in manifest.lines() {
        if line.starts_with('[') {
            inside = line.starts_with("[profile");
            if inside {
                out.push('\n');
            }
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Where the `features = [..]` list of an inline dependency table is: the byte range from
/// `features` to the closing `]`. (`default-features` is another key.)
fn feature_list(spec: &str) -> Option<(usize, usize)> {
    let start = spec
        .match_indices("features")
        .map(|(at, _)| at)
        .find(|&at| at == 0 || !spec[..at].ends_with('-'))?;
    let end = start + spec[start..].find(']')? + 1;
    Some((start, end))
}

/// The features listed in an inline dependency table, if any.
fn features_of(spec: &str) -> Vec<String> {
    let Some((start, end)) = feature_list(spec) else {
        return Vec::new();
    };
    let list = &spec[start..end];
    let inner = &list[list.find('[').map_or(0, |n| n + 1)..list.len() - 1];
    inner
        .split(',')
        .map(|f| f.trim().trim_matches('"').to_string())
        .filter(|f| !f.is_empty())
        .collect()
}

/// A dependency for a manifest outside the workspace: the workspace's spec for it, with path
/// dependencies made absolute and `extra` features added.
fn standalone_spec(
    name: &str,
    workspace: &[(String, String)],
    root: &Path,
    extra: &[String],
) -> String {
    let spec = workspace
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, spec)| spec.clone())
        .unwrap_or_else(|| panic!("{name} is not a workspace dependency"));
    let mut table = if spec.starts_with('"') {
        format!("{{ version = {spec} }}")
    } else {
        spec
    };
    if let Some((before, rest)) = table.split_once("path = \"") {
        let (path, after) = rest.split_once('"').expect("a quoted path");
        table = format!(
            "{before}path = {:?}{after}",
            root.join(path).display().to_string()
        );
    }
    let mut features = features_of(&table);
    for f in extra {
        if !features.contains(f) {
            features.push(f.clone());
        }
    }
    if features.is_empty() {
        return table;
    }
    let list = features
        .iter()
        .map(|f| format!("{f:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    match feature_list(&table) {
        Some((start, end)) => format!("{}features = [{list}]{}", &table[..start], &table[end..]),
        None => {
            let body = table.trim_end().trim_end_matches('}').trim_end();
            format!("{body}, features = [{list}] }}")
        }
    }
}

/// The dependencies of a member as a manifest outside the workspace would write them: each
/// `x.workspace = true` or `x = { workspace = true, features = [..] }` resolved.
fn standalone_section(
    member: &[(String, String)],
    workspace: &[(String, String)],
    root: &Path,
) -> Vec<String> {
    member
        .iter()
        .map(|(key, value)| {
            let (name, extra) = match key.strip_suffix(".workspace") {
                Some(name) => (name.to_string(), Vec::new()),
                None if value.contains("workspace = true") => (key.clone(), features_of(value)),
                None => return format!("{key} = {value}"),
            };
            format!(
                "{name} = {}",
                standalone_spec(&name, workspace, root, &extra)
            )
        })
        .collect()
}

/// The target directory this test was built in: the nearest ancestor of this executable that
/// cargo marked as one, else `CARGO_TARGET_DIR`, else the workspace's `target/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("this test's path");
    exe.ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// What the copy is tested with: the DigitalOcean adapter, registered over the built-in one
/// and run against the sandbox. It uses the copy, never `stackdock_docks::digitalocean`.
const EJECTED_TEST: &str = r#"//! The copied adapter, registered in place of the built-in one and run on the sandbox.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ejected_digitalocean::digitalocean::DigitalOceanAdapter;
use stackdock_core::{ApiCall, DockId, OperationId, OrgId, ResourceId};
use stackdock_docks::prelude::*;
use stackdock_docks::{Budget, RateLimit, Registry};
use stackdock_sandbox::{DigitalOceanSandbox, DoSandboxConfig};

#[derive(Default)]
struct Kept(Mutex<Vec<Step>>);

#[async_trait]
impl Recorder for Kept {
    async fn journal(&self, _call: ApiCall) {}
    async fn checkpoint(&self, step: Step, _tracks: Option<String>) -> Result<(), DockError> {
        self.0.lock().unwrap().push(step);
        Ok(())
    }
}

#[tokio::test]
async fn the_copy_replaces_the_builtin_adapter_and_provisions() {
    let mut registry = Registry::builtin();
    let builtin = registry.get(Provider::DigitalOcean).expect("a built-in adapter");
    let ours: Arc<dyn DockAdapter> = Arc::new(DigitalOceanAdapter::new(reqwest::Client::new()));
    registry.register(ours.clone());
    let got = registry.get(Provider::DigitalOcean).expect("registered");
    assert!(Arc::ptr_eq(&got, &ours), "the registry still answers the built-in adapter");
    assert!(!Arc::ptr_eq(&got, &builtin));

    let key = "dop_v1_ejected";
    let sandbox = DigitalOceanSandbox::start(DoSandboxConfig {
        tokens: vec![key.into()],
        ready_after: Duration::ZERO,
        ..DoSandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let dock = DockAccess {
        id: DockId::new(),
        org_id: OrgId::new(),
        provider: Provider::DigitalOcean,
        name: "ejected".into(),
        api_key: SecretString::new(key),
        base_url: Some(sandbox.base_url()),
        settings: Value::Null,
        budget: Arc::new(Budget::new(RateLimit::None)),
    };
    let kept = Arc::new(Kept::default());
    let resource = ResourceId::new();
    let scope = CallScope {
        org_id: dock.org_id,
        dock_id: dock.id,
        resource_id: Some(resource),
        operation_id: Some(OperationId::new()),
        recorder: kept.clone(),
    };
    let marker = Marker::for_resource(&resource);
    let mut ctx = Ctx::new(scope, Some(marker.clone()), 1, Vec::new());
    let config = json!({"name": "ejected-1", "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64"});

    provision(&*got, ResourceKind::Server, &mut ctx, &dock, config.as_object().unwrap())
        .await
        .expect("provisioned");

    let droplets = sandbox.droplets();
    assert_eq!(droplets.len(), 1);
    let found = got
        .find_by_marker(&mut ctx, &dock, ResourceKind::Server, &marker)
        .await
        .expect("looked up")
        .expect("found by its marker");
    assert_eq!(found.provider_resource_id, droplets[0]["id"].to_string());
    assert_eq!(kept.0.lock().unwrap().len(), 2, "create_sent and created");
}
"#;

/// Writes a crate around a copy of `folder` into `dir`: the folder as a module, a manifest
/// depending on `stackdock-docks` by path and on the external crates the folder names (with
/// the workspace's versions), the workspace's lock file and profiles, and `test` as its test.
fn write_ejected_crate(folder: &Path, dir: &Path, test: &str) {
    let root = workspace_root();
    let workspace = fs::read_to_string(root.join("Cargo.toml")).expect("workspace manifest");
    let docks = fs::read_to_string(docks_dir().join("Cargo.toml")).expect("docks manifest");
    let workspace_deps = section(&workspace, "workspace.dependencies");
    let edition = section(&workspace, "workspace.package")
        .into_iter()
        .find(|(k, _)| k == "edition")
        .map_or_else(|| "\"2024\"".to_string(), |(_, v)| v);
    let name = folder
        .file_name()
        .expect("a folder name")
        .to_string_lossy()
        .into_owned();

    if dir.exists() {
        fs::remove_dir_all(dir).expect("clear the last copy");
    }
    let copy = dir.join("src").join(&name);
    for relative in rust_files(folder) {
        let to = copy.join(&relative);
        fs::create_dir_all(to.parent().unwrap()).expect("create the copy's folders");
        fs::copy(folder.join(&relative), &to).expect("copy a source file");
    }
    fs::write(
        dir.join("src/lib.rs"),
        format!("//! An adapter copied out of StackDock.\n\npub mod {name};\n"),
    )
    .expect("write lib.rs");
    fs::create_dir_all(dir.join("tests")).expect("create tests/");
    fs::write(dir.join("tests/registered.rs"), test).expect("write the copy's test");
    fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy Cargo.lock");

    let code: String = rust_files(folder)
        .iter()
        .map(|f| code_only(&fs::read_to_string(folder.join(f)).expect("read a source file")))
        .collect();
    let external: Vec<String> = workspace_deps
        .iter()
        .map(|(dep, _)| dep.clone())
        .filter(|dep| !dep.starts_with("stackdock-"))
        .collect();
    let mut dependencies = vec![format!(
        "stackdock-docks = {}",
        standalone_spec("stackdock-docks", &workspace_deps, &root, &[])
    )];
    for dep in crates_named(&code, &external) {
        dependencies.push(format!(
            "{dep} = {}",
            standalone_spec(&dep, &workspace_deps, &root, &[])
        ));
    }
    // Tested as the docks crate tests itself, with its dev-dependencies: that also resolves
    // the same features, so the registry crates built for `cargo test -p stackdock-docks` fit.
    let mut dev = standalone_section(&section(&docks, "dev-dependencies"), &workspace_deps, &root);
    dev.push(format!(
        "stackdock-core = {}",
        standalone_spec("stackdock-core", &workspace_deps, &root, &[])
    ));
    let manifest = format!(
        "[package]\nname = \"ejected-{name}\"\nversion = \"0.0.0\"\nedition = {edition}\npublish = false\n\n\
         [dependencies]\n{}\n\n[dev-dependencies]\n{}\n{}\n# Its own workspace, whatever directory it lands in.\n[workspace]\n",
        dependencies.join("\n"),
        dev.join("\n"),
        profiles(&workspace),
    );
    fs::write(dir.join("Cargo.toml"), manifest).expect("write Cargo.toml");
}

/// Variables cargo sets for the test processes it runs, besides `CARGO_PKG_*`.
const CARGO_SETS_FOR_TESTS: &[&str] = &[
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
];

/// Runs `cargo <args>` in `dir` with the shared target directory, failing the test with
/// cargo's output if it fails or takes longer than [`BUILD_DEADLINE`].
fn cargo(dir: &Path, args: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = dir.join("cargo.out");
    let log = fs::File::create(&out).expect("create cargo's log");
    let mut command = Command::new(&cargo);
    // What cargo set for this test process describes the docks crate, not the copy; and a
    // build script that reads one of them (ring reads CARGO_MANIFEST_DIR) would be rebuilt,
    // with everything above it, each time this build and the workspace's take turns.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_") || CARGO_SETS_FOR_TESTS.contains(&key.as_ref()) {
            command.env_remove(key.as_ref());
        }
    }
    let mut child = command
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("share the log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "could not run {cargo:?} ({e}): this test builds a copy of an adapter folder \
                 with cargo; put cargo on PATH or set CARGO to its path"
            )
        });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for cargo") {
            break status;
        }
        if started.elapsed() > BUILD_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "cargo {} did not finish within {BUILD_DEADLINE:?}:\n{}",
                args.join(" "),
                fs::read_to_string(&out).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let said = fs::read_to_string(&out).unwrap_or_default();
    assert!(
        status.success(),
        "cargo {} failed in the copied-out crate at {}:\n{said}",
        args.join(" "),
        dir.display()
    );
}

#[test]
fn the_digitalocean_folder_builds_and_registers_as_a_crate_of_its_own() {
    let folder = docks_dir().join("src").join("digitalocean");
    let target = target_dir();
    // One place per target directory, reused from run to run, so that the copy's own
    // artifacts replace the last run's instead of piling up in the shared target directory;
    // a lock beside it keeps two test runs from writing it at once.
    let tag: u64 = target
        .to_string_lossy()
        .bytes()
        .fold(0xcbf29ce484222325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
    let dir = std::env::temp_dir().join(format!("stackdock-ejected-digitalocean-{tag:016x}"));
    assert!(
        !dir.starts_with(workspace_root()),
        "the copy must land outside the workspace"
    );
    let lock = fs::File::create(dir.with_extension("lock")).expect("create the copy's lock");
    lock.lock().expect("take the copy's lock");

    let started = Instant::now();
    write_ejected_crate(&folder, &dir, EJECTED_TEST);
    cargo(&dir, &["test", "--offline", "--quiet", "--tests"]);
    eprintln!(
        "copied src/digitalocean out to {}, built and tested it in {:?}",
        dir.display(),
        started.elapsed()
    );
}
