/**
 * `pnpm demo`: starts the local SMTP server, the relay Worker under `wrangler dev` and the webmail
 * outbox page, prints where they are, and stops everything on Ctrl-C.
 */
import { DEMO_ADMIN_TOKEN, startStack } from './stack.js';

const port = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

console.log(
  'mailspool demo: building the outbox page and starting the relay Worker (wrangler dev)…',
);
const stack = await startStack({
  smtpPort: port('DEMO_SMTP_PORT', 2525),
  sinkHttpPort: port('DEMO_SINK_PORT', 8025),
  relayPort: port('DEMO_RELAY_PORT', 8787),
  pagePort: port('DEMO_PAGE_PORT', 5173),
  persistTo: process.env.DEMO_STATE_DIR ?? '.wrangler/demo',
  log: (line) => console.log(line),
});

console.log(`
  webmail outbox   ${stack.pageUrl}          compose here (works offline too)
  relay Worker     ${stack.relayUrl}/status   user: anything, password: ${DEMO_ADMIN_TOKEN}
  received mail    ${stack.sinkUrl}          what the smarthost (smtp-sink) got

Press Ctrl-C to stop.`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log('\nmailspool demo: stopping…');
  await stack.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
