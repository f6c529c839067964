//! `portcullis check-config` on bad backend settings: each error names the file, the line
//! and the key, or says what to install or change. No root needed.

mod common;

use std::path::Path;

/// Runs check-config on `text`; returns (success, stdout + stderr).
fn check(dir: &Path, text: &str) -> (bool, String) {
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, text).unwrap();
    common::check_config(&path)
}

#[test]
fn bad_backend_configurations_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("portcullis.toml").display().to_string();
    let jail = "[[jail]]\nname = \"sshd\"\nlogs = [\"/var/log/auth.log\"]\n";
    let cases: Vec<(String, String)> = vec![
        (
            format!("[firewall]\nbackend = \"ipfw\"\n{jail}"),
            format!("{file}:2: `firewall.backend`: \"ipfw\" is not a known backend"),
        ),
        (
            format!("{jail}backend = [\"nftables\", \"hostsdeny\"]\n"),
            format!("{file}:4: `backend`: \"hostsdeny\" is fail2ban's banaction; in Portcullis it is backend = \"hosts-deny\""),
        ),
        (
            format!("[firewall]\nbackend = \"command\"\n[firewall.command]\nban = [\"/bin/echo\", \"{{addr}}\", \"{{user}}\"]\n{jail}"),
            format!("{file}:4: `firewall.command.ban`: unknown placeholder {{user}}"),
        ),
        (
            format!("[firewall]\nbackend = \"command\"\n[firewall.command]\nban = [\"block\", \"{{addr}}\"]\n{jail}"),
            format!("{file}:4: `firewall.command.ban`: the program \"block\" must be an absolute path"),
        ),
        (
            format!("[firewall]\nbackend = \"command\"\n[firewall.command]\nban = [\"/nonexistent/portcullis/block\", \"{{addr}}\"]\n{jail}"),
            "/nonexistent/portcullis/block does not exist or is not executable".to_string(),
        ),
        (
            format!("[firewall]\nbackend = \"command\"\n{jail}"),
            "needs [firewall.command] ban".to_string(),
        ),
        (
            format!("[firewall]\nbackend = \"hosts-deny\"\n[firewall.hosts_deny]\npath = \"/nonexistent/portcullis/hosts.deny\"\n{jail}"),
            "cannot write in /nonexistent/portcullis".to_string(),
        ),
        (
            format!("[firewall]\nbackend = \"route\"\n[[ratelimit]]\nname = \"ssh\"\nports = [22]\nhits = 5\nseconds = 60\n{jail}"),
            "[[ratelimit]] needs [firewall] backend = \"nftables\"".to_string(),
        ),
        (
            format!("[firewall.iptables]\nhooks = [\"PREROUTING\"]\n{jail}"),
            format!("{file}:2: `firewall.iptables.hooks`"),
        ),
        // (a review: each rewrote the shared chain whole, and the other's bans stopped
        // blocking)
        (
            format!("[firewall]\nbackend = \"iptables\"\n{jail}[[jail]]\nname = \"app\"\nfilter = \"sshd\"\nlogs = [\"/var/log/app.log\"]\nbackend = [\"ipset\"]\n"),
            "backends \"iptables\" and \"ipset\" cannot both be used".to_string(),
        ),
    ];
    for (text, says) in cases {
        let (ok, out) = check(d, &text);
        assert!(!ok && out.contains(&says), "{text}\n=> {out}");
    }
    // and a good one names its backends
    let (ok, out) = check(
        d,
        &format!("[firewall]\nbackend = \"command\"\n[firewall.command]\nban = [\"/bin/true\", \"{{addr}}\"]\n{jail}backend = [\"null\", \"command\"]\n"),
    );
    assert!(ok, "{out}");
    assert!(out.contains("firewall command+null"), "{out}");
    // `[firewall] backend = "null"` is a dry run of the jails' own backends too
    let (ok, out) = check(
        d,
        &format!("[firewall]\nbackend = \"null\"\n[firewall.command]\nban = [\"/bin/true\", \"{{addr}}\"]\n{jail}backend = [\"null\", \"command\"]\n"),
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("firewall null\n") && out.contains("is a dry run of everything"),
        "{out}"
    );
}
