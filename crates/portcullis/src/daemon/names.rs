//! One log file under several names: each line counted once per jail.
//!
//! The follower reads each followed path, and two paths may name one file: a symbolic link
//! and its target, both configured or both matched by a wildcard (`/var/log/secure` made a
//! link to `auth.log` while the daemon runs). Each line then came twice to a jail reading
//! both names, and its `maxretry` was halved. And the follower does not follow a wildcard
//! match that appears while it already reads the same file under another name (an *alias*):
//! a jail that read the file only under that new name got none of its lines.
//!
//! Both are settled here per line, by the file (device, inode) the follower read it from
//! (`Batch::iter_from`), not by the names: a name's file changes under it (rotation, a link
//! pointed elsewhere, removed), and a decision by name went stale (review 15: a jail stopped
//! counting a file it names; another counted a file it does not).
//!
//! * A jail counts the lines of a file from one name, its *owner*: the first name that gave
//!   it a line of the file. Lines of the same file from another name are dropped for that
//!   jail while the owner still reads the file; once the owner reads it no more (its link
//!   removed, its rotated file closed), the next name that gives a line takes over. Both
//!   names read the file to its end at every poll, so nothing is counted twice or lost at
//!   the change.
//! * The jails of an alias get the lines of its file, under whatever name they come.
//!
//! Pure bookkeeping: the engine feeds it what the follower reads and its aliases, whenever
//! they change, and asks, per line of a file read under two names or aliased, which jails
//! count it. Lines of other files (nearly all) pass untouched.

use std::collections::{HashMap, HashSet};

use crate::sources::file::series_of;

/// A file: (device, inode).
pub(crate) type FileId = (u64, u64);

#[derive(Default)]
pub(crate) struct FileNames {
    /// The paths that read each file now (its name, or one it was rotated away from).
    readers: HashMap<FileId, Vec<String>>,
    /// The jails of the wildcard matches that name each file but are not read (aliases),
    /// and the matches, for the log.
    aliases: HashMap<FileId, (Vec<usize>, Vec<String>)>,
    /// (jail, file) -> the name whose lines of the file the jail counts.
    owners: HashMap<(usize, FileId), String>,
    /// (jail, shapes of the two names) said ([`shape`]: once per pair of names, not per
    /// file of a link moved along numbered files, review 64 L5).
    said: HashSet<(usize, String, String)>,
    /// The paths whose own file is open (`status`).
    held: HashSet<String>,
    /// The files read under two names or aliased: the lines of others pass untouched (an
    /// empty set, nearly always, answers without hashing).
    special: HashSet<FileId>,
}

impl FileNames {
    /// What the follower reads now: per path, the files it reads, and whether the first is
    /// the file it names (`Follower::reading`).
    ///
    /// A file that gains a second name (a wildcard's match now read whole beside the link
    /// that read it first) stays counted from the name that read it already, for each of
    /// that name's jails (`jails_of`): the first line to come decided, and the new name,
    /// read again from the file's start, had a jail that reads both count every earlier line
    /// twice (review 63).
    pub(crate) fn set_reading(
        &mut self,
        list: &crate::sources::batch::Reading,
        jails_of: impl Fn(&str) -> Vec<usize>,
    ) {
        let before = std::mem::take(&mut self.readers);
        self.held.clear();
        for (name, ids, names_first) in list {
            if *names_first && !ids.is_empty() {
                self.held.insert(name.clone());
            }
            for id in ids {
                let r = self.readers.entry(*id).or_default();
                if !r.contains(name) {
                    r.push(name.clone());
                }
            }
        }
        for (id, now) in &self.readers {
            if now.len() < 2 {
                continue;
            }
            for name in before.get(id).into_iter().flatten() {
                if now.contains(name) {
                    for ji in jails_of(name) {
                        self.owners.entry((ji, *id)).or_insert_with(|| name.clone());
                    }
                }
            }
        }
        let readers = &self.readers;
        self.owners.retain(|(_, id), _| readers.contains_key(id));
        self.mark_special();
    }

    fn mark_special(&mut self) {
        self.special = self
            .readers
            .iter()
            .filter(|(_, r)| r.len() > 1)
            .map(|(id, _)| *id)
            .chain(self.aliases.keys().copied())
            .collect();
    }

