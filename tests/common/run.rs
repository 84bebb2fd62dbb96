//! Running the matcalc binary from the tests: once with arguments, or as a REPL with a
//! script piped to its standard input.

use std::io::Write;
use std::process::{Command, Stdio};

/// What one run of the binary gave.
pub struct Run {
    /// The exit status (−1 if a signal ended it).
    pub status: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `matcalc ARGS`.
pub fn matcalc(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_matcalc"))
        .args(args)
        .output()
        .expect("the matcalc binary runs");
    run_of(output)
}

/// Runs `matcalc` (the REPL) with `script` as its standard input.
pub fn repl(script: &str) -> Run {
    with_stdin(&[], script.as_bytes())
}

/// Runs `matcalc ARGS` with `input` (bytes, not necessarily UTF-8) as its standard input.
pub fn with_stdin(args: &[&str], input: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_matcalc"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the matcalc binary runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input)
        .expect("the input is written");
    run_of(child.wait_with_output().expect("it ends"))
}

fn run_of(output: std::process::Output) -> Run {
    Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
