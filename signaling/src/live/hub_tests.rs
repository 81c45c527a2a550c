//! The hub's tests: joins, reconnects, moderation and the stage carried out on real bounded
//! queues and `watch`es, as a connection sees them.

use super::*;
use crate::domain::grants::ModePolicy;
use crate::domain::stage::StageError;
use crate::protocol::{MediaKind, Role};

fn metrics() -> Arc<Metrics> {
    Arc::new(Metrics::new().unwrap())
}

fn snapshot(id: LessonKey) -> LessonSnapshot {
    LessonSnapshot {
        id,
        title: "t".into(),
        subject: String::new(),
        grade: String::new(),
        mode: "delivery".into(),
        state: "live".into(),
    }
}

struct Conn {
    rx: mpsc::Receiver<ServerMessage>,
    kick: watch::Receiver<Option<Kick>>,
    grants: watch::Receiver<Grants>,
}

fn member(id: u64, queue: usize) -> (Member, Conn) {
    member_as(id, queue, Role::Classroom, LessonMode::Delivery)
}

fn member_as(id: u64, queue: usize, role: Role, mode: LessonMode) -> (Member, Conn) {
    let (tx, rx) = mpsc::channel(queue);
    let (kick_tx, kick_rx) = watch::channel(None);
    let grants = Grants::for_role(role, mode);
    let (grants_tx, grants_rx) = watch::channel(grants.clone());
    (
        Member {
            info: ParticipantInfo {
                id,
                name: format!("p{id}"),
                role,
            },
            identity: format!("i{id}"),
            connection: id,
            base_grants: grants,
            grants: grants_tx,
            outbox: tx,
            kick: kick_tx,
        },
        Conn {
            rx,
            kick: kick_rx,
            grants: grants_rx,
        },
    )
}

fn join(hub: &Hub, lesson: LessonKey, member: Member) -> Result<(), HubJoinError> {
    hub.join(
        &snapshot(lesson),
        LessonMode::Delivery,
        None,
        member,
        Vec::new(),
    )
    .map(|_| ())
}

fn drain(conn: &mut Conn) -> Vec<ServerMessage> {
    let mut out = Vec::new();
    while let Ok(m) = conn.rx.try_recv() {
        out.push(m);
    }
    out
}

#[test]
fn join_publish_leave_are_announced() {
    let hub = Hub::new(metrics());
    let (m1, mut c1) = member(1, 16);
    let (m2, mut c2) = member(2, 16);
    hub.join(
        &snapshot(7),
        LessonMode::Delivery,
        Some("a".into()),
        m1,
        Vec::new(),
    )
    .unwrap();
    hub.add_publication(
        7,
        1,
        PublicationInfo {
            id: 10,
            participant_id: 1,
            source: Source::Camera,
            kind: MediaKind::Video,
        },
    );
    join(&hub, 7, m2).unwrap();

    let to1 = drain(&mut c1);
    assert!(
        matches!(&to1[0], ServerMessage::Joined { id: Some(id), participants, .. } if id == "a" && participants.is_empty())
    );
    assert!(
        matches!(&to1[1], ServerMessage::PublicationAdded { publication } if publication.id == 10)
    );
    assert!(
        matches!(&to1[2], ServerMessage::ParticipantJoined { participant } if participant.id == 2)
    );

    let to2 = drain(&mut c2);
    match &to2[0] {
        ServerMessage::Joined {
            participants,
            publications,
            ..
        } => {
            assert_eq!(participants.len(), 1);
            assert_eq!(participants[0].id, 1);
            assert_eq!(publications.len(), 1);
        }
        other => panic!("expected joined, got {other:?}"),
    }

    assert!(hub.leave(7, ParticipantId(1), 1, LeaveReason::Left));
    let to2 = drain(&mut c2);
    assert_eq!(
        to2,
        vec![
            ServerMessage::PublicationRemoved { publication_id: 10 },
            ServerMessage::ParticipantLeft {
                participant_id: 1,
                reason: LeaveReason::Left
            }
        ]
    );
    assert!(!hub.leave(7, ParticipantId(1), 1, LeaveReason::Left));
    // A late publication event for the departed participant is ignored.
    hub.add_publication(
        7,
        1,
        PublicationInfo {
            id: 11,
            participant_id: 1,
            source: Source::Microphone,
            kind: MediaKind::Audio,
        },
    );
    assert!(drain(&mut c2).is_empty());
    assert_eq!(hub.participants(7).len(), 1);
}

