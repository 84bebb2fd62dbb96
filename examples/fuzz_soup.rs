//! A stable stand-in for `cargo fuzz`: random token soup through the whole pipeline
//! (the harness in `fuzz/harness.rs`) for a given number of minutes.
//!
//! `cargo run --release --example fuzz_soup -- MINUTES [SEED]`. Every panic, broken
//! invariant or input slower than 2 s is written to `fuzz/artifacts/soup/` and
//! reported at the end; the exit code is 1 if anything was found.

// A command-line program: it reports on the terminal.
#![allow(clippy::disallowed_macros)]

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[path = "../fuzz/harness.rs"]
mod harness;

fn soup(rng: &mut ChaCha8Rng) -> String {
    let length = match rng.gen_range(0..10) {
        0 => rng.gen_range(0..200),
        _ => rng.gen_range(1..16),
    };
    let mut text = String::new();
    for _ in 0..length {
        if rng.gen_bool(0.02) {
            text.push(char::from_u32(rng.gen_range(0..0x11_0000)).unwrap_or('?'));
        } else {
            text.push_str(harness::TOKENS[rng.gen_range(0..harness::TOKENS.len())]);
        }
    }
    text
}

/// Mostly well-formed expressions, so that the later stages get exercised too.
fn grammar(rng: &mut ChaCha8Rng, depth: u32) -> String {
    let leaves = [
        "W", "x", "y", "A", "B", "α", "β", "2", "½", "I", "z", "X", "b",
    ];
    if depth == 0 || rng.gen_bool(0.25) {
        return leaves[rng.gen_range(0..leaves.len())].to_string();
    }
    let a = grammar(rng, depth - 1);
    match rng.gen_range(0..22) {
        0 => format!("{a} + {}", grammar(rng, depth - 1)),
        1 => format!("{a} − {}", grammar(rng, depth - 1)),
        2 | 3 => format!("{a}{}", grammar(rng, depth - 1)),
        4 => format!("({a})ᵀ"),
        5 => format!("({a})⁻¹"),
        6 => format!("‖{a}‖²"),
        7 => format!("tr({a})"),
        8 => format!("log|{a}|"),
        9 => format!("exp({a})"),
        10 => format!("log({a})"),
        11 => format!("({a}) ⊙ ({})", grammar(rng, depth - 1)),
        12 => format!("−{a}"),
        13 => format!("({a})/{}", grammar(rng, depth - 1)),
        14 => format!("σ({a})"),
        15 => format!("diag({a})"),
        16 => format!("sum({a})"),
        17 => format!("({a})^{}", rng.gen_range(-3..5)),
        18 => format!("|{a}|"),
        19 => format!("tanh({a})"),
        20 => format!("sqrt({a})"),
        _ => format!("{a}ᵀ{}", grammar(rng, depth - 1)),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let minutes: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1.0);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/artifacts/soup");
    std::fs::create_dir_all(&artifacts).expect("cannot create the artifacts folder");
    panic::set_hook(Box::new(|_| {}));

    // A watchdog writes down any input that runs longer than 2 s.
    let current: Arc<Mutex<(String, Instant, u64)>> =
        Arc::new(Mutex::new((String::new(), Instant::now(), 0)));
    {
        let current = current.clone();
        let artifacts = artifacts.clone();
        std::thread::spawn(move || {
            let mut reported = u64::MAX;
            loop {
                std::thread::sleep(Duration::from_millis(250));
                let Ok((text, started, number)) = current.lock().map(|g| g.clone()) else {
                    continue;
                };
                if number != reported && started.elapsed() > Duration::from_secs(2) {
                    reported = number;
                    eprintln!("SLOW (>2 s): {text:?}");
                    let _ = std::fs::write(artifacts.join(format!("slow-{seed}-{number}")), &text);
                }
            }
        });
    }

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut execs: u64 = 0;
    let mut findings = 0u64;
    let mut slowest = (Duration::ZERO, String::new());
    while Instant::now() < deadline {
        let text = if rng.gen_bool(0.5) {
            soup(&mut rng)
        } else {
            let depth = rng.gen_range(1..7);
            let mut text = grammar(&mut rng, depth);
            // Sometimes damage a good expression in one place.
            if rng.gen_bool(0.3) && !text.is_empty() {
                let cut = rng.gen_range(0..text.len());
                if text.is_char_boundary(cut) {
                    text.insert_str(
                        cut,
                        harness::TOKENS[rng.gen_range(0..harness::TOKENS.len())],
                    );
                }
            }
            text
        };
        if let Ok(mut guard) = current.lock() {
            *guard = (text.clone(), Instant::now(), execs);
        }
        let started = Instant::now();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| harness::pipeline(&text)));
        let elapsed = started.elapsed();
        if elapsed > slowest.0 {
            slowest = (elapsed, text.clone());
        }
        let finding = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(broken)) => Some(format!("invariant: {broken}")),
            Err(payload) => Some(format!(
                "panic: {}",
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            )),
        };
        if let Some(finding) = finding {
            findings += 1;
            eprintln!("FOUND {text:?}\n  {finding}");
            let _ = std::fs::write(artifacts.join(format!("crash-{seed}-{execs}")), &text);
        }
        execs += 1;
    }
    println!(
        "soup: {execs} execs in {minutes} min (seed {seed}), {findings} findings, slowest {:?} for {:?}",
        slowest.0, slowest.1
    );
    if findings > 0 {
        std::process::exit(1);
    }
}
