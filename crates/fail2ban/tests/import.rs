//! The import as a whole, through the public API, on filters written here in fail2ban's
//! documented format (no fail2ban file is copied).

mod common;

use std::collections::HashMap;

use common::hit;
use portcullis_core::filter::{Class, FilterDef};
use portcullis_fail2ban::{import, import_with, Counts, Imported, LEADING_DATE};

/// A small `common.conf` in fail2ban's format, written for these tests.
const COMMON: &str = r"# shared definitions (test fixture)
[INCLUDES]
after = common.local

[DEFAULT]
_daemon = \S*
__pid_re = (?:\[\d+\])
__daemon_re = [\[\(]?%(_daemon)s(?:\(\S+\))?[\]\)]?:?
__prefix_line = \s*(?:\S+\s+)?(?:%(__daemon_re)s%(__pid_re)s?:?\s+)?
";

fn import_files(list: &[(&str, &str)], path: &str) -> Imported {
    let map: HashMap<String, String> = list
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    import(path, &|n: &str| map.get(n).cloned()).expect("import")
}

const DEMO: &str = r"# demo filter for an ssh-like daemon (test fixture)
[INCLUDES]
before = common.conf

[DEFAULT]
_daemon = (?:sshd|sshd-session)

[Definition]
_user = <F-USER>\S+</F-USER>
failregex = ^%(__prefix_line)sFailed (?:password|publickey) for (?:invalid user )?%(_user)s from <HOST> port \d+ ssh2$
        ^%(__prefix_line)sInvalid user <F-USER>.*?</F-USER> from <HOST>(?: port \d+)?\s*$
        ^%(__prefix_line)sUser \S+ from <HOST> not allowed(?! because)
        ^%(__prefix_line)sBad user (?P<u>\S+) repeated (?P=u) from <HOST>$
ignoreregex = ^%(__prefix_line)sFailed \S+ for \S+ from 192\.0\.2\.\d+ 
";

#[test]
fn sshd_like_filter_with_include() {
    let im = import_files(
        &[("/f/common.conf", COMMON), ("/f/demo.conf", DEMO)],
        "/f/demo.conf",
    );
    let def = im.def.clone().expect("a filter");
    assert_eq!(def.name, "demo");
    assert_eq!(def.description, "imported from fail2ban filter demo");
    assert_eq!(def.programs, vec!["sshd", "sshd-session"]);
    assert_eq!(
        im.report.failregex,
        Counts {
            translated: 2,
            total: 4
        }
    );
    assert_eq!(
        im.report.ignoreregex,
        Counts {
            translated: 1,
            total: 1
        }
    );
    assert!(!im.report.complete());

    let h = hit(
        &def,
        "Nov 21 10:00:01 h sshd[1]: Failed password for root from 203.0.113.5 port 22 ssh2",
    )
    .expect("matches");
    assert_eq!(h.addr, "203.0.113.5");
    assert_eq!(h.user.as_deref(), Some("root"));
    assert_eq!(h.rule, "line-10");
    let h = hit(
        &def,
        "Nov 21 10:00:02 h sshd-session[7]: Invalid user o from 1.2.3.4 x from 2001:db8::1 port 4",
    )
    .expect("matches");
    assert_eq!(h.addr, "2001:db8::1");
    // other programs are not read; the ignore pattern wins
    assert!(hit(
        &def,
        "Nov 21 10:00:01 h cron[1]: Failed password for root from 203.0.113.5 port 22 ssh2"
    )
    .is_none());
    assert!(hit(
        &def,
        "Nov 21 10:00:01 h sshd[1]: Failed password for root from 192.0.2.9 port 22 ssh2"
    )
    .is_none());

    let sk = &im.report.skipped;
    assert_eq!(sk.len(), 2, "{sk:?}");
    assert_eq!(sk[0].pos.to_string(), "demo.conf:12");
    assert_eq!(
        sk[0].reason.to_string(),
        "look-ahead (?!…) is not supported by the linear-time engine"
    );
    assert!(
        sk[0].pattern.contains("%(__prefix_line)s"),
        "{}",
        sk[0].pattern
    );
    assert!(sk[0].pattern.contains("(?! because)"));
    assert_eq!(sk[1].pos.line, 13);
    assert!(
        sk[1].reason.to_string().contains("back-reference (?P=u)"),
        "{}",
        sk[1].reason
    );

    let toml = im.toml.expect("toml");
    assert!(toml.contains("# Not translated:"), "{toml}");
    assert!(
        toml.contains("demo.conf:12 (failregex): look-ahead"),
        "{toml}"
    );
    assert!(toml.contains("# from demo.conf:10\n[[rule]]"), "{toml}");
    let back: FilterDef = toml::from_str(&toml).expect("valid TOML");
    assert_eq!(back, def);
}

