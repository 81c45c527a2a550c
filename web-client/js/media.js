// Peer connection helpers. Every participant has up to two RTCPeerConnections to the SFU
// (DESIGN §4): a *publisher* one where the browser offers and the SFU answers, and a
// *subscriber* one where the SFU offers whenever the set of publications it forwards changes.
//
// The SFU is ICE-lite with its single host candidate inside its SDP, so no trickle is needed.
// Our own candidates are still sent as `candidate` messages: the server accepts and ignores
// them today, and a relay (TURN) or a non-lite peer may use them later.

const RTC_CONFIG = { bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' };

/**
 * The camera goes out as three simulcast layers named by rid, so the SFU can give each
 * classroom the one its link (or its window) can carry: a 720p camera makes ≈180p / 360p / 720p.
 * The bitrates are caps; the browser drops the top layers first when its estimate is short.
 */
export const SIMULCAST_ENCODINGS = Object.freeze([
  { rid: 'low', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'medium', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'high', maxBitrate: 1_500_000 },
]);

/** Sources sent in simulcast; a screen share stays one sharp layer, audio has none. */
const SIMULCAST_SOURCES = new Set(['camera']);

/** Puts VP8 first where the browser allows it: the SFU forwards and records VP8. */
function preferVp8(transceiver) {
  if (typeof RTCRtpSender === 'undefined' || !RTCRtpSender.getCapabilities) return;
  if (!transceiver.setCodecPreferences) return;
  const caps = RTCRtpSender.getCapabilities('video');
  if (!caps) return;
  const vp8 = caps.codecs.filter((c) => c.mimeType.toLowerCase() === 'video/vp8');
  if (vp8.length === 0) return;
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== 'video/vp8');
  try {
    transceiver.setCodecPreferences([...vp8, ...rest]);
  } catch {
    // An engine that refuses the order still negotiates something the SFU can answer.
  }
}

function sendCandidates(pc, signaling) {
  pc.addEventListener('icecandidate', (e) => {
    if (e.candidate) signaling.send({ type: 'candidate', candidate: e.candidate.toJSON() });
  });
}

/**
 * What both connections share: one RTCPeerConnection to the SFU at a time, its trickled
 * candidates sent over signaling, and its state re-dispatched as 'state' events.
 */
class PeerLeg extends EventTarget {
  constructor(signaling) {
    super();
    this.signaling = signaling;
    this.pc = null;
  }

  /** Opens a fresh connection (closing any previous one) and returns it. */
  openPc() {
    this.close();
    const pc = new RTCPeerConnection(RTC_CONFIG);
    this.pc = pc;
    sendCandidates(pc, this.signaling);
    pc.addEventListener('connectionstatechange', () =>
      this.dispatchEvent(new CustomEvent('state', { detail: pc.connectionState })),
    );
    return pc;
  }

  get connectionState() {
    return this.pc ? this.pc.connectionState : 'closed';
  }

  close() {
    if (this.pc) {
      this.pc.close();
      this.pc = null;
    }
  }
}

/**
 * The publisher connection: sends local tracks to the SFU.
 *
 * Usage: `const pub = new Publisher(signaling); await pub.publish([{track, source}], stream);`
 * Resolves once the SFU's answer is applied; `connectionState` then moves to `connected`.
 * Later tracks (a screen share, a camera once on stage) are added to the same connection with
 * `add`, which renegotiates it: the SFU keeps one publisher connection per participant, so a
 * second RTCPeerConnection would not be accepted. `remove(source)` stops a source without a
 * renegotiation (the SFU ends the publication on `unpublish`).
 */
export class Publisher extends PeerLeg {
  constructor(signaling) {
    super(signaling);
    this.sending = new Map(); // mid -> {source, transceiver, stream}
    // Negotiations run one after another: a second offer while the first waits for its
    // answer would be refused by the browser (wrong signaling state).
    this.queue = Promise.resolve();
  }

