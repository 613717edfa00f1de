/**
 * Table `do-delivery-priority` of the `do-delivery` suite: how long a `high` mail takes to reach
 * the smarthost when `priorityBulkN` (10,000) `bulk` mails of the same tenant are queued ahead of
 * it, against the same mail on an empty queue. Both Workers are the relay with its production
 * limits (4 shards, `SMARTHOST_MAX_CONNECTIONS` 4 over all of them, suspension on), delivering to a
 * receiver of their own on 127.0.0.1.
 *
 * Untimed setup: the receiver's gate closed (greetings held), the bulk mails (1 KiB each) POSTed
 * to the backlog Worker with `"priority": "bulk"`; its shards' alarms claim their first runs and
 * hold the 4 connections at the greeting. One run: t0, the high mail is POSTed (`"priority":
 * "high"`); the gate opens; t1, its DATA ends at the receiver; the gate closes again. The
 * number is `1 / (t1 - t0)` (per second); the check gives the time in ms and how much bulk was
 * still queued. Between runs the bulk only moves while the gate is open, so each run sees nearly
 * the whole backlog.
 */
import type { Miniflare } from 'miniflare';
import type { BenchConfig } from '../lib/config.js';
import { runTable, type TableResult, type TableSpec, verify } from '../lib/harness.js';
import { makeMail, markOf, RECIPIENTS, SENDER } from './mail.js';
import type { Receiver } from './smtp-receiver.js';

/** Row id → the Worker it runs against. Row ids are stable: keep them. */
export const PRIORITY_ROWS: Record<string, string> = {
  'priority-high-behind-bulk': 'relay-priority-backlog',
  'priority-high-empty-queue': 'relay-priority-empty',
};

const SUBMITTERS = 8;
const encoder = new TextEncoder();

function bulkMail(tag: string, index: number): Uint8Array {
  return encoder.encode(
    `From: News <${SENDER}>\r\nTo: ${RECIPIENTS[0]}\r\nSubject: bulk ${index}\r\nX-Bench-Mail: ${tag}.${index}\r\n\r\n${'x'.repeat(1000)}\r\n`,
  );
}

const base64 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

export async function runPriorityTable(
  mf: Miniflare,
  receiver: Receiver,
  problem: () => string | undefined,
  auth: { readonly token: string },
  config: BenchConfig,
): Promise<TableResult> {
  const bulkN = config.priorityBulkN;
  const bulkTag = Buffer.from(crypto.getRandomValues(new Uint8Array(4))).toString('hex');
  let bulkReceived = 0;
  let high: { tag: string; at: number | undefined; count: number } | undefined;
  receiver.close();
  receiver.sink = (mail) => {
    const mark = markOf(mail.raw);
    if (mark?.[0] === bulkTag) bulkReceived++;
    else if (high !== undefined && mark?.[0] === high.tag) {
      high.count++;
      high.at ??= mail.at;
    } else receiver.strays.push('a mail of no priority run');
  };
  const headers = { authorization: `Bearer ${auth.token}`, 'content-type': 'application/json' };
  const post = async (worker: string, raw: Uint8Array, priority: string) => {
    const response = await mf.dispatchFetch(`http://${worker}.bench/v1/messages`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ from: SENDER, to: [RECIPIENTS[0]], raw: base64(raw), priority }),
    });
    verify(response.status === 202, `POST (${priority}): ${response.status}`);
    await response.body?.cancel();
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: SUBMITTERS }, async () => {
      while (next < bulkN) {
        const index = next++;
        await post(PRIORITY_ROWS['priority-high-behind-bulk']!, bulkMail(bulkTag, index), 'bulk');
      }
    }),
  );

  const spec: TableSpec = {
    id: 'do-delivery-priority',
    title: 'a high-priority mail behind a bulk backlog: submit → received over SMTP (workerd)',
    unit: '1/s (1 / time to delivery)',
    workload: `One mail (10 KiB, \`"priority": "high"\`) POSTed to the relay (4 shards, production limits: 4 SMTP connections over all shards) while ${bulkN} \`bulk\` mails (1 KiB) of the same tenant are queued ahead of it, their first runs' connections waiting at the receiver's greeting; timed to its DATA's end at the receiver.`,
    baselines: [{ key: 'empty', label: 'vs an empty queue', row: 'priority-high-empty-queue' }],
    rows: [
      {
        id: 'priority-high-behind-bulk',
        label: `**high** mail behind ${bulkN} bulk mails`,
      },
      {
        id: 'priority-high-empty-queue',
        label: 'high mail, nothing else queued — baseline',
      },
    ],
  };
  const result = await runTable(
    spec,
    async (row) => {
      const tag = Buffer.from(crypto.getRandomValues(new Uint8Array(4))).toString('hex');
      high = { tag, at: undefined, count: 0 };
      const left = bulkN - bulkReceived;
      const t0 = performance.now();
      await post(PRIORITY_ROWS[row]!, makeMail(tag, 0), 'high');
      receiver.open();
      const deadline = t0 + 60_000;
      while (high.at === undefined) {
        verify(problem() === undefined, problem() ?? '');
        verify(performance.now() < deadline, `${row}: the high mail did not arrive in 60 s`);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      receiver.close();
      const ms = high.at - t0;
      verify(high.count === 1, `${row}: the high mail arrived ${high.count} times`);
      return {
        ops: 1,
        ms,
        check: `the high mail received once after ${ms.toFixed(0)} ms, ${row === 'priority-high-behind-bulk' ? `${left} bulk mails queued (${bulkN - bulkReceived} after)` : 'empty queue'}`,
        extra: { ms },
      };
    },
    { rounds: config.rounds, log: config.log },
  );
  verify(receiver.strays.length === 0, `priority receiver: ${receiver.strays.join('; ')}`);
  receiver.sink = () => {};
  return result;
}
