//! The classroom's rules, enforced by the server: role × mode grants, hidden participants,
//! hands and the stage, chat. A real server on 127.0.0.1 with OS-chosen ports; tokens come from
//! the REST invites. No media flows: these are control-plane rules (an offer is refused for its
//! grants before its SDP is read, and garbage SDP that passes the grant check is `bad_sdp`).

mod common;

use common::{Client, TestServer};
use serde_json::{Value, json};

fn pid(joined: &Value) -> u64 {
    joined["you"]["id"].as_u64().expect("you.id")
}

/// Sends `messages`; the last carries `id: "x"` and must be refused with `code`.
async fn refused(c: &mut Client, messages: &[Value], code: &str) {
    for m in messages {
        c.send(m.clone()).await;
    }
    let e = c.recv_type("error").await;
    assert_eq!(e["code"], code, "{messages:?} → {e}");
    assert_eq!(e["id"], "x", "{e}");
}

#[tokio::test]
async fn each_mode_sets_each_roles_grants() {
    let t = TestServer::start().await;
    let all = json!(["camera", "microphone", "screen", "screen_audio"]);
    let cm = json!(["camera", "microphone"]);
    let none = json!([]);
    // (mode, role, publish, chat, moderate, hidden)
    let table = [
        ("delivery", "teacher", &all, "everyone", true, false),
        ("delivery", "assistant", &all, "everyone", true, false),
        ("delivery", "classroom", &cm, "everyone", false, false),
        ("delivery", "student", &none, "everyone", false, false),
        (
            "famous_teacher",
            "classroom",
            &none,
            "everyone",
            false,
            false,
        ),
        (
            "famous_teacher",
            "observer",
            &none,
            "observers",
            false,
            true,
        ),
        ("network", "teacher", &all, "everyone", true, false),
        ("network", "assistant", &none, "everyone", true, false),
        ("network", "classroom", &none, "everyone", false, false),
        ("network", "operator", &none, "everyone", true, true),
    ];
    for (mode, role, publish, chat, moderate, hidden) in table {
        let lesson = t.create_lesson(mode).await;
        let (c, joined) = t.join(&t.invite(lesson, role, "P").await).await;
        let g = &joined["grants"];
        let case = format!("{role} in {mode}: {g}");
        assert_eq!(&g["publish"], publish, "{case}");
        assert_eq!(g["chat"], chat, "{case}");
        assert_eq!(g["moderate"], moderate, "{case}");
        assert_eq!(g["hidden"], hidden, "{case}");
        assert_eq!(g["subscribe"], true, "{case}");
        assert_eq!(joined["hands"], json!([]));
        assert_eq!(joined["stage"], json!([]));
        c.close().await;
    }
    t.stop().await;
}

#[tokio::test]
async fn hidden_participants_are_not_announced() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("delivery").await;
    let (mut teacher, _) = t.join(&t.invite(lesson, "teacher", "T").await).await;
    let (mut class, _) = t.join(&t.invite(lesson, "classroom", "C").await).await;
    teacher.recv_type("participant_joined").await;

    for (role, name) in [("observer", "Inspector"), ("operator", "Bureau")] {
        let (hidden, joined) = t.join(&t.invite(lesson, role, name).await).await;
        assert_eq!(joined["participants"].as_array().unwrap().len(), 2);
        let seen = teacher.recv_type("participant_joined").await;
        assert_eq!(
            seen["participant"]["id"],
            pid(&joined),
            "the teacher moderates"
        );
        assert!(
            class.pending().await.is_empty(),
            "the classroom is not told a {role} joined"
        );
        let (late, late_joined) = t.join(&t.invite(lesson, "classroom", "Late").await).await;
        let listed: Vec<&Value> = late_joined["participants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["role"] == role)
            .collect();
        assert!(listed.is_empty(), "{late_joined}");
        late.close().await;
        teacher.recv_type("participant_left").await;
        class.pending().await;

        hidden.close().await;
        let left = teacher.recv_type("participant_left").await;
        assert_eq!(left["participant_id"], pid(&joined));
        assert!(
            !class
                .pending()
                .await
                .contains(&"participant_left".to_owned())
        );
    }
    t.stop().await;
}

