//! Index notation (placeholder, filled in by the index-form step).
