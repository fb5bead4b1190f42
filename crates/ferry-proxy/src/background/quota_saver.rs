//! Keeping the daily quota counts on disk, so a restart does not hand
//! every client a fresh quota: written every half minute while anything
//! was counted, and once more at shutdown.

use std::sync::Arc;
use std::time::Duration;

use crate::state::ProxyState;

const EVERY: Duration = Duration::from_secs(30);

/// Starts writing the counts out periodically (only when a group has a quota).
pub fn start(state: &Arc<ProxyState>) {
    if !state.config.groups.iter().any(|g| g.daily_quota.is_some()) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(EVERY);
        loop {
            every.tick().await;
            save(&state).await;
        }
    });
}

/// Writes the counts now (off the async threads).
pub async fn save(state: &Arc<ProxyState>) {
    if !state.config.groups.iter().any(|g| g.daily_quota.is_some()) {
        return;
    }
    let state = state.clone();
    let written = tokio::task::spawn_blocking(move || state.quota.save(&state.quota_path())).await;
    match written {
        Ok(Err(e)) => tracing::warn!(error = %e, "could not write the quota counts"),
        Err(e) => tracing::warn!(error = %e, "could not write the quota counts"),
        Ok(Ok(())) => {}
    }
}
