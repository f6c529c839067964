//! `portcullis import-fail2ban` (placeholder until the importer lands; the helper replaces this file).
pub fn run(_path: &std::path::Path, _out: Option<&std::path::Path>) -> anyhow::Result<i32> {
    anyhow::bail!("import-fail2ban is not built yet")
}