#[tokio::test]
async fn requests_a_role_may_not_make_are_refused_and_change_nothing() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("famous_teacher").await;
    let (teacher, _) = t.join(&t.invite(lesson, "teacher", "T").await).await;
    let (class, joined) = t.join(&t.invite(lesson, "classroom", "A").await).await;
    let a = pid(&joined);
    let (student, _) = t.join(&t.invite(lesson, "student", "S").await).await;
    let (observer, joined) = t.join(&t.invite(lesson, "observer", "O").await).await;
    let o = pid(&joined);
    let (operator, _) = t.join(&t.invite(lesson, "operator", "Op").await).await;
    let mut c = [teacher, class, student, observer, operator];
    const TEACHER: usize = 0;
    const CLASS: usize = 1;
    const STUDENT: usize = 2;
    const OBSERVER: usize = 3;
    const OPERATOR: usize = 4;

    c[CLASS].send(json!({"type": "raise_hand"})).await;
    c[CLASS].recv_type("hand_raised").await;
    c[TEACHER]
        .send(json!({"type": "chat", "text": "welcome"}))
        .await;
    let chat_id = c[TEACHER].recv_type("chat").await["message"]["id"].clone();
    for client in c.iter_mut() {
        client.pending().await;
    }

    let publish_camera = json!({"type": "publish", "mid": "0", "source": "camera"});
    let offer = json!({"type": "offer", "id": "x", "sdp": "v=0\r\n"});
    let one = |m: Value| vec![m];
    let cases = [
        (
            STUDENT,
            one(json!({"type": "invite_to_stage", "id": "x", "participant_id": a})),
            "forbidden",
        ),
        (
            STUDENT,
            one(json!({"type": "remove_from_stage", "id": "x", "participant_id": a})),
            "forbidden",
        ),
        (
            STUDENT,
            one(json!({"type": "lower_hand", "id": "x", "participant_id": a})),
            "forbidden",
        ),
        (
            STUDENT,
            one(json!({"type": "lower_all_hands", "id": "x"})),
            "forbidden",
        ),
        (
            STUDENT,
            one(json!({"type": "delete_chat", "id": "x", "message_id": chat_id})),
            "forbidden",
        ),
        (
            STUDENT,
            one(json!({"type": "chat", "id": "x", "text": "hi", "to": "observers"})),
            "forbidden",
        ),
        (
            STUDENT,
            one(json!({"type": "accept_stage", "id": "x"})),
            "forbidden",
        ),
        (
            STUDENT,
            one(json!({"type": "leave_stage", "id": "x"})),
            "conflict",
        ),
        (
            STUDENT,
            vec![publish_camera.clone(), offer.clone()],
            "forbidden",
        ),
        (
            CLASS,
            one(json!({"type": "invite_to_stage", "id": "x", "participant_id": a})),
            "forbidden",
        ),
        (
            CLASS,
            one(json!({"type": "accept_stage", "id": "x"})),
            "forbidden",
        ),
        (
            CLASS,
            one(json!({"type": "decline_stage", "id": "x"})),
            "forbidden",
        ),
        // A classroom publishes in a famous-teacher lesson only once on stage.
        (
            CLASS,
            vec![publish_camera.clone(), offer.clone()],
            "forbidden",
        ),
        (
            OBSERVER,
            one(json!({"type": "raise_hand", "id": "x"})),
            "forbidden",
        ),
        (
            OBSERVER,
            one(json!({"type": "delete_chat", "id": "x", "message_id": chat_id})),
            "forbidden",
        ),
        (
            OBSERVER,
            vec![publish_camera.clone(), offer.clone()],
            "forbidden",
        ),
        (
            OPERATOR,
            one(json!({"type": "raise_hand", "id": "x"})),
            "forbidden",
        ),
        (
            OPERATOR,
            vec![
                json!({"type": "publish", "mid": "1", "source": "microphone"}),
                offer.clone(),
            ],
            "forbidden",
        ),
        (
            TEACHER,
            one(json!({"type": "raise_hand", "id": "x"})),
            "forbidden",
        ),
        (
            TEACHER,
            one(json!({"type": "invite_to_stage", "id": "x", "participant_id": o})),
            "forbidden",
        ),
        (
            TEACHER,
            one(json!({"type": "invite_to_stage", "id": "x", "participant_id": 999_999})),
            "not_found",
        ),
        (
            TEACHER,
            one(json!({"type": "remove_from_stage", "id": "x", "participant_id": a})),
            "conflict",
        ),
        (
            TEACHER,
            one(json!({"type": "delete_chat", "id": "x", "message_id": 999_999})),
            "not_found",
        ),
    ];
    for (who, messages, code) in cases {
        refused(&mut c[who], &messages, code).await;
    }

    // Nobody heard of any change...
    for client in c.iter_mut() {
        assert_eq!(client.pending().await, Vec::<String>::new());
    }
    // ...and a newcomer sees the lesson as it was.
    let (_, fresh) = t.join(&t.invite(lesson, "student", "New").await).await;
    assert_eq!(fresh["hands"].as_array().unwrap().len(), 1);
    assert_eq!(fresh["hands"][0]["participant_id"], a);
    assert_eq!(fresh["stage"], json!([]));
    assert_eq!(fresh["chat"].as_array().unwrap().len(), 1);
    assert_eq!(fresh["publications"], json!([]));
    t.stop().await;
}

