//! The configurable limits, one table for every face: the command line's `--max-depth`
//! flags, the REPL's `:limits max-depth 1000` and `matcalc serve` all read and set them
//! through [`LIMITS`], so a limit added here is a flag, a REPL setting and a server
//! setting at once.
//!
//! The parser's limits make bad input an error (exit 2, HTTP 400) whose hint names the
//! flag; the e-graph's limits only stop simplification early, which the JSON output
//! reports as `"saturated": false`.

use std::time::{Duration, Instant};

use crate::session::Options;

/// One limit: its name, what it bounds, and how to read and write it in [`Options`].
pub struct Limit {
    /// The flag without its dashes, also the REPL's name: `max-depth`.
    pub name: &'static str,
    /// What it bounds: `the longest expression or definition`.
    pub what: &'static str,
    /// The unit of its value, if any: `bytes`.
    pub unit: &'static str,
    /// The largest value accepted; more would exhaust memory or the stack, or never end.
    pub ceiling: u64,
    /// The limit's value in `options`.
    pub get: fn(&Options) -> u64,
    /// Sets the limit in `options` to a value already in `1..=ceiling`.
    pub set: fn(&mut Options, u64),
}

/// `usize` to `u64`, saturating (no platform has a wider `usize`, but say what happens).
fn wide(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// `u64` to `usize`, saturating on 32-bit targets.
fn narrow(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// Every configurable limit.
#[rustfmt::skip]
pub const LIMITS: [Limit; 8] = [
    Limit { name: "max-input",      unit: "bytes", ceiling: 1_000_000,  what: "the longest expression or definition",
            get: |o| wide(o.parse_limits.max_input_len), set: |o, v| o.parse_limits.max_input_len = narrow(v) },
    Limit { name: "max-depth",      unit: "",      ceiling: 2_000,      what: "the deepest nesting (a flat chain counts once)",
            get: |o| wide(o.parse_limits.max_depth),     set: |o, v| o.parse_limits.max_depth = narrow(v) },
    Limit { name: "max-exponent",   unit: "",      ceiling: 1_000,      what: "the largest exponent magnitude",
            get: |o| o.parse_limits.max_exponent,        set: |o, v| o.parse_limits.max_exponent = v },
    Limit { name: "max-symbols",    unit: "",      ceiling: 100_000,    what: "the most distinct variables",
            get: |o| wide(o.parse_limits.max_symbols),   set: |o, v| o.parse_limits.max_symbols = narrow(v) },
    Limit { name: "max-nodes",      unit: "",      ceiling: 10_000_000, what: "the most e-graph nodes, and factors of an index form",
            get: |o| wide(o.limits.nodes),               set: |o, v| o.limits.nodes = narrow(v) },
    Limit { name: "max-iterations", unit: "",      ceiling: 100_000,    what: "the most rewrite iterations",
            get: |o| wide(o.limits.iterations),          set: |o, v| o.limits.iterations = narrow(v) },
    Limit { name: "time-limit",     unit: "ms",    ceiling: 3_600_000,  what: "the most time a computation, its check included, may take",
            get: |o| u64::try_from(o.limits.time.as_millis()).unwrap_or(u64::MAX),
            set: |o, v| o.limits.time = Duration::from_millis(v) },
    Limit { name: "patience",       unit: "",      ceiling: 100_000,    what: "iterations in a row without a smaller form",
            get: |o| wide(o.limits.patience),            set: |o, v| o.limits.patience = narrow(v) },
];

/// The row of the limit `name`, or an error listing the names.
///
/// # Examples
/// ```
/// let limit = matcalc::limits::find("max-depth")?;
/// assert_eq!(limit.ceiling, 2_000);
/// assert!(matcalc::limits::find("depth").is_err());
/// # Ok::<(), String>(())
/// ```
pub fn find(name: &str) -> Result<&'static Limit, String> {
    LIMITS
        .iter()
        .find(|limit| limit.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = LIMITS.iter().map(|limit| limit.name).collect();
            format!(
                "unknown limit `{name}`; the limits are {}",
                names.join(", ")
            )
        })
}

impl Limit {
    /// Reads a value of this limit: a whole number from 1 to its ceiling.
    pub fn parse(&self, text: &str) -> Result<u64, String> {
        let out_of_range = || format!("must be a whole number from 1 to {}", self.ceiling);
        let value = text.trim().parse::<u64>().map_err(|_| out_of_range())?;
        if !(1..=self.ceiling).contains(&value) {
            return Err(out_of_range());
        }
        Ok(value)
    }

    /// The standard value, which `--help` shows as the flag's default.
    pub fn standard(&self) -> u64 {
        (self.get)(&Options::standard())
    }
}

/// The standard value of the limit `name` (1 for a name that is not a limit).
pub fn standard(name: &str) -> u64 {
    find(name).map(Limit::standard).unwrap_or(1)
}

