// The message catalog: every string the pages show lives here, so a translation is one more
// table and nothing else. English is the reference; zh-CN is kept complete alongside it.
//
// Lookup: t('key', {name: 'x'}) replaces {name}. A key missing from the active locale falls back
// to English, then to the key itself, so a half-translated table never shows blanks.
// Static markup is translated by data attributes, see applyI18n().

const en = {
  'app.name': 'Classroom',
  'app.teacherConsole': 'Teacher console',

  'conn.offline': 'Not connected',
  'conn.connecting': 'Connecting…',
  'conn.live': 'On air',
  'conn.reconnecting': 'Reconnecting…',
  'conn.closed': 'Disconnected',

  'key.title': 'Open the teacher console link',
  'key.body': 'When Classroom starts it prints a “Teacher console” link that contains your access key. Open that link, or paste the key here.',
  'key.label': 'Access key',
  'key.placeholder': 'Paste the key from the server output',
  'key.submit': 'Continue',
  'key.invalid': 'That access key was not accepted. Check the link printed by the server.',
  'key.forget': 'Use a different key',

  'lessons.title': 'Lessons',
  'lessons.lead': 'Create a lesson, go live, and invite remote classrooms to watch and listen.',
  'lessons.yours': 'All lessons',
  'lessons.empty': 'No lessons yet. Create the first one with the form.',
  'lessons.loading': 'Loading lessons…',
  'lessons.loadFailed': 'Could not load lessons: {message}',
  'lessons.open': 'Open',
  'lessons.refresh': 'Refresh',

  'create.title': 'New lesson',
  'create.lessonTitle': 'Title',
  'create.lessonTitlePh': 'e.g. Fractions on the number line',
  'create.subject': 'Subject',
  'create.subjectPh': 'e.g. Mathematics',
  'create.grade': 'Grade',
  'create.gradePh': 'e.g. Grade 5',
  'create.mode': 'Lesson type',
  'create.submit': 'Create lesson',
  'create.creating': 'Creating…',
  'create.failed': 'Could not create the lesson: {message}',

  'mode.delivery': 'Specialised delivery classroom',
  'mode.delivery.hint': 'A host class and a few paired classrooms learn together.',
  'mode.famous_teacher': 'Famous-teacher classroom',
  'mode.famous_teacher.hint': 'A demonstration lesson that many classrooms watch and join.',
  'mode.network': 'Famous-school network classroom',
  'mode.network.hint': 'A school broadcasts its lesson to every classroom in the region.',

  'state.scheduled': 'Scheduled',
  'state.live': 'Live',
  'state.ended': 'Ended',

  'role.teacher': 'Teacher',
  'role.assistant': 'Assistant',
  'role.classroom': 'Classroom',
  'role.student': 'Student',
  'role.observer': 'Observer',
  'role.operator': 'Operator',
  'role.recorder': 'Recorder',

  'lesson.back': 'All lessons',
  'lesson.placeholderTitle': 'Lesson {id}',
  'lesson.notFound': 'This lesson could not be found.',
  'lesson.end': 'End lesson',
  'lesson.endConfirmTitle': 'End this lesson for everyone?',
  'lesson.endConfirmBody': 'Every classroom will be disconnected and the lesson cannot be restarted.',
  'lesson.endConfirm': 'End lesson',
  'lesson.cancel': 'Cancel',
  'lesson.ended': 'The lesson has ended.',
  'lesson.endFailed': 'Could not end the lesson: {message}',

  'camera.starting': 'Starting camera and microphone…',
  'camera.denied': 'Camera and microphone are blocked. Allow them in the browser’s address bar, then reload.',
  'camera.missing': 'No camera or microphone was found.',
  'camera.failed': 'Could not start the camera: {message}',
  'camera.off': 'Camera is off',
  'camera.retry': 'Try again',

  'controls.mic': 'Microphone',
  'controls.micOn': 'Mute microphone',
  'controls.micOff': 'Unmute microphone',
  'controls.cam': 'Camera',
  'controls.camOn': 'Turn camera off',
  'controls.camOff': 'Turn camera on',
  'controls.yourName': 'Your name',
  'controls.yourNamePh': 'Teacher',
  'controls.goLive': 'Go live',
  'controls.connecting': 'Connecting…',
  'controls.cancel': 'Cancel',
  'controls.stop': 'Stop broadcasting',
  'controls.onAir': 'LIVE',
  'controls.liveFailed': 'Could not go live: {message}',

  'invite.title': 'Invite a classroom',
  'invite.history': 'Invited classrooms',
  'invite.lead': 'Each classroom gets its own link. Open it in the browser on the classroom’s big screen.',
  'invite.name': 'Classroom name',
  'invite.namePh': 'e.g. Grade 5, Shizi Village School',
  'invite.submit': 'Create link',
  'invite.copy': 'Copy',
  'invite.copied': 'Copied',
  'invite.failed': 'Could not create the invitation: {message}',
  'invite.none': 'No classrooms invited yet.',

  'people.title': 'In this lesson',
  'people.empty': 'Nobody has joined yet.',
  'people.offline': 'Go live to see who is watching.',
  'people.you': 'you',

  'error.network': 'The server could not be reached.',
  'error.server': 'Server error: {message}',
  'error.signaling': '{message}',

  'classroom.pageTitle': 'Classroom',
  'classroom.joining': 'Joining the lesson…',
  'classroom.with': 'with {teacher}',
  'classroom.status.connecting': 'Connecting',
  'classroom.status.live': 'Live',
  'classroom.status.reconnecting': 'Reconnecting',
  'classroom.status.waiting': 'Waiting for the teacher',
  'classroom.status.ended': 'Lesson ended',
  'classroom.status.error': 'Cannot join',
  'classroom.msg.connecting': 'Connecting to the lesson…',
  'classroom.msg.connectingDetail': 'This usually takes a moment.',
  'classroom.msg.waiting': 'The teacher is not here yet',
  'classroom.msg.waitingDetail': 'The lesson will appear here as soon as the teacher goes live.',
  'classroom.msg.starting': 'The teacher is joining…',
  'classroom.msg.startingDetail': 'Video will start in a moment.',
  'classroom.msg.reconnecting': 'Connection lost — reconnecting…',
  'classroom.msg.reconnectingDetail': 'Keep this page open. It will continue by itself.',
  'classroom.msg.ended': 'The lesson has ended',
  'classroom.msg.endedDetail': 'Thank you for joining. You can close this page.',
  'classroom.msg.noToken': 'This page needs an invitation link',
  'classroom.msg.noTokenDetail': 'Ask the teacher for the link for your classroom and open it here.',
  'classroom.msg.badToken': 'This invitation link does not work',
  'classroom.msg.badTokenDetail': 'It may have expired or be for another lesson. Ask the teacher for a new link.',
  'classroom.msg.failed': 'Could not join the lesson',
  'classroom.sound': 'Tap or press any key to turn on sound',
  'classroom.fullscreen': 'Full screen (F)',
  'classroom.exitFullscreen': 'Exit full screen (F)',
};