  /**
   * Opens a fresh connection carrying `items`, closing any previous one.
   * @param {{track: MediaStreamTrack, source: 'camera'|'microphone'|'screen'|'screen_audio'}[]} items
   * @param {MediaStream} stream  the stream the tracks belong to (keeps audio and video in sync)
   */
  publish(items, stream) {
    this.close();
    return this.add(items, stream);
  }

  /** Adds tracks to the open connection (renegotiating it), or opens one for them. */
  add(items, stream) {
    const run = () => this.negotiate(items, stream);
    const done = this.queue.then(run, run);
    this.queue = done.catch(() => {});
    return done;
  }

  async negotiate(items, stream) {
    const pc = this.pc || this.openPc();
    // Work-around: the SFU's WebRTC stack (rtc 0.21) forgets the SSRCs it learned for simulcast
    // streams whenever the publisher connection is offered again, and Chrome no longer tags a
    // stream it knows was received with its rid, so a running simulcast camera would stop
    // reaching anyone after this offer. A re-offer therefore also moves each running simulcast
    // track to a fresh transceiver (new SSRCs, tagged again) and retires the old one once the
    // answer is in. Remove when the SFU keeps learned SSRCs across offers.
    const moved = [];
    if (pc.remoteDescription) {
      for (const [mid, s] of this.sending) {
        const track = s.transceiver.sender.track;
        if (track && track.readyState === 'live' && SIMULCAST_SOURCES.has(s.source)) {
          moved.push({ mid, old: s, item: { track, source: s.source, stream: s.stream } });
        }
      }
    }
    const wanted = [...items.map((i) => ({ ...i, stream })), ...moved.map((m) => m.item)];
    const added = wanted.map(({ track, source, stream }) => {
      const init = { direction: 'sendonly', streams: [stream] };
      if (track.kind === 'video' && SIMULCAST_SOURCES.has(source)) {
        // Fresh objects: the browser may annotate what it is given.
        init.sendEncodings = SIMULCAST_ENCODINGS.map((e) => ({ ...e }));
      }
      const transceiver = pc.addTransceiver(track, init);
      if (track.kind === 'video') preferVp8(transceiver);
      return { transceiver, source, stream };
    });

    try {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      // Mids exist once the local description is set; each `publish` names the source of one
      // transceiver and must reach the server before the offer that carries it.
      for (const { transceiver, source } of added) {
        this.signaling.send({ type: 'publish', mid: transceiver.mid, source });
      }
      const reply = await this.signaling.request({ type: 'offer', sdp: pc.localDescription.sdp });
      if (this.pc !== pc) return; // closed meanwhile
      await pc.setRemoteDescription({ type: 'answer', sdp: reply.sdp });
    } catch (err) {
      // A refused offer leaves the connection as it was, so the next one can still be made.
      if (this.pc === pc && pc.signalingState === 'have-local-offer') {
        await pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
      }
      for (const { transceiver } of added) {
        if (this.pc !== pc) continue;
        transceiver.sender.replaceTrack(null).catch(() => {});
        // The server keeps declared sources until told otherwise, and checks them all on the
        // next offer: one refused now must not refuse that one too.
        if (transceiver.mid !== null) this.signaling.send({ type: 'unpublish', mid: transceiver.mid });
      }
      throw err;
    }
    for (const { mid, old } of moved) {
      this.sending.delete(mid);
      this.signaling.send({ type: 'unpublish', mid });
      await old.transceiver.sender.replaceTrack(null).catch(() => {});
    }
    for (const { transceiver, source, stream } of added) this.sending.set(transceiver.mid, { source, transceiver, stream });
  }

  /**
   * Stops sending `source`: the SFU ends its publication at once. The transceiver stays with
   * no track (a later `add` takes a new one: the SFU starts a publication on a new track only).
   */
  remove(source) {
    const run = async () => {
      for (const [mid, s] of [...this.sending]) {
        if (s.source !== source) continue;
        this.sending.delete(mid);
        this.signaling.send({ type: 'unpublish', mid });
        await s.transceiver.sender.replaceTrack(null).catch(() => {});
      }
    };
    const done = this.queue.then(run, run);
    this.queue = done.catch(() => {});
    return done;
  }

