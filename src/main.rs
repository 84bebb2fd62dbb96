//! The `matcalc` binary: argv to [`matcalc::cli::run`], its outcome to an exit code.

fn main() {
    std::process::exit(matcalc::cli::run(std::env::args_os()));
}
