// The phase of a watching page (classroom, student): what the people in front of it should be
// told, derived from what is known rather than stored.
//
//   connecting → waiting (no teacher yet) → starting (teacher here, no picture yet) → live,
//   and reconnecting (this page's link), teacherAway (the teacher's link), ended, removed,
//   error (the link cannot join).

import { t } from './i18n.js';

/** How each phase looks: the status pill, the message in the middle and its picture. */
export const PHASE_VIEW = {
  connecting: { status: 'connecting', statusKey: 'connecting', title: 'classroom.msg.connecting', detail: 'classroom.msg.connectingDetail', visual: 'spinner' },
  reconnecting: { status: 'reconnecting', statusKey: 'reconnecting', title: 'classroom.msg.reconnecting', detail: 'classroom.msg.reconnectingDetail', visual: 'spinner' },
  waiting: { status: 'waiting', statusKey: 'waiting', title: 'classroom.msg.waiting', detail: 'classroom.msg.waitingDetail', visual: 'clock' },
  starting: { status: 'connecting', statusKey: 'connecting', title: 'classroom.msg.starting', detail: 'classroom.msg.startingDetail', visual: 'spinner' },
  teacherAway: { status: 'reconnecting', statusKey: 'teacherAway', title: 'classroom.msg.teacherAway', detail: 'classroom.msg.teacherAwayDetail', visual: 'spinner' },
  live: { status: 'live', statusKey: 'live', title: null, detail: null, visual: null },
  ended: { status: 'ended', statusKey: 'ended', title: 'classroom.msg.ended', detail: 'classroom.msg.endedDetail', visual: 'check' },
  removed: { status: 'ended', statusKey: 'removed', title: 'classroom.msg.removed', detail: 'classroom.msg.removedDetail', visual: 'userRemove' },
  error: { status: 'error', statusKey: 'error', title: null, detail: null, visual: 'alert' },
};

/** Phases after which nothing more happens on the page. */
export const FINAL_PHASES = new Set(['ended', 'removed', 'error']);

/** The phase of a page holding `session`; `pictureShown` when the teacher's picture plays. */
export function watchPhase(session, { error = null, pictureShown = false } = {}) {
  if (error || session.fatal) return 'error';
  if (session.removed) return 'removed';
  if (session.ended) return 'ended';
  const sig = session.status;
  if (sig === 'reconnecting') return 'reconnecting';
  if (!session.room.joined || sig !== 'open') return 'connecting';
  const teacher = session.room.teacher();
  if (teacher && session.room.isReconnecting(teacher.id)) return 'teacherAway';
  if (pictureShown) return 'live';
  return teacher ? 'starting' : 'waiting';
}

/**
 * What a watching page knows and does, for test and support hooks (`classroomDebug`,
 * `studentDebug`): its seat, what it receives, shows and sends.
 */
export function watchState(session, seat, picture) {
  const room = session?.room;
  return {
    participantId: room?.you ? room.you.id : null,
    lessonId: room?.lesson ? room.lesson.id : null,
    role: room?.you ? room.you.role : null,
    mode: room?.mode || null,
    soundBlocked: picture.audio.blocked,
    receiving: session?.subscriber ? session.subscriber.receivers().length : 0,
    hand: !!seat?.handUp,
    onStage: !!seat?.onStage,
    invitation: !!seat?.invitation,
    sending: seat?.sending && session.publisher ? [...session.publisher.sources()] : [],
    publisher: session?.publisher ? session.publisher.connectionState : 'closed',
    micMutedByTeacher: !!seat?.mutedByTeacher('microphone'),
    camMutedByTeacher: !!seat?.mutedByTeacher('camera'),
    cameraPublicationId: picture.camera ? picture.camera.publicationId : null,
    screenPublicationId: picture.screen ? picture.screen.publicationId : null,
    screenShown: !!picture.screen && picture.screenPlaying,
    strip: [...picture.strip.tiles.values()].map((tile) => Number(tile.el.dataset.participantId)),
    chat: room ? room.chat.map((m) => ({ id: m.id, text: m.text, from: m.from?.name })) : [],
    publications: room ? [...room.publications.values()] : [],
  };
}

/** Why a link could not join, in words for the room: `{title, detail}`. */
export function describeFatal(fatal) {
  const code = fatal?.code;
  if (['invalid_token', 'token_expired', 'wrong_lesson', 'no_such_lesson', 'forbidden'].includes(code)) {
    return { title: t('classroom.msg.badToken'), detail: t('classroom.msg.badTokenDetail') };
  }
  if (code === 'lesson_full') return { title: t('classroom.msg.full'), detail: t('classroom.msg.fullDetail') };
  return { title: t('classroom.msg.failed'), detail: fatal?.message || code || '' };
}

