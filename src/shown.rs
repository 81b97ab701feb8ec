//! How untrusted names (file paths, archive members, ids from documents)
//! are shown to a person: control characters, Unicode bidi controls and
//! backslashes are escaped (`\n`, `\u{1b}`, `\\`), so a hostile name can
//! neither forge a log line nor send a terminal escape. Everything else
//! (printable Unicode included) is shown as is.
//!
//! Use [`name`] wherever a name that came from input reaches stderr,
//! stdout text or an error message. JSON output needs no escaping of its
//! own: serde_json already escapes control characters.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;

fn needs_escape(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control character escaped.
pub fn name(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A path, shown as [`name`] shows text (invalid UTF-8 as U+FFFD).
pub fn path(p: &Path) -> String {
    name(&p.to_string_lossy()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_escaped() {
        assert_eq!(name("x\nerror: none\u{1b}[31m.json"), "x\\nerror: none\\u{1b}[31m.json");
        assert_eq!(name("a\\b"), "a\\\\b");
        assert_eq!(name("ok/é.json"), "ok/é.json");
        assert!(matches!(name("plain"), Cow::Borrowed(_)));
        assert_eq!(name("\u{202e}txt"), "\\u{202e}txt");
    }
}