  /** The sources being sent now. */
  sources() {
    return new Set([...this.sending.values()].map((s) => s.source));
  }

  close() {
    super.close();
    this.sending.clear();
  }

  /**
   * What each outgoing video layer is doing, from outbound-rtp: one entry per rid (or one
   * without a rid for a plain track), best layer last. `active` is the encoding's own switch;
   * `qualityLimitationReason` says why the browser sends less than asked ('bandwidth', 'cpu').
   */
  async videoLayers() {
    if (!this.pc) return [];
    const active = new Map(); // rid -> active
    for (const sender of this.pc.getSenders()) {
      if (!sender.track || sender.track.kind !== 'video') continue;
      for (const enc of sender.getParameters().encodings || []) active.set(enc.rid ?? '', enc.active !== false);
    }
    const report = await this.pc.getStats();
    let estimate = null;
    const layers = [];
    report.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate !== undefined) {
        estimate = s.availableOutgoingBitrate;
      }
      if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
      layers.push({
        rid: s.rid ?? '',
        active: active.get(s.rid ?? '') ?? null,
        frameWidth: s.frameWidth || 0,
        frameHeight: s.frameHeight || 0,
        framesEncoded: s.framesEncoded || 0,
        framesSent: s.framesSent || 0,
        bytesSent: s.bytesSent || 0,
        targetBitrate: s.targetBitrate ?? null,
        qualityLimitationReason: s.qualityLimitationReason ?? null,
        encoderImplementation: s.encoderImplementation ?? null,
        pliCount: s.pliCount || 0,
        firCount: s.firCount || 0,
      });
    });
    const order = { low: 0, medium: 1, high: 2 };
    layers.sort((a, b) => (order[a.rid] ?? 3) - (order[b.rid] ?? 3));
    return layers.map((l) => ({ ...l, availableOutgoingBitrate: estimate }));
  }

}

/**
 * The subscriber connection: receives what the SFU forwards.
 *
 * Feed it every server `offer`; it answers and keeps the mid → publication map from `tracks`.
 * Events: 'tracks' (the set of received tracks changed; read `receivers()`),
 * 'state' (detail = connectionState).
 */
export class Subscriber extends PeerLeg {
  constructor(signaling) {
    super(signaling);
    this.mapping = new Map(); // mid -> publication id
    // Offers are applied strictly one after another; a second offer arriving while the first
    // is being answered must not interleave with it.
    this.queue = Promise.resolve();
  }

  /** Applies one server `offer {sdp, tracks}` and answers it. */
  handleOffer(msg) {
    this.queue = this.queue
      .then(() => this.applyOffer(msg))
      .catch((err) => {
        console.error('subscriber: could not apply the offer', err);
        this.dispatchEvent(new CustomEvent('failed', { detail: err }));
      });
    return this.queue;
  }

