//! Stage `print` (being written).
