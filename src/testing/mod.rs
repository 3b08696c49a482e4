//! Test support for hosts (feature `test-util`): the [`conformance`] suite for [`Store`]
//! implementations.
//!
//! [`Store`]: crate::store::Store

pub mod conformance;