/// Reads a value of the limit `name`, as the flag `--NAME` does.
pub fn parse(name: &str, text: &str) -> Result<u64, String> {
    find(name)?.parse(text)
}

/// The current value of the limit `name` in `options`.
pub fn get(options: &Options, name: &str) -> Option<u64> {
    find(name).ok().map(|limit| (limit.get)(options))
}

/// Sets the limit `name` in `options` from its text, as `:limits max-depth 1000` does.
///
/// # Examples
/// ```
/// use matcalc::session::Options;
/// let mut options = Options::standard();
/// matcalc::limits::set(&mut options, "max-depth", "1000")?;
/// assert_eq!(options.parse_limits.max_depth, 1000);
/// assert!(matcalc::limits::set(&mut options, "max-depth", "0").is_err());
/// # Ok::<(), String>(())
/// ```
pub fn set(options: &mut Options, name: &str, text: &str) -> Result<(), String> {
    let limit = find(name)?;
    let value = limit
        .parse(text)
        .map_err(|message| format!("{name}: {message}"))?;
    (limit.set)(options, value);
    Ok(())
}

/// Every limit with its current value, one a line, as `:limits` shows them.
pub fn describe(options: &Options) -> String {
    LIMITS
        .iter()
        .map(|limit| {
            let unit = if limit.unit.is_empty() {
                String::new()
            } else {
                format!(" {}", limit.unit)
            };
            format!(
                "{:<15} {:>9}{unit:<6} {} (1 to {})\n",
                limit.name,
                (limit.get)(options),
                limit.what,
                limit.ceiling
            )
        })
        .collect()
}

/// The share of the time limit that simplification leaves to the numeric check: half.
/// Saturation is the one stage that fills the time it is given, so with `--check` it
/// ends by half the limit (less a fifth of that for extraction), and the check of a
/// long derivative still has time to read it back and take its finite differences.
pub const CHECK_SHARE: f64 = 0.5;

/// When a computation must end: the moment it began plus the time limit
/// (`--time-limit`), which bounds the whole computation, the numeric check included.
/// Differentiation and simplification share it: saturation takes most of what it is
/// given and stops early (`"saturated": false`); naming past it stops and the compute
/// form keeps the bracketing extraction gave it. With `--check`, simplification is given
/// the deadline [`Deadline::leaving`] [`CHECK_SHARE`] of the limit, and the check has
/// what remains: past the deadline, reading the printed text back and finite
/// differences stop and the check is inconclusive, saying so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// The moment, or `None` for no deadline at all.
    at: Option<Instant>,
}

impl Deadline {
    /// The deadline of a computation starting now with the time limit `limit`.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let deadline = matcalc::limits::Deadline::starting_now(Duration::from_secs(60));
    /// assert!(!deadline.passed());
    /// assert!(matcalc::limits::Deadline::starting_now(Duration::ZERO).passed());
    /// ```
    pub fn starting_now(limit: Duration) -> Deadline {
        let now = Instant::now();
        Deadline {
            at: now.checked_add(limit),
        }
    }

    /// No deadline: for callers that bound the work otherwise (tests, benchmarks).
    pub fn never() -> Deadline {
        Deadline { at: None }
    }

    /// The moment the computation must end by, if there is one.
    pub fn at(&self) -> Option<Instant> {
        self.at
    }

    /// Whether that moment has come.
    pub fn passed(&self) -> bool {
        self.at.is_some_and(|at| Instant::now() >= at)
    }

    /// The time left, zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.map_or(Duration::MAX, |at| {
            at.saturating_duration_since(Instant::now())
        })
    }

    /// An earlier deadline for a stage that must leave `fraction` of what is left to
    /// the stages after it (saturation leaves room for extraction and the check).
    pub fn leaving(&self, fraction: f64) -> Deadline {
        let Some(at) = self.at else {
            return *self;
        };
        let keep = self.remaining().mul_f64(fraction.clamp(0.0, 1.0));
        Deadline {
            at: at.checked_sub(keep).or(Some(at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_reads_back_what_it_sets() {
        for limit in &LIMITS {
            let mut options = Options::standard();
            let value = limit.ceiling.min(limit.standard() + 7);
            (limit.set)(&mut options, value);
            assert_eq!((limit.get)(&options), value, "{}", limit.name);
            assert!(limit.standard() <= limit.ceiling, "{}", limit.name);
        }
    }

    #[test]
    fn values_outside_one_to_the_ceiling_are_errors() {
        let limit = find("max-exponent").unwrap();
        assert_eq!(limit.parse(" 12 "), Ok(12));
        for text in ["0", "1001", "-1", "x", ""] {
            assert!(limit.parse(text).is_err(), "{text}");
        }
    }
}