#[test]
fn prefregex_is_combined_with_each_failregex() {
    let conf = r"[INCLUDES]
before = common.conf
[DEFAULT]
_daemon = mailsrv
[Definition]
prefregex = ^%(__prefix_line)s(?:error: )?<F-CONTENT>.+</F-CONTENT>$
failregex = ^auth failed for <F-USER>\S+</F-USER> from <HOST>
        bad packet from <ADDR>
ignoreregex = ^auth failed for \S+ from 198\.51\.100\.99$
";
    let im = import_files(&[("common.conf", COMMON), ("mail.conf", conf)], "mail.conf");
    assert!(im.report.complete(), "{}", im.report.render());
    let def = im.def.expect("a filter");
    assert_eq!(def.programs, vec!["mailsrv"]);
    let h = hit(
        &def,
        "Nov 21 10:00:01 h mailsrv[12]: error: auth failed for bob from 198.51.100.7",
    )
    .expect("first");
    assert_eq!(
        (h.addr.as_str(), h.user.as_deref()),
        ("198.51.100.7", Some("bob"))
    );
    // unanchored failregex: anywhere in the content
    let h = hit(
        &def,
        "Nov 21 10:00:01 h mailsrv[12]: conn 4: bad packet from [198.51.100.8] (dropped)",
    )
    .expect("second");
    assert_eq!(h.addr, "198.51.100.8");
    // the prefregex part is required
    assert!(hit(
        &def,
        "Nov 21 10:00:01 h mailsrv[12]: warning: auth failed for bob from 198.51.100.7"
    )
    .is_none());
    // the ignoreregex applies to the content too
    assert!(hit(
        &def,
        "Nov 21 10:00:01 h mailsrv[12]: auth failed for bob from 198.51.100.99"
    )
    .is_none());
}

#[test]
fn datepattern_becomes_time_format_and_capture() {
    let conf = r"[Definition]
datepattern = ^%%Y-%%m-%%d %%H:%%M:%%S
failregex = ^ \[warn\] login failed for <F-ALT_USER>\S+</F-ALT_USER> from <IP4>$
";
    let im = import_files(&[("app.conf", conf)], "app.conf");
    assert!(im.report.complete(), "{}", im.report.render());
    let def = im.def.expect("a filter");
    assert_eq!(def.time_format, Some("%Y-%m-%d %H:%M:%S".into()));
    assert!(def.programs.is_empty());
    let h = hit(
        &def,
        "2026-11-21 10:00:01 [warn] login failed for eve from 192.0.2.44",
    )
    .expect("matches");
    assert_eq!(h.addr, "192.0.2.44");
    assert_eq!(h.user.as_deref(), Some("eve"));
    let want = portcullis_core::time::days_from_civil(2026, 11, 21) * 86_400_000 + 36_001_000;
    assert_eq!(h.time, Some(want));
}

#[test]
fn interpolation_known_local_init_and_loops() {
    let conf = r"[DEFAULT]
_greeting = hello%%
[Definition]
word = ignored
_who = <F-USER><word></F-USER>
failregex = ^%(_greeting)s <_who> %(word)s from <HOST>$
        ^loop %(a)s <HOST>
        ^missing %(nope)s <HOST>
a = %(b)s
b = %(a)s
[Init]
word = \w+
";
    let local = r"[Definition]
failregex = %(known/failregex)s
        ^added by local <HOST>$
word = [a-z]+
";
    let im = import_files(&[("x.conf", conf), ("x.local", local)], "x.conf");
    let def = im.def.clone().expect("a filter");
    // %% is a percent sign; <tag> takes [Init] (over [Definition]); %(word)s takes [Definition]
    let pats: Vec<&str> = def
        .rules
        .iter()
        .filter_map(|r| r.pattern.as_deref())
        .collect();
    assert_eq!(
        pats[0].strip_prefix(LEADING_DATE),
        Some(r"hello% (?P<user>\w+) [a-z]+ from \[?{HOST}\]?")
    );
    assert!(hit(&def, "hello% bob x from 192.0.2.1").is_some());
    assert!(hit(&def, "added by local 192.0.2.1").is_some());
    // the .local file's lines keep their own positions
    assert_eq!(im.origins[1].to_string(), "x.local:3");
    let sk = &im.report.skipped;
    assert_eq!(sk.len(), 2, "{}", im.report.render());
    assert!(
        sk[0].reason.to_string().contains("too deeply"),
        "{}",
        sk[0].reason
    );
    assert_eq!(sk[0].pos.to_string(), "x.conf:7");
    assert!(
        sk[1]
            .reason
            .to_string()
            .contains("unknown reference %(nope)s"),
        "{}",
        sk[1].reason
    );
}

