//! Static assets, embedded in the binary (running Picket needs no Node toolchain): the pinned
//! htmx and its SSE extension (copied from npm `htmx.org` 2.0.11 and `htmx-ext-sse` 2.2.4; the
//! browser test checks the copies byte for byte against `tests/browser/node_modules`), the
//! stylesheet, the page script and the favicon. Each is served under a versioned path with a
//! year-long immutable cache; pages load scripts with their Subresource Integrity hash
//! ([`integrity`]).

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use base64::Engine;
use sha2::{Digest, Sha384};
use std::sync::OnceLock;

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Where it is served.
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

pub const HTMX: Asset = Asset {
    path: "/static/htmx-2.0.11.min.js",
    content_type: "text/javascript; charset=utf-8",
    bytes: include_bytes!("../assets/htmx-2.0.11.min.js"),
};

pub const HTMX_SSE: Asset = Asset {
    path: "/static/htmx-ext-sse-2.2.4.min.js",
    content_type: "text/javascript; charset=utf-8",
    bytes: include_bytes!("../assets/htmx-ext-sse-2.2.4.min.js"),
};

pub const SCRIPT: Asset = Asset {
    path: "/static/picket-1.js",
    content_type: "text/javascript; charset=utf-8",
    bytes: include_bytes!("../assets/picket.js"),
};

pub const STYLE: Asset = Asset {
    path: "/static/picket-1.css",
    content_type: "text/css; charset=utf-8",
    bytes: include_bytes!("../assets/picket.css"),
};

pub const FAVICON: Asset = Asset {
    path: "/static/favicon-1.svg",
    content_type: "image/svg+xml",
    bytes: include_bytes!("../assets/favicon.svg"),
};

const ALL: [&Asset; 5] = [&HTMX, &HTMX_SSE, &SCRIPT, &STYLE, &FAVICON];

/// `sha384-<base64>` of an asset's bytes, for its `integrity` attribute (computed once).
pub fn integrity(asset: &Asset) -> &'static str {
    static HASHES: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    let hashes = HASHES.get_or_init(|| {
        ALL.iter()
            .map(|a| {
                let digest = Sha384::digest(a.bytes);
                (
                    a.path,
                    format!(
                        "sha384-{}",
                        base64::engine::general_purpose::STANDARD.encode(digest)
                    ),
                )
            })
            .collect()
    });
    hashes
        .iter()
        .find(|(p, _)| *p == asset.path)
        .map(|(_, h)| h.as_str())
        .expect("every asset is in ALL")
}

fn serve(asset: &'static Asset) -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        asset.bytes,
    )
}

/// The asset routes, and `/favicon.ico` (browsers ask for it whatever the page links).
pub fn router() -> Router {
    let mut r = Router::new();
    for asset in ALL {
        r = r.route(asset.path, get(move || async move { serve(asset) }));
    }
    r.route("/favicon.ico", get(|| async { serve(&FAVICON) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_hashes_are_sha384_of_the_served_bytes() {
        let h = integrity(&HTMX);
        assert!(h.starts_with("sha384-"));
        assert_ne!(h, integrity(&HTMX_SSE));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&h["sha384-".len()..])
            .unwrap();
        assert_eq!(raw, Sha384::digest(HTMX.bytes).to_vec());
    }
}
