//! The room's tests: each request's outcome, read as who is told what, with no hub, queue or
//! clock in the way.

use super::*;
use crate::domain::stage::StageError;
use crate::domain::timestamp::Timestamp;
use crate::protocol::MediaKind;

const LESSON: LessonKey = 7;

fn newcomer(id: u64, role: Role, mode: LessonMode) -> Newcomer {
    Newcomer {
        info: ParticipantInfo {
            id,
            name: format!("p{id}"),
            role,
        },
        identity: format!("i{id}"),
        connection: ConnectionId(id),
        grants: Grants::for_role(role, mode),
    }
}

fn welcome() -> Welcome {
    Welcome {
        reply_id: None,
        lesson: LessonSnapshot {
            id: LESSON,
            title: "t".into(),
            subject: String::new(),
            grade: String::new(),
            mode: "famous_teacher".into(),
            state: "live".into(),
        },
        chat: Vec::new(),
        recording: false,
    }
}

fn seat(room: &mut Room, id: u64, role: Role) -> Admitted {
    let mode = room.mode;
    room.join(newcomer(id, role, mode), welcome()).unwrap()
}

/// The kinds of the messages `outcome` delivers to `connection`, in order.
fn told(outcome: &Outcome, connection: u64) -> Vec<&'static str> {
    outcome
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Deliver { to, message } if to.contains(&ConnectionId(connection)) => {
                Some(message.kind())
            }
            Step::LastWord {
                connection: c,
                message,
                ..
            } if *c == ConnectionId(connection) => Some(message.kind()),
            _ => None,
        })
        .collect()
}

fn camera(id: u64, participant_id: u64) -> PublicationInfo {
    PublicationInfo {
        id,
        participant_id,
        source: Source::Camera,
        kind: MediaKind::Video,
    }
}

/// A famous-teacher lesson: teacher 1, classrooms 2 and 3, 2 on stage with a camera.
fn on_stage() -> Room {
    let mut room = Room::new(LessonMode::FamousTeacher);
    seat(&mut room, 1, Role::Teacher);
    seat(&mut room, 2, Role::Classroom);
    seat(&mut room, 3, Role::Classroom);
    let at = Timestamp::from_unix(1_800_000_000);
    room.raise_hand(MemberId(2), at).unwrap();
    room.invite_to_stage(MemberId(1), 2).unwrap();
    room.accept_stage(MemberId(2)).unwrap();
    room.add_publication(ConnectionId(2), camera(20, 2))
        .unwrap();
    room
}

#[test]
fn a_newcomer_is_welcomed_and_announced_to_those_who_see_it() {
    let mut room = Room::new(LessonMode::Delivery);
    seat(&mut room, 1, Role::Teacher);
    seat(&mut room, 2, Role::Classroom);
    let observer = seat(&mut room, 3, Role::Observer);
    assert_eq!(observer.id, MemberId(3));
    match &observer.joined {
        ServerMessage::Joined { participants, .. } => assert_eq!(participants.len(), 2),
        other => panic!("expected joined, got {other:?}"),
    }
    assert_eq!(told(&observer.outcome, 1), vec!["participant_joined"]);
    assert!(
        told(&observer.outcome, 2).is_empty(),
        "hidden from classrooms"
    );
    assert!(observer.outcome.steps.contains(&Step::Grants {
        connection: ConnectionId(3),
        grants: Grants::for_role(Role::Observer, LessonMode::Delivery),
    }));
    let left = room
        .leave(MemberId(3), ConnectionId(3), LeaveReason::Left)
        .unwrap();
    assert_eq!(told(&left, 1), vec!["participant_left"]);
    assert!(told(&left, 2).is_empty());
    assert!(left.steps.contains(&Step::Release(ConnectionId(3))));
    assert!(left.steps.contains(&Step::Left(LeaveReason::Left)));
    assert_eq!(room.census(), (2, 0));
}

