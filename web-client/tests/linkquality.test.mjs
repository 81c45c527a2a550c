// Unit tests of the link-quality indicator's judgement (js/linkquality.js). No browser needed.

import { test } from 'node:test';
import assert from 'node:assert/strict';

const { linkLevel } = await import('../js/linkquality.js');

const report = (receiving, at = 1000) => ({ receiving, publishing: [], at });

test('loss and round trip decide the level', () => {
  assert.equal(linkLevel(report([{ loss: 0, rtt_ms: 8, layer: 'high' }, { loss: 0, rtt_ms: 8 }]), 2000), 'good');
  assert.equal(linkLevel(report([{ loss: 0.03, rtt_ms: 150, layer: 'low' }]), 2000), 'fair');
  assert.equal(linkLevel(report([{ loss: 0.0, rtt_ms: 250 }]), 2000), 'fair');
  assert.equal(linkLevel(report([{ loss: 0.12, rtt_ms: 80 }]), 2000), 'poor');
  assert.equal(linkLevel(report([{ loss: 0.0, rtt_ms: 600 }]), 2000), 'poor');
});

test('a small video on a good link is still a good link', () => {
  assert.equal(linkLevel(report([{ loss: 0, rtt_ms: 5, layer: 'low' }]), 2000), 'good');
});

test('nothing to judge: no report, nothing received, or a stale report', () => {
  assert.equal(linkLevel(null), null);
  assert.equal(linkLevel(report([])), null);
  assert.equal(linkLevel(report([{ loss: 0, rtt_ms: 5 }], 1000), 9000), null);
});
