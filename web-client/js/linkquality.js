// The link-quality indicator: how what this page receives is faring, from the server's
// `quality` reports (every 2 s; the loss and round trip this browser's receiver reports gave the
// server). A rural classroom sees at a glance whether a frozen or soft picture is its own link.

/** Loss above which a link is poor, and above which it is only fair (fractions). */
const POOR_LOSS = 0.08;
const FAIR_LOSS = 0.02;
/** Round trips (ms) above which a link is poor or only fair (ITU-T G.114 puts 150 ms one way
 * as the limit of natural conversation). */
const POOR_RTT_MS = 400;
const FAIR_RTT_MS = 200;
/** Reports older than this are stale: the page is not receiving any more. */
const STALE_MS = 7000;

/**
 * 'good' | 'fair' | 'poor', or null when there is nothing to judge.
 * @param {{receiving: Array<{loss:number, rtt_ms?:number, layer?:string}>, at:number}|null} quality
 */
export function linkLevel(quality, now = Date.now()) {
  if (!quality || now - quality.at > STALE_MS || quality.receiving.length === 0) return null;
  const loss = Math.max(...quality.receiving.map((q) => q.loss || 0));
  const rtt = Math.max(...quality.receiving.map((q) => q.rtt_ms || 0));
  // The layer is not judged: a page showing video small asks for a lower one itself.
  if (loss > POOR_LOSS || rtt > POOR_RTT_MS) return 'poor';
  if (loss > FAIR_LOSS || rtt > FAIR_RTT_MS) return 'fair';
  return 'good';
}

/** Shows `level` on the indicator element (`data-level`, a title with the figures). */
export function renderLinkQuality(el, quality, t) {
  const level = linkLevel(quality);
  el.hidden = level === null;
  if (level === null) return;
  el.dataset.level = level;
  const loss = Math.max(...quality.receiving.map((q) => q.loss || 0));
  const rtt = Math.max(...quality.receiving.map((q) => q.rtt_ms || 0));
  el.querySelector('.link-text').textContent = t(`link.${level}`);
  // Freezes are counted since the stream began (the server's `freezes`), summed over videos.
  const freezes = quality.receiving.reduce((n, q) => n + (q.freezes || 0), 0);
  el.title = t('link.detail', { loss: (loss * 100).toFixed(1), rtt, freezes });
}