/// Found by a review of the migration path: fail2ban reads `NAME.d/*.conf`, `NAME.local`,
/// `NAME.d/*.local` after `NAME.conf`, and the `.local` beside each include; the importer read
/// only `NAME.local`, so a site's ignoreregex in a drop-in was lost (and counted).
#[test]
fn drop_ins_and_the_local_files_of_includes_are_read_as_fail2ban_reads_them() {
    let conf = r"[INCLUDES]
before = shared.conf
[Definition]
failregex = ^Login failed for \S+ from <HOST>$
";
    let shared = r"[Definition]
block = admin
";
    let shared_local = r"[Definition]
block = admin|\.env
";
    let site = r"[Definition]
ignoreregex = ^Login failed for \S+ from 203\.0\.113\.6$
failregex = %(known/failregex)s
            ^API key rejected for <HOST>$
            ^probe of (?:%(block)s) from <HOST>$
";
    let late = r"[Definition]
failregex = %(known/failregex)s
            ^late rule <HOST>$
";
    let files: HashMap<String, String> = [
        ("f/app.conf", conf),
        ("f/shared.conf", shared),
        ("f/shared.local", shared_local),
        ("f/app.d/site.conf", site),
        ("f/app.d/z.local", late),
        (
            "f/app.d/not-read.txt",
            "[Definition]
failregex = ^nope <HOST>$
",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let list = |dir: &str| -> Vec<String> {
        let prefix = format!("{dir}/");
        files
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix).map(String::from))
            .collect()
    };
    let im = import_with("f/app.conf", &|n: &str| files.get(n).cloned(), &list).unwrap();
    let def = im.def.clone().expect("a filter");
    for (line, addr) in [
        ("Login failed for bob from 203.0.113.5", Some("203.0.113.5")),
        ("Login failed for bob from 203.0.113.6", None),
        ("API key rejected for 203.0.113.77", Some("203.0.113.77")),
        ("probe of .env from 203.0.113.40", Some("203.0.113.40")),
        ("late rule 203.0.113.41", Some("203.0.113.41")),
        ("nope 203.0.113.42", None),
    ] {
        assert_eq!(
            hit(&def, line).map(|h| h.addr),
            addr.map(String::from),
            "{line}"
        );
    }
    let report = im.report.render();
    assert!(
        report.contains("read also, as fail2ban does: shared.local")
            && report.contains("read also, as fail2ban does: site.conf, z.local"),
        "{report}"
    );
    // without a lister (the old API), the drop-in directory is not read
    let im = import("f/app.conf", &|n: &str| files.get(n).cloned()).unwrap();
    assert!(hit(&im.def.unwrap(), "API key rejected for 203.0.113.77").is_none());
}

/// Found by the same review: `(?:IPv6:<IP6>|<IP4>)` (stock sendmail's `addr`) captured
/// only the first branch's address, so IPv4 lines matched without one and counted nothing.
#[test]
fn address_tags_in_two_branches_both_give_the_address() {
    for conf in [
        "[Definition]\nfailregex = ^bad client \\[(?:IPv6:<IP6>|<IP4>)\\]$\n",
        "[Definition]\nfailregex = ^bad client \\[(?:<IP4>|IPv6:<IP6>)\\]$\n",
    ] {
        let im = import_files(&[("a.conf", conf)], "a.conf");
        let def = im.def.clone().expect("a filter");
        for (line, addr) in [
            ("bad client [IPv6:2001:db8::23]", "2001:db8::23"),
            ("bad client [203.0.113.24]", "203.0.113.24"),
        ] {
            assert_eq!(
                hit(&def, line).map(|h| h.addr).as_deref(),
                Some(addr),
                "{conf}: {line}"
            );
        }
        assert!(hit(&def, "bad client [IPv6:203.0.113.24]").is_none());
        assert!(
            !im.report.render().contains("appears twice"),
            "{}",
            im.report.render()
        );
    }
}

/// Found by the same review: a filter that extends the prefix (stock sendmail's queue id:
/// `__prefix_line = %(known/__prefix_line)s(?:\w{14,20}: )?`) lost its addition with the
/// prefix, so its anchored patterns missed the real lines and matched others.
#[test]
fn a_filters_own_addition_to_the_prefix_is_kept() {
    let conf = r"[INCLUDES]
before = common.conf
[Definition]
_daemon = myapp
__prefix_line = %(known/__prefix_line)s\[auth\]\s+
failregex = ^%(__prefix_line)sfailed login from <HOST>$
";
    let im = import_files(&[("common.conf", COMMON), ("pfx.conf", conf)], "pfx.conf");
    let def = im.def.clone().expect("a filter");
    assert_eq!(
        hit(&def, "[auth] failed login from 203.0.113.31").map(|h| h.addr),
        Some("203.0.113.31".to_string())
    );
    assert!(hit(&def, "failed login from 203.0.113.32").is_none());
}

