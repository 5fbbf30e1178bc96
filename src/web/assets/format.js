// Pure formatting helpers (no DOM).

/** Time since a transition, two units: now, 45s, 10m30s, 1h12m, 1d16h. */
export function since(ms) {
  if (!Number.isFinite(ms) || ms < 1000) return 'now';
  let s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  s %= 60;
  if (m < 60) return `${m}m${s}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${m % 60}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

/** `192.0.2.1/32` -> `192.0.2.1`; other prefixes stay. */
export function vip(address) {
  return address.replace(/\/(32|128)$/, '');
}

export function protoPort(f) {
  return `${f.protocol || 'any'}/${f.port === 0 ? 'all' : f.port}`;
}

const RANK = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };
export function levelRank(level) {
  return RANK[level] ?? 2;
}

export function clock(ms) {
  const d = new Date(ms);
  return d.toTimeString().slice(0, 8);
}

export const HEALTH_TEXT = {
  up: 'all backends up',
  degraded: 'some backends down',
  failover: 'serving from a backup pool',
  down: 'all backends down',
  unknown: 'unknown (settling)',
};
