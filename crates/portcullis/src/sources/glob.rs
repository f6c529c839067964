//! Log paths with wildcards (`/var/log/nginx/*.log`): expanded at start and reload, and
//! again while the daemon runs, so that a file that appears later and matches is followed
//! from its start.
//!
//! Matching uses the `glob` crate (`*`, `?`, `[...]`; `*` does not cross `/`). Compressed
//! rotations (`*.gz`, `*.xz`, `*.bz2`, `*.zst`) never match: they are old logs, and binary.

use std::path::{Path, PathBuf};

/// Whether a log source is a pattern rather than one path.
pub fn is_glob(source: &str) -> bool {
    source.contains(['*', '?', '['])
}

/// The regular files `pattern` matches now, sorted; an invalid pattern matches nothing
/// (the configuration checks patterns when it loads).
pub fn expand(pattern: &str) -> Vec<PathBuf> {
    let Ok(paths) = glob::glob_with(pattern, options()) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file() && !compressed(p))
        .collect();
    v.sort();
    v
}

/// Whether `path` (a followed file's name) is matched by `pattern`.
pub fn matches(pattern: &str, path: &str) -> bool {
    glob::Pattern::new(pattern)
        .is_ok_and(|p| p.matches_with(path, options()) && !compressed(Path::new(path)))
}

/// Checks a pattern: an error says what is wrong with it.
pub fn check(pattern: &str) -> Result<(), String> {
    glob::Pattern::new(pattern)
        .map(|_| ())
        .map_err(|e| format!("{pattern:?} is not a valid wildcard pattern: {e}"))
}

fn options() -> glob::MatchOptions {
    glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    }
}

fn compressed(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| ["gz", "xz", "bz2", "zst", "lz4"].iter().any(|c| e == *c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_regular_files_only_and_not_compressed_rotations() {
        let d = tempfile::tempdir().unwrap();
        for f in ["a.log", "b.log", "c.log.1", "d.log.gz", ".hidden.log"] {
            std::fs::write(d.path().join(f), "x\n").unwrap();
        }
        std::fs::create_dir(d.path().join("dir.log")).unwrap();
        let pat = format!("{}/*.log", d.path().display());
        let got: Vec<String> = expand(&pat)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(got, ["a.log", "b.log"]);
        assert!(matches(&pat, &format!("{}/new.log", d.path().display())));
        assert!(!matches(
            &pat,
            &format!("{}/sub/new.log", d.path().display())
        ));
        assert!(!matches(
            &format!("{}/*", d.path().display()),
            &format!("{}/x.gz", d.path().display())
        ));
        assert!(is_glob(&pat) && !is_glob("/var/log/auth.log"));
        assert!(check("/var/log/[a.log").is_err());
    }
}
