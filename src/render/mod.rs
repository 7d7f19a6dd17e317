//! Turning results into text for people: tables on a terminal.

pub mod summary;
