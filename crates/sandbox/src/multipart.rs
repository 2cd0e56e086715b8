//! Reading a `multipart/form-data` body (RFC 7578) of text fields, as a provider reads a
//! form: Cloudflare Pages' deployment create. Small on purpose: the sandbox only needs the
//! fields' names and text, and the front door shows them in the request log as a JSON object.

use axum::http::{HeaderMap, header};

/// The boundary a `Content-Type: multipart/form-data; boundary=...` names, if it is one.
pub(crate) fn boundary(headers: &HeaderMap) -> Option<String> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mut parts = content_type.split(';');
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return None;
    }
    parts.find_map(|p| {
        let (key, value) = p.trim().split_once('=')?;
        key.eq_ignore_ascii_case("boundary")
            .then(|| value.trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

/// The fields of `body`, in order, as (name, text); `None` if it is not a well-formed form
/// with that boundary or a field is not UTF-8.
pub(crate) fn fields(body: &[u8], boundary: &str) -> Option<Vec<(String, String)>> {
    let body = std::str::from_utf8(body).ok()?;
    let delimiter = format!("--{boundary}");
    let mut sections = body.split(delimiter.as_str());
    // Whatever precedes the first delimiter is the preamble.
    sections.next()?;
    let mut fields = Vec::new();
    let mut closed = false;
    for section in sections {
        if section.starts_with("--") {
            closed = true;
            break;
        }
        let section = section.strip_prefix("\r\n")?;
        let (head, value) = section.split_once("\r\n\r\n")?;
        let value = value.strip_suffix("\r\n")?;
        let name = head.lines().find_map(|line| {
            let (key, rest) = line.split_once(':')?;
            if !key.trim().eq_ignore_ascii_case("content-disposition") {
                return None;
            }
            rest.split(';').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k == "name").then(|| v.trim_matches('"').to_string())
            })
        })?;
        fields.push((name, value.to_string()));
    }
    closed.then_some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_of_a_form() {
        let body = "--b1\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n\
                    {\"/a\":\"x\"}\r\n--b1\r\nContent-Disposition: form-data; name=\"branch\"\r\n\
                    \r\nmain\r\n--b1--\r\n";
        assert_eq!(
            fields(body.as_bytes(), "b1"),
            Some(vec![
                ("manifest".into(), "{\"/a\":\"x\"}".into()),
                ("branch".into(), "main".into()),
            ])
        );
        assert_eq!(
            fields(b"--b1\r\nbroken", "b1"),
            None,
            "no closing delimiter"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=abc".parse().unwrap(),
        );
        assert_eq!(boundary(&headers).as_deref(), Some("abc"));
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert_eq!(boundary(&headers), None);
    }
}