const zhCN = {
  'app.name': '课堂',
  'app.teacherConsole': '教师控制台',

  'conn.offline': '未连接',
  'conn.connecting': '正在连接…',
  'conn.live': '直播中',
  'conn.reconnecting': '正在重新连接…',
  'conn.closed': '已断开',

  'key.title': '请打开教师控制台链接',
  'key.body': '课堂服务启动时会打印一条包含访问密钥的“教师控制台”链接。请打开该链接，或在此粘贴密钥。',
  'key.label': '访问密钥',
  'key.placeholder': '粘贴服务输出中的密钥',
  'key.submit': '继续',
  'key.invalid': '访问密钥无效，请检查服务打印的链接。',
  'key.forget': '使用其他密钥',

  'lessons.title': '课程',
  'lessons.lead': '创建课程、开始直播，并邀请远端教室收看收听。',
  'lessons.yours': '全部课程',
  'lessons.empty': '还没有课程，请用右侧表单创建第一节课。',
  'lessons.loading': '正在加载课程…',
  'lessons.loadFailed': '无法加载课程：{message}',
  'lessons.open': '进入',
  'lessons.refresh': '刷新',

  'create.title': '新建课程',
  'create.lessonTitle': '课程名称',
  'create.lessonTitlePh': '例如：数轴上的分数',
  'create.subject': '学科',
  'create.subjectPh': '例如：数学',
  'create.grade': '年级',
  'create.gradePh': '例如：五年级',
  'create.mode': '课堂类型',
  'create.submit': '创建课程',
  'create.creating': '正在创建…',
  'create.failed': '无法创建课程：{message}',

  'mode.delivery': '专递课堂',
  'mode.delivery.hint': '主讲班级与几个结对的远端教室一起上课。',
  'mode.famous_teacher': '名师课堂',
  'mode.famous_teacher.hint': '名师示范课，众多教室观摩并参与。',
  'mode.network': '名校网络课堂',
  'mode.network.hint': '名校把课堂直播到全县、全省的教室。',

  'state.scheduled': '未开始',
  'state.live': '直播中',
  'state.ended': '已结束',

  'role.teacher': '教师',
  'role.assistant': '助教',
  'role.classroom': '教室',
  'role.student': '学生',
  'role.observer': '观摩',
  'role.operator': '运维',
  'role.recorder': '录制',

  'lesson.back': '全部课程',
  'lesson.placeholderTitle': '课程 {id}',
  'lesson.notFound': '找不到这节课。',
  'lesson.end': '结束课程',
  'lesson.endConfirmTitle': '为所有人结束这节课？',
  'lesson.endConfirmBody': '所有教室都会断开，课程结束后不能重新开始。',
  'lesson.endConfirm': '结束课程',
  'lesson.cancel': '取消',
  'lesson.ended': '课程已结束。',
  'lesson.endFailed': '无法结束课程：{message}',

  'camera.starting': '正在打开摄像头和麦克风…',
  'camera.denied': '摄像头和麦克风被阻止。请在浏览器地址栏中允许后刷新页面。',
  'camera.missing': '没有找到摄像头或麦克风。',
  'camera.failed': '无法打开摄像头：{message}',
  'camera.off': '摄像头已关闭',
  'camera.retry': '重试',

  'controls.mic': '麦克风',
  'controls.micOn': '关闭麦克风',
  'controls.micOff': '打开麦克风',
  'controls.cam': '摄像头',
  'controls.camOn': '关闭摄像头',
  'controls.camOff': '打开摄像头',
  'controls.yourName': '您的姓名',
  'controls.yourNamePh': '教师',
  'controls.goLive': '开始直播',
  'controls.connecting': '正在连接…',
  'controls.cancel': '取消',
  'controls.stop': '停止直播',
  'controls.onAir': '直播中',
  'controls.liveFailed': '无法开始直播：{message}',

  'invite.title': '邀请教室',
  'invite.history': '已邀请的教室',
  'invite.lead': '每个教室有自己的链接，请在教室大屏的浏览器中打开。',
  'invite.name': '教室名称',
  'invite.namePh': '例如：狮子村小学五年级',
  'invite.submit': '生成链接',
  'invite.copy': '复制',
  'invite.copied': '已复制',
  'invite.failed': '无法生成邀请：{message}',
  'invite.none': '还没有邀请教室。',

  'people.title': '参与者',
  'people.empty': '还没有人加入。',
  'people.offline': '开始直播后可以看到收看的教室。',
  'people.you': '我',

  'error.network': '无法连接服务器。',
  'error.server': '服务器错误：{message}',
  'error.signaling': '{message}',

  'classroom.pageTitle': '课堂',
  'classroom.joining': '正在进入课堂…',
  'classroom.with': '主讲：{teacher}',
  'classroom.status.connecting': '正在连接',
  'classroom.status.live': '直播中',
  'classroom.status.reconnecting': '正在重连',
  'classroom.status.waiting': '等待教师',
  'classroom.status.ended': '课程已结束',
  'classroom.status.error': '无法加入',
  'classroom.msg.connecting': '正在连接课堂…',
  'classroom.msg.connectingDetail': '请稍候。',
  'classroom.msg.waiting': '教师还没有上线',
  'classroom.msg.waitingDetail': '教师开始直播后，画面会自动出现在这里。',
  'classroom.msg.starting': '教师正在进入…',
  'classroom.msg.startingDetail': '画面马上就来。',
  'classroom.msg.reconnecting': '连接中断，正在重新连接…',
  'classroom.msg.reconnectingDetail': '请保持此页面打开，连接会自动恢复。',
  'classroom.msg.ended': '本节课已结束',
  'classroom.msg.endedDetail': '感谢参与，可以关闭此页面了。',
  'classroom.msg.noToken': '需要邀请链接才能进入',
  'classroom.msg.noTokenDetail': '请向教师索取本教室的链接并在此打开。',
  'classroom.msg.badToken': '邀请链接无效',
  'classroom.msg.badTokenDetail': '链接可能已过期或属于其他课程，请向教师索取新链接。',
  'classroom.msg.failed': '无法进入课堂',
  'classroom.sound': '点击屏幕或按任意键打开声音',
  'classroom.fullscreen': '全屏（F）',
  'classroom.exitFullscreen': '退出全屏（F）',
};

