//! Log paths with wildcards (`/var/log/nginx/*.log`): expanded at start and reload, and
//! again while the daemon runs, so that a file that appears later and matches is followed
//! from its start.
//!
//! Matching uses the `glob` crate (`*`, `?`, `[...]`; `*` does not cross `/`). Rotated logs
//! never match, whatever the pattern: compressed ones (`*.gz`, `*.xz`, `*.bz2`, `*.zst`),
//! and logrotate's names (`NAME.1`, `NAME-20261203`, `NAME.old`): the file a rotation moves
//! there was read under its old name, and reading it again would count its lines twice. Two
//! names of one file (a link and its target) are followed once.

use std::path::{Path, PathBuf};

/// Whether a log source is a pattern rather than one path.
pub fn is_glob(source: &str) -> bool {
    source.contains(['*', '?', '['])
}

/// Most files one pattern is followed in: each is a descriptor, and a directory's owner can
/// make any number of files. Over it, see [`expand_preferring`] for which are kept.
pub const MAX_MATCHES: usize = 4096;

/// The regular files `pattern` matches now, sorted, at most [`MAX_MATCHES`]; an invalid
/// pattern matches nothing (the configuration checks patterns when it loads).
pub fn expand(pattern: &str) -> Vec<PathBuf> {
    expand_preferring(pattern, &|_| false)
}

/// [`expand`], keeping first, when more than [`MAX_MATCHES`] files match, those `followed`
/// says were followed before, then those holding the most data on disk (allocated blocks:
/// a sparse file costs its maker nothing), then the newest. (Kept in name order, 4096 empty
/// files named `0000.log`... by the owner of the log's directory pushed the real
/// `access.log` out at the next start, a review found.)
pub fn expand_preferring(pattern: &str, followed: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let Ok(paths) = glob::glob_with(pattern, options()) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file() && !rotated(p))
        .collect();
    v.sort();
    // one name per file (dev, inode): the first in order
    let mut seen = std::collections::HashSet::new();
    v.retain(|p| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).is_ok_and(|m| seen.insert((m.dev(), m.ino())))
    });
    if v.len() > MAX_MATCHES {
        use std::os::unix::fs::MetadataExt;
        v.sort_by_cached_key(|p| {
            let m = std::fs::metadata(p).ok();
            (
                !followed(p),
                std::cmp::Reverse(m.as_ref().map_or(0, |m| m.blocks())),
                std::cmp::Reverse(m.as_ref().map_or(0, |m| m.mtime())),
            )
        });
        v.truncate(MAX_MATCHES);
        v.sort();
    }
    v
}

/// Whether `path` (a followed file's name) is matched by `pattern`.
pub fn matches(pattern: &str, path: &str) -> bool {
    glob::Pattern::new(pattern)
        .is_ok_and(|p| p.matches_with(path, options()) && !rotated(Path::new(path)))
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

/// Whether `p` is named as a rotated log: compressed, or logrotate's `.N`, `-YYYYMMDD`
/// (dateext) or `.old`.
fn rotated(p: &Path) -> bool {
    let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let compressed = [".gz", ".xz", ".bz2", ".zst", ".lz4"]
        .iter()
        .any(|c| name.ends_with(c));
    let numbered = name
        .rsplit_once('.')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    // logrotate's dateext appends -YYYYMMDD (or -YYYYMMDDHH); `app-20261203.log`, a name
    // an application chose, is no rotation
    let dated = name.rsplit_once('-').is_some_and(|(_, d)| dateext(d));
    compressed || numbered || dated || name.ends_with(".old")
}

/// Whether `d` is what logrotate's `dateext` appends after a `-`: `YYYYMMDD` or `YYYYMMDDHH`.
fn dateext(d: &str) -> bool {
    (d.len() == 8 || d.len() == 10) && d.bytes().all(|b| b.is_ascii_digit())
}

/// Where a rotated file stands among a log's rotations, read from the suffix logrotate gives
/// its name ([`rotation_of`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// `.N`: `.0` or `.1` the file rotated last, each rotation moving the older ones up one.
    Numbered(u32),
    /// `-YYYYMMDD[HH]` (dateext): the later date the later rotation.
    Dated(String),
    /// `.old`: one rotation, kept in no order.
    Old,
}

impl Rotation {
    /// Whether this rotation was made after `other` (a file under this name began after the
    /// file under `other`'s was rotated away). Names of two schemes are not compared.
    pub fn later_than(&self, other: &Rotation) -> bool {
        match (self, other) {
            (Rotation::Numbered(a), Rotation::Numbered(b)) => a < b,
            // (as text: only for dates whose order that is, year first; a `dateformat` of
            // day first, `-%d%m%Y`, is in no order here, review 18)
            (Rotation::Dated(a), Rotation::Dated(b)) => {
                a.len() == b.len() && year_first(a) && year_first(b) && a > b
            }
            _ => false,
        }
    }
}

