//! URL params: the checks every step that calls a service repeats. The host's `allow:` list
//! decides which hosts are reachable; these name a workflow mistake (no scheme, a stray path
//! or query, a userinfo) early and by param.

use crate::Failure;

/// Whether a base URL may carry a path prefix (`https://matrix.example.org/prefix`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathPrefix {
    /// A path is part of the base (a server behind a reverse-proxy prefix).
    Allowed,
    /// Only `scheme://host[:port]`: the step appends absolute API paths, so a path would be
    /// silently dropped (the Kubernetes API server).
    Refused,
}

/// Checks a base URL param (`http(s)://host[:port][/prefix]`, no query, fragment, user or
/// spaces) and returns it without a trailing `/`, ready for `format!("{base}/api/...")`.
///
/// # Errors
///
/// A fatal [`Failure`] naming `param`, what is wrong, and the value.
pub fn base_url(param: &str, url: &str, path: PathPrefix) -> Result<String, Failure> {
    let rest = after_scheme(param, url)?;
    let bad = |why: &str| {
        Failure::fatal(format!(
            "param `{param}` must be a base URL such as https://service.example:8443 ({why}), got {url:?}"
        ))
    };
    if url.contains(['?', '#']) || url.chars().any(char::is_whitespace) {
        return Err(bad("no query, fragment or spaces"));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(bad("no user"));
    }
    let trimmed = url.trim_end_matches('/');
    if path == PathPrefix::Refused && rest.trim_end_matches('/').contains('/') {
        return Err(bad("no path"));
    }
    Ok(trimmed.to_owned())
}

/// Checks a full URL param: `http://` or `https://` and a host; path and query allowed.
///
/// # Errors
///
/// A fatal [`Failure`] naming `param` and the value.
pub fn http_url(param: &str, url: &str) -> Result<(), Failure> {
    after_scheme(param, url).map(|_| ())
}

/// What follows `http://` or `https://` (the scheme in any case), with a host.
fn after_scheme<'a>(param: &str, url: &'a str) -> Result<&'a str, Failure> {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let scheme = url[..scheme_end].to_ascii_lowercase();
    if scheme != "http://" && scheme != "https://" {
        return Err(Failure::fatal(format!(
            "param `{param}` must start with http:// or https://, got {url:?}"
        )));
    }
    let rest = &url[scheme_end..];
    if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
        return Err(Failure::fatal(format!(
            "param `{param}` has no host: {url:?}"
        )));
    }
    Ok(rest)
}

/// The host (and port) of an http(s) URL, the only part of it that may be shown when the
/// rest is a credential (a webhook's path carries its key). `None` when it is not an
/// http(s) URL with a host. A userinfo (`user:password@`) is never part of the answer.
pub fn host(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")?;
    let scheme = &url[..scheme_end];
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let rest = &url[scheme_end + 3..];
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let ok = |u, p| base_url("server", u, p).unwrap();
        assert_eq!(
            ok("HTTPS://k8s.example:6443/", PathPrefix::Refused),
            "HTTPS://k8s.example:6443"
        );
        assert_eq!(
            ok("https://m.example/prefix/", PathPrefix::Allowed),
            "https://m.example/prefix"
        );
        let err = |u, p| base_url("server", u, p).unwrap_err().message;
        assert!(err("https://k8s.example/api", PathPrefix::Refused).contains("(no path)"));
        assert!(err("k8s.example", PathPrefix::Allowed).contains("must start with http://"));
        assert!(err("https:///x", PathPrefix::Allowed).contains("has no host"));
        assert!(err("https://a?b=1", PathPrefix::Allowed).contains("no query"));
        assert!(err("https://u:p@a", PathPrefix::Allowed).contains("no user"));
        assert_eq!(ok("https://a", PathPrefix::Refused), "https://a");
    }

    #[test]
    fn hosts_never_show_the_rest() {
        assert_eq!(
            host("https://hooks.slack.com/services/T/B/K"),
            Some("hooks.slack.com")
        );
        assert_eq!(
            host("http://127.0.0.1:8065/hooks/abc"),
            Some("127.0.0.1:8065")
        );
        assert_eq!(
            host("https://user:pw@chat.example.org/hooks/x?y#z"),
            Some("chat.example.org")
        );
        assert_eq!(host("ftp://x/y"), None);
        assert_eq!(host("hooks.slack.com/services"), None);
        assert_eq!(host("https:///path"), None);
        assert!(http_url("url", "http://a/b?c").is_ok());
    }
}