  async applyOffer({ sdp, tracks }) {
    const pc = this.ensurePc();
    this.mapping = new Map((tracks || []).map((m) => [String(m.mid), m.publication_id]));
    await pc.setRemoteDescription({ type: 'offer', sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.signaling.send({ type: 'answer', sdp: pc.localDescription.sdp });
    this.dispatchEvent(new CustomEvent('tracks'));
  }

  ensurePc() {
    if (this.pc) return this.pc;
    const pc = this.openPc();
    pc.addEventListener('track', () => this.dispatchEvent(new CustomEvent('tracks')));
    return pc;
  }

  /** Adds a remote ICE candidate, for servers that trickle theirs (after the offer it belongs to). */
  addCandidate(candidate) {
    if (!candidate) return;
    this.queue = this.queue.then(async () => {
      if (!this.pc) return;
      try {
        await this.pc.addIceCandidate(candidate);
      } catch (err) {
        console.warn('subscriber: ignoring a candidate', err);
      }
    });
  }

  /** The tracks being received now, each with the publication it carries. */
  receivers() {
    if (!this.pc) return [];
    const out = [];
    for (const tr of this.pc.getTransceivers()) {
      if (tr.stopped || tr.mid === null) continue;
      const publicationId = this.mapping.get(tr.mid);
      if (publicationId === undefined) continue;
      if (tr.currentDirection && !tr.currentDirection.includes('recv')) continue;
      out.push({ mid: tr.mid, publicationId, track: tr.receiver.track });
    }
    return out;
  }

  /**
   * Sums inbound-rtp statistics: what a classroom has actually received and decoded.
   * `videoFrameHeight` is the tallest frame decoded last on any video track (the layer the SFU
   * forwards now); freezes, PLIs and dropped frames tell a stalled decoder from a quiet one.
   */
  async stats() {
    const out = emptyStats();
    if (!this.pc) return out;
    const report = await this.pc.getStats();
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      if (s.kind === 'video') {
        out.videoFramesDecoded += s.framesDecoded || 0;
        out.videoKeyFramesDecoded += s.keyFramesDecoded || 0;
        out.videoFramesDropped += s.framesDropped || 0;
        out.videoFreezeCount += s.freezeCount || 0;
        out.videoPliCount += s.pliCount || 0;
        out.videoPacketsLost += s.packetsLost || 0;
        out.videoFrameHeight = Math.max(out.videoFrameHeight, s.frameHeight || 0);
        out.videoFrameWidth = Math.max(out.videoFrameWidth, s.frameWidth || 0);
        if (s.decoderImplementation) out.videoDecoder = s.decoderImplementation;
      } else if (s.kind === 'audio') {
        out.audioPacketsReceived += s.packetsReceived || 0;
      }
    });
    return out;
  }

  /**
   * What this connection received of one publication: packets (audio and video) and decoded
   * frames (video), from the inbound-rtp entry of its transceiver. Null while not received.
   */
  async publicationStats(publicationId) {
    if (!this.pc) return null;
    for (const tr of this.pc.getTransceivers()) {
      if (tr.mid === null || this.mapping.get(tr.mid) !== publicationId) continue;
      const report = await tr.receiver.getStats();
      let out = null;
      report.forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        out = {
          kind: s.kind,
          packetsReceived: s.packetsReceived || 0,
          bytesReceived: s.bytesReceived || 0,
          framesDecoded: s.framesDecoded || 0,
          frameHeight: s.frameHeight || 0,
        };
      });
      return out;
    }
    return null;
  }

  close() {
    super.close();
    this.mapping.clear();
  }
}

/** Simulcast layers, worst first (the SFU's `max_layer` values). */
export const LAYERS = Object.freeze(['low', 'medium', 'high']);

/** The worse of two layers. */
export function lowerLayer(a, b) {
  return LAYERS[Math.min(LAYERS.indexOf(a), LAYERS.indexOf(b))];
}

/**
 * The layer a picture of this many device pixels in height needs: the SFU's layers are about
 * 180p / 360p / 720p, and each may be stretched up to 1.5× before it looks soft.
 */
export function layerForHeight(px) {
  if (px <= 270) return 'low';
  if (px <= 540) return 'medium';
  return 'high';
}

/** The height in device pixels a 16:9 picture shown with `object-fit: contain` gets in `el`. */
export function shownHeight(el) {
  const box = el.getBoundingClientRect();
  if (box.width === 0 || box.height === 0) return 0;
  return Math.min(box.height, (box.width * 9) / 16) * (window.devicePixelRatio || 1);
}

/**
 * The best layer this page wants of each video it receives, told to the SFU
 * (`set_subscription`) only when it changes. A fresh subscription starts at `high` on the
 * server, so wanting `high` of one never told otherwise sends nothing. The server answers
 * only a refusal (an `error`).
 */
export class LayerWishes {
  constructor(signaling) {
    this.signaling = signaling;
    this.sent = new Map(); // publication id -> layer the SFU was told (or starts with)
  }

