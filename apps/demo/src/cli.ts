/**
 * `pnpm demo`: starts the local SMTP server, the relay Worker under `wrangler dev` and the webmail
 * outbox page, prints where they are, and stops everything on Ctrl-C.
 */
import { DEMO_ADMIN_TOKEN, startStack } from './stack.js';

const port = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

// The handlers come first: a signal that arrives while the stack starts, or right after the
// banner is printed (a script may act on the banner at once), must still stop everything and
// exit 0, never kill the process with its children still running.
let stopping = false;
let started: ReturnType<typeof startStack> | undefined;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log('\nmailspool demo: stopping…');
  const stack = await started?.catch(() => undefined);
  await stack?.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

console.log(
  'mailspool demo: building the outbox page and starting the relay Worker (wrangler dev)…',
);
started = startStack({
  smtpPort: port('DEMO_SMTP_PORT', 2525),
  sinkHttpPort: port('DEMO_SINK_PORT', 8025),
  relayPort: port('DEMO_RELAY_PORT', 8787),
  pagePort: port('DEMO_PAGE_PORT', 5173),
  persistTo: process.env.DEMO_STATE_DIR ?? '.wrangler/demo',
  log: (line) => console.log(line),
});
const stack = await started;

if (!stopping) {
  console.log(`
  webmail outbox   ${stack.pageUrl}          compose here (works offline too)
  relay Worker     ${stack.relayUrl}/status   user: anything, password: ${DEMO_ADMIN_TOKEN}
  received mail    ${stack.sinkUrl}          what the smarthost (smtp-sink) got

Press Ctrl-C to stop.`);
}