export const catalogs = { en, 'zh-CN': zhCN };
export const locales = Object.keys(catalogs);

const STORAGE_KEY = 'classroom.locale';

/** Picks the locale: `?lang=` in the address, then a saved choice, then the browser's language. */
function detectLocale() {
  const candidates = [];
  try {
    const fromUrl = new URLSearchParams(location.search).get('lang');
    if (fromUrl) candidates.push(fromUrl);
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved) candidates.push(saved);
  } catch {
    // Storage can be disabled (private mode, policies); the browser language still works.
  }
  candidates.push(...(navigator.languages || [navigator.language || 'en']));
  for (const c of candidates) {
    if (catalogs[c]) return c;
    if (/^zh\b/i.test(c) && !/^zh-(TW|HK|MO|Hant)/i.test(c)) return 'zh-CN';
    if (/^en\b/i.test(c)) return 'en';
  }
  return 'en';
}

let current = detectLocale();

export function locale() {
  return current;
}

/** Switches the locale (kept for the next visit) and re-translates static markup. */
export function setLocale(next) {
  if (!catalogs[next]) return;
  current = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // Not kept across visits; still applies now.
  }
  applyI18n(document);
}

/** Translates `key`, filling `{name}` placeholders from `params`. */
export function t(key, params = {}) {
  const text = catalogs[current][key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole,
  );
}

/**
 * Translates static markup under `root`: `data-i18n` sets the text, and
 * `data-i18n-placeholder`, `data-i18n-title`, `data-i18n-aria-label` set those attributes.
 */
export function applyI18n(root = document) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const [attr, key] of [
    ['placeholder', 'i18nPlaceholder'],
    ['title', 'i18nTitle'],
    ['aria-label', 'i18nAriaLabel'],
  ]) {
    for (const el of root.querySelectorAll(`[data-i18n-${attr}]`)) el.setAttribute(attr, t(el.dataset[key]));
  }
}