/// Whether dateext's digits `d` read as `YYYYMMDD[HH]` (a year from 1970 to 2199, a month,
/// a day, an hour).
fn year_first(d: &str) -> bool {
    let n = |r: std::ops::Range<usize>| d.get(r).and_then(|x| x.parse::<u32>().ok());
    let hour_ok = d.len() == 8 || n(8..10).is_some_and(|h| h <= 23);
    n(0..4).is_some_and(|y| (1970..2200).contains(&y))
        && n(4..6).is_some_and(|m| (1..=12).contains(&m))
        && n(6..8).is_some_and(|dd| (1..=31).contains(&dd))
        && hour_ok
}

/// The rotation `rest`, what follows a log's name, says, when it is a suffix logrotate gives
/// a rotated log: `.N` (`.0` to `.9999`), `.old` or `-YYYYMMDD[HH]`.
pub fn rotation_of(rest: &str) -> Option<Rotation> {
    if rest == ".old" {
        return Some(Rotation::Old);
    }
    if let Some(n) = rest.strip_prefix('.') {
        let plain = !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit());
        let canonical = n == "0" || !n.starts_with('0');
        return (plain && canonical)
            .then(|| n.parse().ok().map(Rotation::Numbered))
            .flatten();
    }
    let d = rest.strip_prefix('-')?;
    dateext(d).then(|| Rotation::Dated(d.to_string()))
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
        // rotated names never match, a link and its target are one file
        for f in ["c.log-20261203", "d.log.old", "e.1", "app-20261203.log"] {
            std::fs::write(d.path().join(f), "x\n").unwrap();
        }
        std::os::unix::fs::symlink(d.path().join("a.log"), d.path().join("z-link.log")).unwrap();
        let all: Vec<String> = expand(&format!("{}/*", d.path().display()))
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(all, ["a.log", "app-20261203.log", "b.log"]);
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

    #[test]
    fn rotations_are_ordered_as_logrotate_makes_them() {
        use Rotation::*;
        assert_eq!(rotation_of(".1"), Some(Numbered(1)));
        assert_eq!(rotation_of(".0"), Some(Numbered(0)));
        assert_eq!(rotation_of(".12"), Some(Numbered(12)));
        assert_eq!(rotation_of("-20261203"), Some(Dated("20261203".into())));
        assert_eq!(rotation_of(".old"), Some(Old));
        for no in [
            "",
            ".",
            ".01",
            ".12345",
            ".1a",
            "-2026120",
            "-2026-12-03",
            ".gz",
            "1",
        ] {
            assert_eq!(rotation_of(no), None, "{no:?}");
        }
        assert!(Numbered(1).later_than(&Numbered(2)) && !Numbered(2).later_than(&Numbered(1)));
        assert!(!Numbered(1).later_than(&Numbered(1)));
        let (a, b) = (Dated("20261203".into()), Dated("20261204".into()));
        assert!(b.later_than(&a) && !a.later_than(&b));
        assert!(
            !Dated("2026120401".into()).later_than(&a),
            "two formats: no order"
        );
        // day first (`dateformat -%d%m%Y`): no order (as text, 30 November came after 1
        // December)
        let (nov30, dec1) = (Dated("30112026".into()), Dated("01122026".into()));
        assert!(!nov30.later_than(&dec1) && !dec1.later_than(&nov30));
        assert!(!Numbered(1).later_than(&a) && !Old.later_than(&Numbered(5)));
    }

    /// Over the cap, the real log is kept: not the first names of a directory its owner
    /// filled with empty or sparse files, but the files followed before, then those
    /// holding data.
    #[test]
    fn over_the_cap_the_files_holding_data_and_those_followed_are_kept() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..MAX_MATCHES + 10 {
            let f = std::fs::File::create(d.path().join(format!("{i:05}.log"))).unwrap();
            if i % 2 == 0 {
                f.set_len(1 << 30).unwrap(); // sparse: a gigabyte that costs nothing
            }
        }
        std::fs::write(d.path().join("zz-access.log"), vec![b'x'; 64 * 1024]).unwrap();
        let pat = format!("{}/*.log", d.path().display());
        let got = expand(&pat);
        assert_eq!(got.len(), MAX_MATCHES);
        assert!(got.contains(&d.path().join("zz-access.log")));
        // one followed before (empty, last by name) is kept too
        std::fs::write(d.path().join("zzz-app.log"), "").unwrap();
        let before = d.path().join("zzz-app.log");
        let got = expand_preferring(&pat, &|p| p == before);
        assert!(got.contains(&before) && got.contains(&d.path().join("zz-access.log")));
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted, "kept in name order");
    }
}
