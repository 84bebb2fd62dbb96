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
