//! [`StoreError`], defined here so that the error primitives never import the store.

/// A store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backing service could not be reached or failed; retrying later may work.
    #[error("store unavailable: {message}")]
    Unavailable {
        /// What failed, without data.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The operation lost a race inside the backend (a serialization failure or deadlock in the
    /// database, a watched key changed) and changed nothing; trying again may succeed.
    #[error("store contention: {message}")]
    Contention {
        /// What lost, without data.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A stored record could not be decoded: it was written by something else or corrupted.
    #[error("stored record is corrupt: {message}")]
    Corrupt {
        /// What was wrong, without data.
        message: String,
    },
}

impl StoreError {
    /// An [`Unavailable`](Self::Unavailable) error with no source.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: None,
        }
    }

    /// An [`Unavailable`](Self::Unavailable) error caused by `source`.
    pub fn unavailable_from(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}