    /// Jails `jails` count `file` from `name` (a name the follower reads it under): at a
    /// start, the name that read it to a place before the stop, while another name reads
    /// it again from its start for its own jails (`Batch::lent`).
    pub(crate) fn prefer(&mut self, file: FileId, name: &str, jails: &[usize]) {
        for &ji in jails {
            self.owners.insert((ji, file), name.to_string());
        }
    }

    /// The follower's aliases (`Follower::aliases`), each match's jails given by `jails_of`.
    /// Returns what to log: each file whose aliases changed.
    pub(crate) fn set_aliases(
        &mut self,
        list: &[(String, FileId)],
        jails_of: impl Fn(&str) -> Vec<usize>,
    ) -> Vec<String> {
        let mut new: HashMap<FileId, (Vec<usize>, Vec<String>)> = HashMap::new();
        for (path, id) in list {
            let e = new.entry(*id).or_default();
            e.0.extend(jails_of(path));
            e.1.push(path.clone());
        }
        for (js, _) in new.values_mut() {
            js.sort_unstable();
            js.dedup();
        }
        let mut notes = Vec::new();
        for (id, (_, paths)) in &new {
            if self.aliases.get(id).map(|a| &a.1) != Some(paths) {
                notes.push(format!(
                    "{paths:?} name a file read under another name ({}): its lines go to their jails too",
                    self.readers.get(id).map_or("?".to_string(), |r| r.join(", "))
                ));
            }
        }
        self.aliases = new;
        self.mark_special();
        notes
    }

    /// The jails of the aliases made again (a reload: the jails changed), by `jails_of`.
    /// A jail kept (`kept`: its index before, to its index now) keeps the name it counts a
    /// file from, if it still reads that name, and what was said to it; the others are
    /// counted anew. (Review 64 L1: every owner was forgotten, and under load the name to
    /// give a line first after the reload, read to another place, took over: lines lost or
    /// counted twice.)
    pub(crate) fn reload(
        &mut self,
        jails_of: impl Fn(&str) -> Vec<usize>,
        kept: impl Fn(usize) -> Option<usize>,
    ) {
        for (js, paths) in self.aliases.values_mut() {
            *js = paths.iter().flat_map(|p| jails_of(p)).collect();
            js.sort_unstable();
            js.dedup();
        }
        self.owners = std::mem::take(&mut self.owners)
            .into_iter()
            .filter_map(|((ji, file), owner)| {
                let now = kept(ji).filter(|j| jails_of(&owner).contains(j))?;
                Some(((now, file), owner))
            })
            .collect();
        self.said = std::mem::take(&mut self.said)
            .into_iter()
            .filter_map(|(ji, a, b)| Some((kept(ji)?, a, b)))
            .collect();
    }

    /// Whether lines of `file` need [`FileNames::route`]: read under two names, or aliased.
    pub(crate) fn special(&self, file: FileId) -> bool {
        self.special.contains(&file)
    }

    /// The jails that count this line of `file`, which came under name `src`, whose jails
    /// are `js` (sorted): those of `js` and of the file's aliases, less those that count the
    /// file from another name that still reads it. `say` gets, once per jail and pair of
    /// names (the files of a numbered series as one, [`shape`]), the
    /// jail and the two names.
    pub(crate) fn route(
        &mut self,
        src: &str,
        file: FileId,
        js: &[usize],
        mut say: impl FnMut(usize, &str, &str),
    ) -> Vec<usize> {
        let mut out = js.to_vec();
        if let Some((more, _)) = self.aliases.get(&file) {
            out.extend(more);
            out.sort_unstable();
            out.dedup();
        }
        let Some(readers) = self.readers.get(&file).filter(|r| r.len() > 1) else {
            return out;
        };
        out.retain(|&ji| match self.owners.get(&(ji, file)) {
            Some(o) if o == src => true,
            Some(o) if readers.contains(o) => {
                let (a, b) = (shape(o), shape(src));
                let pair = if a <= b { (ji, a, b) } else { (ji, b, a) };
                if self.said.insert(pair) {
                    say(ji, o, src);
                }
                false
            }
            _ => {
                self.owners.insert((ji, file), src.to_string());
                true
            }
        });
        out
    }