#[test]
fn slow_participant_is_removed_not_waited_for() {
    let hub = Hub::new(metrics());
    let (m1, mut c1) = member(1, 16);
    // Room for `joined` and nothing else.
    let (m2, c2) = member(2, 1);
    join(&hub, 7, m1).unwrap();
    join(&hub, 7, m2).unwrap();
    drain(&mut c1);
    let (m3, _c3) = member(3, 16);
    join(&hub, 7, m3).unwrap();

    assert_eq!(*c2.kick.borrow(), Some(Kick::SlowConsumer));
    let to1 = drain(&mut c1);
    assert!(to1.contains(&ServerMessage::ParticipantLeft {
        participant_id: 2,
        reason: LeaveReason::Vanished
    }));
    assert_eq!(
        hub.participants(7).iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert_eq!(hub.metrics.slow_consumer_disconnects.get(), 1);
}

#[test]
fn ended_lesson_kicks_everyone_and_refuses_joins() {
    let hub = Hub::new(metrics());
    let (m1, mut c1) = member(1, 16);
    join(&hub, 7, m1).unwrap();
    drain(&mut c1);
    hub.end_lesson(7);
    assert_eq!(
        drain(&mut c1),
        vec![ServerMessage::LessonEnded { lesson_id: 7 }]
    );
    assert_eq!(*c1.kick.borrow(), Some(Kick::LessonEnded));
    let (m2, _c2) = member(2, 16);
    assert_eq!(join(&hub, 7, m2), Err(HubJoinError::LessonEnded));
    assert!(hub.participants(7).is_empty());
    assert_eq!(hub.metrics.participants.get(), 0);
}

fn kinds(conn: &mut Conn) -> Vec<&'static str> {
    drain(conn).iter().map(ServerMessage::kind).collect()
}

#[test]
fn hidden_participants_are_shown_only_to_moderators() {
    let hub = Hub::new(metrics());
    let (teacher, mut t) = member_as(1, 16, Role::Teacher, LessonMode::Delivery);
    let (class, mut c) = member(2, 16);
    let (observer, mut o) = member_as(3, 16, Role::Observer, LessonMode::Delivery);
    join(&hub, 7, teacher).unwrap();
    join(&hub, 7, class).unwrap();
    drain(&mut t);
    drain(&mut c);
    join(&hub, 7, observer).unwrap();
    assert_eq!(kinds(&mut t), vec!["participant_joined"]);
    assert!(drain(&mut c).is_empty(), "the classroom is not told");
    match &drain(&mut o)[0] {
        ServerMessage::Joined { participants, .. } => assert_eq!(participants.len(), 2),
        other => panic!("expected joined, got {other:?}"),
    }
    let (late, mut l) = member(4, 16);
    join(&hub, 7, late).unwrap();
    match &drain(&mut l)[0] {
        ServerMessage::Joined { participants, .. } => {
            assert!(participants.iter().all(|p| p.id != 3), "{participants:?}")
        }
        other => panic!("expected joined, got {other:?}"),
    }
    drain(&mut t);
    drain(&mut c);
    hub.leave(7, ParticipantId(3), 3, LeaveReason::Left);
    assert_eq!(kinds(&mut t), vec!["participant_left"]);
    assert!(drain(&mut c).is_empty());
}

