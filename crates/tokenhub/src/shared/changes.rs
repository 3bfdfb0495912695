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

    /// Nudges `reload` on every notice from another instance. After a (re)subscription
    /// it nudges too: whatever was published meanwhile is read by that reload.
    pub fn spawn_change_listener(self: &Arc<Self>, reload: Arc<Notify>) {
        let own = self.instance().to_string();
        let nudge = reload.clone();
        self.spawn_listener(
            self.changes_channel(),
            move || nudge.notify_one(),
            move |from| {
                if from != own {
                    reload.notify_one();
                }
            },
        );
    }

    /// Hands each message published on `channel` to `on_notice`, resubscribing after a
    /// lost connection; `on_subscribed` runs after every subscription, so a listener
    /// can catch up with what it missed.
    pub(super) fn spawn_listener(
        self: &Arc<Self>,
        channel: String,
        on_subscribed: impl Fn() + Send + Sync + 'static,
        on_notice: impl Fn(String) + Send + Sync + 'static,
    ) {
        let client = self.client.clone();
        tokio::spawn(async move {
            loop {
                match listen(&client, &channel, &on_subscribed, &on_notice).await {
                    Ok(()) => tracing::warn!(channel, "Redis notices ended; resubscribing"),
                    Err(error) => {
                        tracing::warn!(channel, %error, "Redis notices lost; resubscribing")
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
}

async fn listen(
    client: &redis::Client,
    channel: &str,
    on_subscribed: &(impl Fn() + Send + Sync),
    on_notice: &(impl Fn(String) + Send + Sync),
) -> Result<(), SharedError> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    on_subscribed();
    let mut notices = pubsub.into_on_message();
    while let Some(notice) = notices.next().await {
        on_notice(notice.get_payload().unwrap_or_default());
    }
    Ok(())
}
