//! Turning results into something for people or machines: terminal tables (comfy-table),
//! files (Polars' writers), the HTML/Markdown report (minijinja, plotters).

pub mod chart;
pub mod checks;
pub mod export;
pub mod report;
pub mod summary;
pub mod table;
