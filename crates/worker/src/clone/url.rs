//! Which clone URLs are accepted, and the one host credentials are offered to.

use super::CloneError;

/// Which URLs [`clone_with`] accepts. Production takes `https://` only: the token must never
/// cross the network in clear, and `file://` would read the worker's own disk.
#[derive(Debug, Clone, Copy, Default)]
pub(super) enum UrlPolicy {
    #[default]
    HttpsOnly,
    /// `https://`, and `file://` for repositories on this host (see [`CloneLimits::allow_local`]).
    HttpsOrLocal,
    /// Tests and benchmarks serve repositories over plain HTTP on the loopback interface.
    #[cfg(any(test, feature = "bench-support"))]
    AllowPlainHttp,
}

/// Checks the URL and returns its authority (`host[:port]`, lowercased), the only host the
/// credentials are ever offered to.
pub(super) fn check_url(url: &str, policy: UrlPolicy) -> Result<String, CloneError> {
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(CloneError::InvalidUrl(
            "contains whitespace or control characters",
        ));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or(CloneError::InvalidUrl("not an absolute URL"))?;
    if matches!(policy, UrlPolicy::HttpsOrLocal) && scheme.eq_ignore_ascii_case("file") {
        // No host, so no credentials are ever offered.
        return if rest.starts_with('/') {
            Ok(String::new())
        } else {
            Err(CloneError::InvalidUrl(
                "a file:// URL needs an absolute path",
            ))
        };
    }
    let scheme_ok = match policy {
        UrlPolicy::HttpsOnly | UrlPolicy::HttpsOrLocal => scheme.eq_ignore_ascii_case("https"),
        #[cfg(any(test, feature = "bench-support"))]
        UrlPolicy::AllowPlainHttp => {
            scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")
        }
    };
    if !scheme_ok {
        return Err(CloneError::InvalidUrl("only https:// URLs are cloned"));
    }
    if authority_of(scheme, rest).contains('@') {
        // The URL is not echoed: it would carry whatever secret was embedded in it.
        return Err(CloneError::InvalidUrl(
            "credentials must not be embedded in the URL",
        ));
    }
    let authority = authority_of(scheme, rest);
    if authority.is_empty() {
        return Err(CloneError::InvalidUrl("no host"));
    }
    Ok(authority)
}

/// The `host[:port]` part of a URL, lowercased and without the scheme's default port: the form
/// libgit2 uses when it names the URL that asks for credentials.
pub(super) fn authority_of(scheme: &str, after_scheme: &str) -> String {
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return authority,
    };
    match authority.strip_suffix(default_port) {
        Some(host) => host.to_owned(),
        None => authority,
    }
}
