//! placeholder until tests move
