/**
 * A runnable tour of the contract on the memory engine: store a message, lease it, fail a
 * delivery attempt, retry later, deliver, and complete it with a fenced delete. Time is a
 * ManualClock, so the five-minute retry happens at once. Run: `pnpm example` at the repo root.
 */
import { fromMeta, ManualClock, MemoryEngine, toMeta } from '../src/index.js';

const clock = new ManualClock(Date.UTC(2026, 10, 29, 12, 0, 0));
const engine = new MemoryEngine({ clock });
const at = () => new Date(clock.now()).toISOString().slice(11, 19);
const log = (step: string, detail: unknown = '') =>
  console.log(
    `[${at()}] ${step.padEnd(34)} ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`,
  );

await using session = await engine.connect();
engine.subscribe((event) => log(`  event: ${event.type}`, event.ids.join(', ')));

const id = await session.storeMessage({
  meta: toMeta({
    sender: 'alice@example.com',
    recipients: ['bob@example.org'],
    timestamp: clock.now(),
    attempts: 0,
  }),
  contents: 'From: alice@example.com\r\nTo: bob@example.org\r\nSubject: hello\r\n\r\nHi Bob!\r\n',
});
log('stored', id);
log('stats', await session.stats());

// Attempt 1: lease the message, "deliver", get a temporary failure.
const [first] = await session.claimDue({ limit: 10, ttl: 120_000 });
if (!first) throw new Error('the new message should be due at once');
log('claimed (attempt 1)', first);
log('stats while leased', await session.stats());
const envelope = fromMeta(await session.getMessageMeta(id));
log('relaying to', envelope.recipients);
log('smarthost replied', '451 4.7.1 try again later');
await session.setMessageMetaKey(id, 'attempts', envelope.attempts + 1, { lease: first });
await session.setMessageRetry(id, clock.now() + 5 * 60_000, { lease: first });
await session.releaseLease(first);
log('deferred for 5 minutes', await session.stats());
log('claimDue now', await session.claimDue({ limit: 10, ttl: 120_000 }));

// A stale holder can't do damage: its lease was released, so a fenced delete is refused.
try {
  await session.deleteMessage(id, { lease: first });
} catch (error) {
  log('stale lease refused', (error as { code?: string }).code ?? String(error));
}

clock.advance(5 * 60_000);
log('5 minutes later', await session.stats());

// Attempt 2: delivered, so complete it with a fenced delete.
const [second] = await session.claimDue({ limit: 10, ttl: 120_000 });
if (!second) throw new Error('the message should be due again');
log('claimed (attempt 2)', second);
const bytes = await session.getMessageContents(id);
log('smarthost replied', `250 2.0.0 queued as ABC123 (${bytes.byteLength} bytes)`);
const result = await session.deleteMessages([second]);
log('completed', result);
log('stats', await session.stats());
