//! The `matcalc` binary: argv to [`matcalc::cli::run`], its outcome to an exit code.

/// The stack of the thread that runs the command. Every stage walks the expression tree,
/// which may be as deep as [`matcalc::parse::MAX_TREE_DEPTH`], and a derivative's deeper;
/// an unoptimised build takes several times a release build's stack for each level. The
/// memory is reserved, not used, until a deep tree needs it.
const STACK: usize = 256 * 1024 * 1024;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let worker = std::thread::Builder::new()
        .name("matcalc".to_string())
        .stack_size(STACK)
        .spawn(move || matcalc::cli::run(args));
    let code = match worker {
        // A panic has printed its message; exit as the main thread's panic would.
        Ok(handle) => handle.join().unwrap_or(101),
        Err(_) => matcalc::cli::run(std::env::args_os()),
    };
    std::process::exit(code);
}
