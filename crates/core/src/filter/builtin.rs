//! The built-in filter library: the files of `filters/`, embedded at build time.

include!(concat!(env!("OUT_DIR"), "/builtin_filters.rs"));

/// A built-in filter: its name, its TOML source and its sample log.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// File stem, which is also the filter's name.
    pub name: &'static str,
    /// The TOML source.
    pub source: &'static str,
    /// The sample log with expectations (see [`super::sample`]).
    pub sample: &'static str,
}

/// All built-in filters, sorted by name.
pub fn all() -> &'static [Builtin] {
    BUILTIN
}

/// The built-in filter called `name`.
pub fn get(name: &str) -> Option<&'static Builtin> {
    BUILTIN.iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Filter;

    #[test]
    fn every_builtin_compiles_and_is_named_after_its_file() {
        assert!(!all().is_empty());
        for b in all() {
            let f = Filter::from_toml(b.source, b.name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(f.name, b.name, "filter name must equal its file name");
            assert!(!f.description.is_empty(), "{}: description missing", b.name);
        }
    }

    #[test]
    fn every_builtin_passes_its_samples() {
        let ctx = crate::time::TimeContext {
            now: 1_795_000_000_000,
            local_offset: 0,
        };
        let mut failures = Vec::new();
        for b in all() {
            let f = Filter::from_toml(b.source, b.name).unwrap();
            assert!(
                !b.sample.is_empty(),
                "{}: no sample log filters/{}.log",
                b.name,
                b.name
            );
            let cases = crate::filter::sample::parse(b.sample).unwrap();
            assert!(
                cases
                    .iter()
                    .any(|c| c.expect == crate::filter::sample::Expect::None),
                "{}: samples need lines that must not match",
                b.name
            );
            if let Err(e) = crate::filter::sample::check(&f, b.sample, &ctx) {
                failures.push(format!("{}:\n{}", b.name, e.join("\n")));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }
}
