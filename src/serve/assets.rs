//! The page and what it loads, embedded in the binary so that `matcalc serve` needs no
//! files and no network: `web/index.html`, `web/app.js`, `web/app.css`, and KaTeX
//! (`web/katex/`, the npm package's files unmodified, with its licence).

use super::http::Response;

/// One embedded file.
pub struct Asset {
    /// Where it is served.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web", $path)),
        }
    };
}

/// Everything the page loads. `/` is `index.html`.
const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/index.html")),
    },
    asset!("/app.js", "text/javascript; charset=utf-8"),
    asset!("/app.css", "text/css; charset=utf-8"),
    asset!("/katex/katex.min.js", "text/javascript; charset=utf-8"),
    asset!("/katex/katex.min.css", "text/css; charset=utf-8"),
    asset!("/katex/LICENSE", "text/plain; charset=utf-8"),
    asset!("/katex/fonts/KaTeX_AMS-Regular.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_Caligraphic-Bold.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_Caligraphic-Regular.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_Fraktur-Bold.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_Fraktur-Regular.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_Main-Bold.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_Main-BoldItalic.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_Main-Italic.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_Main-Regular.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_Math-BoldItalic.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_Math-Italic.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_SansSerif-Bold.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_SansSerif-Italic.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_SansSerif-Regular.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_Script-Regular.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_Size1-Regular.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_Size2-Regular.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_Size3-Regular.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_Size4-Regular.woff2", "font/woff2"),
    asset!("/katex/fonts/KaTeX_Typewriter-Regular.woff2", "font/woff2"),
];

/// The page's policy: everything from this server only. KaTeX sets inline styles, and
/// the graph and code downloads use `data:` and `blob:` URLs.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self'; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The asset served at `path`, if any (`/index.html` is `/`).
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|asset| asset.path == path)
}

impl Asset {
    /// The response that serves it.
    pub fn response(&self) -> Response {
        let response = Response::new(200, self.content_type, self.bytes);
        if self.path == "/" {
            response
                .with("Content-Security-Policy", CONTENT_SECURITY_POLICY)
                .with("Cache-Control", "no-cache")
        } else if self.path.starts_with("/katex/") {
            // KaTeX's files change only with its version, which changes the binary.
            response.with("Cache-Control", "max-age=86400")
        } else {
            response.with("Cache-Control", "no-cache")
        }
    }
}
