//! The hostile corpus (`tests/cases/hostile/`): malformed, adversarial, huge and
//! numerically nasty inputs through the command line. Every one must end with exit code
//! 0, 1 or 2 within 2 s, never by a panic (101) or a signal; the numeric edge cases must
//! never claim `check: ok`. Inputs that a command line cannot carry (a NUL byte, more
//! than the kernel's 128 KiB for one argument) go through the library in a thread.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use matcalc::session::{Options, Session};

/// The longest any one case may take.
const TIME_LIMIT: Duration = Duration::from_secs(2);

/// Workers running cases at once; CI has two cores.
const WORKERS: usize = 2;

/// The longest single argument passed on the command line; longer ones go through the
/// library (Linux refuses arguments over 128 KiB).
const MAX_ARGUMENT: usize = 120 * 1024;

/// What a case runs and what it must not answer.
#[derive(Clone, Debug)]
struct Case {
    /// File and line, for failure messages.
    origin: String,
    /// `None` for `simplify`, `Some(variable)` for `diff --wrt variable --check`.
    wrt: Option<String>,
    /// Whether exit 0 with `check: ok` is forbidden.
    forbid_ok: bool,
    /// The expression.
    expr: String,
    /// Extra command-line arguments.
    extra: Vec<String>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/hostile")
}

/// Decodes `\n`, `\t`, `\r`, `\0`, `\\` and `\u{XXXX}`; anything else stays as written.
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('n') => {
                chars.next();
                out.push('\n');
            }
            Some('t') => {
                chars.next();
                out.push('\t');
            }
            Some('r') => {
                chars.next();
                out.push('\r');
            }
            Some('0') => {
                chars.next();
                out.push('\0');
            }
            Some('\\') => {
                chars.next();
                out.push('\\');
            }
            Some('u') => {
                let rest: String = chars.clone().collect();
                let code = rest
                    .strip_prefix("u{")
                    .and_then(|r| r.split_once('}'))
                    .and_then(|(hex, _)| u32::from_str_radix(hex, 16).ok())
                    .and_then(char::from_u32);
                match code {
                    Some(decoded) => {
                        let skip = rest.find('}').map_or(0, |i| i + 1);
                        for _ in 0..skip {
                            chars.next();
                        }
                        out.push(decoded);
                    }
                    None => out.push('\\'),
                }
            }
            _ => out.push('\\'),
        }
    }
    out
}

fn load_corpus() -> Vec<Case> {
    let dir = corpus_dir();
    let mut cases = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/cases/hostile exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable corpus file");
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split('\t');
            let mode = fields.next().unwrap_or_default();
            let expr = unescape(fields.next().unwrap_or_default());
            let extra: Vec<String> = fields.map(unescape).collect();
            let (wrt, forbid_ok) = match mode.split_once(':') {
                Some(("diff", variable)) => (Some(unescape(variable)), false),
                Some(("nook", variable)) => (Some(unescape(variable)), true),
                None if mode == "simplify" => (None, false),
                _ => panic!("{name}:{}: unknown mode {mode:?}", number + 1),
            };
            cases.push(Case {
                origin: format!("{name}:{}", number + 1),
                wrt,
                forbid_ok,
                expr,
                extra,
            });
        }
    }
    let mut huge: Vec<PathBuf> = std::fs::read_dir(dir.join("huge"))
        .expect("tests/cases/hostile/huge exists")
        .map(|entry| entry.expect("readable entry").path())
        .collect();
    huge.sort();
    for file in huge {
        let expr = std::fs::read_to_string(&file).expect("readable corpus file");
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        for wrt in [None, Some("x".to_string())] {
            cases.push(Case {
                origin: format!(
                    "huge/{name} ({})",
                    if wrt.is_some() { "diff" } else { "simplify" }
                ),
                wrt,
                forbid_ok: false,
                expr: expr.clone(),
                extra: vec![],
            });
        }
    }
    cases
}

fn arguments(case: &Case) -> Vec<String> {
    let mut args = match &case.wrt {
        None => vec!["simplify".to_string(), case.expr.clone()],
        Some(wrt) => vec![
            "diff".to_string(),
            case.expr.clone(),
            "--wrt".to_string(),
            wrt.clone(),
            "--check".to_string(),
        ],
    };
    args.extend(case.extra.iter().cloned());
    args
}

