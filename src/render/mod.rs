//! Turning results into something for people or machines: terminal tables (comfy-table),
//! files (Polars' writers), the HTML/Markdown report and its notebook (minijinja, plotters).

pub mod chart;
pub mod checks;
pub mod export;
pub mod notebook;
pub mod report;
pub mod snapshots;
pub mod summary;
pub mod table;
