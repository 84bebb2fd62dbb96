//! Diagnostics: one shape for every error a person sees, rendered with the source line and
//! a caret under the span, rustc style. Columns and carets count characters, not bytes.

use crate::expr::Span;

/// A secondary mark under the source, with a short note (`n×1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What to say there.
    pub note: String,
}

/// An error as a person reads it: a message, where, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// One line saying what is wrong.
    pub message: String,
    /// The main place, if the error has one.
    pub primary: Option<Label>,
    /// Other places worth pointing at.
    pub secondary: Vec<Label>,
    /// Suggestions, each printed as `= hint: …`.
    pub hints: Vec<String>,
}

impl Diagnostic {
    /// A diagnostic with a message and nothing else.
    pub fn new(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            primary: None,
            secondary: vec![],
            hints: vec![],
        }
    }

    /// Points at `span` with an optional note.
    pub fn at(mut self, span: Span, note: impl Into<String>) -> Diagnostic {
        self.primary = Some(Label {
            span,
            note: note.into(),
        });
        self
    }

    /// Adds a secondary label.
    pub fn label(mut self, span: Span, note: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label {
            span,
            note: note.into(),
        });
        self
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hints.push(hint.into());
        self
    }

    /// Renders the diagnostic against the source text it refers to.
    ///
    /// # Examples
    /// ```
    /// use matcalc::diag::Diagnostic;
    /// use matcalc::expr::Span;
    /// let text = Diagnostic::new("unknown function `sigmod`")
    ///     .at(Span::new(0, 6), "")
    ///     .hint("did you mean `sigma`?")
    ///     .render("sigmod(z)");
    /// assert!(text.contains("^^^^^^"));
    /// ```
    pub fn render(&self, source: &str) -> String {
        self.render_as("error", source)
    }

    /// Renders the diagnostic as [`Diagnostic::render`] does, as a note rather than an
    /// error: what explains a result (an inconclusive check) rather than refuses input.
    pub fn render_note(&self, source: &str) -> String {
        self.render_as("note", source)
    }

    fn render_as(&self, severity: &str, source: &str) -> String {
        let mut out = format!("{severity}: {}\n", self.message);
        let labels: Vec<&Label> = self.primary.iter().chain(&self.secondary).collect();
        if let Some(first) = labels.first() {
            let (line_no, line_start, line) = line_of(source, first.span.start as usize);
            let col = char_count(&source[line_start..clamp(source, first.span.start)]) + 1;
            let gutter = " ".repeat(line_no.to_string().len());
            out += &format!("{gutter}--> {line_no}:{col}\n{gutter} |\n{line_no} | {line}\n");
            for label in labels {
                let start = clamp(source, label.span.start).max(line_start);
                let end = clamp(source, label.span.end).min(line_start + line.len());
                if start > line_start + line.len() {
                    continue;
                }
                let pad = char_count(&source[line_start..start]);
                let width = char_count(&source[start..end.max(start)]).max(1);
                let note = if label.note.is_empty() {
                    String::new()
                } else {
                    format!(" {}", label.note)
                };
                out += &format!(
                    "{gutter} | {}{}{note}\n",
                    " ".repeat(pad),
                    "^".repeat(width)
                );
            }
        }
        for hint in &self.hints {
            out += &format!("  = hint: {hint}\n");
        }
        out
    }
}

fn clamp(source: &str, offset: u32) -> usize {
    let mut offset = (offset as usize).min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

fn char_count(text: &str) -> usize {
    text.chars().count()
}

/// The 1-based line number, the byte offset where that line starts, and the line.
fn line_of(source: &str, offset: usize) -> (usize, usize, &str) {
    let offset = offset.min(source.len());
    let mut start = 0;
    for (index, line) in source.split('\n').enumerate() {
        let end = start + line.len();
        if offset <= end {
            return (index + 1, start, line);
        }
        start = end + 1;
    }
    (1, 0, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_counts_characters_not_bytes() {
        let text = Diagnostic::new("cannot multiply n×1 by n×1")
            .at(Span::new(0, "z₁".len()), "n×1")
            .render("z₁(1 − σ(z₁))");
        assert!(text.contains("1 | z₁(1 − σ(z₁))\n  | ^^ n×1\n"), "{text}");
    }
}