#[test]
fn mode_parameter_adds_scan_rules() {
    let conf = r"[Definition]
mode = normal
mdre-normal = ^bad password from <HOST>$
mdre-ddos = ^no banner from <HOST>$
mdre-aggressive = %(mdre-normal)s
              %(mdre-ddos)s
failregex = ^common failure from <HOST>$
        <mdre-<mode>>
";
    let im = import_files(&[("m.conf", conf)], "m.conf");
    assert!(im.report.complete(), "{}", im.report.render());
    let def = im.def.expect("a filter");
    let got: Vec<(&str, Class)> = def.rules.iter().map(|r| (r.id.as_str(), r.class)).collect();
    assert_eq!(
        got,
        vec![
            ("line-7", Class::Auth),
            ("line-3", Class::Auth),
            ("line-4", Class::Scan)
        ]
    );
    assert!(im.report.notes.iter().any(|n| n.contains("`mode`")));
}

#[test]
fn nofail_multiline_and_missing_address() {
    let conf = r"[Definition]
failregex = ^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>$
        ^Failed (?:<F-NOFAIL>publickey</F-NOFAIL> )?from <HOST>$
        ^<F-MLFFORGET><F-MLFGAINED>Accepted</F-MLFGAINED></F-MLFFORGET> for \S+ from <HOST>$
        ^session closed by peer$
        ^first line <HOST>\nsecond line$
        ^one <HOST><SKIPLINES>two$
        ^kept <F-USER>\S+</F-USER> <F-MLFID>x</F-MLFID> from <HOST>$
maxlines = 2
";
    let im = import_files(&[("n.conf", conf)], "n.conf");
    let def = im.def.clone().expect("a filter");
    let weights: Vec<(u32, &str)> = def
        .rules
        .iter()
        .map(|r| (r.weight, r.id.as_str()))
        .collect();
    assert_eq!(weights, vec![(0, "line-2"), (0, "line-4"), (1, "line-8")]);
    let h = hit(&def, "kept bob x from 192.0.2.3").expect("matches");
    assert_eq!((h.user.as_deref(), h.weight), (Some("bob"), 1));
    let reasons: Vec<(usize, String)> = im
        .report
        .skipped
        .iter()
        .map(|s| (s.pos.line, s.reason.to_string()))
        .collect();
    assert!(
        reasons[0].1.contains("<F-NOFAIL> inside a group"),
        "{reasons:?}"
    );
    assert!(reasons[1].1.contains("no address"), "{reasons:?}");
    assert!(
        reasons[2].1.contains("multi-line pattern (maxlines = 2)"),
        "{reasons:?}"
    );
    assert!(reasons[3].1.contains("<SKIPLINES>"), "{reasons:?}");
    assert_eq!(
        reasons.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![3, 5, 6, 7]
    );
    assert!(im.report.notes.iter().any(|n| n.contains("maxlines = 2")));
    assert!(im.report.notes.iter().any(|n| n.contains("F-MLFID")));
}

#[test]
fn prefix_not_at_start_is_kept() {
    let conf = r"[INCLUDES]
before = common.conf
[Definition]
failregex = ^relay: %(__prefix_line)sdenied <HOST>$
";
    let im = import_files(&[("common.conf", COMMON), ("k.conf", conf)], "k.conf");
    let def = im.def.expect("a filter");
    assert!(def.programs.is_empty());
    let p = def.rules[0].pattern.as_deref().unwrap();
    let p = p.strip_prefix(LEADING_DATE).unwrap();
    assert!(p.starts_with(r"relay: \s*(?:\S+\s+)?"), "{p}");
    assert!(im.report.notes.iter().any(|n| n.contains("was kept")));
    assert!(hit(&def, "relay: denied 192.0.2.8").is_some());
}

#[test]
fn errors() {
    let none = |_: &str| None;
    assert!(matches!(
        import("nope.conf", &none),
        Err(portcullis_fail2ban::Error::Read(_))
    ));
    let e = import("x.conf", &|_: &str| {
        Some("[Definition]\nignoreregex = a\n".into())
    })
    .unwrap_err();
    assert!(e.to_string().contains("no failregex"), "{e}");
    // nothing translatable: no filter, all skipped
    let im = import_files(
        &[("z.conf", "[Definition]\nfailregex = (?=x)<HOST>\n")],
        "z.conf",
    );
    assert!(im.def.is_none() && im.toml.is_none());
    assert_eq!(im.report.skipped.len(), 1);
}