#[test]
fn accepting_the_stage_grants_its_sources_and_leaving_takes_them_back() {
    let mut room = Room::new(LessonMode::FamousTeacher);
    seat(&mut room, 1, Role::Teacher);
    seat(&mut room, 2, Role::Classroom);
    let at = Timestamp::from_unix(1_800_000_000);
    assert_eq!(
        room.invite_to_stage(MemberId(2), 2),
        Err(ControlError::NotModerator)
    );
    assert_eq!(
        room.raise_hand(MemberId(1), at),
        Err(ControlError::ModeratorsHaveNoHand)
    );
    room.raise_hand(MemberId(2), at).unwrap();
    let invited = room.invite_to_stage(MemberId(1), 2).unwrap();
    assert_eq!(told(&invited, 2), vec!["stage_invited"]);
    let accepted = room.accept_stage(MemberId(2)).unwrap();
    assert_eq!(
        told(&accepted, 2),
        vec!["hand_lowered", "stage_changed", "grants_changed"]
    );
    assert_eq!(told(&accepted, 1), vec!["hand_lowered", "stage_changed"]);
    let granted = accepted.steps.iter().find_map(|step| match step {
        Step::Grants { connection, grants } if *connection == ConnectionId(2) => Some(grants),
        _ => None,
    });
    assert!(granted.is_some_and(|g| g.may_publish(Source::Camera)));

    let left = room.leave_stage(MemberId(1), Some(2)).unwrap();
    assert_eq!(told(&left, 2), vec!["stage_changed", "grants_changed"]);
    assert_eq!(
        room.leave_stage(MemberId(2), None),
        Err(ControlError::Stage(StageError::NotOnStage(2)))
    );
}

#[test]
fn an_away_member_keeps_its_place_and_resumes_it_with_its_old_id() {
    let mut room = on_stage();
    let away = room.suspend(MemberId(2), ConnectionId(2)).unwrap();
    assert_eq!(
        told(&away, 1),
        vec!["publication_removed", "participant_reconnecting"]
    );
    assert!(away.steps.contains(&Step::Release(ConnectionId(2))));
    assert_eq!(room.census(), (2, 1));
    assert!(room.suspend(MemberId(2), ConnectionId(2)).is_none());

    let mut back = newcomer(50, Role::Classroom, LessonMode::FamousTeacher);
    back.identity = "i2".into();
    let back = room.join(back, welcome()).unwrap();
    assert_eq!(back.id, MemberId(2), "the old id, not the connection's");
    assert!(back.outcome.steps.contains(&Step::Resumed));
    match &back.joined {
        ServerMessage::Joined { you, classroom, .. } => {
            assert_eq!(you.id, 2);
            assert_eq!(classroom.stage, vec![2]);
            assert!(classroom.grants.may_publish(Source::Camera));
        }
        other => panic!("expected joined, got {other:?}"),
    }
    assert_eq!(told(&back.outcome, 1), vec!["participant_resumed"]);
    assert!(room.expire(MemberId(2), ConnectionId(2)).is_none());
    assert_eq!(room.member_on(ConnectionId(50)).map(|p| p.id), Some(2));
}

#[test]
fn an_absence_past_the_grace_gives_up_the_place() {
    let mut room = on_stage();
    room.suspend(MemberId(2), ConnectionId(2)).unwrap();
    let gone = room.expire(MemberId(2), ConnectionId(2)).unwrap();
    assert_eq!(told(&gone, 1), vec!["stage_changed", "participant_left"]);
    assert!(gone.steps.contains(&Step::Left(LeaveReason::Vanished)));
    assert_eq!(room.census(), (2, 0));
}

