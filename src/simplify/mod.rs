//! Stage `simplify` (being written).
