//! Names of the relay's keys and channels, all under one prefix.

/// Key and channel names under one prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The stream of a discussion's live events.
    pub fn events(&self, discussion_id: &str) -> String {
        format!("{}events:{discussion_id}", self.prefix)
    }

    /// Set when a stop of the discussion was asked for, so an owner that
    /// missed the Pub/Sub message still finds it.
    pub fn stop(&self, discussion_id: &str) -> String {
        format!("{}stop:{discussion_id}", self.prefix)
    }

    /// The Pub/Sub channel stop requests are announced on.
    pub fn stops(&self) -> String {
        format!("{}stops", self.prefix)
    }
}