/// Runs one case through the binary; returns why it failed, if it did.
fn run_command(case: &Case) -> Result<(), String> {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_matcalc"))
        .args(arguments(case))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot start matcalc: {error}"))?;
    // Drain the pipes in threads so that a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > TIME_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("took longer than {TIME_LIMIT:?}; killed"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => return Err(format!("cannot wait for matcalc: {error}")),
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let Some(code) = status.code() else {
        return Err(format!("killed by a signal ({status}); stderr: {stderr}"));
    };
    if !(0..=2).contains(&code) {
        return Err(format!("exit code {code}; stderr: {stderr}"));
    }
    if case.forbid_ok && (code == 0 || stdout.contains("check: ok")) {
        return Err(format!(
            "the check cannot be done honestly, yet exit {code} with: {stdout}"
        ));
    }
    Ok(())
}

/// Runs one case through the library in a thread (for text no command line carries).
fn run_library(case: &Case) -> Result<(), String> {
    let case = case.clone();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(|| {
            let mut session = Session::new();
            let mut options = Options::standard();
            options.check = true;
            let mut extra = case.extra.iter();
            while let Some(flag) = extra.next() {
                let value = extra.next().map(String::as_str).unwrap_or_default();
                if flag == "--decl" && session.declare(value).is_err() {
                    return None;
                }
            }
            match &case.wrt {
                None => session.simplify(&case.expr, &options).err().map(|_| false),
                Some(wrt) => match session.derivative(&case.expr, &[wrt.as_str()], &options) {
                    Ok(results) => Some(
                        results
                            .iter()
                            .any(|r| r.check.as_ref().is_some_and(|v| v.is_pass())),
                    ),
                    Err(_) => None,
                },
            }
        });
        let _ = sender.send(outcome.map_err(|_| ()));
    });
    match receiver.recv_timeout(TIME_LIMIT) {
        Err(_) => Err(format!("took longer than {TIME_LIMIT:?} in the library")),
        Ok(Err(())) => Err("panicked in the library".to_string()),
        Ok(Ok(passed)) if case.forbid_ok && passed == Some(true) => {
            Err("the check cannot be done honestly, yet it passed".to_string())
        }
        Ok(Ok(_)) => Ok(()),
    }
}

fn run(case: &Case) -> Result<(), String> {
    let carriable = arguments(case)
        .iter()
        .all(|a| !a.contains('\0') && a.len() <= MAX_ARGUMENT);
    if carriable {
        run_command(case)
    } else {
        run_library(case)
    }
}

#[test]
// The timings are the report the issue asks for; they go to the test log.
#[allow(clippy::disallowed_macros)]
fn hostile_corpus_ends_cleanly_and_promptly() {
    let cases = load_corpus();
    assert!(cases.len() >= 200, "only {} hostile cases", cases.len());
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let slowest = Mutex::new((Duration::ZERO, String::new()));
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(index) else {
                    break;
                };
                let started = Instant::now();
                let outcome = run(case);
                let elapsed = started.elapsed();
                if let Ok(mut slowest) = slowest.lock() {
                    if elapsed > slowest.0 {
                        *slowest = (elapsed, case.origin.clone());
                    }
                }
                if let Err(why) = outcome {
                    let shown: String = case.expr.chars().take(80).collect();
                    failures
                        .lock()
                        .expect("failure list")
                        .push(format!("{} {shown:?}: {why}", case.origin));
                }
            });
        }
    });
    let (time, origin) = slowest.into_inner().expect("slowest");
    eprintln!("{} hostile cases; slowest {time:?} ({origin})", cases.len());
    let failures = failures.into_inner().expect("failure list");
    assert!(
        failures.is_empty(),
        "{} of {} hostile cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn unescape_decodes_the_corpus_escapes() {
    assert_eq!(unescape(r"a\u{445}\0\n\\b"), "aх\0\n\\b");
    assert_eq!(unescape(r"\q\u{zz}"), r"\q\u{zz}");
}
