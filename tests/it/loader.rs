//! Tests: loader.