#[tokio::test]
async fn raise_invite_accept_then_leave_moves_grants() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("famous_teacher").await;
    let (mut teacher, joined) = t.join(&t.invite(lesson, "teacher", "T").await).await;
    let teacher_id = pid(&joined);
    let (mut class, joined) = t.join(&t.invite(lesson, "classroom", "A").await).await;
    let a = pid(&joined);

    class.send(json!({"type": "raise_hand"})).await;
    let raised = teacher.recv_type("hand_raised").await;
    assert_eq!(raised["participant_id"], a);
    assert!(raised["at"].as_str().is_some_and(|at| at.ends_with('Z')));

    teacher
        .send(json!({"type": "invite_to_stage", "participant_id": a}))
        .await;
    assert_eq!(class.recv_type("stage_invited").await["participant_id"], a);
    assert_eq!(
        teacher.recv_type("stage_invited").await["participant_id"],
        a
    );

    class.send(json!({"type": "accept_stage"})).await;
    assert_eq!(class.recv_type("hand_lowered").await["participant_id"], a);
    assert_eq!(class.recv_type("stage_changed").await["stage"], json!([a]));
    let grants = class.recv_type("grants_changed").await;
    assert_eq!(
        grants["grants"]["publish"],
        json!(["camera", "microphone"]),
        "{grants}"
    );
    assert_eq!(
        teacher.recv_type("stage_changed").await["stage"],
        json!([a])
    );
    assert!(
        !teacher
            .pending()
            .await
            .contains(&"grants_changed".to_owned()),
        "only the participant hears of its grants"
    );

    // The offer-time check reads the current grants: the camera passes it now, and only the
    // made-up SDP is refused.
    class
        .send(json!({"type": "publish", "mid": "0", "source": "camera"}))
        .await;
    class
        .send(json!({"type": "offer", "id": "o", "sdp": "not sdp"}))
        .await;
    assert_eq!(class.recv_type("error").await["code"], "bad_sdp");

    // A newcomer sees the stage.
    let (late, joined) = t.join(&t.invite(lesson, "student", "S").await).await;
    assert_eq!(joined["stage"], json!([a]));
    late.close().await;

    teacher
        .send(json!({"type": "remove_from_stage", "participant_id": a}))
        .await;
    assert_eq!(class.recv_type("stage_changed").await["stage"], json!([]));
    let grants = class.recv_type("grants_changed").await;
    assert_eq!(grants["grants"]["publish"], json!([]));
    refused(
        &mut class,
        &[
            json!({"type": "publish", "mid": "0", "source": "camera"}),
            json!({"type": "offer", "id": "x", "sdp": "v=0\r\n"}),
        ],
        "forbidden",
    )
    .await;

    // Declining: the moderators hear of it, and the invitation is gone.
    teacher
        .send(json!({"type": "invite_to_stage", "participant_id": a}))
        .await;
    class.recv_type("stage_invited").await;
    class.send(json!({"type": "decline_stage"})).await;
    assert_eq!(
        teacher.recv_type("stage_declined").await["participant_id"],
        a
    );
    refused(
        &mut class,
        &[json!({"type": "accept_stage", "id": "x"})],
        "forbidden",
    )
    .await;

    // Leaving on its own, and a moderator lowering a hand.
    teacher
        .send(json!({"type": "invite_to_stage", "participant_id": a}))
        .await;
    class.recv_type("stage_invited").await;
    class.send(json!({"type": "accept_stage"})).await;
    class.recv_type("grants_changed").await;
    teacher.pending().await;
    class.send(json!({"type": "leave_stage"})).await;
    assert_eq!(teacher.recv_type("stage_changed").await["stage"], json!([]));
    assert_eq!(
        class.recv_type("grants_changed").await["grants"]["publish"],
        json!([])
    );
    class.send(json!({"type": "raise_hand"})).await;
    teacher.recv_type("hand_raised").await;
    teacher
        .send(json!({"type": "lower_hand", "participant_id": a}))
        .await;
    assert_eq!(class.recv_type("hand_lowered").await["participant_id"], a);
    assert_ne!(teacher_id, a);
    t.stop().await;
}