#[test]
fn the_stage_changes_grants_and_tells_the_connection() {
    let hub = Hub::new(metrics());
    let mode = LessonMode::FamousTeacher;
    let (teacher, mut t) = member_as(1, 32, Role::Teacher, mode);
    let (class, mut c) = member_as(2, 32, Role::Classroom, mode);
    for m in [teacher, class] {
        hub.join(&snapshot(7), mode, None, m, Vec::new()).unwrap();
    }
    drain(&mut t);
    drain(&mut c);
    let (p1, p2) = (ParticipantId(1), ParticipantId(2));
    let now = Timestamp::from_unix(1_800_000_000);

    assert_eq!(
        hub.invite_to_stage(7, p2, 2),
        Err(ControlError::NotModerator)
    );
    assert_eq!(
        hub.raise_hand(7, p1, now),
        Err(ControlError::ModeratorsHaveNoHand)
    );
    assert_eq!(
        hub.accept_stage(7, p2),
        Err(ControlError::Stage(StageError::NoInvitation(2)))
    );
    assert!(drain(&mut t).is_empty() && drain(&mut c).is_empty());

    hub.raise_hand(7, p2, now).unwrap();
    hub.invite_to_stage(7, p1, 2).unwrap();
    hub.accept_stage(7, p2).unwrap();
    assert_eq!(
        kinds(&mut c),
        vec![
            "hand_raised",
            "stage_invited",
            "hand_lowered",
            "stage_changed",
            "grants_changed"
        ]
    );
    assert_eq!(
        kinds(&mut t),
        vec![
            "hand_raised",
            "stage_invited",
            "hand_lowered",
            "stage_changed"
        ]
    );
    assert!(c.grants.has_changed().unwrap());
    assert!(c.grants.borrow_and_update().may_publish(Source::Camera));

    hub.leave_stage(7, p1, Some(2)).unwrap();
    assert_eq!(kinds(&mut c), vec!["stage_changed", "grants_changed"]);
    assert!(c.grants.borrow_and_update().publish.is_empty());
    assert_eq!(
        hub.leave_stage(7, p2, None),
        Err(ControlError::Stage(StageError::NotOnStage(2)))
    );
}

#[test]
fn classrooms_past_the_mode_limit_are_refused() {
    let hub = Hub::new(metrics());
    let mut conns = Vec::new();
    for id in 1..=8 {
        let (m, c) = member(id, 16);
        join(&hub, 7, m).unwrap();
        conns.push(c);
    }
    let (ninth, _c9) = member(9, 16);
    assert_eq!(
        join(&hub, 7, ninth),
        Err(HubJoinError::LessonFull { max: 8 })
    );
    // The same invite reconnecting is let in (taking its seat back), and so is a teacher.
    let (mut again, _ca) = member(10, 16);
    again.identity = "i3".into();
    join(&hub, 7, again).unwrap();
    let (teacher, _ct) = member_as(11, 16, Role::Teacher, LessonMode::Delivery);
    join(&hub, 7, teacher).unwrap();
    assert_eq!(hub.participants(7).len(), 9);
}

#[test]
fn moderators_mute_and_remove() {
    let hub = Hub::new(metrics());
    let mode = LessonMode::Delivery;
    let (teacher, mut t) = member_as(1, 32, Role::Teacher, mode);
    let (class, mut c) = member(2, 32);
    join(&hub, 7, teacher).unwrap();
    join(&hub, 7, class).unwrap();
    let mic = |id| PublicationInfo {
        id,
        participant_id: 2,
        source: Source::Microphone,
        kind: MediaKind::Audio,
    };
    assert!(!hub.add_publication(7, 2, mic(10)));
    drain(&mut t);
    drain(&mut c);
    let (p1, p2) = (ParticipantId(1), ParticipantId(2));

    assert_eq!(
        hub.mute_target(7, p2, 2, Source::Microphone),
        Err(ControlError::NotModerator)
    );
    assert_eq!(
        hub.mute_target(7, p1, 2, Source::Camera),
        Err(ControlError::NoSuchPublication(2, Source::Camera))
    );
    assert_eq!(hub.mute_target(7, p1, 2, Source::Microphone), Ok(10));
    hub.set_muted(7, p1, 2, Source::Microphone, true).unwrap();
    assert_eq!(kinds(&mut c), vec!["muted"]);
    // A re-publication of the source stays muted, and a late joiner is told.
    hub.remove_publication(7, 10);
    assert!(hub.add_publication(7, 2, mic(11)));
    let (late, mut l) = member(3, 32);
    join(&hub, 7, late).unwrap();
    match &drain(&mut l)[0] {
        ServerMessage::Joined { classroom, .. } => assert_eq!(classroom.muted, vec![11]),
        other => panic!("expected joined, got {other:?}"),
    }
    drain(&mut t);
    drain(&mut c);

    assert_eq!(
        hub.removal_target(7, p2, 3),
        Err(ControlError::NotModerator)
    );
    assert_eq!(hub.removal_target(7, p1, 1), Err(ControlError::RemoveSelf));
    let identity = hub.removal_target(7, p1, 2).unwrap();
    hub.remove(7, &identity);
    assert_eq!(drain(&mut c), vec![ServerMessage::Removed {}]);
    assert_eq!(*c.kick.borrow(), Some(Kick::Removed));
    assert!(drain(&mut t).contains(&ServerMessage::ParticipantLeft {
        participant_id: 2,
        reason: LeaveReason::Removed
    }));
    let (mut again, _a) = member(4, 32);
    again.identity = identity;
    assert_eq!(join(&hub, 7, again), Err(HubJoinError::Removed));
}

