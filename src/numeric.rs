//! Stage `numeric` (being written).
