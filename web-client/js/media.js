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
 */
export class Publisher extends PeerLeg {

  /**
   * @param {{track: MediaStreamTrack, source: 'camera'|'microphone'|'screen'|'screen_audio'}[]} items
   * @param {MediaStream} stream  the stream the tracks belong to (keeps audio and video in sync)
   */
  async publish(items, stream) {
    const pc = this.openPc();

    const added = items.map(({ track, source }) => {
      const init = { direction: 'sendonly', streams: [stream] };
      if (track.kind === 'video' && SIMULCAST_SOURCES.has(source)) {
        // Fresh objects: the browser may annotate what it is given.
        init.sendEncodings = SIMULCAST_ENCODINGS.map((e) => ({ ...e }));
      }
      const transceiver = pc.addTransceiver(track, init);
      if (track.kind === 'video') preferVp8(transceiver);
      return { transceiver, source };
    });

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

  close() {
    super.close();
    this.mapping.clear();
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

/** Opens camera and microphone with settings that suit a classroom broadcast. */
export function openCameraAndMicrophone() {
  return navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
  });
}