#[tokio::test]
async fn the_stage_limit_holds() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("famous_teacher").await;
    let (mut teacher, _) = t.join(&t.invite(lesson, "teacher", "T").await).await;
    let mut students = Vec::new();
    for i in 0..6 {
        let (c, joined) = t
            .join(&t.invite(lesson, "student", &format!("S{i}")).await)
            .await;
        students.push((c, pid(&joined)));
    }
    // Six invitations are fine while the stage is empty; only four can be accepted.
    for (_, id) in &students {
        teacher
            .send(json!({"type": "invite_to_stage", "participant_id": id}))
            .await;
    }
    for (i, (c, _)) in students.iter_mut().enumerate() {
        c.recv_type("stage_invited").await;
        if i < 4 {
            c.send(json!({"type": "accept_stage"})).await;
            c.recv_type("grants_changed").await;
        }
    }
    let (fifth, _) = &mut students[4];
    refused(
        fifth,
        &[json!({"type": "accept_stage", "id": "x"})],
        "stage_full",
    )
    .await;
    let id5 = students[5].1;
    refused(
        &mut teacher,
        &[json!({"type": "invite_to_stage", "id": "x", "participant_id": id5})],
        "stage_full",
    )
    .await;
    let on_stage: Vec<u64> = students[..4].iter().map(|(_, id)| *id).collect();
    let (_, fresh) = t.join(&t.invite(lesson, "student", "New").await).await;
    assert_eq!(fresh["stage"], json!(on_stage));

    // A place frees up and the standing invitation can be taken.
    let (first, _) = &mut students[0];
    first.send(json!({"type": "leave_stage"})).await;
    first.recv_type("grants_changed").await;
    let (fifth, id) = &mut students[4];
    fifth.send(json!({"type": "accept_stage"})).await;
    // Earlier changes are still queued to it; the last one puts it on.
    loop {
        let stage = fifth.recv_type("stage_changed").await["stage"].clone();
        if stage.as_array().unwrap().contains(&json!(*id)) {
            assert_eq!(stage.as_array().unwrap().len(), 4, "{stage}");
            break;
        }
    }
    assert_eq!(
        fifth.recv_type("grants_changed").await["grants"]["publish"],
        json!(["camera", "microphone"])
    );
    t.stop().await;
}

