//! One module per test layer; `cargo xtask test` selects them by name (`tests::<module>::`).

mod attacks;
mod control;
mod dpi_diameter;
mod dpi_gtp;
mod dpi_sigtran;
mod evasions;
mod inpath;
mod inpath_corpus;
mod inspect;
mod metrics;
mod privileges;
mod prog_test_run;
mod replay;
mod subscriber;
mod top;
mod veth;
