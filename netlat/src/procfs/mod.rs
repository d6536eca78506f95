//! Parsers of /proc and /sys files. Each takes text, so fixtures test them;
//! the live readers are thin wrappers.
