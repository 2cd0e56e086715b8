//! The build context: the web service's files, as a tar made in memory, less what its
//! `.dockerignore` leaves out.
//!
//! `.dockerignore` is read the way the Docker CLI reads it: one pattern a line, `#` comments,
//! `*` and `?` within one path segment, `**` across any number of them, a leading `!` taking
//! a path back in, the last matching line deciding. A pattern that matches a folder leaves out
//! everything under it. The Dockerfile and `.dockerignore` themselves are always sent, as the
//! CLI does, since the engine needs the one and reads the other.

/// One line of a `.dockerignore`.
#[derive(Debug)]
struct Rule {
    /// `!pattern`: takes matching paths back in.
    keep: bool,
    segments: Vec<String>,
}

/// The patterns of a `.dockerignore`.
#[derive(Debug, Default)]
pub struct Ignore {
    rules: Vec<Rule>,
}

impl Ignore {
    pub fn parse(text: &str) -> Self {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|line| {
                let (keep, pattern) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                let segments: Vec<String> = pattern
                    .split('/')
                    .filter(|s| !s.is_empty() && *s != ".")
                    .map(str::to_string)
                    .collect();
                (!segments.is_empty()).then_some(Rule { keep, segments })
            })
            .collect();
        Self { rules }
    }

    /// Whether `path` (relative, `/` between segments) is left out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for rule in &self.rules {
            // A rule naming a folder covers everything under it.
            let hit = (1..=parts.len()).any(|n| matches(&rule.segments, &parts[..n]));
            if hit {
                excluded = !rule.keep;
            }
        }
        excluded
    }
}

/// Whether a pattern's segments match a path's, `**` standing for any number of segments.
fn matches(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| matches(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((seg, more)) => glob(first.as_bytes(), seg.as_bytes()) && matches(rest, more),
            None => false,
        },
    }
}

/// `*` and `?` within one segment; `\` escapes the next character.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        Some((b'?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((b'\\', rest)) if !rest.is_empty() => {
            text.first() == rest.first() && glob(&rest[1..], &text[1..])
        }
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

/// One file of the context.
pub struct ContextFile<'a> {
    pub path: &'a str,
    pub bytes: &'a [u8],
    pub executable: bool,
}

/// The tar the engine builds from. Modes are 0644, or 0755 for files marked executable;
/// times and owners are fixed, so the same files make the same bytes (and reuse the build
/// cache).
pub fn tar(files: &[ContextFile<'_>]) -> Result<Vec<u8>, String> {
    let mut builder = ::tar::Builder::new(Vec::new());
    for f in files {
        let mut header = ::tar::Header::new_gnu();
        header.set_size(f.bytes.len() as u64);
        header.set_mode(if f.executable { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(::tar::EntryType::Regular);
        builder
            .append_data(&mut header, f.path, f.bytes)
            .map_err(|e| format!("{}: cannot go in the build context: {e}", f.path))?;
    }
    builder
        .into_inner()
        .map_err(|e| format!("the build context cannot be finished: {e}"))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn dockerignore_patterns_leave_out_what_they_match_and_keep_the_rest() {
        let ignore = Ignore::parse(
            "# build output\n\
             target\n\
             *.log\n\
             **/*.tmp\n\
             docs/**\n\
             !docs/keep.md\n\
             secret?.txt\n",
        );
        for out in [
            "target",
            "target/debug/app",
            "app.log",
            "a/b/c.tmp",
            "x.tmp",
            "docs/guide.md",
            "secret1.txt",
        ] {
            assert!(ignore.excludes(out), "{out} should be left out");
        }
        for kept in [
            "src/main.rs",
            "logs/app.txt",
            "sub/app.log",
            "docs/keep.md",
            "secret12.txt",
            "targets",
            "Dockerfile",
        ] {
            assert!(!ignore.excludes(kept), "{kept} should be sent");
        }
    }

    #[test]
    fn an_empty_or_comment_only_dockerignore_leaves_everything_in() {
        let ignore = Ignore::parse("\n# nothing\n   \n");
        assert!(!ignore.excludes("anything/at/all"));
    }

    #[test]
    fn the_tar_holds_each_file_with_its_mode() {
        let bytes = tar(&[
            ContextFile {
                path: "Dockerfile",
                bytes: b"FROM scratch\n",
                executable: false,
            },
            ContextFile {
                path: "bin/tool",
                bytes: b"\x7fELF",
                executable: true,
            },
        ])
        .expect("tar");
        let mut archive = ::tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = entry.path().expect("path").display().to_string();
            let mode = entry.header().mode().expect("mode");
            let mut body = Vec::new();
            entry.read_to_end(&mut body).expect("body");
            seen.push((path, mode, body));
        }
        assert_eq!(
            seen,
            vec![
                ("Dockerfile".into(), 0o644, b"FROM scratch\n".to_vec()),
                ("bin/tool".into(), 0o755, b"\x7fELF".to_vec()),
            ]
        );
    }
}