/// A teacher and a classroom on stage with a camera; the third member raised a hand.
fn stage_with_hand(hub: &Hub) -> (Conn, Conn, Conn) {
    let mode = LessonMode::FamousTeacher;
    let (teacher, mut t) = member_as(1, 64, Role::Teacher, mode);
    let (class, mut c) = member_as(2, 64, Role::Classroom, mode);
    let (other, mut o) = member_as(3, 64, Role::Classroom, mode);
    for m in [teacher, class, other] {
        hub.join(&snapshot(7), mode, None, m, Vec::new()).unwrap();
    }
    let now = Timestamp::from_unix(1_800_000_000);
    hub.raise_hand(7, ParticipantId(2), now).unwrap();
    hub.invite_to_stage(7, ParticipantId(1), 2).unwrap();
    hub.accept_stage(7, ParticipantId(2)).unwrap();
    hub.raise_hand(7, ParticipantId(3), now).unwrap();
    hub.add_publication(7, 2, camera(20, 2));
    for conn in [&mut t, &mut c, &mut o] {
        drain(conn);
    }
    (t, c, o)
}

fn camera(id: u64, participant_id: u64) -> PublicationInfo {
    PublicationInfo {
        id,
        participant_id,
        source: Source::Camera,
        kind: MediaKind::Video,
    }
}

/// The same invite (identity `i{of}`) on a new connection `connection`.
fn coming_back(of: u64, connection: u64, role: Role) -> (Member, Conn) {
    let (mut m, c) = member_as(connection, 64, role, LessonMode::FamousTeacher);
    m.identity = format!("i{of}");
    (m, c)
}

#[test]
fn a_dropped_participant_keeps_its_place_and_resumes_it() {
    let hub = Hub::new(metrics());
    let (mut t, _c, _o) = stage_with_hand(&hub);

    assert!(hub.suspend(7, ParticipantId(2), 2));
    assert_eq!(
        drain(&mut t),
        vec![
            ServerMessage::PublicationRemoved { publication_id: 20 },
            ServerMessage::ParticipantReconnecting { participant_id: 2 },
        ]
    );
    // Still listed, still on stage; a second drop report changes nothing.
    assert_eq!(hub.participants(7).len(), 3);
    assert!(!hub.suspend(7, ParticipantId(2), 2));

    let (back, mut b) = coming_back(2, 50, Role::Classroom);
    let pid = hub
        .join(
            &snapshot(7),
            LessonMode::FamousTeacher,
            None,
            back,
            Vec::new(),
        )
        .unwrap();
    assert_eq!(pid, ParticipantId(2), "the old id, not the connection's");
    match &drain(&mut b)[0] {
        ServerMessage::Joined { you, classroom, .. } => {
            assert_eq!(you.id, 2);
            assert_eq!(classroom.stage, vec![2]);
            assert!(
                classroom.grants.may_publish(Source::Camera),
                "stage grants kept"
            );
            assert_eq!(classroom.hands.len(), 1, "the other's hand is still up");
            assert!(classroom.reconnecting.is_empty());
        }
        other => panic!("expected joined, got {other:?}"),
    }
    assert!(b.grants.borrow().may_publish(Source::Camera));
    assert_eq!(kinds(&mut t), vec!["participant_resumed"]);
    // The expiry of the absence that ended finds nothing to do.
    assert!(!hub.expire(7, ParticipantId(2), 2));
    assert_eq!(hub.participants(7).len(), 3);
}

