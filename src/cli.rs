//! Stage `cli` (being written).
