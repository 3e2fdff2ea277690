//! The runtime's settings, handed in by the application: the `[queue]` and `[shutdown]`
//! sections, the settings of each queue (`[jobs.<queue>]` over `[jobs.default]`) and the
//! names of the queues the application knows.

use crate::config::{QueueConfig, QueueSettings, ShutdownConfig};

#[derive(Debug, Clone)]
pub struct Settings {
    pub queue: QueueConfig,
    pub shutdown: ShutdownConfig,
    default: QueueSettings,
    /// In the application's order.
    queues: Vec<(String, QueueSettings)>,
}

impl Settings {
    /// Settings where every queue runs with `default` until [`Settings::with_queue`].
    pub fn new(queue: QueueConfig, shutdown: ShutdownConfig, default: QueueSettings) -> Settings {
        Settings {
            queue,
            shutdown,
            default,
            queues: Vec::new(),
        }
    }

    /// Names a queue of the application, with its settings.
    pub fn with_queue(mut self, name: &str, settings: QueueSettings) -> Settings {
        self.queues.retain(|(q, _)| q != name);
        self.queues.push((name.to_string(), settings));
        self
    }

    /// The settings `queue` runs with (a queue not named runs with the default).
    pub fn queue_settings(&self, queue: &str) -> QueueSettings {
        self.queues
            .iter()
            .find(|(q, _)| q == queue)
            .map(|(_, s)| *s)
            .unwrap_or(self.default)
    }

    /// The queues the application named, in its order.
    pub fn queues(&self) -> impl Iterator<Item = &str> + '_ {
        self.queues.iter().map(|(q, _)| q.as_str())
    }
}