#[test]
fn the_same_invite_on_a_new_connection_takes_the_seat_over() {
    let mut room = on_stage();
    let mut again = newcomer(70, Role::Classroom, LessonMode::FamousTeacher);
    again.identity = "i2".into();
    let again = room.join(again, welcome()).unwrap();
    assert_eq!(again.id, MemberId(2));
    assert!(again.outcome.steps.contains(&Step::Kick {
        connection: ConnectionId(2),
        kick: Kick::Replaced,
    }));
    assert!(
        again
            .outcome
            .steps
            .contains(&Step::Release(ConnectionId(2)))
    );
    assert_eq!(
        told(&again.outcome, 1),
        vec!["publication_removed", "participant_resumed"]
    );
    // The old connection closing late touches nothing of its successor's.
    assert!(
        room.leave(MemberId(2), ConnectionId(2), LeaveReason::Left)
            .is_none()
    );
    assert!(
        room.add_publication(ConnectionId(2), camera(21, 2))
            .is_none()
    );
    assert!(
        room.add_publication(ConnectionId(70), camera(22, 2))
            .is_some()
    );
}

#[test]
fn a_removed_member_hears_it_last_and_the_others_see_it_leave() {
    let mut room = on_stage();
    assert_eq!(
        room.removal_target(MemberId(2), 3),
        Err(ControlError::NotModerator)
    );
    assert_eq!(
        room.removal_target(MemberId(1), 1),
        Err(ControlError::RemoveSelf)
    );
    let identity = room.removal_target(MemberId(1), 2).unwrap();
    let removed = room.remove(&identity);
    assert_eq!(
        removed.steps[0],
        Step::LastWord {
            connection: ConnectionId(2),
            message: ServerMessage::Removed {},
            kick: Kick::Removed,
        }
    );
    assert_eq!(
        told(&removed, 1),
        vec!["publication_removed", "stage_changed", "participant_left"]
    );
    assert!(removed.steps.contains(&Step::Left(LeaveReason::Removed)));
}

#[test]
fn a_muted_source_stays_muted_when_published_again() {
    let mut room = on_stage();
    assert_eq!(
        room.mute_target(MemberId(3), 2, Source::Camera),
        Err(ControlError::NotModerator)
    );
    assert_eq!(room.mute_target(MemberId(1), 2, Source::Camera), Ok(20));
    let muted = room
        .set_muted(MemberId(1), 2, Source::Camera, true)
        .unwrap();
    assert_eq!(told(&muted, 3), vec!["muted"]);
    room.remove_publication(20);
    let (still, _) = room
        .add_publication(ConnectionId(2), camera(21, 2))
        .unwrap();
    assert!(still);
}

#[test]
fn classrooms_past_the_mode_limit_are_refused_but_the_same_invite_is_not() {
    let mode = LessonMode::Delivery;
    let max = ModePolicy::for_mode(mode).max_classrooms.unwrap();
    let mut room = Room::new(mode);
    for id in 1..=max as u64 {
        seat(&mut room, id, Role::Classroom);
    }
    room.suspend(MemberId(1), ConnectionId(1)).unwrap();
    assert_eq!(
        room.join(newcomer(500, Role::Classroom, mode), welcome())
            .map(|a| a.id),
        Err(RoomFull { max })
    );
    assert!(room.admits(Role::Classroom, "i1").is_ok());
    assert!(room.admits(Role::Teacher, "t").is_ok());
}

#[test]
fn evicting_a_slow_connection_is_leaving_as_vanished() {
    let mut room = on_stage();
    let evicted = room.evict(ConnectionId(3));
    assert_eq!(told(&evicted, 1), vec!["participant_left"]);
    assert!(evicted.steps.contains(&Step::Left(LeaveReason::Vanished)));
    assert!(room.evict(ConnectionId(3)).steps.is_empty());
}

#[test]
fn the_end_is_everyone_s_last_word() {
    let mut room = on_stage();
    room.suspend(MemberId(3), ConnectionId(3)).unwrap();
    let ended = room.end(LESSON);
    assert_eq!(told(&ended, 1), vec!["lesson_ended"]);
    assert!(ended.steps.contains(&Step::Release(ConnectionId(2))));
    assert!(room.is_empty());
}
