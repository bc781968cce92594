//! placeholder
pub mod git;
pub mod output;
pub mod sandbox;
