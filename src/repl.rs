//! Stage `repl` (being written).