    /// The paths whose own file the follower holds open (read on through the descriptor
    /// even when the file can no longer be opened).
    pub(crate) fn held(&self) -> &HashSet<String> {
        &self.held
    }
}

/// A path with its file name's numbers as `N` ([`series_of`]), its directories as they
/// are (`/srv/site1/app-3.log` and `/srv/site2/app-3.log` are two).
fn shape(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/{}", series_of(name)),
        None => series_of(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl FileNames {
        /// [`FileNames::set_reading`] where every name is read by jails 0 and 1.
        fn set_reading_all(&mut self, list: &crate::sources::batch::Reading) {
            self.set_reading(list, |_| vec![0, 1]);
        }
    }

    const F: FileId = (1, 10);
    const G: FileId = (1, 20);

    fn reading(list: &[(&str, &[FileId])]) -> crate::sources::batch::Reading {
        list.iter()
            .map(|(n, ids)| (n.to_string(), ids.to_vec(), true))
            .collect()
    }

    /// A link and its target, both followed by jail 0 (jail 1 reads the target only): each
    /// line counted once by jail 0, from the name that gave it first; said once.
    #[test]
    fn two_names_of_one_file_count_once_per_jail() {
        let mut n = FileNames::default();
        n.set_reading_all(&reading(&[("/l/secure", &[F]), ("/l/auth.log", &[F])]));
        assert!(n.special(F) && !n.special(G));
        let mut said = Vec::new();
        let mut say = |j: usize, o: &str, s: &str| said.push(format!("{j} {o} {s}"));
        assert_eq!(n.route("/l/secure", F, &[0], &mut say), [0]);
        assert_eq!(n.route("/l/auth.log", F, &[0, 1], &mut say), [1]);
        assert_eq!(n.route("/l/secure", F, &[0], &mut say), [0]);
        assert_eq!(n.route("/l/auth.log", F, &[0, 1], &mut say), [1]);
        assert_eq!(said, ["0 /l/secure /l/auth.log"]);
    }

    /// The owner reads the file no more (the link removed, its drain closed): the other name
    /// takes over; the link pointed at another file: that file is its own.
    #[test]
    fn the_other_name_takes_over_when_the_owner_reads_the_file_no_more() {
        let mut n = FileNames::default();
        n.set_reading_all(&reading(&[("/l/secure", &[F]), ("/l/auth.log", &[F])]));
        let say = |_: usize, _: &str, _: &str| {};
        assert_eq!(n.route("/l/secure", F, &[0], say), [0]);
        assert_eq!(n.route("/l/auth.log", F, &[0], say), [0usize; 0]);
        // the link now names G and still drains F: F still owned by it
        n.set_reading_all(&reading(&[("/l/secure", &[G, F]), ("/l/auth.log", &[F])]));
        assert_eq!(n.route("/l/auth.log", F, &[0], say), [0usize; 0]);
        assert!(!n.special(G));
        // F's drain closed
        n.set_reading_all(&reading(&[("/l/secure", &[G]), ("/l/auth.log", &[F])]));
        assert!(!n.special(F), "one name only: no bookkeeping");
        n.set_reading_all(&reading(&[
            ("/l/secure", &[G]),
            ("/l/auth.log", &[F]),
            ("/x", &[F]),
        ]));
        assert_eq!(n.route("/l/auth.log", F, &[0], say), [0]);
        assert_eq!(n.route("/x", F, &[0], say), [0usize; 0]);
    }

    /// An alias: the jails of a wildcard match that is not read get the lines of its file,
    /// whatever name they come under, and only those of its file.
    #[test]
    fn an_alias_gives_its_jails_the_lines_of_its_file_only() {
        let mut n = FileNames::default();
        n.set_reading_all(&reading(&[("/l/auth.log", &[G, F])]));
        let notes = n.set_aliases(&[("/o/old-1.log".to_string(), F)], |p| {
            if p == "/o/old-1.log" {
                vec![2]
            } else {
                vec![]
            }
        });
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("/l/auth.log"), "{notes:?}");
        let say = |_: usize, _: &str, _: &str| {};
        assert_eq!(n.route("/l/auth.log", F, &[0], say), [0, 2]);
        assert_eq!(n.route("/l/auth.log", G, &[0], say), [0]);
        assert!(!n.special(G));
        // said once per change
        assert!(n
            .set_aliases(&[("/o/old-1.log".to_string(), F)], |_| vec![2])
            .is_empty());
        assert!(n.set_aliases(&[], |_| vec![]).is_empty());
        assert!(!n.special(F));
    }

    /// A link moved along numbered files, each read under the link and a wildcard's match:
    /// said once, not once per file (review 64 L5).
    #[test]
    fn a_link_along_numbered_files_is_said_once() {
        let mut n = FileNames::default();
        let mut said = Vec::new();
        for (i, file) in [F, G].into_iter().enumerate() {
            let own = format!("/l/app-{}.log", i + 1);
            n.set_reading_all(&reading(&[("/l/current.log", &[file]), (&own, &[file])]));
            let mut say = |j: usize, o: &str, s: &str| said.push(format!("{j} {o} {s}"));
            assert_eq!(n.route("/l/current.log", file, &[0], &mut say), [0]);
            assert_eq!(n.route(&own, file, &[0], &mut say), [0usize; 0]);
        }
        assert_eq!(said, ["0 /l/current.log /l/app-1.log"]);
        assert_eq!(shape("/l/auth.log-20261207"), "/l/auth.log-N");
        assert_eq!(shape("/srv/site1/app-3.log"), "/srv/site1/app-N.log");
    }

    /// A reload keeps, for a jail kept (under another index now), the name it counts a file
    /// from: the other name, read to another place, does not take over (review 64 L1). A
    /// jail gone, or no longer reading that name, starts anew.
    #[test]
    fn a_reload_keeps_the_name_a_kept_jail_counts_a_file_from() {
        let mut n = FileNames::default();
        n.set_reading_all(&reading(&[("/l/secure", &[F]), ("/l/auth.log", &[F])]));
        let mut say = |_: usize, _: &str, _: &str| {};
        assert_eq!(n.route("/l/secure", F, &[0, 1], &mut say), [0, 1]);
        // jail 0 is now jail 1; jail 1 is gone; a new jail 0 reads both names
        n.reload(|_| vec![0, 1], |i| (i == 0).then_some(1));
        assert_eq!(n.route("/l/auth.log", F, &[0, 1], &mut say), [0]);
        assert_eq!(n.route("/l/secure", F, &[0, 1], &mut say), [1]);
        // the kept jail no longer reads the name it counted from: the other takes over
        let mut n2 = FileNames::default();
        n2.set_reading_all(&reading(&[("/l/secure", &[F]), ("/l/auth.log", &[F])]));
        assert_eq!(n2.route("/l/secure", F, &[0], &mut say), [0]);
        n2.reload(|p| if p == "/l/secure" { vec![] } else { vec![0] }, Some);
        assert_eq!(n2.route("/l/auth.log", F, &[0], &mut say), [0]);
    }

    /// At a start, a wildcard's match read from a file's start while the link read it to a
    /// place before the stop: a jail of both counts it from the link's name (`prefer`),
    /// not again from the start (review 69), while a jail of the match alone gets it all.
    #[test]
    fn a_preferred_name_counts_a_file_for_the_jails_of_both() {
        let mut n = FileNames::default();
        n.set_reading(
            &reading(&[("/l/current.log", &[F]), ("/l/app-2.log", &[F])]),
            |p| {
                if p == "/l/current.log" {
                    vec![0]
                } else {
                    vec![0, 1]
                }
            },
        );
        n.prefer(F, "/l/current.log", &[0]);
        let say = |_: usize, _: &str, _: &str| {};
        assert_eq!(n.route("/l/app-2.log", F, &[0, 1], say), [1]);
        assert_eq!(n.route("/l/current.log", F, &[0], say), [0]);
    }

    /// Paths with their own file open, for `status`.
    #[test]
    fn held_paths_are_those_reading_the_file_they_name() {
        let mut n = FileNames::default();
        n.set_reading_all(&vec![
            ("/a".to_string(), vec![F], true),
            ("/b".to_string(), vec![G], false),
            ("/c".to_string(), vec![], false),
        ]);
        assert_eq!(n.held().len(), 1);
        assert!(n.held().contains("/a"));
    }
}
