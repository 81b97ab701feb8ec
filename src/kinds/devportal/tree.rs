//! What a developer-portal tree's files are: their category, their content
//! type and the external references they make. Pure functions, no I/O;
//! used by `scan-portal` ([`super::scan`]) and tested here.
//!
//! - **Category** ([`category`]): the first path component, `portal/`,
//!   `specs/`, `changelog/`, or `sdks/<name>/` (a file directly in `sdks/`
//!   has no SDK and is refused); anything else is refused, so nothing
//!   lands in the kit unnamed.
//! - **Content type** ([`content_type`]): from the lower-cased extension by
//!   the table [`CONTENT_TYPES`] (README "devportal:offline" shows it),
//!   `application/octet-stream` otherwise. Never sniffed from the bytes.
//! - **External references** ([`RefScanner`]): in HTML, CSS and JS files
//!   (see [`scanned`]), every `http://` or `https://` URL (any case) in a
//!   reference position: the value of a `src`, `href` or `srcset`
//!   attribute or property (`src=`, `href:`, `"src": `, `.href = `; any
//!   identifier ending in one of those words after a non-word byte, so
//!   `data-src=` and `xlink:href=` count), the argument of `url(` or
//!   `import(` (CSS `url()`, JS `new URL(`, dynamic imports), or a module
//!   named after `from` / `import` (`import x from "https://…"`, CSS
//!   `@import "https://…"`), quotes and spaces between allowed. A URL ends
//!   at a quote, a space, `(`, `)`, `<` or `>`. Other URLs (text, comments,
//!   `fetch("https://…")`) are not references. A reference is refused
//!   unless the allow-list ([`AllowList`]) admits it. The scanner is a
//!   byte-level state machine fed in pieces of any size, holding a window
//!   of [`WINDOW`] bytes and at most [`MAX_URL`] bytes of one URL: memory
//!   does not grow with the file (a minified one-line bundle included).
//!
//! Invariants: the same bytes give the same findings whatever the piece
//! sizes they are fed in (tested); lines are 1-based, counted by `\n`.

/// The kit's categories, in the order the manifest documents them.
pub const CATEGORIES: [&str; 4] = ["portal", "specs", "sdks", "changelog"];

/// Why `path` cannot be named in `checksums.txt` (which `sha256sum -c`
/// reads line by line, GNU escaping `\\` and newlines), if it cannot: a
/// control character or a backslash.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Err("file name holds a control character or a backslash: checksums.txt cannot name it".into());
    }
    Ok(())
}

/// The category of a tree path, and for `sdks/<name>/…` the SDK name; or
/// why the path belongs to none.
pub fn category(path: &str) -> Result<(&'static str, Option<&str>), String> {
    let mut parts = path.splitn(3, '/');
    let first = parts.next().unwrap_or_default();
    let rest = parts.next();
    match (first, rest) {
        ("portal", Some(_)) => Ok(("portal", None)),
        ("specs", Some(_)) => Ok(("specs", None)),
        ("changelog", Some(_)) => Ok(("changelog", None)),
        ("sdks", Some(name)) if parts.next().is_some() && !name.is_empty() => Ok(("sdks", Some(name))),
        ("sdks", Some(_)) => Err("directly in sdks/: an SDK's files go under sdks/<name>/".into()),
        _ => Err("outside portal/, specs/, sdks/<name>/ and changelog/".into()),
    }
}