  /** Asks for `layer` of a publication; returns false when it could not be sent (socket down). */
  want(publicationId, layer) {
    const told = this.sent.get(publicationId);
    if (told === layer) return true;
    if (told === undefined && layer === 'high') {
      this.sent.set(publicationId, layer);
      return true;
    }
    const ok = this.signaling.send({
      type: 'set_subscription',
      publication_id: publicationId,
      max_layer: layer,
      paused: false,
    });
    // Not sent: the rejoin that follows starts fresh subscriptions, and asks again.
    if (ok) this.sent.set(publicationId, layer);
    return ok;
  }

  /** Forgets publications no longer received (the map stays as small as what is shown). */
  keepOnly(publicationIds) {
    const keep = new Set(publicationIds);
    for (const id of [...this.sent.keys()]) if (!keep.has(id)) this.sent.delete(id);
  }

  /** A rejoin: every subscription starts afresh at `high`. */
  reset() {
    this.sent.clear();
  }
}

/**
 * Plays received audio tracks, one <audio> element each (a stream of several tracks is not
 * mixed by every browser). A browser that wants a gesture before sound sets `blocked` and
 * fires 'blocked'; `unlock()` from a gesture tries again.
 */
export class AudioSink extends EventTarget {
  constructor(container = document.body) {
    super();
    this.container = container;
    this.players = new Map(); // track id -> <audio>
    this.blocked = false;
  }

  /** Plays exactly `tracks` from now on. */
  sync(tracks) {
    const wanted = new Map(tracks.map((tr) => [tr.id, tr]));
    for (const [id, el] of [...this.players]) {
      if (wanted.has(id)) continue;
      el.srcObject = null;
      el.remove();
      this.players.delete(id);
    }
    for (const [id, track] of wanted) {
      if (this.players.has(id)) continue;
      const el = document.createElement('audio');
      el.autoplay = true;
      el.hidden = true;
      el.srcObject = new MediaStream([track]);
      this.container.append(el);
      this.players.set(id, el);
      this.play(el);
    }
  }

  async play(el) {
    try {
      await el.play();
      this.setBlocked(false);
    } catch (err) {
      if (err && err.name === 'NotAllowedError') this.setBlocked(true);
    }
  }

  /** From a user gesture: starts every player a browser held back. */
  unlock() {
    if (!this.blocked) return;
    for (const el of this.players.values()) this.play(el);
  }

  setBlocked(blocked) {
    if (this.blocked === blocked) return;
    this.blocked = blocked;
    this.dispatchEvent(new CustomEvent('blocked', { detail: blocked }));
  }

  get count() {
    return this.players.size;
  }

  clear() {
    this.sync([]);
  }
}

/** Statistics of a subscriber that has received nothing yet (see `Subscriber.stats`). */
export function emptyStats() {
  return {
    videoFramesDecoded: 0,
    videoKeyFramesDecoded: 0,
    videoFramesDropped: 0,
    videoFreezeCount: 0,
    videoPliCount: 0,
    videoPacketsLost: 0,
    videoFrameHeight: 0,
    videoFrameWidth: 0,
    videoDecoder: null,
    audioPacketsReceived: 0,
  };
}

const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
const VIDEO_CONSTRAINTS = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };

/** Opens camera and microphone with settings that suit a classroom broadcast. */
export function openCameraAndMicrophone() {
  return openMedia({ camera: true, microphone: true });
}

/** Opens the camera and/or the microphone, as asked. */
export function openMedia({ camera, microphone }) {
  return navigator.mediaDevices.getUserMedia({
    audio: microphone ? AUDIO_CONSTRAINTS : false,
    video: camera ? VIDEO_CONSTRAINTS : false,
  });
}

/**
 * Asks the browser for a screen or window to share. Text on slides matters more than motion,
 * so a modest frame rate at full resolution.
 */
export function openScreen() {
  return navigator.mediaDevices.getDisplayMedia({
    video: { frameRate: { ideal: 15, max: 30 } },
    audio: false,
  });
}