#[test]
fn private_use_characters_are_plain_text() {
    // (the importer once marked prefix-line references with private-use characters)
    let conf = "[Definition]\nfailregex = ^\u{E000}\u{E001} bad <HOST>$\n";
    let im = import_files(&[("p.conf", conf)], "p.conf");
    let def = im.def.expect("a filter");
    assert_eq!(
        def.rules[0].pattern.as_deref(),
        Some(format!("{LEADING_DATE}\u{E000}\u{E001} bad \\[?{{HOST}}\\]?").as_str())
    );
    assert!(im.report.notes.iter().all(|n| !n.contains("__prefix_line")));
    assert!(hit(&def, "\u{E000}\u{E001} bad 192.0.2.4").is_some());
}

#[test]
fn a_programs_own_log_keeps_its_leading_date() {
    // fail2ban cuts the date out before matching; a filter without a syslog prefix and with
    // its default date detection is read from the program's own log, dated by the program
    let conf = "[Definition]\nfailregex = ^\\s*Login failed for <F-USER>.+</F-USER> from <HOST>$\n";
    let im = import_files(&[("own.conf", conf)], "own.conf");
    let def = im.def.expect("a filter");
    for (line, addr) in [
        ("2026-03-03 10:00:01 Login failed for bob from 203.0.113.5", "203.0.113.5"),
        ("2026-03-03T10:00:04+00:00 Login failed for bob from 203.0.113.6", "203.0.113.6"),
        ("2026-03-03T10:00:04.123Z Login failed for bob from 203.0.113.6", "203.0.113.6"),
        ("2026-03-03 10:00:07,123 Login failed for bob from 203.0.113.7", "203.0.113.7"),
        ("[2026-03-03 10:00:07] Login failed for bob from 203.0.113.7", "203.0.113.7"),
        ("[Tue Mar 03 10:00:07.123456 2026] Login failed for x from 203.0.113.8", "203.0.113.8"),
        ("2026/03/03 10:00:01 Login failed for bob from 203.0.113.11", "203.0.113.11"),
        ("03/Mar/2026:10:00:01 +0100 Login failed for bob from 203.0.113.12", "203.0.113.12"),
        ("Login failed for bob from 203.0.113.9", "203.0.113.9"),
        // a user name that holds a date and an address still gives the line's own address
        ("2026-03-03 10:00:01 Login failed for 2026-03-03 10:00:01 x from 198.51.100.1 from 203.0.113.13", "203.0.113.13"),
    ] {
        assert_eq!(hit(&def, line).map(|h| h.addr), Some(addr.to_string()), "{line}");
    }
    assert!(hit(
        &def,
        "2026-03-03 10:00:01 Login succeeded for bob from 203.0.113.5"
    )
    .is_none());
    assert!(im
        .report
        .notes
        .iter()
        .any(|n| n.contains("optional time stamp")));
    // a syslog filter's patterns get no such date: the prefix is stripped before them
    let conf = "[INCLUDES]\nbefore = common.conf\n[Definition]\n_daemon = app\nfailregex = ^%(__prefix_line)sbad <HOST>$\n";
    let im = import_files(&[("common.conf", COMMON), ("s.conf", conf)], "s.conf");
    let p = im.def.expect("a filter").rules[0].pattern.clone().unwrap();
    assert!(!p.contains("[0-9]{4}"), "{p}");
}

#[test]
fn a_local_file_named_alone_is_read_over_its_conf() {
    let conf = "[Definition]\nfailregex = ^stock <HOST>$\n";
    let local = "[Definition]\nfailregex = %(known/failregex)s\n            ^added <HOST>$\n";
    let im = import_files(&[("w.conf", conf), ("w.local", local)], "w.local");
    let def = im.def.expect("a filter");
    assert!(hit(&def, "stock 192.0.2.1").is_some());
    assert!(hit(&def, "added 192.0.2.2").is_some());
    assert!(
        im.report
            .notes
            .iter()
            .any(|n| n.contains("w.local is read over w.conf")),
        "{:?}",
        im.report.notes
    );
    // alone, it is read alone
    let im = import_files(
        &[("v.local", "[Definition]\nfailregex = ^only <HOST>$\n")],
        "v.local",
    );
    assert!(hit(&im.def.expect("a filter"), "only 192.0.2.3").is_some());
}
