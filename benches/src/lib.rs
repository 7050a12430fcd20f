//! Shared helpers for the verinfer benchmarks.
