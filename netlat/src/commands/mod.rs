//! One module per subcommand: checks, then the data path, then output.

pub mod histogram;