#[test]
fn an_absence_past_the_grace_ends_in_leaving() {
    let hub = Hub::new(metrics());
    let (mut t, _c, mut o) = stage_with_hand(&hub);
    assert!(hub.suspend(7, ParticipantId(3), 3));
    assert!(hub.suspend(7, ParticipantId(2), 2));
    drain(&mut t);

    // A late joiner sees both as reconnecting.
    let (late, mut l) = member_as(4, 64, Role::Observer, LessonMode::FamousTeacher);
    hub.join(
        &snapshot(7),
        LessonMode::FamousTeacher,
        None,
        late,
        Vec::new(),
    )
    .unwrap();
    match &drain(&mut l)[0] {
        ServerMessage::Joined { classroom, .. } => {
            let mut away = classroom.reconnecting.clone();
            away.sort_unstable();
            assert_eq!(away, vec![2, 3]);
        }
        other => panic!("expected joined, got {other:?}"),
    }
    drain(&mut t);

    assert!(hub.expire(7, ParticipantId(2), 2));
    assert!(hub.expire(7, ParticipantId(3), 3));
    let to_teacher = drain(&mut t);
    assert!(to_teacher.contains(&ServerMessage::ParticipantLeft {
        participant_id: 2,
        reason: LeaveReason::Vanished
    }));
    assert!(to_teacher.contains(&ServerMessage::HandLowered { participant_id: 3 }));
    assert!(kinds(&mut t).is_empty());
    assert_eq!(hub.participants(7).len(), 2);
    // Coming back now is a new participant with a new id and no place.
    let (back, mut b) = coming_back(2, 60, Role::Classroom);
    let pid = hub
        .join(
            &snapshot(7),
            LessonMode::FamousTeacher,
            None,
            back,
            Vec::new(),
        )
        .unwrap();
    assert_eq!(pid, ParticipantId(60));
    match &drain(&mut b)[0] {
        ServerMessage::Joined { classroom, .. } => assert!(classroom.stage.is_empty()),
        other => panic!("expected joined, got {other:?}"),
    }
    drop(o.rx.try_recv());
}

#[test]
fn the_same_invite_on_a_new_connection_takes_the_seat_over() {
    let hub = Hub::new(metrics());
    let (mut t, c, _o) = stage_with_hand(&hub);

    let (again, mut a) = coming_back(2, 70, Role::Classroom);
    let pid = hub
        .join(
            &snapshot(7),
            LessonMode::FamousTeacher,
            None,
            again,
            Vec::new(),
        )
        .unwrap();
    assert_eq!(pid, ParticipantId(2));
    assert_eq!(*c.kick.borrow(), Some(Kick::Replaced));
    assert_eq!(
        kinds(&mut t),
        vec!["publication_removed", "participant_resumed"]
    );
    // The old connection closing late touches nothing of its successor's.
    assert!(!hub.leave(7, ParticipantId(2), 2, LeaveReason::Left));
    assert!(!hub.suspend(7, ParticipantId(2), 2));
    hub.add_publication(7, 2, camera(21, 2));
    assert!(kinds(&mut t).is_empty());
    assert!(matches!(drain(&mut a)[0], ServerMessage::Joined { .. }));
    hub.add_publication(7, 70, camera(22, 2));
    assert_eq!(kinds(&mut t), vec!["publication_added"]);
}

#[test]
fn an_away_participant_keeps_its_classroom_slot_and_can_be_removed() {
    let hub = Hub::new(metrics());
    let mode = LessonMode::Delivery;
    let max = ModePolicy::for_mode(mode).max_classrooms.unwrap();
    let (teacher, mut t) = member_as(1000, 64, Role::Teacher, mode);
    join(&hub, 7, teacher).unwrap();
    let mut conns = Vec::new();
    for id in 1..=max as u64 {
        let (m, c) = member(id, 64);
        join(&hub, 7, m).unwrap();
        conns.push(c);
    }
    assert!(hub.suspend(7, ParticipantId(1), 1));
    let (extra, _e) = member(500, 64);
    assert!(matches!(
        join(&hub, 7, extra),
        Err(HubJoinError::LessonFull { .. })
    ));
    drain(&mut t);

    let identity = hub.removal_target(7, ParticipantId(1000), 1).unwrap();
    hub.remove(7, &identity);
    assert!(drain(&mut t).contains(&ServerMessage::ParticipantLeft {
        participant_id: 1,
        reason: LeaveReason::Removed
    }));
    assert!(!hub.expire(7, ParticipantId(1), 1));
    let (back, _b) = member(1, 64);
    assert_eq!(join(&hub, 7, back), Err(HubJoinError::Removed));
    let (extra, _e) = member(501, 64);
    join(&hub, 7, extra).unwrap();
}
