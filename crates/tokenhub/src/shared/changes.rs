//! Change notices between instances: an instance that wrote to the change feed
//! publishes on `<prefix>changes`, and every instance reads its feed at once when a
//! notice arrives. The notice carries nothing; the feed (`changes` table) stays the one
//! source, and polling (`reload_interval_ms`) stays the fallback when a notice is lost
//! or Redis is down.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;

use super::{SharedError, SharedState};

impl SharedState {
    fn changes_channel(&self) -> String {
        self.key(format_args!("changes"))
    }

    /// Tells every instance to read the change feed now.
    pub async fn publish_change(&self) -> Result<(), SharedError> {
        let mut connection = self.connection();
        redis::cmd("PUBLISH")
            .arg(self.changes_channel())
            .arg(self.instance())
            .exec_async(&mut connection)
            .await?;
        Ok(())
    }

    /// Nudges `reload` on every notice from another instance, resubscribing after a
    /// lost connection.
    pub fn spawn_change_listener(self: &Arc<Self>, reload: Arc<Notify>) {
        let client = self.client.clone();
        let channel = self.changes_channel();
        let own = self.instance().to_string();
        tokio::spawn(async move {
            loop {
                match listen(&client, &channel, &own, &reload).await {
                    Ok(()) => tracing::warn!("Redis change notices ended; resubscribing"),
                    Err(error) => {
                        tracing::warn!(%error, "Redis change notices lost; resubscribing")
                    }
                }
                // Whatever was published meanwhile is read by the next poll.
                reload.notify_one();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
}

async fn listen(
    client: &redis::Client,
    channel: &str,
    own: &str,
    reload: &Notify,
) -> Result<(), SharedError> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    let mut notices = pubsub.into_on_message();
    while let Some(notice) = notices.next().await {
        let from: String = notice.get_payload().unwrap_or_default();
        if from != own {
            reload.notify_one();
        }
    }
    Ok(())
}
