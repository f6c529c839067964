//! `portcullis generate-assets DIR` (hidden): the man pages and shell completions made from
//! the command-line definition itself, so they never disagree with `--help`. The generated
//! files are kept in `dist/` (packaged by `cargo deb`), and a test checks that they are
//! those this binary makes.

use std::path::Path;

use anyhow::Context;
use clap::Command;
use clap_complete::Shell;

/// Writes `DIR/man/portcullis.8`, one `portcullis-SUB.8` per visible subcommand, and
/// `DIR/completions/{portcullis.bash,_portcullis,portcullis.fish}`.
pub fn run(cmd: Command, dir: &Path) -> anyhow::Result<i32> {
    let man = dir.join("man");
    let comp = dir.join("completions");
    for d in [&man, &comp] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let cmd = cmd.version(env!("CARGO_PKG_VERSION"));
    let render = |c: Command, name: &str| -> anyhow::Result<()> {
        let mut out = Vec::new();
        clap_mangen::Man::new(c)
            .section("8")
            .source(format!("portcullis {}", env!("CARGO_PKG_VERSION")))
            .manual("System Administration")
            .render(&mut out)?;
        let p = man.join(format!("{name}.8"));
        std::fs::write(&p, out).with_context(|| format!("writing {}", p.display()))?;
        Ok(())
    };
    render(cmd.clone(), "portcullis")?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("portcullis-{}", sub.get_name());
        render(
            sub.clone().name(name.clone()).display_name(name.clone()),
            &name,
        )?;
    }
    // the completions offer what `--help` shows: a copy without the hidden subcommands
    // (clap_complete's bash and fish output listed `generate-assets`)
    let visible = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect::<Vec<_>>();
    let shown = Command::new(cmd.get_name().to_string())
        .version(env!("CARGO_PKG_VERSION"))
        .about(cmd.get_about().cloned().unwrap_or_default())
        .long_about(cmd.get_long_about().cloned().unwrap_or_default())
        .args(cmd.get_arguments().cloned())
        .disable_help_subcommand(cmd.is_disable_help_subcommand_set())
        .subcommands(visible);
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut c = shown.clone();
        clap_complete::generate_to(shell, &mut c, "portcullis", &comp)
            .with_context(|| format!("writing the {shell} completion"))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every page portcullis(8) names (`portcullis-SUB(8)`) is one of those written: it named
    /// portcullis-help(8) while clap's own `help` subcommand had no page.
    #[test]
    fn every_page_the_main_page_names_is_written() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(super::run(crate::Cli::command(), t.path()).unwrap(), 0);
        let main = std::fs::read_to_string(t.path().join("man/portcullis.8")).unwrap();
        let named: Vec<&str> = main
            .split("portcullis\\-")
            .skip(1)
            .filter_map(|s| s.split_once("(8)").map(|(n, _)| n))
            .filter(|n| !n.contains(char::is_whitespace))
            .collect();
        assert!(named.len() > 10 && named.contains(&"help"), "{named:?}");
        for n in named {
            let page = t
                .path()
                .join(format!("man/portcullis-{}.8", n.replace("\\-", "-")));
            assert!(
                page.exists(),
                "portcullis.8 names {n}(8): no {}",
                page.display()
            );
        }
        // the completions offer what `--help` shows: every visible subcommand, not the
        // hidden ones (they listed `generate-assets`)
        for f in ["portcullis.bash", "_portcullis", "portcullis.fish"] {
            let text = std::fs::read_to_string(t.path().join("completions").join(f)).unwrap();
            assert!(
                text.contains("import-fail2ban") && text.contains("check-config"),
                "{f}"
            );
            assert!(!text.contains("generate-assets"), "{f}");
        }
    }
}
