//! One module per subcommand: checks, then the data path, then output.

pub mod flamegraph;
pub mod histogram;
pub mod stop;