/// Extension (lower case, without the dot) → content type. Anything not
/// listed is `application/octet-stream`.
pub const CONTENT_TYPES: &[(&str, &str)] = &[
    ("avif", "image/avif"),
    ("cjs", "text/javascript"),
    ("css", "text/css"),
    ("csv", "text/csv"),
    ("gif", "image/gif"),
    ("gz", "application/gzip"),
    ("htm", "text/html"),
    ("html", "text/html"),
    ("ico", "image/vnd.microsoft.icon"),
    ("jar", "application/java-archive"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpeg"),
    ("js", "text/javascript"),
    ("json", "application/json"),
    ("map", "application/json"),
    ("md", "text/markdown"),
    ("mjs", "text/javascript"),
    ("otf", "font/otf"),
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    ("proto", "text/plain"),
    ("svg", "image/svg+xml"),
    ("tgz", "application/gzip"),
    ("ttf", "font/ttf"),
    ("txt", "text/plain"),
    ("wasm", "application/wasm"),
    ("webp", "image/webp"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("xhtml", "application/xhtml+xml"),
    ("xml", "application/xml"),
    ("yaml", "application/yaml"),
    ("yml", "application/yaml"),
    ("zip", "application/zip"),
];

/// The fallback content type.
pub const OCTET_STREAM: &str = "application/octet-stream";

fn extension(path: &str) -> Option<String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// The content type of `path` by its extension ([`CONTENT_TYPES`]).
pub fn content_type(path: &str) -> &'static str {
    extension(path)
        .and_then(|e| CONTENT_TYPES.iter().find(|(x, _)| *x == e).map(|(_, t)| *t))
        .unwrap_or(OCTET_STREAM)
}

/// Whether `path` is scanned for external references: HTML (`.html`,
/// `.htm`, `.xhtml`), CSS (`.css`) and JS (`.js`, `.mjs`, `.cjs`).
pub fn scanned(path: &str) -> bool {
    matches!(extension(path).as_deref(), Some("html" | "htm" | "xhtml" | "css" | "js" | "mjs" | "cjs"))
}

/// The `allow-external` list: an entry ending in `*` admits every URL
/// starting with the text before the `*` (a prefix); any other entry
/// admits exactly that URL. Entries are checked when the profile loads
/// ([`AllowList::check_entry`]).
#[derive(Clone, Debug, Default)]
pub struct AllowList {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl AllowList {
    /// Why `entry` is not a valid allow-list entry, if it is not: it must
    /// start with `http://` or `https://`, and a prefix must name a host
    /// and a `/` before its `*` (so `https://a.example*` cannot admit
    /// `https://a.example.evil`); `*` only at the end.
    pub fn check_entry(entry: &str) -> Result<(), String> {
        let lower = entry.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
            .ok_or_else(|| format!("{entry:?} is not an http:// or https:// URL"))?;
        if entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{entry:?} holds a space or a control character"));
        }
        let body = rest.strip_suffix('*').unwrap_or(rest);
        if body.contains('*') {
            return Err(format!("{entry:?}: `*` is allowed only at the end (a prefix)"));
        }
        if rest.ends_with('*') {
            match body.find('/') {
                Some(i) if i > 0 => {}
                _ => {
                    return Err(format!("{entry:?}: a prefix must name the host and a `/`: https://host/…*"))
                }
            }
        } else if body.is_empty() {
            return Err(format!("{entry:?} names no host"));
        }
        Ok(())
    }

    /// The list of `entries` (already checked).
    pub fn new<S: AsRef<str>>(entries: &[S]) -> AllowList {
        let mut a = AllowList::default();
        for e in entries {
            match e.as_ref().strip_suffix('*') {
                Some(p) => a.prefixes.push(p.to_string()),
                None => a.exact.push(e.as_ref().to_string()),
            }
        }
        a
    }

    /// Whether `url` is admitted.
    pub fn admits(&self, url: &str) -> bool {
        self.exact.iter().any(|e| e == url) || self.prefixes.iter().any(|p| url.starts_with(p.as_str()))
    }
}

/// Bytes of context kept before a URL (the reference position is decided
/// within them).
pub const WINDOW: usize = 64;
/// Bytes of a URL kept for the report and the allow-list (a longer one is
/// compared and shown cut, and then never admitted).
pub const MAX_URL: usize = 2048;
/// Findings kept per file (the first ones, by position).
pub const MAX_FINDINGS: usize = 20;

/// An external reference not admitted: its 1-based line and the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub line: u64,
    pub url: String,
}

/// The streaming scanner of one file (see the module doc).
pub struct RefScanner<'a> {
    allow: &'a AllowList,
    line: u64,
    window: Vec<u8>,
    /// The URL being read: its line, its bytes, whether it was cut.
    url: Option<(u64, Vec<u8>, bool)>,
    findings: Vec<Finding>,
    /// Findings past [`MAX_FINDINGS`], counted only.
    pub more: u64,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

fn trim_end(mut s: &[u8], strip: impl Fn(u8) -> bool) -> &[u8] {
    while let Some((&last, rest)) = s.split_last() {
        if !strip(last) {
            break;
        }
        s = rest;
    }
    s
}

fn ends_with_word(s: &[u8], word: &str) -> bool {
    let w = word.as_bytes();
    s.len() >= w.len()
        && s[s.len() - w.len()..].eq_ignore_ascii_case(w)
        && (s.len() == w.len() || !is_word(s[s.len() - w.len() - 1]))
}

fn quote(b: u8) -> bool {
    matches!(b, b'"' | b'\'' | b'`')
}

