#!/usr/bin/env node
/** Runs the sink: `smtp-sink [--smtp-port 2525] [--http-port 8025]`; stops cleanly on Ctrl-C. */
import { startSink } from './sink.js';

const arg = (name: string, fallback: number) => {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
};

const sink = await startSink({
  smtpPort: arg('--smtp-port', Number(process.env.SMTP_SINK_PORT ?? 2525)),
  httpPort: arg('--http-port', Number(process.env.SMTP_SINK_HTTP_PORT ?? 8025)),
  ...(process.env.SMTP_SINK_USER && process.env.SMTP_SINK_PASS
    ? { auth: { user: process.env.SMTP_SINK_USER, pass: process.env.SMTP_SINK_PASS } }
    : {}),
});
console.log(
  `smtp-sink: SMTP on 127.0.0.1:${sink.smtpPort}, page on http://127.0.0.1:${sink.httpPort}/`,
);
const stop = async () => {
  await sink.close();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
