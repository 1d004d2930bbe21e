//! The `mmview.*` keys of the kernel command line.

use std::path::PathBuf;

/// What to run, from `mmview.run=<program>` and `mmview.args=a,b`.
#[derive(Debug, PartialEq, Eq)]
pub struct Config {
    /// The program: `tests` (the default), `demo`, `bench`, or a path.
    pub run: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl Config {
    /// Reads the keys from a kernel command line; later keys win.
    pub fn from_cmdline(cmdline: &str) -> Config {
        let mut config = Config {
            run: "tests".to_string(),
            args: Vec::new(),
        };
        for word in split_words(cmdline) {
            if let Some(run) = word.strip_prefix("mmview.run=") {
                if !run.is_empty() {
                    config.run = run.to_string();
                }
            } else if let Some(args) = word.strip_prefix("mmview.args=") {
                config.args = args
                    .split(',')
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect();
            }
        }
        config
    }

    /// The executable: `/bin/mmview-<run>`, or `run` itself if it is a path.
    pub fn program(&self) -> PathBuf {
        if self.run.contains('/') {
            PathBuf::from(&self.run)
        } else {
            PathBuf::from(format!("/bin/mmview-{}", self.run))
        }
    }
}

/// Splits a command line at spaces outside double quotes, dropping the
/// quotes, as the kernel does (`mmview.args="a b"` is one word, `a b`).
fn split_words(cmdline: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in cmdline.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_the_tests() {
        let c = Config::from_cmdline("console=ttyS0 quiet\n");
        assert_eq!(
            c,
            Config {
                run: "tests".into(),
                args: vec![]
            }
        );
        assert_eq!(c.program(), PathBuf::from("/bin/mmview-tests"));
    }

    #[test]
    fn reads_program_and_args() {
        let c = Config::from_cmdline(
            "console=ttyAMA0 mmview.run=bench mmview.args=--rounds,3 panic=-1",
        );
        assert_eq!(c.run, "bench");
        assert_eq!(c.args, vec!["--rounds", "3"]);
        assert_eq!(c.program(), PathBuf::from("/bin/mmview-bench"));
        let c = Config::from_cmdline("mmview.run=/bin/sh mmview.args=\"-c,echo hi\"");
        assert_eq!(c.program(), PathBuf::from("/bin/sh"));
        assert_eq!(c.args, vec!["-c", "echo hi"]);
        assert_eq!(
            Config::from_cmdline("mmview.args=").args,
            Vec::<String>::new()
        );
    }
}