/// Whether a URL right after `ctx` is in a reference position.
fn is_reference(ctx: &[u8]) -> bool {
    let ws = |b: u8| b.is_ascii_whitespace();
    let c = trim_end(trim_end(ctx, quote), ws);
    if let Some(rest) = c.strip_suffix(b"(") {
        let rest = trim_end(rest, ws);
        return ends_with_word(rest, "url") || ends_with_word(rest, "import");
    }
    if let Some(rest) = c.strip_suffix(b"=").or_else(|| c.strip_suffix(b":")) {
        let rest = trim_end(trim_end(rest, ws), quote);
        return ["src", "href", "srcset"].iter().any(|w| ends_with_word(rest, w));
    }
    ends_with_word(c, "from") || ends_with_word(c, "import")
}

fn ends_url(b: u8) -> bool {
    quote(b) || b.is_ascii_whitespace() || matches!(b, b'(' | b')' | b'<' | b'>')
}

impl<'a> RefScanner<'a> {
    pub fn new(allow: &'a AllowList) -> Self {
        RefScanner {
            allow,
            line: 1,
            window: Vec::with_capacity(2 * WINDOW),
            url: None,
            findings: Vec::new(),
            more: 0,
        }
    }

    fn end_url(&mut self) {
        if let Some((line, bytes, cut)) = self.url.take() {
            let url = String::from_utf8_lossy(&bytes).into_owned();
            if cut || !self.allow.admits(&url) {
                if self.findings.len() < MAX_FINDINGS {
                    let url = if cut { format!("{url}…") } else { url };
                    self.findings.push(Finding { line, url });
                } else {
                    self.more += 1;
                }
            }
        }
    }

    /// Scan the next piece of the file.
    pub fn feed(&mut self, data: &[u8]) {
        for &b in data {
            if self.url.is_some() {
                if ends_url(b) {
                    self.end_url();
                } else {
                    let (_, bytes, cut) = self.url.as_mut().expect("reading a URL");
                    if bytes.len() < MAX_URL {
                        bytes.push(b);
                    } else {
                        *cut = true;
                    }
                    continue;
                }
            }
            if b == b'\n' {
                self.line += 1;
            }
            self.window.push(b);
            if b == b'/' {
                let w = &self.window;
                let scheme = [&b"https://"[..], &b"http://"[..]]
                    .into_iter()
                    .find(|s| w.len() >= s.len() && w[w.len() - s.len()..].eq_ignore_ascii_case(s));
                if let Some(s) = scheme {
                    let start = w.len() - s.len();
                    // "https://" must not be read as the end of "xhttps://"
                    let own = start == 0 || !is_word(w[start - 1]);
                    if own && is_reference(&w[..start]) {
                        self.url = Some((self.line, w[start..].to_vec(), false));
                        self.window.clear();
                        continue;
                    }
                }
            }
            if self.window.len() >= 2 * WINDOW {
                self.window.drain(..WINDOW);
            }
        }
    }

    /// The references found, once the whole file was fed.
    pub fn finish(mut self) -> (Vec<Finding>, u64) {
        self.end_url();
        (self.findings, self.more)
    }
}

