//! Tests: interop.
