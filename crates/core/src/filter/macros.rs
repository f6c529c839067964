//! Pattern macros: `{HOST}`, `{PORT}`, `{USER}`, … expanded before compiling.
//!
//! The table is data (`macros.txt` beside this file, also read by `build.rs`); the
//! expansion is [`portcullis_pattern::template`]. Only `{NAME}` with an upper-case name is
//! a macro; `{1,3}` stays a regex repetition.

use std::sync::OnceLock;

use portcullis_pattern::template;

/// The text of the macro table.
pub const SOURCE: &str = include_str!("macros.txt");

/// The macros and what they expand to.
pub fn table() -> &'static [(String, String)] {
    static TABLE: OnceLock<Vec<(String, String)>> = OnceLock::new();
    TABLE.get_or_init(|| template::parse_table(SOURCE).expect("macros.txt is valid"))
}

/// What macro `name` expands to.
pub fn get(name: &str) -> Option<&'static str> {
    table()
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Expands the macros in `pattern`. An unknown `{UPPER}` name is an error listing the known.
pub fn expand(pattern: &str) -> Result<String, template::UnknownName> {
    template::expand(pattern, table())
}

/// Expands macros and anchors the pattern at both ends, in the regex crate's syntax with
/// Unicode off (patterns run on bytes) and `.` matching any byte (see
/// [`template::anchored`]).
pub fn anchored(pattern: &str) -> Result<String, template::UnknownName> {
    Ok(template::anchored(&expand(pattern)?))
}

/// A pattern [`anchored`] made, without its anchors (for a search anywhere in a line).
pub fn unanchored(full: &str) -> Option<&str> {
    template::unanchored(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{NORIP}` is exactly the text without '<', '>' or "rip=": every string of up to 7
    /// bytes over the letters that matter, against the plain definition.
    #[test]
    fn norip_is_the_text_without_rip_or_angle_brackets() {
        every_word("{NORIP}", &['r', 'i', 'p', '=', 'x', '<'], |w| {
            !w.contains("rip=") && !w.contains('<')
        });
    }

    /// Checks that the macro `name` matches exactly the strings `plain` says, for every
    /// string of up to 7 letters of `alphabet`.
    fn every_word(name: &str, alphabet: &[char], plain: impl Fn(&str) -> bool) {
        let re = regex::Regex::new(&format!("^{}$", expand(name).unwrap())).unwrap();
        let mut words = vec![String::new()];
        for _ in 0..7 {
            let longer: Vec<String> = words
                .iter()
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            for w in &longer {
                assert_eq!(re.is_match(w), plain(w), "{name} {w:?}");
            }
            words = longer;
        }
    }

    /// `{NORHOST}` is exactly the text without "rhost=": every string of up to 7 bytes over
    /// the letters that matter, against the plain definition.
    #[test]
    fn norhost_is_the_text_without_rhost() {
        every_word("{NORHOST}", &['r', 'h', 'o', 's', 't', '=', 'x'], |w| {
            !w.contains("rhost=")
        });
        let re = regex::Regex::new(&format!("^{}$", expand("{NORHOST}").unwrap())).unwrap();
        for w in ["x rhost=198.51.100.7 ", "rrhost=", "rhosrhost=a"] {
            assert!(!re.is_match(w), "{w:?}");
        }
        assert!(re.is_match("x rhos t= rhost rhost"));
    }

    #[test]
    fn expands_known_and_keeps_repetitions() {
        let e = expand(r"from {HOST} port {PORT} x{1,3}").unwrap();
        assert!(e.contains("(?P<host>"));
        assert!(e.ends_with("x{1,3}"));
        assert!(expand(r"a\{HOST}").unwrap().contains(r"\{HOST}"));
    }

    #[test]
    fn unknown_macro_lists_known() {
        let e = expand("from {HOTS}").unwrap_err().to_string();
        assert!(e.contains("{HOTS}") && e.contains("{HOST}"), "{e}");
    }

    #[test]
    fn every_macro_compiles_and_host_macros_capture_the_host() {
        for (k, v) in table() {
            let p = portcullis_pattern::Pattern::new(&template::anchored(v), &["host"], None)
                .unwrap_or_else(|e| panic!("{k}: {e}"));
            assert_eq!(
                p.has_group(0),
                ["HOST", "ADDR", "IPV4", "IPV6"].contains(&k.as_str()),
                "{k}"
            );
        }
    }
}
