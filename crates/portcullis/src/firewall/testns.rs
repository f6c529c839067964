//! A network namespace for the backends' tests that run their tools as root: made with a
//! name of its own, loopback up, deleted on drop (also when the test fails).

use std::process::Command;

pub(crate) struct TestNs(pub String);

impl TestNs {
    /// `pc-<what>-<pid>`: fails the test unless it can be made (root).
    pub fn new(what: &str) -> TestNs {
        let ns = TestNs(format!("pc-{what}-{}", std::process::id()));
        assert!(
            Command::new("ip")
                .args(["netns", "add", &ns.0])
                .status()
                .unwrap()
                .success(),
            "cannot make network namespace {} (root?)",
            ns.0
        );
        ns.run("ip", &["link", "set", "lo", "up"]);
        ns
    }

    /// `program args` inside; its stdout; fails the test when it fails.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0, program])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{program} {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the backends put before their programs to run them inside.
    pub fn prefix(&self) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.0.clone()]
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}
