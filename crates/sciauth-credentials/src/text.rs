//! Text from outside, made safe to show: what a server, an identity provider or a file says
//! reaches terminals, logs and error messages only through [`printable`].
//!
//! A terminal obeys escape sequences (`ESC [ 2 J` clears it, OSC 52 writes the clipboard, OSC 8
//! hides a link behind other text), a newline forges a log line, and Unicode's bidirectional
//! overrides make `moc.elgoog` read as `google.com`. [`printable`] escapes all of them
//! (`\x1b`, `\u{202e}`) so they are visible but inert, and cuts the text to a length a person
//! can read.
//!
//! ```
//! use sciauth_credentials::text::printable;
//! assert_eq!(printable("ok\x1b[2J\nforged", 80), "ok\\x1b[2J\\nforged");
//! assert_eq!(printable("abcdef", 3), "abc…");
//! ```

use std::fmt::Write as _;

/// Whether `c` is shown as it is: not a control character (C0, DEL, C1), not a Unicode
/// format character that reorders or hides text (bidirectional marks, embeddings, overrides
/// and isolates, zero-width characters, the BOM), not a line or paragraph separator.
pub fn is_printable(c: char) -> bool {
    !(c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
                | '\u{061c}'
                | '\u{fff9}'..='\u{fffb}'
        ))
}

/// `text` with every character that is not [`is_printable`] escaped (`\n`, `\t`, `\x1b`,
/// `\u{202e}`) and at most `max_chars` characters kept (then `…` ends it).
pub fn printable(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    for (count, c) in text.chars().enumerate() {
        if count >= max_chars {
            out.push('…');
            break;
        }
        if is_printable(c) {
            out.push(c);
        } else {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x100 => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
            }
        }
    }
    out
}

/// A serde error message as one printable line that never quotes a value: serde's
/// "invalid type: string \"...\", expected ..." names the value it could not use, which may be
/// a secret written under the wrong key; only what was expected is kept. Other messages
/// ("missing field `x`", "unknown field `y`") name keys, which are kept, escaped.
///
/// ```
/// use sciauth_credentials::text::serde_message;
/// assert_eq!(
///     serde_message("invalid type: string \"hunter2\", expected u64"),
///     "wrong type or value: expected u64"
/// );
/// assert_eq!(serde_message("missing field `issuer`"), "missing field `issuer`");
/// ```
pub fn serde_message(message: &str) -> String {
    let one_line = printable(
        &message.split_whitespace().collect::<Vec<_>>().join(" "),
        500,
    );
    match one_line.split_once(", expected ") {
        Some((kind, expected))
            if kind.starts_with("invalid type") || kind.starts_with("invalid value") =>
        {
            format!("wrong type or value: expected {expected}")
        }
        _ => one_line,
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `text`, for pointing at
/// a mistake in a file without quoting it.
///
/// ```
/// use sciauth_credentials::text::line_column;
/// assert_eq!(line_column("ab\ncdé\nf", 7), (2, 4));
/// ```
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Whether every character of `text` [`is_printable`].
pub fn is_all_printable(text: &str) -> bool {
    text.chars().all(is_printable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_and_log_controls_are_escaped() {
        assert_eq!(printable("a\u{7}b\u{9b}c\u{7f}", 80), "a\\x07b\\x9bc\\x7f");
        assert_eq!(printable("\u{202e}txt.exe", 80), "\\u{202e}txt.exe");
        assert_eq!(printable("ü café ✓", 80), "ü café ✓");
        assert_eq!(printable("", 0), "");
        assert_eq!(printable("ab", 0), "…");
        assert!(!is_all_printable("a\u{200b}b"));
        assert!(is_all_printable("user code WDJB-MJHT"));
    }
}
