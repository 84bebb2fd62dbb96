//! The README's library example is the crate's quick-start doctest, character for
//! character, so that `cargo test` compiles and runs what the README shows.

/// The first fenced code block of `text` that opens with `fence`, without the fences.
fn first_block<'a>(lines: impl Iterator<Item = &'a str>, fence: &str) -> Option<String> {
    let mut block = None::<Vec<&str>>;
    for line in lines {
        match &mut block {
            None if line.trim_end() == fence => block = Some(Vec::new()),
            None => {}
            Some(body) if line.trim_end() == "```" => return Some(body.join("\n")),
            Some(body) => body.push(line),
        }
    }
    None
}

#[test]
fn readme_library_example_is_the_quick_start_doctest() {
    let readme = include_str!("../README.md");
    let lib = include_str!("../src/lib.rs");
    let in_readme = first_block(readme.lines(), "```rust").expect("the README has a ```rust block");
    let doc_lines = lib.lines().filter_map(|line| {
        line.strip_prefix("//! ")
            .or_else(|| (line == "//!").then_some(""))
    });
    let in_lib = first_block(doc_lines, "```").expect("lib.rs has a quick-start doctest");
    assert_eq!(
        in_readme, in_lib,
        "the README's library example and the quick start in src/lib.rs differ"
    );
}

/// The words of a shell command line: spaces separate, single quotes group.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            _ => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// The README's section on `--form` and entries: every `$ matcalc …` line in it is run,
/// and its output must be the lines shown under it (the check's error figure aside).
#[test]
fn readme_forms_section_prints_what_it_shows() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("## Derivatives of matrices by matrices")
        .expect("the README has the section");
    let section = &readme[start..];
    let section = &section[..section[3..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 3)];
    let figure = |text: &str| {
        text.lines()
            .map(|line| match line.find("max rel. error") {
                Some(at) => format!("{}max rel. error …)", &line[..at]),
                None => line.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut commands = 0;
    let mut lines = section.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(command) = line.strip_prefix("    $ matcalc ") else {
            continue;
        };
        let mut shown = Vec::new();
        while let Some(next) = lines.peek() {
            if next.starts_with("    $ ") || !next.starts_with("    ") {
                break;
            }
            shown.push(next.strip_prefix("    ").unwrap_or(next));
            lines.next();
        }
        let words = shell_words(command);
        let args: Vec<&str> = words.iter().map(String::as_str).collect();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_matcalc"))
            .args(&args)
            .output()
            .expect("matcalc runs");
        assert_eq!(
            figure(&String::from_utf8_lossy(&output.stdout)),
            figure(&shown.join("\n")),
            "$ matcalc {command}"
        );
        commands += 1;
    }
    assert!(commands >= 8, "the section shows its commands: {commands}");
}
