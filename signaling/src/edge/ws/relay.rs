//! The media plane's events for one participant, turned into lesson messages by a small task
//! of their own, so that its publications reach the others even while its own socket is slow
//! to write: offers for its subscriber connection, publications starting and ending, quality
//! reports, connection state.

use sfu::{ParticipantId, PeerLeg, PeerState, SfuEvent};
use tokio::sync::mpsc;

use crate::domain::lesson::LessonKey;
use crate::protocol::{PublicationInfo, ServerMessage, TrackMapping};
use crate::state::AppState;

/// Turns one participant's media-plane events into lesson messages.
pub(super) async fn relay_sfu_events(
    state: AppState,
    lesson: LessonKey,
    pid: ParticipantId,
    media: ParticipantId,
    mut events: mpsc::Receiver<SfuEvent>,
) {
    while let Some(event) = events.recv().await {
        match event {
            SfuEvent::SubscriberOffer { sdp, tracks } => {
                let tracks = tracks
                    .into_iter()
                    .map(|t| TrackMapping {
                        mid: t.mid,
                        publication_id: t.publication.0,
                    })
                    .collect();
                state
                    .hub
                    .send_to(lesson, pid, ServerMessage::Offer { sdp, tracks });
            }
            SfuEvent::PublicationStarted {
                publication,
                source,
                kind,
            } => {
                let info = PublicationInfo {
                    id: publication.0,
                    participant_id: pid.0,
                    source,
                    kind,
                };
                // A moderator muted this source before: the new publication stays muted.
                // (Its first packets may pass before the media plane hears of it.)
                if state.hub.add_publication(lesson, media.0, info) {
                    let muting = state.sfu.set_muted(publication, true);
                    match tokio::time::timeout(state.config.sfu_request_timeout, muting).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!(error = %e, "could not keep a source muted"),
                        Err(_) => tracing::warn!("could not keep a source muted: timed out"),
                    }
                }
            }
            SfuEvent::PublicationEnded { publication } => {
                state.hub.remove_publication(lesson, publication.0)
            }
            SfuEvent::Quality {
                publishing,
                receiving,
            } => {
                state.metrics.observe_quality(&publishing, &receiving);
                let message = ServerMessage::Quality {
                    publishing: publishing.iter().map(Into::into).collect(),
                    receiving: receiving.iter().map(Into::into).collect(),
                };
                state.hub.send_to(lesson, pid, message);
            }
            SfuEvent::PeerStateChanged { leg, state: peer } => {
                let leg = match leg {
                    PeerLeg::Publisher => "publisher",
                    PeerLeg::Subscriber => "subscriber",
                };
                let peer_state = match peer {
                    PeerState::Connected => "connected",
                    PeerState::Disconnected => "disconnected",
                    PeerState::Failed => "failed",
                };
                state
                    .metrics
                    .peer_state_changes
                    .with_label_values(&[leg, peer_state])
                    .inc();
                tracing::info!(leg, state = peer_state, "media connection state changed");
            }
        }
    }
}