#[tokio::test]
async fn a_mode_caps_its_classrooms() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("delivery").await;
    let mut classes = Vec::new();
    for i in 0..8 {
        let (c, _) = t
            .join(&t.invite(lesson, "classroom", &format!("C{i}")).await)
            .await;
        classes.push(c);
    }
    let mut ninth = t.connect().await;
    let token = t.invite(lesson, "classroom", "C9").await;
    ninth
        .send(json!({"type": "join", "id": "x", "token": token}))
        .await;
    let e = ninth.recv().await;
    assert_eq!(e["code"], "lesson_full", "{e}");
    assert_eq!(e["id"], "x");
    // Other roles are not classrooms.
    t.join(&t.invite(lesson, "teacher", "T").await).await;
    // A place frees up: once the others are told, the hub has let it go.
    classes.pop().expect("eight").close().await;
    classes[0].recv_type("participant_left").await;
    ninth
        .send(json!({"type": "join", "id": "x", "token": token}))
        .await;
    let joined = ninth.recv().await;
    assert_eq!(joined["type"], "joined", "{joined}");
    t.stop().await;
}

#[tokio::test]
async fn chat_round_trip_history_limits_and_delete() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("delivery").await;
    let (mut teacher, _) = t.join(&t.invite(lesson, "teacher", "Ms Li").await).await;
    let (mut class, joined) = t.join(&t.invite(lesson, "classroom", "Shizi").await).await;
    let a = pid(&joined);
    let (mut observer, _) = t
        .join(&t.invite(lesson, "observer", "Inspector").await)
        .await;
    teacher.pending().await;
    class.pending().await;

    class
        .send(json!({"type": "chat", "text": "  你好, teacher  "}))
        .await;
    let mut first = None;
    for c in [&mut teacher, &mut class, &mut observer] {
        let m = c.recv_type("chat").await["message"].clone();
        assert_eq!(
            m["from"],
            json!({"id": a, "name": "Shizi", "role": "classroom"})
        );
        assert_eq!(m["text"], "你好, teacher");
        assert!(m["at"].is_string() && m["id"].is_i64());
        assert!(m.get("to").is_none(), "{m}");
        first = Some(m["id"].clone());
    }
    let first = first.expect("a message id");

    // The observer's notes stay among observers and moderators, whatever it asks for.
    observer.send(json!({"type": "chat", "text": "note"})).await;
    assert_eq!(
        teacher.recv_type("chat").await["message"]["to"],
        "observers"
    );
    assert_eq!(observer.recv_type("chat").await["message"]["text"], "note");
    assert!(class.pending().await.is_empty());

    // Too long, empty, then the rate: five in ten seconds (one already sent).
    let long = "字".repeat(501);
    refused(
        &mut class,
        &[json!({"type": "chat", "id": "x", "text": long})],
        "chat_too_long",
    )
    .await;
    refused(
        &mut class,
        &[json!({"type": "chat", "id": "x", "text": " "})],
        "bad_message",
    )
    .await;
    for i in 2..=5 {
        class
            .send(json!({"type": "chat", "text": format!("m{i}")}))
            .await;
        class.recv_type("chat").await;
    }
    refused(
        &mut class,
        &[json!({"type": "chat", "id": "x", "text": "m6"})],
        "rate_limited",
    )
    .await;
    let texts = |joined: &Value| -> Vec<String> {
        joined["chat"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    };
    let (late, joined) = t.join(&t.invite(lesson, "student", "S").await).await;
    assert_eq!(
        texts(&joined),
        vec!["你好, teacher", "m2", "m3", "m4", "m5"]
    );
    late.close().await;
    let (late, joined) = t.join(&t.invite(lesson, "observer", "O2").await).await;
    assert_eq!(texts(&joined).len(), 6, "observers read their channel too");
    late.close().await;

    // Deleting: moderators only, told to everyone who could read it.
    refused(
        &mut class,
        &[json!({"type": "delete_chat", "id": "x", "message_id": first})],
        "forbidden",
    )
    .await;
    teacher
        .send(json!({"type": "delete_chat", "message_id": first}))
        .await;
    for c in [&mut teacher, &mut class, &mut observer] {
        assert_eq!(c.recv_type("chat_deleted").await["message_id"], first);
    }
    refused(
        &mut teacher,
        &[json!({"type": "delete_chat", "id": "x", "message_id": first})],
        "not_found",
    )
    .await;
    let (_, joined) = t.join(&t.invite(lesson, "student", "S2").await).await;
    assert_eq!(texts(&joined), vec!["m2", "m3", "m4", "m5"]);
    t.stop().await;
}