/// The refusal text of one finding (its file is named by the caller).
pub fn reason(f: &Finding) -> String {
    format!(
        "line {}: external reference {} (the kit must work offline: bundle the asset, or list the URL in the profile's allow-external)",
        f.line, f.url
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str, allow: &[&str]) -> Vec<(u64, String)> {
        let allow = AllowList::new(allow);
        let mut s = RefScanner::new(&allow);
        s.feed(text.as_bytes());
        s.finish().0.into_iter().map(|f| (f.line, f.url)).collect()
    }

    #[test]
    fn references_in_html_css_and_js_are_found_with_their_line() {
        let html = "<html>\n<head>\n<script src=\"https://cdn.example/lib.js\"></script>\n<link rel=stylesheet href='HTTP://fonts.example/a.css'>\n<p>see https://example.org/docs in text</p>\n<img data-src=https://img.example/x.png>\n";
        assert_eq!(
            scan(html, &[]),
            vec![
                (3, "https://cdn.example/lib.js".to_string()),
                (4, "HTTP://fonts.example/a.css".to_string()),
                (6, "https://img.example/x.png".to_string()),
            ]
        );
        let css = "body {\n  background: URL( \"https://img.example/bg.png\" );\n}\n@import 'https://fonts.example/f.css';\n/* https://example.org/licence */\n";
        assert_eq!(
            scan(css, &[]),
            vec![
                (2, "https://img.example/bg.png".to_string()),
                (4, "https://fonts.example/f.css".to_string())
            ]
        );
        let js = "// https://example.org/licence\nimport x from \"https://esm.example/x.mjs\";\nconst s = document.createElement('script');\ns.src = `https://cdn.example/late.js`;\nconst o = {\"href\": \"http://a.example/p\"};\nfetch(\"https://api.example/v1\");\nawait import('https://esm.example/y.js');\n";
        assert_eq!(
            scan(js, &[]),
            vec![
                (2, "https://esm.example/x.mjs".to_string()),
                (4, "https://cdn.example/late.js".to_string()),
                (5, "http://a.example/p".to_string()),
                (7, "https://esm.example/y.js".to_string()),
            ]
        );
        // not a reference position, or not a URL scheme of its own
        assert!(scan(
            "<a title=\"https://x.example/\">x</a> <a href=\"/local\">l</a> <a href=\"xhttps://y/\">",
            &[]
        )
        .is_empty());
    }

    #[test]
    fn the_allow_list_admits_exact_urls_and_star_prefixes() {
        let html = "<script src=\"https://cdn.example/lib.js\"></script>\n<link href=\"https://fonts.example/css/a.css\">\n<link href=\"https://fonts.example.evil/css/a.css\">\n";
        let got = scan(html, &["https://cdn.example/lib.js", "https://fonts.example/css/*"]);
        assert_eq!(got, vec![(3, "https://fonts.example.evil/css/a.css".to_string())]);
        // exact means exact
        assert_eq!(scan(html, &["https://cdn.example/lib.j", "https://fonts.example/*"]).len(), 2);
        for bad in [
            "ftp://x/",
            "https://a.example*",
            "https://*",
            "https://a.example/x*y",
            "https:// a/",
            "https://",
        ] {
            assert!(AllowList::check_entry(bad).is_err(), "{bad}");
        }
        for good in
            ["https://a.example/", "http://a.example/x.js", "https://a.example/*", "https://a.example"]
        {
            assert!(AllowList::check_entry(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn findings_do_not_depend_on_piece_sizes() {
        let text = "x\n<script src=\"https://cdn.example/lib.js\"></script>\nurl(https://a.example/b.png)\n"
            .repeat(5);
        let whole = scan(&text, &[]);
        assert_eq!(whole.len(), 10);
        let allow = AllowList::default();
        for size in [1, 2, 3, 7, 64] {
            let mut s = RefScanner::new(&allow);
            for piece in text.as_bytes().chunks(size) {
                s.feed(piece);
            }
            let got: Vec<(u64, String)> = s.finish().0.into_iter().map(|f| (f.line, f.url)).collect();
            assert_eq!(got, whole, "pieces of {size}");
        }
    }

    #[test]
    fn memory_is_bounded_on_one_huge_line() {
        let allow = AllowList::default();
        let mut s = RefScanner::new(&allow);
        let mut long = b"src=\"https://x.example/".to_vec();
        long.extend(std::iter::repeat_n(b'a', 1 << 20));
        s.feed(&long);
        s.feed(&vec![b'b'; 1 << 20]);
        assert!(s.window.capacity() <= 4 * WINDOW);
        assert!(s.url.as_ref().unwrap().1.len() <= MAX_URL);
        let (f, _) = s.finish();
        assert_eq!(f.len(), 1);
        assert!(f[0].url.ends_with('…'));
    }

    #[test]
    fn categories_and_content_types() {
        assert_eq!(category("portal/index.html").unwrap(), ("portal", None));
        assert_eq!(category("sdks/python/setup.py").unwrap(), ("sdks", Some("python")));
        assert!(category("sdks/README.md").is_err());
        assert!(category("README.md").is_err());
        assert!(category("other/x").is_err());
        assert!(check_path("portal/a\nb").is_err() && check_path("portal/a\\b").is_err());
        assert!(check_path("portal/ü b.html").is_ok());
        assert_eq!(content_type("portal/INDEX.HTML"), "text/html");
        assert_eq!(content_type("specs/api.yaml"), "application/yaml");
        assert_eq!(content_type("sdks/go/Makefile"), OCTET_STREAM);
        assert_eq!(content_type("portal/.htaccess"), OCTET_STREAM);
        assert!(scanned("portal/app.MJS") && !scanned("portal/logo.svg"));
        let mut sorted = CONTENT_TYPES.to_vec();
        sorted.sort();
        assert_eq!(sorted, CONTENT_TYPES, "the table stays sorted (it is documented as is)");
    }
}
