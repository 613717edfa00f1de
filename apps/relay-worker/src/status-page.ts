/**
 * The status page: the queue at a glance for an operator (counts, oldest message, recent
 * failures, delivered and bounced in the last 24 hours with a chart of them per hour).
 */
import { type QueueStats, sumStats } from '@mailspool/core';
import type { lastDay } from './metrics.js';
import type { MessageView } from './queue.js';

export interface StatusData {
  readonly now: number;
  readonly tenants: readonly { readonly tenant: string; readonly stats: QueueStats }[];
  /** Messages looked at for the age and failure columns (bounded per tenant). */
  readonly sample: readonly (MessageView & { readonly tenant: string })[];
  /** Messages delivered and bounced in the last 24 hours, per hour (metrics.ts). */
  readonly day: ReturnType<typeof lastDay>;
}

/**
 * Deliveries (and bounces, stacked on top) per hour as an inline SVG bar chart: 24 bars, the
 * current hour last, each with a `<title>` that tells its counts. Inline, so the page still loads
 * nothing (its content security policy allows no images).
 */
function hourlyChart(day: StatusData['day']): string {
  const width = 480;
  const height = 120;
  const bar = width / day.perHour.length;
  const top = Math.max(1, ...day.perHour.map((h) => h.delivered + h.bounced));
  const bars = day.perHour
    .map((h, i) => {
      const x = (i * bar + 1).toFixed(1);
      const w = (bar - 2).toFixed(1);
      const delivered = (h.delivered / top) * (height - 20);
      const bounced = (h.bounced / top) * (height - 20);
      const hour = new Date(h.hour).toISOString().slice(11, 16);
      return `<g><title>${hour} UTC: ${h.delivered} delivered, ${h.bounced} bounced</title><rect x="${x}" y="${(height - delivered).toFixed(1)}" width="${w}" height="${delivered.toFixed(1)}" fill="#2f7d4f" data-delivered="${h.delivered}"/><rect x="${x}" y="${(height - delivered - bounced).toFixed(1)}" width="${w}" height="${bounced.toFixed(1)}" fill="#c0392b" data-bounced="${h.bounced}"/></g>`;
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="Deliveries per hour, last 24 hours" data-testid="hourly-chart"><text x="0" y="12" font-size="11" fill="#5c6670">per hour, max ${top}</text><line x1="0" y1="${height - 0.5}" x2="${width}" y2="${height - 0.5}" stroke="#dde1e6"/>${bars}</svg>`;
}

const esc = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!,
  );

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

/** Renders the page; every value from the queue is escaped. */
export function renderStatus(data: StatusData): string {
  const total = sumStats(data.tenants.map(({ stats }) => stats));
  const oldest = data.sample.reduce<number | null>(
    (min, m) => (min === null || m.receivedAt < min ? m.receivedAt : min),
    null,
  );
  const failures = data.sample
    .filter((m) => m.lastError)
    .sort((a, b) => (b.lastAttemptAt ?? 0) - (a.lastAttemptAt ?? 0))
    .slice(0, 20);
  const held = data.sample.filter((m) => m.state === 'held').length;
  const card = (label: string, value: string, testid: string) =>
    `<div class="card"><div class="value" data-testid="${testid}">${value}</div><div class="label">${label}</div></div>`;
  const tenantRows = data.tenants
    .map(
      ({ tenant, stats }) =>
        `<tr><td>${esc(tenant)}</td><td>${stats.total}</td><td>${stats.due}</td><td>${stats.active}</td><td>${stats.deferred}</td></tr>`,
    )
    .join('');
  const failureRows = failures
    .map(
      (m) =>
        `<tr><td>${esc(m.tenant)}</td><td><code>${esc(m.id)}</code></td><td>${m.attempts}</td><td>${m.lastAttemptAt ? age(data.now - m.lastAttemptAt) : ''} ago</td><td>${esc(m.lastError ?? '')}</td><td>${m.nextAttemptAt ? `in ${age(m.nextAttemptAt - data.now)}` : m.state}</td></tr>`,
    )
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mailspool relay status</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><meta http-equiv="refresh" content="10">
<style>body{font:14px system-ui,sans-serif;margin:2rem;color:#1d232a;background:#f7f8fa}h1{font-size:1.4rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:1rem 1.4rem;min-width:8rem}
.value{font-size:1.8rem;font-weight:600}.label{color:#5c6670}table{border-collapse:collapse;width:100%;background:#fff;margin-top:.5rem}
td,th{border-bottom:1px solid #e6e9ed;padding:.45rem .6rem;text-align:left;vertical-align:top}th{background:#eef1f4}code{font-size:12px}</style></head>
<body><h1>mailspool relay — queue status</h1>
<div class="cards">${card('messages', String(total.total), 'total')}${card('due now', String(total.due), 'due')}${card('sending', String(total.active), 'active')}${card('waiting to retry', String(total.deferred), 'deferred')}${card('held', String(held), 'held')}${card('oldest message', oldest === null ? '—' : age(data.now - oldest), 'oldest')}${card('delivered (24 h)', String(data.day.delivered), 'delivered-24h')}${card('bounced (24 h)', String(data.day.bounced), 'bounced-24h')}</div>
<h2>Deliveries per hour (last 24 h; bounces in red)</h2>${hourlyChart(data.day)}
<h2>Tenants</h2><table><thead><tr><th>tenant</th><th>messages</th><th>due</th><th>sending</th><th>waiting</th></tr></thead><tbody>${tenantRows || '<tr><td colspan="5">no tenants configured</td></tr>'}</tbody></table>
<h2>Recent failures</h2><table><thead><tr><th>tenant</th><th>message</th><th>attempts</th><th>last attempt</th><th>error</th><th>next</th></tr></thead><tbody data-testid="failures">${failureRows || '<tr><td colspan="6">none</td></tr>'}</tbody></table>
<p>Generated ${esc(new Date(data.now).toISOString())}; ages and failures from up to 200 messages per tenant.</p></body></html>`;
}
