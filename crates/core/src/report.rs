//! Errors as one line for a person: the error and each of its causes, `a: b: c`. Error types
//! keep their causes out of `Display` (so nothing is said twice); this is where a chain is
//! spelled out, once, at the point it is logged or shown.

/// `err` and its sources, joined by `": "`.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_is_spelled_out() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(error_chain(&e), "outer: disk full");
    }
}
