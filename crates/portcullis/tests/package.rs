//! The Debian package and its generated parts (issue 14: "Debian package, man pages,
//! completions").
//!
//! * `dist/man/*.8` and `dist/completions/*` are what `portcullis generate-assets` makes
//!   from the command line (a changed option must come with regenerated pages).
//! * `cargo deb -p portcullis` builds a package that installs, gives `man -w portcullis`,
//!   `portcullis --version` and a valid conffile, and keeps the configuration after
//!   `dpkg -r`. It is installed into a throw-away copy of this machine: an overlay of `/`
//!   (upper layer on a tmpfs) in a private mount namespace, entered with chroot, so the real
//!   system's dpkg database, /etc and /usr are never touched. Needs root, `unshare` and
//!   cargo-deb (test.sh installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn dist_man_pages_and_completions_are_generated_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["generate-assets"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let dist = root().join("dist");
    let mut stale = Vec::new();
    for sub in ["man", "completions"] {
        let made: Vec<_> = std::fs::read_dir(tmp.path().join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(!made.is_empty());
        for name in &made {
            let want = std::fs::read(tmp.path().join(sub).join(name)).unwrap();
            let have = std::fs::read(dist.join(sub).join(name)).unwrap_or_default();
            if want != have {
                stale.push(format!("dist/{sub}/{}", name.to_string_lossy()));
            }
        }
        // nothing in dist/ that the CLI no longer makes (the hand-written page aside)
        for e in std::fs::read_dir(dist.join(sub)).unwrap() {
            let n = e.unwrap().file_name();
            if !made.contains(&n) && n != "portcullis.toml.5" {
                stale.push(format!(
                    "dist/{sub}/{} (no longer generated)",
                    n.to_string_lossy()
                ));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "out of date: {stale:?}; run `cargo run -p portcullis -- generate-assets dist`"
    );
}

/// Runs `script` with sh as root in a private mount namespace; fails with its output.
fn sh(script: &str) -> String {
    // a network namespace of its own too: the package's removal script deletes the nftables
    // table `inet portcullis`, which must be the copy's, never this machine's (a review
    // found a developer's live bans dropped by the test)
    let o = Command::new("unshare")
        .args([
            "--mount",
            "--net",
            "--propagation",
            "private",
            "sh",
            "-ec",
            script,
        ])
        .output()
        .expect("unshare (util-linux)");
    let out = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "script failed:\n{out}");
    out
}

#[test]
#[ignore = "needs root: installs the package into an overlay of / in a mount namespace"]
fn the_debian_package_installs_runs_and_keeps_its_conffile() {
    let out = tempfile::tempdir().unwrap();
    // the package, built as the README says
    let o = Command::new("cargo")
        .current_dir(root())
        // the README's command with the dev profile: the package's layout, scripts and
        // conffile are what is tested here, and the test build has already compiled the dev
        // binary (an optimised build took 3 to 6 minutes of ./test.sh's critical path)
        .args([
            "deb",
            "-p",
            "portcullis",
            "--locked",
            "--profile",
            "dev",
            "-o",
        ])
        .arg(out.path())
        .output()
        .expect("cargo");
    assert!(
        o.status.success(),
        "`cargo deb -p portcullis` failed (test.sh installs cargo-deb): {}",
        text(&o.stderr)
    );
    let deb = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("a .deb");
    let listing = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .unwrap();
    let listing = text(&listing.stdout);
    for f in [
        "./usr/sbin/portcullis",
        "./etc/portcullis/portcullis.toml",
        "./etc/portcullis/portcullis.d/",
        "./usr/lib/systemd/system/portcullis.service",
        "./usr/share/man/man8/portcullis.8.gz",
        "./usr/share/man/man5/portcullis.toml.5.gz",
        "./usr/share/bash-completion/completions/portcullis",
        "./usr/share/zsh/vendor-completions/_portcullis",
        "./usr/share/fish/vendor_completions.d/portcullis.fish",
    ] {
        assert!(listing.contains(f), "{f} not in the package:\n{listing}");
    }
    let info = Command::new("dpkg-deb")
        .arg("-I")
        .arg(&deb)
        .arg("conffiles")
        .output()
        .unwrap();
    assert!(
        text(&info.stdout).contains("/etc/portcullis/portcullis.toml"),
        "not a conffile"
    );
    let unit = std::fs::read_to_string(root().join("dist/portcullis.service")).unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("ExecStart=/usr/sbin/portcullis run"));

    // a throw-away copy of this machine: / overlaid, upper layer on a tmpfs
    let t = tempfile::tempdir().unwrap();
    let t = t.path().display();
    let deb = deb.display();
    let log = sh(&format!(
        r##"
mount -t tmpfs tmpfs {t}
mkdir {t}/upper {t}/work {t}/root
mount -t overlay overlay -o lowerdir=/,upperdir={t}/upper,workdir={t}/work {t}/root
mount --rbind /dev {t}/root/dev
mount -t proc proc {t}/root/proc
mount -t tmpfs tmpfs {t}/root/run
mount -t tmpfs tmpfs {t}/root/tmp
cp {deb} {t}/root/tmp/portcullis.deb
# no service may start in the copy (and none would: this machine's init is not systemd)
printf '#!/bin/sh\nexit 101\n' > {t}/root/usr/sbin/policy-rc.d && chmod +x {t}/root/usr/sbin/policy-rc.d
# a package installed on the real system must not hide the test's
chroot {t}/root sh -ec '
  dpkg --purge portcullis >/dev/null 2>&1 || true
  rm -rf /etc/portcullis
  dpkg -i /tmp/portcullis.deb
  echo "man: $(man -w portcullis)"
  echo "man5: $(man -w 5 portcullis.toml)"
  echo "version: $(/usr/sbin/portcullis --version)"
  /usr/sbin/portcullis check-config --config /etc/portcullis/portcullis.toml
  echo "# an admin edit" >> /etc/portcullis/portcullis.toml
  dpkg -r portcullis
  test ! -e /usr/sbin/portcullis && echo "binary: removed"
  grep -q "an admin edit" /etc/portcullis/portcullis.toml && echo "conffile: kept"
  dpkg -s portcullis | grep "^Status:"
  dpkg --purge portcullis
  test ! -e /etc/portcullis/portcullis.toml && echo "purge: conffile gone"
'
"##
    ));
    // the maintainer scripts run clean (a comment naming the debhelper token was filled in
    // too, and dpkg printed "stands.: not found" at every removal)
    assert!(!log.contains("not found"), "{log}");
    for want in [
        "man: /usr/share/man/man8/portcullis.8.gz",
        "man5: /usr/share/man/man5/portcullis.toml.5.gz",
        &format!("version: portcullis {}", env!("CARGO_PKG_VERSION")),
        "binary: removed",
        "conffile: kept",
        "Status: deinstall ok config-files",
        "purge: conffile gone",
    ] {
        assert!(log.contains(want), "missing {want:?} in:\n{log}");
    }
}
